using System.Runtime.InteropServices;

namespace KvmPresync.Kvm;

/// <summary>
/// The one error type of the KVM layer: which operation failed, the errno, the system's text for it and,
/// where we know one, what to do about it.
/// </summary>
public sealed class KvmException : Exception
{
    public KvmException(string operation, int errno, string? hint = null)
        : base(Format(operation, errno, hint))
    {
        Operation = operation;
        Errno = errno;
    }

    public KvmException(string operation, string message)
        : base($"{operation}: {message}")
    {
        Operation = operation;
    }

    /// <summary>The ioctl or syscall, e.g. <c>KVM_GET_DIRTY_LOG</c>.</summary>
    public string Operation { get; }

    /// <summary>The errno (positive), or 0 when the failure is not a system call's.</summary>
    public int Errno { get; }

    /// <summary>Returns <paramref name="ret"/> when it is ≥ 0; throws for a -errno.</summary>
    internal static int Check(int ret, string operation, string? hint = null)
    {
        if (ret < 0) throw new KvmException(operation, -ret, hint);
        return ret;
    }

    private static string Format(string operation, int errno, string? hint)
    {
        string text = $"{operation} failed: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})";
        return hint is null ? text : $"{text}. {hint}";
    }
}
