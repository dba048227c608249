namespace KvmPresync.Libvirt;

/// <summary>virDomainState.</summary>
public enum DomainState
{
    NoState = 0,
    Running = 1,
    Blocked = 2,
    Paused = 3,
    Shutdown = 4,
    Shutoff = 5,
    Crashed = 6,
    PmSuspended = 7,
}

/// <summary>virDomainXMLFlags.</summary>
[Flags]
public enum DomainXmlFlags : uint
{
    None = 0,
    Secure = 1 << 0,
    Inactive = 1 << 1,
    UpdateCpu = 1 << 2,
    Migratable = 1 << 3,
}

/// <summary>virDomainMigrateFlags (the ones that apply to KvmPresync's use).</summary>
[Flags]
public enum MigrateFlags : uint
{
    None = 0,
    Live = 1 << 0,
    PeerToPeer = 1 << 1,
    Tunnelled = 1 << 2,
    PersistDestination = 1 << 3,
    UndefineSource = 1 << 4,
    Paused = 1 << 5,
    Unsafe = 1 << 9,
    AutoConverge = 1 << 13,
    Postcopy = 1 << 15,
    Parallel = 1 << 17,
}

/// <summary>virDomainJobType.</summary>
public enum DomainJobType
{
    None = 0,
    Bounded = 1,
    Unbounded = 2,
    Completed = 3,
    Failed = 4,
    Cancelled = 5,
}

/// <summary><c>virDomainGetInfo</c>: memory in KiB, CPU time used so far.</summary>
public sealed record DomainInfo(DomainState State, ulong MaxMemoryKiB, ulong MemoryKiB, int VirtualCpus, TimeSpan CpuTime);

/// <summary>
/// <c>virDomainGetJobStats</c>: the job type and every typed parameter libvirt returned (by its VIR_DOMAIN_JOB_* name),
/// with the fields migration code reads as properties (null when libvirt did not report them).
/// </summary>
public sealed record DomainJobStats(DomainJobType Type, IReadOnlyDictionary<string, object> Values)
{
    /// <summary>virDomainJobOperation (VIR_DOMAIN_JOB_OPERATION), e.g. 5 outgoing migration.</summary>
    public int? Operation => Values.TryGetValue("operation", out var v) && v is int i ? i : null;
    public ulong? TimeElapsedMs => ULong("time_elapsed");
    public ulong? DowntimeMs => ULong("downtime");
    public ulong? DataTotal => ULong("data_total");
    public ulong? DataProcessed => ULong("data_processed");
    public ulong? DataRemaining => ULong("data_remaining");
    public ulong? MemoryTotal => ULong("memory_total");
    public ulong? MemoryProcessed => ULong("memory_processed");
    public ulong? MemoryRemaining => ULong("memory_remaining");
    public ulong? MemoryDirtyRate => ULong("memory_dirty_rate");
    public ulong? MemoryIteration => ULong("memory_iteration");

    private ulong? ULong(string name) => Values.TryGetValue(name, out var v) && v is ulong u ? u : null;
}

/// <summary>
/// Typed migration parameters (VIR_MIGRATE_PARAM_*), turned into a native <c>virTypedParameter</c> array by
/// <c>virTypedParamsAdd*</c> only for the call that uses them.
/// </summary>
public sealed class MigrationParameters
{
    private readonly List<KeyValuePair<string, object>> _values = [];

    /// <summary>The parameters in order, as (name, value).</summary>
    public IReadOnlyList<KeyValuePair<string, object>> Values => _values;

    /// <summary>VIR_MIGRATE_PARAM_URI: where QEMU sends the stream, e.g. <c>tcp://127.0.0.1:49152</c>.</summary>
    public MigrationParameters Uri(string uri) => Add("migrate_uri", uri);

    /// <summary>VIR_MIGRATE_PARAM_DEST_NAME.</summary>
    public MigrationParameters DestinationName(string name) => Add("destination_name", name);

    /// <summary>VIR_MIGRATE_PARAM_DEST_XML.</summary>
    public MigrationParameters DestinationXml(string xml) => Add("destination_xml", xml);

    /// <summary>VIR_MIGRATE_PARAM_BANDWIDTH, MiB/s.</summary>
    public MigrationParameters Bandwidth(ulong mibPerSecond) => Add("bandwidth", mibPerSecond);

    /// <summary>VIR_MIGRATE_PARAM_LISTEN_ADDRESS: where the destination QEMU listens.</summary>
    public MigrationParameters ListenAddress(string address) => Add("listen_address", address);

    /// <summary>Any parameter by its libvirt name: int, uint, long, ulong, double, bool or string.</summary>
    public MigrationParameters Add(string name, object value)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        if (value is not (int or uint or long or ulong or double or bool or string))
            throw new ArgumentException($"migration parameter {name}: {value?.GetType().Name ?? "null"} is not a libvirt typed-parameter type", nameof(value));
        _values.Add(new(name, value));
        return this;
    }

    internal TypedParamsHandle ToNative()
    {
        var handle = new TypedParamsHandle();
        try
        {
            foreach (var (name, value) in _values) handle.Add(name, value);
            return handle;
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }
}
