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

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
