using System.Net;
using System.Net.Sockets;
using System.Text;
using KvmPresync.Tests.Kvm;
using KvmPresync.Wire;

namespace KvmPresync.Tests.Migration;

/// <summary>
/// The real <c>kvmpresync receive</c> process as a service, real KVM guests on both sides: after garbage, a
/// connect-and-close and a wrong-key sender it still takes two concurrent migrations (text and audio), both verified;
/// it tells systemd it is ready (NOTIFY_SOCKET) and, on SIGTERM, that it is stopping, then drains and exits 0.
/// </summary>
[Collection(nameof(KvmPresync.Tests.ZeroCopy.ProcessAllocationCollection))]
public sealed class ReceiveServiceCliTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("kvmpresync-svc").FullName;

    private string WriteKey(byte fill) => CliTestSupport.WriteKey(_dir, fill);

    private static int FreePort() => CliTestSupport.FreePort();

    private static async Task<string> ReceiveNotifyAsync(Socket notify, CancellationToken ct)
    {
        var buffer = new byte[4096];
        int n = await notify.ReceiveAsync(buffer, SocketFlags.None, ct).AsTask().WaitAsync(TimeSpan.FromSeconds(60), ct);
        return Encoding.UTF8.GetString(buffer, 0, n);
    }

    [Fact]
    public async Task After_bad_peers_one_receive_process_takes_two_concurrent_real_migrations_and_drains_on_SIGTERM()
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        using (KvmRequirement.OpenOrSkip()) { }
        string notifyPath = Path.Combine(_dir, "notify");
        using var notify = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        notify.Bind(new UnixDomainSocketEndPoint(notifyPath));
        string psk = WriteKey(3);
        int port = FreePort();
        var endpoint = new IPEndPoint(IPAddress.Loopback, port);
        using var receiver = CliProcess.StartWithEnvironment(new Dictionary<string, string> { ["NOTIFY_SOCKET"] = notifyPath },
            "receive", "--listen", $"127.0.0.1:{port}", "--psk-file", psk, "--run-seconds", "3", "--handshake-timeout", "3s");
        Assert.Contains("READY=1", await ReceiveNotifyAsync(notify, ct));

        using (var garbage = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
        {
            await garbage.ConnectAsync(endpoint, ct);
            await garbage.SendAsync(Encoding.ASCII.GetBytes("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), ct);
            var buffer = new byte[512];
            while (await garbage.ReceiveAsync(buffer, ct) > 0) { } // refused and closed
        }
        using (var scanner = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
            await scanner.ConnectAsync(endpoint, ct);
        using (var wrong = CliProcess.Start("run", "--workload", "idle", "--memory", "64M", "--presync-to", $"127.0.0.1:{port}", "--psk-file", WriteKey(5), "--launch-after", "3s"))
            Assert.Equal(KvmPresync.Cli.ExitCodes.AuthenticationFailed, await wrong.WaitForExitAsync(TimeSpan.FromSeconds(90), ct));

        using var text = CliProcess.Start("run", "--workload", "text", "--memory", "128M", "--presync-to", $"127.0.0.1:{port}", "--psk-file", psk, "--launch-after", "8s");
        using var audio = CliProcess.Start("run", "--workload", "audio", "--memory", "128M", "--presync-to", $"127.0.0.1:{port}", "--psk-file", psk, "--launch-after", "8s");
        int[] codes = await Task.WhenAll(text.WaitForExitAsync(TimeSpan.FromSeconds(180), ct), audio.WaitForExitAsync(TimeSpan.FromSeconds(180), ct));
        Assert.True(codes[0] == 0, $"text sender exited {codes[0]}:\n{text.Output}\nreceiver:\n{receiver.Output}");
        Assert.True(codes[1] == 0, $"audio sender exited {codes[1]}:\n{audio.Output}\nreceiver:\n{receiver.Output}");
        Assert.Contains("memory digest verified", text.Output);
        Assert.Contains("memory digest verified", audio.Output);

        receiver.WaitForOutput("event=guest.stopped", TimeSpan.FromSeconds(30)); // --run-seconds 3 after each resumed
        await Task.Delay(TimeSpan.FromSeconds(1), ct);
        receiver.Signal("TERM");
        Assert.Contains("STOPPING=1", await ReceiveNotifyAsync(notify, ct));
        int rxCode = await receiver.WaitForExitAsync(TimeSpan.FromSeconds(60), ct);
        string log = receiver.Output;
        Assert.True(rxCode == 0, $"receiver exited {rxCode}:\n{log}");
        string[] lines = log.Split('\n');
        Assert.Equal(2, lines.Count(l => l.Contains("event=session.resumed") && l.Contains("verified=True")));
        // with userfaultfd the service tracks the destinations' writes: each switchover re-hashed the pages written since
        // the last catch-up (without it, none)
        bool tracked = KvmPresync.ProcessMemory.UserfaultfdHandle.IsAvailable(out _);
        Assert.Equal(2, lines.Count(l => l.Contains("event=session.resumed") && System.Text.RegularExpressions.Regex.IsMatch(l, tracked ? @"rehashed_pages=[1-9]" : "rehashed_pages=0 ")));
        Assert.Equal(2, lines.Count(l => l.Contains("event=guest.stopped") && l.Contains("healthy=True")));
        Assert.True(lines.Count(l => l.Contains("event=session.failed")) >= 3, log); // garbage, connect-and-close, wrong key
        Assert.Contains("event=service.stopped", log);
        Assert.DoesNotContain("0303030303030303", log);
        TestContext.Current.SendDiagnosticMessage($"text: {text.Output.Split('\n').FirstOrDefault(l => l.StartsWith("migrated"))}; audio: {audio.Output.Split('\n').FirstOrDefault(l => l.StartsWith("migrated"))}");
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
