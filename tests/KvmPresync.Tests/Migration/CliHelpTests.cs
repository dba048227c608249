using KvmPresync.Core;
using KvmPresync.Engine;
using KvmPresync.Cli;
using KvmPresync.Trace;

namespace KvmPresync.Tests.Migration;

/// <summary>The published <c>kvmpresync</c>'s --help, option names and exit codes, run as a process.</summary>
public sealed class CliHelpTests
{
    private static async Task<(int Code, string Output)> RunAsync(params string[] args)
    {
        using var cli = CliProcess.Start(args);
        int code = await cli.WaitForExitAsync(TimeSpan.FromSeconds(60), TestContext.Current.CancellationToken);
        return (code, cli.Output);
    }

    [Fact]
    public async Task RootHelpNamesTheCommandKvmpresyncAndListsEveryExitCode()
    {
        (int code, string output) = await RunAsync("--help");
        Assert.Equal(ExitCodes.Ok, code);
        Assert.Contains("kvmpresync [command] [options]", output);
        Assert.DoesNotContain("KvmPresync.Cli", output);
        Assert.Contains("Exit codes:", output);
        foreach ((int c, string meaning) in ExitCodes.All)
            Assert.Matches($@"(?m)^\s+{c}\s+{System.Text.RegularExpressions.Regex.Escape(meaning)}\s*$", output);
    }

    [Theory]
    [InlineData("run")]
    [InlineData("receive")]
    [InlineData("simulate")]
    [InlineData("repro")]
    [InlineData("trace", "record")]
    [InlineData("trace", "info")]
    public async Task CommandHelpUsageLinesSayKvmpresync(params string[] command)
    {
        (int code, string output) = await RunAsync([.. command, "--help"]);
        Assert.Equal(ExitCodes.Ok, code);
        Assert.Contains($"kvmpresync {string.Join(' ', command)} ", output);
        Assert.DoesNotContain("KvmPresync.Cli", output);
    }

    [Fact]
    public async Task PageContentIsAnOptionOfEveryCommandThatBootsAGuestAndABadValueSaysWhatIsAccepted()
    {
        foreach (string[] command in new[] { new[] { "run" }, ["trace", "record"], ["repro"] })
        {
            (_, string output) = await RunAsync([.. command, "--help"]);
            Assert.Contains("--page-content <page-content>", output);
            Assert.Contains("random", output);
        }
        (int code, string bad) = await RunAsync("run", "--page-content", "2", "--seconds", "0");
        Assert.Equal(ExitCodes.Error, code); // refused before any guest boots
        Assert.Contains("--page-content", bad);
        Assert.Contains("'random'", bad);
    }

    [Fact]
    public async Task LinkRateIsARateInEveryCommandAndRenamedOptionsAreGone()
    {
        foreach (string command in new[] { "run", "receive", "simulate", "repro" })
        {
            (_, string output) = await RunAsync(command, "--help");
            Assert.Contains("--link-rate <link-rate>", output);
            Assert.DoesNotContain("--link <", output);
            Assert.DoesNotContain("--max-final-rounds", output);
        }
        Assert.Contains("--link-kind <link-kind>", (await RunAsync("repro", "--help")).Output);
        Assert.Contains("--max-final-duration <max-final-duration>", (await RunAsync("run", "--help")).Output);
        (int code, string output2) = await RunAsync("simulate", "--trace", "x", "--link", "1gbit");
        Assert.Equal(ExitCodes.Usage, code);
        Assert.Contains("--link", output2);
    }

    [Fact]
    public async Task ReproTakesPauseAtQuietForItsOwnGuestsOnly()
    {
        Assert.Contains("--pause-at-quiet <pause-at-quiet>", (await RunAsync("repro", "--help")).Output);
        (int code, string output) = await RunAsync("repro", "--target", "libvirt", "--pause-at-quiet", "40ms");
        Assert.NotEqual(ExitCodes.Ok, code);
        Assert.Contains("--pause-at-quiet apply to --target kvm runs", output);
        (code, output) = await RunAsync("repro", "--pause-at-quiet", "0ms");
        Assert.NotEqual(ExitCodes.Ok, code);
        Assert.Contains("must be a positive duration", output);
    }

    [Theory]
    [InlineData("run")]
    [InlineData("simulate")]
    public async Task PolicyHelpListsEveryPolicy(string command)
    {
        (_, string output) = await RunAsync(command, "--help");
        foreach (SyncPolicy p in Enum.GetValues<SyncPolicy>())
            Assert.Contains($"{p.Name()} (", output);
    }

    [Fact]
    public async Task ABadOptionValueExitsWithTheErrorCodeAndNamesKvmpresync()
    {
        (int code, string output) = await RunAsync("simulate", "--trace", "/nonexistent/trace", "--policy", "bogus");
        Assert.Equal(ExitCodes.Error, code);
        Assert.Contains("kvmpresync: error:", output);
    }

    [Fact]
    public void MaxMemoryDefaultIsTheHostsMemAvailable()
    {
        string file = Path.GetTempFileName();
        try
        {
            File.WriteAllText(file, "MemTotal:       16318480 kB\nMemFree:         1234567 kB\nMemAvailable:   12345678 kB\nBuffers:          1000 kB\n");
            Assert.Equal(12345678L * 1024, HostMemory.AvailableBytes(file));
            File.WriteAllText(file, "MemTotal:       16318480 kB\n");
            Assert.Throws<InvalidOperationException>(() => HostMemory.AvailableBytes(file));
        }
        finally
        {
            File.Delete(file);
        }
        if (File.Exists("/proc/meminfo")) Assert.True(HostMemory.AvailableBytes() > 0);
    }

    [Fact]
    public void ReadmeListsEveryExitCode()
    {
        string? dir = AppContext.BaseDirectory;
        while (dir is not null && !File.Exists(Path.Combine(dir, "README.md"))) dir = Path.GetDirectoryName(dir);
        Assert.NotNull(dir);
        string readme = File.ReadAllText(Path.Combine(dir, "README.md"));
        foreach ((int c, _) in ExitCodes.All)
            Assert.Matches($@"(?m)^\| {c} \|", readme);
    }
}
