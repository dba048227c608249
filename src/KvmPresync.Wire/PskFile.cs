namespace KvmPresync.Wire;

/// <summary>
/// Loads the pre-shared key from a file. The key is the file's bytes with trailing ASCII whitespace removed
/// (so `openssl rand -hex 32 &gt; key` works; both sides load the same file the same way). Refused: missing or
/// unreadable files, keys shorter than <see cref="PreSharedKey.MinimumLength"/> bytes, files larger than
/// <see cref="PreSharedKey.MaximumLength"/>, and on Unix files that the group or others may read or write.
/// </summary>
public static class PskFile
{
    /// <summary>Loads and checks the key; throws <see cref="ProtocolException"/> with <see cref="ProtocolError.KeyFileRejected"/> saying what to fix.</summary>
    public static PreSharedKey Load(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var info = new FileInfo(path);
        if (!info.Exists)
            throw Rejected(path, "does not exist — create one with: (umask 077; openssl rand -hex 32 > " + path + ")");
        if (!OperatingSystem.IsWindows())
        {
            UnixFileMode mode = info.UnixFileMode;
            const UnixFileMode groupOrOther = UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute
                | UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute;
            if ((mode & groupOrOther) != 0)
                throw Rejected(path, $"is accessible by group or others (mode {Convert.ToString((int)mode, 8)}) — run: chmod 600 {path}");
        }
        if (info.Length > PreSharedKey.MaximumLength)
            throw Rejected(path, $"is {info.Length} bytes; a key file holds at most {PreSharedKey.MaximumLength}");

        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw Rejected(path, $"cannot be read: {e.Message}", e);
        }
        int length = bytes.Length;
        while (length > 0 && bytes[length - 1] is (byte)' ' or (byte)'\t' or (byte)'\r' or (byte)'\n') length--;
        try
        {
            if (length < PreSharedKey.MinimumLength)
                throw Rejected(path, length == 0
                    ? "is empty — put at least 16 random bytes in it, e.g. (umask 077; openssl rand -hex 32 > " + path + ")"
                    : $"holds a {length}-byte key; at least {PreSharedKey.MinimumLength} bytes are required (e.g. openssl rand -hex 32)");
            return new PreSharedKey(bytes.AsSpan(0, length));
        }
        finally
        {
            System.Security.Cryptography.CryptographicOperations.ZeroMemory(bytes);
        }
    }

    private static ProtocolException Rejected(string path, string problem, Exception? inner = null) =>
        new(ProtocolError.KeyFileRejected, "pskFile", path, $"pre-shared key file {path} {problem}", inner);
}
