using System.Diagnostics;
using System.Globalization;
using KvmPresync.ProcessMemory.Capture;

namespace KvmPresync.Tests.ProcessMemory;

/// <summary>
/// ProcessTreeCapture is exact over a forking program: scripted-writer (under the preload library) writes a scripted
/// set of pages per step in its named regions — private (A, and B mapped later), shared (S) — forks a child that writes
/// too, and each harvest's pages inside those regions equal exactly that step's writes: a shared page written by
/// parent and child is one page, the child's private pages are pages of their own, inherited pages are not reported.
/// </summary>
public sealed class ProcessTreeCaptureTests
{
    private const int Pages = 64;

    [Fact]
    public void EachHarvestEqualsTheScriptedWritesOfTheWholeTree()
    {
        ProcessTrackingRequirement.SkipUnlessAvailable();
        string status = Path.Combine(Path.GetTempPath(), $"kvmpresync-capture-test-{Guid.NewGuid():N}.status");
        using var writer = Writer.Start(status);
        try
        {
            var capture = new ProcessTreeCapture(writer.Pid, new TrackerStatusFile(status));
            Assert.Empty(Dedicated(capture, capture.Harvest(), writer)); // nothing written in the named regions yet

            Step(capture, writer, ["w A 1 2 3 10"], ["A parent 1", "A parent 2", "A parent 3", "A parent 10"]);
            Step(capture, writer, ["w S 0 5", "w A 3"], ["A parent 3", "S 0", "S 5"]);
            writer.B = ulong.Parse(writer.Command("m 8").AsSpan(7), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            Step(capture, writer, ["w B 0 7"], ["B parent 0", "B parent 7"]);
            writer.Child = int.Parse(writer.Command("f").AsSpan(5), CultureInfo.InvariantCulture);
            WaitAnnounced(status, writer.Child);
            Step(capture, writer, [], []); // the child inherited written pages: not writes of its own
            Step(capture, writer, ["c w A 1 4", "w A 1", "c w S 5 6", "w S 6"], ["A child 1", "A child 4", "A parent 1", "S 5", "S 6"]);
            Step(capture, writer, ["c w B 2", "w B 2"], ["B child 2", "B parent 2"]);
            Step(capture, writer, ["r A 1 2 3", "c r S 0 5"], []); // reads are not writes
            Step(capture, writer, [], []);

            Assert.Equal(2, capture.Processes.Count(p => !p.Gone));
            Assert.All(capture.Processes, p => Assert.False(p.Untracked));
            var regions = capture.Space.Regions().ToDictionary(r => r.Region, r => r.Pages);
            Assert.Equal(6, regions["/memfd:kp-private (deleted)"]); // parent 1 2 3 10, child 1 4
            Assert.Equal(3, regions["/memfd:kp-shared (deleted)"]);  // 0 5 6, once each
            Assert.Equal(4, regions["/memfd:kp-later (deleted)"]);   // parent 0 7 2, child 2
        }
        finally
        {
            File.Delete(status);
        }
    }

    [Fact]
    public void PagesFirstWrittenTogetherGetAdjacentIndexes()
    {
        ProcessTrackingRequirement.SkipUnlessAvailable();
        string status = Path.Combine(Path.GetTempPath(), $"kvmpresync-capture-test-{Guid.NewGuid():N}.status");
        using var writer = Writer.Start(status);
        try
        {
            var capture = new ProcessTreeCapture(writer.Pid, new TrackerStatusFile(status));
            capture.Harvest();
            writer.Command("w A 20 21 22 23 5");
            CaptureInterval iv = capture.Harvest();
            long[] a = iv.Pages.Where(i => capture.Space.PageAt(i).Region.StartsWith("/memfd:kp-private", StringComparison.Ordinal)).ToArray();
            Assert.Equal(5, a.Length);
            ulong first = writer.A / 4096;
            Assert.Equal([5UL, 20, 21, 22, 23], a.Select(i => capture.Space.PageAt(i).Identity.Page - first)); // identity order
            Assert.Equal(Enumerable.Range(0, 5).Select(k => a[0] + k), a); // one run of indexes
            writer.Command("w A 21");
            Assert.Contains(a[2], capture.Harvest().Pages); // written again: the same index
        }
        finally
        {
            File.Delete(status);
        }
    }

    private static void Step(ProcessTreeCapture capture, Writer writer, string[] commands, string[] expected)
    {
        foreach (string c in commands) writer.Command(c);
        CaptureInterval iv = capture.Harvest();
        string[] got = Dedicated(capture, iv, writer);
        Assert.True(expected.Order(StringComparer.Ordinal).SequenceEqual(got),
            $"after [{string.Join("; ", commands)}]: expected [{string.Join(", ", expected.Order(StringComparer.Ordinal))}], harvested [{string.Join(", ", got)}]");
    }

    /// <summary>The interval's pages inside the writer's named regions, as "A parent 3", "A child 4", "S 5" (sorted; a duplicate would show).</summary>
    private static string[] Dedicated(ProcessTreeCapture capture, CaptureInterval iv, Writer writer)
    {
        var list = new List<string>();
        foreach (long i in iv.Pages)
        {
            CapturedPage page = capture.Space.PageAt(i);
            string? region = page.Region switch
            {
                "/memfd:kp-private (deleted)" => "A",
                "/memfd:kp-shared (deleted)" => "S",
                "/memfd:kp-later (deleted)" => "B",
                _ => null,
            };
            if (region is null) continue;
            if (region == "S")
            {
                Assert.True(page.Space.Shared);
                list.Add($"S {page.Identity.Page}");
                continue;
            }
            Assert.False(page.Space.Shared);
            string who = page.Space.ProcessId == writer.Pid ? "parent" : page.Space.ProcessId == writer.Child ? "child" : $"pid {page.Space.ProcessId}";
            ulong start = region == "A" ? writer.A : writer.B;
            list.Add($"{region} {who} {page.Identity.Page - start / 4096}");
        }
        return list.Order(StringComparer.Ordinal).ToArray();
    }

    private static void WaitAnnounced(string status, int pid)
    {
        var file = new TrackerStatusFile(status);
        var sw = Stopwatch.StartNew();
        while (file.Announcements(pid) == 0)
        {
            Assert.True(sw.Elapsed < TimeSpan.FromSeconds(10), $"child {pid} never announced itself:\n{File.ReadAllText(status)}");
            Thread.Sleep(5);
            file.Poll();
        }
    }

    /// <summary>scripted-writer under the preload library (mode all), driven over its stdin.</summary>
    private sealed class Writer : IDisposable
    {
        private readonly System.Diagnostics.Process _process;

        private Writer(System.Diagnostics.Process process, ulong a)
        {
            _process = process;
            A = a;
        }

        public int Pid => _process.Id;

        public int Child { get; set; } = -1;

        public ulong A { get; }

        public ulong B { get; set; }

        public static Writer Start(string status)
        {
            var psi = new ProcessStartInfo(ProcessTrackingRequirement.NativeOrFail("scripted-writer"))
            {
                RedirectStandardInput = true,
                RedirectStandardOutput = true,
                UseShellExecute = false,
            };
            psi.ArgumentList.Add(Pages.ToString(CultureInfo.InvariantCulture));
            psi.Environment["LD_PRELOAD"] = ProcessTrackingRequirement.NativeOrFail("libkvmpresync-track.so");
            psi.Environment["KVMPRESYNC_TRACK_ALL"] = "1";
            psi.Environment["KVMPRESYNC_TRACK_STATUS"] = status;
            var p = System.Diagnostics.Process.Start(psi)!;
            string? ready = p.StandardOutput.ReadLine();
            Assert.True(ready is not null && ready.StartsWith("ready 0x", StringComparison.Ordinal), $"scripted-writer said '{ready}'");
            return new Writer(p, ulong.Parse(ready.Split(' ')[1].AsSpan(2), NumberStyles.HexNumber, CultureInfo.InvariantCulture));
        }

        public string Command(string line)
        {
            _process.StandardInput.WriteLine(line);
            _process.StandardInput.Flush();
            string? reply = _process.StandardOutput.ReadLine();
            Assert.True(reply is not null && reply.StartsWith("done ", StringComparison.Ordinal), $"scripted-writer replied '{reply}' to '{line}'");
            return reply;
        }

        public void Dispose()
        {
            try
            {
                _process.StandardInput.WriteLine("q");
                _process.StandardInput.Flush();
                if (!_process.WaitForExit(5000)) _process.Kill(entireProcessTree: true);
            }
            catch (IOException) { }
            catch (InvalidOperationException) { }
            _process.Dispose();
        }
    }
}
