using System.Net;
using System.Net.Sockets;
using KvmPresync.Engine;
using KvmPresync.Migration;
using KvmPresync.Tests.Kvm;
using KvmPresync.Tests.Migration;
using KvmPresync.Tests.Vmm;
using KvmPresync.Vmm;
using KvmPresync.Vmm.Devices;
using KvmPresync.Vmm.Migration;
using KvmPresync.Wire;

namespace KvmPresync.Tests.Tls;

/// <summary>Real KVM guests over mutual TLS: in-process (heartbeats continue on the destination) and through the CLI in two processes.</summary>
[Collection(nameof(KvmPresync.Tests.ZeroCopy.ProcessAllocationCollection))]
public sealed class TlsLiveMigrationTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("kvmpresync-tls-live").FullName;

    [Fact]
    public async Task A_guest_migrated_over_TLS_resumes_with_its_heartbeat_continuing()
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        using var kvm = KvmRequirement.OpenOrSkip();
        using var key = MigrationHarness.Key();
        var pki = new TestCertificates();
        var (endpoint, received) = MigrationHarness.StartReceiver(kvm, key, new ReceiverOptions { Tls = pki.Side("receiver") }, ct);
        using var source = MigrationHarness.BootFilled(kvm, MigrationHarness.Config(Workload.Text));

        using var socket = await MigrationSocket.ConnectAsync(endpoint, ct);
        var sender = new PresyncSender(new MachineMigrationSource(source), socket, key, new PresyncOptions
        {
            Engine = new SyncEngineOptions { Policy = SyncPolicy.PredictSlowStart, LinkBitsPerSecond = 1e9 },
            Tls = pki.Side("sender"),
        });
        Task<MigrationResult> run = sender.RunAsync(ct);
        await Task.WhenAny(run, Task.Delay(TimeSpan.FromSeconds(4), ct));
        Assert.False(run.IsCompleted, run.IsCompleted ? (await run).Failure : "");
        sender.Launch();
        MigrationResult result = await run.WaitAsync(TimeSpan.FromSeconds(30), ct);
        var (rx, target) = await received.WaitAsync(TimeSpan.FromSeconds(10), ct);
        Assert.True(result.Succeeded, $"sender: {result.Failure}; receiver: {rx.Failure}");
        Assert.True(result.Verified);
        Assert.True(rx.Resumed && rx.Verified, rx.Failure);
        using (target)
        {
            await MigrationHarness.AssertRunsOnAsync(source, target!.Machine!);
        }
        Assert.True(result.SyncBytes > 0 && result.Rounds.Count > 3);
        TestContext.Current.SendDiagnosticMessage($"TLS: launch-to-resume {result.LaunchToResumeMs:0.0} ms, downtime {result.DowntimeMs:0.0} ms, sync {result.SyncBytes} B");
    }

    [Fact]
    public async Task The_CLI_migrates_over_TLS_between_two_processes_and_a_plaintext_run_is_refused()
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        using var kvm = KvmRequirement.OpenOrSkip();
        var pki = new TestCertificates();
        var (rxCert, rxKey, ca) = pki.WriteFiles(_dir, "receiver");
        var (txCert, txKey, _) = pki.WriteFiles(_dir, "sender");
        string psk = Path.Combine(_dir, "psk");
        File.WriteAllBytes(psk, Enumerable.Repeat((byte)'k', 32).ToArray());
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(psk, UnixFileMode.UserRead | UnixFileMode.UserWrite);

        // a plaintext run against a TLS receiver: refused, the receiver says why and exits non-zero
        int port = FreePort();
        using (var receiver = CliProcess.Start("receive", "--once", "--listen", $"127.0.0.1:{port}", "--psk-file", psk, "--tls-cert", rxCert, "--tls-key", rxKey, "--tls-ca", ca))
        {
            receiver.WaitForOutput("listening on", TimeSpan.FromSeconds(30));
            using var plain = CliProcess.Start("run", "--workload", "idle", "--memory", "64M", "--presync-to", $"127.0.0.1:{port}", "--psk-file", psk, "--launch-after", "3");
            Assert.Equal(KvmPresync.Cli.ExitCodes.MigrationFailed, await plain.WaitForExitAsync(TimeSpan.FromSeconds(60), ct));
            Assert.Contains("requires TLS", plain.Output);
            Assert.NotEqual(0, await receiver.WaitForExitAsync(TimeSpan.FromSeconds(30), ct));
            Assert.Contains("connected in plaintext", receiver.Output);
        }

        // both with TLS: migrated and verified; the destination's guest runs
        port = FreePort();
        using (var receiver = CliProcess.Start("receive", "--once", "--listen", $"127.0.0.1:{port}", "--psk-file", psk, "--run-seconds", "2",
                   "--tls-cert", rxCert, "--tls-key", rxKey, "--tls-ca", ca))
        {
            receiver.WaitForOutput("mutual TLS 1.3 required", TimeSpan.FromSeconds(30));
            using var run = CliProcess.Start("run", "--workload", "text", "--memory", "128M", "--presync-to", $"127.0.0.1:{port}", "--psk-file", psk,
                "--launch-after", "4", "--tls-cert", txCert, "--tls-key", txKey, "--tls-ca", ca);
            int code = await run.WaitForExitAsync(TimeSpan.FromSeconds(90), ct);
            Assert.True(code == 0, $"run exited {code}:\n{run.Output}\nreceiver:\n{receiver.Output}");
            Assert.Contains("TLS 1.3", run.Output);
            Assert.Contains("memory digest verified", run.Output);
            int rxCode = await receiver.WaitForExitAsync(TimeSpan.FromSeconds(30), ct);
            Assert.True(rxCode == 0, $"receiver exited {rxCode}:\n{receiver.Output}");
            Assert.Contains("continuity errors 0, self-check errors 0", receiver.Output);
            Assert.DoesNotContain("PRIVATE KEY", run.Output + receiver.Output);
        }
    }

    private static int FreePort()
    {
        using var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        s.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)s.LocalEndPoint!).Port;
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
