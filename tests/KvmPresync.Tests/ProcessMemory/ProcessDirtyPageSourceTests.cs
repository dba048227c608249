using System.Diagnostics;
using System.Globalization;
using KvmPresync.Memory;
using KvmPresync.ProcessMemory;

namespace KvmPresync.Tests.ProcessMemory;

/// <summary>
/// The process-memory source is exact against a scripted program: tracker-probe runs with the preload library, writes
/// a scripted set of pages per interval, and each harvest equals exactly that set — no page missed, none extra
/// (reads are not reported). A harvested page written again is reported again.
/// </summary>
public sealed class ProcessDirtyPageSourceTests
{
    private const int Pages = 2048; // 8 MiB

    [Theory]
    [InlineData("all")]   // anonymous private memory, registered by the interposed mmap (KVMPRESYNC_TRACK_ALL)
    [InlineData("path")]  // a shared file in /dev/shm, registered by the rescan thread (KVMPRESYNC_TRACK_PATH, QEMU's case)
    public void EachHarvestEqualsTheScriptedWritesExactly(string mode)
    {
        ProcessTrackingRequirement.SkipUnlessAvailable();
        string file = $"/dev/shm/kvmpresync-probe-{Guid.NewGuid():N}";
        using var probe = Probe.Start(mode, mode == "path" ? file : null);
        try
        {
            var region = new ProcessMemoryRegion(probe.Address, probe.Address + (ulong)Pages * 4096, mode == "path" ? file : null);
            probe.WaitRegistered(region);
            using var source = new ProcessDirtyPageSource(probe.Pid, [region]);
            Assert.Equal(Pages, source.PageCount);
            var dirty = new DirtyBitmap(source.PageCount);
            source.Harvest(dirty); // baseline: the probe's initial writes (all pages)
            Assert.Equal(Pages, dirty.Count());

            var rng = new Random(10);
            var previous = new HashSet<long>();
            for (int interval = 0; interval < 40; interval++)
            {
                var written = new HashSet<long>();
                int n = interval % 10 == 9 ? 0 : rng.Next(1, 300);
                for (int i = 0; i < n; i++) written.Add(rng.Next(Pages));
                if (interval > 0 && previous.Count > 0) written.Add(previous.First()); // a page harvested last time, written again
                var read = Enumerable.Range(0, 50).Select(_ => (long)rng.Next(Pages)).Where(p => !written.Contains(p)).ToArray();
                probe.Command("w", written.Concat(written.Take(5))); // some pages twice in one interval
                probe.Command("r", read);

                dirty.Clear();
                var h = source.Harvest(dirty);
                long[] got = Set(dirty);
                long[] want = written.Order().ToArray();
                Assert.True(want.SequenceEqual(got),
                    $"interval {interval}: missed {string.Join(",", want.Except(got).Take(10))}; extra {string.Join(",", got.Except(want).Take(10))}");
                Assert.Equal(want.Length, h.DirtyPages);
                previous = written;
            }

            dirty.Clear();
            Assert.Equal(0, source.Harvest(dirty).DirtyPages); // nothing written since: nothing reported
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public void AHarvestedPageIsReportedAgainWhenWrittenAgain()
    {
        ProcessTrackingRequirement.SkipUnlessAvailable();
        using var mem = GuestMemory.Create(64 * 4096, name: "kvmpresync-track-test");
        using var uffd = UserfaultfdHandle.Open();
        uffd.RegisterWriteProtect(mem.Address, mem.Size, arm: true);
        using var source = new ProcessDirtyPageSource(0, [new ProcessMemoryRegion((ulong)mem.Address, (ulong)mem.Address + (ulong)mem.Size)]);
        var dirty = new DirtyBitmap(source.PageCount);

        Assert.Equal(0, source.Harvest(dirty).DirtyPages); // armed at registration: clean
        mem.Page(3)[100] = 1;
        mem.Page(63)[0] = 1;
        Assert.Equal(2, source.Harvest(dirty).DirtyPages);
        Assert.Equal([3L, 63L], Set(dirty));

        dirty.Clear();
        Assert.Equal(0, source.Harvest(dirty).DirtyPages); // re-armed by the scan that reported them
        mem.Page(3)[200] = 2;
        Assert.Equal(1, source.Harvest(dirty).DirtyPages);
        Assert.Equal([3L], Set(dirty));

        dirty.Set(10); // bits already in the caller's bitmap stay set (the source only ORs)
        mem.Page(5)[0] = 1;
        source.Harvest(dirty);
        Assert.Equal([3L, 5L, 10L], Set(dirty));
    }

    [Fact]
    public void AnUnregisteredRangeFailsSayingWhatToDo()
    {
        ProcessTrackingRequirement.SkipUnlessAvailable();
        using var mem = GuestMemory.Create(16 * 4096, name: "kvmpresync-untracked");
        using var source = new ProcessDirtyPageSource(0, [new ProcessMemoryRegion((ulong)mem.Address, (ulong)mem.Address + (ulong)mem.Size)]);
        var e = Assert.Throws<ProcessTrackingException>(() => source.Harvest(new DirtyBitmap(source.PageCount)));
        Assert.Equal(1, e.Errno); // EPERM from PM_SCAN_CHECK_WPASYNC
        Assert.Contains("'uw' VmFlag", e.Message);
        Assert.Contains("LD_PRELOAD=libkvmpresync-track.so", e.Message);
    }

    [Fact]
    public void FindMappingsLocatesAFileMapping()
    {
        ProcessTrackingRequirement.SkipUnlessAvailable();
        string file = $"/dev/shm/kvmpresync-probe-{Guid.NewGuid():N}";
        using var probe = Probe.Start("path", file);
        try
        {
            IReadOnlyList<ProcessMemoryRegion> found = ProcessMemoryRegion.FindMappings(probe.Pid, file);
            Assert.Equal([new ProcessMemoryRegion(probe.Address, probe.Address + (ulong)Pages * 4096, file)], found);
        }
        finally
        {
            File.Delete(file);
        }
    }

    internal static long[] Set(DirtyBitmap b)
    {
        var list = new List<long>();
        foreach (long p in b) list.Add(p);
        return list.ToArray();
    }

    /// <summary>tracker-probe under LD_PRELOAD=libkvmpresync-track.so, driven over its stdin.</summary>
    private sealed class Probe : IDisposable
    {
        private readonly System.Diagnostics.Process _process;
        private readonly string _status;

        private Probe(System.Diagnostics.Process process, string status, ulong address)
        {
            _process = process;
            _status = status;
            Address = address;
        }

        public int Pid => _process.Id;

        public ulong Address { get; }

        public string Status => File.Exists(_status) ? File.ReadAllText(_status) : "(no status file)";

        public static Probe Start(string mode, string? file)
        {
            string status = Path.Combine(Path.GetTempPath(), $"kvmpresync-track-{Guid.NewGuid():N}.status");
            var psi = new ProcessStartInfo(ProcessTrackingRequirement.NativeOrFail("tracker-probe"))
            {
                RedirectStandardInput = true,
                RedirectStandardOutput = true,
                UseShellExecute = false,
            };
            psi.ArgumentList.Add(Pages.ToString(CultureInfo.InvariantCulture));
            if (file is not null) psi.ArgumentList.Add(file);
            psi.Environment["LD_PRELOAD"] = ProcessTrackingRequirement.NativeOrFail("libkvmpresync-track.so");
            psi.Environment["KVMPRESYNC_TRACK_STATUS"] = status;
            if (mode == "path") psi.Environment["KVMPRESYNC_TRACK_PATH"] = file;
            else psi.Environment["KVMPRESYNC_TRACK_ALL"] = "1";
            var p = System.Diagnostics.Process.Start(psi)!;
            string? ready = p.StandardOutput.ReadLine();
            Assert.True(ready is not null && ready.StartsWith("ready 0x", StringComparison.Ordinal), $"tracker-probe said '{ready}'");
            ulong address = ulong.Parse(ready.Split(' ')[1].AsSpan(2), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            return new Probe(p, status, address);
        }

        /// <summary>Waits until the probe's mapping carries the 'uw' VmFlag (the path mode registers it from a rescan thread).</summary>
        public void WaitRegistered(ProcessMemoryRegion region)
        {
            var sw = Stopwatch.StartNew();
            while (!region.IsRegistered(Pid, out var missing))
            {
                Assert.True(sw.Elapsed < TimeSpan.FromSeconds(10), $"{region} not registered after 10 s ({string.Join(", ", missing)}); tracker status:\n{Status}");
                Thread.Sleep(5);
            }
        }

        public void Command(string op, IEnumerable<long> pages)
        {
            _process.StandardInput.WriteLine($"{op} {string.Join(' ', pages)}");
            _process.StandardInput.Flush();
            string? reply = _process.StandardOutput.ReadLine();
            Assert.True(reply is not null && reply.StartsWith("ok ", StringComparison.Ordinal), $"tracker-probe replied '{reply}'");
        }

        public void Dispose()
        {
            try
            {
                _process.StandardInput.WriteLine("q");
                _process.StandardInput.Flush();
                if (!_process.WaitForExit(5000)) _process.Kill();
            }
            catch (IOException) { }
            catch (InvalidOperationException) { }
            _process.Dispose();
            File.Delete(_status);
        }
    }
}
