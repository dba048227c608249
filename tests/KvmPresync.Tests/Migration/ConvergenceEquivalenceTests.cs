using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using KvmPresync.Core;
using KvmPresync.Engine;
using KvmPresync.Engine.Convergence;
using KvmPresync.Memory;
using KvmPresync.Migration;
using KvmPresync.Trace;
using KvmPresync.Wire;

namespace KvmPresync.Tests.Migration;

/// <summary>
/// One recorded trace through <c>simulate</c> (<see cref="Simulator"/>) and through a live <see cref="PresyncSender"/>
/// (real sockets, the real receiver) whose source replays the same trace at the simulator's harvest instants: both
/// run the same round step and the same convergence policy object, so they plan the same rounds and take the same
/// convergence decisions after launch.
/// </summary>
[Collection(nameof(KvmPresync.Tests.ZeroCopy.ProcessAllocationCollection))]
public sealed class ConvergenceEquivalenceTests(ITestOutputHelper output)
{
    private static string TracePath(string name, [CallerFilePath] string here = "") =>
        Path.GetFullPath(Path.Combine(Path.GetDirectoryName(here)!, "..", "..", "data", "traces", name + ".kptrace"));

    /// <summary>The trace, harvested at a script of instants (the simulator's), one instant per harvest; launch is requested at one of them.</summary>
    private sealed class ScriptedSource : IMigrationSource, IDirtyPageSource, IDisposable
    {
        private readonly TraceReplaySource _trace;
        private readonly IReadOnlyList<TimeSpan> _instants;
        private readonly int _launchAfterHarvest;
        private int _harvests;

        public ScriptedSource(string tracePath, IReadOnlyList<TimeSpan> instants, int launchAfterHarvest)
        {
            _trace = TraceReplaySource.Open(tracePath);
            _instants = instants;
            _launchAfterHarvest = launchAfterHarvest;
            Memory = GuestMemoryMap.Single(GuestMemory.Create(_trace.PageCount * _trace.PageSize), ownsMemory: true);
        }

        public PresyncSender? Sender { get; set; }
        public GuestMemoryMap Memory { get; }
        public IDirtyPageSource DirtyLog => this;
        public long ProgressTotal => 0;
        public bool Paused { get; private set; }
        public bool Stopped { get; private set; }
        public long PageCount => _trace.PageCount;
        public int PageSize => _trace.PageSize;

        public DirtyHarvest Harvest(DirtyBitmap into)
        {
            int k = _harvests++;
            _trace.AdvanceTo(_instants[Math.Min(k, _instants.Count - 1)]);
            DirtyHarvest h = _trace.Harvest(into);
            if (k == _launchAfterHarvest) Sender!.Launch();
            return h;
        }

        public void Pause() => Paused = true;
        public void Resume() => Paused = false;
        public byte[] SaveState() => [1, 2, 3];
        public void Stop() => Stopped = true;

        public void Dispose()
        {
            Memory.Dispose();
            _trace.Dispose();
        }
    }

    [Theory]
    [InlineData("movie", 1e9)]
    [InlineData("movie", 200e6)]
    [InlineData("text", 1e9)]
    public async Task Simulate_and_a_live_sender_take_the_same_convergence_decisions_on_a_recorded_trace(string trace, double linkBitsPerSecond)
    {
        var policy = new DowntimeTargetConvergence();
        long pageCount;
        using (var header = TraceReplaySource.Open(TracePath(trace))) pageCount = header.PageCount;
        var simulation = new SimulationOptions
        {
            // the live source's memory is all zero and the live sender prices what it scans as zero at a header
            // (NonZeroPages.Scan): the simulator is told the same, and both mark a page non-zero once it is harvested
            NonZeroPages = new DirtyBitmap(pageCount),
            Policy = SyncPolicy.Predict,  // a window fixed by the link rate: no live RTT enters the plan
            LinkBitsPerSecond = linkBitsPerSecond,
            Duration = TimeSpan.FromSeconds(4),
            HeaderBytesPerPage = PageDescriptor.WireLength,
            Convergence = policy,
        };
        SimulationResult simulated;
        using (var replay = TraceReplaySource.Open(TracePath(trace)))
            simulated = Simulator.Run(replay, simulation);

        List<TimeSpan> instants = simulated.Rounds.Select(r => TimeSpan.FromMilliseconds(r.TimeMs)).ToList();
        int syncRounds = simulated.Rounds.Count(r => r.Phase == RoundPhase.Sync);
        using var source = new ScriptedSource(TracePath(trace), instants, launchAfterHarvest: syncRounds - 1);

        (MigrationResult live, ReceiveResult received) = await MigrationHarness.SendToBlankReceiverAsync((socket, key) =>
            source.Sender = new PresyncSender(source, socket, key, new PresyncOptions
            {
                Engine = simulation.ToEngineOptions() with { HeaderBytesPerPage = PageDescriptor.WireLength },
                RateLimitBitsPerSecond = 0,
                ProbeWorkingSet = false, // the simulator cannot probe a trace between its rounds, and the script has one instant per harvest
            }));

        Assert.True(live.Succeeded, live.Failure);
        Assert.True(received.Verified && received.Resumed, received.Failure);
        Assert.True(source.Stopped, "the source was not stopped after the destination confirmed it runs");

        // the same sync rounds were planned (pending and held pages per round)
        var simSync = simulated.Rounds.Where(r => r.Phase == RoundPhase.Sync).Select(r => (r.PendingPages, r.HeldPages)).ToList();
        var liveSync = live.Rounds.Where(r => r.Phase == RoundPhase.Sync).Select(r => (r.PendingPages, r.HeldPages)).ToList();
        Assert.Equal(simSync, liveSync);

        // and the same decisions after launch
        var simDecisions = simulated.Rounds.Where(r => r.Convergence is not null).Select(r => r.Convergence!.Value).ToList();
        var liveDecisions = live.Rounds.Where(r => r.Convergence is not null).Select(r => r.Convergence!.Value).ToList();
        output.WriteLine($"{trace} at {linkBitsPerSecond / 1e6:0} Mbit/s: {syncRounds} sync rounds; decisions: {string.Join(", ", simDecisions)}");
        Assert.NotEmpty(simDecisions);
        Assert.Equal(simDecisions, liveDecisions);
        Assert.Equal(simulated.FinalLiveRounds, live.FinalLiveRounds);
        Assert.Equal(ConvergenceAction.Pause, liveDecisions[^1].Action);
    }

    [Fact]
    public void A_policy_that_gives_up_leaves_the_simulated_source_running()
    {
        var gaveUp = new DowntimeTargetConvergence { MaxLiveDuration = TimeSpan.Zero, MaxDowntime = TimeSpan.FromMilliseconds(1) };
        using var replay = TraceReplaySource.Open(TracePath("movie"));
        SimulationResult r = Simulator.Run(replay, new SimulationOptions
        {
            Policy = SyncPolicy.None,
            LinkBitsPerSecond = 10e6,
            Duration = TimeSpan.FromSeconds(2),
            Convergence = gaveUp,
        });
        Assert.True(r.GaveUp);
        Assert.Equal(new ConvergenceDecision(ConvergenceAction.GiveUp, ConvergenceReason.DowntimeWouldExceedLimit), r.Rounds[^1].Convergence);
        Assert.Equal(0, r.PausedDeltaBytes);
    }
}
