namespace KvmPresync.Libvirt.Testbed;

/// <summary>How <see cref="PrivateLibvirtDaemon.Start"/> sets up one private libvirt instance.</summary>
public sealed record PrivateLibvirtDaemonOptions
{
    /// <summary>
    /// An executable installed (copied, mode 0755) as the instance's <c>/etc/libvirt/hooks/qemu</c> before libvirtd
    /// starts: libvirt only looks for hooks at start-up. Null: the instance has no hook (the host's hooks are not copied).
    /// It runs inside the instance's mount namespace, as root, and must not call back into libvirt.
    /// </summary>
    public string? QemuHook { get; init; }

    /// <summary>
    /// <c>memory_backing_dir</c> in the instance's qemu.conf: where file-backed guest RAM goes
    /// (<c>DIR/libvirt/qemu/ID-NAME/pc.ram</c> for a <c>pc</c> guest). Null: a directory of the instance's own under
    /// /dev/shm (<see cref="PrivateLibvirtDaemon.MemoryBackingDirectory"/>), removed on dispose; a directory given
    /// here is created if missing and left in place (libvirt removes each domain's files when the domain stops).
    /// </summary>
    public string? MemoryBackingDirectory { get; init => field = OptionGuard.Absolute(value, nameof(PrivateLibvirtDaemonOptions)); }

    /// <summary>
    /// Run QEMU as root with its capabilities (qemu.conf <c>user = "root"</c>, <c>group = "root"</c>,
    /// <c>clear_emulator_capabilities = 0</c>) instead of Debian's unprivileged <c>libvirt-qemu</c>. QEMU 7.2's
    /// post-copy needs this on the destination: it opens a userfaultfd without <c>UFFD_USER_MODE_ONLY</c>, which an
    /// unprivileged process may not while <c>vm.unprivileged_userfaultfd = 0</c> (docs/LIBVIRT.md). Only this
    /// instance's QEMUs are affected; no host-wide setting changes.
    /// </summary>
    public bool PrivilegedQemu { get; init; }

    /// <summary>
    /// A named network namespace (<c>ip netns</c>) to run the daemons, and so their QEMUs and migration streams, in;
    /// null: the host's. Clients still reach the daemon through its unix socket.
    /// </summary>
    public string? NetworkNamespace { get; init; }

    /// <summary>How long to wait for libvirtd to answer on its socket.</summary>
    public TimeSpan StartTimeout { get; init => field = OptionGuard.Positive(value, nameof(PrivateLibvirtDaemonOptions)); } = TimeSpan.FromSeconds(20);
}
