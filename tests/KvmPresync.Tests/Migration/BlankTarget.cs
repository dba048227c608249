using KvmPresync.Core;
using KvmPresync.Memory;
using KvmPresync.Migration;
using KvmPresync.Wire;

namespace KvmPresync.Tests.Migration;

/// <summary>A receiver's target with fresh (all-zero) memory of the sender's layout, and no guest to resume.</summary>
internal sealed class BlankTarget(MemoryLayout layout) : IMigrationTarget
{
    public GuestMemoryMap Memory { get; } = GuestMemoryMap.Single(GuestMemory.Create((long)layout.TotalBytes), ownsMemory: true);

    public void Resume(ReadOnlySpan<byte> deviceState) { }

    public void Dispose() => Memory.Dispose();
}
