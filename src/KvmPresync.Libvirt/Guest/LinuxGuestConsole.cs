using System.Diagnostics;
using System.Text;

namespace KvmPresync.Libvirt.Guest;

/// <summary>
/// Reads the Linux guest's serial console (a file QEMU appends to) and checks the heartbeat chain: every
/// heartbeat must continue the one before (seq + 1, prev = last sum). Breaks are kept as <see cref="Gaps"/>;
/// other lines (kernel messages, KPSTART/KPREADY/KPEXIT, the workload's self-check reports) are kept too.
/// One console can follow a guest across a migration: <see cref="Poll"/> the source's file, then the destination's,
/// in that order each time (a line cut by the switchover continues in the second file). Each heartbeat's
/// <see cref="Arrivals">arrival</see> records which file completed it and when it was read.
/// </summary>
public sealed class LinuxGuestConsole
{
    private readonly List<HeartbeatLine> _heartbeats = [];
    private readonly List<HeartbeatGap> _gaps = [];
    private readonly List<HeartbeatArrival> _arrivals = [];
    private readonly List<string> _otherLines = [];
    private readonly StringBuilder _partial = new();
    private readonly Dictionary<string, long> _offsets = new(StringComparer.Ordinal);
    private string? _file;

    public IReadOnlyList<HeartbeatLine> Heartbeats => _heartbeats;
    public IReadOnlyList<HeartbeatGap> Gaps => _gaps;

    /// <summary>Where and when each heartbeat was read, index for index with <see cref="Heartbeats"/>.</summary>
    public IReadOnlyList<HeartbeatArrival> Arrivals => _arrivals;
    public IReadOnlyList<string> OtherLines => _otherLines;
    public HeartbeatLine? Last => _heartbeats.Count > 0 ? _heartbeats[^1] : null;

    /// <summary>Heartbeats since the last gap (or since the first), i.e. the current unbroken run.</summary>
    public int CurrentRun { get; private set; }

    /// <summary>The workload's "KPREADY ..." line, once seen: its setup is done and the workload runs.</summary>
    public string? ReadyLine { get; private set; }

    /// <summary>Index in <see cref="Heartbeats"/> of the first heartbeat after <see cref="ReadyLine"/>.</summary>
    public int? FirstHeartbeatAfterReady { get; private set; }

    public string? ExitLine { get; private set; }

    /// <summary>Feeds one complete console line.</summary>
    public void Feed(string line)
    {
        line = line.TrimEnd('\r', '\n');
        if (!HeartbeatLine.TryParse(line, out HeartbeatLine hb))
        {
            if (line.Contains("KPHB", StringComparison.Ordinal)) _otherLines.Add("malformed heartbeat: " + line);
            else _otherLines.Add(line);
            if (line.StartsWith("KPREADY", StringComparison.Ordinal)) ReadyLine = line;
            if (line.StartsWith("KPEXIT", StringComparison.Ordinal) || line.StartsWith("KPINIT workload ended", StringComparison.Ordinal)) ExitLine ??= line;
            return;
        }
        if (_heartbeats.Count > 0 && !hb.Continues(_heartbeats[^1]))
        {
            _gaps.Add(new HeartbeatGap(_heartbeats[^1], hb));
            CurrentRun = 0;
        }
        if (ReadyLine is not null && FirstHeartbeatAfterReady is null) FirstHeartbeatAfterReady = _heartbeats.Count;
        _heartbeats.Add(hb);
        _arrivals.Add(new HeartbeatArrival(_file, Stopwatch.GetTimestamp()));
        CurrentRun++;
    }

    /// <summary>Feeds text as it arrives (any chunking); an unfinished last line waits for the rest.</summary>
    public void FeedText(string text)
    {
        foreach (char c in text)
        {
            if (c == '\n') { Feed(_partial.ToString()); _partial.Clear(); }
            else _partial.Append(c);
        }
    }

    /// <summary>Reads whatever was appended to <paramref name="path"/> since the last call for that path.</summary>
    public void Poll(string path)
    {
        if (!File.Exists(path)) return;
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        long offset = _offsets.GetValueOrDefault(path);
        if (stream.Length <= offset) return;
        stream.Seek(offset, SeekOrigin.Begin);
        byte[] buffer = new byte[stream.Length - offset];
        int n = stream.ReadAtLeast(buffer, buffer.Length, throwOnEndOfStream: false);
        _offsets[path] = offset + n;
        _file = path;
        try { FeedText(Encoding.Latin1.GetString(buffer, 0, n)); }
        finally { _file = null; }
    }

    /// <summary>Lines the workload printed about self-check mismatches ("kp-guest: heartbeat N: page ...").</summary>
    public IEnumerable<string> SelfCheckReports => _otherLines.Where(l => l.Contains("kp-guest: heartbeat", StringComparison.Ordinal));
}

/// <summary>
/// Where a heartbeat was read: the console file whose poll completed its line (null when fed directly) and the
/// <see cref="Stopwatch.GetTimestamp"/> of that read.
/// </summary>
public readonly record struct HeartbeatArrival(string? File, long Timestamp);
