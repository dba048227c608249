using System.Runtime.InteropServices;

namespace KvmPresync.Libvirt.Interop;

// libvirt-domain.h: steering a running migration job from another thread while virDomainMigrate3 blocks.
internal static partial class LibvirtNative
{
    /// <summary>Switches a migration started with VIR_MIGRATE_POSTCOPY to post-copy (flags: 0). 0 or -1.</summary>
    [LibraryImport(Libraries.Libvirt, EntryPoint = "virDomainMigrateStartPostCopy")]
    internal static partial int DomainMigrateStartPostCopy(DomainHandle domain, uint flags);

    /// <summary>Aborts the domain's current job (a migration: the source keeps running). 0 or -1.</summary>
    [LibraryImport(Libraries.Libvirt, EntryPoint = "virDomainAbortJob")]
    internal static partial int DomainAbortJob(DomainHandle domain);
}
