namespace KvmPresync.Engine;

/// <summary>
/// What <see cref="HoldBackPlanner"/> ranks pending pages by: a rank key 0..511 per page, higher = more worth holding.
/// Pages at or above <see cref="MinHoldKey"/> are hold candidates (highest first, within the launch budget); the pages
/// not held are sent lowest key first, within the window.
/// </summary>
/// <remarks>
/// Implement it as a struct: the planner is generic over the ranking, so the JIT specializes its per-page loop for each
/// ranking and the predictor's ranking costs what it cost before the abstraction (no interface call per page).
/// </remarks>
public interface IHoldRanking
{
    /// <summary>Whether any page may be held. False: nothing is held and every key is <see cref="IdleKey"/>.</summary>
    bool Holds { get; }

    /// <summary>Lowest key that is a hold candidate.</summary>
    int MinHoldKey { get; }

    /// <summary>Key shared by every page not in <see cref="OwnKeyPages"/> (handled a 64-page word at a time).</summary>
    int IdleKey { get; }

    /// <summary>Pages of 64-page word <paramref name="word"/> that have a key of their own (<see cref="KeyOf"/>).</summary>
    ulong OwnKeyPages(int word);

    /// <summary>Rank key 0..511 of a page in <see cref="OwnKeyPages"/>.</summary>
    int KeyOf(long page);
}
