using KvmPresync.Engine;
using KvmPresync.Trace;

namespace KvmPresync.Cli.Commands;

/// <summary><c>simulate --policy</c>: a comma list of policy names, or <c>all</c>.</summary>
internal static class PolicyList
{
    public static IReadOnlyList<SyncPolicy> Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (text.Trim().Equals("all", StringComparison.OrdinalIgnoreCase)) return PolicyComparison.All;
        var policies = new List<SyncPolicy>();
        foreach (string name in text.Split(',', StringSplitOptions.TrimEntries))
        {
            if (name.Length == 0) throw new ArgumentException($"--policy \"{text}\" has an empty name; give a comma list such as none,predict,oracle, or all");
            SyncPolicy p = SyncPolicyNames.Parse(name);
            if (!policies.Contains(p)) policies.Add(p);
        }
        return policies;
    }
}
