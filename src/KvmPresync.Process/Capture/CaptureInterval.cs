namespace KvmPresync.ProcessMemory.Capture;

/// <summary>
/// One harvest of a process tree: its time since the capture started, the compact indexes of the pages written since
/// the previous harvest (ascending, each once however many processes wrote it), the processes scanned, and what
/// happened meanwhile (processes that appeared untracked, tracker errors), as lines for the user.
/// </summary>
public sealed record CaptureInterval(TimeSpan Time, long[] Pages, int Processes, IReadOnlyList<string> Notices);
