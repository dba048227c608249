namespace KvmPresync.Engine;

/// <summary>Which pre-sync policy a run (live or simulated) uses.</summary>
public enum SyncPolicy
{
    /// <summary>Send every pending page each round, limited only by what the link moves in a round.</summary>
    None = 1,

    /// <summary>As <see cref="None"/>, but the predictor holds back pages about to change again, within the launch budget.</summary>
    Predict = 2,

    /// <summary>As <see cref="Predict"/>, with the slow-start window and adaptive interval deciding how much each round sends.</summary>
    PredictSlowStart = 3,

    /// <summary>Slow-start window without prediction: every pending page is due, paced by the window (the paper's "presync" baseline).</summary>
    SlowStart = 4,

    /// <summary>
    /// Future-knowledge bound (simulation only): as <see cref="Predict"/>, but the held pages are the pending pages whose
    /// next write comes soonest, read from the trace's future (<see cref="INextWriteOracle"/>). A live sender cannot know
    /// the future and refuses it.
    /// </summary>
    Oracle = 5,
}

/// <summary>Parses and prints policy names as the CLI spells them: none | slowstart | predict | predict+slowstart | oracle.</summary>
public static class SyncPolicyNames
{
    public static string Name(this SyncPolicy policy) => policy switch
    {
        SyncPolicy.None => "none",
        SyncPolicy.Predict => "predict",
        SyncPolicy.PredictSlowStart => "predict+slowstart",
        SyncPolicy.SlowStart => "slowstart",
        SyncPolicy.Oracle => "oracle",
        _ => throw new ArgumentOutOfRangeException(nameof(policy), policy, "unknown policy"),
    };

    public static SyncPolicy Parse(string name) => name.Trim().ToLowerInvariant() switch
    {
        "none" => SyncPolicy.None,
        "predict" => SyncPolicy.Predict,
        "predict+slowstart" or "predict-slowstart" or "predictslowstart" => SyncPolicy.PredictSlowStart,
        "slowstart" => SyncPolicy.SlowStart,
        "oracle" => SyncPolicy.Oracle,
        _ => throw new ArgumentException($"unknown sync policy \"{name}\"; expected none, slowstart, predict, predict+slowstart or oracle", nameof(name)),
    };
}
