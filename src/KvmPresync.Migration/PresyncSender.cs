using System.Diagnostics;
using System.Net.Sockets;
using KvmPresync.Core;
using KvmPresync.Engine;
using KvmPresync.Engine.Convergence;
using KvmPresync.Wire;

namespace KvmPresync.Migration;

/// <summary>
/// The source side of a pre-synchronized migration over one authenticated connection, as explicit phases
/// (<see cref="SenderPhase"/>):
/// <code>
///  Handshake ─▶ Sync (SyncPhase: harvest → engine → PageBatch… RoundEnd ◀ Ack) ─(Launch())─▶ FinalLive (FinalLivePhase:
///  live rounds until the convergence policy pauses) ─▶ Paused (PausedPhase: last delta, digest, FinalState)
///  ─▶ AwaitingResumed ◀ Resumed ─▶ Done: stop source          any failure before Resumed: resume the source
/// </code>
/// Page payloads go to the transport as spans into guest memory (no managed copy). A page read while the guest
/// runs may be torn; it is dirty again and resent, and only the paused final phase is verified.
/// </summary>
public sealed class PresyncSender
{
    /// <summary>The guest's work rate is also sampled over this first part of the sync period (see <see cref="MigrationResult.ProgressRateFirstSeconds"/>).</summary>
    public static readonly TimeSpan ProgressSampleWindow = TimeSpan.FromSeconds(5);

    private readonly IMigrationSource _source;
    private readonly Socket _socket;
    private readonly PreSharedKey _key;
    private readonly PresyncOptions _options;
    private readonly TaskCompletionSource _launch = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private long _launchRequestedTicks;

    public PresyncSender(IMigrationSource source, Socket connected, PreSharedKey key, PresyncOptions? options = null)
    {
        _source = source ?? throw new ArgumentNullException(nameof(source));
        _socket = connected ?? throw new ArgumentNullException(nameof(connected));
        _key = key ?? throw new ArgumentNullException(nameof(key));
        _options = options ?? new PresyncOptions();
        _options.Validate();
        if (_source.Memory.PageSize != _source.DirtyLog.PageSize || _source.Memory.PageCount != _source.DirtyLog.PageCount)
            throw new ArgumentException("the source's dirty log and memory disagree on the page layout", nameof(source));
    }

    /// <summary>Raised after every round (sync, final live, paused), on the sender's thread: the one progress channel.</summary>
    public event Action<RoundRecord>? RoundCompleted;

    /// <summary>Requests the switchover. Safe to call from any thread, any number of times.</summary>
    public void Launch()
    {
        if (Interlocked.CompareExchange(ref _launchRequestedTicks, _clock.ElapsedTicks, 0) == 0) _launch.TrySetResult();
    }

    public bool LaunchRequested => _launch.Task.IsCompleted;

    /// <summary>
    /// Runs pre-synchronization until <see cref="Launch"/>, then the switchover. Returns the outcome; on any
    /// failure before the destination confirmed it runs, the source guest is running again.
    /// Throws <see cref="AuthenticationFailedException"/> when the peer cannot be authenticated (do not retry).
    /// </summary>
    public async Task<MigrationResult> RunAsync(CancellationToken cancellationToken = default)
    {
        SenderChannel channel;
        try
        {
            channel = await SenderChannel.OpenAsync(_socket, _options, NowNs, cancellationToken).ConfigureAwait(false);
        }
        catch (ProtocolException e) when (e.Error == ProtocolError.TlsFailed)
        {
            try { _socket.Shutdown(SocketShutdown.Both); } catch (SocketException) { } catch (ObjectDisposedException) { }
            return new MigrationResult { Succeeded = false, FailedPhase = SenderPhase.Handshake, Failure = $"handshake failed: {e.Message}; the source guest kept running" };
        }
        using var _ = channel;
        try
        {
            await Handshake.RunSenderAsync(channel.Reader, channel.Writer,
                new SenderHandshakeOptions(MigrationLayout.Of(_source.Memory), PageHashAlgorithm.PageHasher, HelloOptions.ZeroPages), _key, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is (ProtocolException and not AuthenticationFailedException) or IOException or SocketException)
        {
            await channel.CloseAsync().ConfigureAwait(false);
            return new MigrationResult { Succeeded = false, FailedPhase = SenderPhase.Handshake, Failure = $"handshake failed: {DescribeHandshake(e, channel.Encrypted)}; the source guest kept running" };
        }

        SourceDigest.Warm(_source.Memory); // JIT and warm the digest path now, not during the downtime
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var run = new SenderRun(_source, _options, channel, _clock, r => RoundCompleted?.Invoke(r));
        channel.StartReading(stop.Token);
        bool paused = false;
        long launchBytesStart = 0;
        try
        {
            await SyncPhase.RunAsync(run, _launch.Task, stop.Token).ConfigureAwait(false);
            run.EndSyncProgress();
            long launchStart = Interlocked.Read(ref _launchRequestedTicks);
            launchBytesStart = channel.Writer.BytesWritten;

            ConvergenceDecision convergence = await FinalLivePhase.RunAsync(run, stop.Token).ConfigureAwait(false);
            if (convergence.Action == ConvergenceAction.GiveUp)
            {
                string why = $"the convergence policy gave up ({convergence.Reason}): {Format(run.Engine.PendingBytes())} still pending would exceed the downtime limit";
                await channel.AbortAsync(AbortReason.Cancelled, why).ConfigureAwait(false);
                return Failed(run, why + "; the source guest kept running", convergence);
            }

            PausedPhase.Timeline t = await PausedPhase.RunAsync(run, () => paused = true, stop.Token).ConfigureAwait(false);
            run.Phase = SenderPhase.AwaitingResumed;
            await channel.WaitResumedAsync(_options.ResumeTimeout, stop.Token).ConfigureAwait(false);
            long resumedAt = _clock.ElapsedTicks;
            _source.Stop();
            run.Phase = SenderPhase.Done;
            return new MigrationResult
            {
                Succeeded = true,
                Verified = true,
                LaunchToResumeMs = SenderRun.TicksToMs(resumedAt - launchStart),
                DowntimeMs = SenderRun.TicksToMs(resumedAt - t.PausedAt),
                SyncBytes = run.SyncBytes,
                InitialCopyBytes = run.InitialCopyBytes,
                LaunchBytes = channel.Writer.BytesWritten - launchBytesStart,
                FinalLiveRounds = run.FinalLiveRounds,
                FinalDeltaPages = t.DeltaPages,
                Convergence = convergence,
                ProgressRateDuringSync = run.SyncProgressRate,
                ProgressRateFirstSeconds = run.EarlyProgressRate,
                ZeroCopy = channel.ZeroCopy?.Stats,
                Downtime = new DowntimeBreakdown(SenderRun.TicksToMs(t.DeltaSentAt - t.PausedAt), SenderRun.TicksToMs(t.DigestAt - t.DeltaSentAt),
                    SenderRun.TicksToMs(t.StateSentAt - t.DigestAt), SenderRun.TicksToMs(resumedAt - t.StateSentAt)),
                Rounds = run.Rounds,
            };
        }
        catch (Exception e) when (e is not AuthenticationFailedException && !cancellationToken.IsCancellationRequested)
        {
            if (paused) _source.Resume();
            if (e is not ProtocolException { FromPeerAbort: true })
                await channel.AbortAsync(AbortReason.SenderFailure, $"the sender failed in phase {run.Phase}: {e.Message}").ConfigureAwait(false);
            return Failed(run, Describe(e) + (paused ? "; the source guest was resumed" : "; the source guest kept running"), null);
        }
        catch
        {
            if (paused) _source.Resume();
            if (cancellationToken.IsCancellationRequested)
                await channel.AbortAsync(AbortReason.Cancelled, "the sender was cancelled; the source guest keeps running").ConfigureAwait(false);
            throw;
        }
        finally
        {
            stop.Cancel();
            await channel.CloseAsync().ConfigureAwait(false);
        }
    }

    private static MigrationResult Failed(SenderRun run, string why, ConvergenceDecision? convergence) => new()
    {
        Succeeded = false,
        Failure = why,
        FailedPhase = run.Phase,
        Convergence = convergence,
        SyncBytes = run.SyncBytes,
        FinalLiveRounds = run.FinalLiveRounds,
        Rounds = run.Rounds,
    };

    private static string Describe(Exception e) => e switch
    {
        ProtocolException p when p.FromPeerAbort => $"the receiver aborted: {p.Message}",
        ProtocolException p => $"protocol error: {p.Message}",
        IOException or SocketException => $"connection to the receiver lost: {e.Message}",
        _ => e.Message,
    };

    /// <summary>
    /// A handshake failure, with what TLS adds: in TLS 1.3 the receiver checks the sender's certificate after the
    /// sender's own handshake call returned, so a refused certificate shows up as the first read failing or the
    /// connection closing right after the Hello.
    /// </summary>
    private static string DescribeHandshake(Exception e, bool encrypted)
    {
        string text = Describe(e);
        if (!encrypted || e is ProtocolException { FromPeerAbort: true }) return text;
        return text + (TlsTransport.IsTlsFailure(e)
            ? "; the receiver refused the TLS session — most likely this side's certificate: check that the receiver's --tls-ca is the CA that signed this side's --tls-cert (or pins it)"
            : "; the receiver dropped the connection right after the TLS handshake — if it logged a certificate error, check that its --tls-ca is the CA that signed this side's --tls-cert (or pins it)");
    }

    private static string Format(long bytes) => bytes >= 1 << 20 ? $"{bytes / (double)(1 << 20):0.#} MiB" : $"{bytes / 1024.0:0.#} KiB";

    private ulong NowNs() => (ulong)(_clock.ElapsedTicks * (1e9 / Stopwatch.Frequency));
}
