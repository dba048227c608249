namespace KvmPresync.Cli;

/// <summary>
/// Progress of long work: on a terminal, one status line rewritten in place; otherwise plain lines
/// (so logs and pipes get one line per update).
/// </summary>
internal sealed class LiveView(TextWriter output, bool interactive)
{
    private int _lastLength;

    public static LiveView ForConsole() => new(Console.Out, !Console.IsOutputRedirected);

    public void Update(string line)
    {
        if (!interactive)
        {
            output.WriteLine(line);
            return;
        }
        string padded = line.Length < _lastLength ? line + new string(' ', _lastLength - line.Length) : line;
        output.Write('\r' + padded);
        _lastLength = line.Length;
    }

    /// <summary>Ends the live line so what follows starts on a fresh line.</summary>
    public void Done()
    {
        if (interactive && _lastLength > 0) output.WriteLine();
        _lastLength = 0;
    }
}
