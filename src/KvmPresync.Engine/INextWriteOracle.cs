namespace KvmPresync.Engine;

/// <summary>
/// Future knowledge for <see cref="SyncPolicy.Oracle"/>: in which sync round each page is next written. Only a simulator
/// replaying a whole trace can have one (<c>KvmPresync.Trace.FutureWrites</c>); a live sender cannot.
/// </summary>
/// <remarks>Rounds are counted as the engine counts its harvests: round 0 is the first harvest, every round lasts
/// <see cref="RoundInterval"/>.</remarks>
public interface INextWriteOracle
{
    long PageCount { get; }

    /// <summary>The fixed round length the rounds are counted in.</summary>
    TimeSpan RoundInterval { get; }

    /// <summary>Pages of 64-page word <paramref name="word"/> written in at least one round known to the oracle.</summary>
    ulong WrittenWord(int word);

    /// <summary>The first round after <paramref name="round"/> whose harvest holds <paramref name="page"/>; -1 when it is
    /// not written again before the end of the oracle's horizon.</summary>
    long NextWriteRound(long page, long round);

    /// <summary>The first round whose harvest holds <paramref name="page"/>; -1 when it is never written.</summary>
    long FirstWriteRound(long page);
}
