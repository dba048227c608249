using System.Net;
using System.Net.Sockets;
using KvmPresync.Core;
using KvmPresync.Engine;
using KvmPresync.Migration;
using KvmPresync.Tests.Kvm;
using KvmPresync.Tests.Vmm;
using KvmPresync.Vmm;
using KvmPresync.Vmm.Devices;
using KvmPresync.Vmm.Migration;
using KvmPresync.Wire;

namespace KvmPresync.Tests.Migration;

/// <summary>Source here, receiver in another process (the real <c>kvmpresync receive</c>), 256 MiB guests, ≥ 20 s of presync, 1 Gbit/s link.</summary>
public sealed class CrossProcessMigrationTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("kvmpresync-test").FullName;

    private string WriteKey(byte fill) => CliTestSupport.WriteKey(_dir, fill);

    private static int FreePort() => CliTestSupport.FreePort();

    [Theory]
    [InlineData(Workload.Movie)]
    [InlineData(Workload.Text)]
    [InlineData(Workload.Audio)]
    public async Task GuestPresyncedForTwentySecondsResumesInTheReceiverProcess(Workload workload)
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        using var kvm = KvmRequirement.OpenOrSkip();
        string psk = WriteKey(3);
        int port = FreePort();
        using var receiver = CliProcess.Start("receive", "--once", "--listen", $"127.0.0.1:{port}", "--psk-file", psk, "--run-seconds", "2", "--link-rate", "1gbit");
        receiver.WaitForOutput("listening on", TimeSpan.FromSeconds(30));

        using var source = MigrationHarness.BootFilled(kvm, MigrationHarness.Config(workload, 256L << 20) with { HeartbeatMs = 100 });
        using var key = KvmPresync.Wire.PskFile.Load(psk);
        using var socket = await MigrationSocket.ConnectAsync(new IPEndPoint(IPAddress.Loopback, port), ct);
        var sender = new PresyncSender(new MachineMigrationSource(source), socket, key, new PresyncOptions { Engine = new SyncEngineOptions { LinkBitsPerSecond = 1e9 } });
        Task<MigrationResult> run = sender.RunAsync(ct);
        await Task.WhenAny(run, Task.Delay(TimeSpan.FromSeconds(20), ct));
        Assert.False(run.IsCompleted, run.IsCompleted ? (await run).Failure : "");
        Heartbeat beforeLaunch = source.Telemetry.LastHeartbeat!.Value;
        sender.Launch();
        MigrationResult result = await run.WaitAsync(TimeSpan.FromSeconds(30), ct);
        Assert.True(result.Succeeded, $"{result.Failure}\nreceiver:\n{receiver.Output}");
        Assert.True(result.Verified);
        Assert.Equal(MachineExitKind.Stopped, (await source.Completion).Kind); // stopped only after "resumed"
        Heartbeat lastAtSource = source.Telemetry.LastHeartbeat!.Value;
        Assert.True(lastAtSource.Seq >= beforeLaunch.Seq);

        int code = await receiver.WaitForExitAsync(TimeSpan.FromSeconds(30), ct);
        string output = receiver.Output;
        Assert.True(code == 0, $"receiver exited {code}:\n{output}");
        Assert.Contains("memory digest verified", output);
        Assert.Contains("continuity errors 0, self-check errors 0", output);
        // the destination's heartbeats continued the source's sequence (continuity is checked beat by beat there)
        Assert.Matches(@"last seq (\d+)", output);
        long destSeq = long.Parse(System.Text.RegularExpressions.Regex.Match(output, @"last seq (\d+)").Groups[1].Value);
        Assert.True(destSeq > (long)lastAtSource.Seq, $"destination's last heartbeat {destSeq} does not follow the source's {lastAtSource.Seq}");
        TestContext.Current.SendDiagnosticMessage($"{workload}: launch-to-resume {result.LaunchToResumeMs:0.0} ms, downtime {result.DowntimeMs:0.0} ms, sync {result.SyncBytes} B, launch {result.LaunchBytes} B");
    }

    [Fact]
    public async Task RunWithAWrongKeyStopsWithAClearMessageAndKeepsTheGuest()
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        using var kvm = KvmRequirement.OpenOrSkip();
        int port = FreePort();
        using var receiver = CliProcess.Start("receive", "--once", "--listen", $"127.0.0.1:{port}", "--psk-file", WriteKey(4));
        receiver.WaitForOutput("listening on", TimeSpan.FromSeconds(30));
        using var run = CliProcess.Start("run", "--workload", "idle", "--memory", "64M", "--presync-to", $"127.0.0.1:{port}", "--psk-file", WriteKey(5), "--launch-after", "5");
        int code = await run.WaitForExitAsync(TimeSpan.FromSeconds(60), ct);
        Assert.Equal(KvmPresync.Cli.ExitCodes.AuthenticationFailed, code);
        Assert.Contains("could not be authenticated", run.Output);
        Assert.Contains("not retrying", run.Output);
        int rxCode = await receiver.WaitForExitAsync(TimeSpan.FromSeconds(30), ct);
        Assert.NotEqual(0, rxCode);
        Assert.Contains("authentication", receiver.Output, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task RunWithNoReceiverSaysItsGuestDidNotMoveAndStopsWithIt()
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        using var kvm = KvmRequirement.OpenOrSkip();
        int port = FreePort(); // nothing listens there
        using var run = CliProcess.Start("run", "--workload", "idle", "--memory", "64M", "--presync-to", $"127.0.0.1:{port}", "--psk-file", WriteKey(6),
            "--baseline-seconds", "0");
        int code = await run.WaitForExitAsync(TimeSpan.FromSeconds(60), ct);
        Assert.Equal(KvmPresync.Cli.ExitCodes.MigrationFailed, code);
        Assert.Contains($"cannot connect to the receiver at 127.0.0.1:{port}", run.Output);
        Assert.Contains("The guest was not paused and did not move", run.Output);
        // a run guest lives in the command's process: the output must not suggest it is left running
        Assert.Contains("it stops now, with this command", run.Output);
        Assert.DoesNotContain("keeps running here", run.Output);
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
