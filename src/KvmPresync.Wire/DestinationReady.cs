namespace KvmPresync.Wire;

/// <summary>
/// Receiver → sender, protocol 1.2 with <see cref="HelloOptions.DeferredHandover"/>, at most once and only after Launch:
/// the destination that will take the guest's device state by its own path (libvirt/QEMU) has started and is held until
/// the memory is verified, so the sender may pause the guest now. Body (8 bytes): <c>u64 receiver timestamp (ns)</c>.
/// </summary>
public readonly record struct DestinationReady(ulong ReceiverTimestampNs) : IFrameBody<DestinationReady>
{
    public const int Length = 8;

    public static FrameType Type => FrameType.DestinationReady;

    public int BodyLength => Length;

    public void Write(Span<byte> body) => new BodyWriter(body[..Length]).U64(ReceiverTimestampNs);

    public static DestinationReady Read(ReadOnlySpan<byte> body)
    {
        var r = new BodyReader(body, "DestinationReady");
        var v = new DestinationReady(r.U64("receiverTimestampNs"));
        r.End();
        return v;
    }
}
