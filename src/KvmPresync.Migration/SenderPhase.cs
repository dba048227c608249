using System.Text.Json.Serialization;

namespace KvmPresync.Migration;

/// <summary>
/// The sender's phases, in order:
/// <code>
/// Handshake ─▶ Sync ─(Launch())─▶ FinalLive ─(convergence: pause)─▶ Paused ─▶ AwaitingResumed ─▶ Done
///     any phase ─▶ Failed (source running or resumed)        FinalLive ─(convergence: give up)─▶ Failed
/// </code>
/// A device-state handover source (libvirt) passes through <see cref="AwaitingDestination"/> between FinalLive and Paused.
/// </summary>
[JsonConverter(typeof(JsonStringEnumConverter<SenderPhase>))]
public enum SenderPhase
{
    Invalid = 0,
    /// <summary>Connecting and authenticating both ways; nothing of the guest has been sent.</summary>
    Handshake = 1,
    /// <summary>Pre-synchronization rounds until launch is requested.</summary>
    Sync = 2,
    /// <summary>Launch requested: live rounds while the convergence policy says they pay.</summary>
    FinalLive = 3,
    /// <summary>Source vCPUs paused: the last delta, the digest and the state go out.</summary>
    Paused = 4,
    /// <summary>FinalState sent: waiting for the destination to confirm it runs.</summary>
    AwaitingResumed = 5,
    /// <summary>The destination runs; the source was stopped.</summary>
    Done = 6,
    /// <summary>The migration failed; the source guest runs (kept running, or resumed).</summary>
    Failed = 7,
    /// <summary>Device-state handover (libvirt): the guest still runs while the destination's QEMU starts and reports ready.</summary>
    AwaitingDestination = 8,
}
