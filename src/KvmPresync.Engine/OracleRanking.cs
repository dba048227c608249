using System.Numerics;

namespace KvmPresync.Engine;

/// <summary>
/// The future-knowledge bound's hold ranking: the sooner a pending page's next write, the higher its key. A page not
/// written again within the oracle's horizon is held only with budget to spare (key 1, like predict's recency fill:
/// holding it saves no send but costs no sync bytes either, it goes at launch within the budget) and only if it has
/// been written since the start; a page never written (only the initial copy) has key 0 and is never held.
/// </summary>
/// <remarks>
/// With d = rounds until the next write (≥ 1): key = 512 − d for d ≤ <see cref="ExactRounds"/> (511 … 64, one level per
/// round), then max(2, 63 − ⌊log₂(d − 448)⌋) — farther writes share logarithmic levels, ties broken in page order.
/// </remarks>
public readonly struct OracleRanking : IHoldRanking
{
    /// <summary>Distances up to this many rounds get a level of their own (44.8 s at 100 ms rounds).</summary>
    public const int ExactRounds = 448;

    /// <summary>Key of a page written before but not again within the horizon: held only with budget to spare.</summary>
    public const int SpareBudgetKey = 1;

    private readonly INextWriteOracle _oracle;
    private readonly long _round;

    /// <param name="oracle">When each page is next written.</param>
    /// <param name="round">The round being planned (its harvest already absorbed).</param>
    public OracleRanking(INextWriteOracle oracle, long round)
    {
        ArgumentNullException.ThrowIfNull(oracle);
        ArgumentOutOfRangeException.ThrowIfNegative(round);
        _oracle = oracle;
        _round = round;
    }

    public bool Holds => true;

    public int MinHoldKey => 1;

    public int IdleKey => 0;

    public ulong OwnKeyPages(int word) => _oracle.WrittenWord(word);

    public int KeyOf(long page)
    {
        long next = _oracle.NextWriteRound(page, _round);
        if (next >= 0) return KeyForDistance(next - _round);
        long first = _oracle.FirstWriteRound(page);
        return first >= 0 && first <= _round ? SpareBudgetKey : 0;
    }

    /// <summary>Rank key of a page next written <paramref name="rounds"/> (≥ 1) rounds from now.</summary>
    public static int KeyForDistance(long rounds)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(rounds);
        return rounds <= ExactRounds
            ? 512 - (int)rounds
            : Math.Max(SpareBudgetKey + 1, 63 - BitOperations.Log2((ulong)(rounds - ExactRounds)));
    }
}
