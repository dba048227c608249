using KvmPresync.Memory;
namespace KvmPresync.Wire;

/// <summary>
/// What a <see cref="ZeroCopySocketWriter"/> has done so far: a snapshot, taken with <see cref="ZeroCopySocketWriter.Stats"/>.
/// </summary>
/// <param name="Issued">sendmsg calls with MSG_ZEROCOPY that sent bytes (each takes one kernel sequence number).</param>
/// <param name="Completed">Of those, how many the kernel reported finished (it no longer reads their pages).</param>
/// <param name="Copied">Completed sends the kernel reported as copied after all (SO_EE_CODE_ZEROCOPY_COPIED:
/// loopback always, or a device without scatter-gather). A lower bound when copied and zero-copied sends
/// interleave: the kernel merges adjacent completion ranges under the code of the first.</param>
/// <param name="PayloadBytes">Bytes sent straight from native memory (<see cref="UnmanagedMemoryManager"/>, i.e.
/// guest pages) — never copied in user space, whether or not MSG_ZEROCOPY was used.</param>
/// <param name="SendCalls">Send system calls issued (sendmsg, plus the sends that waited for buffer room).</param>
/// <param name="ZeroCopyBytes">Bytes sent with MSG_ZEROCOPY.</param>
/// <param name="BytesSent">All bytes sent.</param>
/// <param name="Waits">Times the socket buffer was full and the writer waited for room.</param>
/// <param name="Fallbacks">MSG_ZEROCOPY sends refused with ENOBUFS (notification memory or locked-page limit)
/// and sent with a copy instead.</param>
public readonly record struct ZeroCopyStats(
    long Issued,
    long Completed,
    long Copied,
    long PayloadBytes,
    long SendCalls,
    long ZeroCopyBytes,
    long BytesSent,
    long Waits,
    long Fallbacks)
{
    /// <summary>Zero-copy sends whose pages the kernel may still read.</summary>
    public long Outstanding => Issued - Completed;
}
