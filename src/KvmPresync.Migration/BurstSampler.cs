using KvmPresync.Core;
using KvmPresync.Engine;

namespace KvmPresync.Migration;

/// <summary>
/// Looks at the source's dirty log about every millisecond (<see cref="IDirtyPagePeek"/>, which clears nothing) on a thread
/// of its own and feeds a <see cref="BurstClock"/>, so the convergence policy and the readiness estimate know when a bursty
/// guest writes next (<see cref="PresyncOptions.TimeBursts"/>). Runs from the start of sync until launch: the launch then
/// decides with the forecast its readiness estimate was made with (a clock that went on looking would see the launch's own
/// harvests every few milliseconds, and lose or move its grid halfway through).
/// </summary>
internal sealed class BurstSampler : IDisposable
{
    private static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(1);
    private readonly IDirtyPagePeek _peek;
    private readonly BurstClock _clock = new();
    private readonly Lock _lock = new();
    private readonly Thread _thread;
    private volatile bool _stopped;

    private BurstSampler(IDirtyPagePeek peek)
    {
        _peek = peek;
        _thread = new Thread(Loop) { IsBackground = true, Name = "kvmpresync burst clock" };
        _thread.Start();
    }

    /// <summary>A sampler over <paramref name="source"/>'s dirty log, or null when it cannot be looked at without a harvest.</summary>
    public static BurstSampler? Start(IDirtyPageSource source) => source is IDirtyPagePeek peek ? new BurstSampler(peek) : null;

    /// <summary>The last look at the dirty log: pages dirtied since the last harvest, and when (null before the first).</summary>
    public DirtyPeek? LastLook()
    {
        lock (_lock) return _lastLook;
    }

    private DirtyPeek? _lastLook;

    /// <summary>The clock's forecast now (null while the guest's writes are not periodic).</summary>
    public BurstForecast? Forecast()
    {
        lock (_lock) return _clock.Forecast();
    }

    private void Loop()
    {
        TimeSpan previous = TimeSpan.Zero;
        while (!_stopped)
        {
            DirtyPeek p;
            try
            {
                p = _peek.Peek();
            }
            catch (Exception)
            {
                return; // the source went away with the run, or cannot be looked at: no clock is no harm (the working-set curve stays)
            }
            lock (_lock)
            {
                if (_stopped) return;
                _clock.Observe(previous, p.Time, p.DirtyPages);
                _lastLook = p;
            }
            previous = p.Time;
            Thread.Sleep(Interval);
        }
    }

    /// <summary>
    /// Stops looking, without waiting for the thread (at launch, which should not wait for it); the forecast no longer changes
    /// once this returns.
    /// </summary>
    public void Stop()
    {
        lock (_lock) _stopped = true;
    }

    /// <summary>Stops looking and waits for the thread.</summary>
    public void Dispose()
    {
        _stopped = true;
        if (Thread.CurrentThread != _thread) _thread.Join();
    }
}
