using System.Buffers;
using KvmPresync.Core;
using KvmPresync.Engine;
using KvmPresync.Memory;
using KvmPresync.Wire;

namespace KvmPresync.Migration;

/// <summary>
/// The destination's guest memory while it is being filled: applies each PageBatch straight into the target's memory,
/// keeps every page's hash as it lands (fresh memory is all zero) in a <see cref="PageHashTree"/> and counts what each
/// round applied, so FinalState's digest is checked without re-reading memory, in O(pages changed since the last check).
/// <para>
/// With a write tracker (<see cref="ReceiverOptions.TrackWrites"/>: the pages written through the destination's own
/// mapping, by anyone), every page written since the previous scan is hashed again from its bytes at each round's end
/// (<see cref="CatchUp"/>: at RoundEnd, and after Launch when the next live round's first batch arrives) and at the
/// switchover — the receiver's own writes and any other — so a page changed on the destination after it landed is
/// caught by the digest too. Without one, the hashes are those of the bytes as they landed.
/// </para>
/// </summary>
internal sealed class ReceivedMemory
{
    private readonly MemoryLayout _layout;
    private readonly GuestMemoryMap _memory;
    private readonly PageHashTree _digest;
    private readonly ulong _zeroHash;
    private IDirtyPageSource? _writes;
    private readonly DirtyBitmap? _written;
    private long _roundBytes, _roundPages;

    private ReceivedMemory(MemoryLayout layout, GuestMemoryMap memory, IDirtyPageSource? writes)
    {
        _layout = layout;
        _memory = memory;
        _zeroHash = PageHasher.ZeroPageHash(memory.PageSize);
        _digest = new PageHashTree(memory.PageCount, memory.PageSize, _zeroHash);
        _digest.Compute(); // the whole tree once now (O(memory), before any page arrives); later digests re-hash what changed
        _writes = writes;
        if (writes is not null) _written = new DirtyBitmap(memory.PageCount);
    }

    /// <summary>The layout this memory was attached for.</summary>
    public MemoryLayout Layout => _layout;

    /// <summary>Pages in the layout (the index range of <see cref="PageHash"/>).</summary>
    public long PageCount => _memory.PageCount;

    /// <summary>The hash of what page <paramref name="index"/> (linear index) holds now.</summary>
    public ulong PageHash(long index) => _digest[index];

    /// <summary>Whether writes to the destination's memory are tracked (and re-hashed at each round end and at the switchover).</summary>
    public bool TracksWrites => _writes is not null;

    /// <summary>Pages hashed again because the write tracker reported them (all rounds).</summary>
    public long PagesRehashed { get; private set; }

    /// <summary>Pages applied so far (all rounds).</summary>
    public long PagesApplied => Interlocked.Read(ref _pagesApplied);

    private long _pagesApplied; // the counters are shared by the streams of a MultiStream session, each applying its own pages

    /// <summary>
    /// The target's memory, checked against the announced layout. Throws <see cref="ReceiverFailedException"/> when it
    /// does not match (or the target cannot produce it).
    /// </summary>
    public static ReceivedMemory Attach(MemoryLayout layout, IMigrationTarget target, Func<GuestMemoryMap, IDirtyPageSource>? trackWrites = null)
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
        IDirtyPageSource? writes = null;
        if (trackWrites is not null)
        {
            try
            {
                writes = trackWrites(memory);
            }
            catch (Exception e)
            {
                throw new ReceiverFailedException(AbortReason.ReceiverFailure,
                    $"could not track writes to the destination's memory ({e.GetType().Name}: {e.Message})", e);
            }
            if (writes.PageCount != memory.PageCount || writes.PageSize != memory.PageSize)
            {
                (writes as IDisposable)?.Dispose();
                throw new ReceiverFailedException(AbortReason.ReceiverFailure,
                    $"the write tracker covers {writes.PageCount} pages of {writes.PageSize} bytes; the memory has {memory.PageCount} of {memory.PageSize}");
            }
        }
        return new ReceivedMemory(layout, memory, writes);
    }

    /// <summary>Loads and compiles the digest path now, so its first use is not inside the downtime.</summary>
    public static void WarmVerification()
    {
        var warm = new PageHashTree(1, GuestMemory.HostPageSize, PageHasher.ZeroPageHash(GuestMemory.HostPageSize));
        Span<byte> digest = stackalloc byte[MemoryDigest.Size];
        MemoryDigest.ComputeFlat(warm.Hashes, warm.PageSize, digest);
        warm.Set(0, 1);
        warm.Compute(digest);
        _ = MemoryDigest.Matches(digest, new byte[MemoryDigest.Size]);
    }

    /// <summary>
    /// Moves each page of <paramref name="batch"/> (descriptors already validated by the reader) into guest memory. The pages'
    /// hashes are recorded into the tree once per batch, under one lock (several data streams apply batches at once), also
    /// when the batch fails part-way: a page torn by a failed read is recorded with the hash of what it now holds, or a
    /// resumed session would take it for the page the sender hashed.
    /// </summary>
    public async ValueTask ApplyAsync(FrameReader reader, PageBatch batch, CancellationToken cancellationToken)
    {
        long bytes = 0;
        int count = 0;
        (long Page, ulong Hash)[] landed = ArrayPool<(long, ulong)>.Shared.Rent(batch.Descriptors.Length);
        try
        {
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
                        finally
                        {
                            landed[count++] = (index, PageHasher.Hash(page.Span, out _));
                        }
                        bytes += _memory.PageSize;
                        break;
                    case PageKind.Zero:
                        page.Span.Clear();
                        landed[count++] = (index, _zeroHash);
                        break;
                    default:
                        throw new ProtocolException(ProtocolError.UnknownPageKind, $"PageBatch descriptor {i}.kind", d.Kind,
                            $"PageBatch descriptor {i}: page kind {d.Kind} was not negotiated");
                }
            }
        }
        finally
        {
            lock (_digest)
                for (int i = 0; i < count; i++) _digest.Set(landed[i].Page, landed[i].Hash);
            ArrayPool<(long, ulong)>.Shared.Return(landed);
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

    /// <summary>
    /// After a round — a sync round's Ack sent (so this does not delay the sender's RTT sample), or a live round's end, seen
    /// when the next round's first batch arrives: re-hashes the pages written since the last scan and brings the digest
    /// tree up to date, so the switchover's scan and digest cover only the paused delta.
    /// </summary>
    public void CatchUp()
    {
        RehashWritten();
        lock (_digest) _digest.Compute(stackalloc byte[PageHashTree.Size]);
    }

    /// <summary>
    /// After Launch (no RoundEnd marks a round's end then), before a batch: <see cref="CatchUp"/> when it pays. The scan walks
    /// all of memory (~7 ns per page of it, 0.4–0.6 ms for 256 MiB here, ~5 ms for 8 GiB) and hashing costs ~0.6 µs per
    /// written page, so at a round's first batch (<paramref name="roundEnded"/>) a catch-up saves the switchover time once more
    /// than 1/<see cref="ScanPagesPerHashedPage"/> of memory was applied since the last. Within a round, once more than
    /// 1/<see cref="MidRoundShare"/> was: a launch's usual rounds (movie: ~3,500 pages of 65,536) are not scanned again
    /// mid-way, but the paused delta of a guest that outruns the link (the memcached trace: 28,000 pages, re-hashed in the
    /// 20–26 ms of the destination's verification until 29 Nov 2026) is re-hashed while the link still carries it.
    /// </summary>
    public void CatchUpIfItPays(bool roundEnded)
    {
        if ((PagesApplied - _appliedAtScan) * (roundEnded ? ScanPagesPerHashedPage : MidRoundShare) < _memory.PageCount) return;
        CatchUp();
    }

    /// <summary>Within a round, a catch-up once this share of memory (1/16) landed since the last.</summary>
    internal const int MidRoundShare = 16;

    /// <summary>Pages the last <see cref="Verify"/> re-hashed from their bytes: those written since the last catch-up (0 without write tracking).</summary>
    public long PagesRehashedAtVerify { get; private set; }

    /// <summary>Pages of memory one scan walks in the time one written page takes to hash (measured ~80; rounded down).</summary>
    internal const int ScanPagesPerHashedPage = 64;

    private long _appliedAtScan; // PagesApplied at the last scan

    /// <summary>
    /// Throws unless <paramref name="final"/> describes exactly this memory (page count and digest): the hash tree's root when
    /// the session negotiated <paramref name="treeDigest"/> (1.3), else the flat digest over the same page hashes.
    /// </summary>
    public void Verify(FinalState final, bool treeDigest)
    {
        if (final.PageCount != (ulong)_memory.PageCount)
            throw new ProtocolException(ProtocolError.BodyLengthMismatch, "FinalState.pageCount", final.PageCount,
                $"FinalState describes {final.PageCount} pages; the layout has {_memory.PageCount}");
        PagesRehashedAtVerify = RehashWritten();
        Span<byte> digest = stackalloc byte[MemoryDigest.Size];
        if (treeDigest) _digest.Compute(digest);
        else MemoryDigest.ComputeFlat(_digest.Hashes, _memory.PageSize, digest);
        if (!MemoryDigest.Matches(digest, final.MemoryDigest.Span))
            throw new ReceiverFailedException(AbortReason.DigestMismatch,
                "memory digest mismatch: the destination's memory differs from the source's");
    }

    /// <summary>
    /// Hashes again, from its bytes, every page the write tracker reports written since its previous scan (the scan
    /// write-protects them again in the same call, so a later write shows in the next one). No-op without a tracker.
    /// </summary>
    private long RehashWritten()
    {
        _appliedAtScan = PagesApplied; // what lands from here on shows in the next scan
        if (_writes is null) return 0;
        DirtyBitmap written = _written!;
        written.Clear();
        _writes.Harvest(written);
        long n = 0;
        lock (_digest) // data streams may still apply batches (a catch-up between rounds)
            foreach (long page in written)
            {
                _digest.Set(page, PageHasher.Hash(_memory.Page(page), out _));
                n++;
            }
        PagesRehashed += n;
        return n;
    }

    /// <summary>Ends write tracking (when the destination is released); the digest is not checked again.</summary>
    public void StopTracking() => (TakeTracker() as IDisposable)?.Dispose();

    /// <summary>
    /// Ends write tracking after the switchover: the tracker is handed to a thread at idle priority (<see cref="IdleWork"/>)
    /// that disposes it, so the teardown does not take a CPU from the resumed guest or delay the source's reading of
    /// Resumed. The task completes when it is closed (at once without a tracker).
    /// </summary>
    public Task StopTrackingWhenIdle() =>
        TakeTracker() is IDisposable writes ? IdleWork.Start("kvmpresync write-tracker teardown", writes.Dispose) : Task.CompletedTask;

    /// <summary>The tracker, if any; from here on no scan uses it.</summary>
    private IDirtyPageSource? TakeTracker()
    {
        IDirtyPageSource? writes = _writes;
        _writes = null;
        return writes;
    }
}
