using System.Diagnostics;

namespace KvmPresync.Libvirt.Guest;

/// <summary>
/// What a guest's heartbeats say about its migration: the chain (<see cref="LinuxGuestConsole"/>, fed the source's
/// console file and then the destination's) must run unbroken from the first heartbeat on the source to at least
/// <c>minimumOnDestination</c> heartbeats on the destination, with no self-check error and the workload still running.
/// It also times the handover from the host's side: the last heartbeat read from the source file and the first from
/// the destination file arrived <see cref="HostGapMs"/> apart, while the guest's own clock (<c>t_ms</c>, which does
/// not run while the guest is stopped) moved <see cref="GuestGapMs"/>; the difference is how long the guest stood
/// still as its console shows it (<see cref="StallMs"/>), a cross-check of the downtime libvirt reports, to within the
/// console's polling interval.
/// </summary>
public sealed record HeartbeatHandover
{
    /// <summary>The chain is unbroken across the migration and the destination kept beating.</summary>
    public required bool Verified { get; init; }

    /// <summary>Why not, when not.</summary>
    public string? Failure { get; init; }

    public int SourceHeartbeats { get; init; }

    public int DestinationHeartbeats { get; init; }

    public HeartbeatLine? LastOnSource { get; init; }

    public HeartbeatLine? FirstOnDestination { get; init; }

    /// <summary>Host time between reading the last source heartbeat and the first destination heartbeat, ms.</summary>
    public double? HostGapMs { get; init; }

    /// <summary>Guest time (<c>t_ms</c>) between those two heartbeats, ms (the heartbeat period when none was lost).</summary>
    public double? GuestGapMs { get; init; }

    /// <summary><see cref="HostGapMs"/> − <see cref="GuestGapMs"/>, at least 0: how long the guest stood still, ms.</summary>
    public double? StallMs => HostGapMs is { } h && GuestGapMs is { } g ? Math.Max(0, h - g) : null;

    /// <summary>Every break in the chain, as text.</summary>
    public IReadOnlyList<string> Gaps { get; init; } = [];

    /// <summary>Checks <paramref name="console"/> after a migration from <paramref name="sourceFile"/> to <paramref name="destinationFile"/>.</summary>
    public static HeartbeatHandover Check(LinuxGuestConsole console, string sourceFile, string destinationFile, int minimumOnDestination)
    {
        IReadOnlyList<HeartbeatArrival> arrivals = console.Arrivals;
        int onSource = arrivals.Count(a => a.File == sourceFile), onDestination = arrivals.Count(a => a.File == destinationFile);
        int firstDestination = Index(arrivals, destinationFile);
        int lastSource = firstDestination > 0 ? firstDestination - 1 : -1;
        HeartbeatLine? last = lastSource >= 0 ? console.Heartbeats[lastSource] : null;
        HeartbeatLine? first = firstDestination >= 0 ? console.Heartbeats[firstDestination] : null;
        double? hostGap = last is not null && first is not null
            ? Stopwatch.GetElapsedTime(arrivals[lastSource].Timestamp, arrivals[firstDestination].Timestamp).TotalMilliseconds
            : null;
        double? guestGap = last?.TimeMs is { } a && first?.TimeMs is { } b ? (double)b - a : null;

        string? failure = null;
        if (console.Gaps.Count > 0) failure = $"heartbeat chain broken: {string.Join("; ", console.Gaps)}";
        else if (onSource == 0) failure = "no heartbeat on the source console";
        else if (onDestination < minimumOnDestination) failure = $"only {onDestination} heartbeat(s) on the destination console (wanted {minimumOnDestination})";
        else if (onSource + onDestination != arrivals.Count || arrivals.Skip(firstDestination).Any(x => x.File != destinationFile))
            failure = "heartbeats on the source console after the destination's began";
        else if (console.Last is { SelfCheckErrors: > 0 } hb)
            failure = $"the guest found {hb.SelfCheckErrors} self-check error(s): {string.Join(" | ", console.SelfCheckReports.Take(3))}";
        else if (console.ExitLine is { } exit) failure = $"the workload ended: {exit}";
        else if (console.OtherLines.FirstOrDefault(l => l.StartsWith("malformed heartbeat", StringComparison.Ordinal)) is { } bad) failure = bad;

        return new HeartbeatHandover
        {
            Verified = failure is null,
            Failure = failure,
            SourceHeartbeats = onSource,
            DestinationHeartbeats = onDestination,
            LastOnSource = last,
            FirstOnDestination = first,
            HostGapMs = hostGap,
            GuestGapMs = guestGap,
            Gaps = console.Gaps.Select(g => g.Reason).ToArray(),
        };
    }

    private static int Index(IReadOnlyList<HeartbeatArrival> arrivals, string file)
    {
        for (int i = 0; i < arrivals.Count; i++)
            if (arrivals[i].File == file) return i;
        return -1;
    }
}
