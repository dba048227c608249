using System.Buffers.Binary;

namespace KvmPresync.Wire;

/// <summary>
/// Sender → receiver, the bulk frame. Body:
/// <code>
///  0  u64 round id
///  8  u32 descriptor count  (≤ WireLimits.MaxPagesPerBatch)
/// 12  u32 reserved (0)
/// 16  count × 24: PageDescriptor
/// ..  one page-size payload per Full descriptor, in descriptor order
/// </code>
/// The body length must equal 16 + 24·count + fullPages·pageSize exactly. Descriptors need not be sorted;
/// a page may appear more than once (the later one wins). This type is what the reader hands out: the
/// descriptors (valid until the next frame is read) and how many payloads follow.
/// </summary>
public readonly struct PageBatch
{
    public const int FixedLength = 16;

    internal PageBatch(ulong roundId, ReadOnlyMemory<PageDescriptor> descriptors, int fullPages)
    {
        RoundId = roundId;
        Descriptors = descriptors;
        FullPages = fullPages;
    }

    public ulong RoundId { get; }

    /// <summary>The validated descriptors; a buffer the reader reuses, valid until its next <c>ReadHeaderAsync</c>.</summary>
    public ReadOnlyMemory<PageDescriptor> Descriptors { get; }

    /// <summary>Number of payloads that follow (descriptors with <see cref="PageKind.Full"/>).</summary>
    public int FullPages { get; }

    /// <summary>Body length a batch with these counts must declare.</summary>
    public static ulong BodyLength(int descriptorCount, int fullPages, int pageSize) =>
        FixedLength + (ulong)descriptorCount * PageDescriptor.WireLength + (ulong)fullPages * (ulong)pageSize;

    internal static void WritePrefix(Span<byte> destination, ulong roundId, ReadOnlySpan<PageDescriptor> descriptors)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(destination, roundId);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[8..], (uint)descriptors.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[12..], 0);
        Span<byte> d = destination[FixedLength..];
        for (int i = 0; i < descriptors.Length; i++)
            descriptors[i].Write(d.Slice(i * PageDescriptor.WireLength, PageDescriptor.WireLength));
    }
}
