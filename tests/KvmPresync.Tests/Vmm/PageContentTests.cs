using KvmPresync.Memory;
using KvmPresync.Tests.Kvm;
using KvmPresync.Tests.Migration;
using KvmPresync.Vmm;
using KvmPresync.Wire;

namespace KvmPresync.Tests.Vmm;

/// <summary>
/// The guests' compressible page content (native/guest/content.c, docs/WORKLOADS.md "Page content") on real KVM: the pages the
/// movie, text, audio and database guests write compress with LZ4 to their workload's corpus ratio, <see cref="PageContent.Random"/> stays
/// incompressible, and the guest's self-check still catches a stale or a misplaced page — also when only the page's body is
/// wrong and its header is right.
/// </summary>
/// <remarks>Runs alone: a guest starved by parallel tests would write fewer pages, and the ratios are measured on what it wrote.</remarks>
[Collection(nameof(PageContentTests))]
[CollectionDefinition(nameof(PageContentTests), DisableParallelization = true)]
public sealed class PageContentTests
{
    private const ulong PageTag = 0x4B50000000000000; // content.c: word 0 of a data page = tag | guest page number
    private const int SamplePages = 256;              // as the corpus: 256 pages, compressed as one 1 MiB batch
    private const double Tolerance = 0.05;            // of the LZ4 ratio, against the target

    private static MachineConfig Config(Workload w, PageContent? content = null) => new()
    {
        Workload = w,
        MemorySize = w == Workload.Database ? 256L << 20 : 128L << 20,   // the database's pool is 128 MiB
        FillBytes = 32L << 20,
        HeartbeatMs = 20,
        PageContent = content,
        Params = Samples(64),
        GuestImage = KvmRequirement.GuestImageOrFail(),
    };

    private static ulong[] Samples(ulong perHeartbeat)
    {
        var p = new ulong[GuestAbi.BootInfo.ParamCount];
        p[15] = perHeartbeat; // KP_PARAM_SAMPLES: pages verified per heartbeat
        return p;
    }

    [Theory]
    [InlineData(Workload.Movie)]
    [InlineData(Workload.Text)]
    [InlineData(Workload.Audio)]
    [InlineData(Workload.Database)]
    public void PagesTheGuestWritesCompressToItsWorkloadsCorpusRatioAndPassTheSelfCheck(Workload workload)
    {
        using var kvm = KvmRequirement.OpenOrSkip();
        using Machine m = MigrationHarness.BootFilled(kvm, Config(workload));
        MachineTests.WaitFor(m, () => m.Telemetry.HeartbeatCount >= 20, "20 heartbeats after the fill");
        m.Pause();
        PageContent target = PageContent.DefaultFor(workload);
        (double lz4, double zstd, int pages) = Ratios(m.Memory, written: true);
        TestContext.Current.SendDiagnosticMessage($"{workload}: {pages} written pages, LZ4 {lz4:0.000} (target {target.Lz4Ratio:0.000}), zstd-1 {zstd:0.000}");
        Assert.True(pages >= 64, $"the {workload} guest wrote only {pages} data pages after its fill");
        Assert.InRange(lz4, target.Lz4Ratio - Tolerance, target.Lz4Ratio + Tolerance);
        Assert.True(zstd < lz4, $"zstd-1 {zstd:0.000} should shrink these pages more than LZ4 {lz4:0.000} (their text words)");
        Assert.Equal(0, m.Telemetry.SelfCheckErrors);
        Assert.Equal(0, m.Telemetry.ContinuityErrors);
        // the content travels with the machine's state (a migrated guest is restored with the same config)
        MachineSnapshot back = MachineSnapshotCodec.Decode(MachineSnapshotCodec.Encode(m.SaveState()));
        Assert.Equal(target, back.Config.PageContent);
    }

    [Fact]
    public void RandomContentStaysIncompressible()
    {
        using var kvm = KvmRequirement.OpenOrSkip();
        using Machine m = MigrationHarness.BootFilled(kvm, Config(Workload.Movie, PageContent.Random));
        MachineTests.WaitFor(m, () => m.Telemetry.HeartbeatCount >= 10, "10 heartbeats after the fill");
        m.Pause();
        (double lz4, double zstd, int pages) = Ratios(m.Memory, written: false);
        TestContext.Current.SendDiagnosticMessage($"random: {pages} pages, LZ4 {lz4:0.000}, zstd-1 {zstd:0.000}");
        Assert.True(lz4 >= 0.999, $"LZ4 shrank random pages to {lz4:0.000}");
        Assert.True(zstd >= 0.999, $"zstd shrank random pages to {zstd:0.000}");
        Assert.Equal(0, m.Telemetry.SelfCheckErrors);
    }

    public enum Fault { Stale, StaleBody, Misplaced, MisplacedBody }

    /// <summary>
    /// Stale: the movie's written pages put back as they were some frames ago (the body only: with the current header, so
    /// only the words after it can tell). Misplaced: each filled page replaced by its neighbour's (body only: keeping its
    /// own header). The guest must count self-check errors; and an old version or a neighbour differs in nearly every word.
    /// </summary>
    [Theory]
    [InlineData(Fault.Stale)]
    [InlineData(Fault.StaleBody)]
    [InlineData(Fault.Misplaced)]
    [InlineData(Fault.MisplacedBody)]
    public void TheSelfCheckCatchesAStaleOrMisplacedCompressiblePage(Fault fault)
    {
        using var kvm = KvmRequirement.OpenOrSkip();
        using Machine m = MigrationHarness.BootFilled(kvm, Config(Workload.Movie));
        Assert.False(m.Config.EffectivePageContent.IsRandom);
        MachineTests.WaitFor(m, () => m.Telemetry.ProgressTotal >= 3, "3 frames");
        GuestMemoryMap mem = m.Memory;
        bool body = fault is Fault.StaleBody or Fault.MisplacedBody;
        int corrupted = 0, minDiffering = 512;
        if (fault is Fault.Stale or Fault.StaleBody)
        {
            m.Pause();
            Dictionary<long, byte[]> before = DataPages(mem).Where(p => Version(mem, p) > 0).ToDictionary(p => p, p => mem.Page(p).ToArray());
            long frames = m.Telemetry.ProgressTotal;
            m.Resume();
            MachineTests.WaitFor(m, () => m.Telemetry.ProgressTotal >= frames + 3, "3 more frames");
            m.Pause();
            foreach ((long p, byte[] old) in before)
            {
                if (Version(mem, p) == BitConverter.ToUInt64(old, 8)) continue; // not rewritten since
                minDiffering = Math.Min(minDiffering, DifferingWords(old, mem.Page(p)));
                Put(mem.Page(p), old, body);
                corrupted++;
            }
        }
        else
        {
            m.Pause();
            long[] pages = DataPages(mem).Where(p => Version(mem, p) == 0).ToArray(); // the fill: never rewritten
            for (int i = 0; i + 1 < pages.Length; i += 2)
            {
                byte[] neighbour = mem.Page(pages[i + 1]).ToArray();
                minDiffering = Math.Min(minDiffering, DifferingWords(neighbour, mem.Page(pages[i])));
                Put(mem.Page(pages[i]), neighbour, body);
                corrupted++;
            }
        }
        Assert.True(corrupted > 100, $"only {corrupted} pages to corrupt");
        Assert.True(minDiffering >= 500, $"a {fault} page differs from the right one in only {minDiffering} of 512 words");
        Assert.Equal(0, m.Telemetry.SelfCheckErrors);
        m.Resume();
        MachineTests.WaitFor(m, () => m.Telemetry.SelfCheckErrors > 0, $"the guest's self-check to report the {corrupted} {fault} pages");
    }

    /// <summary>Writes <paramref name="from"/> into <paramref name="page"/>; with <paramref name="bodyOnly"/>, all but the header (words 0 and 1).</summary>
    private static void Put(Span<byte> page, byte[] from, bool bodyOnly)
    {
        int start = bodyOnly ? 16 : 0;
        from.AsSpan(start).CopyTo(page[start..]);
    }

    private static int DifferingWords(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b)
    {
        int n = 0;
        for (int i = 0; i < a.Length; i += 8)
            if (BitConverter.ToUInt64(a[i..]) != BitConverter.ToUInt64(b[i..])) n++;
        return n;
    }

    private static ulong Version(GuestMemoryMap mem, long page) => BitConverter.ToUInt64(mem.Page(page)[8..]);

    /// <summary>The guest's data pages above the heap start: word 0 is the tag and the page's own number.</summary>
    private static IEnumerable<long> DataPages(GuestMemoryMap mem)
    {
        for (long p = (long)MachineTests.HeapStart(mem) / mem.PageSize; p < mem.PageCount; p++)
            if (BitConverter.ToUInt64(mem.Page(p)) == (PageTag | (ulong)p)) yield return p;
    }

    /// <summary>
    /// LZ4 (fast) and zstd-1 compressed/raw, as the sender compresses a batch, of up to 256 data pages spread evenly over those
    /// the guest wrote (<paramref name="written"/>: rewritten by its workload, version ≥ 1; else any, the fill included).
    /// </summary>
    private static (double Lz4, double Zstd, int Pages) Ratios(GuestMemoryMap mem, bool written)
    {
        long[] pages = DataPages(mem).Where(p => !written || Version(mem, p) > 0).ToArray();
        if (pages.Length == 0) return (1, 1, 0);
        int n = Math.Min(SamplePages, pages.Length);
        byte[] batch = new byte[n * mem.PageSize];
        for (int i = 0; i < n; i++) mem.Page(pages[(long)i * pages.Length / n]).CopyTo(batch.AsSpan(i * mem.PageSize));
        using var codecs = new PageCompression();
        double Ratio(PageCodec codec)
        {
            byte[] output = new byte[PageCompression.MaxCompressedLength(codec, batch.Length)];
            return (double)codecs.Compress(codec, batch, output) / batch.Length;
        }
        return (Ratio(PageCodec.Lz4), Ratio(PageCodec.Zstd), n);
    }
}
