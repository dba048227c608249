using KvmPresync.Core;

namespace KvmPresync.Memory;

/// <summary>The memfd behind guest memory. Only <see cref="GuestMemory.Create"/> creates one.</summary>
public sealed class MemfdHandle : FileDescriptorHandle
{
    internal MemfdHandle(int fd) : base(fd) { }
}
