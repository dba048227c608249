using KvmPresync.Migration;
using KvmPresync.Wire;
using Prometheus;

namespace KvmPresync.Metrics;

/// <summary>
/// A <see cref="ReceiveService"/>'s sessions as Prometheus metrics, from its events: sessions active (admitted: sender
/// authenticated, memory reserved, destination created) with one series per active session (label <c>session</c>,
/// removed when it ends, so at most the service's session cap of them), outcomes, and refusals by reason (label
/// <c>reason</c>: the Abort reason sent, a bounded set).
/// </summary>
public sealed class ReceiverMetrics
{
    private readonly Gauge _active, _sessionMemory, _parked, _lastResume;
    private readonly Counter _admitted, _ended, _refused, _receivedBytes;
    private readonly object _lock = new();
    private readonly HashSet<string> _activeIds = [];
    private ReceiveService? _service;

    /// <param name="registry">The registry to create the metrics in (one per service; never the static default).</param>
    public ReceiverMetrics(CollectorRegistry registry)
    {
        ArgumentNullException.ThrowIfNull(registry);
        MetricFactory f = Prometheus.Metrics.WithCustomRegistry(registry);
        _active = f.CreateGauge("kvmpresync_receive_sessions_active",
            "Sessions admitted (sender authenticated, memory reserved, destination created) and not yet ended. A reconnection that resumes a parked session counts from its end only.");
        _sessionMemory = f.CreateGauge("kvmpresync_receive_session_memory_bytes", "Guest memory of each active session, bytes (one series per session, removed when it ends).",
            new GaugeConfiguration { LabelNames = ["session", "peer"] });
        _parked = f.CreateGauge("kvmpresync_receive_sessions_parked", "Sessions whose connection failed during sync, kept for the sender to reconnect and resume.");
        _admitted = f.CreateCounter("kvmpresync_receive_sessions_admitted_total", "Sessions admitted since the service started.");
        _ended = f.CreateCounter("kvmpresync_receive_sessions_ended_total",
            "Sessions ended since the service started, by outcome: resumed (guest running here, verified), failed, parked (connection lost during sync, waiting for the sender), cancelled (service stopping).",
            new CounterConfiguration { LabelNames = ["outcome"] });
        _refused = f.CreateCounter("kvmpresync_receive_sessions_refused_total",
            "Connections refused before a session was admitted, by reason (the Abort either side sent): busy (session cap), authentication_failed (the two sides hold different keys), version_mismatch, protocol_violation (garbage), " +
            "layout_rejected, insufficient_memory, timeout (silent in the handshake), closed (the peer left without sending a byte), and the other Abort reasons.",
            new CounterConfiguration { LabelNames = ["reason"] });
        _receivedBytes = f.CreateCounter("kvmpresync_receive_received_bytes_total", "Bytes received by sessions that ended (counted when a session ends).");
        _lastResume = f.CreateGauge("kvmpresync_receive_last_resume_seconds", "The last resumed session's FinalState-to-Resumed time (verify, restore, start), seconds.",
            new GaugeConfiguration { SuppressInitialValue = true });
        // every label value known up front is published at 0, so rate() and increase() see the first increment
        foreach (string outcome in new[] { "resumed", "failed", "parked", "cancelled" }) _ended.WithLabels(outcome).Publish();
        foreach (AbortReason reason in Enum.GetValues<AbortReason>().Where(r => r != AbortReason.Invalid)) _refused.WithLabels(ReasonLabel(reason)).Publish();
        _refused.WithLabels("closed").Publish();
        registry.AddBeforeCollectCallback(() =>
        {
            if (Volatile.Read(ref _service) is { } service) _parked.Set(service.ParkedSessions);
        });
    }

    /// <summary>Subscribes to <paramref name="service"/>'s session events; call before it runs.</summary>
    public void Bind(ReceiveService service)
    {
        ArgumentNullException.ThrowIfNull(service);
        Volatile.Write(ref _service, service);
        service.SessionAdmitted += Admitted;
        service.SessionRefused += r => Refused(r.Reason);
        service.SessionEnded += Ended;
    }

    public void Admitted(ReceiveSessionAdmitted a)
    {
        lock (_lock)
        {
            if (!_activeIds.Add(a.SessionId)) return;
            _active.Set(_activeIds.Count);
            _sessionMemory.WithLabels(a.SessionId, a.Peer?.ToString() ?? "").Set(a.MemoryBytes);
        }
        _admitted.Inc();
    }

    public void Ended(ReceiveSessionEnded e)
    {
        ReceiveResult r = e.Result;
        bool wasActive;
        lock (_lock)
        {
            wasActive = _activeIds.Remove(e.SessionId);
            _active.Set(_activeIds.Count);
            foreach (string[] labels in _sessionMemory.GetAllLabelValues().Where(l => l[0] == e.SessionId).ToList())
                _sessionMemory.RemoveLabelled(labels);
        }
        _receivedBytes.Inc(r.BytesReceived);
        if (!wasActive && !r.Resumed && r.FailedIn is ReceiverPhase.AwaitHello or ReceiverPhase.AwaitAuthProof)
        {
            // connected and left without a byte (a port scan, a health check): not a protocol violation
            bool leftSilently = r.BytesReceived == 0 && r.AbortReceived is null && r.AbortSent is null or AbortReason.ProtocolViolation;
            Refused(leftSilently ? null : r.AbortSent ?? r.AbortReceived, r.Cancelled);
            return;
        }
        _ended.WithLabels(r.Resumed ? "resumed" : r.Parked ? "parked" : r.Cancelled ? "cancelled" : "failed").Inc();
        if (r.Resumed) _lastResume.Set(r.ResumeMs / 1000);
    }

    private void Refused(AbortReason? reason, bool cancelled = false) =>
        _refused.WithLabels(cancelled ? "cancelled" : reason is { } a && a != AbortReason.Invalid ? ReasonLabel(a) : "closed").Inc();

    /// <summary>An Abort reason as a label value: snake case (AuthenticationFailed → authentication_failed).</summary>
    public static string ReasonLabel(AbortReason reason)
    {
        string name = reason.ToString();
        var label = new System.Text.StringBuilder(name.Length + 4);
        for (int i = 0; i < name.Length; i++)
        {
            if (char.IsUpper(name[i]) && i > 0) label.Append('_');
            label.Append(char.ToLowerInvariant(name[i]));
        }
        return label.ToString();
    }
}
