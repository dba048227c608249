using KvmPresync.Libvirt;
using KvmPresync.Libvirt.Presync;
using KvmPresync.Migration;

namespace KvmPresync.Tests.Libvirt;

/// <summary>
/// Presync of a real libvirt domain (a Linux guest under QEMU TCG) between two private libvirt instances
/// (docs/LIBVIRT.md): the guest moves with its heartbeats unbroken and the digest verified; a failure in each phase
/// leaves the source domain running (and without x-ignore-shared), and no RAM file behind.
/// </summary>
[Collection(LibvirtCollection.Name)]
public sealed class LibvirtPresyncTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_text_guest_moves_with_its_heartbeats_unbroken_and_its_memory_verified()
    {
        await using LibvirtPresyncHarness h = await LibvirtPresyncHarness.StartOrSkipAsync("text", Ct);
        using LibvirtMigrationSource source = h.OpenSource();
        Task<ReceiveSessionEnded> received = h.ReceiveOnceAsync(Ct);
        MigrationResult result = await h.PresyncAsync(source, TimeSpan.FromSeconds(4), Ct);
        Assert.True(result.Succeeded, result.Failure + "\n" + h.Log);
        Assert.True(result.Verified);
        ReceiveSessionEnded ended = await received;
        Assert.True(ended.Result.Resumed && ended.Result.Verified, ended.Result.Failure);
        Assert.Equal(DomainState.Running, h.State(h.Testbed.Destination));
        Assert.NotEqual(DomainState.Running, h.State(h.Testbed.Source)); // libvirt ended the source QEMU in Confirm
        Assert.Contains(h.Log.Split('\n'), l => l.Contains("libvirt hook: ok", StringComparison.Ordinal));

        await h.WaitAsync(_ => h.HeartbeatsFrom(h.DestinationConsole) >= 10, TimeSpan.FromSeconds(60), "10 heartbeats on the destination console", Ct, sourceMayStop: true);
        Assert.Empty(h.Console.Gaps); // seq + 1 and prev = last sum across the switchover: nothing lost, nothing replayed
        Assert.Empty(h.Console.SelfCheckReports);
        Assert.True(result.DowntimeMs > 0 && result.DowntimeMs < result.LaunchToResumeMs, $"downtime {result.DowntimeMs} ms, launch-to-resume {result.LaunchToResumeMs} ms");
        h.AssertNoRamFilesLeft(); // the receiver's name is gone; QEMU's hard link holds the running guest's RAM
    }

    [Fact]
    public async Task Link_lost_during_sync_leaves_the_source_running()
    {
        await using LibvirtPresyncHarness h = await LibvirtPresyncHarness.StartOrSkipAsync("audio", Ct);
        using LibvirtMigrationSource source = h.OpenSource();
        using var stopReceiver = new CancellationTokenSource();
        Task<ReceiveSessionEnded> received = h.ReceiveOnceAsync(stopReceiver.Token);
        MigrationResult result = await h.PresyncAsync(source, TimeSpan.FromSeconds(30), Ct, reconnectFor: TimeSpan.FromSeconds(2), duringSync: async () =>
        {
            await Task.Delay(TimeSpan.FromSeconds(3), Ct);
            stopReceiver.Cancel(); // the receiver goes away: the connection ends, nobody listens any more
            h.Listener.Dispose();
        });
        Assert.False(result.Succeeded);
        Assert.Equal(SenderPhase.Sync, result.FailedPhase);
        Assert.Null(h.State(h.Testbed.Destination));
        await AssertSourceKeptAsync(h, received);
    }

    [Fact]
    public async Task A_destination_without_the_hook_refuses_at_once_and_the_source_runs_on()
    {
        await using LibvirtPresyncHarness h = await LibvirtPresyncHarness.StartOrSkipAsync("text", Ct, hook: false);
        using LibvirtMigrationSource source = h.OpenSource();
        Task<ReceiveSessionEnded> received = h.ReceiveOnceAsync(Ct);
        MigrationResult result = await h.PresyncAsync(source, TimeSpan.FromSeconds(3), Ct);
        Assert.False(result.Succeeded);
        Assert.Equal(SenderPhase.AwaitingDestination, result.FailedPhase);
        Assert.Contains("does not run kvmpresync-libvirt-hook", result.Failure, StringComparison.Ordinal);
        await AssertSourceKeptAsync(h, received); // never suspended
    }

    [Fact]
    public async Task The_destination_QEMU_dying_while_held_resumes_the_source()
    {
        await using LibvirtPresyncHarness h = await LibvirtPresyncHarness.StartOrSkipAsync("text", Ct);
        using LibvirtMigrationSource source = h.OpenSource();
        Task<ReceiveSessionEnded> received = h.ReceiveOnceAsync(Ct);
        int? killed = null;
        MigrationResult result = await h.PresyncAsync(source, TimeSpan.FromSeconds(3), Ct, duringSync: async () =>
        {
            await Task.Delay(TimeSpan.FromSeconds(1), Ct);
            LibvirtRamTarget target = h.Targets.Single();
            _ = target.DestinationReady.ContinueWith(_ =>
            {
                // the destination QEMU is held by the hook: kill it (as an OOM kill or a crash would)
                killed = h.Testbed.Destination.QemuPid(h.Name);
                if (killed is { } pid) KvmPresync.Libvirt.Testbed.HostProcesses.Stop(pid, TimeSpan.Zero);
            }, TaskScheduler.Default);
        });
        Assert.NotNull(killed);
        Assert.False(result.Succeeded, "the migration claims success although the destination QEMU was killed");
        await AssertSourceKeptAsync(h, received); // resumed
    }

    [Fact]
    public async Task A_source_libvirtd_restart_during_sync_does_not_stop_the_presync()
    {
        await using LibvirtPresyncHarness h = await LibvirtPresyncHarness.StartOrSkipAsync("text", Ct);
        using LibvirtMigrationSource source = h.OpenSource();
        Task<ReceiveSessionEnded> received = h.ReceiveOnceAsync(Ct);
        MigrationResult result = await h.PresyncAsync(source, TimeSpan.FromSeconds(4), Ct, duringSync: async () =>
        {
            await Task.Delay(TimeSpan.FromSeconds(1), Ct);
            h.Testbed.Source.RestartLibvirtd(); // the QEMU (and its RAM, its tracker) live on; the source reconnects at launch
        });
        Assert.True(result.Succeeded, result.Failure + "\n" + h.Log);
        Assert.True((await received).Result.Resumed);
        Assert.Equal(DomainState.Running, h.State(h.Testbed.Destination));
        await h.WaitAsync(_ => h.HeartbeatsFrom(h.DestinationConsole) >= 5, TimeSpan.FromSeconds(60), "heartbeats on the destination console", Ct, sourceMayStop: true);
        Assert.Empty(h.Console.Gaps);
    }

    /// <summary>
    /// After a failed presync: the source domain runs without x-ignore-shared, the receiver resumed nothing, the guest
    /// still beats on its console, and no RAM file is left.
    /// </summary>
    private static async Task AssertSourceKeptAsync(LibvirtPresyncHarness h, Task<ReceiveSessionEnded> received)
    {
        Assert.Equal(DomainState.Running, h.State(h.Testbed.Source));
        Assert.False(h.SourceIgnoresShared());
        Assert.False((await received.WaitAsync(TimeSpan.FromSeconds(30), Ct)).Result.Resumed);
        await AssertStillBeatsAsync(h);
        h.AssertNoRamFilesLeft();
    }

    /// <summary>The source guest still makes progress: new heartbeats on its console, the chain unbroken.</summary>
    private static async Task AssertStillBeatsAsync(LibvirtPresyncHarness h)
    {
        h.PollConsole();
        int before = h.Console.Heartbeats.Count;
        await h.WaitAsync(c => c.Heartbeats.Count >= before + 5, TimeSpan.FromSeconds(30), "5 more heartbeats on the source", Ct);
        Assert.Empty(h.Console.Gaps);
        Assert.Equal(0, h.HeartbeatsFrom(h.DestinationConsole));
    }
}
