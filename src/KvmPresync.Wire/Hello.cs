namespace KvmPresync.Wire;

/// <summary>
/// Sender → receiver, first frame. Body (little-endian):
/// <code>
///  0  4   magic "KPSY" (4B 50 53 59)
///  4  u16 version major
///  6  u16 version minor
///  8  u32 page size
/// 12  u32 hash algorithm (PageHashAlgorithm)
/// 16  u32 options (HelloOptions)
/// 20  u32 slot count
/// 24  32  sender nonce
/// 56  slot count × 24: u32 slot id, u32 reserved, u64 guest physical address, u64 size
/// </code>
/// Decoding checks magic, then the major version (before anything else, since another major may lay out the
/// rest differently), then every field and the memory layout.
/// </summary>
public sealed record Hello(
    ProtocolVersion Version,
    MemoryLayout Layout,
    PageHashAlgorithm HashAlgorithm,
    HelloOptions Options,
    ReadOnlyMemory<byte> SenderNonce) : IFrameBody<Hello>
{
    public const int FixedLength = 56;

    /// <summary>"KPSY" read as a little-endian u32.</summary>
    public static ReadOnlySpan<byte> Magic => "KPSY"u8;

    public static FrameType Type => FrameType.Hello;

    public int BodyLength => FixedLength + Layout.Slots.Count * LayoutSlot.WireLength;

    public void Write(Span<byte> body)
    {
        if (SenderNonce.Length != WireLimits.NonceBytes)
            throw new ArgumentException($"the sender nonce must be {WireLimits.NonceBytes} bytes, not {SenderNonce.Length}");
        var w = new BodyWriter(body[..BodyLength]);
        w.Bytes(Magic);
        w.U16(Version.Major);
        w.U16(Version.Minor);
        w.U32((uint)Layout.PageSize);
        w.U32((uint)HashAlgorithm);
        w.U32((uint)Options);
        w.U32((uint)Layout.Slots.Count);
        w.Bytes(SenderNonce.Span);
        foreach (LayoutSlot s in Layout.Slots)
        {
            w.U32(s.SlotId);
            w.U32(0);
            w.U64(s.GuestPhysicalAddress);
            w.U64(s.SizeBytes);
        }
    }

    public static Hello Read(ReadOnlySpan<byte> body)
    {
        var r = new BodyReader(body, "Hello");
        ReadOnlySpan<byte> magic = r.Bytes(4, "magic");
        if (!magic.SequenceEqual(Magic))
            throw new ProtocolException(ProtocolError.BadMagic, "Hello.magic", Convert.ToHexString(magic),
                $"Hello: magic is {Convert.ToHexString(magic)}, expected 4B505359 (\"KPSY\") — the peer is not a KvmPresync sender");
        var version = new ProtocolVersion(r.U16("versionMajor"), r.U16("versionMinor"));
        if (version.Major != ProtocolVersion.Current.Major)
            throw new ProtocolException(ProtocolError.VersionMismatch, "Hello.versionMajor", version.Major,
                $"Hello: sender speaks protocol {version}, this side speaks {ProtocolVersion.Current} (major versions must match)");
        uint pageSize = r.U32("pageSize");
        var hash = r.Enum32<PageHashAlgorithm>("hashAlgorithm", ProtocolError.UnknownHashAlgorithm);
        uint options = r.U32("options");
        if ((options & ~(uint)HelloOptions.All) != 0)
            throw new ProtocolException(ProtocolError.UnknownOption, "Hello.options", options,
                $"Hello: option bits 0x{options & ~(uint)HelloOptions.All:x} are not defined in protocol {ProtocolVersion.Current}");
        uint slotCount = r.U32("slotCount");
        if (slotCount > WireLimits.MaxSlots)
            throw new ProtocolException(ProtocolError.TooManySlots, "Hello.slotCount", slotCount,
                $"Hello announces {slotCount} memory slots, the limit is {WireLimits.MaxSlots}");
        long expected = FixedLength + (long)slotCount * LayoutSlot.WireLength;
        if (body.Length != expected)
            throw new ProtocolException(ProtocolError.BodyLengthMismatch, "Hello.bodyLength", body.Length,
                $"Hello: body is {body.Length} bytes, {slotCount} slots imply {expected}");
        byte[] nonce = r.Bytes(WireLimits.NonceBytes, "senderNonce").ToArray();
        if (pageSize > int.MaxValue)
            throw new ProtocolException(ProtocolError.BadPageSize, "Hello.pageSize", pageSize, $"Hello: page size {pageSize} is absurd");
        var slots = new LayoutSlot[slotCount];
        for (int i = 0; i < slots.Length; i++)
        {
            uint id = r.U32($"slot[{i}].slotId");
            r.Reserved32($"slot[{i}].reserved");
            slots[i] = new LayoutSlot(id, r.U64($"slot[{i}].guestPhysicalAddress"), r.U64($"slot[{i}].sizeBytes"));
        }
        r.End();
        return new Hello(version, MemoryLayout.Create((int)pageSize, slots), hash, (HelloOptions)options, nonce);
    }
}
