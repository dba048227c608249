using System.Text.RegularExpressions;

namespace KvmPresync.Tests.Migration;

/// <summary>What ships in contrib/ must match the command it drives.</summary>
public sealed class ContribTests
{
    private static string RepoRoot()
    {
        string? d = AppContext.BaseDirectory;
        while (d is not null && !File.Exists(Path.Combine(d, "KvmPresync.sln"))) d = Path.GetDirectoryName(d);
        return d ?? throw new InvalidOperationException("repository root not found above " + AppContext.BaseDirectory);
    }

    [Fact]
    public async Task The_systemd_units_ExecStart_is_a_receive_command_line_kvmpresync_accepts_and_the_unit_is_Type_notify()
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        string unit = await File.ReadAllTextAsync(Path.Combine(RepoRoot(), "contrib", "kvmpresync-receive.service"), ct);
        Assert.Matches(@"(?m)^Type=notify$", unit);
        string exec = Regex.Match(unit, @"(?m)^ExecStart=(\S+) (.+)$").Groups[2].Value;
        string[] args = exec.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("receive", args[0]);
        // the options parse; only the key file (absent here) stops it, with exit code 2 and a message naming the file
        int i = Array.IndexOf(args, "--psk-file");
        args[i + 1] = Path.Combine(Path.GetTempPath(), $"no-such-key-{Guid.NewGuid():N}");
        using var cli = CliProcess.Start(args);
        int code = await cli.WaitForExitAsync(TimeSpan.FromSeconds(30), ct);
        Assert.True(code == KvmPresync.Cli.ExitCodes.Error, $"exit {code}:\n{cli.Output}");
        Assert.Contains(args[i + 1], cli.Output);
        Assert.DoesNotContain("Unrecognized", cli.Output);
    }
}
