using System.Runtime.InteropServices;
using System.Text;
using KvmPresync.Kvm.Interop;
using KvmPresync.Kvm;
using KvmPresync.Vmm.Devices;

namespace KvmPresync.Vmm;

/// <summary>
/// The byte form of a <see cref="MachineSnapshot"/> — what travels in the FinalState frame.
/// <code>
/// "KPMS" | u16 version=3 | config (incl. the low-memory top, hence the RAM slots, and the page content) | vCPU state | VM state | device state     (all little-endian)
/// blob   = u32 length | bytes        (each length checked against a cap before anything is allocated)
/// </code>
/// </summary>
public static class MachineSnapshotCodec
{
    private static ReadOnlySpan<byte> Magic => "KPMS"u8;
    private const ushort Version = 3;
    private const int MaxBlob = 1 << 20;
    private const int MaxMsrs = 4096;

    /// <summary>Encodes and decodes a synthetic snapshot once, so a migration's downtime does not pay for compiling this code.</summary>
    public static void Warm()
    {
        var vcpu = new VcpuState(0, default, default, [], [], [], [(0x10, 1)], [], [], 0, []);
        var snapshot = new MachineSnapshot(new MachineConfig(), vcpu, new VmState([], null, []), new DeviceState(0, 0, 0, new GuestTelemetry().Save()));
        _ = Decode(Encode(snapshot));
    }

    public static byte[] Encode(MachineSnapshot s)
    {
        ArgumentNullException.ThrowIfNull(s);
        using var ms = new MemoryStream();
        using var w = new BinaryWriter(ms, Encoding.UTF8, leaveOpen: true);
        w.Write(Magic);
        w.Write(Version);
        MachineConfig c = s.Config;
        w.Write((uint)c.Workload);
        w.Write(c.MemorySize);
        w.Write(c.Seed);
        w.Write(c.FillBytes ?? -1);
        w.Write(c.ZeroPermille);
        w.Write(c.HeartbeatMs);
        w.Write(c.Params.Length);
        foreach (ulong p in c.Params) w.Write(p);
        w.Write(c.HugePages);
        w.Write(c.LowMemoryTop);
        w.Write(c.EffectivePageContent.Lz4Permille);

        VcpuState v = s.Vcpu;
        w.Write(v.Id);
        KvmRegs regs = v.Regs;
        Blob(w, MemoryMarshal.AsBytes(new ReadOnlySpan<KvmRegs>(in regs)));
        KvmSregs sregs = v.Sregs;
        Blob(w, MemoryMarshal.AsBytes(new ReadOnlySpan<KvmSregs>(in sregs)));
        Blob(w, v.Fpu);
        Blob(w, v.Xsave);
        Blob(w, v.Xcrs);
        w.Write(v.Msrs.Length);
        foreach ((uint index, ulong value) in v.Msrs)
        {
            w.Write(index);
            w.Write(value);
        }
        Blob(w, v.Lapic);
        Blob(w, v.Events);
        w.Write(v.MpState);
        Blob(w, v.DebugRegs);

        w.Write(s.Vm.Irqchips.Length);
        foreach (byte[] chip in s.Vm.Irqchips) Blob(w, chip);
        w.Write(s.Vm.Pit is not null);
        if (s.Vm.Pit is not null) Blob(w, s.Vm.Pit);
        Blob(w, s.Vm.Clock);

        DeviceState d = s.Devices;
        w.Write(d.ClockUs);
        w.Write(d.PaceDeadlineUs);
        w.Write(d.LatchedClockUs);
        TelemetryState t = d.Telemetry;
        w.Write(t.ProgressTotal);
        w.Write(t.HeartbeatCount);
        w.Write(t.LastHeartbeat is not null);
        Heartbeat hb = t.LastHeartbeat ?? default;
        w.Write(hb.Seq);
        w.Write(hb.Prev);
        w.Write(hb.Sum);
        w.Write(hb.Errors);
        w.Write(t.ContinuityErrors);
        w.Write(t.SelfCheckErrors);
        w.Write(t.Ready);
        w.Write(t.ReadyPages);
        w.Flush();
        return ms.ToArray();
    }

    /// <summary>Decodes and validates a snapshot; throws <see cref="InvalidDataException"/> naming the bad field.</summary>
    public static MachineSnapshot Decode(ReadOnlySpan<byte> bytes)
    {
        using var ms = new MemoryStream(bytes.ToArray(), writable: false);
        using var r = new BinaryReader(ms);
        try
        {
            if (!r.ReadBytes(4).AsSpan().SequenceEqual(Magic)) throw new InvalidDataException("machine state: bad magic (not a KvmPresync machine snapshot)");
            ushort version = r.ReadUInt16();
            if (version != Version) throw new InvalidDataException($"machine state: version {version}, this build reads version {Version}");
            var workload = (Workload)r.ReadUInt32();
            if (!Enum.IsDefined(workload)) throw new InvalidDataException($"machine state: unknown workload {(uint)workload}");
            long memory = r.ReadInt64();
            ulong seed = r.ReadUInt64();
            long fill = r.ReadInt64();
            uint zero = r.ReadUInt32();
            uint hbMs = r.ReadUInt32();
            int nParams = r.ReadInt32();
            if (nParams != GuestAbi.BootInfo.ParamCount) throw new InvalidDataException($"machine state: {nParams} workload parameters, expected {GuestAbi.BootInfo.ParamCount}");
            var parameters = new ulong[nParams];
            for (int i = 0; i < nParams; i++) parameters[i] = r.ReadUInt64();
            bool huge = r.ReadBoolean();
            long lowTop = r.ReadInt64();
            uint contentPermille = r.ReadUInt32();
            PageContent content;
            try
            {
                content = PageContent.FromPermille(contentPermille);
            }
            catch (ArgumentOutOfRangeException e)
            {
                throw new InvalidDataException($"machine state: page content {contentPermille}: {e.Message}");
            }
            var config = new MachineConfig
            {
                Workload = workload, MemorySize = memory, Seed = seed, FillBytes = fill < 0 ? null : fill,
                ZeroPermille = zero, HeartbeatMs = hbMs, Params = parameters, HugePages = huge, LowMemoryTop = lowTop, PageContent = content,
            };
            try
            {
                _ = config.RamSlots;
            }
            catch (ArgumentOutOfRangeException e)
            {
                throw new InvalidDataException($"machine state: memory {memory} bytes with low-memory top {lowTop}: {e.Message}");
            }

            uint id = r.ReadUInt32();
            KvmRegs regs = Struct<KvmRegs>(r, "regs");
            KvmSregs sregs = Struct<KvmSregs>(r, "sregs");
            byte[] fpu = Blob(r, "fpu"), xsave = Blob(r, "xsave"), xcrs = Blob(r, "xcrs");
            int nMsrs = r.ReadInt32();
            if (nMsrs < 0 || nMsrs > MaxMsrs) throw new InvalidDataException($"machine state: {nMsrs} MSRs (limit {MaxMsrs})");
            var msrs = new (uint, ulong)[nMsrs];
            for (int i = 0; i < nMsrs; i++) msrs[i] = (r.ReadUInt32(), r.ReadUInt64());
            byte[] lapic = Blob(r, "lapic"), events = Blob(r, "vcpu events");
            uint mp = r.ReadUInt32();
            byte[] debug = Blob(r, "debug registers");
            var vcpu = new VcpuState(id, regs, sregs, fpu, xsave, xcrs, msrs, lapic, events, mp, debug);

            int nChips = r.ReadInt32();
            if (nChips is < 0 or > 3) throw new InvalidDataException($"machine state: {nChips} irqchips (at most 3)");
            var chips = new byte[nChips][];
            for (int i = 0; i < nChips; i++) chips[i] = Blob(r, "irqchip");
            byte[]? pit = r.ReadBoolean() ? Blob(r, "pit") : null;
            var vm = new VmState(chips, pit, Blob(r, "clock"));

            long clockUs = r.ReadInt64(), pace = r.ReadInt64(), latched = r.ReadInt64();
            long progress = r.ReadInt64(), beats = r.ReadInt64();
            bool hasHb = r.ReadBoolean();
            var hb = new Heartbeat(r.ReadUInt64(), r.ReadUInt64(), r.ReadUInt64(), r.ReadUInt64());
            var telemetry = new TelemetryState(progress, beats, hasHb ? hb : null, r.ReadInt64(), r.ReadInt64(), r.ReadBoolean(), r.ReadInt64());
            if (ms.Position != ms.Length) throw new InvalidDataException($"machine state: {ms.Length - ms.Position} trailing bytes");
            return new MachineSnapshot(config, vcpu, vm, new DeviceState(clockUs, pace, latched, telemetry));
        }
        catch (EndOfStreamException)
        {
            throw new InvalidDataException($"machine state: truncated at byte {ms.Position} of {ms.Length}");
        }
    }

    private static void Blob(BinaryWriter w, ReadOnlySpan<byte> blob)
    {
        w.Write(blob.Length);
        w.Write(blob);
    }

    private static byte[] Blob(BinaryReader r, string what)
    {
        int n = r.ReadInt32();
        if (n < 0 || n > MaxBlob) throw new InvalidDataException($"machine state: {what} is {n} bytes (limit {MaxBlob})");
        byte[] b = r.ReadBytes(n);
        if (b.Length != n) throw new EndOfStreamException();
        return b;
    }

    private static T Struct<T>(BinaryReader r, string what) where T : unmanaged
    {
        byte[] b = Blob(r, what);
        if (b.Length != Marshal.SizeOf<T>()) throw new InvalidDataException($"machine state: {what} is {b.Length} bytes, expected {Marshal.SizeOf<T>()}");
        return MemoryMarshal.Read<T>(b);
    }
}
