using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using KvmPresync.Migration.Compression;
using KvmPresync.Wire;

namespace KvmPresync.Bench;

/// <summary>
/// PageBatch compression on real page contents: the corpora of <c>make page-corpus</c> (bench/corpus/pages/NAME.pages, 256
/// written, non-zero pages sampled from a real program each). One operation = one default batch (the corpus's 256 pages,
/// 1 MiB): Gather is the baseline (copying the pages into the staging buffer, which a compressed send always pays), Compress
/// gathers and compresses as the sender does (<see cref="PageCompression"/>, LZ4 fast / zstd level 1), Decompress is the
/// receiver's step. The columns add each codec's ratio on the corpus and, from the measured Compress medians, what the
/// sender's <see cref="CompressionChooser"/> picks at 1 and 10 Gbit/s and the expected ms per batch (raw vs its pick).
/// </summary>
[Config(typeof(Columns))]
[MemoryDiagnoser]
public class CompressionBenchmarks
{
    public const int PageSize = 4096;

    private byte[] _pages = [];
    private ReadOnlyMemory<byte>[] _payloads = [];
    private byte[] _staging = [];
    private byte[] _compressed = [];
    private int _compressedLength;
    private byte[] _restored = [];
    private readonly PageCompression _codecs = new();

    [ParamsSource(nameof(Corpora))]
    public string Corpus { get; set; } = "";

    [Params(PageCodec.Lz4, PageCodec.Zstd)]
    public PageCodec Codec { get; set; }

    public static IEnumerable<string> Corpora() => Directory.Exists(CorpusDirectory)
        ? Directory.GetFiles(CorpusDirectory, "*.pages").Select(f => Path.GetFileNameWithoutExtension(f)!).Order()
        : throw new DirectoryNotFoundException($"no page corpus at {CorpusDirectory}: run 'make page-corpus'");

    /// <summary>bench/corpus/pages, found by walking up from the benchmark's binaries (BenchmarkDotNet runs a copy of them).</summary>
    public static string CorpusDirectory { get; } = FindCorpus();

    private static string FindCorpus()
    {
        for (string? d = AppContext.BaseDirectory; d is not null; d = Path.GetDirectoryName(d))
        {
            string candidate = Path.Combine(d, "bench", "corpus", "pages");
            if (Directory.Exists(candidate)) return candidate;
        }
        return Path.Combine("bench", "corpus", "pages");
    }

    public static byte[] Load(string corpus) => File.ReadAllBytes(Path.Combine(CorpusDirectory, corpus + ".pages"));

    [GlobalSetup]
    public void Setup()
    {
        _pages = Load(Corpus);
        int count = _pages.Length / PageSize;
        // pages as the sender holds them: separate views (here every other page of a buffer twice the size, as in guest memory)
        byte[] guest = new byte[_pages.Length * 2];
        for (int i = 0; i < count; i++) _pages.AsSpan(i * PageSize, PageSize).CopyTo(guest.AsSpan(2 * i * PageSize));
        _payloads = Enumerable.Range(0, count).Select(i => (ReadOnlyMemory<byte>)guest.AsMemory(2 * i * PageSize, PageSize)).ToArray();
        _staging = new byte[_pages.Length];
        _compressed = new byte[PageCompression.MaxCompressedLength(Codec, _pages.Length)];
        _restored = new byte[_pages.Length];
        _compressedLength = _codecs.Compress(Codec, _pages, _compressed);
    }

    private void Gathered()
    {
        for (int i = 0; i < _payloads.Length; i++) _payloads[i].Span.CopyTo(_staging.AsSpan(i * PageSize));
    }

    [Benchmark(Baseline = true)]
    public void Gather() => Gathered();

    [Benchmark]
    public int Compress()
    {
        Gathered();
        return _codecs.Compress(Codec, _staging, _compressed);
    }

    [Benchmark]
    public void Decompress() => _codecs.Decompress(Codec, _compressed.AsSpan(0, _compressedLength), _restored, "bench");

    // ---- columns: ratio per corpus and codec, and the chooser's decision from the measured medians ----------------

    private sealed class Columns : ManualConfig
    {
        public Columns()
        {
            AddColumn(StatisticColumn.Median);
            AddColumn(new RatioColumn());
            AddColumn(new ChoiceColumn(1e9), new ChoiceColumn(10e9));
        }
    }

    private static readonly Dictionary<(string, PageCodec), double> Ratios = [];

    /// <summary>Compressed / raw bytes of the whole corpus as one batch (1 = nothing saved; the sender then sends it raw).</summary>
    public static double Ratio(string corpus, PageCodec codec)
    {
        lock (Ratios)
        {
            if (Ratios.TryGetValue((corpus, codec), out double r)) return r;
            byte[] pages = Load(corpus);
            using var codecs = new PageCompression();
            byte[] o = new byte[PageCompression.MaxCompressedLength(codec, pages.Length)];
            r = Math.Min(1.0, codecs.Compress(codec, pages, o) / (double)pages.Length);
            Ratios[(corpus, codec)] = r;
            return r;
        }
    }

    private static (string Corpus, PageCodec Codec, string Method) Of(BenchmarkCase c) =>
        ((string)c.Parameters["Corpus"], (PageCodec)c.Parameters["Codec"], c.Descriptor.WorkloadMethod.Name);

    private sealed class RatioColumn : IColumn
    {
        public string Id => "CompressionRatio";
        public string ColumnName => "Compressed/raw";
        public bool AlwaysShow => true;
        public ColumnCategory Category => ColumnCategory.Custom;
        public int PriorityInCategory => 0;
        public bool IsNumeric => true;
        public UnitType UnitType => UnitType.Dimensionless;
        public string Legend => "compressed / raw bytes of the corpus as one 256-page batch (LZ4 fast, zstd level 1)";
        public bool IsAvailable(Summary summary) => true;
        public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
        public string GetValue(Summary summary, BenchmarkCase c) => GetValue(summary, c, SummaryStyle.Default);
        public string GetValue(Summary summary, BenchmarkCase c, SummaryStyle style)
        {
            (string corpus, PageCodec codec, _) = Of(c);
            return Ratio(corpus, codec).ToString("0.000");
        }
    }

    /// <summary>The chooser fed this corpus's ratios and measured compress throughputs: its pick at the link rate, and ms per batch.</summary>
    private sealed class ChoiceColumn(double bitsPerSecond) : IColumn
    {
        private string Rate => bitsPerSecond >= 1e10 ? "10G" : "1G";
        public string Id => "Choice" + Rate;
        public string ColumnName => $"Pick@{Rate} (ms/batch raw→pick)";
        public bool AlwaysShow => true;
        public ColumnCategory Category => ColumnCategory.Custom;
        public int PriorityInCategory => bitsPerSecond >= 1e10 ? 2 : 1;
        public bool IsNumeric => false;
        public UnitType UnitType => UnitType.Dimensionless;
        public string Legend => $"what CompressionChooser picks at {bitsPerSecond / 1e9:0} Gbit/s for this corpus from the measured Compress medians, and the expected ms per 1 MiB batch: raw → the pick";
        public bool IsAvailable(Summary summary) => true;
        public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;
        public string GetValue(Summary summary, BenchmarkCase c) => GetValue(summary, c, SummaryStyle.Default);
        public string GetValue(Summary summary, BenchmarkCase c, SummaryStyle style)
        {
            (string corpus, _, string method) = Of(c);
            if (method != nameof(Compress)) return "-";
            var chooser = new CompressionChooser(CompressionMode.Auto, bitsPerSecond / 8);
            long batch = Load(corpus).Length;
            foreach (BenchmarkReport r in summary.Reports)
            {
                (string rc, PageCodec codec, string rm) = Of(r.BenchmarkCase);
                if (rc != corpus || rm != nameof(Compress) || r.ResultStatistics is null) continue;
                chooser.Seed(codec, Ratio(corpus, codec), batch / (r.ResultStatistics.Median / 1e9));
            }
            PageCodec pick = chooser.Best(batch);
            double raw = chooser.ExpectedSeconds(PageCodec.None, batch)!.Value * 1e3;
            double chosen = chooser.ExpectedSeconds(pick, batch)!.Value * 1e3;
            return $"{pick.ToString().ToLowerInvariant(),-4} ({raw:0.00}→{chosen:0.00})";
        }
    }
}
