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

    private static string TextTrace([System.Runtime.CompilerServices.CallerFilePath] string here = "") =>
        Path.GetFullPath(Path.Combine(Path.GetDirectoryName(here)!, "..", "..", "data", "traces", "text.kptrace"));

    [Theory]
    [InlineData("--warmup", "10x", "is not a duration")]
    [InlineData("--duration", "5parsecs", "is not a duration")]
    [InlineData("--launch-target", "soon", "is not a duration")]
    public async Task ABadDurationNamesItsOption(string option, string value, string says)
    {
        await AssertFailsAsync(ExitCodes.Error, $"kvmpresync: error: {option}: '{value}' {says}", "simulate", "--trace", TextTrace(), option, value);
    }

    /// <summary>Runs the CLI and asserts that it exits with <paramref name="code"/> and says <paramref name="says"/>; returns the output.</summary>
    private static async Task<string> AssertFailsAsync(int code, string says, params string[] args)
    {
        (int exit, string output) = await RunAsync(args);
        Assert.Equal(code, exit);
        Assert.Contains(says, output);
        return output;
    }

    /// <summary>
    /// Runs the CLI with a valid key file (each "KEY" in <paramref name="args"/> becomes its path) and asserts that it fails
    /// with the error code and <paramref name="says"/>; returns the output.
    /// </summary>
    private static async Task<string> AssertFailsWithKeyAsync(string says, params string[] args)
    {
        string dir = Directory.CreateTempSubdirectory("kvmpresync-test").FullName;
        try
        {
            string key = CliTestSupport.WriteKey(dir, 7);
            return await AssertFailsAsync(ExitCodes.Error, says, [.. args.Select(a => a == "KEY" ? key : a)]);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task ReceiveNamesTheOptionOfABadSizeOrANonPositiveTimeout()
    {
        string listen = $"127.0.0.1:{CliTestSupport.FreePort()}";
        await AssertFailsWithKeyAsync("kvmpresync: error: --max-memory: '1Q' is not a size",
            "receive", "--once", "--listen", listen, "--psk-file", "KEY", "--max-memory", "1Q");
        string output = await AssertFailsWithKeyAsync("kvmpresync: error: --handshake-timeout: '0' must be a positive duration",
            "receive", "--once", "--listen", listen, "--psk-file", "KEY", "--handshake-timeout", "0");
        Assert.DoesNotContain("ReceiverOptions", output);
    }

    [Fact]
    public async Task RunRefusesTheOraclePolicyAndABadBaselineBeforeItBootsAGuest()
    {
        // no /dev/kvm needed: both are refused before the guest boots
        string output = await AssertFailsAsync(ExitCodes.Error, "--policy oracle is a future-knowledge bound",
            "run", "--workload", "idle", "--memory", "64M", "--policy", "oracle", "--seconds", "1");
        Assert.DoesNotContain("booting", output);
        output = await AssertFailsWithKeyAsync("kvmpresync: error: --baseline-seconds: '5x' is not a duration",
            "run", "--workload", "idle", "--memory", "64M", "--presync-to", "127.0.0.1:9", "--psk-file", "KEY", "--baseline-seconds", "5x");
        Assert.DoesNotContain("booting", output);
    }

    [Fact]
    public async Task AParseErrorIsOneLineInOurWordsAndPointsAtTheCommandsHelp()
    {
        string output = await AssertFailsAsync(ExitCodes.Usage, "kvmpresync: error: --seconds: '2s' is not a number of seconds", "run", "--seconds", "2s");
        Assert.Contains("run 'kvmpresync run --help' for the options", output);
        Assert.DoesNotContain("System.Double", output);
        Assert.DoesNotContain("Description:", output); // not the whole help after the error
        await AssertFailsAsync(ExitCodes.Usage, "run 'kvmpresync trace info --help' for the options", "trace", "info");
        await AssertFailsAsync(ExitCodes.Usage, "kvmpresync: error: --runs: 'x' is not a whole number", "repro", "--runs", "x");
    }

    [Fact]
    public async Task TraceInfoSaysWhatIsWrongWithAMissingFileOrADirectory()
    {
        await AssertFailsAsync(ExitCodes.Error, "trace file /nonexistent.kptrace does not exist; record one with 'kvmpresync trace record'",
            "trace", "info", "/nonexistent.kptrace");
        string dir = Directory.CreateTempSubdirectory("kvmpresync-test").FullName;
        try
        {
            await AssertFailsAsync(ExitCodes.Error, $"{dir} is a directory, not a trace file", "trace", "info", dir);
        }
        finally
        {
            Directory.Delete(dir);
        }
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
