using KvmPresync.Wire;

namespace KvmPresync.Migration.Compression;

/// <summary>What compression did in one migration (MigrationResult.Compression; JSON "compression").</summary>
public sealed record CompressionStats
{
    /// <summary>What was asked for (auto, off, lz4, zstd).</summary>
    public required CompressionMode Mode { get; init; }

    /// <summary>Why no batch could be compressed, when none could (e.g. "--zero-copy", "the receiver did not accept CompressedPages").</summary>
    public string? DisabledBecause { get; init; }

    /// <summary>Batches that carried at least one Full page, by how they travelled.</summary>
    public long RawBatches { get; init; }
    public long Lz4Batches { get; init; }
    public long ZstdBatches { get; init; }

    /// <summary>Full-page payload bytes before compression (every batch).</summary>
    public long PayloadBytes { get; init; }

    /// <summary>Payload bytes that went on the wire (compressed length + 8 for a compressed batch, the pages for a raw one).</summary>
    public long PayloadWireBytes { get; init; }

    /// <summary>Raw bytes in / compressed bytes out per codec, over the batches sent that way.</summary>
    public long Lz4InBytes { get; init; }
    public long Lz4OutBytes { get; init; }
    public long ZstdInBytes { get; init; }
    public long ZstdOutBytes { get; init; }

    /// <summary>Compress attempts whose output was not smaller (sent raw), and probe attempts of a codec not then the best.</summary>
    public long NotSmaller { get; init; }
    public long Probes { get; init; }

    /// <summary>Time spent gathering and compressing (the sender's CPU cost), ms.</summary>
    public double CompressMs { get; init; }

    /// <summary>The chooser's last estimates: link bytes/s, ratio and compress throughput (bytes/s) per codec; null = never measured.</summary>
    public double? LinkBytesPerSecond { get; init; }
    public double? Lz4Ratio { get; init; }
    public double? Lz4BytesPerSecond { get; init; }
    public double? ZstdRatio { get; init; }
    public double? ZstdBytesPerSecond { get; init; }

    /// <summary>PayloadWireBytes / PayloadBytes (1 = nothing saved).</summary>
    public double Ratio => PayloadBytes == 0 ? 1 : (double)PayloadWireBytes / PayloadBytes;

    /// <summary>One line for the sender's summary.</summary>
    public string Summary()
    {
        string mode = Mode.ToString().ToLowerInvariant();
        if (DisabledBecause is { } why) return $"compression {mode}: off ({why})";
        return $"compression {mode}: payload {Format(PayloadBytes)} → {Format(PayloadWireBytes)} on the wire ({Ratio:0.000}); " +
               $"batches raw {RawBatches}, lz4 {Lz4Batches}, zstd {ZstdBatches} ({Probes} probes, {NotSmaller} not smaller); compress {CompressMs:0} ms";
    }

    internal static string Format(long bytes) => bytes >= 1 << 20 ? $"{bytes / 1048576.0:0.0} MiB" : bytes >= 1 << 10 ? $"{bytes / 1024.0:0.0} KiB" : $"{bytes} B";

    internal static PageCodec[] Codecs { get; } = [PageCodec.Lz4, PageCodec.Zstd];
}
