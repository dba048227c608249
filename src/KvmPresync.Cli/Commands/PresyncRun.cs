using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Serialization;
using KvmPresync.Core;
using KvmPresync.Engine;
using KvmPresync.Engine.Convergence;
using KvmPresync.Migration;
using KvmPresync.Migration.Compression;
using KvmPresync.Trace;
using KvmPresync.Vmm;
using KvmPresync.Vmm.Migration;
using KvmPresync.Wire;

namespace KvmPresync.Cli.Commands;

/// <summary>The <c>run --presync-to</c> path: sync the running guest to a receiver until launch, then migrate it.</summary>
internal static class PresyncRun
{
    private const int SigUsr1 = 10;

    public sealed record Settings(IPEndPoint Target, string PskFile, double LinkBitsPerSecond, double Bandwidth, SyncPolicy Policy, double? LaunchAfterSeconds, string? Json, bool ZeroCopy = false, bool SyncBeforeLaunch = true, TimeSpan? MaxFinalDuration = null, TlsOptions? Tls = null, TimeSpan? ReconnectFor = null, int Streams = 1, VerifyMode Verify = VerifyMode.Delta, CompressionMode Compression = CompressionMode.Auto, GuestWindow? Baseline = null)
    {
        /// <summary>The launch-to-resume target the hold-back budget and the convergence policy follow.</summary>
        public TimeSpan LaunchTarget { get; init; } = LaunchBudget.DefaultTarget;

        /// <summary>Pause at a quiet moment: the longest wait for the end of a burst (null = off).</summary>
        public TimeSpan? QuietWait { get; init; }

        /// <summary>--burst-clock: time the guest's bursts of writes.</summary>
        public bool TimeBursts { get; init; } = true;

        /// <summary>--metrics: the registry the sender's metrics go to (the endpoint is the caller's; null = none).</summary>
        public Prometheus.CollectorRegistry? Metrics { get; init; }

        /// <summary>Whether the source counts guest work units (our workload guests; not a libvirt domain).</summary>
        public bool GuestReportsProgress { get; init; } = true;
    }

    public static Task<int> RunAsync(Machine machine, Settings s, LiveView view, CancellationToken ct) =>
        RunAsync(new MachineMigrationSource(machine), s, view, ct);

    /// <summary>Presyncs <paramref name="source"/> to the receiver and switches over at launch; <paramref name="prepare"/> sees the sender before it runs.</summary>
    public static async Task<int> RunAsync(IMigrationSource source, Settings s, LiveView view, CancellationToken ct, Action<PresyncSender>? prepare = null)
    {
        using PreSharedKey key = MigrationOptions.LoadKey(s.PskFile);
        Socket socket;
        try
        {
            socket = await ConnectWithRetryAsync(s.Target, ct);
        }
        catch (SocketException e)
        {
            Console.Error.WriteLine($"kvmpresync: cannot connect to the receiver at {s.Target}: {e.Message}; is 'kvmpresync receive' listening there? The guest was not paused and did not move.");
            return ExitCodes.MigrationFailed;
        }
        using Socket connection = socket;
        var sender = new PresyncSender(source, socket, key, new PresyncOptions
        {
            Engine = new SyncEngineOptions
            {
                Policy = s.Policy,
                LinkBitsPerSecond = s.LinkBitsPerSecond > 0 ? s.LinkBitsPerSecond : s.Bandwidth,
                LaunchTarget = s.LaunchTarget,
                Convergence = new DowntimeTargetConvergence { MaxLiveDuration = s.MaxFinalDuration ?? TimeSpan.FromMilliseconds(300), QuietWait = s.QuietWait },
            },
            RateLimitBitsPerSecond = s.LinkBitsPerSecond, // 0 = no in-process limit
            ZeroCopy = s.ZeroCopy,
            Compression = s.Compression,
            SyncBeforeLaunch = s.SyncBeforeLaunch,
            TimeBursts = s.TimeBursts,
            Baseline = s.Baseline,
            Tls = s.Tls,
            Streams = s.Streams,
            Verify = s.Verify,
            Reconnect = s.ReconnectFor is { } reconnectFor && reconnectFor > TimeSpan.Zero
                ? new ReconnectOptions(token => MigrationSocket.ConnectAsync(s.Target, token)) { MaxOutage = reconnectFor }
                : null,
        });
        sender.ConnectionLost += why =>
        {
            view.Done();
            Console.WriteLine($"connection lost during sync: {why}; the guest keeps running, reconnecting for up to {(s.ReconnectFor ?? TimeSpan.Zero).TotalSeconds:0.#} s");
        };
        sender.Reconnected += r => Console.WriteLine(r.Status == SessionStatus.Resumed
            ? $"reconnected after {r.OutageMs / 1000:0.0} s ({r.Attempts} attempts): session {sender.SessionIdHex()} resumed at generation {r.Generation}, {r.PagesToResend} pages to resend"
            : $"reconnected after {r.OutageMs / 1000:0.0} s ({r.Attempts} attempts): starting over, all {r.PagesToResend} pages pending");
        sender.Notice += text => Console.WriteLine(text);
        prepare?.Invoke(sender);
        KvmPresync.Metrics.SenderMetrics? metrics = s.Metrics is { } registry ? new(registry, source.Memory.PageSize, s.GuestReportsProgress) : null;
        metrics?.Bind(sender);
        var clock = Stopwatch.StartNew();
        sender.RoundCompleted += r =>
        {
            if (r.Phase != RoundPhase.Sync || r.Round % 5 == 0 || !Console.IsOutputRedirected)
                view.Update($"{clock.Elapsed.TotalSeconds,6:0.0}s r{r.Round,-4} {PhaseName(r.Phase),-6} dirty {r.DirtyPages,6} sent {r.SentPages,6} ({Units.FormatBytes(r.SentBytes),9}) held {r.HeldPages,5} " +
                            $"rtt {(r.RttMs is { } rtt ? $"{rtt:0.0}ms" : "-"),7} goodput {(r.GoodputMbps is { } g ? $"{g:0}Mb/s" : "-"),8} progress {(r.ProgressRate is { } p ? $"{p:0.0}/s" : "-")}" +
                            (r.Readiness is { } e ? $" | if launched now: {ReadinessText(e)}" : ""));
        };
        using PosixSignalRegistration usr1 = PosixSignalRegistration.Create((PosixSignal)SigUsr1, ctx => { ctx.Cancel = true; sender.Launch(); });
        if (s.LaunchAfterSeconds is { } after)
            _ = Task.Delay(TimeSpan.FromSeconds(after), ct).ContinueWith(t => { if (!t.IsCanceled) sender.Launch(); }, TaskScheduler.Default);
        if (!Console.IsInputRedirected)
            _ = Task.Run(() => { Console.ReadLine(); sender.Launch(); }, ct);
        Console.WriteLine((s.SyncBeforeLaunch ? $"pre-synchronizing to {s.Target} (policy {s.Policy.Name()}{(s.Tls is null ? "" : ", TLS 1.3")})" : $"connected to {s.Target}; classic pre-copy at launch (nothing sent before)") + $"; launch with Enter, SIGUSR1 (kill -USR1 {Environment.ProcessId})" +
                          (s.LaunchAfterSeconds is { } a ? $" or after {a:0.#} s" : ""));

        MigrationResult result;
        try
        {
            result = await sender.RunAsync(ct);
        }
        catch (AuthenticationFailedException e)
        {
            view.Done();
            Console.Error.WriteLine($"kvmpresync: the receiver could not be authenticated: {e.Message}. Check that both sides use the same --psk-file; not retrying. The guest was not paused and did not move.");
            return ExitCodes.AuthenticationFailed;
        }
        view.Done();
        metrics?.Complete(result);
        if (s.Json is not null)
            await File.WriteAllTextAsync(s.Json, JsonSerializer.Serialize(result, JsonOptions), ct);
        if (!result.Succeeded)
        {
            Console.Error.WriteLine($"kvmpresync: migration failed: {result.Failure}");
            return ExitCodes.MigrationFailed;
        }
        if (result.InitialCopyBytes is { } initial && result.InitialCopyMs is { } initialMs)
            Console.WriteLine($"initial copy: {Units.FormatBytes(initial)} in {initialMs / 1000:0.00} s ({initial / initialMs / 1e6:0.00} GB/s) over {result.Streams} stream{(result.Streams == 1 ? "" : "s")}");
        Console.WriteLine($"migrated: launch-to-resume {result.LaunchToResumeMs:0.0} ms, downtime {result.DowntimeMs:0.0} ms, " +
                          $"sync {Units.FormatBytes(result.SyncBytes)} before launch, {Units.FormatBytes(result.LaunchBytes)} after launch ({result.FinalDeltaPages} pages in the paused delta), memory digest verified");
        if (result.ReadinessAtLaunch is { } check)
            Console.WriteLine($"readiness at launch: estimated {ReadinessText(check.Estimate)}; actual launch-to-resume {check.LaunchToResumeMs:0.0} ms, " +
                              $"downtime {check.DowntimeMs:0.0} ms, {Units.FormatBytes(check.Bytes)} (error {check.LaunchToResumeErrorMs:+0.0;-0.0;0.0} ms, {check.DowntimeErrorMs:+0.0;-0.0;0.0} ms)");
        if (result.Compression is { } cs)
            Console.WriteLine(cs.Summary());
        foreach (string line in SlowdownLines.Of(result, s.SyncBeforeLaunch)) Console.WriteLine(line);
        foreach (string line in BreakdownLines(result)) Console.WriteLine(line);
        foreach (ReconnectRecord r in result.Reconnects)
            Console.WriteLine($"reconnect: lost at {r.LostAtMs / 1000:0.0} s, outage {r.OutageMs / 1000:0.00} s, {r.Status}, {r.PagesToResend} pages marked, " +
                              $"bytes resent {(r.BytesResent is { } b ? Units.FormatBytes(b) : "-")}{(r.CaughtUp ? "" : " (launch came before all were resent)")} of a {Units.FormatBytes(source.Memory.SizeBytes)} guest");
        if (result.ZeroCopy is { } zc)
            Console.WriteLine($"MSG_ZEROCOPY sends: {zc.Issued} issued, {zc.Completed} completed, {zc.Copied} reported copied by the kernel, {zc.Fallbacks} fell back to copying");
        return ExitCodes.Ok;
    }

    /// <summary>"launch-to-resume ≈ X ms, downtime ≈ Y ms, Z" (or that the policy would give up).</summary>
    /// <summary>Where a switchover's time went: "before the pause: …" and "downtime: …" (none for a failed migration).</summary>
    internal static IEnumerable<string> BreakdownLines(MigrationResult result)
    {
        if (result.Launch is { } l)
            yield return $"before the pause: sync round ended {l.SyncEndMs:0.0} ms after the launch request, then {result.FinalLiveRounds} live round{(result.FinalLiveRounds == 1 ? "" : "s")} " +
                         $"in {l.LiveMs:0.0} ms ({Units.FormatBytes(l.LiveBytes)}, harvests {l.HarvestMs:0.0} ms)";
        if (result.Downtime is { } d)
            yield return $"downtime: final delta {d.FinalDeltaMs:0.0} ms, digest {d.DigestMs:0.0} ms, state {d.StateMs:0.0} ms, destination verify+restore+resume {d.DestinationMs:0.0} ms";
    }

    internal static string ReadinessText(ReadinessEstimate e) => e.GivesUp
        ? $"the convergence policy would give up after {e.LaunchToResumeMs:0} ms"
        : $"launch-to-resume ≈ {e.LaunchToResumeMs:0.0} ms, downtime ≈ {e.DowntimeMs:0.0} ms, {Units.FormatBytes(e.Bytes)}";

    private static string PhaseName(RoundPhase phase) => phase switch
    {
        RoundPhase.Sync => "sync",
        RoundPhase.FinalLive => "final",
        RoundPhase.Paused => "paused",
        _ => phase.ToString(),
    };

    internal static readonly JsonSerializerOptions JsonOptions = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    /// <summary>The receiver may still be starting: retry a refused connection for a few seconds.</summary>
    private static async Task<Socket> ConnectWithRetryAsync(IPEndPoint target, CancellationToken ct)
    {
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                return await MigrationSocket.ConnectAsync(target, ct);
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionRefused && deadline.Elapsed < TimeSpan.FromSeconds(5))
            {
                await Task.Delay(200, ct);
            }
        }
    }
}
