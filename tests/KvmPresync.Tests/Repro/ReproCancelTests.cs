using System.Text.Json.Nodes;
using KvmPresync.ProcessMemory.Capture;
using KvmPresync.Tests.Kvm;
using KvmPresync.Tests.Migration;

namespace KvmPresync.Tests.Repro;

/// <summary>repro stopped by a signal between and during its runs: its processes end, the runs that ended are reported.</summary>
public sealed class ReproCancelTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("kvmpresync-reprocancel").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task SIGTERM_during_a_run_stops_its_source_and_receiver_and_reports_the_runs_that_ended()
    {
        using var kvm = KvmRequirement.OpenOrSkip();
        KvmRequirement.GuestImageOrFail();
        string json = Path.Combine(_dir, "out.json");
        using var repro = CliProcess.Start("repro", "--workloads", "text", "--memory", "128M", "--runs", "3", "--sync-seconds", "4",
            "--modes", "predict+slowstart", "--no-oracle", "--json", json);
        repro.WaitForOutput("[2/3]", TimeSpan.FromMinutes(3)); // the first run ended; the second's processes start
        ProcessEntry[] children = [];
        for (int i = 0; i < 50 && children.Length < 2; i++)
        {
            await Task.Delay(100, TestContext.Current.CancellationToken);
            children = ChildrenOf(repro.Id);
        }
        Assert.True(children.Length == 2, $"expected the run's source and receiver under repro, found {children.Length}:\n{repro.Output}");
        repro.Signal("TERM");
        int exit = await repro.WaitForExitAsync(TimeSpan.FromMinutes(1), TestContext.Current.CancellationToken);
        string output = repro.Output;
        Assert.True(exit == 130, $"exit {exit}:\n{output}");
        Assert.Contains("repro cancelled; the run's source and receiver processes were stopped; reporting the 1 run(s) that ended", output);
        Assert.DoesNotContain("Unhandled exception", output);
        Assert.DoesNotContain("FAILED", output);
        Assert.DoesNotContain("[3/3]", output);
        List<ProcessEntry> now = ProcessEntry.ReadAll();
        foreach (ProcessEntry child in children) // the same process: pid and start time (a pid may be reused)
            Assert.False(now.Any(e => e.Pid == child.Pid && e.StartTime == child.StartTime && e.State != 'Z'),
                $"process {child.Pid} ({child.Name}) of the cancelled run still runs");
        JsonNode runs = JsonNode.Parse(File.ReadAllText(json))!["workloads"]!["text"]!["predict+slowstart"]!["runs"]!;
        Assert.Single(runs.AsArray());
        Assert.True((bool)runs[0]!["succeeded"]!);
    }

    /// <summary>Processes whose parent is <paramref name="pid"/>.</summary>
    private static ProcessEntry[] ChildrenOf(int pid) => ProcessEntry.ReadAll().Where(e => e.ParentPid == pid).ToArray();
}
