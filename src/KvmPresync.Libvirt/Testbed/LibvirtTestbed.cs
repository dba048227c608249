using System.Net;
using System.Net.Sockets;

namespace KvmPresync.Libvirt.Testbed;

/// <summary>
/// Two private libvirt instances on this host (<see cref="PrivateLibvirtDaemon"/>), a migration source and a
/// destination with different host UUIDs, so libvirt migrates between them as between two hosts. The testbed owns both:
/// <see cref="Dispose"/> stops the destination, then the source, and leaves nothing behind.
/// </summary>
public sealed class LibvirtTestbed : IDisposable
{
    private LibvirtTestbed(PrivateLibvirtDaemon source, PrivateLibvirtDaemon destination, string migrationAddress)
    {
        Source = source;
        Destination = destination;
        MigrationAddress = migrationAddress;
    }

    public PrivateLibvirtDaemon Source { get; }

    public PrivateLibvirtDaemon Destination { get; }

    /// <summary>The address the destination's QEMU listens on for the migration stream, as the source's QEMU reaches it.</summary>
    public string MigrationAddress { get; }

    /// <summary>
    /// Starts both instances (the source first). <paramref name="migrationAddress"/>: where the destination's QEMU is
    /// reachable from the source's (loopback unless the instances run in network namespaces).
    /// Throws as <see cref="PrivateLibvirtDaemon.Start"/> does; a half-started testbed is torn down first.
    /// </summary>
    public static LibvirtTestbed Start(PrivateLibvirtDaemonOptions? source = null, PrivateLibvirtDaemonOptions? destination = null,
        string migrationAddress = "127.0.0.1")
    {
        PrivateLibvirtDaemon s = PrivateLibvirtDaemon.Start(source);
        try
        {
            return new LibvirtTestbed(s, PrivateLibvirtDaemon.Start(destination), migrationAddress);
        }
        catch
        {
            s.Dispose();
            throw;
        }
    }

    /// <summary>A <c>tcp://ADDRESS:PORT</c> migration URI (VIR_MIGRATE_PARAM_URI) on a port free right now on loopback.</summary>
    public string NewMigrationUri() => $"tcp://{MigrationAddress}:{FreePort()}";

    /// <summary>A TCP port free right now on 127.0.0.1, e.g. for QEMU's migration stream.</summary>
    public static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }

    public void Dispose()
    {
        try { Destination.Dispose(); }
        finally { Source.Dispose(); }
    }
}
