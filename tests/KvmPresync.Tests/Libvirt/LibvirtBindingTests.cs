using System.Text.Json;
using KvmPresync.Libvirt;

namespace KvmPresync.Tests.Libvirt;

/// <summary>Every binding of KvmPresync.Libvirt against a real libvirtd that each test starts and stops (<see cref="LibvirtDaemon"/>).</summary>
[Collection(LibvirtCollection.Name)]
public sealed class LibvirtBindingTests
{
    [Fact]
    public void OpenReportsTheDaemonsLibvirtVersionAndUri()
    {
        using var daemon = LibvirtDaemon.StartOrSkip();
        using var conn = daemon.Connect();
        Version v = conn.LibVersion;
        Assert.True(v.Major >= 9, $"libvirt {v}: Debian 12 ships 9.0");
        Assert.StartsWith("qemu", conn.Uri, StringComparison.Ordinal);
    }

    [Fact]
    public void DefineLookupNameUuidXmlStateAndInfo()
    {
        using var daemon = LibvirtDaemon.StartOrSkip();
        using var conn = daemon.Connect();
        string name = LibvirtDaemon.NewDomainName();
        using var defined = conn.DefineDomain(LibvirtDaemon.TestDomainXml(name, memoryMiB: 64));
        using var found = conn.LookupDomain(name);

        Assert.Equal(name, found.Name);
        Assert.Equal(defined.Uuid, found.Uuid);
        Assert.NotEqual(Guid.Empty, found.Uuid);
        string xml = found.Xml;
        Assert.Contains($"<name>{name}</name>", xml, StringComparison.Ordinal);
        Assert.Contains($"<uuid>{found.Uuid}</uuid>", xml, StringComparison.Ordinal);
        Assert.Contains("type='qemu'", xml, StringComparison.Ordinal);
        Assert.Equal(DomainState.Shutoff, found.State);
        DomainInfo info = found.Info;
        Assert.Equal(DomainState.Shutoff, info.State);
        Assert.Equal(64UL * 1024, info.MaxMemoryKiB);
        Assert.Equal(1, info.VirtualCpus);
    }

    [Fact]
    public void StartPausedResumeSuspendDestroyUndefine()
    {
        using var daemon = LibvirtDaemon.StartOrSkip();
        using var conn = daemon.Connect();
        string name = LibvirtDaemon.NewDomainName();
        using var dom = conn.DefineDomain(LibvirtDaemon.TestDomainXml(name));

        dom.Start(paused: true);
        var (state, reason) = dom.GetState();
        Assert.Equal(DomainState.Paused, state);
        Assert.Equal(1, reason); // VIR_DOMAIN_PAUSED_USER: libvirt counts start-paused as a user pause
        dom.Resume();
        Assert.Equal(DomainState.Running, dom.State);
        Assert.Equal(DomainState.Running, dom.Info.State);
        Assert.True(dom.Info.MemoryKiB > 0);
        dom.Suspend();
        Assert.Equal(DomainState.Paused, dom.State);
        dom.Destroy();
        Assert.Equal(DomainState.Shutoff, dom.State);
        dom.Undefine();
        var e = Assert.Throws<LibvirtException>(() => conn.LookupDomain(name));
        Assert.Equal(ErrorCodes.NoDomain, e.Code);
    }

    [Fact]
    public void JobStatsOfAnIdleDomainSayNoJob()
    {
        using var daemon = LibvirtDaemon.StartOrSkip();
        using var conn = daemon.Connect();
        using var dom = conn.DefineDomain(LibvirtDaemon.TestDomainXml(LibvirtDaemon.NewDomainName()));
        dom.Start(paused: true);
        DomainJobStats stats = dom.JobStats;
        Assert.Equal(DomainJobType.None, stats.Type);
        Assert.Null(stats.MemoryTotal);
    }

    [Fact]
    public void QmpQueryStatusThroughLibvirt()
    {
        using var daemon = LibvirtDaemon.StartOrSkip();
        using var conn = daemon.Connect();
        using var dom = conn.DefineDomain(LibvirtDaemon.TestDomainXml(LibvirtDaemon.NewDomainName()));
        dom.Start(paused: true);

        using (var reply = JsonDocument.Parse(dom.QemuMonitorCommand("""{"execute":"query-status"}""")))
        {
            JsonElement ret = reply.RootElement.GetProperty("return");
            Assert.False(ret.GetProperty("running").GetBoolean());
            Assert.Equal("prelaunch", ret.GetProperty("status").GetString()); // started paused: never ran
        }
        dom.Resume();
        using (var reply = JsonDocument.Parse(dom.QemuMonitorCommand("""{"execute":"query-status"}""")))
        {
            Assert.True(reply.RootElement.GetProperty("return").GetProperty("running").GetBoolean());
            Assert.Equal("running", reply.RootElement.GetProperty("return").GetProperty("status").GetString());
        }
        // a command QEMU rejects comes back as QEMU's error reply, untouched
        using (var reply = JsonDocument.Parse(dom.QemuMonitorCommand("""{"execute":"no-such-command"}""")))
            Assert.Equal("CommandNotFound", reply.RootElement.GetProperty("error").GetProperty("class").GetString());
        // one libvirt cannot deliver is a LibvirtException naming the call
        dom.Destroy();
        var e = Assert.Throws<LibvirtException>(() => dom.QemuMonitorCommand("""{"execute":"query-status"}"""));
        Assert.Equal("virDomainQemuMonitorCommand", e.Call);
        Assert.Equal(ErrorCodes.OperationInvalid, e.Code);
    }

    [Fact]
    public void LibvirtErrorsBecomeLibvirtExceptionNamingTheCall()
    {
        using var daemon = LibvirtDaemon.StartOrSkip();
        using var conn = daemon.Connect();

        var missing = Assert.Throws<LibvirtException>(() => conn.LookupDomain("kp-no-such-domain"));
        Assert.Equal("virDomainLookupByName", missing.Call);
        Assert.Equal(ErrorCodes.NoDomain, missing.Code);
        Assert.Equal("VIR_ERR_NO_DOMAIN", missing.CodeName);
        Assert.Contains("kp-no-such-domain", missing.Message, StringComparison.Ordinal);
        Assert.NotNull(missing.Hint);

        var badXml = Assert.Throws<LibvirtException>(() => conn.DefineDomain("<domain type='qemu'><name>x</name>"));
        Assert.Equal("virDomainDefineXML", badXml.Call);
        Assert.Equal(ErrorCodes.XmlDetail, badXml.Code); // the parser's detail: where the XML broke off
        Assert.Equal("VIR_ERR_XML_DETAIL", badXml.CodeName);

        using var dom = conn.DefineDomain(LibvirtDaemon.TestDomainXml(LibvirtDaemon.NewDomainName()));
        var notRunning = Assert.Throws<LibvirtException>(dom.Resume);
        Assert.Equal("virDomainResume", notRunning.Call);
        Assert.Equal(ErrorCodes.OperationInvalid, notRunning.Code);
        Assert.Contains("not running", notRunning.Message, StringComparison.Ordinal);

        // the error was reset: a good call after a bad one works and a later failure reports its own error
        Assert.Equal(DomainState.Shutoff, dom.State);
    }

    [Fact]
    public void NoDaemonOnTheSocketSaysHowToStartOne()
    {
        string? why = LibvirtDaemon.Unavailable();
        if (why is not null && why.Contains("libvirt.so.0", StringComparison.Ordinal)) Assert.Skip(why);
        string dir = Directory.CreateTempSubdirectory("kp-no-libvirtd-").FullName;
        try
        {
            var e = Assert.Throws<LibvirtException>(() => LibvirtConnection.Open($"qemu+unix:///system?socket={dir}/libvirt-sock"));
            Assert.Equal("virConnectOpen", e.Call);
            Assert.Equal(ErrorCodes.SystemError, e.Code);
            Assert.Contains("libvirtd -d", e.Message, StringComparison.Ordinal);
            Assert.Contains("virtlogd -d", e.Hint, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void MigrationParametersRejectTypesLibvirtHasNot()
    {
        var p = new MigrationParameters().Uri("tcp://127.0.0.1:1").Bandwidth(100).Add("parallel.connections", 2);
        Assert.Equal(3, p.Values.Count);
        Assert.Throws<ArgumentException>(() => p.Add("x", 1.5f));
    }
}

[CollectionDefinition(Name)]
public sealed class LibvirtCollection
{
    /// <summary>libvirt tests run one at a time: each starts daemons and QEMUs on two shared cores.</summary>
    public const string Name = "libvirtd";
}
