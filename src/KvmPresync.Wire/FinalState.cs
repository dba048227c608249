namespace KvmPresync.Wire;

/// <summary>
/// Sender → receiver after the last final PageBatch. Body (56 + state length bytes):
/// <code>
///  0  u64 page count           (pages covered by the digest = layout's total pages)
///  8  u64 sender timestamp     (ns; echoed in Resumed)
/// 16  32  memory digest        (the hash tree's root with TreeDigest (1.3), else SHA-256 over all page hashes in page order)
/// 48  u32 state length         (≤ WireLimits.MaxDeviceStateBytes)
/// 52  u32 reserved (0)
/// 56  state length bytes: vCPU + device state blob (opaque to the wire layer)
/// </code>
/// </summary>
public sealed record FinalState(ulong PageCount, ulong SenderTimestampNs, ReadOnlyMemory<byte> MemoryDigest, ReadOnlyMemory<byte> DeviceState)
    : IFrameBody<FinalState>
{
    public const int FixedLength = 56;

    public static FrameType Type => FrameType.FinalState;

    public int BodyLength => FixedLength + DeviceState.Length;

    public void Write(Span<byte> body)
    {
        if (MemoryDigest.Length != WireLimits.DigestBytes)
            throw new ArgumentException($"the memory digest must be {WireLimits.DigestBytes} bytes, not {MemoryDigest.Length}");
        if (DeviceState.Length > WireLimits.MaxDeviceStateBytes)
            throw new ArgumentException($"the device state is {DeviceState.Length} bytes, the protocol limit is {WireLimits.MaxDeviceStateBytes}");
        var w = new BodyWriter(body[..BodyLength]);
        w.U64(PageCount);
        w.U64(SenderTimestampNs);
        w.Bytes(MemoryDigest.Span);
        w.U32((uint)DeviceState.Length);
        w.U32(0);
        w.Bytes(DeviceState.Span);
    }

    public static FinalState Read(ReadOnlySpan<byte> body)
    {
        var r = new BodyReader(body, "FinalState");
        ulong pages = r.U64("pageCount");
        ulong timestamp = r.U64("senderTimestampNs");
        byte[] digest = r.Bytes(WireLimits.DigestBytes, "memoryDigest").ToArray();
        uint stateLength = r.U32("stateLength");
        r.Reserved32("reserved");
        if (stateLength > WireLimits.MaxDeviceStateBytes)
            throw new ProtocolException(ProtocolError.FrameTooLarge, "FinalState.stateLength", stateLength,
                $"FinalState: device state of {stateLength} bytes exceeds the {WireLimits.MaxDeviceStateBytes}-byte limit");
        if (r.Remaining != stateLength)
            throw new ProtocolException(ProtocolError.BodyLengthMismatch, "FinalState.stateLength", stateLength,
                $"FinalState: state length says {stateLength} bytes, the body holds {r.Remaining} after the fixed fields");
        byte[] state = r.Bytes((int)stateLength, "deviceState").ToArray();
        r.End();
        return new FinalState(pages, timestamp, digest, state);
    }
}
