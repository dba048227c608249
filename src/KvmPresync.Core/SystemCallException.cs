using System.Runtime.InteropServices;

namespace KvmPresync.Core;

/// <summary>
/// A failed system call below the KVM layer (memfd, mmap, sockets): which call failed, the errno, the system's
/// text for it and, where we know one, what to do about it.
/// </summary>
public sealed class SystemCallException : Exception
{
    public SystemCallException(string operation, int errno, string? hint = null)
        : base(Format(operation, errno, hint))
    {
        Operation = operation;
        Errno = errno;
    }

    /// <summary>The system call, e.g. <c>memfd_create</c>.</summary>
    public string Operation { get; }

    /// <summary>The errno (positive).</summary>
    public int Errno { get; }

    /// <summary>Returns <paramref name="ret"/> when it is ≥ 0; throws for a -errno.</summary>
    internal static int Check(int ret, string operation, string? hint = null)
    {
        if (ret < 0) throw new SystemCallException(operation, -ret, hint);
        return ret;
    }

    private static string Format(string operation, int errno, string? hint)
    {
        string text = $"{operation} failed: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})";
        return hint is null ? text : $"{text}. {hint}";
    }
}
