using System.Globalization;
using System.Text;

namespace KvmPresync.Migration;

/// <summary>
/// Structured event lines (logfmt: <c>time=… level=… event=… session=… key=value …</c>), one line per event, to a sink
/// the host chooses (the CLI: standard error). Values with spaces or quotes are quoted. Key material is never a field.
/// </summary>
public sealed class ServiceLog(Action<string> sink)
{
    private readonly Action<string> _sink = sink ?? throw new ArgumentNullException(nameof(sink));

    public void Info(string @event, string? session = null, params (string Key, object? Value)[] fields) => Write("info", @event, session, fields);

    public void Warn(string @event, string? session = null, params (string Key, object? Value)[] fields) => Write("warn", @event, session, fields);

    private void Write(string level, string @event, string? session, (string Key, object? Value)[] fields)
    {
        var line = new StringBuilder(128);
        line.Append("time=").Append(DateTime.UtcNow.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture));
        line.Append(" level=").Append(level).Append(" event=").Append(@event);
        if (session is not null) line.Append(" session=").Append(session);
        foreach ((string key, object? value) in fields)
        {
            if (value is null) continue;
            line.Append(' ').Append(key).Append('=');
            string text = value switch
            {
                double d => d.ToString("0.###", CultureInfo.InvariantCulture),
                IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
                _ => value.ToString() ?? "",
            };
            if (text.Length == 0 || text.AsSpan().IndexOfAny(" \"=\t\n") >= 0)
                line.Append('"').Append(text.Replace("\\", "\\\\").Replace("\"", "\\\"").Replace("\n", "\\n")).Append('"');
            else
                line.Append(text);
        }
        lock (_sink) _sink(line.ToString());
    }
}
