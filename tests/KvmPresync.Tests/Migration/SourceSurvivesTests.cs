using KvmPresync.Core;
using KvmPresync.Engine;
using KvmPresync.Migration;
using KvmPresync.Tests.Kvm;
using KvmPresync.Tests.Vmm;
using KvmPresync.Vmm;
using KvmPresync.Vmm.Migration;
using KvmPresync.Wire;

namespace KvmPresync.Tests.Migration;

/// <summary>The source guest is never lost: wherever the receiver dies, the source keeps (or resumes) running, with a clear reason.</summary>
public sealed class SourceSurvivesTests
{
    [Theory]
    [InlineData(FrameType.Hello, 1, "handshake")]
    [InlineData(FrameType.PageBatch, 40, "connection")]
    [InlineData(FrameType.Launch, 1, "connection")]
    [InlineData(FrameType.FinalState, 1, "")]
    public async Task ReceiverDyingAtAnyPhaseLeavesTheSourceRunning(FrameType cutAt, int count, string reasonContains)
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        using var kvm = KvmRequirement.OpenOrSkip();
        using var key = MigrationHarness.Key();
        var (endpoint, received) = MigrationHarness.StartReceiver(kvm, key, ct: ct);
        using var proxy = new ChaosProxy(endpoint, cutAt, count);
        using var source = MigrationHarness.BootFilled(kvm, MigrationHarness.Config(Workload.Audio, 64L << 20));

        using var socket = await MigrationSocket.ConnectAsync(proxy.Endpoint, ct);
        var sender = new PresyncSender(new MachineMigrationSource(source), socket, key);
        Task<MigrationResult> run = sender.RunAsync(ct);
        await Task.WhenAny(run, Task.Delay(TimeSpan.FromSeconds(2), ct));
        sender.Launch();
        MigrationResult result = await run.WaitAsync(TimeSpan.FromSeconds(40), ct);

        Assert.True(proxy.Cut, "the proxy never saw the frame to cut at");
        Assert.False(result.Succeeded);
        Assert.False(string.IsNullOrWhiteSpace(result.Failure));
        Assert.Contains(reasonContains, result.Failure);
        Assert.Contains("source guest", result.Failure); // says what happened to the guest
        Assert.False(source.Completion.IsCompleted, "the source guest was stopped");
        Assert.False(source.IsPaused, "the source guest was left paused");
        long progress = source.Telemetry.ProgressTotal;
        MachineTests.WaitFor(source, () => source.Telemetry.ProgressTotal >= progress + 10, "the source guest to keep progressing");
        Assert.Equal(0, source.Telemetry.ContinuityErrors);

        var (rx, target) = await received.WaitAsync(TimeSpan.FromSeconds(40), ct);
        Assert.False(rx.Resumed); // the destination never resumed a half-received guest
        Assert.Null(target);
    }

    [Fact]
    public async Task WrongKeyIsRefusedBeforeAnyMemoryIsWrittenAndNotRetried()
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        using var kvm = KvmRequirement.OpenOrSkip();
        using var receiverKey = MigrationHarness.Key(1);
        using var senderKey = MigrationHarness.Key(2);
        bool targetCreated = false;
        System.Net.Sockets.Socket listener = MigrationSocket.Listen(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 0));
        var endpoint = (System.Net.IPEndPoint)listener.LocalEndPoint!;
        var receive = Task.Run(async () =>
        {
            using (listener)
            {
                using var conn = await MigrationSocket.AcceptAsync(listener, ct);
                return await KvmPresync.Migration.PresyncReceiver.RunAsync(conn, receiverKey, layout =>
                {
                    targetCreated = true;
                    return new MachineMigrationTarget(kvm, MigrationHarness.SlotsOf(layout));
                }, null, ct);
            }
        }, ct);
        using var source = Machine.Boot(kvm, MigrationHarness.Config(Workload.Idle, 64L << 20));
        source.Start();
        using var socket = await MigrationSocket.ConnectAsync(endpoint, ct);
        var sender = new PresyncSender(new MachineMigrationSource(source), socket, senderKey);
        await Assert.ThrowsAnyAsync<AuthenticationFailedException>(() => sender.RunAsync(ct));
        var rx = await receive.WaitAsync(TimeSpan.FromSeconds(10), ct);
        Assert.False(rx.Resumed);
        Assert.Contains("authenticat", rx.Failure, StringComparison.OrdinalIgnoreCase);
        Assert.False(targetCreated, "guest memory was allocated for an unauthenticated peer");
        Assert.Equal(0, rx.PagesApplied);
        Assert.False(source.Completion.IsCompleted);
    }
}
