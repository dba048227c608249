using KvmPresync.Memory;

namespace KvmPresync.Core;

/// <summary>
/// The running guest a the migration sender migrates. The engine sees only this: memory as
/// spans (guest-physical address 0 up), its dirty log, pause/resume, and an opaque state blob.
/// </summary>
public interface IMigrationSource
{
    GuestMemory Memory { get; }

    IDirtyPageSource DirtyLog { get; }

    /// <summary>The guest's total work units so far (keystrokes, frames…): the application-slowdown signal.</summary>
    long ProgressTotal { get; }

    /// <summary>Stops the vCPUs (downtime starts). Must be reversible by <see cref="Resume"/>.</summary>
    void Pause();

    void Resume();

    /// <summary>vCPU + device state of the paused guest, to be restored by the destination.</summary>
    byte[] SaveState();

    /// <summary>Ends the source guest for good — called only after the destination confirmed it runs.</summary>
    void Stop();
}

/// <summary>The destination side: memory to fill, and how to resume the guest from the received state.</summary>
public interface IMigrationTarget : IDisposable
{
    GuestMemory Memory { get; }

    /// <summary>Restores the state into a fresh VM over <see cref="Memory"/> and starts it; throws when it cannot.</summary>
    void Resume(ReadOnlySpan<byte> deviceState);
}
