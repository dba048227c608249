using System.Diagnostics;
using KvmPresync.Tests.Kvm;

namespace KvmPresync.Tests.Migration;

/// <summary>The realistic link: sender and receiver in two network namespaces joined by veth, tbf 1 Gbit/s each way.</summary>
public sealed class NetnsMigrationTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("kvmpresync-netns").FullName;
    private static string Script => Path.Combine(RepoRoot(), "tools", "netns-link.sh");

    private static string RepoRoot()
    {
        string? d = AppContext.BaseDirectory;
        while (d is not null && !File.Exists(Path.Combine(d, "KvmPresync.sln"))) d = Path.GetDirectoryName(d);
        return d ?? throw new InvalidOperationException("repository root not found above " + AppContext.BaseDirectory);
    }

    private static (int Code, string Output) Sh(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        string output = p.StandardOutput.ReadToEnd() + p.StandardError.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, output);
    }

    [Fact]
    public async Task GuestMigratesAcrossNamespacesOverAShapedVeth()
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        using (KvmRequirement.OpenOrSkip()) { }
        if (Environment.UserName != "root")
            Assert.Skip("needs root to create network namespaces (tools/netns-link.sh)");
        (int up, string upOut) = Sh(Script, "up", "1gbit");
        Assert.True(up == 0, upOut);
        try
        {
            string psk = Path.Combine(_dir, "psk");
            File.WriteAllBytes(psk, Enumerable.Repeat((byte)0x5A, 32).ToArray());
            if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(psk, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            string cli = CliProcess.Executable;
            using var receiver = CliProcess.StartWrapped("ip", "netns", "exec", "kp-dst", cli, "receive", "--once", "--listen", "10.231.0.2:7700", "--psk-file", psk, "--run-seconds", "2", "--link-rate", "none");
            receiver.WaitForOutput("listening on", TimeSpan.FromSeconds(30));
            using var sender = CliProcess.StartWrapped("ip", "netns", "exec", "kp-src", cli, "run", "--workload", "audio", "--memory", "256M",
                "--presync-to", "10.231.0.2:7700", "--psk-file", psk, "--launch-after", "8", "--link-rate", "none");
            int code = await sender.WaitForExitAsync(TimeSpan.FromSeconds(90), ct);
            Assert.True(code == 0, $"sender exited {code}:\n{sender.Output}\nreceiver:\n{receiver.Output}");
            Assert.Contains("memory digest verified", sender.Output);
            int rx = await receiver.WaitForExitAsync(TimeSpan.FromSeconds(30), ct);
            Assert.True(rx == 0, receiver.Output);
            Assert.Contains("continuity errors 0, self-check errors 0", receiver.Output);
            TestContext.Current.SendDiagnosticMessage(sender.Output.Split('\n').FirstOrDefault(l => l.StartsWith("migrated:", StringComparison.Ordinal)) ?? "");
        }
        finally
        {
            Sh(Script, "down");
        }
    }

    /// <summary>
    /// Resumable presync over the real link: a receive service in kp-dst, a text guest syncing from kp-src; after ~8 s of
    /// presync the veth goes down for 5 s (TCP does not break by itself). The sender's liveness check notices, it keeps the
    /// guest running, reconnects when the link is back, the receiver's new connection takes over the parked (or still open)
    /// session, only what changed is resent, and the migration completes verified.
    /// </summary>
    [Fact]
    public async Task PresyncSurvivesAFiveSecondLinkOutageBetweenNamespaces()
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        using (KvmRequirement.OpenOrSkip()) { }
        if (Environment.UserName != "root")
            Assert.Skip("needs root to create network namespaces and take the veth down (tools/netns-link.sh)");
        (int up, string upOut) = Sh(Script, "up", "1gbit");
        Assert.True(up == 0, upOut);
        try
        {
            string psk = Path.Combine(_dir, "psk");
            File.WriteAllBytes(psk, Enumerable.Repeat((byte)0x5B, 32).ToArray());
            if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(psk, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            string json = Path.Combine(_dir, "result.json");
            string cli = CliProcess.Executable;
            using var receiver = CliProcess.StartWrapped("ip", "netns", "exec", "kp-dst", cli, "receive", "--listen", "10.231.0.2:7701", "--psk-file", psk,
                "--run-seconds", "2", "--link-rate", "none");
            receiver.WaitForOutput("listening on", TimeSpan.FromSeconds(30));
            using var sender = CliProcess.StartWrapped("ip", "netns", "exec", "kp-src", cli, "run", "--workload", "text", "--memory", "256M",
                "--presync-to", "10.231.0.2:7701", "--psk-file", psk, "--reconnect-for", "60s", "--launch-after", "25s", "--link-rate", "none", "--json", json);
            sender.WaitForOutput("pre-synchronizing", TimeSpan.FromSeconds(30));
            await Task.Delay(TimeSpan.FromSeconds(8), ct);
            (int down, string downOut) = Sh("ip", "-n", "kp-src", "link", "set", "kp-veth-s", "down");
            Assert.True(down == 0, downOut);
            await Task.Delay(TimeSpan.FromSeconds(5), ct);
            (int back, string backOut) = Sh("ip", "-n", "kp-src", "link", "set", "kp-veth-s", "up");
            Assert.True(back == 0, backOut);

            int code = await sender.WaitForExitAsync(TimeSpan.FromSeconds(120), ct);
            Assert.True(code == 0, $"sender exited {code}:\n{sender.Output}\nreceiver:\n{receiver.Output}");
            Assert.Contains("memory digest verified", sender.Output);
            Assert.Contains("connection lost during sync", sender.Output);
            Assert.Contains("resumed at generation 1", sender.Output);

            using var doc = System.Text.Json.JsonDocument.Parse(File.ReadAllText(json));
            System.Text.Json.JsonElement reconnect = Assert.Single(doc.RootElement.GetProperty("reconnects").EnumerateArray());
            Assert.Equal("Resumed", reconnect.GetProperty("status").ToString());
            long resent = reconnect.GetProperty("bytesResent").GetInt64();
            double outageMs = reconnect.GetProperty("outageMs").GetDouble();
            const long guestBytes = 256L << 20;
            Assert.True(resent < guestBytes / 8, $"{resent} bytes resent after the reconnect, guest {guestBytes}:\n{sender.Output}");
            Assert.True(doc.RootElement.GetProperty("verified").GetBoolean());

            receiver.WaitForOutput("event=guest.stopped", TimeSpan.FromSeconds(30));
            Assert.Contains("event=session.resumed_connection", receiver.Output);
            receiver.Signal("TERM");
            Assert.Equal(0, await receiver.WaitForExitAsync(TimeSpan.FromSeconds(60), ct));
            TestContext.Current.SendDiagnosticMessage($"outage {outageMs / 1000:0.00} s (link down 5 s), bytes resent {resent} of a {guestBytes}-byte guest; " +
                string.Join(" | ", sender.Output.Split('\n').Where(l => l.StartsWith("reconnect", StringComparison.Ordinal) || l.StartsWith("migrated:", StringComparison.Ordinal))));
        }
        finally
        {
            Sh(Script, "down");
        }
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
