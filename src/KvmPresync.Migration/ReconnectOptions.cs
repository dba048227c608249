using System.Net.Sockets;

namespace KvmPresync.Migration;

/// <summary>How a <see cref="PresyncSender"/> survives a lost connection during sync (<see cref="PresyncOptions.Reconnect"/>).</summary>
/// <param name="Connect">Opens a new connection to the receiver (the same address as the first one).</param>
public sealed record ReconnectOptions(Func<CancellationToken, Task<Socket>> Connect)
{
    /// <summary>The wait after the first failed attempt; doubled after each failure up to <see cref="MaxBackoff"/>.</summary>
    public TimeSpan InitialBackoff { get; init; } = TimeSpan.FromMilliseconds(250);

    public TimeSpan MaxBackoff { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Give up when the connection could not be re-established for this long; the source keeps running.</summary>
    public TimeSpan MaxOutage { get; init; } = TimeSpan.FromMinutes(2);

    /// <summary>
    /// During sync every round is acked: nothing from the receiver for this long means the link is dead (a few seconds of a
    /// downed link do not break TCP by themselves, so waiting for TCP to notice could take minutes).
    /// </summary>
    public TimeSpan LivenessTimeout { get; init; } = TimeSpan.FromSeconds(3);

    /// <summary>One connect attempt.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(3);

    /// <summary>Handshake, SessionStart and the receiver's page hashes, after connecting.</summary>
    public TimeSpan ResumeHandshakeTimeout { get; init; } = TimeSpan.FromSeconds(30);

    public void Validate()
    {
        ArgumentNullException.ThrowIfNull(Connect, nameof(Connect));
        foreach ((string name, TimeSpan value) in new[] { (nameof(InitialBackoff), InitialBackoff), (nameof(MaxBackoff), MaxBackoff), (nameof(MaxOutage), MaxOutage),
                     (nameof(LivenessTimeout), LivenessTimeout), (nameof(ConnectTimeout), ConnectTimeout), (nameof(ResumeHandshakeTimeout), ResumeHandshakeTimeout) })
            if (value <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(name, value, $"{name} must be positive");
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
