using System.Runtime.InteropServices;
using KvmPresync.Interop;
using KvmPresync.Libvirt.Interop;

namespace KvmPresync.Tests.Libvirt;

/// <summary>
/// The libvirt structs C# reads or passes (virTypedParameter with its union, virDomainInfo, virError) have the sizes
/// and offsets the libvirt-dev headers give them (native/shim/layout.c compiles the table).
/// </summary>
public sealed class LibvirtLayoutTests
{
    [Theory]
    [InlineData("_virTypedParameter", typeof(LibvirtNative.VirTypedParameter))]
    [InlineData("_virDomainInfo", typeof(LibvirtNative.VirDomainInfo))]
    [InlineData("_virError", typeof(LibvirtNative.VirError))]
    public void StructSizeMatchesHeader(string cType, Type managed)
    {
        long c = Native.LayoutSizeof(cType);
        Assert.True(c > 0, $"shim does not know sizeof(struct {cType})");
        Assert.Equal(c, Marshal.SizeOf(managed));
    }

    [Theory]
    [InlineData("field", nameof(LibvirtNative.VirTypedParameter.Field))]
    [InlineData("type", nameof(LibvirtNative.VirTypedParameter.Type))]
    [InlineData("value", nameof(LibvirtNative.VirTypedParameter.Value))]
    public void TypedParameterOffsetsMatchHeader(string cField, string field) => AssertOffset<LibvirtNative.VirTypedParameter>("_virTypedParameter", cField, field);

    [Theory]
    [InlineData("i", nameof(LibvirtNative.VirTypedParameterValue.I))]
    [InlineData("ui", nameof(LibvirtNative.VirTypedParameterValue.Ui))]
    [InlineData("l", nameof(LibvirtNative.VirTypedParameterValue.L))]
    [InlineData("ul", nameof(LibvirtNative.VirTypedParameterValue.Ul))]
    [InlineData("d", nameof(LibvirtNative.VirTypedParameterValue.D))]
    [InlineData("b", nameof(LibvirtNative.VirTypedParameterValue.B))]
    [InlineData("s", nameof(LibvirtNative.VirTypedParameterValue.S))]
    public void TypedParameterUnionMembersMatchHeader(string cMember, string field)
    {
        long c = Native.LayoutOffsetof("_virTypedParameter", $"value.{cMember}");
        Assert.True(c >= 0, $"shim does not know _virTypedParameter.value.{cMember}");
        long managed = (long)Marshal.OffsetOf<LibvirtNative.VirTypedParameter>(nameof(LibvirtNative.VirTypedParameter.Value))
                       + (long)Marshal.OffsetOf<LibvirtNative.VirTypedParameterValue>(field);
        Assert.Equal(c, managed);
    }

    [Fact]
    public void TypedParameterUnionSizeAndFieldLengthMatchHeader()
    {
        Assert.Equal(Native.LayoutOffsetof("_virTypedParameter", "sizeof(value)"), Marshal.SizeOf<LibvirtNative.VirTypedParameterValue>());
        // field is char[VIR_TYPED_PARAM_FIELD_LENGTH] and type follows it directly
        Assert.Equal(LibvirtNative.TypedParamFieldLength, Native.LayoutOffsetof("_virTypedParameter", "type"));
    }

    [Theory]
    [InlineData("state", nameof(LibvirtNative.VirDomainInfo.State))]
    [InlineData("maxMem", nameof(LibvirtNative.VirDomainInfo.MaxMem))]
    [InlineData("memory", nameof(LibvirtNative.VirDomainInfo.Memory))]
    [InlineData("nrVirtCpu", nameof(LibvirtNative.VirDomainInfo.NrVirtCpu))]
    [InlineData("cpuTime", nameof(LibvirtNative.VirDomainInfo.CpuTime))]
    public void DomainInfoOffsetsMatchHeader(string cField, string field) => AssertOffset<LibvirtNative.VirDomainInfo>("_virDomainInfo", cField, field);

    [Theory]
    [InlineData("code", nameof(LibvirtNative.VirError.Code))]
    [InlineData("domain", nameof(LibvirtNative.VirError.Domain))]
    [InlineData("message", nameof(LibvirtNative.VirError.Message))]
    [InlineData("level", nameof(LibvirtNative.VirError.Level))]
    [InlineData("conn", nameof(LibvirtNative.VirError.Conn))]
    [InlineData("dom", nameof(LibvirtNative.VirError.Dom))]
    [InlineData("str1", nameof(LibvirtNative.VirError.Str1))]
    [InlineData("str2", nameof(LibvirtNative.VirError.Str2))]
    [InlineData("str3", nameof(LibvirtNative.VirError.Str3))]
    [InlineData("int1", nameof(LibvirtNative.VirError.Int1))]
    [InlineData("int2", nameof(LibvirtNative.VirError.Int2))]
    [InlineData("net", nameof(LibvirtNative.VirError.Net))]
    public void ErrorOffsetsMatchHeader(string cField, string field) => AssertOffset<LibvirtNative.VirError>("_virError", cField, field);

    private static void AssertOffset<T>(string cType, string cField, string field) where T : struct
    {
        long c = Native.LayoutOffsetof(cType, cField);
        Assert.True(c >= 0, $"shim does not know {cType}.{cField}");
        Assert.Equal(c, (long)Marshal.OffsetOf<T>(field));
    }
}
