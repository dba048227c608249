using KvmPresync.Libvirt.Presync;
using KvmPresync.Wire;

namespace KvmPresync.Cli.Commands;

/// <summary>The receiving side of libvirt presync as the CLI (receive --libvirt, repro's presync mode) sets it up.</summary>
internal static class LibvirtReceive
{
    /// <summary>One RAM file for a libvirt session: the sender announces QEMU's single RAM block as one slot at 0.</summary>
    public static LibvirtRamTarget CreateTarget(LibvirtDestination destination, MemoryLayout layout)
    {
        if (layout.Slots.Count != 1 || layout.Slots[0].GuestPhysicalAddress != 0)
            throw new ArgumentException($"a libvirt destination takes one RAM block at offset 0; the sender announced {layout}");
        return destination.CreateTarget((long)layout.Slots[0].SizeBytes);
    }
}
