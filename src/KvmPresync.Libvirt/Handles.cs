using System.Runtime.InteropServices;
using KvmPresync.Libvirt.Interop;

namespace KvmPresync.Libvirt;

/// <summary>A <c>virConnectPtr</c>, closed by <c>virConnectClose</c>. Only <see cref="LibvirtConnection.Open"/> creates one.</summary>
public sealed class ConnectionHandle : SafeHandle
{
    internal ConnectionHandle(nint conn) : base(0, ownsHandle: true) => SetHandle(conn);

    public override bool IsInvalid => handle == 0;

    // virConnectClose returns the remaining reference count (domains hold references too) or -1.
    protected override bool ReleaseHandle() => LibvirtNative.ConnectClose(handle) >= 0;
}

/// <summary>
/// A <c>virDomainPtr</c>, released by <c>virDomainFree</c> (the domain itself lives on). Only
/// <see cref="LibvirtConnection.LookupDomain(string)"/>, <see cref="LibvirtConnection.DefineDomain"/> and
/// <see cref="LibvirtDomain.Migrate"/> create one. It holds its own reference on the connection.
/// </summary>
public sealed class DomainHandle : SafeHandle
{
    internal DomainHandle(nint domain) : base(0, ownsHandle: true) => SetHandle(domain);

    public override bool IsInvalid => handle == 0;

    protected override bool ReleaseHandle() => LibvirtNative.DomainFree(handle) == 0;
}

/// <summary>
/// A <c>virTypedParameterPtr</c> array with its count, freed by <c>virTypedParamsFree</c> (strings included). Built by
/// <see cref="MigrationParameters"/> through <c>virTypedParamsAdd*</c>, or adopted from libvirt
/// (<c>virDomainGetJobStats</c>).
/// </summary>
internal sealed class TypedParamsHandle : SafeHandle
{
    private int _count;
    private int _capacity;

    internal TypedParamsHandle() : base(0, ownsHandle: true) { }

    internal TypedParamsHandle(nint parameters, int count) : base(0, ownsHandle: true)
    {
        SetHandle(parameters);
        _count = count;
        _capacity = count;
    }

    public override bool IsInvalid => handle == 0;

    /// <summary>How many parameters the array holds.</summary>
    internal int Count => _count;

    internal void Add(string name, object value)
    {
        nint p = handle;
        int rc = value switch
        {
            int v => LibvirtNative.TypedParamsAddInt(ref p, ref _count, ref _capacity, name, v),
            uint v => LibvirtNative.TypedParamsAddUInt(ref p, ref _count, ref _capacity, name, v),
            long v => LibvirtNative.TypedParamsAddLLong(ref p, ref _count, ref _capacity, name, v),
            ulong v => LibvirtNative.TypedParamsAddULLong(ref p, ref _count, ref _capacity, name, v),
            double v => LibvirtNative.TypedParamsAddDouble(ref p, ref _count, ref _capacity, name, v),
            bool v => LibvirtNative.TypedParamsAddBoolean(ref p, ref _count, ref _capacity, name, v ? 1 : 0),
            string v => LibvirtNative.TypedParamsAddString(ref p, ref _count, ref _capacity, name, v),
            _ => throw new ArgumentException($"typed parameter {name}: {value.GetType().Name} is not a libvirt type", nameof(value)),
        };
        SetHandle(p); // realloc may have moved the array; on failure libvirt leaves it valid
        if (rc < 0) throw LibvirtException.FromLastError($"virTypedParamsAdd({name})");
    }

    /// <summary>Reads every parameter into managed values (int, uint, long, ulong, double, bool, string).</summary>
    internal unsafe Dictionary<string, object> ToDictionary()
    {
        var values = new Dictionary<string, object>(_count, StringComparer.Ordinal);
        bool added = false;
        DangerousAddRef(ref added);
        try
        {
            var array = (LibvirtNative.VirTypedParameter*)handle;
            for (int i = 0; i < _count; i++)
            {
                LibvirtNative.VirTypedParameter* p = &array[i];
                string name = Marshal.PtrToStringUTF8((nint)p->Field) ?? "";
                object? value = (LibvirtNative.TypedParamType)p->Type switch
                {
                    LibvirtNative.TypedParamType.Int => p->Value.I,
                    LibvirtNative.TypedParamType.UInt => p->Value.Ui,
                    LibvirtNative.TypedParamType.LLong => p->Value.L,
                    LibvirtNative.TypedParamType.ULLong => p->Value.Ul,
                    LibvirtNative.TypedParamType.Double => p->Value.D,
                    LibvirtNative.TypedParamType.Boolean => p->Value.B != 0,
                    LibvirtNative.TypedParamType.String => Marshal.PtrToStringUTF8(p->Value.S) ?? "",
                    _ => null, // a type newer than this binding: skipped
                };
                if (value is not null) values[name] = value;
            }
        }
        finally
        {
            if (added) DangerousRelease();
        }
        return values;
    }

    protected override bool ReleaseHandle()
    {
        LibvirtNative.TypedParamsFree(handle, _count);
        return true;
    }
}
