using System.Reflection;
using KvmPresync.Tests.Migration;

namespace KvmPresync.Tests.Packaging;

/// <summary>One version, defined in version.props: the assemblies carry it and <c>kvmpresync --version</c> prints it.</summary>
public sealed class VersionTests
{
    private static string InformationalVersion(Assembly assembly) =>
        assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()!.InformationalVersion;

    [Fact]
    public void Every_KvmPresync_assembly_carries_the_version_version_props_defines()
    {
        string version = Repository.Version;
        Assembly[] assemblies =
        [
            typeof(global::KvmPresync.Core.NativeAssets).Assembly, typeof(global::KvmPresync.Engine.SyncEngine).Assembly,
            typeof(global::KvmPresync.Wire.MigrationSocket).Assembly, typeof(global::KvmPresync.Migration.PresyncSender).Assembly,
            typeof(global::KvmPresync.Kvm.KvmSystem).Assembly, typeof(global::KvmPresync.ProcessMemory.ProcessDirtyPageSource).Assembly,
            typeof(global::KvmPresync.Vmm.Machine).Assembly, typeof(global::KvmPresync.Libvirt.LibvirtException).Assembly, typeof(Cli.Program).Assembly,
        ];
        foreach (Assembly a in assemblies)
        {
            Assert.Equal(Version.Parse(version), new Version(a.GetName().Version!.ToString(3)));
            // VERSION, or VERSION+COMMIT when built from a git checkout
            Assert.Matches($@"^{System.Text.RegularExpressions.Regex.Escape(version)}(\+[0-9a-f]{{7,40}})?$", InformationalVersion(a));
        }
    }

    [Fact]
    public async Task Kvmpresync_version_prints_the_assemblys_informational_version()
    {
        using var cli = CliProcess.Start("--version");
        int code = await cli.WaitForExitAsync(TimeSpan.FromSeconds(60), TestContext.Current.CancellationToken);
        Assert.Equal(0, code);
        string printed = cli.Output.Trim();
        Assert.Equal(InformationalVersion(typeof(Cli.Program).Assembly), printed);
        Assert.StartsWith(Repository.Version, printed, StringComparison.Ordinal);
    }
}
