namespace KvmPresync.Core;

/// <summary>
/// A source whose device state does not travel in FinalState but by a path of its own — a libvirt domain, whose QEMU
/// migrates its device state with x-ignore-shared while KvmPresync moves the RAM. The sender starts the handover at
/// launch (<see cref="BeginHandover"/>), pauses the guest only when the destination reports it is ready for it
/// (protocol 1.2, DestinationReady), sends the final delta and the digest, and waits for <see cref="Handover"/> after the
/// receiver confirmed the destination runs. Any failure after <see cref="BeginHandover"/> makes the sender call
/// <see cref="IMigrationSource.Resume"/>, paused or not: it must resume a paused guest and undo what the handover set up
/// (for libvirt: clear x-ignore-shared, so a later stock migration sends the RAM).
/// </summary>
public interface IDeviceStateHandoverSource : IMigrationSource
{
    /// <summary>Starts the device-state migration; it must wait at the destination until the memory is verified there.</summary>
    void BeginHandover();

    /// <summary>Completes when the handover finished (the destination runs the guest), faults when it failed.</summary>
    Task Handover { get; }
}

/// <summary>
/// The destination half of <see cref="IDeviceStateHandoverSource"/>: memory arrives over the wire as usual; the guest's
/// device state arrives by its own path and is held until <see cref="IMigrationTarget.Resume"/> (called only after the
/// memory digest verified) releases it.
/// </summary>
public interface IDeviceStateHandoverTarget : IMigrationTarget
{
    /// <summary>Completes when the destination is ready for the source to pause (e.g. its QEMU started and is held).</summary>
    Task DestinationReady { get; }

    /// <summary>
    /// Names the presync session (hex) this memory belongs to, right after the target is created; the destination's own
    /// machinery (libvirt's hook) finds the memory by it.
    /// </summary>
    void BindSession(string sessionIdHex);
}
