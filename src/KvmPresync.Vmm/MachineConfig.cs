namespace KvmPresync.Vmm;

/// <summary>How to boot a workload guest. Zero/null values mean "the default".</summary>
public sealed record MachineConfig
{
    public Workload Workload { get; init; } = Workload.Idle;

    /// <summary>Guest memory in bytes (default 256 MiB).</summary>
    public long MemorySize { get; init => field = OptionGuard.Require(value, value > 0 && value % 4096 == 0 && value <= Boot.LongModeSetup.MaxMemory, nameof(MachineConfig), $"must be a positive multiple of 4096 bytes, at most {Boot.LongModeSetup.MaxMemory >> 30} GiB (what the boot page tables map)"); } = 256L << 20;

    /// <summary>
    /// RAM up to here goes in slot 0 at GPA 0, the rest in slot 1 from 4 GiB (<see cref="RamLayout"/>);
    /// default 3 GiB. Tests set a small top (e.g. 64 MiB) to get two slots cheaply.
    /// </summary>
    public long LowMemoryTop { get; init => field = OptionGuard.Require(value, value >= RamLayout.MinLowMemoryTop && value % (2L << 20) == 0 && (ulong)value <= GuestAbi.HighMemoryGpa, nameof(MachineConfig), $"must be 2 MiB aligned, at least {RamLayout.MinLowMemoryTop >> 20} MiB and at most 4 GiB"); } = RamLayout.DefaultLowMemoryTop;

    /// <summary>The KVM slots this guest's RAM is laid out in.</summary>
    public IReadOnlyList<RamSlot> RamSlots => RamLayout.Plan(MemorySize, LowMemoryTop);

    public ulong Seed { get; init; } = 1;

    /// <summary>
    /// Bytes of heap the guest fills with data at start; null = 80 % of the heap (≈ 200 MB of 256 MiB), or none for
    /// <see cref="Workload.Replay"/> (its replay region is written once at setup instead).
    /// </summary>
    public long? FillBytes { get; init => field = OptionGuard.Require(value, value is not { } f || f >= 0, nameof(MachineConfig), "must not be negative, or null (the workload's default)"); }

    /// <summary>Of the filled pages, how many per 1000 stay zero (like a real guest's free pages).</summary>
    public uint ZeroPermille { get; init => field = OptionGuard.Require(value, value <= 1000, nameof(MachineConfig), "must be at most 1000 (per mille)"); } = 50;

    public uint HeartbeatMs { get; init; } = 100;

    /// <summary>
    /// How compressible the guest's data pages are (<see cref="Vmm.PageContent"/>); null = the workload's default,
    /// <see cref="Vmm.PageContent.DefaultFor"/> (fitted to the real program it models), see <see cref="EffectivePageContent"/>.
    /// <see cref="Vmm.PageContent.Random"/> keeps the incompressible content.
    /// </summary>
    public PageContent? PageContent { get; init; }

    /// <summary>The content the guest is booted with: <see cref="PageContent"/>, or the workload's default.</summary>
    public PageContent EffectivePageContent => PageContent ?? Vmm.PageContent.DefaultFor(Workload);

    /// <summary>Workload parameters (docs/WORKLOADS.md); 0 = the guest's default.</summary>
    public ulong[] Params { get; init => field = OptionGuard.Require(OptionGuard.NotNull(value, nameof(MachineConfig)), value.Length == GuestAbi.BootInfo.ParamCount, nameof(MachineConfig), $"must hold exactly {GuestAbi.BootInfo.ParamCount} values (the guest ABI's parameter count)"); } = new ulong[GuestAbi.BootInfo.ParamCount];

    /// <summary>For <see cref="Workload.Pattern"/>: guest page numbers the guest writes once after READY.</summary>
    public long[] PatternPages { get; init => field = OptionGuard.NotNull(value, nameof(MachineConfig)); } = [];

    /// <summary>
    /// For <see cref="Workload.Replay"/>: the batches the guest writes (required to boot one). Not part of a snapshot: a
    /// machine restored elsewhere has none, and its guest idles (heartbeats only) after the batch it holds. The machine
    /// disposes it when it is <see cref="IDisposable"/>.
    /// </summary>
    public Replay.IReplayFeed? ReplayFeed { get; init; }

    /// <summary>Path of workload.bin; null = <see cref="DefaultGuestImage"/>.</summary>
    public string? GuestImage { get; init; }

    public bool HugePages { get; init; }

    /// <summary>
    /// guests/workload.bin where the app's native files are (<see cref="KvmPresync.Core.NativeAssets"/>): next to the app
    /// (this repository's build) or under runtimes/linux-x64/native (the KvmPresync.Vmm package, portable build); a
    /// publish for linux-x64 flattens it to workload.bin next to the app. When none has it, the path next to the app
    /// (the error names it).
    /// </summary>
    public static string DefaultGuestImage =>
        KvmPresync.Core.NativeAssets.Find(Path.Combine("guests", "workload.bin")) ?? KvmPresync.Core.NativeAssets.Find("workload.bin") ??
            Path.Combine(AppContext.BaseDirectory, "guests", "workload.bin");
}
