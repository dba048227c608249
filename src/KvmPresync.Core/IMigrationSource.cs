using KvmPresync.Memory;

namespace KvmPresync.Core;

/// <summary>
/// The running guest a migration sender migrates. The engine sees only this: its RAM as a page space over one
/// or more regions (<see cref="GuestMemoryMap"/>), its dirty log over the same pages, pause/resume, and an opaque
/// state blob.
/// </summary>
public interface IMigrationSource
{
    GuestMemoryMap Memory { get; }

    /// <summary>Pages dirtied since the previous harvest, indexed like <see cref="Memory"/>.</summary>
    IDirtyPageSource DirtyLog { get; }

    /// <summary>The guest's total work units so far (schedule milliseconds caught up, transactions…): the application-slowdown signal.</summary>
    long ProgressTotal { get; }

    /// <summary>Stops the vCPUs (downtime starts). Must be reversible by <see cref="Resume"/>.</summary>
    void Pause();

    void Resume();

    /// <summary>
    /// vCPU + device state of the paused guest, to be restored by the destination. Called on another thread than the
    /// sender's, while the sender harvests the dirty log and sends the final delta.
    /// </summary>
    byte[] SaveState();

    /// <summary>Ends the source guest for good — called only after the destination confirmed it runs.</summary>
    void Stop();
}

/// <summary>The destination side: memory to fill, and how to resume the guest from the received state.</summary>
public interface IMigrationTarget : IDisposable
{
    /// <summary>The destination RAM, laid out as announced by the source (same regions, same order).</summary>
    GuestMemoryMap Memory { get; }

    /// <summary>Restores the state into a fresh VM over <see cref="Memory"/> and starts it; throws when it cannot.</summary>
    void Resume(ReadOnlySpan<byte> deviceState);
}
