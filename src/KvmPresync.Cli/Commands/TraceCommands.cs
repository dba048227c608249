using System.CommandLine;
using System.Diagnostics;
using KvmPresync.Cli.Capture;
using KvmPresync.Kvm;
using KvmPresync.Memory;
using KvmPresync.Trace;
using KvmPresync.Vmm;

namespace KvmPresync.Cli.Commands;

/// <summary><c>kvmpresync trace record|capture|info</c>: dirty-page traces of real guests for the predictor work.</summary>
internal static class TraceCommands
{
    /// <summary>Fails with what to do when <paramref name="path"/> is not a file one could read a trace from.</summary>
    internal static void RequireTraceFile(string path)
    {
        if (Directory.Exists(path)) throw new IOException($"{path} is a directory, not a trace file; give a .kptrace file (e.g. one 'kvmpresync trace record' wrote)");
        if (!File.Exists(path)) throw new IOException($"trace file {path} does not exist; record one with 'kvmpresync trace record'");
    }

    public static Command Create()
    {
        var trace = new Command("trace", "Record or inspect dirty-page traces (docs/TRACE_FORMAT.md)");
        trace.Subcommands.Add(Record());
        trace.Subcommands.Add(CaptureCommand.Create());
        trace.Subcommands.Add(Info());
        return trace;
    }

    private static Command Record()
    {
        var guest = new GuestOptions();
        var seconds = new Option<double>("--seconds", "-s") { Description = "How long to record, in seconds, after the guest's initial memory fill", DefaultValueFactory = _ => 60 };
        var interval = new Option<string>("--interval", "-i") { Description = "Dirty-log harvest interval, e.g. 100ms", DefaultValueFactory = _ => "100ms" };
        var output = new Option<string>("--output", "-o") { Description = "Trace file to write", Required = true };
        var cmd = new Command("record", "Run a workload guest on KVM and record its dirty bitmap every interval");
        guest.AddTo(cmd);
        cmd.Options.Add(seconds);
        cmd.Options.Add(interval);
        cmd.Options.Add(output);
        cmd.SetAction((r, ct) => Task.FromResult(RunRecord(guest.ToConfig(r), TimeSpan.FromSeconds(r.GetValue(seconds)),
            Units.ParseDuration(r.GetValue(interval)!, interval.Name), r.GetValue(output)!, ct)));
        return cmd;
    }

    private static int RunRecord(MachineConfig config, TimeSpan duration, TimeSpan interval, string path, CancellationToken ct)
    {
        if (interval < TimeSpan.FromMilliseconds(1)) throw new ArgumentException("--interval must be at least 1ms");
        var view = LiveView.ForConsole();
        using var kvm = KvmSystem.Open();
        using var machine = Machine.Boot(kvm, config);
        machine.Start();
        if (!GuestRun.WaitReady(machine, view, ct)) return GuestRun.Report(machine, view);

        var source = new KvmDirtyPageSource(machine.Vm, machine.Slots, machine.VmmWrites, () => (ulong)machine.Telemetry.ProgressTotal);
        var dirty = new DirtyBitmap(source.PageCount);
        TimeSpan start = source.Harvest(dirty).Time; // boot and fill: not part of the recorded steady state
        var header = new TraceHeader
        {
            PageSize = source.PageSize,
            PageCount = source.PageCount,
            Interval = interval,
            Workload = Replay.TraceWorkload.NameOf(config),
            Metadata = new Dictionary<string, string>
            {
                ["memory"] = config.MemorySize.ToString(System.Globalization.CultureInfo.InvariantCulture),
                ["seed"] = config.Seed.ToString(System.Globalization.CultureInfo.InvariantCulture),
                ["page_content"] = config.EffectivePageContent.ToString(),
                ["recorder"] = "kvmpresync trace record (KVM dirty log)",
            },
        };
        if (config.Workload == Workload.Replay && machine.ReplayRegion is { } region)
            header = header with
            {
                Metadata = new Dictionary<string, string>(header.Metadata)
                {
                    ["replay_of"] = (config.ReplayFeed as Replay.TraceReplayFeed)?.FilePath ?? "",
                    ["replay_first_page"] = region.FirstPage.ToString(System.Globalization.CultureInfo.InvariantCulture),
                },
            };
        using var writer = TraceWriter.Create(path, header);
        var clock = Stopwatch.StartNew();
        var guestStart = new Migration.GuestSample(clock.Elapsed, machine.WorkUnits, machine.RunStats);
        long n = 0;
        TimeSpan next = interval;
        while (clock.Elapsed < duration && !ct.IsCancellationRequested && !machine.Completion.IsCompleted)
        {
            TimeSpan wait = next - clock.Elapsed;
            if (wait > TimeSpan.Zero) Thread.Sleep(wait);
            dirty.Clear();
            var harvest = source.Harvest(dirty);
            writer.WriteInterval(harvest.Time - start, dirty, harvest.Progress);
            n++;
            next += interval;
            if (n % Math.Max(1, (long)(TimeSpan.FromSeconds(1) / interval)) == 0)
                view.Update($"{clock.Elapsed.TotalSeconds,6:0.0}s / {duration.TotalSeconds:0}s  intervals {n}  last {harvest.DirtyPages} dirty pages  file {Units.FormatBytes(writer.BytesWritten)}");
        }
        var guest = Migration.GuestWindow.Between(guestStart, new Migration.GuestSample(clock.Elapsed, machine.WorkUnits, machine.RunStats));
        writer.Complete();
        view.Done();
        Console.WriteLine($"wrote {path}: {n} intervals of {interval.TotalMilliseconds:0} ms, {Units.FormatBytes(new FileInfo(path).Length)}");
        Console.WriteLine($"guest while recorded (dirty log harvested and cleared every {interval.TotalMilliseconds:0} ms, nothing sent): {SlowdownLines.Describe(guest)}");
        machine.Pause();
        return GuestRun.Report(machine, view);
    }

    private static Command Info()
    {
        var file = new Argument<string>("file") { Description = "Trace file" };
        var cmd = new Command("info", "Read a trace back and summarize it (validates every interval)") { file };
        cmd.SetAction(r =>
        {
            string path = r.GetValue(file)!;
            RequireTraceFile(path);
            using var reader = TraceReader.Open(path);
            var bitmap = new DirtyBitmap(reader.Header.PageCount);
            long intervals = 0, dirtySum = 0, maxDirty = 0;
            var union = new DirtyBitmap(reader.Header.PageCount);
            TimeSpan last = TimeSpan.Zero;
            ulong progress = 0;
            while (reader.TryReadInterval(bitmap, out TraceInterval iv))
            {
                intervals++;
                dirtySum += iv.DirtyPages;
                maxDirty = Math.Max(maxDirty, iv.DirtyPages);
                union.Or(bitmap);
                last = iv.Timestamp;
                progress += iv.Progress;
                bitmap.Clear(); // the reader ORs each interval in
            }
            var h = reader.Header;
            Console.WriteLine($"{path}: workload {h.Workload}, {h.PageCount} pages of {h.PageSize} B, interval {h.Interval.TotalMilliseconds:0} ms");
            Console.WriteLine($"  {intervals} intervals over {last.TotalSeconds:0.0} s; dirty pages per interval: mean {(intervals == 0 ? 0 : dirtySum / (double)intervals):0.0}, max {maxDirty}; distinct pages dirtied {union.Count()}; progress {progress} units");
            foreach (var kv in h.Metadata) Console.WriteLine(TraceInfoLines.Format(kv.Key, kv.Value));
            return ExitCodes.Ok;
        });
        return cmd;
    }
}
