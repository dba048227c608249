using System.Runtime.InteropServices;

namespace KvmPresync.Wire.Interop;

/// <summary>struct kp_iovec: one buffer of a gather send (same layout as struct iovec on LP64).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct KpIovec
{
    public ulong Base;
    public ulong Len;
}

/// <summary>struct kp_zc_stats: zero-copy completions accumulated by <see cref="SocketNative.SockReapZerocopy"/>.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct KpZcStats
{
    public ulong CompletedLoHiRanges;
    public ulong CompletedSends;
    public ulong CopiedSends;
    public uint LastHi;
}

// Sockets (native/shim/net.c): gather sendmsg, MSG_ZEROCOPY and its completions. Every function returns >= 0 or -errno.
internal static partial class SocketNative
{
    internal const int IovMax = 1024;        // KP_IOV_MAX
    internal const uint SendZeroCopy = 1;    // KP_SEND_ZEROCOPY
    internal const uint SendMore = 2;        // KP_SEND_MORE
    internal const uint SendDontWait = 4;    // KP_SEND_DONTWAIT
    internal const uint PollIn = 0x001;      // KP_POLL_IN
    internal const uint PollOut = 0x004;     // KP_POLL_OUT
    internal const uint PollErr = 0x008;     // KP_POLL_ERR
    internal const uint PollHup = 0x010;     // KP_POLL_HUP

    [LibraryImport(KvmPresync.Interop.Native.Libraries.Shim, EntryPoint = "kp_sock_enable_zerocopy")]
    internal static partial int SockEnableZerocopy(int fd);

    [LibraryImport(KvmPresync.Interop.Native.Libraries.Shim, EntryPoint = "kp_sock_sendmsg")]
    internal static unsafe partial long SockSendmsg(int fd, KpIovec* iov, uint iovcnt, uint flags);

    [LibraryImport(KvmPresync.Interop.Native.Libraries.Shim, EntryPoint = "kp_sock_reap_zerocopy")]
    internal static unsafe partial int SockReapZerocopy(int fd, KpZcStats* stats);

    [LibraryImport(KvmPresync.Interop.Native.Libraries.Shim, EntryPoint = "kp_sock_poll")]
    internal static partial int SockPoll(int fd, uint events, int timeoutMs);


}
