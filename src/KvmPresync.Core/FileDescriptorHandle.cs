using System.Runtime.InteropServices;
using KvmPresync.Interop;

namespace KvmPresync.Core;

/// <summary>A kernel file descriptor closed exactly once by <see cref="SafeHandle.ReleaseHandle"/>.</summary>
public abstract class FileDescriptorHandle : SafeHandle
{
    protected FileDescriptorHandle(int fd) : base(new IntPtr(-1), ownsHandle: true) => SetHandle(new IntPtr(fd));

    public override bool IsInvalid => handle.ToInt64() < 0;

    /// <summary>The descriptor. Valid while the handle is not disposed; owners dispose only after their users stop.</summary>
    internal int Fd => IsClosed ? throw new ObjectDisposedException(GetType().Name) : (int)handle.ToInt64();

    protected override bool ReleaseHandle() => Native.Close((int)handle.ToInt64()) == 0;
}
