using System.IO.Compression;
using System.Xml.Linq;

namespace KvmPresync.Tests.Packaging;

/// <summary>
/// What make pack wrote to build/packages (docs/ARCHITECTURE.md, "Packages"): the native files under
/// runtimes/linux-x64/native, each in exactly one package; a README and XML docs in each; the one version.
/// </summary>
public sealed class PackageContentTests
{
    private const string Native = "runtimes/linux-x64/native/";

    /// <summary>The packages and the native files each must carry.</summary>
    public static TheoryData<string, string[]> Packages => new()
    {
        { "KvmPresync", [] },
        { "KvmPresync.Core", [Native + "libkvmpresync.so"] },
        { "KvmPresync.Engine", [] },
        { "KvmPresync.Wire", [] },
        { "KvmPresync.Migration", [] },
        { "KvmPresync.Kvm", [] },
        { "KvmPresync.Process", [Native + "libkvmpresync-track.so"] },
        { "KvmPresync.Vmm", [Native + "guests/workload.bin"] },
        { "KvmPresync.Libvirt", [Native + "kvmpresync-libvirt-hook"] },
        { "KvmPresync.Metrics", [] },
    };

    private static (XElement Metadata, List<string> Entries) Open(string id)
    {
        using ZipArchive zip = ZipFile.OpenRead(Repository.PackageOrFail(id));
        List<string> entries = [.. zip.Entries.Select(e => e.FullName)];
        using Stream nuspec = zip.GetEntry($"{id}.nuspec")!.Open();
        XElement metadata = XDocument.Load(nuspec).Root!.Elements().Single(e => e.Name.LocalName == "metadata");
        return (metadata, entries);
    }

    private static string? Field(XElement metadata, string name) => metadata.Elements().SingleOrDefault(e => e.Name.LocalName == name)?.Value;

    [Theory]
    [MemberData(nameof(Packages))]
    public void A_package_has_the_one_version_its_readme_xml_docs_and_its_native_files(string id, string[] nativeFiles)
    {
        List<string> entries = CheckMetadata(id);
        Assert.Equal(nativeFiles.Order(StringComparer.Ordinal), entries.Where(e => e.StartsWith("runtimes/", StringComparison.Ordinal)).Order(StringComparer.Ordinal));
    }

    [Fact]
    public void Every_package_make_pack_wrote_has_the_one_version_a_readme_and_xml_docs()
    {
        // a project made packable later (one property: IsPackable) is held to the same rules without being listed here
        string[] packages = Directory.GetFiles(Repository.PackageDirectory, "*.nupkg");
        Assert.True(packages.Length >= Packages.Count, $"{packages.Length} packages in {Repository.PackageDirectory}: run make pack");
        string suffix = $".{Repository.Version}.nupkg";
        foreach (string nupkg in packages)
        {
            string file = Path.GetFileName(nupkg);
            Assert.True(file.EndsWith(suffix, StringComparison.Ordinal), $"{file} does not carry the version {Repository.Version} (make pack empties build/packages first)");
            CheckMetadata(file[..^suffix.Length]);
        }
    }

    /// <summary>Id, version, README, XML docs beside every assembly, KvmPresync dependencies on the same version; returns the entries.</summary>
    private static List<string> CheckMetadata(string id)
    {
        (XElement metadata, List<string> entries) = Open(id);
        Assert.Equal(id, Field(metadata, "id"));
        Assert.Equal(Repository.Version, Field(metadata, "version"));
        Assert.Equal("README.md", Field(metadata, "readme"));
        Assert.Contains("README.md", entries);
        foreach (string dll in entries.Where(e => e.StartsWith("lib/net10.0/", StringComparison.Ordinal) && e.EndsWith(".dll", StringComparison.Ordinal)))
            Assert.Contains(Path.ChangeExtension(dll, ".xml"), entries);
        foreach (XElement dependency in metadata.Descendants().Where(e => e.Name.LocalName == "dependency" && ((string?)e.Attribute("id"))!.StartsWith("KvmPresync", StringComparison.Ordinal)))
            Assert.Equal(Repository.Version, (string?)dependency.Attribute("version"));
        return entries;
    }

    [Fact]
    public void The_engine_package_brings_every_engine_layer_and_the_vmm_and_libvirt_packages_build_on_them()
    {
        static string[] Dependencies(XElement metadata) =>
            [.. metadata.Descendants().Where(e => e.Name.LocalName == "dependency").Select(e => (string)e.Attribute("id")!).Order(StringComparer.Ordinal)];
        Assert.Equal(["KvmPresync.Core", "KvmPresync.Engine", "KvmPresync.Kvm", "KvmPresync.Migration", "KvmPresync.Process", "KvmPresync.Wire"],
            Dependencies(Open("KvmPresync").Metadata));
        Assert.DoesNotContain(Open("KvmPresync").Entries, e => e.StartsWith("lib/", StringComparison.Ordinal));
        Assert.Equal(["KvmPresync.Core", "KvmPresync.Kvm"], Dependencies(Open("KvmPresync.Vmm").Metadata));
        Assert.Equal(["KvmPresync.Core", "KvmPresync.Process"], Dependencies(Open("KvmPresync.Libvirt").Metadata));
    }

    [Fact]
    public void No_file_is_in_two_packages()
    {
        // the same runtime file from two packages fails a consumer's publish (duplicate outputs)
        var owners = new Dictionary<string, string>();
        foreach (string nupkg in Directory.GetFiles(Repository.PackageDirectory, $"*.{Repository.Version}.nupkg"))
        {
            using ZipArchive zip = ZipFile.OpenRead(nupkg);
            foreach (ZipArchiveEntry e in zip.Entries.Where(e => e.FullName.StartsWith("runtimes/", StringComparison.Ordinal) || e.FullName.StartsWith("lib/", StringComparison.Ordinal)))
                Assert.True(owners.TryAdd(e.FullName, Path.GetFileName(nupkg)), $"{e.FullName} is in {owners.GetValueOrDefault(e.FullName)} and {Path.GetFileName(nupkg)}");
        }
        Assert.Contains(Native + "libkvmpresync.so", owners.Keys);
    }
}
