using System.Diagnostics;
using KvmPresync.Core;

namespace KvmPresync.ProcessMemory.Capture;

/// <summary>
/// Starts a command under the preload library in mode "all" (<c>LD_PRELOAD=libkvmpresync-track.so</c>,
/// <c>KVMPRESYNC_TRACK_ALL=1</c>, status lines to a file): its stdin, stdout, stderr and terminal stay the caller's.
/// Its children inherit the environment (exec) or are re-registered by the library's fork handler.
/// </summary>
public static class TrackedCommand
{
    public const string TrackerFileName = "libkvmpresync-track.so";

    /// <summary>Starts <paramref name="command"/>; an existing LD_PRELOAD is kept after the tracker.</summary>
    public static System.Diagnostics.Process Start(IReadOnlyList<string> command, string trackerLibrary, string statusFile)
    {
        ArgumentNullException.ThrowIfNull(command);
        if (command.Count == 0) throw new ArgumentException("no command to run", nameof(command));
        if (!File.Exists(trackerLibrary))
            throw new FileNotFoundException($"{trackerLibrary} missing: build it with make -C native (it is copied next to kvmpresync)", trackerLibrary);
        // Processes that drop to another user (runuser -u postgres, a daemon's own setuid) reopen the status file as that
        // user: it exists beforehand and others may append to it (but not read it).
        using (new FileStream(statusFile, FileMode.Append, FileAccess.Write)) { }
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(statusFile, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupWrite | UnixFileMode.OtherWrite);
        var psi = new ProcessStartInfo(command[0]) { UseShellExecute = false };
        foreach (string a in command.Skip(1)) psi.ArgumentList.Add(a);
        string? preload = Environment.GetEnvironmentVariable("LD_PRELOAD");
        psi.Environment["LD_PRELOAD"] = string.IsNullOrEmpty(preload) ? trackerLibrary : $"{trackerLibrary}:{preload}";
        psi.Environment["KVMPRESYNC_TRACK_ALL"] = "1";
        psi.Environment["KVMPRESYNC_TRACK_STATUS"] = statusFile;
        psi.Environment.Remove("KVMPRESYNC_TRACK_PATH");
        try
        {
            return System.Diagnostics.Process.Start(psi) ?? throw new InvalidOperationException($"could not start {command[0]}");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new InvalidOperationException($"could not start {command[0]}: {e.Message} (is it on PATH and executable?)", e);
        }
    }

    /// <summary>
    /// The preload library: beside <paramref name="assemblyDirectory"/>, where the app's native files are
    /// (<see cref="NativeAssets"/>: a NuGet package's runtimes/linux-x64/native), else in native/build above
    /// <paramref name="assemblyDirectory"/> (this repository); null when none has it.
    /// </summary>
    public static string? FindTracker(string assemblyDirectory)
    {
        string beside = Path.Combine(assemblyDirectory, TrackerFileName);
        if (File.Exists(beside)) return beside;
        if (NativeAssets.Find(TrackerFileName) is { } installed) return installed;
        for (DirectoryInfo? d = new(assemblyDirectory); d is not null; d = d.Parent)
        {
            string candidate = Path.Combine(d.FullName, "native", "build", TrackerFileName);
            if (File.Exists(candidate)) return candidate;
        }
        return null;
    }

    /// <summary>The preload library shipped with this app (<see cref="FindTracker(string)"/> from the app's directory).</summary>
    public static string? FindTracker() => FindTracker(AppContext.BaseDirectory);
}
