using System.Buffers.Binary;
using System.IO.Hashing;
using KvmPresync.Memory;
using KvmPresync.Trace;
using static KvmPresync.Tests.Trace.TraceTestSupport;

namespace KvmPresync.Tests.Trace;

public sealed class TraceCorruptionTests
{
    private static byte[] SmallTrace(bool complete = true) =>
        Write(Header(200), [Pages(200, 1, 2, 3, 150), Random(200, 0.5, 7), new DirtyBitmap(200)], complete);

    private static int HeaderLength(byte[] file) => (int)BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(12));

    /// <summary>A trace whose header is valid, followed by the given raw interval record bytes.</summary>
    private static byte[] WithRecord(long pageCount, byte[] record)
    {
        byte[] headerOnly = Write(Header(pageCount), [], complete: false);
        return [.. headerOnly, .. record];
    }

    /// <summary>An interval record with a correct CRC over arbitrary (possibly invalid) contents.</summary>
    private static byte[] Record(uint encoding, long index, long ns, long dirtyPages, byte[] payload, int? decodedLength = null)
    {
        var r = new byte[TraceFormat.IntervalHeaderBytes + payload.Length];
        BinaryPrimitives.WriteUInt32LittleEndian(r, TraceFormat.IntervalTag);
        BinaryPrimitives.WriteUInt32LittleEndian(r.AsSpan(4), encoding);
        BinaryPrimitives.WriteInt64LittleEndian(r.AsSpan(8), index);
        BinaryPrimitives.WriteInt64LittleEndian(r.AsSpan(16), ns);
        BinaryPrimitives.WriteInt64LittleEndian(r.AsSpan(32), dirtyPages);
        BinaryPrimitives.WriteInt32LittleEndian(r.AsSpan(40), payload.Length);
        BinaryPrimitives.WriteInt32LittleEndian(r.AsSpan(44), decodedLength ?? payload.Length);
        payload.CopyTo(r, TraceFormat.IntervalHeaderBytes);
        var crc = new Crc32();
        crc.Append(r.AsSpan(0, 48));
        crc.Append(payload);
        BinaryPrimitives.WriteUInt32LittleEndian(r.AsSpan(48), crc.GetCurrentHashAsUInt32());
        return r;
    }

    private static TraceFormatException ReadFails(byte[] file, string name = "t.kpt") =>
        Assert.Throws<TraceFormatException>(() => ReadAll(file, name));

    [Fact]
    public void Every_truncation_is_reported_as_a_trace_format_error()
    {
        byte[] file = SmallTrace();
        Assert.Equal(3, ReadAll(file).Count);
        for (int length = 0; length < file.Length; length++)
        {
            var ex = ReadFails(file[..length]);
            Assert.True(ex.Problem.Contains("truncated") || ex.Problem.Contains("without an end record"), $"cut at {length}: {ex.Message}");
        }
    }

    [Fact]
    public void Every_single_bit_flip_is_detected()
    {
        byte[] file = SmallTrace();
        for (int i = 0; i < file.Length; i++)
        {
            for (int bit = 0; bit < 8; bit++)
            {
                byte[] bad = (byte[])file.Clone();
                bad[i] ^= (byte)(1 << bit);
                Assert.Throws<TraceFormatException>(() => ReadAll(bad));
            }
        }
    }

    [Fact]
    public void Truncated_interval_message_names_file_interval_and_byte()
    {
        byte[] file = SmallTrace();
        int firstRecord = HeaderLength(file);
        int cut = firstRecord + TraceFormat.IntervalHeaderBytes + 1; // interval 0 payload cut short
        var ex = ReadFails(file[..cut], "/tmp/x.kpt");
        Assert.Equal($"trace file /tmp/x.kpt: interval 0 truncated at byte {cut}", ex.Message);
        Assert.Equal("interval 0", ex.Record);
        Assert.Equal(cut, ex.ByteOffset);
    }

    [Fact]
    public void Missing_end_record_is_an_error_unless_allowed()
    {
        byte[] file = SmallTrace(complete: false);
        var ex = ReadFails(file);
        Assert.Contains("without an end record", ex.Message);
        Assert.Contains("interval 3", ex.Message);
        Assert.Equal(3, ReadAll(file, allowMissingEnd: true).Count);
    }

    [Fact]
    public void Trailing_bytes_after_the_end_record_are_rejected()
    {
        var ex = ReadFails([.. SmallTrace(), 0]);
        Assert.Equal("end record", ex.Record);
        Assert.Contains("trailing bytes", ex.Problem);
    }

    [Fact]
    public void Wrong_magic_and_unsupported_version_say_what_is_wrong()
    {
        byte[] file = SmallTrace();
        byte[] notTrace = (byte[])file.Clone();
        notTrace[0] = (byte)'X';
        Assert.Contains("not a KvmPresync dirty trace", ReadFails(notTrace).Message);

        byte[] v2 = (byte[])file.Clone();
        BinaryPrimitives.WriteUInt16LittleEndian(v2.AsSpan(8), 2);
        var ex = ReadFails(v2);
        Assert.Contains("format version 2", ex.Message);
        Assert.Equal("header", ex.Record);
    }

    [Fact]
    public void Oversized_header_length_is_rejected_before_allocating()
    {
        byte[] file = SmallTrace();
        BinaryPrimitives.WriteUInt32LittleEndian(file.AsSpan(12), uint.MaxValue);
        Assert.Contains("header length", ReadFails(file).Message);
    }

    [Fact]
    public void Run_past_the_last_page_is_rejected_even_with_a_valid_crc()
    {
        // Run starting at page 190 of length 20 in a 200-page trace: gap 190, length-1 = 19.
        byte[] file = WithRecord(200, Record(TraceFormat.EncodingRuns, 0, 50_000_000, 20, [190, 1, 19]));
        var ex = ReadFails(file);
        Assert.Contains("past the last page", ex.Message);
        Assert.Equal("interval 0", ex.Record);
    }

    [Fact]
    public void Declared_dirty_count_must_match_the_runs()
    {
        byte[] file = WithRecord(200, Record(TraceFormat.EncodingRuns, 0, 50_000_000, 5, [10, 2]));
        Assert.Contains("declares 5 dirty pages but its runs hold 3", ReadFails(file).Message);
    }

    [Fact]
    public void Out_of_order_index_unknown_encoding_and_absurd_lengths_are_rejected()
    {
        Assert.Contains("has index 1", ReadFails(WithRecord(200, Record(TraceFormat.EncodingRuns, 1, 0, 0, []))).Message);
        Assert.Contains("unknown payload encoding 9", ReadFails(WithRecord(200, Record(9, 0, 0, 0, []))).Message);
        Assert.Contains("decoded length", ReadFails(WithRecord(200, Record(TraceFormat.EncodingRuns, 0, 0, 0, [], decodedLength: int.MaxValue))).Message);
        Assert.Contains("outside 0..200", ReadFails(WithRecord(200, Record(TraceFormat.EncodingRuns, 0, 0, 201, []))).Message);
        Assert.Contains("unknown record tag", ReadFails(WithRecord(200, [1, 2, 3, 4, 5, 6])).Message);
    }

    [Fact]
    public void Number_wider_than_64_bits_is_rejected()
    {
        byte[] payload = [.. Enumerable.Repeat((byte)0xFF, 10), 0x01, 0];
        Assert.Contains("wider than 64 bits", ReadFails(WithRecord(200, Record(TraceFormat.EncodingRuns, 0, 0, 0, payload))).Message);
    }

    [Fact]
    public void Corrupt_deflate_payload_is_reported_as_a_trace_error()
    {
        byte[] garbage = [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF];
        var ex = ReadFails(WithRecord(200, Record(TraceFormat.EncodingRunsDeflate, 0, 0, 0, garbage, decodedLength: 40)));
        Assert.Equal("interval 0", ex.Record);
    }

    [Fact]
    public void Failed_reads_of_a_bitmap_of_wrong_size_are_argument_errors()
    {
        using var reader = new TraceReader(new MemoryStream(SmallTrace()), "t.kpt");
        Assert.Throws<ArgumentException>(() => reader.TryReadInterval(new DirtyBitmap(199), out _));
    }
}
