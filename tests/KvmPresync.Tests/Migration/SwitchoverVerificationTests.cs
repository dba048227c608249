using System.Net;
using System.Net.Sockets;
using KvmPresync.Kvm;
using KvmPresync.Migration;
using KvmPresync.ProcessMemory;
using KvmPresync.Tests.Kvm;
using KvmPresync.Tests.ProcessMemory;
using KvmPresync.Tests.Vmm;
using KvmPresync.Vmm;
using KvmPresync.Vmm.Migration;
using KvmPresync.Wire;

namespace KvmPresync.Tests.Migration;

/// <summary>
/// The switchover's digest is computed in O(delta) (the sender from the hashes of what it sent, the receiver from the hashes
/// of what landed, both kept in a hash tree) and still catches a lost or corrupted page: one corrupted in flight, and one
/// changed on the destination after it landed (the receiver's write tracker). Real KVM guests, real sockets.
/// </summary>
public sealed class SwitchoverVerificationTests
{
    /// <summary>The first page of workload.bin: written by the VMM at boot, sent in the first sync rounds, never written again.</summary>
    private const ulong ImagePage = GuestAbi.LoadGpa / 4096;

    [Theory]
    [InlineData(VerifyMode.Delta, false)]
    [InlineData(VerifyMode.Full, false)]
    [InlineData(VerifyMode.Delta, true)] // a 1.2 receiver: the flat digest, from the same hashes
    public async Task A_page_corrupted_in_flight_is_refused_with_DigestMismatch_and_the_source_keeps_running(VerifyMode verify, bool receiver12)
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        using var kvm = KvmRequirement.OpenOrSkip();
        using var key = MigrationHarness.Key();
        var (endpoint, received) = MigrationHarness.StartReceiver(kvm, key, receiver12 ? Receiver12 : null, ct);
        using var proxy = new CorruptingProxy(endpoint, ImagePage);
        using var source = MigrationHarness.BootFilled(kvm, MigrationHarness.Config(Workload.Text, 64L << 20));

        using var socket = await MigrationSocket.ConnectAsync(proxy.Endpoint, ct);
        var sender = new PresyncSender(new MachineMigrationSource(source), socket, key, new PresyncOptions { Verify = verify });
        MigrationResult result = await LaunchAfterAsync(sender, TimeSpan.FromSeconds(2), ct);

        Assert.True(proxy.Corrupted, $"the proxy never saw page {ImagePage} go by as a Full page");
        await ExpectDigestMismatchAsync(result, source, received);
    }

    [Fact]
    public async Task A_page_changed_on_the_destination_after_it_landed_is_refused_with_DigestMismatch()
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        using var m = TrackedMigration.Start(Workload.Text, 64L << 20, ct);
        var (source, key, received) = (m.Source, m.Key, m.Received);

        using var socket = await MigrationSocket.ConnectAsync(m.Endpoint, ct);
        var sender = new PresyncSender(new MachineMigrationSource(source), socket, key);
        Task<MigrationResult> run = sender.RunAsync(ct);
        MachineMigrationTarget target = await m.Created.Task.WaitAsync(TimeSpan.FromSeconds(10), ct);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (!target.Memory.Page((long)ImagePage).ContainsAnyExcept((byte)0))
        {
            Assert.True(DateTime.UtcNow < deadline, $"page {ImagePage} never landed on the destination");
            await Task.Delay(20, ct);
        }
        await Task.Delay(500, ct); // round ends pass: the page's hash as landed (and re-scanned) is on record
        Assert.False(run.IsCompleted, run.IsCompleted ? (await run).Failure : "");
        target.Memory.Page((long)ImagePage)[100] ^= 0x01; // a stray write on the destination, outside the receiver's apply path
        await Task.Delay(200, ct);
        sender.Launch();
        MigrationResult result = await run.WaitAsync(TimeSpan.FromSeconds(40), ct);

        await ExpectDigestMismatchAsync(result, source, received);
    }

    [Fact]
    public async Task A_1_2_receiver_gets_the_flat_digest_from_the_sent_hashes_and_verifies()
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        using var kvm = KvmRequirement.OpenOrSkip();
        using var key = MigrationHarness.Key();
        var (endpoint, received) = MigrationHarness.StartReceiver(kvm, key, Receiver12, ct);
        using var source = MigrationHarness.BootFilled(kvm, MigrationHarness.Config(Workload.Text, 64L << 20));
        using var socket = await MigrationSocket.ConnectAsync(endpoint, ct);
        var sender = new PresyncSender(new MachineMigrationSource(source), socket, key);
        var (result, rx, target) = await MigrationHarness.PresyncThenLaunchAsync(sender, received, TimeSpan.FromSeconds(2), ct);
        target.Dispose();
        Assert.True(result.Verified);
    }

    [Fact]
    public async Task A_1_3_sender_refused_by_a_1_2_receiver_for_the_TreeDigest_bit_connects_again_without_it_and_verifies()
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        using var kvm = KvmRequirement.OpenOrSkip();
        using var key = MigrationHarness.Key();
        var (endpoint, received) = MigrationHarness.StartReceiver(kvm, key, Receiver12, ct);
        using var old = new Receiver12Proxy(endpoint);
        using var source = MigrationHarness.BootFilled(kvm, MigrationHarness.Config(Workload.Text, 64L << 20));
        using var socket = await MigrationSocket.ConnectAsync(old.Endpoint, ct);
        var sender = new PresyncSender(new MachineMigrationSource(source), socket, key, new PresyncOptions
        {
            Reconnect = new ReconnectOptions(token => MigrationSocket.ConnectAsync(old.Endpoint, token)),
        });
        var (result, rx, target) = await MigrationHarness.PresyncThenLaunchAsync(sender, received, TimeSpan.FromSeconds(2), ct);
        target.Dispose();
        Assert.Equal(1, old.Refused); // the second Hello offered only bits 1.2 knows
        Assert.True(result.Verified);
    }

    [Fact]
    public async Task With_writes_tracked_a_large_launch_is_rehashed_as_it_arrives_and_the_switchover_rehashes_at_most_a_slice()
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        using var m = TrackedMigration.Start(Workload.Movie, 128L << 20, ct);

        // the movie guest dirties ~150 MB/s, three times a 400 Mbit/s link: the policy pauses at once, and the paused delta
        // is thousands of pages
        using var socket = await MigrationSocket.ConnectAsync(m.Endpoint, ct);
        var sender = new PresyncSender(new MachineMigrationSource(m.Source), socket, m.Key, new PresyncOptions
        {
            Engine = new KvmPresync.Engine.SyncEngineOptions { LinkBitsPerSecond = 400e6 },
        });
        var (result, rx, target) = await MigrationHarness.PresyncThenLaunchAsync(sender, m.Received, TimeSpan.FromSeconds(4), ct);
        target.Dispose();
        Assert.True(result.Verified, result.Failure);
        Assert.True(rx.Resumed);
        long pages = (128L << 20) / 4096, slice = pages / 16 + new PresyncOptions().BatchPages;
        Assert.True(result.LaunchBytes > 16L << 20, $"the launch moved only {result.LaunchBytes} bytes");
        // within a round, a catch-up before a batch once 1/16 of memory landed since the last: the verification finds the rest
        Assert.InRange(rx.PagesRehashedAtSwitchover, 1, slice); // the last batch lands after the last catch-up
    }

    [Fact]
    public async Task With_writes_tracked_an_untouched_destination_verifies_and_the_guest_continues()
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        using var m = TrackedMigration.Start(Workload.Audio, 64L << 20, ct);

        using var socket = await MigrationSocket.ConnectAsync(m.Endpoint, ct);
        var sender = new PresyncSender(new MachineMigrationSource(m.Source), socket, m.Key);
        var (result, rx, target) = await MigrationHarness.PresyncThenLaunchAsync(sender, m.Received, TimeSpan.FromSeconds(3), ct);
        using (target)
        {
            Machine dest = target.Machine!;
            long beats = dest.Telemetry.HeartbeatCount;
            MachineTests.WaitFor(dest, () => dest.Telemetry.HeartbeatCount >= beats + 5, "5 heartbeats on the destination");
            Assert.Equal(0, dest.Telemetry.ContinuityErrors);
            Assert.Equal(0, dest.Telemetry.SelfCheckErrors);
        }
        Assert.True(result.Verified);
        Assert.True(rx.Resumed);
    }

    private static readonly ReceiverOptions Receiver12 = new() { Version = new ProtocolVersion(1, 2) };

    /// <summary>
    /// A receiver whose destinations' memory is write-tracked (<see cref="StartTrackedReceiver"/>) and a booted, filled source
    /// guest; skips without /dev/kvm or write tracking.
    /// </summary>
    private sealed class TrackedMigration : IDisposable
    {
        private readonly KvmSystem _kvm;

        private TrackedMigration(KvmSystem kvm, Workload workload, long memory, CancellationToken ct)
        {
            _kvm = kvm;
            Key = MigrationHarness.Key();
            (Endpoint, Received) = StartTrackedReceiver(kvm, Key, Created, ct);
            Source = MigrationHarness.BootFilled(kvm, MigrationHarness.Config(workload, memory));
        }

        public static TrackedMigration Start(Workload workload, long memory, CancellationToken ct)
        {
            KvmSystem kvm = KvmRequirement.OpenOrSkip();
            try
            {
                ProcessTrackingRequirement.SkipUnlessAvailable();
                return new TrackedMigration(kvm, workload, memory, ct);
            }
            catch
            {
                kvm.Dispose();
                throw;
            }
        }

        public PreSharedKey Key { get; }
        public TaskCompletionSource<MachineMigrationTarget> Created { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public IPEndPoint Endpoint { get; }
        public Task<(ReceiveResult Result, MachineMigrationTarget? Target)> Received { get; }
        public Machine Source { get; }

        public void Dispose()
        {
            Source.Dispose();
            Key.Dispose();
            _kvm.Dispose();
        }
    }

    /// <summary>A receiver whose destinations' memory is write-tracked (as `kvmpresync receive` does where the kernel can).</summary>
    private static (IPEndPoint Endpoint, Task<(ReceiveResult Result, MachineMigrationTarget? Target)> Done) StartTrackedReceiver(
        KvmSystem kvm, PreSharedKey key, TaskCompletionSource<MachineMigrationTarget> created, CancellationToken ct)
    {
        Socket listener = MigrationSocket.Listen(new IPEndPoint(IPAddress.Loopback, 0));
        var endpoint = (IPEndPoint)listener.LocalEndPoint!;
        var options = new ReceiverOptions { TrackWrites = GuestMemoryWriteTracker.Track };
        var done = Task.Run(async () =>
        {
            using (listener)
            {
                using Socket conn = await MigrationSocket.AcceptAsync(listener, ct);
                MachineMigrationTarget? target = null;
                ReceiveResult result = await PresyncReceiver.RunAsync(conn, key, layout =>
                {
                    target = new MachineMigrationTarget(kvm, MigrationHarness.SlotsOf(layout));
                    created.TrySetResult(target);
                    return target;
                }, options, ct);
                return (result, result.Resumed ? target : null);
            }
        }, ct);
        return (endpoint, done);
    }

    private static async Task<MigrationResult> LaunchAfterAsync(PresyncSender sender, TimeSpan presync, CancellationToken ct)
    {
        Task<MigrationResult> run = sender.RunAsync(ct);
        await Task.WhenAny(run, Task.Delay(presync, ct));
        Assert.False(run.IsCompleted, run.IsCompleted ? (await run).Failure : "");
        sender.Launch();
        return await run.WaitAsync(TimeSpan.FromSeconds(40), ct);
    }

    /// <summary>The destination refused with DigestMismatch and resumed nothing; the source was resumed and keeps working.</summary>
    private static async Task ExpectDigestMismatchAsync(MigrationResult result, Machine source,
        Task<(ReceiveResult Result, MachineMigrationTarget? Target)> received)
    {
        var (rx, target) = await received.WaitAsync(TimeSpan.FromSeconds(40));
        Assert.False(result.Succeeded, "the migration succeeded with a corrupted page");
        Assert.False(rx.Resumed);
        Assert.Null(target);
        Assert.Equal(AbortReason.DigestMismatch, rx.AbortSent);
        Assert.Contains("digest", result.Failure, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("source guest was resumed", result.Failure);
        Assert.False(source.Completion.IsCompleted, "the source guest was stopped");
        Assert.False(source.IsPaused, "the source guest was left paused");
        long progress = source.Telemetry.ProgressTotal;
        MachineTests.WaitFor(source, () => source.Telemetry.ProgressTotal >= progress + 10, "the source guest to keep progressing");
        Assert.Equal(0, source.Telemetry.ContinuityErrors);
    }
}
