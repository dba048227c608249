using KvmPresync.Libvirt.Guest;

namespace KvmPresync.Tests.LinuxGuest;

/// <summary>
/// Boots the project's Linux guest image (make guest-image) under QEMU TCG and checks each workload from its serial
/// console: an unbroken heartbeat chain, no self-check errors, and the workload's progress rate near its target.
/// </summary>
public sealed class LinuxGuestBootTests
{
    [Theory]
    // Heartbeats come every 100 ms. Text is bursty (typing 2-8 s, pauses 1-10 s), so it is measured over 30 s:
    // seed 1 types 107 keys in its first 30 s (3.58/s) on any machine, since keys are scheduled on the guest clock.
    [InlineData("text", 300, 4.88, 0.15)]   // keystrokes/s: seed 1 types 146 keys in its first 30 s (kp-workload on a host too)
    [InlineData("audio", 100, 50.0, 0.05)]  // periods/s
    [InlineData("movie", 100, 25.0, 0.10)]  // frames/s (720p)
    [InlineData("database", 100, 2200.0, 0.10)]  // transactions/s (a 192 MiB mapping in the 256 MiB guest)
    public async Task The_workload_heartbeats_on_the_serial_console_without_a_break_or_self_check_error_at_its_rate(
        string workload, int heartbeats, double targetPerSecond, double tolerance)
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        string image = LinuxGuestImage.DirectoryOrSkip();
        await using QemuLinuxGuest guest = QemuLinuxGuest.Start(image, $"kp.workload={workload} kp.seed=1");

        await guest.WaitUntilAsync(c => c.Heartbeats.Count > 0, TimeSpan.FromSeconds(90), "first heartbeat", ct);
        TimeSpan boot = guest.Elapsed;
        await guest.WaitUntilAsync(c => c.FirstHeartbeatAfterReady is { } i && c.Heartbeats.Count >= i + heartbeats,
            TimeSpan.FromSeconds(60 + heartbeats / 10), $"{heartbeats} heartbeats after KPREADY", ct);

        LinuxGuestConsole console = guest.Console;
        Assert.True(console.Gaps.Count == 0, $"heartbeat chain broken: {string.Join("; ", console.Gaps)}\n{guest.Tail()}");
        Assert.True(console.CurrentRun >= heartbeats, $"only {console.CurrentRun} consecutive heartbeats");
        Assert.True(console.Last!.Value.SelfCheckErrors == 0,
            $"self-check errors: {console.Last.Value.SelfCheckErrors}: {string.Join("\n", console.SelfCheckReports)}");
        Assert.DoesNotContain(console.OtherLines, l => l.StartsWith("malformed heartbeat", StringComparison.Ordinal));

        int first = console.FirstHeartbeatAfterReady!.Value;
        HeartbeatLine a = console.Heartbeats[first], b = console.Heartbeats[first + heartbeats - 1];
        double seconds = (b.TimeMs!.Value - a.TimeMs!.Value) / 1000.0;
        double rate = (b.Progress - a.Progress) / seconds;
        TestContext.Current.TestOutputHelper?.WriteLine(
            $"{workload}: first heartbeat {boot.TotalSeconds:0.0} s after QEMU started; {rate:0.00} units/s over {seconds:0.0} s guest time " +
            $"(target {targetPerSecond}); {console.Heartbeats.Count} heartbeats, 0 gaps, 0 self-check errors");
        Assert.InRange(rate, targetPerSecond * (1 - tolerance), targetPerSecond * (1 + tolerance));
    }
}
