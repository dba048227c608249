using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using KvmPresync.Tests.Kvm;

namespace KvmPresync.Tests.Migration;

/// <summary>
/// Four 256 MiB guests with mixed workloads presync at the same time into one <c>kvmpresync receive</c> process, then
/// launch together: all verified and resumed. Measures the receiver's peak resident memory against the guests' memory,
/// and the source CPU each presyncing guest costs beside its own vCPU (process CPU minus the vcpu0 thread's).
/// <c>make many-guests</c> runs it alone and prints the figures.
/// </summary>
[Collection(nameof(KvmPresync.Tests.ZeroCopy.ProcessAllocationCollection))]
public sealed class ManyGuestsTests(ITestOutputHelper output) : IDisposable
{
    private const long GuestBytes = 256L << 20;
    private static readonly string[] Workloads = ["text", "audio", "movie", "idle"];
    private static readonly long ClockTicks = 100; // USER_HZ on Linux
    private readonly string _dir = Directory.CreateTempSubdirectory("kvmpresync-many").FullName;

    private static long ReadTicks(string statPath)
    {
        try
        {
            string stat = File.ReadAllText(statPath);
            string[] f = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            return long.Parse(f[11]) + long.Parse(f[12]); // utime + stime (fields 14, 15)
        }
        catch (IOException) { return -1; }
    }

    private static long VcpuTicks(int pid)
    {
        try
        {
            foreach (string task in Directory.GetDirectories($"/proc/{pid}/task"))
                if (File.ReadAllText(Path.Combine(task, "comm")).Trim() == "vcpu0") return ReadTicks(Path.Combine(task, "stat"));
        }
        catch (IOException) { } catch (UnauthorizedAccessException) { }
        return -1;
    }

    private static long RssBytes(int pid)
    {
        try
        {
            Match m = Regex.Match(File.ReadAllText($"/proc/{pid}/status"), @"VmRSS:\s+(\d+) kB");
            return m.Success ? long.Parse(m.Groups[1].Value) * 1024 : 0;
        }
        catch (IOException) { return 0; }
    }

    [Fact]
    public async Task Four_guests_presync_at_once_into_one_receiver_and_all_resume_verified()
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        using (KvmRequirement.OpenOrSkip()) { }
        string psk = CliTestSupport.WriteKey(_dir, 0x42);
        int port = CliTestSupport.FreePort();
        using var receiver = CliProcess.Start("receive", "--listen", $"127.0.0.1:{port}", "--psk-file", psk, "--run-seconds", "3", "--max-sessions", "4",
            "--max-memory", "1G");
        receiver.WaitForOutput("listening on", TimeSpan.FromSeconds(30));
        long rxBaseline = RssBytes(receiver.Id);

        var senders = Workloads.Select(w => CliProcess.Start("run", "--workload", w, "--memory", "256M", "--presync-to", $"127.0.0.1:{port}",
            "--psk-file", psk, "--launch-after", "20s", "--link-rate", "1gbit")).ToArray();
        try
        {
            // sample while the four presync: the receiver's resident memory, each source's CPU beside its vCPU
            long rxPeak = 0;
            var first = new (long Process, long Vcpu)[senders.Length];
            var last = new (long Process, long Vcpu)[senders.Length];
            var sampled = Stopwatch.StartNew();
            bool started = false;
            while (senders.Any(p => !p.HasExited))
            {
                rxPeak = Math.Max(rxPeak, RssBytes(receiver.Id));
                bool allSyncing = senders.All(p => p.Output.Contains("pre-synchronizing to"));
                for (int i = 0; i < senders.Length; i++)
                {
                    if (senders[i].HasExited || !allSyncing || senders[i].Output.Contains("migrated:")) continue;
                    (long, long) now = (ReadTicks($"/proc/{senders[i].Id}/stat"), VcpuTicks(senders[i].Id));
                    if (!started) first[i] = now;
                    last[i] = now;
                }
                if (allSyncing && !started) { started = true; sampled.Restart(); }
                await Task.Delay(200, ct);
            }
            double seconds = sampled.Elapsed.TotalSeconds;

            for (int i = 0; i < senders.Length; i++)
            {
                int code = await senders[i].WaitForExitAsync(TimeSpan.FromSeconds(120), ct);
                Assert.True(code == 0, $"{Workloads[i]} sender exited {code}:\n{senders[i].Output}\nreceiver:\n{receiver.Output}");
                Assert.Contains("memory digest verified", senders[i].Output);
            }
            receiver.WaitForOutput("event=guest.stopped", TimeSpan.FromSeconds(30));
            await Task.Delay(TimeSpan.FromSeconds(4), ct); // every guest ran its 3 s
            receiver.Signal("TERM");
            int rxCode = await receiver.WaitForExitAsync(TimeSpan.FromSeconds(60), ct);
            string log = receiver.Output;
            Assert.True(rxCode == 0, $"receiver exited {rxCode}:\n{log}");
            string[] lines = log.Split('\n');
            Assert.Equal(4, lines.Count(l => l.Contains("event=session.resumed") && l.Contains("verified=True")));
            Assert.Equal(4, lines.Count(l => l.Contains("event=guest.stopped") && l.Contains("healthy=True")));

            long guests = GuestBytes * senders.Length;
            output.WriteLine($"receiver resident memory: peak {rxPeak / 1048576.0:0} MiB for {senders.Length} × {GuestBytes >> 20} MiB guests " +
                             $"({guests >> 20} MiB) — overhead {(rxPeak - guests) / 1048576.0:0} MiB (process at rest: {rxBaseline / 1048576.0:0} MiB)");
            for (int i = 0; i < senders.Length; i++)
            {
                long proc = last[i].Process - first[i].Process, vcpu = last[i].Vcpu - first[i].Vcpu;
                output.WriteLine($"{Workloads[i],-6} source over {seconds:0.0} s of presync: process {100.0 * proc / ClockTicks / seconds:0.0} % of a core, " +
                                 $"of which vCPU {100.0 * vcpu / ClockTicks / seconds:0.0} %, presync beside it {100.0 * (proc - vcpu) / ClockTicks / seconds:0.0} %; " +
                                 senders[i].Output.Split('\n').FirstOrDefault(l => l.StartsWith("migrated")));
            }
            Assert.True(rxPeak <= guests + (512L << 20), $"the receiver peaked at {rxPeak >> 20} MiB for {guests >> 20} MiB of guests");
        }
        finally
        {
            foreach (var s in senders) s.Dispose();
        }
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
