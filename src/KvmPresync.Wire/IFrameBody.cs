namespace KvmPresync.Wire;

/// <summary>
/// A frame body with a fixed wire layout: knows its frame type and length, writes itself, and reads (with full
/// validation) from exactly the bytes of a body. PageBatch is not one of these: it is streamed, see
/// <see cref="FrameReader.ReadPageBatchAsync"/> and <see cref="FrameWriter.WritePageBatchAsync"/>.
/// </summary>
public interface IFrameBody<TSelf> where TSelf : IFrameBody<TSelf>
{
    static abstract FrameType Type { get; }

    /// <summary>Bytes this body occupies on the wire.</summary>
    int BodyLength { get; }

    /// <summary>Writes exactly <see cref="BodyLength"/> bytes.</summary>
    void Write(Span<byte> body);

    /// <summary>Decodes and validates a body; throws <see cref="ProtocolException"/> on any bad field or length.</summary>
    static abstract TSelf Read(ReadOnlySpan<byte> body);
}
