using KvmPresync.Core;
namespace KvmPresync.Engine;

/// <summary>
/// How many bytes may remain to be sent at launch because the predictor held them back: what the link can move within
/// <see cref="HeldShare"/> of the launch-to-resume target (default 100 ms). Holding pages is never free — every held page is
/// sent after launch — so the held set is capped by this budget; the rest of the target is left for what the guest
/// dirties while the held pages move and for the paused switchover (docs/POLICIES.md, "The launch target").
/// </summary>
public readonly record struct LaunchBudget
{
    /// <summary>Default launch-to-resume target: 100 ms (docs/POLICIES.md, "The launch target", says why).</summary>
    public static readonly TimeSpan DefaultTarget = TimeSpan.FromMilliseconds(100);

    /// <summary>The share of the launch target held-back pages may fill; the rest is the switchover's.</summary>
    public const double HeldShare = 0.8;

    public LaunchBudget(long bytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        Bytes = bytes;
    }

    /// <summary>Wire bytes that held-back pages may add to the launch delta.</summary>
    public long Bytes { get; }

    /// <summary>Budget for a link of <paramref name="bitsPerSecond"/> and a launch-time <paramref name="target"/>: floor(rate / 8 × target).</summary>
    public static LaunchBudget FromLink(double bitsPerSecond, TimeSpan target)
    {
        if (!(bitsPerSecond > 0) || double.IsInfinity(bitsPerSecond))
            throw new ArgumentOutOfRangeException(nameof(bitsPerSecond), bitsPerSecond, "link rate must be a positive, finite number of bits per second");
        if (target < TimeSpan.Zero)
            throw new ArgumentOutOfRangeException(nameof(target), target, "launch-time target must not be negative");
        return new LaunchBudget((long)Math.Floor(bitsPerSecond / 8.0 * target.TotalSeconds));
    }

    /// <summary>The hold-back budget for a launch-to-resume <paramref name="target"/>: the link's bytes in <see cref="HeldShare"/> of it.</summary>
    public static LaunchBudget ForTarget(double bitsPerSecond, TimeSpan target)
    {
        if (target < TimeSpan.Zero)
            throw new ArgumentOutOfRangeException(nameof(target), target, "launch-to-resume target must not be negative");
        return FromLink(bitsPerSecond, target * HeldShare);
    }

    /// <summary>Whole pages of <paramref name="bytesPerPage"/> wire bytes that fit the budget.</summary>
    public long Pages(long bytesPerPage)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(bytesPerPage);
        return Bytes / bytesPerPage;
    }

    public override string ToString() => $"{Bytes} bytes";
}
