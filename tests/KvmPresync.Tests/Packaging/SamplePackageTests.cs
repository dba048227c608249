using KvmPresync.Kvm;

namespace KvmPresync.Tests.Packaging;

/// <summary>
/// samples/HypervisorManager built as an embedder builds it — from the packages make pack wrote (samples/nuget.config,
/// its own package folder) — and run: it boots a text guest, presyncs it to its in-process receiver, launches after
/// a few seconds and must print a verified migration. Proves the packages carry everything: the assemblies, the
/// native library (found through deps.json) and the guest image, in a portable build and in a linux-x64 publish.
/// </summary>
public sealed class SamplePackageTests
{
    private static readonly TimeSpan BuildTimeout = TimeSpan.FromMinutes(3);
    private static readonly TimeSpan RunTimeout = TimeSpan.FromSeconds(60);

    private static string Project => Path.Combine(Repository.Root, "samples", "HypervisorManager", "HypervisorManager.csproj");

    private static void RequireKvmAndPackages()
    {
        if (!KvmSystem.IsAvailable(out string reason)) Assert.Skip($"needs /dev/kvm: {reason}");
        Repository.PackageOrFail("KvmPresync");
        Repository.PackageOrFail("KvmPresync.Vmm");
        // A repacked package keeps its version: drop what an earlier restore extracted so this one is used.
        string folder = Path.Combine(Repository.Root, "build", "sample-packages");
        if (Directory.Exists(folder))
            foreach (string extracted in Directory.GetDirectories(folder, "kvmpresync*")) Directory.Delete(extracted, recursive: true);
    }

    private static async Task BuildAsync(string verb, string output, params string[] extra)
    {
        (int code, string log) = await Repository.RunAsync(Repository.Dotnet,
            [verb, Project, "-c", "Release", "-o", output, "--force", "--disable-build-servers", "-nologo", "-v:q", .. extra], BuildTimeout);
        Assert.True(code == 0, $"dotnet {verb} of the sample failed ({code}):\n{log}");
    }

    private static async Task RunSampleAsync(string directory, string launchAfter)
    {
        string exe = Path.Combine(directory, "hypervisor-manager");
        (int code, string output) = await Repository.RunAsync(exe, ["--memory", "128M", "--launch-after", launchAfter], RunTimeout, directory);
        Assert.True(code == 0, $"the sample exited {code}:\n{output}");
        Assert.Contains("if launched now: launch-to-resume ≈", output);
        Assert.Matches(@"migrated: launch-to-resume [0-9.]+ ms, downtime [0-9.]+ ms, .*verified True", output);
        Assert.Contains("destination guest running", output);
        Assert.Contains("event=session.resumed", output);
    }

    [Fact]
    public async Task The_sample_built_from_the_packages_migrates_a_guest_and_prints_a_verified_result()
    {
        RequireKvmAndPackages();
        string dir = Directory.CreateTempSubdirectory("kvmpresync-sample-").FullName;
        try
        {
            await BuildAsync("build", dir);
            // a portable build: the native files stay under runtimes/linux-x64/native, found through deps.json
            Assert.True(File.Exists(Path.Combine(dir, "runtimes", "linux-x64", "native", "libkvmpresync.so")));
            Assert.False(File.Exists(Path.Combine(dir, "libkvmpresync.so")));
            await RunSampleAsync(dir, "3");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task The_sample_published_for_linux_x64_finds_the_flattened_native_files()
    {
        RequireKvmAndPackages();
        string dir = Directory.CreateTempSubdirectory("kvmpresync-sample-").FullName;
        try
        {
            await BuildAsync("publish", dir, "-r", "linux-x64", "--self-contained", "false");
            Assert.True(File.Exists(Path.Combine(dir, "libkvmpresync.so")));
            Assert.True(File.Exists(Path.Combine(dir, "workload.bin")));
            await RunSampleAsync(dir, "1");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
