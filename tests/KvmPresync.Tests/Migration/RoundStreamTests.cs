using KvmPresync.Engine;
using KvmPresync.Migration;
using KvmPresync.Tests.Kvm;
using KvmPresync.Tests.Vmm;
using KvmPresync.Vmm;
using KvmPresync.Vmm.Migration;
using KvmPresync.Wire;

namespace KvmPresync.Tests.Migration;

/// <summary><see cref="PresyncSender.ReadRoundsAsync"/> against a real presync of a KVM guest.</summary>
public sealed class RoundStreamTests
{
    [Fact]
    public async Task A_reader_sees_every_round_of_the_run_in_order_and_its_stream_completes_with_the_run()
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        using var kvm = KvmRequirement.OpenOrSkip();
        using var key = MigrationHarness.Key();
        var (endpoint, received) = MigrationHarness.StartReceiver(kvm, key, ct: ct);
        using var machine = MigrationHarness.BootFilled(kvm, MigrationHarness.Config(Workload.Text));
        using var socket = await MigrationSocket.ConnectAsync(endpoint, ct);
        var sender = new PresyncSender(new MachineMigrationSource(machine), socket, key, new PresyncOptions
        {
            Engine = new SyncEngineOptions { Policy = SyncPolicy.PredictSlowStart, LinkBitsPerSecond = 1e9 },
        });
        var events = new List<RoundRecord>();
        sender.RoundCompleted += events.Add;

        // Two readers before the run: a prompt one, and one that does not read at all until the run is over (it must not
        // hold the migration back, and still gets every round: the run has far fewer than the buffer holds).
        IAsyncEnumerable<RoundRecord> prompt = sender.ReadRoundsAsync(ct), late = sender.ReadRoundsAsync(ct);
        var seen = new List<RoundRecord>();
        Task reading = Task.Run(async () =>
        {
            await foreach (RoundRecord round in prompt) seen.Add(round);
        }, ct);

        var (result, _, target) = await MigrationHarness.PresyncThenLaunchAsync(sender, received, TimeSpan.FromSeconds(2), ct);
        target.Dispose();
        await reading.WaitAsync(TimeSpan.FromSeconds(10), ct); // completed by the end of the run, not by the test

        Assert.True(result.Rounds.Count < PresyncSender.RoundStreamCapacity, $"{result.Rounds.Count} rounds");
        Assert.NotEmpty(seen);
        Assert.Equal(events, seen);
        Assert.Contains(seen, r => r.Phase == RoundPhase.Sync);
        Assert.Contains(seen, r => r.Phase == RoundPhase.Paused);
        var lateRounds = new List<RoundRecord>();
        await foreach (RoundRecord round in late.WithCancellation(ct)) lateRounds.Add(round);
        Assert.Equal(events, lateRounds);

        // After the run: a new reader's stream is empty and complete.
        await foreach (RoundRecord _ in sender.ReadRoundsAsync(ct)) Assert.Fail("a stream opened after the run yielded a round");
    }

    [Fact]
    public async Task A_reader_that_cancels_stops_reading_without_touching_the_run()
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        using var kvm = KvmRequirement.OpenOrSkip();
        using var key = MigrationHarness.Key();
        var (endpoint, received) = MigrationHarness.StartReceiver(kvm, key, ct: ct);
        using var machine = MigrationHarness.BootFilled(kvm, MigrationHarness.Config(Workload.Text));
        using var socket = await MigrationSocket.ConnectAsync(endpoint, ct);
        var sender = new PresyncSender(new MachineMigrationSource(machine), socket, key, new PresyncOptions());

        using var stopReading = CancellationTokenSource.CreateLinkedTokenSource(ct);
        int read = 0;
        Task reading = Task.Run(async () =>
        {
            await foreach (RoundRecord _ in sender.ReadRoundsAsync(stopReading.Token))
                if (++read == 2) await stopReading.CancelAsync();
        }, ct);
        Task<MigrationResult> run = sender.RunAsync(ct);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => reading.WaitAsync(TimeSpan.FromSeconds(20), ct));
        Assert.Equal(2, read);
        Assert.False(run.IsCompleted);
        sender.Launch();
        MigrationResult result = await run.WaitAsync(TimeSpan.FromSeconds(30), ct);
        Assert.True(result.Succeeded, result.Failure);
        var (rx, target) = await received.WaitAsync(TimeSpan.FromSeconds(10), ct);
        target?.Dispose();
        Assert.True(rx.Resumed, rx.Failure);
    }
}
