using System.Net.Sockets;

namespace KvmPresync.Migration;

/// <summary>How a <see cref="PresyncSender"/> survives a lost connection during sync (<see cref="PresyncOptions.Reconnect"/>).</summary>
/// <param name="Connect">Opens a new connection to the receiver (the same address as the first one).</param>
public sealed record ReconnectOptions(Func<CancellationToken, Task<Socket>> Connect)
{
    /// <summary>Opens a new connection to the receiver (the same address as the first one).</summary>
    public Func<CancellationToken, Task<Socket>> Connect { get; init => field = OptionGuard.NotNull(value, nameof(ReconnectOptions)); }
        = OptionGuard.NotNull(Connect, nameof(ReconnectOptions), nameof(Connect));

    /// <summary>The wait after the first failed attempt; doubled after each failure up to <see cref="MaxBackoff"/>.</summary>
    public TimeSpan InitialBackoff { get; init => field = OptionGuard.Positive(value, nameof(ReconnectOptions)); } = TimeSpan.FromMilliseconds(250);

    public TimeSpan MaxBackoff { get; init => field = OptionGuard.Positive(value, nameof(ReconnectOptions)); } = TimeSpan.FromSeconds(5);

    /// <summary>Give up when the connection could not be re-established for this long; the source keeps running.</summary>
    public TimeSpan MaxOutage { get; init => field = OptionGuard.Positive(value, nameof(ReconnectOptions)); } = TimeSpan.FromMinutes(2);

    /// <summary>
    /// During sync every round is acked: nothing from the receiver for this long means the link is dead (a few seconds of a
    /// downed link do not break TCP by themselves, so waiting for TCP to notice could take minutes).
    /// </summary>
    public TimeSpan LivenessTimeout { get; init => field = OptionGuard.Positive(value, nameof(ReconnectOptions)); } = TimeSpan.FromSeconds(3);

    /// <summary>One connect attempt.</summary>
    public TimeSpan ConnectTimeout { get; init => field = OptionGuard.Positive(value, nameof(ReconnectOptions)); } = TimeSpan.FromSeconds(3);

    /// <summary>Handshake, SessionStart and the receiver's page hashes, after connecting.</summary>
    public TimeSpan ResumeHandshakeTimeout { get; init => field = OptionGuard.Positive(value, nameof(ReconnectOptions)); } = TimeSpan.FromSeconds(30);

    /// <summary>Checks across options (each alone is checked when it is set): the backoff cap is not below the first wait.</summary>
    public void Validate()
    {
        if (MaxBackoff < InitialBackoff)
            throw new ArgumentOutOfRangeException(nameof(MaxBackoff), MaxBackoff,
                $"ReconnectOptions.MaxBackoff must be at least InitialBackoff ({OptionGuard.Show(InitialBackoff)}), got {OptionGuard.Show(MaxBackoff)}");
    }
}

/// <summary>One reconnection during sync, as the sender saw it.</summary>
public sealed record ReconnectRecord
{
    /// <summary>Time since the sender started when the loss was detected, ms.</summary>
    public required double LostAtMs { get; init; }

    /// <summary>Why the connection was considered lost.</summary>
    public required string Cause { get; init; }

    /// <summary>Loss detected → the new connection's session resumed (or restarted), ms. A silent link is detected only after <see cref="ReconnectOptions.LivenessTimeout"/> of silence, which comes on top.</summary>
    public required double OutageMs { get; init; }

    /// <summary>Connection attempts it took.</summary>
    public required int Attempts { get; init; }

    /// <summary>Resumed (the receiver kept the memory) or Unknown (it had none: the sender started over).</summary>
    [System.Text.Json.Serialization.JsonConverter(typeof(System.Text.Json.Serialization.JsonStringEnumConverter<Wire.SessionStatus>))]
    public required Wire.SessionStatus Status { get; init; }

    /// <summary>The session's generation on the new connection.</summary>
    public required uint Generation { get; init; }

    /// <summary>Pages the resume marked for sending: the receiver's hash differed from what the sender had last sent (all pages when starting over).</summary>
    public required long PagesToResend { get; init; }

    /// <summary>
    /// Wire bytes sent from the reconnection until every page the receiver lacked — marked by the resume, still pending, or
    /// changed during the outage — had been sent (or launch, or the next loss): the "bytes resent". Null until then.
    /// </summary>
    public long? BytesResent { get; init; }

    /// <summary>Whether every marked page was sent before launch or the next loss.</summary>
    public bool CaughtUp { get; init; }
}
