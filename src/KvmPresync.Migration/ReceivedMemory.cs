using KvmPresync.Core;
using KvmPresync.Engine;
using KvmPresync.Memory;
using KvmPresync.Wire;

namespace KvmPresync.Migration;

/// <summary>
/// The destination's guest memory while it is being filled: applies each PageBatch straight into the target's memory,
/// keeps every page's hash as it lands (fresh memory is all zero) and counts what each round applied, so FinalState's
/// digest can be checked without re-reading memory.
/// </summary>
internal sealed class ReceivedMemory
{
    private readonly MemoryLayout _layout;
    private readonly GuestMemoryMap _memory;
    private readonly MemoryDigest _digest;
    private readonly ulong _zeroHash;
    private long _roundBytes, _roundPages;

    private ReceivedMemory(MemoryLayout layout, GuestMemoryMap memory)
    {
        _layout = layout;
        _memory = memory;
        _digest = new MemoryDigest(memory.PageCount, memory.PageSize);
        _zeroHash = PageHasher.ZeroPageHash(memory.PageSize);
        for (long p = 0; p < memory.PageCount; p++) _digest.SetPage(p, _zeroHash);
    }

    /// <summary>The layout this memory was attached for.</summary>
    public MemoryLayout Layout => _layout;

    /// <summary>Pages in the layout (the index range of <see cref="PageHash"/>).</summary>
    public long PageCount => _memory.PageCount;

    /// <summary>The hash of what page <paramref name="index"/> (linear index) holds now.</summary>
    public ulong PageHash(long index) => _digest.PageHash(index);

    /// <summary>Pages applied so far (all rounds).</summary>
    public long PagesApplied => Interlocked.Read(ref _pagesApplied);

    private long _pagesApplied; // the counters are shared by the streams of a MultiStream session, each applying its own pages

    /// <summary>
    /// The target's memory, checked against the announced layout. Throws <see cref="ReceiverFailedException"/> when it
    /// does not match (or the target cannot produce it).
    /// </summary>
    public static ReceivedMemory Attach(MemoryLayout layout, IMigrationTarget target)
    {
        GuestMemoryMap memory;
        try
        {
            memory = target.Memory;
        }
        catch (Exception e)
        {
            throw new ReceiverFailedException(AbortReason.ReceiverFailure,
                $"the migration target could not provide its memory ({e.GetType().Name}: {e.Message})", e);
        }
        if (memory is null)
            throw new ReceiverFailedException(AbortReason.ReceiverFailure, "the migration target has no memory (Memory returned null)");
        if (MigrationLayout.Mismatch(layout, memory) is { } mismatch)
            throw new ReceiverFailedException(AbortReason.ReceiverFailure,
                $"the migration target does not match the announced layout: {mismatch}");
        return new ReceivedMemory(layout, memory);
    }

    /// <summary>Loads and compiles the digest path now, so its first use is not inside the downtime.</summary>
    public static void WarmVerification()
    {
        var warm = new MemoryDigest(1, GuestMemory.HostPageSize);
        warm.SetPage(0, PageHasher.ZeroPageHash(GuestMemory.HostPageSize));
        _ = MemoryDigest.Matches(warm.Compute(), new byte[MemoryDigest.Size]);
    }

    /// <summary>Moves each page of <paramref name="batch"/> (descriptors already validated by the reader) into guest memory.</summary>
    public async ValueTask ApplyAsync(FrameReader reader, PageBatch batch, CancellationToken cancellationToken)
    {
        long bytes = 0;
        for (int i = 0; i < batch.Descriptors.Length; i++)
        {
            PageDescriptor d = batch.Descriptors.Span[i];
            long index = _layout.Locate(d.PageNumber).LinearIndex;
            Memory<byte> page = _memory.PageMemory(index);
            switch (d.Kind)
            {
                case PageKind.Full:
                    try
                    {
                        await reader.ReadPayloadAsync(page, cancellationToken).ConfigureAwait(false);
                    }
                    catch
                    {
                        // The page may now hold part of the new bytes: its recorded hash must say what it holds, or a
                        // resumed session would take the torn page for the one the sender hashed.
                        _digest.SetPage(index, PageHasher.Hash(page.Span, out _));
                        throw;
                    }
                    _digest.SetPage(index, PageHasher.Hash(page.Span, out _));
                    bytes += _memory.PageSize;
                    break;
                case PageKind.Zero:
                    page.Span.Clear();
                    _digest.SetPage(index, _zeroHash);
                    break;
                default:
                    throw new ProtocolException(ProtocolError.UnknownPageKind, $"PageBatch descriptor {i}.kind", d.Kind,
                        $"PageBatch descriptor {i}: page kind {d.Kind} was not negotiated");
            }
        }
        Interlocked.Add(ref _roundBytes, bytes);
        Interlocked.Add(ref _roundPages, batch.Descriptors.Length);
        Interlocked.Add(ref _pagesApplied, batch.Descriptors.Length);
    }

    /// <summary>What the round just ended applied (bytes of Full payloads, pages); starts the next round's count.</summary>
    public (ulong Bytes, ulong Pages) EndRound()
    {
        return ((ulong)Interlocked.Exchange(ref _roundBytes, 0), (ulong)Interlocked.Exchange(ref _roundPages, 0));
    }

    /// <summary>Throws unless <paramref name="final"/> describes exactly this memory (page count and digest).</summary>
    public void Verify(FinalState final)
    {
        if (final.PageCount != (ulong)_memory.PageCount)
            throw new ProtocolException(ProtocolError.BodyLengthMismatch, "FinalState.pageCount", final.PageCount,
                $"FinalState describes {final.PageCount} pages; the layout has {_memory.PageCount}");
        if (!MemoryDigest.Matches(_digest.Compute(), final.MemoryDigest.Span))
            throw new ReceiverFailedException(AbortReason.DigestMismatch,
                "memory digest mismatch: the destination's memory differs from the source's");
    }
}
