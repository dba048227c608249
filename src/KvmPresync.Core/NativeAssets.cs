namespace KvmPresync.Core;

/// <summary>
/// Finds a file the native build ships beside the assemblies: a preload library, a hook, a guest image. Where it is
/// depends on how the app was built: next to the app (this repository's build, <c>dotnet publish -r linux-x64</c>) or,
/// from a NuGet package, in <c>runtimes/linux-x64/native/</c> (a portable build or publish), which the host lists in the
/// app's deps.json and passes as <c>NATIVE_DLL_SEARCH_DIRECTORIES</c>. <c>libkvmpresync.so</c> itself needs none of
/// this: the runtime loads it from the same directories.
/// </summary>
public static class NativeAssets
{
    /// <summary>The runtime identifier the packages carry native files for.</summary>
    public const string RuntimeIdentifier = "linux-x64";

    /// <summary>
    /// The first existing <paramref name="relativePath"/> (e.g. <c>libkvmpresync-track.so</c>, <c>guests/workload.bin</c>)
    /// among <see cref="SearchDirectories"/>; null when none has it.
    /// </summary>
    public static string? Find(string relativePath)
    {
        ArgumentException.ThrowIfNullOrEmpty(relativePath);
        foreach (string directory in SearchDirectories())
        {
            string candidate = Path.Combine(directory, relativePath);
            if (File.Exists(candidate)) return candidate;
        }
        return null;
    }

    /// <summary>
    /// Where <see cref="Find"/> looks, in order: the app's directory, the host's native search directories (deps.json),
    /// then <c>runtimes/linux-x64/native/</c> under the app's directory (an app started without its deps.json).
    /// </summary>
    public static IEnumerable<string> SearchDirectories()
    {
        string app = AppContext.BaseDirectory;
        yield return app;
        if (AppContext.GetData("NATIVE_DLL_SEARCH_DIRECTORIES") is string list)
            foreach (string directory in list.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
                yield return directory;
        yield return Path.Combine(app, "runtimes", RuntimeIdentifier, "native");
    }
}
