using System.Net;
using System.Net.Sockets;
using System.Text;
using KvmPresync.Core;
using KvmPresync.Engine;
using KvmPresync.Migration;
using KvmPresync.Migration.Compression;
using KvmPresync.Wire;

namespace KvmPresync.Tests.Migration;

/// <summary>End to end without KVM: a guest whose pages compress migrates verified with each compression mode.</summary>
public sealed class CompressedMigrationTests
{
    /// <summary>A scripted guest whose pages hold text (compressible), rewritten a few at a time with random bytes.</summary>
    private static ScriptedGuest TextGuest()
    {
        var guest = new ScriptedGuest(4096, writesPerHarvest: 8) { LaunchAfterHarvests = 12 };
        byte[] text = Encoding.ASCII.GetBytes(string.Concat(Enumerable.Range(0, 400).Select(i => $"line {i}: the quick brown fox {i * 7919 % 1000} jumps\n")));
        for (long p = 0; p < guest.Memory.PageCount; p += 3)
            text.AsSpan((int)(p * 37 % 1000), 4096).CopyTo(guest.Memory.Page(p));
        return guest;
    }

    private static async Task<(MigrationResult Sent, ReceiveResult Received)> MigrateAsync(ScriptedGuest guest, CompressionMode mode, bool zeroCopy = false) =>
        await MigrationHarness.SendToBlankReceiverAsync((socket, key) =>
        {
            var sender = new PresyncSender(guest, socket, key, new PresyncOptions
            {
                Engine = new SyncEngineOptions { Policy = SyncPolicy.Predict, LinkBitsPerSecond = 1e9, RoundInterval = TimeSpan.FromMilliseconds(50) },
                Compression = mode,
                ZeroCopy = zeroCopy,
            });
            guest.Launch = sender.Launch;
            return sender;
        });

    [Theory]
    [InlineData(CompressionMode.Lz4)]
    [InlineData(CompressionMode.Zstd)]
    [InlineData(CompressionMode.Auto)]
    public async Task Compressible_guest_migrates_verified_with_fewer_payload_bytes_on_the_wire(CompressionMode mode)
    {
        using ScriptedGuest guest = TextGuest();
        var (sent, received) = await MigrateAsync(guest, mode);
        Assert.True(sent.Succeeded, sent.Failure);
        Assert.True(sent.Verified);
        Assert.True(received.Resumed, received.Failure);
        CompressionStats c = sent.Compression!;
        TestContext.Current.SendDiagnosticMessage($"{mode}: {c.Summary()}");
        Assert.Null(c.DisabledBecause);
        Assert.True(c.PayloadBytes >= 1366L * 4096, $"{c.PayloadBytes}"); // every written page went at least once
        Assert.True(c.PayloadWireBytes <= c.PayloadBytes);
        if (mode == CompressionMode.Lz4) Assert.True(c.Lz4Batches > 0 && c.ZstdBatches == 0);
        if (mode == CompressionMode.Zstd) Assert.True(c.ZstdBatches > 0 && c.Lz4Batches == 0);
        if (mode != CompressionMode.Auto) Assert.True(c.PayloadWireBytes < c.PayloadBytes / 2, c.Summary());
    }

    [Fact]
    public async Task Off_does_not_offer_compression_and_sends_every_batch_raw()
    {
        using ScriptedGuest guest = TextGuest();
        var (sent, _) = await MigrateAsync(guest, CompressionMode.Off);
        Assert.True(sent.Succeeded, sent.Failure);
        CompressionStats c = sent.Compression!;
        Assert.Equal(0, c.Lz4Batches + c.ZstdBatches);
        Assert.Equal(c.PayloadBytes, c.PayloadWireBytes);
        Assert.True(c.RawBatches > 0);
    }

    [Fact]
    public async Task Zero_copy_sends_stay_raw_and_say_why()
    {
        using ScriptedGuest guest = TextGuest();
        var (sent, _) = await MigrateAsync(guest, CompressionMode.Auto, zeroCopy: true);
        Assert.True(sent.Succeeded, sent.Failure);
        CompressionStats c = sent.Compression!;
        Assert.Contains("zero-copy", c.DisabledBecause);
        Assert.Equal(0, c.Lz4Batches + c.ZstdBatches);
        Assert.Throws<ArgumentException>(() => new PresyncOptions { ZeroCopy = true, Compression = CompressionMode.Lz4 }.Validate());
    }
}
