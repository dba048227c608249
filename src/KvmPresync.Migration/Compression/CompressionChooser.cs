using KvmPresync.Wire;

namespace KvmPresync.Migration.Compression;

/// <summary>
/// Picks, per PageBatch, how its payload travels: raw, LZ4 or zstd. A pure object over what it is told (no clock, no I/O),
/// so it is tested alone and the benchmark asks it the same question the sender does.
/// <para>
/// It keeps running estimates of each codec's ratio (compressed / raw) and compress cost (seconds per raw byte of gathering +
/// compressing, as measured on this host under its current load), as decayed totals weighted by batch size (a 1 MiB batch
/// has weight <see cref="Weight"/>; a batch of a few pages, whose fixed cost dwarfs its bytes, next to none; a batch that
/// took ten times as long counts ten times), and of the link rate: the configured rate when the sender paces itself, else the measured
/// send rate (wire bytes / time the transport took). The sender compresses a batch while the previous one is on the wire
/// (<see cref="BatchCompressor"/> pipelines them), so in a run of batches one of <c>B</c> raw bytes is expected to take
/// <code>
///   raw:   B / link
///   codec: max(B / throughput(codec), B · ratio(codec) / link)
/// </code>
/// and the chooser picks the smallest. Raw is the baseline: a codec wins only when its measured cost is lower, so a slow
/// or loaded CPU (throughput falls) or a fast link (raw falls) turns compression off by itself, and incompressible pages
/// (ratio ≈ 1) never pay. To keep the loser's estimates current it probes: every <c>interval</c> batches it compresses
/// one batch with the codec measured longest ago; the interval starts at <see cref="MinProbeInterval"/> and doubles up
/// to <see cref="MaxProbeInterval"/> while probes keep losing, so a losing probe costs at most 1/64 of the batches.
/// </para>
/// </summary>
internal sealed class CompressionChooser
{
    public const double Weight = 0.25;
    public const int MinProbeInterval = 8;
    public const int MaxProbeInterval = 64;

    private readonly CompressionMode _mode;
    private readonly double? _configuredLink;
    private double? _measuredLink;
    private readonly Estimate[] _estimates = [new(), new(), new()]; // by PageCodec value
    private long _batch;
    private long _nextProbe;
    private int _probeInterval = MinProbeInterval;
    private PageCodec? _probing;

    /// <summary>
    /// A codec's running totals of raw bytes, compressed bytes and seconds, each decayed by (1 − <see cref="Weight"/>) per
    /// <see cref="ReferenceBatchBytes"/> of newer input: ratio and cost are totals over totals, so a batch counts by its size
    /// (a sync round of three pages, whose fixed cost dwarfs its bytes, barely moves them) and a slow batch (a preempted or
    /// loaded CPU) weighs what it cost.
    /// </summary>
    private sealed class Estimate
    {
        public double RawBytes, CompressedBytes, Seconds;
        public double? Ratio => RawBytes > 0 ? CompressedBytes / RawBytes : null;
        /// <summary>Seconds per raw byte.</summary>
        public double? SecondsPerByte => RawBytes > 0 ? Seconds / RawBytes : null;
        public double? BytesPerSecond => SecondsPerByte is { } c ? 1 / c : null;
        public long LastBatch = -1;
    }

    /// <summary>The input over which an estimate's older totals lose <see cref="Weight"/> of their weight: one default batch.</summary>
    public const long ReferenceBatchBytes = 1 << 20;

    /// <param name="mode">Off, a fixed codec, or Auto.</param>
    /// <param name="linkBytesPerSecond">The link's rate when the sender paces to a known rate; null = measure sends.</param>
    public CompressionChooser(CompressionMode mode, double? linkBytesPerSecond)
    {
        if (linkBytesPerSecond is { } l && !(l > 0 && double.IsFinite(l)))
            throw new ArgumentOutOfRangeException(nameof(linkBytesPerSecond), l, "the link rate must be positive and finite (null: measure it)");
        _mode = mode;
        _configuredLink = linkBytesPerSecond;
    }

    /// <summary>The rate the decision uses, bytes/s: configured, else measured; null before the first measured send.</summary>
    public double? LinkBytesPerSecond => _configuredLink ?? _measuredLink;

    public double? Ratio(PageCodec codec) => _estimates[(int)codec].Ratio;

    public double? BytesPerSecond(PageCodec codec) => _estimates[(int)codec].BytesPerSecond;

    /// <summary>True while the codec returned by the last <see cref="Choose"/> is a probe, not the expected best.</summary>
    public bool LastWasProbe => _probing is not null;

    /// <summary>Seeds a codec's estimates (e.g. from a benchmark) instead of waiting for the first probe.</summary>
    public void Seed(PageCodec codec, double ratio, double bytesPerSecond)
    {
        Estimate e = _estimates[(int)Check(codec)];
        e.RawBytes = ReferenceBatchBytes;
        e.CompressedBytes = ratio * ReferenceBatchBytes;
        e.Seconds = ReferenceBatchBytes / bytesPerSecond;
    }

    /// <summary>Expected seconds for a batch of <paramref name="rawBytes"/> sent with <paramref name="codec"/>; null when not yet estimable.</summary>
    /// <param name="cpuScale">The codecs' measured speeds taken that many times higher: what-if the compressor had more CPU (<see cref="CpuFreed"/>).</param>
    public double? ExpectedSeconds(PageCodec codec, long rawBytes, double cpuScale = 1)
    {
        if (LinkBytesPerSecond is not { } link) return null;
        if (codec == PageCodec.None) return rawBytes / link;
        Estimate e = _estimates[(int)codec];
        if (e.Ratio is not { } ratio || e.BytesPerSecond is not { } speed) return null;
        return Math.Max(rawBytes / (speed * CheckScale(cpuScale)), rawBytes * ratio / link); // compressing overlaps the previous batch's send
    }

    /// <summary>The codec expected to send <paramref name="rawBytes"/> fastest, among those measured (raw when none is).</summary>
    /// <param name="cpuScale">As for <see cref="ExpectedSeconds"/>.</param>
    public PageCodec Best(long rawBytes, double cpuScale = 1)
    {
        PageCodec best = PageCodec.None;
        double bestTime = ExpectedSeconds(PageCodec.None, rawBytes) ?? double.PositiveInfinity;
        foreach (PageCodec c in CompressionStats.Codecs)
            if (ExpectedSeconds(c, rawBytes, cpuScale) is { } t && t < bestTime)
                (best, bestTime) = (c, t);
        return best;
    }

    /// <summary>
    /// The compressor's share of the CPU grew <paramref name="factor"/> times (the guest paused and gave back the CPU it
    /// used): every codec's measured speed is taken that many times higher, and the batches compressed from now on correct
    /// it. The choice follows at once: otherwise a codec that loses beside the running guest and wins paused waits for its
    /// next probe, up to <see cref="MaxProbeInterval"/> batches (the memcached trace's paused delta: LZ4 for its first
    /// 35–39 batches until a zstd probe found zstd faster; 553 ms when the probe came at the second batch, 610–690 ms
    /// otherwise, 29 Nov 2026). A factor of 1 or less changes nothing.
    /// </summary>
    public void CpuFreed(double factor)
    {
        if (!(CheckScale(factor) > 1)) return;
        foreach (Estimate e in _estimates) e.Seconds /= factor;
    }

    private static double CheckScale(double scale) =>
        scale > 0 && double.IsFinite(scale) ? scale : throw new ArgumentOutOfRangeException(nameof(scale), scale, "a CPU scale must be a positive, finite factor (1 = as measured)");

    /// <summary>How to send the next batch of <paramref name="rawBytes"/> Full-page bytes; call <see cref="Compressed"/> after compressing.</summary>
    public PageCodec Choose(long rawBytes)
    {
        _probing = null;
        _batch++;
        switch (_mode)
        {
            case CompressionMode.Off: return PageCodec.None;
            case CompressionMode.Lz4: return PageCodec.Lz4;
            case CompressionMode.Zstd: return PageCodec.Zstd;
        }
        if (LinkBytesPerSecond is null) return PageCodec.None; // a raw send measures the link first
        foreach (PageCodec c in CompressionStats.Codecs)
            if (_estimates[(int)c].Ratio is null) return Probe(c);
        PageCodec best = Best(rawBytes);
        if (_batch < _nextProbe) return best;
        PageCodec oldest = PageCodec.None;
        foreach (PageCodec c in CompressionStats.Codecs)
            if (c != best && (oldest == PageCodec.None || _estimates[(int)c].LastBatch < _estimates[(int)oldest].LastBatch))
                oldest = c;
        return Probe(oldest);
    }

    private PageCodec Probe(PageCodec codec)
    {
        _probing = codec;
        return codec;
    }

    /// <summary>A batch of <paramref name="rawBytes"/> took <paramref name="seconds"/> to gather and compress into <paramref name="compressedBytes"/>.</summary>
    /// <param name="probe">Whether the batch was a probe (<see cref="LastWasProbe"/> when it was chosen); null: the last choice's.</param>
    public void Compressed(PageCodec codec, long rawBytes, long compressedBytes, double seconds, bool? probe = null)
    {
        Estimate e = _estimates[(int)Check(codec)];
        if (rawBytes <= 0) return;
        double decay = Math.Pow(1 - Weight, (double)rawBytes / ReferenceBatchBytes);
        e.RawBytes = e.RawBytes * decay + rawBytes;
        e.CompressedBytes = e.CompressedBytes * decay + Math.Min(compressedBytes, rawBytes); // not smaller: it goes raw, so at worst 1
        e.Seconds = e.Seconds * decay + Math.Max(seconds, 1e-9);
        e.LastBatch = _batch;
        if ((probe ?? _probing == codec) && _mode == CompressionMode.Auto)
        {
            // a probe that would now be chosen resets the interval; a losing one backs off
            bool wins = Best(rawBytes) == codec;
            _probeInterval = wins ? MinProbeInterval : Math.Min(_probeInterval * 2, MaxProbeInterval);
            _nextProbe = _batch + _probeInterval;
        }
    }

    /// <summary>The transport took <paramref name="wireBytes"/> in <paramref name="seconds"/> (feeds the measured link rate).</summary>
    public void Sent(long wireBytes, double seconds)
    {
        if (wireBytes <= 0 || !(seconds > 0)) return;
        double rate = wireBytes / seconds;
        _measuredLink = _measuredLink is { } m ? m + Weight * (rate - m) : rate;
    }

    private static PageCodec Check(PageCodec codec) =>
        codec is PageCodec.Lz4 or PageCodec.Zstd ? codec : throw new ArgumentOutOfRangeException(nameof(codec), codec, "not a compression codec");
}
