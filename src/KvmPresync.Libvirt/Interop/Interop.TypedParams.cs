using System.Runtime.InteropServices;

namespace KvmPresync.Libvirt.Interop;

// libvirt-common.h / libvirt-host.h: typed parameter arrays. virTypedParamsAdd* grow (realloc) an array that
// virTypedParamsFree releases, strings included; TypedParamsHandle owns one such array.
internal static partial class LibvirtNative
{
    internal const int TypedParamFieldLength = 80; // VIR_TYPED_PARAM_FIELD_LENGTH

    [LibraryImport(Libraries.Libvirt, EntryPoint = "virTypedParamsAddInt", StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int TypedParamsAddInt(ref nint parameters, ref int nparams, ref int maxparams, string name, int value);

    [LibraryImport(Libraries.Libvirt, EntryPoint = "virTypedParamsAddUInt", StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int TypedParamsAddUInt(ref nint parameters, ref int nparams, ref int maxparams, string name, uint value);

    [LibraryImport(Libraries.Libvirt, EntryPoint = "virTypedParamsAddLLong", StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int TypedParamsAddLLong(ref nint parameters, ref int nparams, ref int maxparams, string name, long value);

    [LibraryImport(Libraries.Libvirt, EntryPoint = "virTypedParamsAddULLong", StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int TypedParamsAddULLong(ref nint parameters, ref int nparams, ref int maxparams, string name, ulong value);

    [LibraryImport(Libraries.Libvirt, EntryPoint = "virTypedParamsAddDouble", StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int TypedParamsAddDouble(ref nint parameters, ref int nparams, ref int maxparams, string name, double value);

    [LibraryImport(Libraries.Libvirt, EntryPoint = "virTypedParamsAddBoolean", StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int TypedParamsAddBoolean(ref nint parameters, ref int nparams, ref int maxparams, string name, int value);

    [LibraryImport(Libraries.Libvirt, EntryPoint = "virTypedParamsAddString", StringMarshalling = StringMarshalling.Utf8)]
    internal static partial int TypedParamsAddString(ref nint parameters, ref int nparams, ref int maxparams, string name, string value);

    /// <summary>Frees the strings inside and the array itself.</summary>
    [LibraryImport(Libraries.Libvirt, EntryPoint = "virTypedParamsFree")]
    internal static partial void TypedParamsFree(nint parameters, int nparams);

    /// <summary>virTypedParameterType.</summary>
    internal enum TypedParamType
    {
        Int = 1,
        UInt = 2,
        LLong = 3,
        ULLong = 4,
        Double = 5,
        Boolean = 6,
        String = 7,
    }

    /// <summary>virTypedParameter (libvirt-common.h); layout proven against the header by LayoutTests.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal unsafe struct VirTypedParameter
    {
        public fixed byte Field[TypedParamFieldLength]; // char field[VIR_TYPED_PARAM_FIELD_LENGTH], NUL-terminated
        public int Type;                                // a TypedParamType
        public VirTypedParameterValue Value;
    }

    /// <summary>The anonymous union <c>value</c> of virTypedParameter.</summary>
    [StructLayout(LayoutKind.Explicit)]
    internal struct VirTypedParameterValue
    {
        [FieldOffset(0)] public int I;
        [FieldOffset(0)] public uint Ui;
        [FieldOffset(0)] public long L;
        [FieldOffset(0)] public ulong Ul;
        [FieldOffset(0)] public double D;
        [FieldOffset(0)] public byte B;   // char
        [FieldOffset(0)] public nint S;   // char *, never NULL for STRING
    }
}
