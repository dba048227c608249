using System.Reflection;
using System.Text;
using PublicApiGenerator;

namespace KvmPresync.Tests.Api;

/// <summary>
/// The public surface of every library assembly (each <c>src/KvmPresync.*</c> project that is not an executable) is
/// approved in <c>api/&lt;Assembly&gt;.txt</c>. A change to the surface fails here with a diff; when it is intended, accept
/// it with <c>make api</c> (= build the tests, then run this class with <c>KVMPRESYNC_ACCEPT_API=1</c>) and commit the
/// changed files. A new library under src/ is picked up by itself (it must reach the tests' output, e.g. through the CLI).
/// </summary>
public sealed class PublicApiTests
{
    private const string AcceptVariable = "KVMPRESYNC_ACCEPT_API";
    private const string AcceptHint = "if the change is intended, run `make api` (or KVMPRESYNC_ACCEPT_API=1 with -class KvmPresync.Tests.Api.PublicApiTests) and commit api/";

    public static TheoryData<string> Libraries() => [.. LibraryNames()];

    [Theory]
    [MemberData(nameof(Libraries))]
    public void Public_surface_matches_the_approved_file(string library)
    {
        string dll = Path.Combine(AppContext.BaseDirectory, library + ".dll");
        Assert.True(File.Exists(dll), $"{library}.dll is not in the tests' output ({AppContext.BaseDirectory}): reference src/{library} from the tests or the CLI");
        string actual = Normalize(Assembly.LoadFrom(dll).GeneratePublicApi(new ApiGeneratorOptions { IncludeAssemblyAttributes = false }));
        string approvedPath = Path.Combine(RepoRoot(), "api", library + ".txt");
        string? approved = File.Exists(approvedPath) ? Normalize(File.ReadAllText(approvedPath)) : null;
        if (approved == actual) return;
        if (Accepting)
        {
            Directory.CreateDirectory(Path.GetDirectoryName(approvedPath)!);
            File.WriteAllText(approvedPath, actual);
            return;
        }
        Assert.Fail(approved is null
            ? $"{library}: no approved API file {approvedPath}; {AcceptHint}"
            : $"{library}: the public API differs from {Path.GetRelativePath(RepoRoot(), approvedPath)} (- approved, + now); {AcceptHint}\n{Diff(approved, actual)}");
    }

    [Fact]
    public void Every_approved_file_belongs_to_a_library()
    {
        string dir = Path.Combine(RepoRoot(), "api");
        if (!Directory.Exists(dir)) return; // nothing approved yet: the theory above says what to run
        var libraries = LibraryNames().ToHashSet();
        string[] stale = [.. Directory.EnumerateFiles(dir, "*.txt").Select(Path.GetFileNameWithoutExtension).Where(n => !libraries.Contains(n!)).Select(n => n!)];
        if (stale.Length > 0 && Accepting)
        {
            foreach (string name in stale) File.Delete(Path.Combine(dir, name + ".txt"));
            return;
        }
        Assert.True(stale.Length == 0, $"api/ holds files for assemblies that are no longer libraries under src/: {string.Join(", ", stale)}; {AcceptHint}");
    }

    private static bool Accepting => Environment.GetEnvironmentVariable(AcceptVariable) is "1" or "true";

    /// <summary>
    /// The libraries: every src/KvmPresync*/ project that builds an assembly of its own — not an executable, and not a
    /// package of dependencies only (<c>IncludeBuildOutput</c> false: src/KvmPresync, the package an embedder adds).
    /// </summary>
    private static IEnumerable<string> LibraryNames() =>
        Directory.EnumerateDirectories(Path.Combine(RepoRoot(), "src"), "KvmPresync.*")
            .Select(d => (Name: Path.GetFileName(d), Project: Path.Combine(d, Path.GetFileName(d) + ".csproj")))
            .Where(p => File.Exists(p.Project) && File.ReadAllText(p.Project) is var text
                && !text.Contains("<OutputType>Exe</OutputType>", StringComparison.OrdinalIgnoreCase)
                && !text.Contains("<IncludeBuildOutput>false</IncludeBuildOutput>", StringComparison.OrdinalIgnoreCase))
            .Select(p => p.Name)
            .Order(StringComparer.Ordinal);

    private static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "KvmPresync.sln"))) return dir.FullName;
        throw new InvalidOperationException($"no KvmPresync.sln above {AppContext.BaseDirectory}");
    }

    private static string Normalize(string text) => text.Replace("\r\n", "\n").TrimEnd('\n') + "\n";

    /// <summary>A unified-style line diff (3 lines of context) of the approved and the current surface.</summary>
    internal static string Diff(string approved, string actual)
    {
        string[] a = approved.TrimEnd('\n').Split('\n'), b = actual.TrimEnd('\n').Split('\n');
        int prefix = 0;
        while (prefix < a.Length && prefix < b.Length && a[prefix] == b[prefix]) prefix++;
        int suffix = 0;
        while (suffix < a.Length - prefix && suffix < b.Length - prefix && a[^(suffix + 1)] == b[^(suffix + 1)]) suffix++;
        int n = a.Length - prefix - suffix, m = b.Length - prefix - suffix;
        // LCS over the differing middle only (the common prefix and suffix are most of a surface).
        var lcs = new int[n + 1, m + 1];
        for (int i = n - 1; i >= 0; i--)
            for (int j = m - 1; j >= 0; j--)
                lcs[i, j] = a[prefix + i] == b[prefix + j] ? lcs[i + 1, j + 1] + 1 : Math.Max(lcs[i + 1, j], lcs[i, j + 1]);
        var ops = new List<(char Op, string Line)>();
        for (int k = Math.Max(0, prefix - 3); k < prefix; k++) ops.Add((' ', a[k]));
        int x = 0, y = 0;
        while (x < n || y < m)
        {
            if (x < n && y < m && a[prefix + x] == b[prefix + y]) { ops.Add((' ', a[prefix + x])); x++; y++; }
            else if (x < n && (y == m || lcs[x + 1, y] >= lcs[x, y + 1])) ops.Add(('-', a[prefix + x++]));
            else ops.Add(('+', b[prefix + y++]));
        }
        for (int k = a.Length - suffix; k < Math.Min(a.Length, a.Length - suffix + 3); k++) ops.Add((' ', a[k]));
        // Keep changed lines and 3 lines around them; elide long unchanged stretches.
        var text = new StringBuilder();
        int lastShown = -1;
        for (int i = 0; i < ops.Count; i++)
        {
            bool near = false;
            for (int d = -3; d <= 3 && !near; d++) near = i + d >= 0 && i + d < ops.Count && ops[i + d].Op != ' ';
            if (!near) continue;
            if (lastShown >= 0 && i > lastShown + 1) text.Append("@@\n");
            text.Append(ops[i].Op).Append(' ').Append(ops[i].Line).Append('\n');
            lastShown = i;
        }
        return text.ToString();
    }
}
