namespace KvmPresync.Wire;

/// <summary>
/// Caps every peer-supplied count and length is checked against before anything is read or allocated.
/// Fixed by the protocol version (both sides use the same numbers); documented in docs/PROTOCOL.md.
/// </summary>
public static class WireLimits
{
    /// <summary>Memory slots in a Hello (KVM allows more, our guests use a handful).</summary>
    public const int MaxSlots = 512;

    /// <summary>Total guest memory a layout may announce: 4 TiB.</summary>
    public const ulong MaxTotalMemoryBytes = 1UL << 42;

    public const int MinPageSize = 4096;

    /// <summary>Largest page size (2 MiB huge pages).</summary>
    public const int MaxPageSize = 2 * 1024 * 1024;

    /// <summary>Descriptors in one PageBatch.</summary>
    public const int MaxPagesPerBatch = 8192;

    /// <summary>
    /// Raw payload bytes (Full pages × page size) one compressed PageBatch may stand for: 4 MiB. Bounds the receiver's
    /// decompression buffers; a larger batch is sent raw.
    /// </summary>
    public const int MaxCompressedBatchBytes = 4 * 1024 * 1024;

    /// <summary>vCPU + device state blob in FinalState: 16 MiB.</summary>
    public const int MaxDeviceStateBytes = 16 * 1024 * 1024;

    /// <summary>UTF-8 bytes of an Abort message.</summary>
    public const int MaxAbortMessageBytes = 1024;

    public const int NonceBytes = 32;
    public const int MacBytes = 32;
    public const int DigestBytes = 32;

    /// <summary>A resumable session's id (SessionStart), chosen at random by the sender.</summary>
    public const int SessionIdBytes = 16;

    /// <summary>Page hashes in one PageHashes frame (512 KiB of hashes).</summary>
    public const int MaxPageHashesPerFrame = 64 * 1024;

    /// <summary>TCP connections one migration may use (protocol 1.3, <see cref="HelloOptions.MultiStream"/>): the main one included.</summary>
    public const int MaxStreams = 16;

    /// <summary>Pages per stripe of the page space (StreamSetup): a power of two in [64, 65536], so no 64-page bitmap word spans two streams.</summary>
    public const int MinStripePages = 64, MaxStripePages = 65536;

    /// <summary>
    /// Largest body a frame of <paramref name="type"/> may declare; the smallest is returned through
    /// <paramref name="min"/>. PageBatch depends on the negotiated page size (0 before the handshake: not allowed).
    /// </summary>
    public static ulong MaxBodyLength(FrameType type, int pageSize, out ulong min)
    {
        switch (type)
        {
            case FrameType.Hello: min = Hello.FixedLength; return Hello.FixedLength + (ulong)MaxSlots * LayoutSlot.WireLength;
            case FrameType.HelloAck: min = HelloAck.Length; return min;
            case FrameType.AuthProof: min = AuthProof.Length; return min;
            case FrameType.AuthOk: min = AuthOk.Length; return min;
            case FrameType.PageBatch:
                min = PageBatch.FixedLength;
                return PageBatch.FixedLength + (ulong)MaxPagesPerBatch * ((ulong)PageDescriptor.WireLength + (ulong)pageSize);
            case FrameType.RoundEnd: min = RoundEnd.Length; return min;
            case FrameType.Ack: min = Ack.Length; return min;
            case FrameType.Launch: min = Launch.Length; return min;
            case FrameType.FinalState: min = FinalState.FixedLength; return FinalState.FixedLength + (ulong)MaxDeviceStateBytes;
            case FrameType.Resumed: min = Resumed.Length; return min;
            case FrameType.Abort: min = Abort.FixedLength; return Abort.FixedLength + (ulong)MaxAbortMessageBytes;
            case FrameType.Ping: min = Ping.Length; return min;
            case FrameType.Pong: min = Pong.Length; return min;
            case FrameType.SessionStart: min = SessionStart.Length; return min;
            case FrameType.SessionState: min = SessionState.Length; return min;
            case FrameType.PageHashes: min = PageHashes.FixedLength + 8; return PageHashes.FixedLength + 8UL * MaxPageHashesPerFrame;
            case FrameType.DestinationReady: min = DestinationReady.Length; return min;
            case FrameType.StreamSetup: min = StreamSetup.Length; return min;
            case FrameType.StreamJoin: min = StreamJoin.Length; return min;
            case FrameType.StreamMark: min = StreamMark.Length; return min;
            default: min = 0; return 0;
        }
    }
}
