using System.Buffers.Binary;
using KvmPresync.Core;
using KvmPresync.Kvm;
using KvmPresync.Memory;
using KvmPresync.Vmm.Boot;
using KvmPresync.Vmm.Devices;
using KvmPresync.Vmm.Replay;

namespace KvmPresync.Vmm;

/// <summary>How a machine's vCPU loop ended.</summary>
public sealed record MachineExit(MachineExitKind Kind, string Message, GuestExitCode? GuestCode = null, ulong Rip = 0);

public enum MachineExitKind
{
    /// <summary><see cref="Machine.Stop"/> was called.</summary>
    Stopped = 1,
    /// <summary>The guest wrote to the EXIT port.</summary>
    GuestExit = 2,
    /// <summary>The vCPU exited for a reason the VMM does not handle, or an ioctl failed.</summary>
    Error = 3,
}

/// <summary>
/// A running workload guest: one VM, its RAM in one or two memory slots (<see cref="RamLayout"/>: below the
/// low-memory top at GPA 0, the rest from 4 GiB), one vCPU on its own thread, and the port devices of the guest ABI. Supports pause / resume, save state, and restore into a fresh VM.
/// </summary>
public sealed class Machine : IDisposable
{
    private readonly Vm _vm;
    private readonly Vcpu _vcpu;
    private readonly GuestClock _clock;
    private readonly ReplayMailbox _replay;
    private readonly GuestSchedule _schedule = new();
    private readonly object _gate = new(); // guards _vcpuAt and the pause/stop flags' transitions; Pause, Resume and the vCPU wait on it
    private readonly SemaphoreSlim _wake = new(0);
    private readonly TaskCompletionSource<MachineExit> _exit = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Thread? _thread;
    private volatile bool _pauseRequested;
    // Where the vCPU thread is (under _gate): Busy (in the loop or KVM_RUN), Idle (asleep until the pace deadline, no I/O
    // pending), ParkedAsleep (paused while Idle, by Pause on its own thread), Parked (paused in the loop), Ended.
    private const int Busy = 0, Idle = 1, ParkedAsleep = 2, Parked = 3, Ended = 4;
    private int _vcpuAt;
    private volatile bool _stopRequested;
    private long _paceDeadlineUs;
    private long _latchedClockUs;
    private long _paceIdleTicks;
    private VcpuThreadStats? _threadStats;

    private Machine(MachineConfig config, Vm vm, GuestMemoryMap memory, IReadOnlyList<MemorySlot> slots, Vcpu vcpu, GuestClock clock, GuestTelemetry telemetry)
    {
        Config = config;
        _vm = vm;
        Memory = memory;
        Slots = slots;
        _vcpu = vcpu;
        _clock = clock;
        Telemetry = telemetry;
        VmmWrites = new DirtyBitmap(memory.PageCount);
        _replay = new ReplayMailbox(memory.Regions[0].Memory, VmmWrites, config.ReplayFeed);
    }

    public MachineConfig Config { get; }

    public Vm Vm => _vm;

    /// <summary>vCPU 0 (tests of the KVM layer on a running workload).</summary>
    internal Vcpu Vcpu => _vcpu;

    /// <summary>The KVM memory slots, in <see cref="Memory"/>'s region order.</summary>
    public IReadOnlyList<MemorySlot> Slots { get; }

    /// <summary>All guest RAM, pages indexed region after region (the index of <see cref="VmmWrites"/> and the dirty log). Owned.</summary>
    public GuestMemoryMap Memory { get; }

    /// <summary>Region 0 (GPA 0 up to the low-memory top): boot layout, image, boot info.</summary>
    private GuestMemory LowMemory => Memory.Regions[0].Memory;

    public GuestTelemetry Telemetry { get; }

    /// <summary>Guest time in microseconds (stops while paused).</summary>
    public long GuestTimeUs => _clock.NowUs;

    /// <summary>Pages the VMM itself wrote into guest memory (KVM's dirty log does not see them), indexed like <see cref="Memory"/>.</summary>
    public DirtyBitmap VmmWrites { get; }

    /// <summary>
    /// For <see cref="Workload.Replay"/>: the replay region (trace page i is linear page <c>FirstPage + i</c>); null for
    /// other workloads and for a machine restored from a snapshot.
    /// </summary>
    public (long FirstPage, long Pages)? ReplayRegion { get; private set; }

    /// <summary>For <see cref="Workload.Replay"/>: the batches handed to the guest so far and how late they were.</summary>
    public ReplayStats ReplayStats => _replay.Stats;

    /// <summary>
    /// For <see cref="Workload.Replay"/>: trace milliseconds the guest has replayed, caught up to now or to the due time of
    /// the batch it still writes (<c>ReplayMailbox.ReplayedUpToUs</c>): its rate is the replay's pace, 1000/s when it keeps
    /// up. Null for other workloads, before the first batch and on a restored machine (its trace stayed with the source).
    /// </summary>
    public long? ReplayedTraceMs => Config.ReplayFeed is null ? null : _replay.ReplayedUpToUs(_clock.NowUs) / 1000;

    /// <summary>
    /// For a paced workload that publishes its schedule (text): the schedule milliseconds it has caught up to, less those
    /// of the items it dropped as too late (<see cref="GuestSchedule"/>); its rate is 1000/s while the guest keeps up,
    /// through the pauses of its schedule too. Null for workloads that keep none.
    /// </summary>
    public long? ScheduleMs => _schedule.CaughtUpUs(_clock.NowUs) / 1000;

    /// <summary>Schedule milliseconds whose items the guest dropped as too late (<see cref="ScheduleMs"/> leaves them out); null without a schedule.</summary>
    public long? ScheduleLostMs => _schedule.LostUs / 1000;

    /// <summary>
    /// The guest's work units for rates over a window: trace milliseconds replayed (<see cref="ReplayedTraceMs"/>), else
    /// schedule milliseconds caught up (<see cref="ScheduleMs"/>), else the count its progress port reports.
    /// </summary>
    public long WorkUnits => ReplayedTraceMs ?? ScheduleMs ?? Telemetry.ProgressTotal;

    /// <summary>Completes when the vCPU loop ends.</summary>
    public Task<MachineExit> Completion => _exit.Task;

    public bool IsPaused => Volatile.Read(ref _vcpuAt) is Parked or ParkedAsleep;

    /// <summary>The vCPU thread sleeps until the pace deadline, its I/O completed: a <see cref="Pause"/> now parks it asleep.</summary>
    internal bool IsAsleep => Volatile.Read(ref _vcpuAt) == Idle;

    /// <summary>Paused by parking the vCPU thread where it slept (it did not run between the pause and now).</summary>
    internal bool IsParkedAsleep => Volatile.Read(ref _vcpuAt) == ParkedAsleep;

    /// <summary>Whether the vCPU thread runs ahead of the VMM's threads (<see cref="VcpuPriority"/>; needs CAP_SYS_NICE).</summary>
    public bool VcpuPriorityRaised { get; private set; }

    /// <summary>
    /// How the vCPU thread has spent its time since <see cref="Start()"/>: on a CPU, waiting for one, and pace-sleeping
    /// (nothing due); null before the thread started or where the kernel keeps no per-thread schedstat.
    /// </summary>
    public GuestRunStats? RunStats =>
        _threadStats?.Read() is { } s
            ? new GuestRunStats(s.OnCpuNs, s.WaitNs, (long)(Interlocked.Read(ref _paceIdleTicks) * (1e9 / System.Diagnostics.Stopwatch.Frequency)))
            : null;

    /// <summary>Creates a VM, loads the workload guest and its boot info; call <see cref="Start()"/> to run it.</summary>
    public static Machine Boot(KvmSystem kvm, MachineConfig config)
    {
        ArgumentNullException.ThrowIfNull(kvm);
        ArgumentNullException.ThrowIfNull(config);
        string imagePath = config.GuestImage ?? MachineConfig.DefaultGuestImage;
        if (!File.Exists(imagePath))
            throw new FileNotFoundException($"workload guest image {imagePath} not found; build it with 'make -C native'", imagePath);
        byte[] image = File.ReadAllBytes(imagePath);

        GuestMemoryMap memory = RamLayout.Allocate(config.RamSlots, config.HugePages);
        MachineShell? shell = null;
        try
        {
            shell = MachineShell.Create(kvm, memory);
            var machine = new Machine(config, shell.Vm, memory, shell.Slots, shell.Vcpu, new GuestClock(), new GuestTelemetry());
            machine.LoadGuest(image);
            return machine;
        }
        catch
        {
            shell?.Dispose();
            memory.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Recreates a machine in a fresh VM from <paramref name="snapshot"/>, over <paramref name="memory"/>
    /// which must already hold the guest's memory, in the snapshot's slots (<see cref="MachineConfig.RamSlots"/>);
    /// the machine owns it from then on. Call <see cref="Start()"/> to continue it.
    /// </summary>
    public static Machine Restore(KvmSystem kvm, MachineSnapshot snapshot, GuestMemoryMap memory)
    {
        MachineShell shell = MachineShell.Create(kvm, memory);
        try
        {
            return Restore(shell, snapshot);
        }
        catch
        {
            shell.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Restores <paramref name="snapshot"/> into a shell prepared in advance (a migration destination creates the
    /// VM while memory is still arriving, so only the state restore is left for the downtime).
    /// </summary>
    public static Machine Restore(MachineShell shell, MachineSnapshot snapshot)
    {
        ArgumentNullException.ThrowIfNull(shell);
        ArgumentNullException.ThrowIfNull(snapshot);
        (GuestClock clock, GuestTelemetry telemetry) = RestoreState(shell, snapshot);
        var machine = new Machine(snapshot.Config, shell.Vm, shell.Memory, shell.Slots, shell.Vcpu, clock, telemetry)
        {
            _paceDeadlineUs = snapshot.Devices.PaceDeadlineUs,
            _latchedClockUs = snapshot.Devices.LatchedClockUs,
        };
        machine.PublishSchedule(machine.LowMemory.Slice((long)GuestAbi.BootInfoGpa, GuestAbi.BootInfo.Size)); // the guest's mailbox came with its memory
        return machine;
    }

    /// <summary>
    /// All of <see cref="Restore(MachineShell, MachineSnapshot)"/> but creating the machine: checks the shell's slots against
    /// the snapshot's, restores VM and vCPU state, rebuilds the devices' state. <see cref="MachineShell.Warm"/> runs this very
    /// code before a migration's downtime, so none of it is compiled (or its types loaded) inside it.
    /// </summary>
    internal static (GuestClock Clock, GuestTelemetry Telemetry) RestoreState(MachineShell shell, MachineSnapshot snapshot)
    {
        IReadOnlyList<RamSlot> expected = snapshot.Config.RamSlots;
        if (!RamLayout.Matches(expected, shell.Memory))
            throw new ArgumentException(
                $"memory slots are {string.Join(", ", RamLayout.SlotsOf(shell.Memory))}; the snapshot's guest has {string.Join(", ", expected)}", nameof(shell));
        shell.Vm.RestoreState(snapshot.Vm);
        shell.Vcpu.RestoreState(snapshot.Vcpu);
        var telemetry = new GuestTelemetry();
        telemetry.Restore(snapshot.Devices.Telemetry);
        return (new GuestClock(snapshot.Devices.ClockUs), telemetry);
    }

    private void LoadGuest(byte[] image)
    {
        GuestMemoryMap map = Memory;
        GuestMemory mem = LowMemory;
        ulong heapStart = RamLayout.HeapStart(image.Length);
        if (heapStart >= (ulong)mem.Size)
            throw new ArgumentException($"guest memory region 0 of {mem.Size} bytes leaves no heap after the {image.Length}-byte image (heap would start at 0x{heapStart:x})");
        // The heap is counted in the guest's (virtual, linear) addresses: it runs on past the low region into the high one.
        long heap = map.SizeBytes - (long)heapStart;
        // Default fill: 80 % of the heap, as a guest's OS and page cache would hold; none for a replay (its region is the
        // trace's pages), 50 % for the movie (its work area is 33 MiB: it fits a 128 MiB guest), 20 % for the database
        // (its buffer pool, 128 MiB by default, is most of its memory).
        long fill = Config.FillBytes ?? Config.Workload switch
        {
            Workload.Replay => 0,
            Workload.Movie => heap / 2 / mem.PageSize * mem.PageSize,
            Workload.Database => heap / 5 / mem.PageSize * mem.PageSize,
            _ => heap / 5 * 4 / mem.PageSize * mem.PageSize,
        };
        if (fill < 0 || fill > heap)
            throw new ArgumentException($"fill of {fill} bytes does not fit the {heap}-byte heap");

        LongModeSetup.WriteTables(map, VmmWrites);
        image.CopyTo(mem.Slice((long)GuestAbi.LoadGpa, image.Length));
        LongModeSetup.MarkWritten(VmmWrites, map, GuestAbi.LoadGpa, image.Length);

        ulong[] parameters = (ulong[])Config.Params.Clone();
        if (parameters.Length != GuestAbi.BootInfo.ParamCount)
            throw new ArgumentException($"workload parameters: {parameters.Length} given, the ABI has {GuestAbi.BootInfo.ParamCount}");
        if (Config.Workload == Workload.Pattern)
        {
            const ulong listGpa = GuestAbi.BootInfoGpa + 0x1000;
            int max = (int)((GuestAbi.PageTableGpa - listGpa) / 8);
            if (Config.PatternPages.Length > max)
                throw new ArgumentException($"pattern workload: {Config.PatternPages.Length} pages, at most {max}");
            Span<byte> list = mem.Slice((long)listGpa, Config.PatternPages.Length * 8);
            for (int i = 0; i < Config.PatternPages.Length; i++)
            {
                if ((ulong)Config.PatternPages[i] >= (ulong)map.PageCount)
                    throw new ArgumentException($"pattern page {Config.PatternPages[i]} is outside the guest's {map.PageCount} pages");
                BinaryPrimitives.WriteInt64LittleEndian(list[(i * 8)..], Config.PatternPages[i]);
            }
            if (list.Length > 0) LongModeSetup.MarkWritten(VmmWrites, map, listGpa, list.Length);
            parameters[0] = (ulong)Config.PatternPages.Length;
            parameters[1] = listGpa;
        }

        if (Config.Workload == Workload.Replay)
        {
            IReplayFeed feed = Config.ReplayFeed
                ?? throw new ArgumentException("the replay workload needs MachineConfig.ReplayFeed (the trace's batches)");
            long pages = feed.PageCount;
            if (pages <= 0 || pages > uint.MaxValue)
                throw new ArgumentException($"replay: the trace has {pages} pages; a replay guest takes 1 .. {uint.MaxValue}");
            long required = ReplayLayout.RequiredMemory(heapStart, fill, pages);
            if (required > map.SizeBytes)
                throw new ArgumentException($"replay: the trace's {pages} pages ({pages * 4096} bytes) need {required} bytes of guest memory " +
                    $"(boot area and image up to the heap at 0x{heapStart:x}, {fill} bytes of fill, a {ReplayLayout.TablePages(pages)}-page version table); " +
                    $"the guest has {map.SizeBytes}: give it at least {ReplayLayout.AutoMemory(heapStart, fill, pages)} bytes");
            long first = ReplayLayout.RegionFirstPage(heapStart, fill, pages);
            parameters[0] = (ulong)pages;
            parameters[1] = (ulong)first;
            ReplayRegion = (first, pages);
        }

        Span<byte> bi = mem.Slice((long)GuestAbi.BootInfoGpa, GuestAbi.BootInfo.Size);
        bi.Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(bi[GuestAbi.BootInfo.Magic..], GuestAbi.BootMagic);
        BinaryPrimitives.WriteUInt32LittleEndian(bi[GuestAbi.BootInfo.Version..], GuestAbi.BootVersion);
        BinaryPrimitives.WriteUInt32LittleEndian(bi[GuestAbi.BootInfo.Workload..], (uint)Config.Workload);
        BinaryPrimitives.WriteUInt64LittleEndian(bi[GuestAbi.BootInfo.MemorySize..], (ulong)map.SizeBytes);
        BinaryPrimitives.WriteUInt64LittleEndian(bi[GuestAbi.BootInfo.Seed..], Config.Seed);
        BinaryPrimitives.WriteUInt64LittleEndian(bi[GuestAbi.BootInfo.HeapStart..], heapStart);
        BinaryPrimitives.WriteUInt64LittleEndian(bi[GuestAbi.BootInfo.FillBytes..], (ulong)fill);
        BinaryPrimitives.WriteUInt32LittleEndian(bi[GuestAbi.BootInfo.ZeroPermille..], Config.ZeroPermille);
        BinaryPrimitives.WriteUInt32LittleEndian(bi[GuestAbi.BootInfo.HeartbeatMs..], Config.HeartbeatMs);
        for (int i = 0; i < parameters.Length; i++)
            BinaryPrimitives.WriteUInt64LittleEndian(bi[(GuestAbi.BootInfo.Params + i * 8)..], parameters[i]);
        if (map.Regions.Count > GuestAbi.MaxRamRegions)
            throw new ArgumentException($"{map.Regions.Count} RAM regions; the boot info lists at most {GuestAbi.MaxRamRegions}");
        BinaryPrimitives.WriteUInt32LittleEndian(bi[GuestAbi.BootInfo.RegionCount..], (uint)map.Regions.Count);
        BinaryPrimitives.WriteUInt32LittleEndian(bi[GuestAbi.BootInfo.ContentLz4Permille..], Config.EffectivePageContent.Lz4Permille);
        for (int r = 0; r < map.Regions.Count; r++)
        {
            Span<byte> entry = bi[(GuestAbi.BootInfo.Regions + r * GuestAbi.RamRegion.Size)..];
            BinaryPrimitives.WriteUInt64LittleEndian(entry[GuestAbi.RamRegion.Gpa..], map.Regions[r].GuestPhysicalAddress);
            BinaryPrimitives.WriteUInt64LittleEndian(entry[GuestAbi.RamRegion.SizeBytes..], (ulong)map.Regions[r].Memory.Size);
            BinaryPrimitives.WriteUInt64LittleEndian(entry[GuestAbi.RamRegion.FirstPfn..], (ulong)map.FirstIndexOf(r));
        }
        LongModeSetup.MarkWritten(VmmWrites, map, GuestAbi.BootInfoGpa, GuestAbi.BootInfo.Size);

        LongModeSetup.SetRegisters(_vcpu, GuestAbi.LoadGpa, GuestAbi.StackTopGpa, GuestAbi.BootInfoGpa);
    }

    /// <summary>Starts the vCPU thread (and the guest clock).</summary>
    public void Start() => Start(null);

    /// <summary>Starts the vCPU loop on <paramref name="standby"/> (a thread started in advance), or on a new thread.</summary>
    internal void Start(StandbyThread? standby)
    {
        if (_thread is not null) throw new InvalidOperationException("the machine was already started");
        _thread = standby?.Thread ?? new Thread(RunLoop) { IsBackground = true, Name = "vcpu0" };
        _clock.Start();
        if (standby is not null) standby.Run(RunLoop);
        else _thread.Start();
    }

    /// <summary>
    /// Stops the vCPU outside KVM_RUN (pending I/O completed) and stops the guest clock. Idempotent. A vCPU asleep until its
    /// pace deadline (a paced guest between periods, most of its time) has no I/O pending and is parked where it sleeps, on
    /// this thread, without waking it: 0.5–2.4 ms of the launch on a loaded 2-core host went to that wake-up and back.
    /// </summary>
    public void Pause(TimeSpan? timeout = null)
    {
        if (_thread is null) throw new InvalidOperationException("the machine is not started");
        lock (_gate)
        {
            _pauseRequested = true;
            if (_vcpuAt == Idle)
            {
                _vcpuAt = ParkedAsleep;
                _clock.Stop();
                return;
            }
            if (_vcpuAt is Parked or ParkedAsleep or Ended) return;
        }
        _vcpu.Kick();
        _wake.Release();
        // Waited on this thread (no thread-pool hop: under load that alone cost tens of ms of downtime).
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(10));
        lock (_gate)
            while (_vcpuAt is not (Parked or Ended))
            {
                if (DateTime.UtcNow > deadline) throw new TimeoutException("the vCPU did not pause within the timeout");
                Monitor.Wait(_gate, TimeSpan.FromMilliseconds(5));
            }
    }

    /// <summary>Continues a paused machine.</summary>
    public void Resume()
    {
        lock (_gate)
        {
            if (!_pauseRequested) return;
            _pauseRequested = false;
            if (_vcpuAt is not (Parked or ParkedAsleep)) return; // asked to pause, not yet parked: the vCPU sees the flag cleared
            _vcpuAt = _vcpuAt == ParkedAsleep ? Idle : Busy; // parked asleep: it sleeps on to its deadline
            _clock.Start();
            Monitor.PulseAll(_gate);
        }
    }

    /// <summary>Ends the vCPU loop (the machine can still be saved if it was paused first).</summary>
    public void Stop()
    {
        lock (_gate)
        {
            _stopRequested = true;
            Monitor.PulseAll(_gate);
        }
        _vcpu.Kick();
        _wake.Release();
        _thread?.Join(TimeSpan.FromSeconds(10));
    }

    /// <summary>Saves vCPU, VM and device state. The machine must be paused (or stopped).</summary>
    public MachineSnapshot SaveState()
    {
        if (_thread is not null && !IsPaused && !Completion.IsCompleted)
            throw new InvalidOperationException("pause the machine before saving its state");
        var devices = new DeviceState(_clock.NowUs, Volatile.Read(ref _paceDeadlineUs), _latchedClockUs, Telemetry.Save());
        return new MachineSnapshot(Config, _vcpu.SaveState(), _vm.SaveState(), devices);
    }

    private void RunLoop()
    {
        MachineExit exit;
        _threadStats = VcpuThreadStats.OpenForCurrentThread();
        VcpuPriorityRaised = VcpuPriority.Raise();
        try
        {
            exit = Loop();
        }
        catch (Exception e)
        {
            exit = new MachineExit(MachineExitKind.Error, $"vCPU 0: {e.Message}", Rip: SafeRip());
        }
        _clock.Stop();
        lock (_gate)
        {
            _vcpuAt = Ended;
            Monitor.PulseAll(_gate);
        }
        _exit.TrySetResult(exit);
    }

    private MachineExit Loop()
    {
        while (true)
        {
            if (_stopRequested) return new MachineExit(MachineExitKind.Stopped, "stopped by the VMM");
            if (_pauseRequested)
            {
                // Complete any pending I/O first: KVM_RUN with immediate_exit set returns at once.
                if (!_vcpu.RunImmediateExit().Interrupted) continue;
                Park();
                continue;
            }
            if (!SleepUntilPaceDeadline()) continue;
            VcpuExit e = _vcpu.Run();
            switch (e.Reason)
            {
                case KvmPresync.Kvm.Interop.KvmExitReason.Intr:
                    continue;
                case KvmPresync.Kvm.Interop.KvmExitReason.Io when e.Size == 4 && e.Count == 1:
                    if (HandleIo(e) is { } guestExit) return guestExit;
                    continue;
                default:
                    ulong rip = SafeRip();
                    return new MachineExit(MachineExitKind.Error,
                        $"vCPU 0 exited unexpectedly: {e} at RIP 0x{rip:x}; the guest did something this VMM does not emulate", Rip: rip);
            }
        }
    }

    /// <summary>Parks the vCPU thread until <see cref="Resume"/> (which restarts the clock) or <see cref="Stop"/>.</summary>
    private void Park()
    {
        lock (_gate)
        {
            if (!_pauseRequested) return; // resumed before it got here
            _clock.Stop();
            _vcpuAt = Parked;
            Monitor.PulseAll(_gate);
            while (_vcpuAt == Parked && !_stopRequested) Monitor.Wait(_gate);
            _vcpuAt = Busy;
        }
    }

    /// <summary>
    /// Sleeps (interruptibly) until the guest's pace deadline; false when interrupted by pause/stop. Before it sleeps it
    /// completes the pending I/O (KVM_RUN with immediate_exit) and says it is <see cref="Idle"/>, so that
    /// <see cref="Pause"/> may park it asleep; paused meanwhile, it waits for <see cref="Resume"/> (which restarts the clock).
    /// </summary>
    private bool SleepUntilPaceDeadline()
    {
        bool ioCompleted = false;
        while (true)
        {
            long remaining = Volatile.Read(ref _paceDeadlineUs) - _clock.NowUs;
            if (remaining <= 0) return true;
            if (_pauseRequested || _stopRequested) return false;
            if (!ioCompleted)
            {
                if (!_vcpu.RunImmediateExit().Interrupted) throw new InvalidOperationException("KVM_RUN with immediate_exit entered the guest");
                ioCompleted = true;
            }
            long slept = System.Diagnostics.Stopwatch.GetTimestamp();
            lock (_gate)
            {
                if (_pauseRequested || _stopRequested) return false;
                _vcpuAt = Idle; // a Pause from here on parks it asleep
            }
            _wake.Wait(TimeSpan.FromMicroseconds(Math.Min(remaining, 50_000)));
            Interlocked.Add(ref _paceIdleTicks, System.Diagnostics.Stopwatch.GetTimestamp() - slept);
            lock (_gate)
            {
                while (_vcpuAt == ParkedAsleep && !_stopRequested) Monitor.Wait(_gate); // paused while it slept: not pace idle
                _vcpuAt = Busy;
            }
        }
    }

    private void PublishSchedule(ReadOnlySpan<byte> bootInfo) =>
        _schedule.Publish(GuestAbi.ReadMail(bootInfo, GuestAbi.Mail.SchedDueUs), GuestAbi.ReadMail(bootInfo, GuestAbi.Mail.SchedLostUs));

    private MachineExit? HandleIo(in VcpuExit e)
    {
        Span<byte> data = _vcpu.IoData(e);
        if (!e.IsOut)
        {
            uint value = e.Port switch
            {
                GuestAbi.PortClockLo => (uint)(_latchedClockUs = _clock.NowUs),
                GuestAbi.PortClockHi => (uint)((ulong)_latchedClockUs >> 32),
                _ => throw UnexpectedPort(e),
            };
            BinaryPrimitives.WriteUInt32LittleEndian(data, value);
            return null;
        }
        uint v = BinaryPrimitives.ReadUInt32LittleEndian(data);
        ReadOnlySpan<byte> bootInfo = LowMemory.Slice((long)GuestAbi.BootInfoGpa, GuestAbi.BootInfo.Size);
        switch (e.Port)
        {
            case GuestAbi.PortPace:
                Volatile.Write(ref _paceDeadlineUs, (long)GuestAbi.ReadMail(bootInfo, GuestAbi.Mail.PaceDeadlineUs));
                PublishSchedule(bootInfo);
                break;
            case GuestAbi.PortProgress:
                PublishSchedule(bootInfo); // a workload whose step does many items reports each one (text)
                Telemetry.AddProgress(v);
                break;
            case GuestAbi.PortHeartbeat:
                Telemetry.AddHeartbeat(new Heartbeat(GuestAbi.ReadMail(bootInfo, GuestAbi.Mail.HbSeq), GuestAbi.ReadMail(bootInfo, GuestAbi.Mail.HbPrev),
                    GuestAbi.ReadMail(bootInfo, GuestAbi.Mail.HbSum), GuestAbi.ReadMail(bootInfo, GuestAbi.Mail.HbErrors)));
                break;
            case GuestAbi.PortReady:
                PublishSchedule(bootInfo);
                Telemetry.SetReady(v);
                break;
            case GuestAbi.PortConsole:
                Telemetry.AddConsole((char)(v & 0xFF));
                break;
            case GuestAbi.PortReplay:
                _replay.Answer(v, _clock.NowUs);
                break;
            case GuestAbi.PortExit:
                var code = (GuestExitCode)v;
                return new MachineExit(MachineExitKind.GuestExit,
                    code == GuestExitCode.Ok ? "guest exited cleanly" : $"guest exited with {code} ({v}); console: {Telemetry.Console.Trim()}", code, SafeRip());
            default:
                throw UnexpectedPort(e);
        }
        return null;
    }

    private Exception UnexpectedPort(in VcpuExit e) =>
        new InvalidOperationException($"unexpected {e} at RIP 0x{SafeRip():x}");

    private ulong SafeRip()
    {
        try { return _vcpu.GetRegs().Rip; }
        catch (KvmException) { return 0; }
    }

    public void Dispose()
    {
        if (_thread is not null && !Completion.IsCompleted) Stop();
        _vm.Dispose();
        Memory.Dispose();
        (Config.ReplayFeed as IDisposable)?.Dispose();
        _wake.Dispose();
        _threadStats?.Dispose();
    }
}
