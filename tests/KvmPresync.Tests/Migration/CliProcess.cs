using System.Diagnostics;
using System.Text;

namespace KvmPresync.Tests.Migration;

/// <summary>The <c>kvmpresync</c> CLI (published next to the tests) run as a separate process, output captured.</summary>
internal sealed class CliProcess : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();

    private CliProcess(Process process)
    {
        _process = process;
        _process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (_output) _output.AppendLine(e.Data); };
        _process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (_output) _output.AppendLine(e.Data); };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    public static string Executable => Path.Combine(AppContext.BaseDirectory, "kvmpresync");

    public string Output
    {
        get { lock (_output) return _output.ToString(); }
    }

    public static CliProcess Start(params string[] args) => StartWrapped(Executable, args);

    /// <summary>Starts the CLI with extra environment variables (e.g. NOTIFY_SOCKET).</summary>
    public static CliProcess StartWithEnvironment(IReadOnlyDictionary<string, string> environment, params string[] args) =>
        StartWrapped(Executable, args, environment);

    public int Id => _process.Id;

    public bool HasExited => _process.HasExited;

    /// <summary>Sends a signal (e.g. "TERM", "INT") to the process.</summary>
    public void Signal(string name)
    {
        using var kill = Process.Start(new ProcessStartInfo("kill", $"-{name} {_process.Id}") { UseShellExecute = false })!;
        kill.WaitForExit();
    }

    /// <summary>Starts <paramref name="file"/> (e.g. <c>ip netns exec NS kvmpresync …</c>) with captured output.</summary>
    public static CliProcess StartWrapped(string file, params string[] args) => StartWrapped(file, args, null);

    private static CliProcess StartWrapped(string file, string[] args, IReadOnlyDictionary<string, string>? environment)
    {
        var psi = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true, // no TTY: plain progress lines, no Enter-to-launch
            UseShellExecute = false,
        };
        foreach (string a in args) psi.ArgumentList.Add(a);
        if (environment is not null)
            foreach ((string name, string value) in environment) psi.Environment[name] = value;
        return new CliProcess(Process.Start(psi) ?? throw new InvalidOperationException($"could not start {file}"));
    }

    /// <summary>Waits for a line containing <paramref name="text"/>.</summary>
    public void WaitForOutput(string text, TimeSpan timeout)
    {
        var sw = Stopwatch.StartNew();
        while (!Output.Contains(text, StringComparison.Ordinal))
        {
            if (_process.HasExited) Assert.Fail($"kvmpresync exited ({_process.ExitCode}) before printing '{text}':\n{Output}");
            if (sw.Elapsed > timeout) Assert.Fail($"kvmpresync did not print '{text}' within {timeout.TotalSeconds} s:\n{Output}");
            Thread.Sleep(20);
        }
    }

    public async Task<int> WaitForExitAsync(TimeSpan timeout, CancellationToken ct)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        cts.CancelAfter(timeout);
        await _process.WaitForExitAsync(cts.Token);
        _process.WaitForExit(); // flush the output readers
        return _process.ExitCode;
    }

    public void Kill() => _process.Kill(entireProcessTree: true);

    public void Dispose()
    {
        if (!_process.HasExited) _process.Kill(entireProcessTree: true);
        _process.Dispose();
    }
}
