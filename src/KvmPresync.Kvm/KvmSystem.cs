using KvmPresync.Kvm.Interop;

namespace KvmPresync.Kvm;

/// <summary>
/// /dev/kvm: checks the API version and the capabilities the engine needs at open, and is the only
/// factory of <see cref="Vm"/>. Holds no global state; open one per process or per VM as you like.
/// </summary>
public sealed class KvmSystem : IDisposable
{
    public const string DefaultPath = "/dev/kvm";

    private static readonly KvmCap[] Required = [KvmCap.UserMemory, KvmCap.ManualDirtyLogProtect2, KvmCap.ImmediateExit];

    private readonly KvmSystemHandle _handle;
    private KvmCpuidEntry2[]? _cpuid;
    private uint[]? _msrIndices;

    private KvmSystem(KvmSystemHandle handle, int vcpuMmapSize)
    {
        _handle = handle;
        VcpuMmapSize = vcpuMmapSize;
    }

    internal KvmSystemHandle Handle => _handle;

    /// <summary>Size of each vCPU's kvm_run mapping.</summary>
    public int VcpuMmapSize { get; }

    /// <summary>True when <paramref name="path"/> exists and can be opened read-write.</summary>
    public static bool IsAvailable(out string reason, string path = DefaultPath)
    {
        if (!File.Exists(path))
        {
            reason = $"{path} does not exist (no KVM on this machine)";
            return false;
        }
        int fd = KvmNative.KvmOpen(path);
        if (fd < 0)
        {
            reason = new KvmException($"open({path})", -fd).Message;
            return false;
        }
        KvmNative.Close(fd);
        reason = "";
        return true;
    }

    /// <summary>Opens KVM and checks API version 12 and the capabilities the engine needs.</summary>
    public static KvmSystem Open(string path = DefaultPath)
    {
        int fd = KvmNative.KvmOpen(path);
        if (fd < 0)
        {
            int errno = -fd;
            string hint = errno switch
            {
                2 => $"{path} does not exist: load a KVM module (kvm_intel, kvm_amd or kvm_pvm) or run on a host with virtualization",
                13 => $"no permission to open {path}: run as root or add the user to the group owning {path} (usually 'kvm')",
                _ => $"check that {path} is a KVM device",
            };
            throw new KvmException($"open({path})", errno, hint);
        }
        var handle = new KvmSystemHandle(fd);
        try
        {
            int version = KvmException.Check(KvmNative.KvmGetApiVersion(fd), "KVM_GET_API_VERSION");
            if (version != KvmConstants.ApiVersion)
                throw new KvmException("KVM_GET_API_VERSION", $"KVM API version {version}, this engine needs {KvmConstants.ApiVersion}");
            foreach (KvmCap cap in Required)
            {
                if (KvmNative.CheckExtension(fd, (uint)cap) <= 0)
                    throw new KvmException("KVM_CHECK_EXTENSION", $"the kernel lacks KVM_CAP_{cap} ({(uint)cap}), which the engine needs; use a newer kernel");
            }
            int mmapSize = KvmException.Check(KvmNative.KvmGetVcpuMmapSize(fd), "KVM_GET_VCPU_MMAP_SIZE");
            return new KvmSystem(handle, mmapSize);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    /// <summary>The value of a capability (0 when absent).</summary>
    public int CheckExtension(KvmCap cap) => Math.Max(0, KvmNative.CheckExtension(_handle.Fd, (uint)cap));

    /// <summary>Creates a VM with the given options.</summary>
    public Vm CreateVm(VmOptions? options = null) => Vm.Create(this, options ?? new VmOptions());

    /// <summary>The MSRs a vCPU of this system could read at its first save (set by <see cref="Vcpu.SaveState"/>).</summary>
    internal uint[]? ReadableMsrs { get; set; }

    internal unsafe KvmCpuidEntry2[] SupportedCpuid()
    {
        if (_cpuid is not null) return _cpuid;
        var entries = new KvmCpuidEntry2[256];
        fixed (KvmCpuidEntry2* p = entries)
        {
            int n = KvmException.Check(KvmNative.KvmGetSupportedCpuid(_handle.Fd, p, (uint)entries.Length), "KVM_GET_SUPPORTED_CPUID");
            _cpuid = entries[..n];
        }
        return _cpuid;
    }

    internal unsafe uint[] MsrIndexList()
    {
        if (_msrIndices is not null) return _msrIndices;
        var indices = new uint[1024];
        fixed (uint* p = indices)
        {
            int n = KvmException.Check(KvmNative.KvmGetMsrIndexList(_handle.Fd, p, (uint)indices.Length), "KVM_GET_MSR_INDEX_LIST");
            _msrIndices = indices[..n];
        }
        return _msrIndices;
    }

    public void Dispose() => _handle.Dispose();
}

/// <summary>How a VM is created.</summary>
public sealed record VmOptions
{
    /// <summary>Create the in-kernel PIC/IOAPIC/LAPIC (KVM_CREATE_IRQCHIP); its state is saved and restored.</summary>
    public bool InKernelIrqchip { get; init; } = true;

    /// <summary>Create the in-kernel PIT (KVM_CREATE_PIT2); requires the irqchip.</summary>
    public bool InKernelPit { get; init; } = true;

    /// <summary>Enable KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 so the log is cleared explicitly, per chunk, just before pages are sent.</summary>
    public bool ManualDirtyLogClear { get; init; } = true;
}
