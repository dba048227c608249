using System.Buffers.Binary;
using KvmPresync.Wire;
using static KvmPresync.Tests.Wire.WireTestSupport;

namespace KvmPresync.Tests.Wire;

/// <summary>Hello decoding: magic, version, options, hash algorithm and every memory-layout rule.</summary>
public sealed class HelloValidationTests
{
    /// <summary>A Hello body with arbitrary (unvalidated) fields.</summary>
    private static byte[] RawHello(ReadOnlySpan<byte> magic, ushort major, uint pageSize, (uint Id, ulong Gpa, ulong Size)[] slots,
        uint hash = 1, uint options = 0, uint? slotCount = null, ushort minor = 0)
    {
        byte[] b = new byte[Hello.FixedLength + slots.Length * LayoutSlot.WireLength];
        magic.CopyTo(b);
        BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(4), major);
        BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(6), minor);
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(8), pageSize);
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(12), hash);
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(16), options);
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(20), slotCount ?? (uint)slots.Length);
        for (int i = 0; i < slots.Length; i++)
        {
            Span<byte> s = b.AsSpan(Hello.FixedLength + i * LayoutSlot.WireLength);
            BinaryPrimitives.WriteUInt32LittleEndian(s, slots[i].Id);
            BinaryPrimitives.WriteUInt64LittleEndian(s[8..], slots[i].Gpa);
            BinaryPrimitives.WriteUInt64LittleEndian(s[16..], slots[i].Size);
        }
        return b;
    }

    private static ProtocolException Fails(byte[] body) => Assert.Throws<ProtocolException>(() => Hello.Read(body));

    private static readonly (uint, ulong, ulong)[] OneSlot = [(0, 0, 1 << 20)];

    [Fact]
    public void Valid_raw_hello_decodes()
    {
        Hello h = Hello.Read(RawHello("KPSY"u8, 1, 4096, [(0, 0, 1 << 20), (5, 1UL << 32, 1 << 21)], options: 3, minor: 7));
        Assert.Equal(new ProtocolVersion(1, 7), h.Version);
        Assert.Equal(256 + 512, h.Layout.TotalPages);
        Assert.Equal(HelloOptions.ZeroPages | HelloOptions.UnchangedPages, h.Options);
    }

    [Fact]
    public void Wrong_magic_is_refused()
    {
        var e = Fails(RawHello("HTTP"u8, 1, 4096, OneSlot));
        Assert.Equal(ProtocolError.BadMagic, e.Error);
        Assert.Contains("not a KvmPresync sender", e.Message);
    }

    [Fact]
    public void Other_major_version_is_refused_before_the_rest_is_parsed()
    {
        // Version 2's rest is garbage for version 1: the major is checked first.
        byte[] body = RawHello("KPSY"u8, 2, 12345, OneSlot, hash: 99);
        var e = Fails(body);
        Assert.Equal(ProtocolError.VersionMismatch, e.Error);
        Assert.Equal($"Hello: sender speaks protocol 2.0, this side speaks {ProtocolVersion.Current} (major versions must match)", e.Message);
    }

    [Fact]
    public void Unknown_hash_algorithm_and_options_are_refused()
    {
        Assert.Equal(ProtocolError.UnknownHashAlgorithm, Fails(RawHello("KPSY"u8, 1, 4096, OneSlot, hash: 0)).Error);
        Assert.Equal(ProtocolError.UnknownHashAlgorithm, Fails(RawHello("KPSY"u8, 1, 4096, OneSlot, hash: 4)).Error);
        Assert.Equal(ProtocolError.UnknownOption, Fails(RawHello("KPSY"u8, 1, 4096, OneSlot, options: 1u << 9)).Error);
    }

    [Theory]
    [InlineData(0u)]
    [InlineData(1000u)]
    [InlineData(2048u)]
    [InlineData(4097u)]
    [InlineData(4u * 1024 * 1024)]
    public void Bad_page_size_is_refused(uint pageSize) =>
        Assert.Equal(ProtocolError.BadPageSize, Fails(RawHello("KPSY"u8, 1, pageSize, [(0, 0, 8UL << 20)])).Error);

    [Fact]
    public void Too_many_slots_is_refused_before_the_length_is_checked()
    {
        var e = Fails(RawHello("KPSY"u8, 1, 4096, [], slotCount: WireLimits.MaxSlots + 1));
        Assert.Equal(ProtocolError.TooManySlots, e.Error);
        Assert.Equal("Hello announces 513 memory slots, the limit is 512", e.Message);
    }

    [Fact]
    public void Slot_count_must_match_the_body_length()
    {
        Assert.Equal(ProtocolError.BodyLengthMismatch, Fails(RawHello("KPSY"u8, 1, 4096, OneSlot, slotCount: 2)).Error);
    }

    [Fact]
    public void Overlapping_slots_are_refused()
    {
        var e = Fails(RawHello("KPSY"u8, 1, 4096, [(0, 0, 1 << 20), (1, 0x80000, 1 << 20)]));
        Assert.Equal(ProtocolError.SlotOverlap, e.Error);
        Assert.Contains("overlaps", e.Message);
    }

    [Fact]
    public void Misaligned_slot_is_refused()
    {
        var e = Fails(RawHello("KPSY"u8, 1, 4096, [(0, 0x1800, 1 << 20)]));
        Assert.Equal(ProtocolError.SlotMisaligned, e.Error);
        Assert.Equal("memory layout slot 0 (id 0): address 0x1800 is not aligned to the 4096-byte page size", e.Message);
    }

    [Fact]
    public void Slot_size_must_be_a_nonzero_page_multiple()
    {
        Assert.Equal(ProtocolError.SlotSizeInvalid, Fails(RawHello("KPSY"u8, 1, 4096, [(0, 0, 4095)])).Error);
        Assert.Equal(ProtocolError.SlotSizeInvalid, Fails(RawHello("KPSY"u8, 1, 4096, [(0, 0, 0)])).Error);
        Assert.Equal(ProtocolError.SlotSizeInvalid, Fails(RawHello("KPSY"u8, 1, 4096, [(0, ulong.MaxValue - 4095, 8192)])).Error);
    }

    [Fact]
    public void Total_memory_over_the_cap_is_refused()
    {
        ulong half = WireLimits.MaxTotalMemoryBytes / 2;
        var e = Fails(RawHello("KPSY"u8, 1, 4096, [(0, 0, half), (1, half, half), (2, 2 * half, 4096)]));
        Assert.Equal(ProtocolError.LayoutTooLarge, e.Error);
    }

    [Fact]
    public void Duplicate_slot_ids_are_refused() =>
        Assert.Equal(ProtocolError.DuplicateSlotId, Fails(RawHello("KPSY"u8, 1, 4096, [(3, 0, 4096), (3, 8192, 4096)])).Error);

    [Fact]
    public void Slot_reserved_field_must_be_zero()
    {
        byte[] body = RawHello("KPSY"u8, 1, 4096, OneSlot);
        body[Hello.FixedLength + 4] = 1;
        Assert.Equal(ProtocolError.UnknownFlags, Fails(body).Error);
    }

    [Fact]
    public async Task Hello_with_too_many_slots_is_refused_at_the_frame_header()
    {
        ulong declared = Hello.FixedLength + (ulong)(WireLimits.MaxSlots + 1) * LayoutSlot.WireLength;
        var e = await ReadFails(ReaderOver(Frame(FrameType.Hello, [], declaredLength: declared)), (_, _) => Task.CompletedTask);
        Assert.Equal(ProtocolError.FrameTooLarge, e.Error);
    }
}
