using System.Globalization;
using System.Text;

namespace KvmPresync.ProcessMemory.Capture;

/// <summary>
/// Follows the preload library's status file (<c>KVMPRESYNC_TRACK_STATUS</c>, appended by every tracked process):
/// how many times each pid announced itself ("kvmpresync-track pid=P …": once at start, once per fork child and once
/// per exec) and the error lines. A process that never announces itself ignored LD_PRELOAD (statically linked or setuid).
/// </summary>
public sealed class TrackerStatusFile
{
    private readonly Dictionary<int, int> _headers = [];
    private readonly List<string> _errors = [];
    private readonly StringBuilder _partial = new();
    private long _offset;

    public TrackerStatusFile(string path) => Path = path;

    public string Path { get; }

    /// <summary>Error lines seen so far (the first 100).</summary>
    public IReadOnlyList<string> Errors => _errors;

    /// <summary>How many times <paramref name="pid"/> announced itself.</summary>
    public int Announcements(int pid) => _headers.GetValueOrDefault(pid);

    /// <summary>Reads what was appended since the last call; returns the new error lines.</summary>
    public IReadOnlyList<string> Poll()
    {
        var newErrors = new List<string>();
        try
        {
            using var f = new FileStream(Path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            if (f.Length <= _offset) return newErrors;
            f.Seek(_offset, SeekOrigin.Begin);
            var buf = new byte[f.Length - _offset];
            int n = f.ReadAtLeast(buf, buf.Length, throwOnEndOfStream: false);
            _offset += n;
            _partial.Append(Encoding.UTF8.GetString(buf, 0, n));
        }
        catch (FileNotFoundException) { return newErrors; }
        string text = _partial.ToString();
        int last = text.LastIndexOf('\n');
        if (last < 0) return newErrors;
        _partial.Clear().Append(text, last + 1, text.Length - last - 1);
        foreach (string line in text[..last].Split('\n'))
        {
            if (line.StartsWith("kvmpresync-track pid=", StringComparison.Ordinal))
            {
                int end = line.IndexOf(' ', 21);
                if (int.TryParse(line.AsSpan(21, (end < 0 ? line.Length : end) - 21), NumberStyles.None, CultureInfo.InvariantCulture, out int pid))
                    _headers[pid] = _headers.GetValueOrDefault(pid) + 1;
            }
            else if (line.StartsWith("error ", StringComparison.Ordinal))
            {
                newErrors.Add(line);
                if (_errors.Count < 100) _errors.Add(line);
            }
        }
        return newErrors;
    }
}
