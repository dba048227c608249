using System.Numerics;

namespace KvmPresync.Engine;

/// <summary>
/// The future-knowledge bound's hold ranking: the sooner a pending page's next write, the higher its key; a page not
/// written again within the oracle's horizon has key 0 and is never held (sent as <c>none</c> would).
/// </summary>
/// <remarks>
/// With d = rounds until the next write (≥ 1): key = 512 − d for d ≤ <see cref="ExactRounds"/> (511 … 64, one level per
/// round), then 63 − ⌊log₂(d − 448)⌋ (≥ 1) — farther writes share logarithmic levels, ties broken in page order.
/// </remarks>
public readonly struct OracleRanking : IHoldRanking
{
    /// <summary>Distances up to this many rounds get a level of their own (44.8 s at 100 ms rounds).</summary>
    public const int ExactRounds = 448;

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
        return next < 0 ? 0 : KeyForDistance(next - _round);
    }

    /// <summary>Rank key of a page next written <paramref name="rounds"/> (≥ 1) rounds from now.</summary>
    public static int KeyForDistance(long rounds)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(rounds);
        return rounds <= ExactRounds
            ? 512 - (int)rounds
            : Math.Max(1, 63 - BitOperations.Log2((ulong)(rounds - ExactRounds)));
    }
}
