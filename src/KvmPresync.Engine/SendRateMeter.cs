namespace KvmPresync.Engine;

/// <summary>
/// The rate pending pages actually leave the sender, measured on the sync rounds that moved at least
/// <see cref="MinRoundBytes"/>: page bytes planned (as <see cref="PageCost.FullPageBytes"/> counts them) over the time the
/// round's send took — hashing, compressing and the link together, with the guest and the receiver sharing the CPUs as they
/// will after launch. A decayed total over recent rounds, so one slow round does not swing it. Below the link rate times the
/// compression speed-up when the CPU, not the link, is the bottleneck.
/// </summary>
public sealed class SendRateMeter
{
    /// <summary>Rounds that moved fewer page bytes say more about per-round costs than about the rate; they are left out.</summary>
    public const long MinRoundBytes = 1 << 20;

    /// <summary>Weight kept by the previous rounds at each new one (about ten rounds' memory).</summary>
    private const double Decay = 0.8;

    private double _bytes;
    private double _seconds;

    /// <summary>Page bytes per second over the recent large rounds; null before the first.</summary>
    public double? BytesPerSecond => _seconds > 0 ? _bytes / _seconds : null;

    /// <summary>Takes one round: <paramref name="pageBytes"/> moved in <paramref name="took"/>.</summary>
    public void Note(long pageBytes, TimeSpan took)
    {
        if (pageBytes < MinRoundBytes || took <= TimeSpan.Zero) return;
        _bytes = _bytes * Decay + pageBytes;
        _seconds = _seconds * Decay + took.TotalSeconds;
    }
}
