using KvmPresync.Memory;

namespace KvmPresync.Core;

/// <summary>
/// What the pre-sync engine consumes each round: the pages the guest dirtied since the previous harvest.
/// Implemented by the KVM dirty log (production) and by trace replay / synthetic workloads (simulation).
/// </summary>
/// <remarks>
/// Harvesting may clear the underlying log (KVM does), so a harvested page must never be lost: the
/// source ORs pages into a bitmap the caller owns (its pending set or a scratch bitmap it merges into
/// the pending set at once), and the caller clears a page only when it has been sent.
/// </remarks>
public interface IDirtyPageSource
{
    /// <summary>Number of guest pages covered; every bitmap passed to <see cref="Harvest"/> has this many.</summary>
    long PageCount { get; }

    /// <summary>Bytes per page (4096 for x86-64 KVM guests).</summary>
    int PageSize { get; }

    /// <summary>
    /// ORs every page dirtied since the previous harvest into <paramref name="into"/> (bits already set stay set)
    /// and returns when the harvest happened and how many pages it reported.
    /// </summary>
    DirtyHarvest Harvest(DirtyBitmap into);
}

/// <summary>Result of one <see cref="IDirtyPageSource.Harvest"/>.</summary>
/// <param name="Time">When the harvest happened, measured from the start of the source (monotonic).</param>
/// <param name="DirtyPages">Pages the source reported dirty in this harvest (before merging with what was already set).</param>
/// <param name="Progress">Guest work units completed since the previous harvest (0 when the source does not know).</param>
public readonly record struct DirtyHarvest(TimeSpan Time, long DirtyPages, ulong Progress = 0);

/// <summary>
/// A dirty source that can be looked at without harvesting: how many pages were dirtied since the last
/// <see cref="IDirtyPageSource.Harvest"/>, with nothing cleared or write-protected again (the guest does not notice). Cheap
/// enough to call every millisecond; the sender times a bursty guest's writes with it (<c>Engine.BurstClock</c>). May be
/// called from another thread than the harvests (a harvest in between makes the count drop).
/// </summary>
public interface IDirtyPagePeek
{
    /// <summary>Pages dirtied since the last harvest, and when that was read (the clock of <see cref="DirtyHarvest.Time"/>).</summary>
    DirtyPeek Peek();
}

/// <summary>Result of one <see cref="IDirtyPagePeek.Peek"/>.</summary>
public readonly record struct DirtyPeek(TimeSpan Time, long DirtyPages);
