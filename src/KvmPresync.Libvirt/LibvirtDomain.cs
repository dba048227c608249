using System.Runtime.InteropServices;
using KvmPresync.Libvirt.Interop;

namespace KvmPresync.Libvirt;

/// <summary>
/// One libvirt domain (defined or running). Only <see cref="LibvirtConnection.LookupDomain(string)"/>,
/// <see cref="LibvirtConnection.DefineDomain"/> and <see cref="Migrate"/> create one. Every failing call throws
/// <see cref="LibvirtException"/> naming the libvirt function.
/// </summary>
public sealed class LibvirtDomain : IDisposable
{
    internal LibvirtDomain(DomainHandle handle) => Handle = handle;

    public DomainHandle Handle { get; }

    /// <summary><c>virDomainGetName</c>.</summary>
    public string Name
    {
        get
        {
            nint p = LibvirtNative.DomainGetName(Handle);
            if (p == 0) throw LibvirtException.FromLastError("virDomainGetName");
            return Marshal.PtrToStringUTF8(p) ?? ""; // owned by the domain object
        }
    }

    /// <summary><c>virDomainGetUUIDString</c>.</summary>
    public unsafe Guid Uuid
    {
        get
        {
            byte* buf = stackalloc byte[37]; // VIR_UUID_STRING_BUFLEN
            if (LibvirtNative.DomainGetUuidString(Handle, buf) < 0) throw LibvirtException.FromLastError("virDomainGetUUIDString");
            return Guid.Parse(Marshal.PtrToStringUTF8((nint)buf)!);
        }
    }

    /// <summary>The live XML (<c>virDomainGetXMLDesc</c>, no flags).</summary>
    public string Xml => GetXml(DomainXmlFlags.None);

    /// <summary><c>virDomainGetXMLDesc</c> with flags (e.g. <see cref="DomainXmlFlags.Migratable"/>).</summary>
    public string GetXml(DomainXmlFlags flags)
    {
        nint p = LibvirtNative.DomainGetXmlDesc(Handle, (uint)flags);
        if (p == 0) throw LibvirtException.FromLastError("virDomainGetXMLDesc");
        return LibvirtLibrary.TakeString(p);
    }

    /// <summary>The state (<c>virDomainGetState</c>).</summary>
    public DomainState State => GetState().State;

    /// <summary>State and reason (<c>virDomainGetState</c>); the reason's enum depends on the state (libvirt-domain.h).</summary>
    public (DomainState State, int Reason) GetState()
    {
        if (LibvirtNative.DomainGetState(Handle, out int state, out int reason, 0) < 0)
            throw LibvirtException.FromLastError("virDomainGetState");
        return ((DomainState)state, reason);
    }

    /// <summary><c>virDomainGetInfo</c>.</summary>
    public DomainInfo Info
    {
        get
        {
            if (LibvirtNative.DomainGetInfo(Handle, out LibvirtNative.VirDomainInfo i) < 0)
                throw LibvirtException.FromLastError("virDomainGetInfo");
            return new DomainInfo((DomainState)i.State, (ulong)i.MaxMem.Value, (ulong)i.Memory.Value, i.NrVirtCpu,
                TimeSpan.FromTicks((long)(i.CpuTime / 100)));
        }
    }

    /// <summary>Starts a defined domain (<c>virDomainCreateWithFlags</c>); paused: its vCPUs do not run until <see cref="Resume"/>.</summary>
    public void Start(bool paused = false)
    {
        if (LibvirtNative.DomainCreateWithFlags(Handle, paused ? LibvirtNative.DomainStartPaused : 0) < 0)
            throw LibvirtException.FromLastError(paused ? "virDomainCreateWithFlags(VIR_DOMAIN_START_PAUSED)" : "virDomainCreateWithFlags");
    }

    /// <summary><c>virDomainSuspend</c>: stops the vCPUs.</summary>
    public void Suspend()
    {
        if (LibvirtNative.DomainSuspend(Handle) < 0) throw LibvirtException.FromLastError("virDomainSuspend");
    }

    /// <summary><c>virDomainResume</c>.</summary>
    public void Resume()
    {
        if (LibvirtNative.DomainResume(Handle) < 0) throw LibvirtException.FromLastError("virDomainResume");
    }

    /// <summary><c>virDomainDestroy</c>: kills the QEMU process at once (the definition stays).</summary>
    public void Destroy()
    {
        if (LibvirtNative.DomainDestroy(Handle) < 0) throw LibvirtException.FromLastError("virDomainDestroy");
    }

    /// <summary><c>virDomainUndefine</c>: removes the persistent definition (a running domain becomes transient).</summary>
    public void Undefine()
    {
        if (LibvirtNative.DomainUndefine(Handle) < 0) throw LibvirtException.FromLastError("virDomainUndefine");
    }

    /// <summary>
    /// Peer-to-peer migration (<c>virDomainMigrateToURI3</c> with <see cref="MigrateFlags.PeerToPeer"/> added): the
    /// source daemon opens <paramref name="destinationUri"/> itself, so that URI must work from the source daemon.
    /// Returns when the migration has finished.
    /// </summary>
    public void MigrateToUri(string destinationUri, MigrationParameters parameters, MigrateFlags flags = MigrateFlags.Live)
    {
        using TypedParamsHandle p = parameters.ToNative();
        bool added = false;
        p.DangerousAddRef(ref added);
        try
        {
            if (LibvirtNative.DomainMigrateToUri3(Handle, destinationUri, p.DangerousGetHandle(), (uint)p.Count, (uint)(flags | MigrateFlags.PeerToPeer)) < 0)
                throw LibvirtException.FromLastError("virDomainMigrateToURI3", destinationUri);
        }
        finally
        {
            if (added) p.DangerousRelease();
        }
    }

    /// <summary>
    /// Migration driven by this client (<c>virDomainMigrate3</c>) to the daemon behind <paramref name="destination"/>;
    /// the domain there. Set <see cref="MigrationParameters.Uri"/> (e.g. <c>tcp://127.0.0.1:PORT</c>) when both
    /// daemons run on one host.
    /// </summary>
    public LibvirtDomain Migrate(LibvirtConnection destination, MigrationParameters parameters, MigrateFlags flags = MigrateFlags.Live)
    {
        using TypedParamsHandle p = parameters.ToNative();
        bool added = false;
        p.DangerousAddRef(ref added);
        try
        {
            nint d = LibvirtNative.DomainMigrate3(Handle, destination.Handle, p.DangerousGetHandle(), (uint)p.Count, (uint)flags);
            if (d == 0) throw LibvirtException.FromLastError("virDomainMigrate3");
            return new LibvirtDomain(new DomainHandle(d));
        }
        finally
        {
            if (added) p.DangerousRelease();
        }
    }

    /// <summary>
    /// <c>virDomainMigrateStartPostCopy</c>: switches this (source) domain's running migration, started with
    /// <see cref="MigrateFlags.Postcopy"/>, to post-copy: the destination resumes and pulls the pages it still lacks.
    /// Call it from another thread while <see cref="Migrate"/> blocks.
    /// </summary>
    public void StartPostCopy()
    {
        if (LibvirtNative.DomainMigrateStartPostCopy(Handle, 0) < 0) throw LibvirtException.FromLastError("virDomainMigrateStartPostCopy");
    }

    /// <summary><c>virDomainAbortJob</c>: aborts the current job, e.g. a migration that does not converge (the source keeps running).</summary>
    public void AbortJob()
    {
        if (LibvirtNative.DomainAbortJob(Handle) < 0) throw LibvirtException.FromLastError("virDomainAbortJob");
    }

    /// <summary>The current job's statistics (<c>virDomainGetJobStats</c>); <see cref="DomainJobType.None"/> when no job runs.</summary>
    public DomainJobStats JobStats => GetJobStats(completed: false);

    /// <summary><c>virDomainGetJobStats</c>; <paramref name="completed"/>: the last completed job's (VIR_DOMAIN_JOB_STATS_COMPLETED).</summary>
    public DomainJobStats GetJobStats(bool completed)
    {
        if (LibvirtNative.DomainGetJobStats(Handle, out int type, out nint parameters, out int count,
                completed ? LibvirtNative.DomainJobStatsCompleted : 0) < 0)
            throw LibvirtException.FromLastError("virDomainGetJobStats");
        using var p = new TypedParamsHandle(parameters, count);
        return new DomainJobStats((DomainJobType)type, p.IsInvalid ? new Dictionary<string, object>() : p.ToDictionary());
    }

    /// <summary>
    /// Sends one QMP command (JSON, e.g. <c>{"execute":"query-status"}</c>) to the domain's QEMU through libvirt
    /// (<c>virDomainQemuMonitorCommand</c>) and returns QEMU's JSON reply as it is: a command QEMU rejects comes back as
    /// its <c>{"error":…}</c> reply, not as an exception. Throws <see cref="LibvirtException"/> when libvirt cannot
    /// deliver the command (domain not running, malformed JSON). libvirt marks the domain tainted.
    /// </summary>
    public string QemuMonitorCommand(string json)
    {
        if (LibvirtNative.DomainQemuMonitorCommand(Handle, json, out nint result, LibvirtNative.QemuMonitorCommandDefault) < 0)
            throw LibvirtException.FromLastError("virDomainQemuMonitorCommand", json);
        return LibvirtLibrary.TakeString(result);
    }

    public void Dispose() => Handle.Dispose();
}
