using KvmPresync.Memory;
using KvmPresync.Trace;
using static KvmPresync.Tests.Trace.TraceTestSupport;

namespace KvmPresync.Tests.Trace;

public sealed class TraceRoundTripTests
{
    private static void AssertRoundTrip(long pageCount, params DirtyBitmap[] intervals)
    {
        byte[] file = Write(Header(pageCount), intervals);
        var read = ReadAll(file);
        Assert.Equal(intervals.Length, read.Count);
        for (int i = 0; i < intervals.Length; i++)
            Assert.Equal(intervals[i].ReadOnlyWords.ToArray(), read[i].ReadOnlyWords.ToArray());
    }

    [Theory]
    [InlineData(1)]
    [InlineData(63)]
    [InlineData(64)]
    [InlineData(65)]
    [InlineData(1000)]
    [InlineData(65_537)]
    public void Empty_full_and_random_bitmaps_round_trip(long pageCount)
    {
        var full = new DirtyBitmap(pageCount);
        full.SetAll();
        AssertRoundTrip(pageCount,
            new DirtyBitmap(pageCount),
            full,
            Random(pageCount, 0.01, 1),
            Random(pageCount, 0.5, 2),
            Random(pageCount, 0.99, 3),
            Pages(pageCount, 0),
            Pages(pageCount, pageCount - 1));
    }

    [Fact]
    public void Alternating_pages_worst_case_round_trips()
    {
        const long n = 10_001;
        var b = new DirtyBitmap(n);
        for (long p = 0; p < n; p += 2) b.Set(p);
        AssertRoundTrip(n, b);
    }

    [Fact]
    public void A_64_GiB_guest_with_all_pages_set_stores_in_a_few_bytes()
    {
        const long n = 16L << 20; // 16 Mi pages of 4 KiB
        var full = new DirtyBitmap(n);
        full.SetAll();
        var sparse = Random(n, 0.001, 9);
        byte[] file = Write(Header(n), [full, sparse]);
        var read = ReadAll(file);
        Assert.Equal(n, read[0].Count());
        Assert.Equal(sparse.ReadOnlyWords.ToArray(), read[1].ReadOnlyWords.ToArray());
        // Header + 2 interval headers + end record + an all-set run (a few bytes) + the compressed sparse runs.
        Assert.True(file.Length < 64 + 2 * TraceFormat.IntervalHeaderBytes + TraceFormat.EndRecordBytes + 16 + sparse.Count() * 3,
            $"file is {file.Length} bytes");
    }

    [Fact]
    public void Header_fields_timestamps_and_progress_round_trip()
    {
        var header = Header(300, "movie") with { PageSize = 2 << 20, Interval = TimeSpan.FromMilliseconds(125) };
        var stream = new MemoryStream();
        using (var writer = new TraceWriter(stream, header, leaveOpen: true))
        {
            writer.WriteInterval(TimeSpan.FromMilliseconds(125), Pages(300, 1, 2, 3), 7);
            writer.WriteInterval(TimeSpan.FromMilliseconds(125), Pages(300), 0); // equal timestamps are allowed
            writer.WriteInterval(TimeSpan.FromTicks(123_456_789), Pages(300, 299), ulong.MaxValue);
            writer.Complete();
            Assert.Equal(3, writer.IntervalsWritten);
            Assert.Equal(stream.Length, writer.BytesWritten);
        }
        using var reader = new TraceReader(new MemoryStream(stream.ToArray()), "m.kpt");
        Assert.Equal(header.PageSize, reader.Header.PageSize);
        Assert.Equal(300, reader.Header.PageCount);
        Assert.Equal(header.Interval, reader.Header.Interval);
        Assert.Equal("movie", reader.Header.Workload);
        Assert.Equal(header.Metadata, reader.Header.Metadata);
        var b = new DirtyBitmap(300);
        Assert.True(reader.TryReadInterval(b, out var i0));
        Assert.Equal(new TraceInterval(0, TimeSpan.FromMilliseconds(125), 7, 3), i0);
        Assert.True(reader.TryReadInterval(b, out var i1));
        Assert.Equal(new TraceInterval(1, TimeSpan.FromMilliseconds(125), 0, 0), i1);
        Assert.True(reader.TryReadInterval(b, out var i2));
        Assert.Equal(new TraceInterval(2, TimeSpan.FromTicks(123_456_789), ulong.MaxValue, 1), i2);
        Assert.Equal(4, b.Count()); // intervals are ORed into the caller's bitmap
        Assert.False(reader.TryReadInterval(b, out _));
        Assert.True(reader.Completed);
        Assert.False(reader.TryReadInterval(b, out _));
    }

    [Fact]
    public void Writer_rejects_backwards_time_wrong_sizes_and_writes_after_complete()
    {
        using var writer = new TraceWriter(new MemoryStream(), Header(100));
        writer.WriteInterval(TimeSpan.FromSeconds(1), new DirtyBitmap(100));
        Assert.Throws<ArgumentOutOfRangeException>(() => writer.WriteInterval(TimeSpan.FromMilliseconds(999), new DirtyBitmap(100)));
        Assert.Throws<ArgumentException>(() => writer.WriteInterval(TimeSpan.FromSeconds(2), new DirtyBitmap(101)));
        writer.Complete();
        Assert.Throws<InvalidOperationException>(() => writer.WriteInterval(TimeSpan.FromSeconds(3), new DirtyBitmap(100)));
        Assert.Throws<ArgumentOutOfRangeException>(() => new TraceWriter(new MemoryStream(), Header(100) with { PageSize = 3000 }));
    }

    [Fact]
    public void File_round_trip_through_create_and_open()
    {
        string path = Path.Combine(Path.GetTempPath(), $"kvmpresync-trace-{Guid.NewGuid():N}.kpt");
        try
        {
            using (var writer = TraceWriter.Create(path, Header(5000)))
            {
                writer.WriteInterval(TimeSpan.FromMilliseconds(50), Random(5000, 0.1, 4));
                writer.Complete();
            }
            using var reader = TraceReader.Open(path);
            var b = new DirtyBitmap(5000);
            Assert.True(reader.TryReadInterval(b, out var info));
            Assert.Equal(Random(5000, 0.1, 4).Count(), info.DirtyPages);
            Assert.False(reader.TryReadInterval(b, out _));
        }
        finally
        {
            File.Delete(path);
        }
    }
}
