using KvmPresync.Core;
using KvmPresync.Memory;

namespace KvmPresync.Libvirt.Presync;

/// <summary>
/// One presync session's destination for a libvirt domain: the RAM file the receiver fills during presync (in
/// <see cref="LibvirtDestinationOptions.RamDirectory"/>). At launch the destination's libvirt starts QEMU: the hook links
/// this file in as QEMU's RAM before QEMU runs ("start"), then holds the started QEMU ("started": <see cref="DestinationReady"/>)
/// until <see cref="Resume"/> — called only once the memory digest verified — releases it with x-ignore-shared set, so
/// QEMU loads only the device state. Resume returns when the domain runs. Disposing before that fails the held start
/// (libvirt abandons it; the source keeps its guest) and removes the file.
/// </summary>
public sealed class LibvirtRamTarget : IDeviceStateHandoverTarget
{
    private readonly LibvirtDestination _destination;
    private readonly GuestMemory _ram;
    private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource<string?> _verdict = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _released = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _disposed;

    internal LibvirtRamTarget(LibvirtDestination destination, string ramPath, GuestMemory ram)
    {
        _destination = destination;
        RamPath = ramPath;
        _ram = ram;
        Memory = GuestMemoryMap.Single(ram);
    }

    /// <summary>The RAM file (this receiver's name for it; QEMU's is a hard link).</summary>
    public string RamPath { get; }

    public GuestMemoryMap Memory { get; }

    /// <summary>The presync session this memory belongs to (hex), bound by the receiver.</summary>
    public string? SessionId { get; private set; }

    /// <summary>The destination domain, once the hook reported its start.</summary>
    public Guid? DomainUuid { get; internal set; }

    public Task DestinationReady => _ready.Task;

    /// <summary>The verdict the held hook waits for: null = memory verified, go; else why not.</summary>
    internal Task<string?> Verdict => _verdict.Task;

    internal void MarkReady() => _ready.TrySetResult();

    internal void MarkReleased(Exception? failure)
    {
        if (failure is null) _released.TrySetResult();
        else _released.TrySetException(failure);
    }

    internal void FailStart(Exception why) => _ready.TrySetException(why);

    public void BindSession(string sessionIdHex)
    {
        SessionId = sessionIdHex;
        _destination.Register(sessionIdHex, this);
    }

    public void Resume(ReadOnlySpan<byte> deviceState)
    {
        HandoverDescriptor descriptor = HandoverDescriptor.Parse(deviceState);
        if (descriptor.MemoryBytes != Memory.SizeBytes)
            throw new InvalidDataException($"the descriptor says {descriptor.MemoryBytes} bytes of RAM, the session has {Memory.SizeBytes}");
        if (DomainUuid is { } started && started != descriptor.Uuid)
            throw new InvalidDataException($"the memory belongs to domain {descriptor.Uuid}, but the QEMU held here runs domain {started}");
        _verdict.TrySetResult(null);
        if (!_released.Task.Wait(_destination.Options.HoldTimeout))
            throw new TimeoutException($"the libvirt hook did not release domain {descriptor.Name} within {_destination.Options.HoldTimeout.TotalSeconds:0} s");
        if (_released.Task.Exception is { } e) throw new InvalidOperationException($"releasing domain {descriptor.Name} failed: {e.GetBaseException().Message}", e.GetBaseException());
        _destination.WaitRunning(descriptor.Uuid, descriptor.Name);
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _verdict.TrySetResult("the presync session ended before its memory was verified; the source guest keeps running");
        _ready.TrySetException(new ObjectDisposedException(nameof(LibvirtRamTarget)));
        _ = _ready.Task.Exception; // observed
        if (SessionId is { } id) _destination.Unregister(id, this);
        Memory.Dispose();
        _ram.Dispose();
        try { File.Delete(RamPath); } catch (IOException) { } // QEMU's hard link, if any, keeps the running guest's RAM
    }
}
