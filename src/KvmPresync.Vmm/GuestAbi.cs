using System.Buffers.Binary;

namespace KvmPresync.Vmm;

/// <summary>
/// C# mirror of native/include/kvmpresync_guest.h — the contract with the workload guests. The
/// layout test proves every offset here against the C header through the shim.
/// </summary>
public static class GuestAbi
{
    public const ulong GdtGpa = 0x1000;
    public const ulong BootInfoGpa = 0x8000;
    public const ulong PageTableGpa = 0x10000;
    public const ulong PageTableEndGpa = 0x50000;
    public const ulong StackTopGpa = 0xA0000;
    public const ulong LoadGpa = 0x100000;
    /// <summary>Where RAM above the low-memory top continues (region 1), past the hole below 4 GiB.</summary>
    public const ulong HighMemoryGpa = 0x1_0000_0000;
    /// <summary>The replay workload's mailbox (<c>struct kp_replay_batch</c>), written by the VMM; <see cref="ReplayMailboxPages"/> pages.</summary>
    public const ulong ReplayMailboxGpa = 0xA0000;
    public const int ReplayMailboxPages = 16;
    /// <summary>Runs one batch can list: what fits in the mailbox after the header (<c>KP_REPLAY_MAX_RUNS</c>).</summary>
    public const int ReplayMaxRuns = (ReplayMailboxPages * 4096 - ReplayBatch.Size) / ReplayRun.Size;
    /// <summary>RAM regions the boot info can list.</summary>
    public const int MaxRamRegions = 4;

    public const ushort PortClockLo = 0x510;
    public const ushort PortClockHi = 0x514;
    public const ushort PortPace = 0x518;
    public const ushort PortProgress = 0x51C;
    public const ushort PortHeartbeat = 0x520;
    public const ushort PortReady = 0x524;
    public const ushort PortConsole = 0x528;
    public const ushort PortExit = 0x52C;
    public const ushort PortReplay = 0x530;

    public const uint BootMagic = 0x4942504B;
    public const uint BootVersion = 3;

    /// <summary>Byte offsets of <c>struct kp_boot_info</c>.</summary>
    public static class BootInfo
    {
        public const int Magic = 0, Version = 4, Workload = 8, Flags = 12, MemorySize = 16, Seed = 24, HeapStart = 32;
        public const int FillBytes = 40, ZeroPermille = 48, HeartbeatMs = 52, Params = 56, ParamCount = 16;
        public const int Mailbox = Params + ParamCount * 8;
        public const int RegionCount = Mailbox + Mail.Size, ContentLz4Permille = RegionCount + 4, Regions = ContentLz4Permille + 4;
        public const int Size = Regions + MaxRamRegions * RamRegion.Size;
    }

    /// <summary>Byte offsets of <c>struct kp_ram_region</c> (one entry of the boot info's region list).</summary>
    public static class RamRegion
    {
        public const int Gpa = 0, SizeBytes = 8, FirstPfn = 16;
        public const int Size = 24;
    }

    /// <summary>Byte offsets of <c>struct kp_mailbox</c> (inside the boot info).</summary>
    public static class Mail
    {
        public const int PaceDeadlineUs = 0, HbSeq = 8, HbPrev = 16, HbSum = 24, HbErrors = 32, ProgressTotal = 40;
        /// <summary>A paced workload's schedule (<see cref="Devices.GuestSchedule"/>), read at READY and PACE.</summary>
        public const int SchedDueUs = 48, SchedLostUs = 56;
        public const int Size = 64;
    }

    /// <summary>Byte offsets of <c>struct kp_replay_batch</c> (the replay mailbox header; the runs follow it).</summary>
    public static class ReplayBatch
    {
        public const int Seq = 0, Interval = 8, DueUs = 16, Pages = 24, RunCount = 32, Flags = 36, Progress = 40, Reserved = 44, Runs = 48;
        public const int Size = 48;
        /// <summary><c>KP_REPLAY_END</c>: no more batches; the guest only heartbeats.</summary>
        public const uint FlagEnd = 1;
    }

    /// <summary>Byte offsets of <c>struct kp_replay_run</c> (page indices inside the replay region).</summary>
    public static class ReplayRun
    {
        public const int First = 0, Count = 4;
        public const int Size = 8;
    }

    /// <summary>Reads a u64 of the guest's mailbox from the boot-info page.</summary>
    public static ulong ReadMail(ReadOnlySpan<byte> bootInfoPage, int field) =>
        BinaryPrimitives.ReadUInt64LittleEndian(bootInfoPage[(BootInfo.Mailbox + field)..]);
}

/// <summary>The workload a guest runs (<c>enum kp_workload</c>).</summary>
public enum Workload : uint
{
    Idle = 0,
    Text = 1,
    Audio = 2,
    Movie = 3,
    Pattern = 4,
    /// <summary>Writes the pages of a recorded dirty trace at their recorded times (<see cref="Replay.IReplayFeed"/>).</summary>
    Replay = 5,
    /// <summary>A database server under a TPC-B-like load (docs/WORKLOADS.md, database).</summary>
    Database = 6,
}

/// <summary>Guest exit codes (<c>enum kp_exit_code</c>).</summary>
public enum GuestExitCode : uint
{
    Ok = 0,
    BadBootInfo = 1,
    BadWorkload = 2,
    NoMemory = 3,
    SelfCheck = 4,
}
