using System.Buffers.Binary;

namespace KvmPresync.Wire;

/// <summary>
/// One page of a PageBatch: 24 bytes on the wire —
/// <c>u64 page number (guest page frame number = GPA / page size), u32 kind (PageKind), u32 reserved (0), u64 hash</c>.
/// The hash is the page's 64-bit content hash under the negotiated <see cref="PageHashAlgorithm"/> (for Zero pages: the hash of a zero page).
/// </summary>
public readonly record struct PageDescriptor(ulong PageNumber, PageKind Kind, ulong Hash)
{
    public const int WireLength = 24;

    internal void Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(destination, PageNumber);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[8..], (uint)Kind);
        BinaryPrimitives.WriteUInt32LittleEndian(destination[12..], 0);
        BinaryPrimitives.WriteUInt64LittleEndian(destination[16..], Hash);
    }

    /// <summary>Decodes descriptor <paramref name="index"/> and checks kind, reserved bits and that the page is inside the layout.</summary>
    internal static PageDescriptor Read(ReadOnlySpan<byte> source, int index, MemoryLayout layout, HelloOptions options)
    {
        ulong page = BinaryPrimitives.ReadUInt64LittleEndian(source);
        uint kind = BinaryPrimitives.ReadUInt32LittleEndian(source[8..]);
        uint reserved = BinaryPrimitives.ReadUInt32LittleEndian(source[12..]);
        ulong hash = BinaryPrimitives.ReadUInt64LittleEndian(source[16..]);
        if (kind is not ((uint)PageKind.Full or (uint)PageKind.Zero or (uint)PageKind.Unchanged))
            throw new ProtocolException(ProtocolError.UnknownPageKind, Field(index, "kind"), kind,
                $"PageBatch descriptor {index}: page kind {kind} is not Full (1), Zero (2) or Unchanged (3)");
        if ((PageKind)kind == PageKind.Zero && !options.HasFlag(HelloOptions.ZeroPages)
            || (PageKind)kind == PageKind.Unchanged && !options.HasFlag(HelloOptions.UnchangedPages))
            throw new ProtocolException(ProtocolError.UnknownPageKind, Field(index, "kind"), kind,
                $"PageBatch descriptor {index}: page kind {(PageKind)kind} was not negotiated in the handshake (options {options})");
        if (reserved != 0)
            throw new ProtocolException(ProtocolError.UnknownFlags, Field(index, "reserved"), reserved,
                $"PageBatch descriptor {index}: reserved field is 0x{reserved:x8}, must be 0");
        if (!layout.Contains(page))
            throw new ProtocolException(ProtocolError.PageOutOfRange, Field(index, "page"), page,
                $"PageBatch descriptor {index}: page {page} is outside the announced layout ({layout.TotalPages} pages)");
        return new PageDescriptor(page, (PageKind)kind, hash);
    }

    // Built only when a descriptor fails: the per-page path allocates nothing.
    private static string Field(int index, string name) => $"PageBatch.descriptor[{index}].{name}";
}
