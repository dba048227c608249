using System.Runtime.InteropServices;

namespace KvmPresync.Libvirt.Interop;

// libvirt-qemu.h (libvirt-qemu.so.0): QMP passthrough. libvirt taints a domain that receives one.
internal static partial class LibvirtNative
{
    internal const uint QemuMonitorCommandDefault = 0; // VIR_DOMAIN_QEMU_MONITOR_COMMAND_DEFAULT: QMP JSON
    internal const uint QemuMonitorCommandHmp = 1;     // VIR_DOMAIN_QEMU_MONITOR_COMMAND_HMP

    /// <summary><paramref name="result"/> is free()d by the caller.</summary>
    [LibraryImport(Libraries.LibvirtQemu, EntryPoint = "virDomainQemuMonitorCommand", StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int DomainQemuMonitorCommand(DomainHandle domain, string cmd, out nint result, uint flags);
}
