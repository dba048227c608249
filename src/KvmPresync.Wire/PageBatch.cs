using System.Buffers.Binary;

namespace KvmPresync.Wire;

/// <summary>
/// Sender → receiver, the bulk frame. Body:
/// <code>
///  0  u64 round id
///  8  u32 descriptor count  (≤ WireLimits.MaxPagesPerBatch)
/// 12  u32 codec (PageCodec; reserved = 0 = None unless CompressedPages was negotiated, 1.3)
/// 16  count × 24: PageDescriptor
/// codec None:  one page-size payload per Full descriptor, in descriptor order
/// codec ≠ None: u32 compressed length L, u32 raw length (= fullPages·pageSize), then L bytes that decompress to the
///               Full payloads concatenated in descriptor order
/// </code>
/// The body length must equal 16 + 24·count + fullPages·pageSize (raw) or 16 + 24·count + 8 + L (compressed) exactly. Descriptors need not be sorted;
/// a page may appear more than once (the later one wins). This type is what the reader hands out: the
/// descriptors (valid until the next frame is read) and how many payloads follow.
/// </summary>
public readonly struct PageBatch
{
    public const int FixedLength = 16;

    /// <summary>The compressed lengths after the descriptors of a compressed batch: u32 compressed, u32 raw.</summary>
    public const int CompressedFieldsLength = 8;

    internal PageBatch(ulong roundId, ReadOnlyMemory<PageDescriptor> descriptors, int fullPages, PageCodec codec = PageCodec.None, int compressedLength = 0)
    {
        RoundId = roundId;
        Descriptors = descriptors;
        FullPages = fullPages;
        Codec = codec;
        CompressedLength = compressedLength;
    }

    /// <summary>How the payloads travelled (the reader hands them out decompressed either way).</summary>
    public PageCodec Codec { get; }

    /// <summary>Payload bytes on the wire when <see cref="Codec"/> is not None (0 otherwise).</summary>
    public int CompressedLength { get; }

    public ulong RoundId { get; }

    /// <summary>The validated descriptors; a buffer the reader reuses, valid until its next <c>ReadHeaderAsync</c>.</summary>
    public ReadOnlyMemory<PageDescriptor> Descriptors { get; }

    /// <summary>Number of payloads that follow (descriptors with <see cref="PageKind.Full"/>).</summary>
    public int FullPages { get; }

    /// <summary>Body length a batch with these counts must declare.</summary>
    public static ulong BodyLength(int descriptorCount, int fullPages, int pageSize) =>
        FixedLength + (ulong)descriptorCount * PageDescriptor.WireLength + (ulong)fullPages * (ulong)pageSize;

    /// <summary>Body length of a compressed batch (<paramref name="compressedLength"/> payload bytes on the wire).</summary>
    public static ulong CompressedBodyLength(int descriptorCount, int compressedLength) =>
        FixedLength + (ulong)descriptorCount * PageDescriptor.WireLength + CompressedFieldsLength + (ulong)compressedLength;

    internal static void WritePrefix(Span<byte> destination, ulong roundId, ReadOnlySpan<PageDescriptor> descriptors, PageCodec codec = PageCodec.None)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(destination, roundId);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[8..], (uint)descriptors.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[12..], (uint)codec);
        Span<byte> d = destination[FixedLength..];
        for (int i = 0; i < descriptors.Length; i++)
            descriptors[i].Write(d.Slice(i * PageDescriptor.WireLength, PageDescriptor.WireLength));
    }
}
