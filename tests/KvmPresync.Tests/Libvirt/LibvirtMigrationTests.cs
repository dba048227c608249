using KvmPresync.Libvirt;
using KvmPresync.Libvirt.Testbed;

namespace KvmPresync.Tests.Libvirt;

/// <summary>
/// Migration between two private libvirt daemons on this host (own host_uuid each, LIBVIRT-FACTS.md): managed
/// (virDomainMigrate3) one way, peer-to-peer (virDomainMigrateToURI3) back, with typed parameters and job stats.
/// </summary>
[Collection(LibvirtCollection.Name)]
public sealed class LibvirtMigrationTests
{
    [Fact]
    public void MigrateThereAndBackWithTypedParametersAndJobStats()
    {
        using var a = LibvirtDaemon.StartOrSkip();
        using var b = LibvirtDaemon.StartOrSkip();
        Assert.NotEqual(a.HostUuid, b.HostUuid);
        using var connA = a.Connect();
        using var connB = b.Connect();
        string name = LibvirtDaemon.NewDomainName();
        using var source = connA.DefineDomain(LibvirtDaemon.TestDomainXml(name, memoryMiB: 64));
        source.Start(paused: true);
        Guid uuid = source.Uuid;

        // managed: this client drives the phases; QEMU's stream goes to B over loopback TCP
        var there = new MigrationParameters().Uri($"tcp://127.0.0.1:{LibvirtDaemon.FreePort()}").Bandwidth(1024);
        using var onB = source.Migrate(connB, there, MigrateFlags.Live);
        Assert.Equal(name, onB.Name);
        Assert.Equal(uuid, onB.Uuid);
        Assert.Equal(DomainState.Paused, onB.State); // a paused domain arrives paused
        Assert.Equal(DomainState.Shutoff, source.State); // persistent on A: stays defined, shut off

        DomainJobStats done = source.GetJobStats(completed: true);
        Assert.Equal(DomainJobType.Completed, done.Type);
        Assert.NotNull(done.MemoryTotal);
        Assert.True(done.MemoryTotal >= 64UL << 20, $"memory_total {done.MemoryTotal}");
        Assert.True(done.DataTotal > 0 && done.TimeElapsedMs > 0, string.Join(", ", done.Values.Select(kv => $"{kv.Key}={kv.Value}")));
        Assert.Equal(DomainJobType.None, onB.JobStats.Type);

        // peer-to-peer back: B's daemon opens A's socket itself (it sees /tmp as we do)
        onB.Resume();
        Assert.Equal(DomainState.Running, onB.State);
        var back = new MigrationParameters().Uri($"tcp://127.0.0.1:{LibvirtDaemon.FreePort()}").DestinationName(name);
        onB.MigrateToUri(a.Uri, back, MigrateFlags.Live);
        Assert.Equal(DomainState.Running, connA.LookupDomain(name).State);
        Assert.Throws<LibvirtException>(() => onB.State); // transient on B: gone after it left
    }

    [Fact]
    public void SameHostUuidIsRefusedWithAHint()
    {
        using var a = LibvirtDaemon.StartOrSkip();
        using var connA = a.Connect();
        using var dom = connA.DefineDomain(LibvirtDaemon.TestDomainXml(LibvirtDaemon.NewDomainName()));
        dom.Start(paused: true);
        using var again = a.Connect();
        var e = Assert.Throws<LibvirtException>(() => dom.Migrate(again, new MigrationParameters().Uri($"tcp://127.0.0.1:{LibvirtDaemon.FreePort()}")));
        Assert.Equal("virDomainMigrate3", e.Call);
        Assert.Contains("host_uuid", e.Hint, StringComparison.Ordinal);
    }
}
