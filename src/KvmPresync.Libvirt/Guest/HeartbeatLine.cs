using System.Globalization;

namespace KvmPresync.Libvirt.Guest;

/// <summary>
/// One heartbeat of the Linux guest's workload (native/linux-guest/workload.c) on its serial console:
/// <c>KPHB seq=&lt;n&gt; prev=&lt;16 hex&gt; sum=&lt;16 hex&gt; progress=&lt;units&gt; selfcheck_errors=&lt;n&gt; t_ms=&lt;ms&gt;</c>
/// (docs/WORKLOADS.md, "Linux guest"). Unknown extra fields are ignored, so the format can grow.
/// </summary>
public readonly record struct HeartbeatLine(ulong Seq, ulong Prev, ulong Sum, ulong Progress, ulong SelfCheckErrors, ulong? TimeMs)
{
    public const string Tag = "KPHB ";

    /// <summary>Parses a console line; text before "KPHB " (a CR, a partial kernel message) is skipped.</summary>
    public static bool TryParse(string line, out HeartbeatLine heartbeat)
    {
        heartbeat = default;
        int at = line.IndexOf(Tag, StringComparison.Ordinal);
        if (at < 0) return false;
        ulong? seq = null, prev = null, sum = null, progress = null, errors = null, time = null;
        foreach (string field in line[(at + Tag.Length)..].Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            int eq = field.IndexOf('=');
            if (eq <= 0) return false;
            string name = field[..eq], value = field[(eq + 1)..];
            bool hex = name is "prev" or "sum";
            if (!ulong.TryParse(value, hex ? NumberStyles.AllowHexSpecifier : NumberStyles.None, CultureInfo.InvariantCulture, out ulong v)
                || (hex && value.Length != 16))
                return false;
            switch (name)
            {
                case "seq": seq = v; break;
                case "prev": prev = v; break;
                case "sum": sum = v; break;
                case "progress": progress = v; break;
                case "selfcheck_errors": errors = v; break;
                case "t_ms": time = v; break;
            }
        }
        if (seq is null || prev is null || sum is null || progress is null || errors is null) return false;
        heartbeat = new HeartbeatLine(seq.Value, prev.Value, sum.Value, progress.Value, errors.Value, time);
        return true;
    }

    /// <summary>Whether this heartbeat continues <paramref name="previous"/>: seq = previous seq + 1 and prev = previous sum.</summary>
    public bool Continues(HeartbeatLine previous) => Seq == previous.Seq + 1 && Prev == previous.Sum;

    public override string ToString() =>
        $"KPHB seq={Seq} prev={Prev:x16} sum={Sum:x16} progress={Progress} selfcheck_errors={SelfCheckErrors}" + (TimeMs is { } t ? $" t_ms={t}" : "");
}

/// <summary>A break in the heartbeat chain: <see cref="After"/> was followed by <see cref="Next"/>, which does not continue it.</summary>
public sealed record HeartbeatGap(HeartbeatLine After, HeartbeatLine Next)
{
    public string Reason =>
        Next.Seq != After.Seq + 1
            ? $"seq {Next.Seq} after {After.Seq} ({(Next.Seq > After.Seq ? $"{Next.Seq - After.Seq - 1} missing" : "went back")})"
            : $"seq {Next.Seq}: prev {Next.Prev:x16} is not the previous sum {After.Sum:x16}";

    public override string ToString() => Reason;
}
