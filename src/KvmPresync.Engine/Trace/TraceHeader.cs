using KvmPresync.Core;
using System.Numerics;

namespace KvmPresync.Trace;

/// <summary>What a dirty trace describes: the guest's page geometry, the nominal harvest interval and the workload.</summary>
public sealed record TraceHeader
{
    public required int PageSize { get; init; }

    public required long PageCount { get; init; }

    /// <summary>Nominal time between recorded harvests (each interval record also carries its own timestamp).</summary>
    public required TimeSpan Interval { get; init; }

    /// <summary>Workload name, e.g. "text", "audio", "movie", "synthetic".</summary>
    public required string Workload { get; init; }

    /// <summary>Free-form key/value metadata (recorder version, guest memory size, generator parameters...).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; init; } = new Dictionary<string, string>();

    /// <summary>Throws <see cref="ArgumentException"/> when a field cannot be stored in (or was not read from) a valid trace.</summary>
    public void Validate()
    {
        if (PageSize < TraceFormat.MinPageSize || PageSize > TraceFormat.MaxPageSize || !BitOperations.IsPow2(PageSize))
            throw new ArgumentOutOfRangeException(nameof(PageSize), PageSize, $"page size must be a power of two in {TraceFormat.MinPageSize}..{TraceFormat.MaxPageSize}");
        if (PageCount < 1 || PageCount > TraceFormat.MaxPageCount)
            throw new ArgumentOutOfRangeException(nameof(PageCount), PageCount, $"page count must be in 1..{TraceFormat.MaxPageCount}");
        if (Interval <= TimeSpan.Zero)
            throw new ArgumentOutOfRangeException(nameof(Interval), Interval, "interval must be positive");
        ArgumentNullException.ThrowIfNull(Workload);
        ArgumentNullException.ThrowIfNull(Metadata);
        if (Metadata.Count > ushort.MaxValue)
            throw new ArgumentException($"at most {ushort.MaxValue} metadata entries", nameof(Metadata));
    }
}

/// <summary>One recorded interval's description (the pages themselves go into the caller's bitmap).</summary>
/// <param name="Index">0-based interval number.</param>
/// <param name="Timestamp">End of the interval (time of its harvest) since the start of the trace.</param>
/// <param name="Progress">Guest work units completed during the interval (0 = unknown).</param>
/// <param name="DirtyPages">Pages dirtied during the interval.</param>
public readonly record struct TraceInterval(long Index, TimeSpan Timestamp, ulong Progress, long DirtyPages);
