using System.Net;
using System.Net.Sockets;
using KvmPresync.Kvm;
using KvmPresync.Core;
using KvmPresync.Engine;
using KvmPresync.Migration;
using KvmPresync.Tests.Kvm;
using KvmPresync.Vmm;
using KvmPresync.Vmm.Devices;
using KvmPresync.Vmm.Migration;
using KvmPresync.Wire;

namespace KvmPresync.Tests.Migration;

/// <summary>Source machine + in-process receiver on loopback, for end-to-end migration tests on real KVM.</summary>
internal static class MigrationHarness
{
    public static PreSharedKey Key(byte fill = 7) => new(Enumerable.Repeat(fill, 32).ToArray());

    /// <summary>
    /// A sender and a receiver into blank memory (<see cref="BlankTarget"/>) over loopback: <paramref name="configure"/>
    /// builds the sender on the connected socket (and may hand it to its source); returns both outcomes.
    /// </summary>
    public static async Task<(MigrationResult Sent, ReceiveResult Received)> SendToBlankReceiverAsync(Func<Socket, PreSharedKey, PresyncSender> configure)
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        PreSharedKey key = Key();
        using Socket listener = MigrationSocket.Listen(new IPEndPoint(IPAddress.Loopback, 0));
        Task<ReceiveResult> receiver = Task.Run(async () =>
        {
            using Socket connection = await listener.AcceptAsync(ct);
            return await PresyncReceiver.RunAsync(connection, key, layout => new BlankTarget(layout), cancellationToken: ct);
        });
        using Socket socket = await MigrationSocket.ConnectAsync((IPEndPoint)listener.LocalEndPoint!, ct);
        PresyncSender sender = configure(socket, key);
        MigrationResult sent = await sender.RunAsync(ct);
        return (sent, await receiver);
    }

    public static MachineConfig Config(Workload w, long memory = 128L << 20) => new()
    {
        Workload = w,
        MemorySize = memory,
        HeartbeatMs = 50,
        GuestImage = KvmRequirement.GuestImageOrFail(),
    };

    /// <summary>Boots <paramref name="config"/>'s guest, starts its vCPU and waits until its memory is filled (disposed if that fails).</summary>
    public static Machine BootFilled(KvmSystem kvm, MachineConfig config)
    {
        Machine machine = Machine.Boot(kvm, config);
        try
        {
            machine.Start();
            Vmm.MachineTests.WaitFor(machine, () => machine.Telemetry.Ready, "the initial fill");
            return machine;
        }
        catch
        {
            machine.Dispose();
            throw;
        }
    }

    /// <summary>The announced slots, as the VMM creates them.</summary>
    public static IEnumerable<RamSlot> SlotsOf(MemoryLayout layout) =>
        layout.Slots.Select(s => new RamSlot(s.SlotId, s.GuestPhysicalAddress, (long)s.SizeBytes));

    /// <summary>Listens on 127.0.0.1 (ephemeral port), accepts one connection and runs a receiver creating machine targets.</summary>
    public static (IPEndPoint Endpoint, Task<(ReceiveResult Result, MachineMigrationTarget? Target)> Done) StartReceiver(
        KvmSystem kvm, PreSharedKey key, ReceiverOptions? options = null, CancellationToken ct = default)
    {
        Socket listener = MigrationSocket.Listen(new IPEndPoint(IPAddress.Loopback, 0));
        var endpoint = (IPEndPoint)listener.LocalEndPoint!;
        var done = Task.Run(async () =>
        {
            using (listener)
            {
                using Socket conn = await MigrationSocket.AcceptAsync(listener, ct);
                MachineMigrationTarget? target = null;
                ReceiveResult result = await PresyncReceiver.RunAsync(conn, key, layout =>
                    target = new MachineMigrationTarget(kvm, SlotsOf(layout)), options, ct);
                return (result, result.Resumed ? target : null);
            }
        }, ct);
        return (endpoint, done);
    }

    /// <summary>
    /// The migrated guest runs on at the destination: <paramref name="beats"/> more heartbeats there, continuing the source's
    /// (no continuity or self-check error, the sequence past the source's last), and the source guest stopped.
    /// </summary>
    public static async Task AssertRunsOnAsync(Machine source, Machine dest, int beats = 5)
    {
        Heartbeat last = source.Telemetry.LastHeartbeat!.Value;
        long before = dest.Telemetry.HeartbeatCount;
        Tests.Vmm.MachineTests.WaitFor(dest, () => dest.Telemetry.HeartbeatCount >= before + beats, $"{beats} heartbeats on the destination");
        Assert.Equal(0, dest.Telemetry.ContinuityErrors);
        Assert.Equal(0, dest.Telemetry.SelfCheckErrors);
        Assert.True(dest.Telemetry.LastHeartbeat!.Value.Seq > last.Seq);
        Assert.Equal(MachineExitKind.Stopped, (await source.Completion).Kind);
    }

    /// <summary>
    /// Lets <paramref name="sender"/> presync for <paramref name="presync"/> (it must still be running then), launches,
    /// and returns the verified result with the receiver's side; fails the test with both sides' reasons otherwise.
    /// </summary>
    public static async Task<(MigrationResult Result, ReceiveResult Received, MachineMigrationTarget Target)> PresyncThenLaunchAsync(
        PresyncSender sender, Task<(ReceiveResult Result, MachineMigrationTarget? Target)> received, TimeSpan presync, CancellationToken ct)
    {
        Task<MigrationResult> run = sender.RunAsync(ct);
        await Task.WhenAny(run, Task.Delay(presync, ct));
        Assert.False(run.IsCompleted, run.IsCompleted ? (await run).Failure : "");
        sender.Launch();
        MigrationResult result = await run.WaitAsync(TimeSpan.FromSeconds(30), ct);
        if (!result.Succeeded)
        {
            var (failedRx, _) = await received.WaitAsync(TimeSpan.FromSeconds(10), ct);
            Assert.Fail($"sender: {result.Failure}; receiver: {failedRx.Failure}");
        }
        Assert.True(result.Verified);
        var (rx, target) = await received.WaitAsync(TimeSpan.FromSeconds(10), ct);
        Assert.True(rx.Resumed, rx.Failure);
        return (result, rx, target!);
    }
}
