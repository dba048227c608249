using System.Text;
using System.Text.Json;
using KvmPresync.Core;
using KvmPresync.Memory;
using KvmPresync.ProcessMemory;

namespace KvmPresync.Libvirt.Presync;

/// <summary>
/// A running libvirt domain as a presync source (docs/LIBVIRT.md, "The flow"): its RAM is QEMU's shared backing file,
/// mapped here (<see cref="DomainRam"/>); its dirty pages come from PAGEMAP_SCAN over that mapping, which the preload
/// tracker inside QEMU registered for userfaultfd write protection; pause and resume are <c>virDomainSuspend</c> and
/// <c>virDomainResume</c>. At launch (<see cref="BeginHandover"/>) it sets <c>x-ignore-shared</c> on the source QEMU and
/// starts libvirt's migration to the destination daemon with the presync destination XML; the destination's hook holds
/// that QEMU until the receiver verified the memory, then QEMU moves only the device state.
/// Until the destination runs, <see cref="Resume"/> gives the guest back: it resumes the domain and clears
/// <c>x-ignore-shared</c> again (a later stock migration must send the RAM).
/// </summary>
public sealed class LibvirtMigrationSource : IDeviceStateHandoverSource, IDisposable
{
    private readonly string _connectUri;
    private LibvirtConnection _connection;
    private LibvirtDomain _domain;
    private readonly DomainRam _ram;
    private readonly ProcessDirtyPageSource _dirty;
    private readonly LibvirtHandoverOptions _handover;
    private readonly TaskCompletionSource _notStarted = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Task? _migration;
    private bool _ignoreSharedSet;

    private LibvirtMigrationSource(string connectUri, LibvirtConnection connection, LibvirtDomain domain, DomainRam ram, ProcessDirtyPageSource dirty, LibvirtHandoverOptions handover)
    {
        _connectUri = connectUri;
        _connection = connection;
        _domain = domain;
        _ram = ram;
        _dirty = dirty;
        _handover = handover;
        Memory = GuestMemoryMap.Single(ram.Memory);
        Uuid = domain.Uuid;
        Name = domain.Name;
        _descriptor = new HandoverDescriptor(Uuid, Name, Memory.SizeBytes).ToBytes(); // made now: no JSON serializer in the downtime
    }

    private readonly byte[] _descriptor;

    /// <summary>
    /// Attaches to running domain <paramref name="domainName"/> on <paramref name="connectUri"/>: finds its QEMU, maps its
    /// RAM, checks that the tracker registered it. Throws with the fix when the domain does not meet the requirements
    /// (<see cref="DomainCheck"/>).
    /// </summary>
    public static LibvirtMigrationSource Open(string connectUri, string domainName, LibvirtHandoverOptions handover)
    {
        ArgumentNullException.ThrowIfNull(handover);
        LibvirtConnection connection = LibvirtConnection.Open(connectUri);
        LibvirtDomain? domain = null;
        DomainRam? ram = null;
        try
        {
            domain = connection.LookupDomain(domainName);
            if (domain.State != DomainState.Running)
                throw new InvalidOperationException($"domain {domainName} is {domain.State}, not running: start it (or resume it) before a presync");
            long bytes = checked((long)domain.Info.MaxMemoryKiB * 1024);
            int pid = QemuProcess.FindSource(domain.Uuid);
            ram = DomainRam.Map(pid, bytes);
            if (!ram.Region.IsRegistered(pid, out IReadOnlyList<string> missing))
                throw new InvalidOperationException(
                    $"domain {domainName}'s RAM {ram.Region} is not tracked (no 'uw' VmFlag in /proc/{pid}/smaps for {string.Join(", ", missing.Take(3))}): " +
                    "QEMU must run with the preload tracker — see `kvmpresync libvirt check " + domainName + "` for the XML, then restart the domain");
            var dirty = new ProcessDirtyPageSource(pid, [ram.Region]);
            JitWarmup.Prepare(typeof(LibvirtMigrationSource), typeof(LibvirtDomain)); // suspend/resume and the handover, compiled now
            return new LibvirtMigrationSource(connectUri, connection, domain, ram, dirty, handover);
        }
        catch
        {
            ram?.Dispose();
            domain?.Dispose();
            connection.Dispose();
            throw;
        }
    }

    public Guid Uuid { get; }

    public string Name { get; }

    /// <summary>The presync session (hex), named in the destination XML so the destination's hook finds the memory; set before launch.</summary>
    public string? SessionId { get; set; }

    public GuestMemoryMap Memory { get; }

    public IDirtyPageSource DirtyLog => _dirty;

    /// <summary>A libvirt guest reports no work units to the engine.</summary>
    public long ProgressTotal => 0;

    /// <summary>The QEMU process.</summary>
    public int ProcessId => _ram.ProcessId;

    public Task Handover => _migration ?? _notStarted.Task;

    public void Pause() => OnDomain(d => { d.Suspend(); return true; });

    public void Resume()
    {
        OnDomain(d =>
        {
            if (d.GetState().State == DomainState.Paused) d.Resume();
            return true;
        });
        ClearIgnoreShared();
    }

    /// <summary>Runs a libvirt call; when it failed because the connection closed (libvirtd restarted), once more on a new one.</summary>
    private T OnDomain<T>(Func<LibvirtDomain, T> call)
    {
        try
        {
            return call(Domain());
        }
        catch (LibvirtException) when (!_connection.IsAlive)
        {
            return call(Domain());
        }
    }

    /// <summary>
    /// The domain over a live connection: presync needs libvirt only at launch (RAM and dirty pages come from the QEMU
    /// process), so a libvirtd restarted meanwhile costs only a new connection, which finds the same domain by its uuid.
    /// </summary>
    private LibvirtDomain Domain()
    {
        if (_connection.IsAlive) return _domain;
        LibvirtConnection connection = LibvirtConnection.Open(_connectUri);
        try
        {
            LibvirtDomain domain = connection.LookupDomain(Uuid);
            _domain.Dispose();
            _connection.Dispose();
            (_connection, _domain) = (connection, domain);
            return domain;
        }
        catch
        {
            connection.Dispose();
            throw;
        }
    }

    /// <summary>The state travels through QEMU; FinalState carries the domain's identity for the destination.</summary>
    public byte[] SaveState() => _descriptor;

    /// <summary>libvirt stopped the source QEMU when its migration confirmed; nothing is left to stop.</summary>
    public void Stop() { }

    public void BeginHandover()
    {
        if (_migration is not null) throw new InvalidOperationException("the handover has already begun");
        string session = SessionId ?? throw new InvalidOperationException("SessionId must be set before launch (the presync sender's session id)");
        SetIgnoreShared(true);
        LibvirtDomain domain = Domain();
        string migratable = domain.GetXml(DomainXmlFlags.Secure | DomainXmlFlags.Migratable);
        string xml = PresyncDomainXml.ForDestination(_handover.EditDestinationXml?.Invoke(migratable) ?? migratable, session, _handover.QmpDirectory);
        var parameters = new MigrationParameters().DestinationXml(xml);
        if (_handover.MigrateUri is { } uri) parameters.Uri(uri);
        _migration = Task.Factory.StartNew(() =>
        {
            using LibvirtConnection destination = LibvirtConnection.Open(_handover.DestinationUri);
            try
            {
                using LibvirtDomain there = domain.Migrate(destination, parameters, MigrateFlags.Live);
            }
            catch (LibvirtException e) when (e.Message.Contains(PresyncDomainXml.RequiresHookArgument, StringComparison.Ordinal))
            {
                throw new InvalidOperationException($"the destination host ({_handover.DestinationUri}) does not run kvmpresync-libvirt-hook: install it as " +
                    "/etc/libvirt/hooks/qemu and restart libvirtd there (libvirt reads hooks only at start-up); docs/LIBVIRT.md, \"The destination\"", e);
            }
        }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
    }

    private void SetIgnoreShared(bool on)
    {
        string reply = OnDomain(d => d.QemuMonitorCommand(
            "{\"execute\":\"migrate-set-capabilities\",\"arguments\":{\"capabilities\":[{\"capability\":\"x-ignore-shared\",\"state\":" + (on ? "true" : "false") + "}]}}"));
        if (reply.Contains("\"error\"", StringComparison.Ordinal))
            throw new InvalidOperationException($"QEMU refused x-ignore-shared={on}: {reply}");
        _ignoreSharedSet = on;
    }

    private void ClearIgnoreShared()
    {
        if (!_ignoreSharedSet) return;
        try
        {
            if (OnDomain(d => d.State) is DomainState.Running or DomainState.Paused) SetIgnoreShared(false);
        }
        catch (LibvirtException)
        {
            // the domain is gone or libvirt is restarting: its QEMU (if any) keeps the capability until it restarts
        }
    }

    public void Dispose()
    {
        if (_migration is not { IsCompletedSuccessfully: true }) ClearIgnoreShared();
        _dirty.Dispose();
        Memory.Dispose();
        _ram.Dispose();
        _domain.Dispose();
        _connection.Dispose();
    }
}

/// <summary>What FinalState carries for a libvirt guest: which domain the verified memory belongs to.</summary>
public sealed record HandoverDescriptor(Guid Uuid, string Name, long MemoryBytes)
{
    public byte[] ToBytes() => Encoding.UTF8.GetBytes(JsonSerializer.Serialize(this));

    public static HandoverDescriptor Parse(ReadOnlySpan<byte> state)
    {
        try
        {
            return JsonSerializer.Deserialize<HandoverDescriptor>(state) ?? throw new InvalidDataException("empty libvirt handover descriptor");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"FinalState does not carry a libvirt handover descriptor: {e.Message}", e);
        }
    }
}
