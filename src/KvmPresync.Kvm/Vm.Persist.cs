using KvmPresync.Kvm.Interop;

namespace KvmPresync.Kvm;

/// <summary>VM-wide device state: in-kernel irqchip (PIC master, PIC slave, IOAPIC), PIT and kvmclock.</summary>
public sealed record VmState(byte[][] Irqchips, byte[]? Pit, byte[] Clock);

// Save and restore of the VM-wide state, next to the VM it belongs to.
public sealed partial class Vm
{
    private const int IrqchipCount = 3; // KVM_IRQCHIP_PIC_MASTER, _PIC_SLAVE, _IOAPIC

    public unsafe VmState SaveState()
    {
        int fd = _handle.Fd;
        var chips = new byte[Options.InKernelIrqchip ? IrqchipCount : 0][];
        for (int i = 0; i < chips.Length; i++)
        {
            chips[i] = new byte[KvmLayout.Irqchip];
            BitConverter.TryWriteBytes(chips[i].AsSpan(0, 4), (uint)i); // chip_id
            fixed (byte* p = chips[i]) KvmException.Check(KvmNative.VmGetIrqchip(fd, p), $"KVM_GET_IRQCHIP(chip {i})");
        }
        byte[]? pit = null;
        if (Options.InKernelPit)
        {
            pit = new byte[KvmLayout.Pit2];
            fixed (byte* p = pit) KvmException.Check(KvmNative.VmGetPit2(fd, p), "KVM_GET_PIT2");
        }
        var clock = new byte[KvmLayout.ClockData];
        fixed (byte* p = clock) KvmException.Check(KvmNative.VmGetClock(fd, p), "KVM_GET_CLOCK");
        return new VmState(chips, pit, clock);
    }

    public unsafe void RestoreState(VmState state)
    {
        ArgumentNullException.ThrowIfNull(state);
        int fd = _handle.Fd;
        if (state.Irqchips.Length != (Options.InKernelIrqchip ? IrqchipCount : 0))
            throw new ArgumentException($"VM state has {state.Irqchips.Length} irqchips; this VM has {(Options.InKernelIrqchip ? IrqchipCount : 0)}", nameof(state));
        if ((state.Pit is not null) != Options.InKernelPit)
            throw new ArgumentException("VM state and this VM disagree on the in-kernel PIT", nameof(state));
        if (state.Pit is not null)
        {
            CheckLength(state.Pit, KvmLayout.Pit2, "PIT");
            fixed (byte* p = state.Pit) KvmException.Check(KvmNative.VmSetPit2(fd, p), "KVM_SET_PIT2");
        }
        var clock = (byte[])state.Clock.Clone();
        CheckLength(clock, KvmLayout.ClockData, "clock");
        // KVM_SET_CLOCK accepts only KVM_CLOCK_REALTIME in flags; the saved flags describe the source host.
        BitConverter.TryWriteBytes(clock.AsSpan(KvmLayout.ClockFlagsOffset, 4), 0u);
        fixed (byte* p = clock) KvmException.Check(KvmNative.VmSetClock(fd, p), "KVM_SET_CLOCK");
        for (int i = 0; i < state.Irqchips.Length; i++)
        {
            CheckLength(state.Irqchips[i], KvmLayout.Irqchip, "irqchip");
            fixed (byte* p = state.Irqchips[i]) KvmException.Check(KvmNative.VmSetIrqchip(fd, p), $"KVM_SET_IRQCHIP(chip {i})");
        }
    }

    internal static void CheckLength(byte[] blob, int expected, string what)
    {
        if (blob.Length != expected)
            throw new ArgumentException($"{what} state is {blob.Length} bytes; this kernel's struct is {expected} bytes");
    }
}
