using System.CommandLine;
using System.Diagnostics;
using KvmPresync.Kvm;
using KvmPresync.Memory;
using KvmPresync.Vmm;

namespace KvmPresync.Cli.Commands;

/// <summary><c>kvmpresync run</c>: runs a workload guest, showing its progress rate and dirty-page rate live.</summary>
internal static class RunCommand
{
    public static Command Create()
    {
        var guest = new GuestOptions();
        var seconds = new Option<double>("--seconds", "-s") { Description = "How long to run the guest (after its initial memory fill)", DefaultValueFactory = _ => 30 };
        var cmd = new Command("run", "Run a workload guest on KVM and show its progress rate and dirty pages per second");
        guest.AddTo(cmd);
        cmd.Options.Add(seconds);
        cmd.SetAction((r, ct) => Task.FromResult(Run(guest.ToConfig(r), TimeSpan.FromSeconds(r.GetValue(seconds)), ct)));
        return cmd;
    }

    private static int Run(MachineConfig config, TimeSpan duration, CancellationToken ct)
    {
        var view = LiveView.ForConsole();
        using var kvm = KvmSystem.Open();
        using var machine = Machine.Boot(kvm, config);
        Console.WriteLine($"booting {config.Workload} guest: {Units.FormatBytes(config.MemorySize)}, seed {config.Seed}");
        machine.Start();
        if (!GuestRun.WaitReady(machine, view, ct)) return GuestRun.Report(machine, view);

        var source = new KvmDirtyPageSource(machine.Vm, machine.Slot, machine.VmmWrites, () => (ulong)machine.Telemetry.ProgressTotal);
        var dirty = new DirtyBitmap(source.PageCount);
        source.Harvest(dirty); // the fill and boot writes: not part of the steady state
        var clock = Stopwatch.StartNew();
        long totalDirty = 0, totalProgress = 0, samples = 0;
        while (clock.Elapsed < duration && !ct.IsCancellationRequested && !machine.Completion.IsCompleted)
        {
            Thread.Sleep(TimeSpan.FromSeconds(1));
            dirty.Clear();
            var h = source.Harvest(dirty);
            samples++;
            totalDirty += h.DirtyPages;
            totalProgress += (long)h.Progress;
            double secs = clock.Elapsed.TotalSeconds;
            view.Update($"{secs,6:0.0}s  progress {h.Progress,5}/s  dirty {h.DirtyPages,7} pages/s ({Units.FormatBytes(h.DirtyPages * (double)source.PageSize)}/s)  heartbeats {machine.Telemetry.HeartbeatCount}");
        }
        view.Done();
        double elapsed = clock.Elapsed.TotalSeconds;
        machine.Pause();
        Console.WriteLine($"ran {elapsed:0.0} s: progress {totalProgress / elapsed:0.0} units/s, dirty {totalDirty / elapsed:0} pages/s, " +
                          $"heartbeats {machine.Telemetry.HeartbeatCount}, continuity errors {machine.Telemetry.ContinuityErrors}, self-check errors {machine.Telemetry.SelfCheckErrors}");
        return GuestRun.Report(machine, view);
    }
}

/// <summary>Steps shared by the commands that run a guest.</summary>
internal static class GuestRun
{
    /// <summary>Waits until the guest has filled its memory, showing progress; false when the guest ended first.</summary>
    public static bool WaitReady(Machine machine, LiveView view, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        while (!machine.Telemetry.Ready)
        {
            if (machine.Completion.IsCompleted || ct.IsCancellationRequested) { view.Done(); return false; }
            view.Update($"filling guest memory... {clock.Elapsed.TotalSeconds:0.0}s");
            Thread.Sleep(200);
        }
        view.Update($"guest ready after {clock.Elapsed.TotalSeconds:0.0}s ({machine.Telemetry.ReadyPages} pages of data)");
        view.Done();
        return true;
    }

    /// <summary>Exit code: 0 when the guest is healthy (still running or exited cleanly, no self-check or continuity errors).</summary>
    public static int Report(Machine machine, LiveView view)
    {
        view.Done();
        if (machine.Completion.IsCompleted)
        {
            MachineExit exit = machine.Completion.Result;
            if (exit.Kind != MachineExitKind.Stopped && exit.GuestCode != GuestExitCode.Ok)
            {
                Console.Error.WriteLine($"error: {exit.Message}");
                return 3;
            }
        }
        if (machine.Telemetry.SelfCheckErrors > 0 || machine.Telemetry.ContinuityErrors > 0)
        {
            Console.Error.WriteLine($"error: the guest reported {machine.Telemetry.SelfCheckErrors} self-check and {machine.Telemetry.ContinuityErrors} continuity errors");
            return 4;
        }
        return 0;
    }
}
