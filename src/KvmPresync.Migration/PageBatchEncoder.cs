using KvmPresync.Core;
using KvmPresync.Engine;
using KvmPresync.Memory;
using KvmPresync.Migration.Compression;
using KvmPresync.Wire;

namespace KvmPresync.Migration;

/// <summary>What one send of a page set did.</summary>
internal readonly record struct SendCounts(long Sent, long Unchanged, long Zero);

/// <summary>
/// Turns a set of pages into PageBatch frames: hashes each page straight from guest memory, skips a page
/// whose content the receiver already holds (same hash as last sent; the receiver starts all-zero), sends
/// zero pages as a flag and every other page as a payload that points into the guest mapping.
/// <para>
/// The last-sent hashes are a <see cref="PageHashTree"/> (<see cref="SentHashes"/>): once the paused delta is sent it holds
/// the hash of every page as the source has it (a page not sent since it was last written is in the pending set, and
/// the paused delta sends every pending page), so the switchover's memory digest is computed from it in O(delta).
/// </para>
/// </summary>
internal sealed class PageBatchEncoder
{
    private readonly GuestMemoryMap _memory;
    private FrameWriter _writer;
    private readonly int _batchPages;
    private readonly PageHashTree _lastSentHash;
    private readonly DirtyBitmap _sentSinceHarvest; // sent after the last harvest: a write during the send shows in the next one
    private readonly DirtyBitmap _maybeTorn;        // such pages: what landed may differ from what was hashed, never skip them
    private readonly PageDescriptor[] _descriptors;
    private readonly List<ReadOnlyMemory<byte>> _payloads;
    private readonly long[] _pageList;
    private readonly (long Page, ulong Hash)[] _batchHashes;
    private readonly BatchCompressor? _compressor;

    /// <param name="compressor">Compresses batches where it pays (null: every batch raw).</param>
    /// <param name="sharedHashes">
    /// The last-sent hash tree shared with the encoders of the other streams of a MultiStream migration (each sends only its
    /// own pages; a batch's hashes go in under the tree's lock); null: a tree of its own.
    /// </param>
    public PageBatchEncoder(GuestMemoryMap memory, FrameWriter writer, int batchPages, BatchCompressor? compressor = null, PageHashTree? sharedHashes = null)
    {
        _compressor = compressor;
        ArgumentOutOfRangeException.ThrowIfLessThan(batchPages, 1);
        _memory = memory;
        _writer = writer;
        _batchPages = batchPages;
        if (sharedHashes is not null && sharedHashes.PageCount != memory.PageCount)
            throw new ArgumentException($"a last-sent hash tree of {sharedHashes.PageCount} pages for {memory.PageCount} pages", nameof(sharedHashes));
        _lastSentHash = sharedHashes ?? new PageHashTree(memory.PageCount, memory.PageSize, PageHasher.ZeroPageHash(memory.PageSize)); // what the receiver's fresh memory holds
        if (sharedHashes is null) _lastSentHash.Compute(); // the whole tree once now; from here on each digest re-hashes only what was sent since
        _sentSinceHarvest = new DirtyBitmap(memory.PageCount);
        _maybeTorn = new DirtyBitmap(memory.PageCount);
        _descriptors = new PageDescriptor[batchPages];
        _payloads = new List<ReadOnlyMemory<byte>>(batchPages);
        _pageList = new long[memory.PageCount];
        _batchHashes = new (long, ulong)[batchPages];
    }

    public long BytesWritten => _writer.BytesWritten;

    /// <summary>The hash of what this encoder last sent of each page (the receiver's fresh memory: the zero-page hash).</summary>
    public PageHashTree SentHashes => _lastSentHash;

    /// <summary>
    /// A harvest was taken: a page sent since the previous one and dirty in it was written while (or after) it was hashed
    /// and sent, so the receiver may hold it torn. It is not skipped by hash until it was sent again (a page torn in flight
    /// whose content then returned to what was hashed would otherwise be skipped and leave the receiver torn).
    /// </summary>
    public void OnHarvest(DirtyBitmap harvest)
    {
        ReadOnlySpan<ulong> dirty = harvest.ReadOnlyWords;
        Span<ulong> sent = _sentSinceHarvest.Words, torn = _maybeTorn.Words;
        for (int w = 0; w < sent.Length; w++)
        {
            if (sent[w] == 0) continue;
            torn[w] |= sent[w] & dirty[w];
            sent[w] = 0;
        }
    }

    /// <summary>
    /// After a reconnection: write to the new connection; a batch the lost connection did not take is dropped (its pages
    /// are still pending, their last-sent hashes unchanged).
    /// </summary>
    public void UseWriter(FrameWriter writer)
    {
        _writer = writer;
        _payloads.Clear();
    }

    /// <summary>
    /// A resumed session: the receiver holds pages with <paramref name="receiverHashes"/>. Every page whose hash differs from
    /// what this encoder last sent is set in <paramref name="differs"/> (it never landed, landed torn, or the receiver lost
    /// it); from now on the receiver's hash is the page's last-sent hash. Returns how many differ.
    /// </summary>
    public long AdoptReceiverHashes(ReadOnlySpan<ulong> receiverHashes, DirtyBitmap differs)
    {
        if (receiverHashes.Length != _lastSentHash.PageCount)
            throw new ArgumentException($"{receiverHashes.Length} receiver hashes for {_lastSentHash.PageCount} pages", nameof(receiverHashes));
        long count = 0;
        for (int p = 0; p < receiverHashes.Length; p++)
        {
            if (receiverHashes[p] == _lastSentHash[p]) continue;
            differs.Set(p);
            _lastSentHash.Set(p, receiverHashes[p]);
            count++;
        }
        _sentSinceHarvest.Clear(); // the receiver's hashes say exactly what it holds
        _maybeTorn.Clear();
        return count;
    }

    /// <summary>The receiver has nothing (a fresh, all-zero destination): forget every last-sent hash.</summary>
    public void ForgetSent()
    {
        _lastSentHash.Reset(PageHasher.ZeroPageHash(_memory.PageSize));
        _sentSinceHarvest.Clear();
        _maybeTorn.Clear();
    }

    /// <summary>Sends every page set in <paramref name="pages"/>; returns when the transport has taken them all.</summary>
    /// <param name="skipUnchanged">
    /// Skip pages whose hash equals the last one sent. Off for the paused final delta: a page read while the guest
    /// ran may have reached the receiver torn (different from what was hashed), and a page that later returns to
    /// the hashed content must then still be sent.
    /// </param>
    /// <param name="stopEarly">
    /// Asked once before each batch, with the pages of <paramref name="pages"/> not yet sent or skipped: true stops the send
    /// there (a launch came, or the launch target); the pages not sent are removed from <paramref name="pages"/>, so what is
    /// left in it is exactly what the transport took or the receiver already holds.
    /// </param>
    public async Task<SendCounts> SendAsync(ulong round, DirtyBitmap pages, CancellationToken ct, bool skipUnchanged = true, Func<long, bool>? stopEarly = null)
    {
        long sent = 0, unchanged = 0, zero = 0;
        int n = 0;
        bool ask = stopEarly is not null; // once a batch: pages skipped as unchanged do not ask again
        (long Page, ulong Hash)[] batchHashes = _batchHashes;
        int listed = List(pages);
        try
        {
            for (int i = 0; i < listed; i++)
            {
                if (ask && n == 0)
                {
                    ask = false;
                    if (stopEarly!(listed - i))
                    {
                        for (int j = i; j < listed; j++) pages[_pageList[j]] = false;
                        break;
                    }
                }
                long page = _pageList[i];
                ulong hash = PageHasher.Hash(_memory.Page(page), out bool isZero);
                if (skipUnchanged && hash == _lastSentHash[page] && !_maybeTorn[page])
                {
                    unchanged++;
                    continue;
                }
                if (isZero)
                {
                    _descriptors[n] = new PageDescriptor(PageNumberOf(page), PageKind.Zero, hash);
                    zero++;
                }
                else
                {
                    _descriptors[n] = new PageDescriptor(PageNumberOf(page), PageKind.Full, hash);
                    _payloads.Add(_memory.PageMemory(page));
                }
                batchHashes[n++] = (page, hash);
                sent++;
                if (n == _batchPages)
                {
                    await FlushAsync(round, n, batchHashes, ct).ConfigureAwait(false);
                    n = 0;
                    ask = stopEarly is not null;
                }
            }
            if (n > 0) await FlushAsync(round, n, batchHashes, ct).ConfigureAwait(false);
            if (_compressor is not null) await _compressor.DrainAsync().ConfigureAwait(false); // the last compressed batch taken too
        }
        catch
        {
            _compressor?.Abandon(); // a write still in flight fails with the connection; nothing waits for it
            throw;
        }
        return new SendCounts(sent, unchanged, zero);
    }

    /// <summary>The set pages in ascending order, into a buffer reused across rounds.</summary>
    private int List(DirtyBitmap pages)
    {
        int n = 0;
        foreach (long page in pages) _pageList[n++] = page;
        return n;
    }

    private async Task FlushAsync(ulong round, int count, (long Page, ulong Hash)[] hashes, CancellationToken ct)
    {
        if (_compressor is null) await _writer.WritePageBatchAsync(round, _descriptors.AsMemory(0, count), _payloads, ct).ConfigureAwait(false);
        else await _compressor.WriteAsync(_writer, round, _descriptors.AsMemory(0, count), _payloads, ct).ConfigureAwait(false);
        lock (_lastSentHash) // shared by the streams' encoders (the tree's stale-node lists are not thread-safe)
            for (int i = 0; i < count; i++) _lastSentHash.Set(hashes[i].Page, hashes[i].Hash);
        for (int i = 0; i < count; i++)
        {
            long page = hashes[i].Page;
            _sentSinceHarvest.Set(page);
            _maybeTorn[page] = false;
        }
        _payloads.Clear();
    }

    /// <summary>The wire names a page by its guest page frame number (guest-physical address / page size).</summary>
    private ulong PageNumberOf(long page) => _memory.GuestPhysicalAddressOf(page) / (ulong)_memory.PageSize;
}
