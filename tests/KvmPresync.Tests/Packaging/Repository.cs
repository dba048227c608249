using System.Diagnostics;
using System.Text;
using System.Xml.Linq;

namespace KvmPresync.Tests.Packaging;

/// <summary>The repository the tests run from: its one version (version.props) and the packages make pack wrote.</summary>
internal static class Repository
{
    public static string Root => LinuxGuest.LinuxGuestImage.RepoRoot();

    /// <summary>&lt;VersionPrefix&gt; in version.props: the one place the version is defined.</summary>
    public static string Version =>
        XDocument.Load(Path.Combine(Root, "version.props")).Descendants("VersionPrefix").Single().Value.Trim();

    public static string PackageDirectory => Path.Combine(Root, "build", "packages");

    /// <summary>build/packages/ID.VERSION.nupkg; fails (never skips) when missing: make test runs make pack first.</summary>
    public static string PackageOrFail(string id)
    {
        string path = Path.Combine(PackageDirectory, $"{id}.{Version}.nupkg");
        Assert.True(File.Exists(path), $"{path} missing: run make pack (make test runs it first)");
        return path;
    }

    /// <summary>Runs a command with its output captured; kills it (and its children) when it outlives the timeout.</summary>
    public static async Task<(int Code, string Output)> RunAsync(string file, IEnumerable<string> args, TimeSpan timeout, string? workingDirectory = null)
    {
        var psi = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true, // never written: no terminal, nothing typed
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? Root,
        };
        foreach (string a in args) psi.ArgumentList.Add(a);
        foreach (string msbuild in new[] { "MSBuildSDKsPath", "MSBUILD_EXE_PATH", "MSBuildExtensionsPath" }) psi.Environment.Remove(msbuild);
        var output = new StringBuilder();
        using var process = new Process { StartInfo = psi };
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(TestContext.Current.CancellationToken);
        cts.CancelAfter(timeout);
        try
        {
            await process.WaitForExitAsync(cts.Token);
            process.WaitForExit(); // flush the output readers
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
            lock (output) Assert.Fail($"{file} {string.Join(' ', args)} did not finish within {timeout.TotalSeconds} s:\n{output}");
        }
        lock (output) return (process.ExitCode, output.ToString());
    }

    /// <summary>The dotnet host that runs the SDK.</summary>
    public static string Dotnet => Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : "dotnet";
}
