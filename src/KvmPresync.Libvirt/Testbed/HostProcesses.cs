using System.Diagnostics;
using KvmPresync.Libvirt.Interop;
using KvmPresync.ProcessMemory.Interop;

namespace KvmPresync.Libvirt.Testbed;

/// <summary>Runs helper commands and stops processes by pid, for the testbed that owns them.</summary>
public static class HostProcesses
{
    /// <summary>Runs <paramref name="file"/> to completion; its exit code and stdout + stderr.</summary>
    public static (int ExitCode, string Output) Run(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi) ?? throw new InvalidOperationException($"could not start {file}");
        Task<string> err = p.StandardError.ReadToEndAsync();
        string output = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, output + err.Result);
    }

    /// <summary>Running (a zombie waiting for its reaper counts as gone).</summary>
    public static bool Alive(int pid)
    {
        try
        {
            string stat = File.ReadAllText($"/proc/{pid}/stat");
            int close = stat.LastIndexOf(')');
            return close > 0 && stat.Length > close + 2 && stat[close + 2] != 'Z';
        }
        catch (IOException) { return false; }
    }

    /// <summary>
    /// SIGTERM, then SIGKILL after <paramref name="grace"/> (at once when it is zero), and waits up to 5 s more until
    /// <paramref name="pid"/> is gone.
    /// </summary>
    public static void Stop(int pid, TimeSpan grace)
    {
        if (!Alive(pid)) return;
        ProcessLibc.Kill(pid, grace > TimeSpan.Zero ? ProcessLibc.SigTerm : ProcessLibc.SigKill);
        var watch = Stopwatch.StartNew();
        while (Alive(pid) && watch.Elapsed < grace) Thread.Sleep(20);
        if (Alive(pid)) ProcessLibc.Kill(pid, ProcessLibc.SigKill);
        watch.Restart();
        while (Alive(pid) && watch.Elapsed < TimeSpan.FromSeconds(5)) Thread.Sleep(20);
    }

    /// <summary>chmod (the testbed runs on Linux only; <see cref="PrivateLibvirtDaemon.Unavailable"/> says so elsewhere).</summary>
    public static void SetMode(string path, UnixFileMode mode)
    {
        if (!OperatingSystem.IsLinux()) throw new PlatformNotSupportedException("the libvirt testbed runs on Linux only");
        File.SetUnixFileMode(path, mode);
    }

    /// <summary>Whether this process runs as root.</summary>
    public static bool IsRoot => LibcNative.GetEffectiveUserId() == 0;

    /// <summary>The pid in <paramref name="path"/>, or null when the file is missing or holds no pid.</summary>
    public static int? ReadPidFile(string path)
    {
        try { return File.Exists(path) && int.TryParse(File.ReadAllText(path).Trim(), out int pid) && pid > 0 ? pid : null; }
        catch (IOException) { return null; }
    }
}
