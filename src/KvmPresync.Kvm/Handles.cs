using System.Runtime.InteropServices;
using KvmPresync.Core;

namespace KvmPresync.Kvm;

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
