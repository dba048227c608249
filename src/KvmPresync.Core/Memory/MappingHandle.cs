using System.Runtime.InteropServices;
using KvmPresync.Interop;

namespace KvmPresync.Memory;

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
