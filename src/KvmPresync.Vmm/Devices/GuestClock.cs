using System.Diagnostics;

namespace KvmPresync.Vmm.Devices;

/// <summary>
/// The guest's clock in microseconds: runs only while the guest runs, so a pause (or a migration's
/// downtime) is not seen by the guest as a stall to catch up on. Saved and restored with the machine.
/// </summary>
public sealed class GuestClock
{
    private readonly Stopwatch _running = new();
    private long _baseUs;

    public GuestClock(long startUs = 0) => _baseUs = startUs;

    public long NowUs => _baseUs + (long)(_running.ElapsedTicks * (1_000_000.0 / Stopwatch.Frequency));

    public bool IsRunning => _running.IsRunning;

    public void Start() => _running.Start();

    public void Stop() => _running.Stop();
}
