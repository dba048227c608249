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
