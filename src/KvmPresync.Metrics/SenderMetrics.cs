using KvmPresync.Wire;
using KvmPresync.Engine;
using KvmPresync.Engine.Convergence;
using KvmPresync.Migration;
using Prometheus;

namespace KvmPresync.Metrics;

/// <summary>
/// A presync sender's figures as Prometheus metrics, from the same <see cref="RoundRecord"/> the live view prints
/// (<see cref="PresyncSender.RoundCompleted"/>) and, at the end, the <see cref="MigrationResult"/>. One sender per
/// registry (a sending process migrates one guest), so the series carry no guest label. Gauges that have no value yet
/// (RTT before the first ack, readiness before the first sync round, guest progress where the source reports none) are
/// absent from the output rather than 0.
/// </summary>
public sealed class SenderMetrics
{
    private readonly long _pageSize;
    private readonly bool _guestReportsProgress;
    private readonly Gauge _dirtyPagesPerSecond, _pendingBytes, _heldBytes, _deferredBytes, _remainingBytes, _windowBytes, _intervalSeconds, _rttSeconds;
    private readonly Gauge _progressRate, _readinessLaunchToResume, _readinessDowntime, _readinessBytes, _readinessGivesUp, _round;
    private readonly Counter _dirtiedPages, _sentBytes, _sentPages, _ackedBytes, _rounds, _connectionsLost, _reconnects;
    private readonly Gauge _succeeded, _launchToResume, _downtime, _syncBytes, _launchBytes;
    private readonly object _lock = new();
    private double? _lastHarvestMs;

    /// <param name="registry">The registry to create the metrics in (one per sender; never the static default).</param>
    /// <param name="pageSize">The guest's page size, to turn page counts into bytes.</param>
    /// <param name="guestReportsProgress">
    /// Whether the source counts guest work units (our VMM's workload guests do; a libvirt guest does not, and
    /// <c>kvmpresync_guest_progress_units_per_second</c> is then never published).
    /// </param>
    public SenderMetrics(CollectorRegistry registry, long pageSize, bool guestReportsProgress)
    {
        ArgumentNullException.ThrowIfNull(registry);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(pageSize);
        _pageSize = pageSize;
        _guestReportsProgress = guestReportsProgress;
        MetricFactory f = Prometheus.Metrics.WithCustomRegistry(registry);
        var absentUntilSet = new GaugeConfiguration { SuppressInitialValue = true };
        _dirtyPagesPerSecond = f.CreateGauge("kvmpresync_sender_dirty_pages_per_second", "Pages the guest dirtied per second over the last round's harvest interval.", absentUntilSet);
        _dirtiedPages = f.CreateCounter("kvmpresync_sender_dirtied_pages_total", "Pages reported dirty by the harvests since presync began (a page written in several rounds counts in each).");
        _pendingBytes = f.CreateGauge("kvmpresync_sender_pending_bytes", "Guest bytes pending (dirty, not yet sent) before the last round's send, held-back pages included.");
        _heldBytes = f.CreateGauge("kvmpresync_sender_held_bytes", "Wire bytes the predictor held back in the last round (pages expected to change again; sent at launch within the launch budget).");
        _deferredBytes = f.CreateGauge("kvmpresync_sender_deferred_bytes", "Guest bytes pending but neither sent nor held in the last round: left over because the window was full.");
        _remainingBytes = f.CreateGauge("kvmpresync_sender_remaining_at_launch_bytes", "Wire bytes still pending after the last round's send: what a launch now would have to move.");
        _windowBytes = f.CreateGauge("kvmpresync_sender_window_bytes", "Bytes the last round was allowed to send (the slow-start window).");
        _intervalSeconds = f.CreateGauge("kvmpresync_sender_round_interval_seconds", "Length of the last round, seconds.");
        _rttSeconds = f.CreateGauge("kvmpresync_sender_rtt_seconds", "Round trip of the last round's ack, seconds (queueing on the path and at the receiver included).", absentUntilSet);
        _sentBytes = f.CreateCounter("kvmpresync_sender_sent_bytes_total", "Wire bytes sent (page batches, headers included), by phase: sync (before launch), final_live and paused (after).",
            new CounterConfiguration { LabelNames = ["phase"] });
        _sentPages = f.CreateCounter("kvmpresync_sender_sent_pages_total", "Pages sent, by phase.", new CounterConfiguration { LabelNames = ["phase"] });
        _ackedBytes = f.CreateCounter("kvmpresync_sender_acked_bytes_total", "Bytes the receiver acknowledged as applied.");
        _rounds = f.CreateCounter("kvmpresync_sender_rounds_total", "Rounds completed, by phase.", new CounterConfiguration { LabelNames = ["phase"] });
        _round = f.CreateGauge("kvmpresync_sender_round", "Number of the last completed round.");
        _progressRate = f.CreateGauge("kvmpresync_guest_progress_units_per_second",
            "Guest work units per second during the last sync round (the application-slowdown signal: for our paced and replay guests the milliseconds of their schedule or trace caught up, 1000/s while they keep up; for the database guest transactions). " +
            "Absent for libvirt guests, which report no work units: watch kvmpresync_sender_dirty_pages_per_second and the guest's own metrics instead.", absentUntilSet);
        _readinessLaunchToResume = f.CreateGauge("kvmpresync_readiness_launch_to_resume_seconds", "If launched now: estimated launch-to-resume time, seconds (from the last sync round).", absentUntilSet);
        _readinessDowntime = f.CreateGauge("kvmpresync_readiness_downtime_seconds", "If launched now: estimated downtime (guest paused), seconds.", absentUntilSet);
        _readinessBytes = f.CreateGauge("kvmpresync_readiness_bytes", "If launched now: estimated bytes the launch would move.", absentUntilSet);
        _readinessGivesUp = f.CreateGauge("kvmpresync_readiness_gives_up", "If launched now: 1 when the convergence policy would give up (the rest would exceed the maximum downtime), else 0.", absentUntilSet);
        _connectionsLost = f.CreateCounter("kvmpresync_sender_connections_lost_total", "Connections to the receiver lost during sync (the guest keeps running; the sender reconnects when allowed).");
        _reconnects = f.CreateCounter("kvmpresync_sender_reconnects_total", "Reconnections to the receiver, by status: resumed (the session continued) or restarted (all pages pending again).",
            new CounterConfiguration { LabelNames = ["status"] });
        _succeeded = f.CreateGauge("kvmpresync_migration_succeeded", "After the migration ended: 1 when the guest resumed at the destination, verified; 0 when it failed (the guest keeps running here).", absentUntilSet);
        _launchToResume = f.CreateGauge("kvmpresync_migration_launch_to_resume_seconds", "After a successful migration: launch to resumed at the destination, seconds.", absentUntilSet);
        _downtime = f.CreateGauge("kvmpresync_migration_downtime_seconds", "After a successful migration: time the guest was paused, seconds.", absentUntilSet);
        _syncBytes = f.CreateGauge("kvmpresync_migration_sync_bytes", "After the migration ended: bytes sent before launch.", absentUntilSet);
        _launchBytes = f.CreateGauge("kvmpresync_migration_launch_bytes", "After the migration ended: bytes sent after launch.", absentUntilSet);
        // every label value known up front is published at 0, so rate() and increase() see the first increment
        foreach (RoundPhase phase in new[] { RoundPhase.Sync, RoundPhase.FinalLive, RoundPhase.Paused })
        {
            _sentBytes.WithLabels(PhaseLabel(phase)).Publish();
            _sentPages.WithLabels(PhaseLabel(phase)).Publish();
            _rounds.WithLabels(PhaseLabel(phase)).Publish();
        }
        _reconnects.WithLabels("resumed").Publish();
        _reconnects.WithLabels("restarted").Publish();
    }

    /// <summary>Subscribes to <paramref name="sender"/>'s rounds and connection events; call before it runs.</summary>
    public void Bind(PresyncSender sender)
    {
        ArgumentNullException.ThrowIfNull(sender);
        sender.RoundCompleted += Observe;
        sender.ConnectionLost += _ => _connectionsLost.Inc();
        sender.Reconnected += r => _reconnects.WithLabels(r.Status == SessionStatus.Resumed ? "resumed" : "restarted").Inc();
    }

    /// <summary>Takes one round (on the sender's thread). Never throws into the sender.</summary>
    public void Observe(RoundRecord r)
    {
        try
        {
            string phase = PhaseLabel(r.Phase);
            lock (_lock)
            {
                if (_lastHarvestMs is { } last && r.TimeMs > last)
                    _dirtyPagesPerSecond.Set(r.DirtyPages / ((r.TimeMs - last) / 1000));
                _lastHarvestMs = r.TimeMs;
            }
            _dirtiedPages.Inc(r.DirtyPages);
            _pendingBytes.Set(r.PendingPages * (double)_pageSize);
            _heldBytes.Set(r.HeldBytes);
            _deferredBytes.Set(r.DeferredPages * (double)_pageSize);
            _remainingBytes.Set(r.RemainingAtLaunchBytes);
            _windowBytes.Set(r.WindowBytes);
            _intervalSeconds.Set(r.IntervalMs / 1000);
            if (r.RttMs is { } rtt) _rttSeconds.Set(rtt / 1000);
            _sentBytes.WithLabels(phase).Inc(r.SentBytes);
            _sentPages.WithLabels(phase).Inc(r.SentPages);
            if (r.AckedBytes is { } acked) _ackedBytes.Inc(acked);
            _rounds.WithLabels(phase).Inc();
            _round.Set(r.Round);
            if (_guestReportsProgress && r.ProgressRate is { } progress) _progressRate.Set(progress);
            if (r.Readiness is { } e) SetReadiness(e);
        }
        catch (Exception)
        {
            // metrics are an observer: nothing here may fail a migration
        }
    }

    /// <summary>Takes the migration's outcome.</summary>
    public void Complete(MigrationResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        _succeeded.Set(result.Succeeded ? 1 : 0);
        _syncBytes.Set(result.SyncBytes);
        _launchBytes.Set(result.LaunchBytes);
        if (!result.Succeeded) return;
        _launchToResume.Set(result.LaunchToResumeMs / 1000);
        _downtime.Set(result.DowntimeMs / 1000);
    }

    private void SetReadiness(ReadinessEstimate e)
    {
        _readinessLaunchToResume.Set(e.LaunchToResumeMs / 1000);
        _readinessDowntime.Set(e.DowntimeMs / 1000);
        _readinessBytes.Set(e.Bytes);
        _readinessGivesUp.Set(e.GivesUp ? 1 : 0);
    }

    /// <summary>The <c>phase</c> label: sync, final_live, paused.</summary>
    public static string PhaseLabel(RoundPhase phase) => phase switch
    {
        RoundPhase.Sync => "sync",
        RoundPhase.FinalLive => "final_live",
        RoundPhase.Paused => "paused",
        _ => "invalid",
    };
}
