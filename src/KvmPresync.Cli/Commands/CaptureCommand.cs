using System.CommandLine;
using System.Diagnostics;
using System.Runtime.InteropServices;
using KvmPresync.Cli.Capture;
using KvmPresync.ProcessMemory;
using KvmPresync.ProcessMemory.Capture;

namespace KvmPresync.Cli.Commands;

/// <summary>
/// <c>kvmpresync trace capture … -- COMMAND ARGS…</c>: runs a real program (and whatever it forks or execs) under the
/// preload library and records the pages the whole tree writes, every interval, as a trace (ProcessTreeCapture).
/// </summary>
internal static class CaptureCommand
{
    public static Command Create()
    {
        var interval = new Option<string>("--interval", "-i") { Description = "Harvest interval, e.g. 100ms", DefaultValueFactory = _ => "100ms" };
        var seconds = new Option<double>("--seconds", "-s") { Description = "Stop after this many seconds (0: when the command exits); the tree then gets SIGTERM, SIGKILL after --grace" };
        var grace = new Option<string>("--grace") { Description = "Time between SIGTERM and SIGKILL when the capture ends the tree", DefaultValueFactory = _ => "5s" };
        var workload = new Option<string?>("--workload", "-w") { Description = "Workload name in the trace header (default: the command's file name)" };
        var output = new Option<string>("--output", "-o") { Description = "Trace file to write", Required = true };
        var samplePages = new Option<string?>("--sample-pages")
        {
            Description = "Also sample the contents of the written pages into FILE (a uniform sample of the pages each interval reports, " +
                          "read from /proc/PID/mem right after the interval; all-zero pages left out) and a summary into FILE.txt: a page-content " +
                          "corpus for the compression benchmark",
        };
        var sampleCount = new Option<int>("--sample-count") { Description = "With --sample-pages: pages to keep", DefaultValueFactory = _ => 256 };
        var quiet = new Option<bool>("--quiet", "-q") { Description = "No progress line on standard error (e.g. when the command draws on the same terminal)" };
        var command = new Argument<string[]>("command") { Description = "The program and its arguments, after --", Arity = ArgumentArity.OneOrMore };
        var cmd = new Command("capture",
            "Run a program under exact write tracking (userfaultfd + PAGEMAP_SCAN, Linux >= 6.7) and record the pages it and all its " +
            "descendants write each interval as a trace in a compact page space (docs/TRACE_FORMAT.md, \"Captured traces\"). The program keeps " +
            "this terminal (stdin, stdout, tty). Ends when the program exits, after --seconds, or on Ctrl-C / SIGTERM; the trace is written in " +
            "every case. Statically linked and setuid programs cannot be tracked (reported).")
        {
            interval, seconds, grace, workload, output, samplePages, sampleCount, quiet, command,
        };
        cmd.SetAction(r => Run(new Settings(r.GetValue(command)!, Units.ParseDuration(r.GetValue(interval)!, interval.Name), r.GetValue(seconds),
            Units.ParseDuration(r.GetValue(grace)!, grace.Name), r.GetValue(workload), r.GetValue(output)!, r.GetValue(quiet), r.GetValue(samplePages), r.GetValue(sampleCount))));
        return cmd;
    }

    private sealed record Settings(string[] Command, TimeSpan Interval, double Seconds, TimeSpan Grace, string? Workload, string Output, bool Quiet,
        string? SamplePages = null, int SampleCount = 256);

    private static int Run(Settings s)
    {
        if (s.Interval < TimeSpan.FromMilliseconds(1)) throw new ArgumentException("--interval must be at least 1ms");
        if (s.Seconds < 0) throw new ArgumentException("--seconds must not be negative");
        if (!UserfaultfdHandle.IsAvailable(out string reason))
            throw new InvalidOperationException($"this kernel cannot track writes exactly ({reason}); trace capture needs Linux >= 6.7 with userfaultfd");
        string tracker = TrackedCommand.FindTracker(AppContext.BaseDirectory)
            ?? throw new FileNotFoundException($"{TrackedCommand.TrackerFileName} not found next to kvmpresync ({AppContext.BaseDirectory}) nor in native/build: build it with make -C native");
        string output = Path.GetFullPath(s.Output);
        using (File.Create(output)) { } // fail now, not after the run, when the trace cannot be written

        using var stop = new CancellationTokenSource();
        string end = "command-exited";
        void OnSignal(PosixSignalContext ctx)
        {
            ctx.Cancel = true; // we end the tree and write the trace ourselves
            end = ctx.Signal == PosixSignal.SIGINT ? "interrupted (SIGINT)" : "terminated (SIGTERM)";
            stop.Cancel();
        }
        using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);
        using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);

        string statusPath = Path.Combine(Path.GetTempPath(), $"kvmpresync-capture-{Environment.ProcessId}-{Guid.NewGuid():N}.status");
        var status = new TrackerStatusFile(statusPath);
        using var spool = new IntervalSpool();
        var view = new LiveView(Console.Error, !Console.IsErrorRedirected);
        var resident = new List<long>();
        ProcessTreeCapture capture;
        if (s.SampleCount < 1) throw new ArgumentException("--sample-count must be at least 1");
        using var sampler = s.SamplePages is null ? null : new PageSampler(s.SampleCount, Environment.SystemPageSize);
        using (Process child = TrackedCommand.Start(s.Command, tracker, statusPath))
        {
            capture = new ProcessTreeCapture(child.Id, status);
            Loop(capture, child, spool, resident, view, s, sampler, stop.Token, ref end);
            view.Done();
            int killed = capture.Terminate(s.Grace);
            if (killed > 0) Console.Error.WriteLine($"kvmpresync: {killed} process(es) needed SIGKILL after {s.Grace.TotalSeconds:0.#} s");
        }

        status.Poll();
        var summary = new CapturedTrace.Summary(s.Command, s.Interval, s.Workload ?? Path.GetFileName(s.Command[0]), end, resident, status.Errors);
        (long intervals, long pages) = CapturedTrace.Write(output, capture, spool, summary);
        File.Delete(statusPath);
        if (sampler is not null)
        {
            sampler.Write(Path.GetFullPath(s.SamplePages!), summary.Workload);
            Console.Error.WriteLine($"sampled {sampler.Count} written pages into {s.SamplePages} (of {sampler.Offered} offered; {sampler.ZeroPages} all-zero and {sampler.Unreadable} unreadable left out)");
        }
        int untracked = capture.Processes.Count(p => p.Untracked);
        Console.Error.WriteLine($"wrote {s.Output}: {intervals} intervals of {s.Interval.TotalMilliseconds:0} ms, {pages} distinct pages written by " +
                                $"{capture.Processes.Count} process(es){(untracked > 0 ? $" ({untracked} untracked)" : "")}, {Units.FormatBytes(new FileInfo(output).Length)}; ended: {end}");
        return ExitCodes.Ok;
    }

    private static void Loop(ProcessTreeCapture capture, Process child, IntervalSpool spool, List<long> resident, LiveView view,
        Settings s, PageSampler? sampler, CancellationToken stop, ref string end)
    {
        var clock = Stopwatch.StartNew();
        TimeSpan next = s.Interval, nextSample = TimeSpan.Zero;
        long pagesThisSecond = 0, rate = 0;
        while (true)
        {
            bool stopping = stop.WaitHandle.WaitOne(Max(TimeSpan.Zero, next - clock.Elapsed)) || stop.IsCancellationRequested;
            CaptureInterval iv = capture.Harvest(); // also the last one when stopping: nothing written so far is dropped
            spool.Add(iv.Time, iv.Pages);
            sampler?.Offer(capture, iv.Pages);
            pagesThisSecond += iv.Pages.Length;
            foreach (string notice in iv.Notices)
            {
                view.Done();
                Console.Error.WriteLine($"kvmpresync: {notice}");
            }
            if (clock.Elapsed >= nextSample)
            {
                resident.Add(capture.SampleResidentKib());
                rate = pagesThisSecond;
                pagesThisSecond = 0;
                nextSample += TimeSpan.FromSeconds(1);
                if (!s.Quiet)
                    view.Update($"capture {clock.Elapsed.TotalSeconds,6:0.0} s  {rate} pages/s  {iv.Processes} process(es)  resident {Units.FormatBytes(resident[^1] * 1024.0)}  {capture.Space.PageCount} distinct pages");
            }
            if (stopping) return;
            if (child.HasExited) { end = $"command-exited (status {child.ExitCode})"; return; }
            if (s.Seconds > 0 && clock.Elapsed.TotalSeconds >= s.Seconds) { end = $"time-limit ({s.Seconds:0.###} s)"; return; }
            next += s.Interval;
            if (next < clock.Elapsed) next = clock.Elapsed; // a slow harvest: no burst of catch-up intervals
        }
    }

    private static TimeSpan Max(TimeSpan a, TimeSpan b) => a > b ? a : b;
}
