namespace KvmPresync.Vmm.Devices;

/// <summary>One heartbeat as the guest reported it.</summary>
public readonly record struct Heartbeat(ulong Seq, ulong Prev, ulong Sum, ulong Errors);

/// <summary>
/// What the guest has told the VMM through its ports: progress, heartbeats (with continuity checked
/// here: each heartbeat's seq and prev must follow the last one), readiness and console text.
/// Written by the vCPU thread, read by anyone; a snapshot of it travels with the machine state.
/// </summary>
public sealed class GuestTelemetry
{
    private readonly object _lock = new();
    private readonly System.Text.StringBuilder _console = new();
    private const int ConsoleCap = 64 * 1024;

    public long ProgressTotal { get; private set; }
    public long HeartbeatCount { get; private set; }
    public Heartbeat? LastHeartbeat { get; private set; }
    public long ContinuityErrors { get; private set; }
    public long SelfCheckErrors { get; private set; }
    public bool Ready { get; private set; }
    public long ReadyPages { get; private set; }

    public string Console
    {
        get { lock (_lock) return _console.ToString(); }
    }

    internal void AddProgress(uint units)
    {
        lock (_lock) ProgressTotal += units;
    }

    internal void AddHeartbeat(Heartbeat hb)
    {
        lock (_lock)
        {
            if (LastHeartbeat is { } last && (hb.Seq != last.Seq + 1 || hb.Prev != last.Sum))
                ContinuityErrors++;
            SelfCheckErrors += (long)hb.Errors;
            LastHeartbeat = hb;
            HeartbeatCount++;
        }
    }

    internal void SetReady(uint pages)
    {
        lock (_lock)
        {
            Ready = true;
            ReadyPages = pages;
        }
    }

    internal void AddConsole(char c)
    {
        lock (_lock)
            if (_console.Length < ConsoleCap) _console.Append(c);
    }

    public TelemetryState Save()
    {
        lock (_lock) return new TelemetryState(ProgressTotal, HeartbeatCount, LastHeartbeat, ContinuityErrors, SelfCheckErrors, Ready, ReadyPages);
    }

    internal void Restore(TelemetryState s)
    {
        lock (_lock)
        {
            (ProgressTotal, HeartbeatCount, LastHeartbeat, ContinuityErrors, SelfCheckErrors, Ready, ReadyPages) =
                (s.ProgressTotal, s.HeartbeatCount, s.LastHeartbeat, s.ContinuityErrors, s.SelfCheckErrors, s.Ready, s.ReadyPages);
        }
    }
}

/// <summary>Saved <see cref="GuestTelemetry"/>.</summary>
public sealed record TelemetryState(long ProgressTotal, long HeartbeatCount, Heartbeat? LastHeartbeat, long ContinuityErrors,
    long SelfCheckErrors, bool Ready, long ReadyPages);
