using KvmPresync.Core;

namespace KvmPresync.Engine;

/// <summary>
/// The guest's dirty rate over the sync period, from the harvests themselves: the last interval's rate and a running mean
/// (exponentially weighted over about <see cref="Rounds"/> harvests). The convergence policy reads the mean to tell a burst
/// from a quiet moment; the readiness estimate reads <see cref="WorkingSet"/>, the mean with the short-window rate the sender
/// probes now and then (<see cref="NoteShortWindow"/>), as what the guest dirties while the launch's pages move.
/// </summary>
public sealed class DirtyRateMeter
{
    /// <summary>Harvests the running mean spans (its weight is 2 / (Rounds + 1)).</summary>
    public const int Rounds = 10;

    private const double Weight = 2.0 / (Rounds + 1);
    private readonly long _bytesPerPage;
    private TimeSpan? _last;

    public DirtyRateMeter(long bytesPerPage)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(bytesPerPage);
        _bytesPerPage = bytesPerPage;
    }

    /// <summary>Bytes per second dirtied over the last harvest interval (0 before two harvests).</summary>
    public double LastBytesPerSecond { get; private set; }

    /// <summary>Running mean of the dirty rate, bytes per second (0 before two harvests).</summary>
    public double MeanBytesPerSecond { get; private set; }

    /// <summary>
    /// Running mean of the rate at which pages become newly pending (dirtied and not already pending: held or deferred pages
    /// written again do not count), bytes per second: what the pending set grows by between a harvest and a launch.
    /// </summary>
    public double MeanNewlyPendingBytesPerSecond { get; private set; }

    /// <summary>Running mean of the harvest interval (zero before two harvests).</summary>
    public TimeSpan MeanInterval { get; private set; }

    /// <summary>Running mean of the distinct dirty rate within a short probe window (0 before the first probe), bytes per second.</summary>
    public double MeanShortBytesPerSecond { get; private set; }

    /// <summary>The probe window <see cref="MeanShortBytesPerSecond"/> is measured over (its running mean).</summary>
    public TimeSpan ShortWindow { get; private set; }

    /// <summary>The guest's working-set curve: <see cref="MeanBytesPerSecond"/> over <see cref="MeanInterval"/>, and the short window's rate.</summary>
    public DirtyWorkingSet WorkingSet => new(MeanBytesPerSecond, MeanInterval, MeanShortBytesPerSecond, ShortWindow);

    /// <summary>Harvest clock of the last harvest noted.</summary>
    public TimeSpan? LastHarvestTime => _last;

    /// <summary>Takes one harvest: its time on the harvest clock, the pages it found dirty and how many of them were not pending yet.</summary>
    public void Note(in DirtyHarvest harvest, long newlyPending = 0)
    {
        if (_last is { } last && harvest.Time > last)
        {
            TimeSpan interval = harvest.Time - last;
            double seconds = interval.TotalSeconds;
            bool first = MeanBytesPerSecond == 0 && MeanNewlyPendingBytesPerSecond == 0;
            LastBytesPerSecond = harvest.DirtyPages * _bytesPerPage / seconds;
            MeanBytesPerSecond = Toward(MeanBytesPerSecond, LastBytesPerSecond, first);
            MeanNewlyPendingBytesPerSecond = Toward(MeanNewlyPendingBytesPerSecond, newlyPending * _bytesPerPage / seconds, first);
            MeanInterval = Toward(MeanInterval, interval, MeanInterval == TimeSpan.Zero);
        }
        _last = harvest.Time;
    }

    /// <summary>
    /// Takes a short probe: <paramref name="pages"/> distinct pages were dirtied within the last <paramref name="window"/> of a
    /// harvest interval (the sender harvests that much before the regular harvest now and then, and merges the two).
    /// </summary>
    public void NoteShortWindow(TimeSpan window, long pages)
    {
        if (window <= TimeSpan.Zero || pages < 0) return;
        double rate = pages * _bytesPerPage / window.TotalSeconds;
        bool first = ShortWindow == TimeSpan.Zero;
        MeanShortBytesPerSecond = Toward(MeanShortBytesPerSecond, rate, first);
        ShortWindow = Toward(ShortWindow, window, first);
    }

    /// <summary>One step of the running means: the first sample as it is, then <see cref="Weight"/> of the way towards each new one.</summary>
    private static double Toward(double mean, double sample, bool first) => first ? sample : mean + Weight * (sample - mean);

    private static TimeSpan Toward(TimeSpan mean, TimeSpan sample, bool first) => first ? sample : mean + (sample - mean) * Weight;
}
