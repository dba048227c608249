using System.Runtime.InteropServices;
using KvmPresync.Interop;

namespace KvmPresync.Kvm;

/// <summary>A kernel file descriptor closed exactly once by <see cref="SafeHandle.ReleaseHandle"/>.</summary>
public abstract class FileDescriptorHandle : SafeHandle
{
    private protected FileDescriptorHandle(int fd) : base(new IntPtr(-1), ownsHandle: true) => SetHandle(new IntPtr(fd));

    public override bool IsInvalid => handle.ToInt64() < 0;

    /// <summary>The descriptor. Valid while the handle is not disposed; owners dispose only after their users stop.</summary>
    internal int Fd => IsClosed ? throw new ObjectDisposedException(GetType().Name) : (int)handle.ToInt64();

    protected override bool ReleaseHandle() => Native.Close((int)handle.ToInt64()) == 0;
}

/// <summary>/dev/kvm. Only <see cref="KvmSystem.Open"/> creates one.</summary>
public sealed class KvmSystemHandle : FileDescriptorHandle
{
    internal KvmSystemHandle(int fd) : base(fd) { }
}

/// <summary>A VM. Only <see cref="KvmSystem.CreateVm"/> creates one.</summary>
public sealed class VmHandle : FileDescriptorHandle
{
    internal VmHandle(int fd) : base(fd) { }
}

/// <summary>A vCPU. Only <see cref="Vm.CreateVcpu"/> creates one.</summary>
public sealed class VcpuHandle : FileDescriptorHandle
{
    internal VcpuHandle(int fd) : base(fd) { }
}

/// <summary>The memfd behind guest memory. Only <see cref="Memory.GuestMemory.Create"/> creates one.</summary>
public sealed class MemfdHandle : FileDescriptorHandle
{
    internal MemfdHandle(int fd) : base(fd) { }
}

/// <summary>A shared mapping (guest memory or kvm_run), unmapped by <see cref="ReleaseHandle"/>.</summary>
public sealed class MappingHandle : SafeHandle
{
    internal MappingHandle(nint address, ulong length) : base(IntPtr.Zero, ownsHandle: true)
    {
        Length = length;
        SetHandle(address);
    }

    public ulong Length { get; }

    public override bool IsInvalid => handle == IntPtr.Zero;

    internal nint Address => IsClosed ? throw new ObjectDisposedException(nameof(MappingHandle)) : handle;

    protected override bool ReleaseHandle() => Native.Munmap(handle, Length) == 0;
}
