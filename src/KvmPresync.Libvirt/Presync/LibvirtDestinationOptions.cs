namespace KvmPresync.Libvirt.Presync;

/// <summary>The destination host's side of libvirt presync (<c>kvmpresync receive --libvirt</c>; docs/LIBVIRT.md).</summary>
public sealed record LibvirtDestinationOptions
{
    public const string DefaultHookSocket = "/run/kvmpresync/libvirt-hook.sock";
    public const string DefaultQmpDirectory = "/run/kvmpresync/qmp";
    public const string DefaultRamDirectory = "/dev/shm/kvmpresync";

    /// <summary>libvirt's qemu hook for destinations (native/libvirt-hook), shipped beside the library.</summary>
    public const string HookFileName = "kvmpresync-libvirt-hook";

    /// <summary>
    /// The hook shipped with this app (next to it, or runtimes/linux-x64/native from the KvmPresync.Libvirt package:
    /// <see cref="KvmPresync.Core.NativeAssets"/>), to install as /etc/libvirt/hooks/qemu with mode 0755 (a package does not
    /// keep the executable bit); null when not shipped.
    /// </summary>
    public static string? FindHook() => KvmPresync.Core.NativeAssets.Find(HookFileName);

    /// <summary>The local libvirt daemon, to see the destination domain run.</summary>
    public string ConnectUri { get; init => field = OptionGuard.NotBlank(value, nameof(LibvirtDestinationOptions)); } = "qemu:///system";

    /// <summary>
    /// Where each session's RAM file is written during presync. It must be on the filesystem of libvirt's
    /// <c>memory_backing_dir</c>: the hook hard-links the file into QEMU's memory directory (no copy).
    /// </summary>
    public string RamDirectory { get; init => field = OptionGuard.Absolute(OptionGuard.NotNull(value, nameof(LibvirtDestinationOptions)), nameof(LibvirtDestinationOptions))!; } = DefaultRamDirectory;

    /// <summary>libvirt's <c>memory_backing_dir</c> (qemu.conf); null: read from /etc/libvirt/qemu.conf, else libvirt's default.</summary>
    public string? MemoryBackingDirectory { get; init => field = OptionGuard.Absolute(value, nameof(LibvirtDestinationOptions)); }

    /// <summary>The unix socket the hook (kvmpresync-libvirt-hook) asks.</summary>
    public string HookSocket { get; init => field = OptionGuard.Absolute(OptionGuard.NotNull(value, nameof(LibvirtDestinationOptions)), nameof(LibvirtDestinationOptions))!; } = DefaultHookSocket;

    /// <summary>Where the destination QEMU's extra monitor socket appears (the source's --dest-qmp-dir must match).</summary>
    public string QmpDirectory { get; init => field = OptionGuard.Absolute(OptionGuard.NotNull(value, nameof(LibvirtDestinationOptions)), nameof(LibvirtDestinationOptions))!; } = DefaultQmpDirectory;

    /// <summary>How long the hook may hold a started QEMU for its memory to be verified.</summary>
    public TimeSpan HoldTimeout { get; init => field = OptionGuard.Positive(value, nameof(LibvirtDestinationOptions)); } = TimeSpan.FromMinutes(2);

    /// <summary>How long after the release the destination domain may take to run.</summary>
    public TimeSpan RunTimeout { get; init => field = OptionGuard.Positive(value, nameof(LibvirtDestinationOptions)); } = TimeSpan.FromSeconds(30);

    /// <summary>memory_backing_dir as libvirt uses it: the option, else qemu.conf's setting, else /var/lib/libvirt/qemu/ram.</summary>
    public string ResolveMemoryBackingDirectory(string qemuConf = "/etc/libvirt/qemu.conf")
    {
        if (MemoryBackingDirectory is { } set) return set;
        if (File.Exists(qemuConf))
            foreach (string raw in File.ReadLines(qemuConf))
            {
                string line = raw.Trim();
                if (!line.StartsWith("memory_backing_dir", StringComparison.Ordinal)) continue;
                int eq = line.IndexOf('=');
                if (eq < 0) continue;
                string value = line[(eq + 1)..].Trim().Trim('"');
                if (value.Length > 0) return value;
            }
        return "/var/lib/libvirt/qemu/ram";
    }
}
