using System.Diagnostics;
using KvmPresync.Libvirt.Guest;

namespace KvmPresync.Tests.LinuxGuest;

/// <summary>
/// The project's Linux guest image (make guest-image → build/guest-image/). Built on demand when missing;
/// a test skips only when the image or qemu-system-x86_64 is absent and the build cannot provide them.
/// </summary>
internal static class LinuxGuestImage
{
    private static readonly Lazy<(string? Dir, string? Problem)> Located = new(Locate, LazyThreadSafetyMode.ExecutionAndPublication);

    public static string RepoRoot()
    {
        string? d = AppContext.BaseDirectory;
        while (d is not null && !File.Exists(Path.Combine(d, "KvmPresync.sln"))) d = Path.GetDirectoryName(d);
        return d ?? throw new InvalidOperationException("repository root not found above " + AppContext.BaseDirectory);
    }

    public static string Qemu => FindOnPath("qemu-system-x86_64") ?? "qemu-system-x86_64";

    /// <summary>The image directory (vmlinuz, initramfs.cpio.gz), or skips the test with the reason it cannot exist here.</summary>
    public static string DirectoryOrSkip()
    {
        (string? dir, string? problem) = Located.Value;
        if (dir is null) Assert.Skip(problem!);
        return dir;
    }

    private static bool Complete(string dir) =>
        File.Exists(Path.Combine(dir, "vmlinuz")) && File.Exists(Path.Combine(dir, "initramfs.cpio.gz")) && FindOnPath("qemu-system-x86_64") is not null;

    private static (string?, string?) Locate()
    {
        string root = RepoRoot(), dir = Path.Combine(root, "build", "guest-image");
        if (Complete(dir)) return (dir, null);
        // Not built yet (a test run without `make test`): build it; the script installs the packages it needs.
        var psi = new ProcessStartInfo(Path.Combine(root, "tools", "build-guest-image.sh")) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = root };
        try
        {
            using Process p = Process.Start(psi)!;
            Task<string> err = p.StandardError.ReadToEndAsync();
            p.StandardOutput.ReadToEnd();
            if (!p.WaitForExit(TimeSpan.FromMinutes(10))) { p.Kill(true); return (null, "building the Linux guest image (tools/build-guest-image.sh) took over 10 minutes"); }
            if (Complete(dir)) return (dir, null);
            string why = err.Result.Trim();
            return (null, $"the Linux guest image or qemu-system-x86_64 is missing and tools/build-guest-image.sh could not provide them (exit {p.ExitCode}): {why}");
        }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or IOException)
        {
            return (null, $"the Linux guest image or qemu-system-x86_64 is missing and tools/build-guest-image.sh could not run: {e.Message}");
        }
    }

    private static string? FindOnPath(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "/usr/bin:/bin").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Select(d => Path.Combine(d, name)).FirstOrDefault(File.Exists);
}

/// <summary>
/// One QEMU (TCG, qemu64, 1 vCPU, 256 MiB) booting the Linux guest image directly, its serial console in a file
/// of a private temporary directory. Dispose kills QEMU and removes the directory: nothing is left behind.
/// </summary>
internal sealed class QemuLinuxGuest : IAsyncDisposable
{
    private readonly Process _qemu;
    private readonly string _dir;
    private readonly Stopwatch _sinceStart;
    private readonly Task<string> _stderr;

    public string SerialPath { get; }
    public LinuxGuestConsole Console { get; } = new();
    public TimeSpan Elapsed => _sinceStart.Elapsed;

    private QemuLinuxGuest(Process qemu, string dir, string serial, Stopwatch sinceStart)
    {
        _qemu = qemu; _dir = dir; SerialPath = serial; _sinceStart = sinceStart;
        _stderr = qemu.StandardError.ReadToEndAsync();
        _ = qemu.StandardOutput.ReadToEndAsync();
    }

    public static QemuLinuxGuest Start(string imageDir, string kernelArgs)
    {
        string dir = Directory.CreateTempSubdirectory("kp-linux-guest.").FullName;
        string serial = Path.Combine(dir, "serial.log");
        var psi = new ProcessStartInfo(LinuxGuestImage.Qemu)
        {
            RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false,
        };
        foreach (string a in new[]
                 {
                     "-accel", "tcg", "-cpu", "qemu64", "-smp", "1", "-m", "256", "-nographic", "-no-reboot",
                     "-monitor", "none", "-nodefaults", "-kernel", Path.Combine(imageDir, "vmlinuz"),
                     "-initrd", Path.Combine(imageDir, "initramfs.cpio.gz"),
                     "-append", "console=ttyS0 panic=-1 pti=on " + kernelArgs, "-serial", "file:" + serial,
                 })
            psi.ArgumentList.Add(a);
        var clock = Stopwatch.StartNew();
        Process qemu = Process.Start(psi)!;
        return new QemuLinuxGuest(qemu, dir, serial, clock);
    }

    /// <summary>Polls the console until <paramref name="done"/> holds; fails with the console's tail if QEMU exits or time runs out.</summary>
    public async Task WaitUntilAsync(Func<LinuxGuestConsole, bool> done, TimeSpan timeout, string what, CancellationToken ct)
    {
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            Console.Poll(SerialPath);
            if (done(Console)) return;
            if (_qemu.HasExited)
                Assert.Fail($"QEMU exited ({_qemu.ExitCode}) before {what}: {(await _stderr).Trim()}\n{Tail()}");
            if (Console.ExitLine is { } exit)
                Assert.Fail($"the guest's workload ended before {what}: {exit}\n{Tail()}");
            if (deadline.Elapsed > timeout)
                Assert.Fail($"no {what} within {timeout.TotalSeconds:0} s\n{Tail()}");
            await Task.Delay(100, ct);
        }
    }

    public string Tail(int lines = 15)
    {
        string text = File.Exists(SerialPath) ? File.ReadAllText(SerialPath) : "(no serial output)";
        return "console tail:\n" + string.Join('\n', text.Split('\n').TakeLast(lines));
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_qemu.HasExited) _qemu.Kill(entireProcessTree: true);
            await _qemu.WaitForExitAsync();
        }
        catch (InvalidOperationException) { }
        _qemu.Dispose();
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }
}
