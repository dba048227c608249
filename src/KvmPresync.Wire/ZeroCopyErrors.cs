using System.Runtime.InteropServices;

namespace KvmPresync.Wire;

/// <summary>errno → <see cref="IOException"/> for the zero-copy socket: names the system call, the errno and what to do.</summary>
internal static class ZeroCopyErrors
{
    private const int EPIPE = 32;
    private const int ECONNRESET = 104;
    private const int ENOTCONN = 107;
    private const int ENOBUFS = 105;

    public static IOException Fail(string operation, int errno)
    {
        string text = $"{operation} failed: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})";
        string? hint = errno switch
        {
            EPIPE or ECONNRESET or ENOTCONN => "The receiver closed the connection or the link failed; the frame was not delivered.",
            ENOBUFS => "The kernel is out of socket memory; reap completions or send without MSG_ZEROCOPY.",
            _ => null,
        };
        return new IOException(hint is null ? text : $"{text}. {hint}");
    }
}
