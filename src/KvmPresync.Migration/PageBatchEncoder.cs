using KvmPresync.Core;
using KvmPresync.Engine;
using KvmPresync.Memory;
using KvmPresync.Wire;

namespace KvmPresync.Migration;

/// <summary>What one send of a page set did.</summary>
public readonly record struct SendCounts(long Sent, long Unchanged, long Zero);

/// <summary>
/// Turns a set of pages into PageBatch frames: hashes each page straight from guest memory, skips a page
/// whose content the receiver already holds (same hash as last sent; the receiver starts all-zero), sends
/// zero pages as a flag and every other page as a payload that points into the guest mapping.
/// </summary>
internal sealed class PageBatchEncoder
{
    private readonly GuestMemoryMap _memory;
    private FrameWriter _writer;
    private readonly int _batchPages;
    private readonly ulong[] _lastSentHash;
    private readonly PageDescriptor[] _descriptors;
    private readonly List<ReadOnlyMemory<byte>> _payloads;
    private readonly long[] _pageList;
    private readonly (long Page, ulong Hash)[] _batchHashes;

    public PageBatchEncoder(GuestMemoryMap memory, FrameWriter writer, int batchPages)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(batchPages, 1);
        _memory = memory;
        _writer = writer;
        _batchPages = batchPages;
        _lastSentHash = new ulong[memory.PageCount];
        Array.Fill(_lastSentHash, PageHasher.ZeroPageHash(memory.PageSize)); // what the receiver's fresh memory holds
        _descriptors = new PageDescriptor[batchPages];
        _payloads = new List<ReadOnlyMemory<byte>>(batchPages);
        _pageList = new long[memory.PageCount];
        _batchHashes = new (long, ulong)[batchPages];
    }

    public long BytesWritten => _writer.BytesWritten;

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
        if (receiverHashes.Length != _lastSentHash.Length)
            throw new ArgumentException($"{receiverHashes.Length} receiver hashes for {_lastSentHash.Length} pages", nameof(receiverHashes));
        long count = 0;
        for (int p = 0; p < receiverHashes.Length; p++)
        {
            if (receiverHashes[p] == _lastSentHash[p]) continue;
            differs.Set(p);
            _lastSentHash[p] = receiverHashes[p];
            count++;
        }
        return count;
    }

    /// <summary>The receiver has nothing (a fresh, all-zero destination): forget every last-sent hash.</summary>
    public void ForgetSent() => Array.Fill(_lastSentHash, PageHasher.ZeroPageHash(_memory.PageSize));

    /// <summary>Sends every page set in <paramref name="pages"/>; returns when the transport has taken them all.</summary>
    /// <param name="skipUnchanged">
    /// Skip pages whose hash equals the last one sent. Off for the paused final delta: a page read while the guest
    /// ran may have reached the receiver torn (different from what was hashed), and a page that later returns to
    /// the hashed content must then still be sent.
    /// </param>
    /// <param name="stopEarly">
    /// Asked before each batch: true stops the send there (a launch came); the pages not sent are removed from
    /// <paramref name="pages"/>, so what is left in it is exactly what the transport took or the receiver already holds.
    /// </param>
    public async Task<SendCounts> SendAsync(ulong round, DirtyBitmap pages, CancellationToken ct, bool skipUnchanged = true, Func<bool>? stopEarly = null)
    {
        long sent = 0, unchanged = 0, zero = 0;
        int n = 0;
        (long Page, ulong Hash)[] batchHashes = _batchHashes;
        int listed = List(pages);
        for (int i = 0; i < listed; i++)
        {
            if (n == 0 && stopEarly is not null && stopEarly())
            {
                for (int j = i; j < listed; j++) pages[_pageList[j]] = false;
                break;
            }
            long page = _pageList[i];
            ulong hash = PageHasher.Hash(_memory.Page(page), out bool isZero);
            if (skipUnchanged && hash == _lastSentHash[page])
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
            }
        }
        if (n > 0) await FlushAsync(round, n, batchHashes, ct).ConfigureAwait(false);
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
        await _writer.WritePageBatchAsync(round, _descriptors.AsMemory(0, count), _payloads, ct).ConfigureAwait(false);
        for (int i = 0; i < count; i++) _lastSentHash[hashes[i].Page] = hashes[i].Hash;
        _payloads.Clear();
    }

    /// <summary>The wire names a page by its guest page frame number (guest-physical address / page size).</summary>
    private ulong PageNumberOf(long page) => _memory.GuestPhysicalAddressOf(page) / (ulong)_memory.PageSize;
}
