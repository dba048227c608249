using System.Globalization;

namespace KvmPresync.Vmm;

/// <summary>
/// How compressible the data pages a workload guest writes are (<c>boot_info.content_lz4_permille</c>; native/guest/content.c):
/// the LZ4 compressed/raw ratio the guest aims for, in per mille. 1000 is <see cref="Random"/>: pseudo-random words no codec
/// shrinks (the content the guests wrote before this parameter). Every page stays a pure function of (seed, page, version,
/// content), so the guest's self-check is unchanged. Defaults per workload: <see cref="DefaultFor(Workload)"/>, fitted to the
/// real programs' page corpus (bench/corpus/pages; docs/WORKLOADS.md, "Page content").
/// </summary>
public sealed record PageContent
{
    /// <summary>The smallest value accepted. The guest's layout bottoms out at a page of runs only (LZ4 ≈ 0.027): lower asks all give that page.</summary>
    public const uint MinPermille = 1;

    /// <summary>The target LZ4 compressed/raw ratio in per mille, 1..1000 (1000 = <see cref="Random"/>).</summary>
    public uint Lz4Permille { get; }

    private PageContent(uint lz4Permille) => Lz4Permille = lz4Permille;

    /// <summary>Pseudo-random words in every data page: incompressible, exactly the guests' content before compressible pages.</summary>
    public static PageContent Random { get; } = new(1000);

    public bool IsRandom => Lz4Permille == 1000;

    /// <summary>The LZ4 compressed/raw ratio the guest's data pages aim for (1.0 = <see cref="Random"/>).</summary>
    public double Lz4Ratio => Lz4Permille / 1000.0;

    /// <summary>Pages that LZ4 (fast) compresses to about <paramref name="lz4Ratio"/> of their size (0.001 … 1; 1 = <see cref="Random"/>).</summary>
    public static PageContent Compressible(double lz4Ratio)
    {
        if (!double.IsFinite(lz4Ratio) || lz4Ratio <= 0 || lz4Ratio > 1)
            throw new ArgumentOutOfRangeException(nameof(lz4Ratio), lz4Ratio, "the LZ4 compressed/raw ratio must be more than 0 and at most 1 (1 = random, incompressible)");
        return new PageContent((uint)Math.Max(MinPermille, Math.Round(lz4Ratio * 1000)));
    }

    /// <summary>The corpus LZ4 ratios (bench/corpus/pages, docs/PROTOCOL.md "Compression: measured") the defaults are fitted to.</summary>
    public static PageContent Vim { get; } = new(161);
    public static PageContent MpvAudio { get; } = new(336);
    public static PageContent MpvVideo { get; } = new(248);
    public static PageContent Postgres { get; } = new(151);
    public static PageContent Memcached { get; } = new(698);

    /// <summary>
    /// A workload's default: text → vim's pages, audio → mpv playing audio, movie → mpv playing 720p video, database →
    /// PostgreSQL under pgbench; idle, pattern and replay (unless its trace's application is known:
    /// <see cref="DefaultForApplication"/>) → <see cref="Random"/>.
    /// </summary>
    public static PageContent DefaultFor(Workload workload) => workload switch
    {
        Workload.Text => Vim,
        Workload.Audio => MpvAudio,
        Workload.Movie => MpvVideo,
        Workload.Database => Postgres,
        _ => Random,
    };

    /// <summary>
    /// The default for a replayed trace whose workload name is <paramref name="name"/> (the trace header's: text, audio,
    /// video or movie, database, cache — what <c>make traces</c> and <c>trace record</c> write): that application's corpus
    /// ratio; <see cref="Random"/> when the name is not one of them.
    /// </summary>
    public static PageContent DefaultForApplication(string? name) => name?.Trim().ToLowerInvariant() switch
    {
        "text" => Vim,
        "audio" => MpvAudio,
        "video" or "movie" => MpvVideo,
        "database" => Postgres,
        "cache" => Memcached,
        _ => Random,
    };

    /// <summary>Parses <c>random</c> or an LZ4 ratio such as <c>0.25</c> (1 = random); throws <see cref="ArgumentException"/> saying what is accepted.</summary>
    public static PageContent Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        string s = text.Trim();
        if (s.Equals("random", StringComparison.OrdinalIgnoreCase)) return Random;
        if (double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out double ratio) && ratio > 0 && ratio <= 1)
            return Compressible(ratio);
        throw new ArgumentException($"page content '{text}': give 'random' (incompressible) or the LZ4 compressed/raw ratio the guest's pages should have, more than 0 and at most 1, e.g. 0.25");
    }

    /// <summary>The value as <see cref="Parse"/> reads it: <c>random</c> or the ratio, e.g. <c>0.248</c>.</summary>
    public override string ToString() => IsRandom ? "random" : Lz4Ratio.ToString("0.###", CultureInfo.InvariantCulture);

    /// <summary>The content with this boot-info value (<c>content_lz4_permille</c>, 1..1000), e.g. read back from a snapshot.</summary>
    public static PageContent FromPermille(uint lz4Permille) => lz4Permille switch
    {
        1000 => Random,
        >= MinPermille and < 1000 => new PageContent(lz4Permille),
        _ => throw new ArgumentOutOfRangeException(nameof(lz4Permille), lz4Permille, "content_lz4_permille must be 1..1000 (1000 = random)"),
    };
}
