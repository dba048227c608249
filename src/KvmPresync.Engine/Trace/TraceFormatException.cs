using KvmPresync.Core;
namespace KvmPresync.Trace;

/// <summary>
/// A dirty-trace file is malformed, corrupt or truncated. The message names the file, the record (header,
/// interval N or end record) and the byte offset, e.g. "trace file a.kpt: interval 17 truncated at byte 5120".
/// </summary>
public sealed class TraceFormatException : Exception
{
    public TraceFormatException(string traceName, string record, long byteOffset, string problem)
        : base($"trace file {traceName}: {record} {problem} at byte {byteOffset}")
    {
        TraceName = traceName;
        Record = record;
        ByteOffset = byteOffset;
        Problem = problem;
    }

    /// <summary>File name (or the name given for a stream).</summary>
    public string TraceName { get; }

    /// <summary>"header", "interval N" or "end record".</summary>
    public string Record { get; }

    /// <summary>Offset from the start of the file where the problem was detected.</summary>
    public long ByteOffset { get; }

    /// <summary>What is wrong, without the location.</summary>
    public string Problem { get; }
}
