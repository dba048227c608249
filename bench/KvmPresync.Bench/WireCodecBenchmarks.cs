using BenchmarkDotNet.Attributes;
using KvmPresync.Wire;

namespace KvmPresync.Bench;

/// <summary>
/// Cost of the PageBatch codec around the page bytes: encoding (header + descriptors, payloads passed through
/// by reference) and decoding (validation + payload reads straight into a guest buffer). The baseline is the
/// bare copy of the same payload bytes, i.e. what any receiver must pay at least.
/// </summary>
[MemoryDiagnoser]
public class WireCodecBenchmarks
{
    private const int PageSize = 4096;

    private readonly MemoryLayout _layout = MemoryLayout.SingleSlot(PageSize, 64UL << 20);
    private byte[] _guestOut = [];
    private byte[] _guestIn = [];
    private PageDescriptor[] _descriptors = [];
    private ReadOnlyMemory<byte>[] _payloads = [];
    private byte[] _encoded = [];
    private MemoryStream _input = new();
    private FrameReader _reader = null!;
    private FrameWriter _writer = null!;

    [Params(64, 1024)]
    public int Pages { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _guestOut = new byte[Pages * 2 * PageSize];
        _guestIn = new byte[Pages * 2 * PageSize];
        new Random(1).NextBytes(_guestOut);
        // Every other page: no two payloads adjacent, the worst case for run merging.
        _descriptors = Enumerable.Range(0, Pages).Select(i => new PageDescriptor((ulong)(2 * i), PageKind.Full, (ulong)i)).ToArray();
        _payloads = _descriptors.Select(d => (ReadOnlyMemory<byte>)_guestOut.AsMemory((int)d.PageNumber * PageSize, PageSize)).ToArray();

        var encoded = new MemoryStream();
        var writer = new FrameWriter(encoded);
        writer.UseSession(_layout, HelloOptions.All);
        writer.WritePageBatchAsync(1, _descriptors, _payloads).AsTask().GetAwaiter().GetResult();
        _encoded = encoded.ToArray();

        _input = new MemoryStream(_encoded, writable: false);
        _reader = new FrameReader(_input);
        _reader.UseSession(_layout, HelloOptions.All);
        _writer = new FrameWriter(new DiscardingTransport());
        _writer.UseSession(_layout, HelloOptions.All);
    }

    [Benchmark(Baseline = true, Description = "memcpy of the payload bytes")]
    public void CopyPayloads()
    {
        for (int i = 0; i < _descriptors.Length; i++)
            _payloads[i].Span.CopyTo(_guestIn.AsSpan((int)_descriptors[i].PageNumber * PageSize, PageSize));
    }

    [Benchmark(Description = "decode PageBatch, payloads into guest")]
    public async Task DecodeBatch()
    {
        _input.Position = 0;
        PageBatch batch = await _reader.ReadPageBatchAsync(await _reader.ReadHeaderAsync());
        ReadOnlySpan<PageDescriptor> descriptors = batch.Descriptors.Span;
        for (int i = 0; i < descriptors.Length; i++)
            _reader.ReadPayload(_guestIn.AsSpan((int)descriptors[i].PageNumber * PageSize, PageSize));
    }

    [Benchmark(Description = "encode PageBatch (payloads by reference)")]
    public ValueTask EncodeBatch() => _writer.WritePageBatchAsync(1, _descriptors, _payloads);

    /// <summary>Accepts segments without touching their bytes: isolates the writer's own cost.</summary>
    private sealed class DiscardingTransport : IGatherWriter
    {
        public long Bytes;

        public ValueTask WriteAsync(IReadOnlyList<ReadOnlyMemory<byte>> segments, CancellationToken cancellationToken)
        {
            for (int i = 0; i < segments.Count; i++) Bytes += segments[i].Length;
            return ValueTask.CompletedTask;
        }
    }
}
