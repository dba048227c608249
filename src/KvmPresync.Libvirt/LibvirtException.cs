using System.Runtime.InteropServices;
using KvmPresync.Libvirt.Interop;

namespace KvmPresync.Libvirt;

/// <summary>
/// The one error type of the libvirt layer: which libvirt call failed, libvirt's error code and error domain (the part
/// of libvirt that raised it), its message and, where we know one, what to do about it.
/// </summary>
public sealed class LibvirtException : Exception
{
    internal LibvirtException(string call, int code, int errorDomain, string? libvirtMessage, string? hint)
        : base(Format(call, code, errorDomain, libvirtMessage, hint))
    {
        Call = call;
        Code = code;
        ErrorDomain = errorDomain;
        LibvirtMessage = libvirtMessage;
        Hint = hint;
    }

    /// <summary>The libvirt function, e.g. <c>virDomainLookupByName</c>.</summary>
    public string Call { get; }

    /// <summary>libvirt's <c>virErrorNumber</c> (0 when libvirt left no error).</summary>
    public int Code { get; }

    /// <summary>libvirt's <c>virErrorDomain</c>: which part raised the error (e.g. 7 RPC, 10 QEMU).</summary>
    public int ErrorDomain { get; }

    /// <summary>libvirt's own message, as it gave it.</summary>
    public string? LibvirtMessage { get; }

    /// <summary>What to do, where we know.</summary>
    public string? Hint { get; }

    /// <summary>The name of <see cref="Code"/> as in virterror.h, or <c>code N</c>.</summary>
    public string CodeName => ErrorCodes.Name(Code);

    /// <summary>
    /// Reads the calling thread's libvirt error (the failing call must have run on this thread, which a direct
    /// LibraryImport call does), resets it and turns it into an exception naming <paramref name="call"/>.
    /// </summary>
    internal static unsafe LibvirtException FromLastError(string call, string? context = null)
    {
        nint ptr = LibvirtNative.GetLastError();
        if (ptr == 0)
            return new LibvirtException(call, 0, 0, context is null ? "failed without an error from libvirt" : $"{context}: failed without an error from libvirt", null);
        var err = *(LibvirtNative.VirError*)ptr;
        string? message = err.Message == 0 ? null : Marshal.PtrToStringUTF8(err.Message);
        LibvirtNative.ResetLastError();
        if (context is not null) message = $"{context}: {message}";
        return new LibvirtException(call, err.Code, err.Domain, message, HintFor(call, err.Code, message));
    }

    /// <summary>What to do about the failures we have met (docs/LIBVIRT.md).</summary>
    internal static string? HintFor(string call, int code, string? message)
    {
        string m = message ?? "";
        if (m.Contains("Permission denied", StringComparison.Ordinal))
            return "permission denied: qemu:///system needs root or membership in the libvirt group (the socket is /run/libvirt/libvirt-sock unless the URI names another)";
        if (call == "virConnectOpen" && (m.Contains("No such file or directory", StringComparison.Ordinal) || m.Contains("Connection refused", StringComparison.Ordinal)))
            return "no libvirtd is listening on that socket: start it (no systemd here: virtlogd -d; libvirtd -d), or check the URI's socket= path";
        if (code == ErrorCodes.NoDomain)
            return "no domain by that name on this connection: define it first, or list them with virsh list --all";
        if (m.Contains("same host", StringComparison.Ordinal))
            return "libvirt compares only host UUIDs: give the destination daemon its own host_uuid in libvirtd.conf";
        if (code == ErrorCodes.OperationInvalid && call is "virDomainSuspend" or "virDomainResume" or "virDomainGetJobStats" or "virDomainQemuMonitorCommand")
            return "the domain is not running: start it first (LibvirtDomain.Start)";
        return null;
    }

    private static string Format(string call, int code, int errorDomain, string? message, string? hint)
    {
        string text = $"{call} failed: {message ?? "(no message)"} (libvirt {ErrorCodes.Name(code)}, error domain {errorDomain})";
        return hint is null ? text : $"{text}. {hint}";
    }
}

/// <summary>The <c>virErrorNumber</c> values this project reacts to or names (virterror.h).</summary>
public static class ErrorCodes
{
    public const int Ok = 0;
    public const int InternalError = 1;
    public const int NoSupport = 3;
    public const int NoConnect = 5;
    public const int InvalidArg = 8;
    public const int OperationFailed = 9;
    public const int XmlError = 27;
    public const int XmlDetail = 35;
    public const int DomainExists = 28;
    public const int OperationDenied = 29;
    public const int SystemError = 38;
    public const int Rpc = 39;
    public const int NoDomain = 42;
    public const int AuthFailed = 45;
    public const int OperationInvalid = 55;
    public const int ConfigUnsupported = 67;
    public const int OperationTimeout = 68;
    public const int ArgumentUnsupported = 74;
    public const int MigrateUnsafe = 81;
    public const int AccessDenied = 88;

    /// <summary>The virterror.h name, e.g. <c>VIR_ERR_NO_DOMAIN</c>, or <c>code N</c> for the others.</summary>
    public static string Name(int code) => code switch
    {
        Ok => "VIR_ERR_OK",
        InternalError => "VIR_ERR_INTERNAL_ERROR",
        NoSupport => "VIR_ERR_NO_SUPPORT",
        NoConnect => "VIR_ERR_NO_CONNECT",
        InvalidArg => "VIR_ERR_INVALID_ARG",
        OperationFailed => "VIR_ERR_OPERATION_FAILED",
        XmlError => "VIR_ERR_XML_ERROR",
        XmlDetail => "VIR_ERR_XML_DETAIL",
        DomainExists => "VIR_ERR_DOM_EXIST",
        OperationDenied => "VIR_ERR_OPERATION_DENIED",
        SystemError => "VIR_ERR_SYSTEM_ERROR",
        Rpc => "VIR_ERR_RPC",
        NoDomain => "VIR_ERR_NO_DOMAIN",
        AuthFailed => "VIR_ERR_AUTH_FAILED",
        OperationInvalid => "VIR_ERR_OPERATION_INVALID",
        ConfigUnsupported => "VIR_ERR_CONFIG_UNSUPPORTED",
        OperationTimeout => "VIR_ERR_OPERATION_TIMEOUT",
        ArgumentUnsupported => "VIR_ERR_ARGUMENT_UNSUPPORTED",
        MigrateUnsafe => "VIR_ERR_MIGRATE_UNSAFE",
        AccessDenied => "VIR_ERR_ACCESS_DENIED",
        _ => $"code {code}",
    };
}
