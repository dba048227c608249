namespace KvmPresync.Libvirt.Presync;

/// <summary>Where a libvirt presync hands the domain's device state over to (docs/LIBVIRT.md).</summary>
public sealed record LibvirtHandoverOptions
{
    /// <summary>The destination's libvirt URI (as for <c>virsh migrate DOMAIN DESTURI</c>), opened by this process.</summary>
    public required string DestinationUri { get; init => field = OptionGuard.NotBlank(value, nameof(LibvirtHandoverOptions)); }

    /// <summary>QEMU's migration stream address (<c>tcp://HOST:PORT</c>); null: libvirt picks one.</summary>
    public string? MigrateUri { get; init => field = value is null || value.Contains("://", StringComparison.Ordinal) ? value : throw new ArgumentException($"LibvirtHandoverOptions.MigrateUri must be of the form tcp://HOST:PORT, got '{value}'", nameof(MigrateUri)); }

    /// <summary>The destination host's directory for the extra QMP monitor (must match its receiver's <c>--qmp-dir</c>).</summary>
    public string QmpDirectory { get; init => field = OptionGuard.Absolute(OptionGuard.NotNull(value, nameof(LibvirtHandoverOptions)), nameof(LibvirtHandoverOptions))!; } = LibvirtDestinationOptions.DefaultQmpDirectory;

    /// <summary>
    /// Edits the domain's migratable XML into the destination's (as <c>virsh migrate --xml</c>: e.g. other paths on the
    /// destination host) before the presync metadata and monitor are added; null: the XML as it is.
    /// </summary>
    public Func<string, string>? EditDestinationXml { get; init; }

}
