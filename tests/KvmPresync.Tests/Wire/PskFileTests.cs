using KvmPresync.Wire;

namespace KvmPresync.Tests.Wire;

[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class PskFileTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("kvmpresync-psk-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string KeyFile(string name, byte[] content, UnixFileMode mode = UnixFileMode.UserRead | UnixFileMode.UserWrite)
    {
        string path = Path.Combine(_dir, name);
        File.WriteAllBytes(path, content);
        File.SetUnixFileMode(path, mode);
        return path;
    }

    [Fact]
    public void Loads_a_hex_key_and_strips_the_trailing_newline()
    {
        string hex = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
        using PreSharedKey key = PskFile.Load(KeyFile("k", System.Text.Encoding.ASCII.GetBytes(hex + "\n")));
        Assert.Equal(64, key.Length);
    }

    [Fact]
    public void Same_file_gives_keys_that_authenticate_each_other()
    {
        string path = KeyFile("k", System.Text.Encoding.ASCII.GetBytes("correct horse battery staple\n"));
        using PreSharedKey a = PskFile.Load(path), b = PskFile.Load(path);
        byte[] hello = new byte[60], ack = new byte[40];
        Assert.Equal(HandshakeTranscript.SenderProof(a, hello, ack), HandshakeTranscript.SenderProof(b, hello, ack));
    }

    [Fact]
    public void Short_key_is_refused_with_the_length_and_a_fix()
    {
        var e = Assert.Throws<ProtocolException>(() => PskFile.Load(KeyFile("short", "only15bytes!!!!\n"u8.ToArray())));
        Assert.Equal(ProtocolError.KeyFileRejected, e.Error);
        Assert.Contains("holds a 15-byte key; at least 16 bytes are required", e.Message);
    }

    [Fact]
    public void Empty_or_whitespace_only_file_is_refused()
    {
        var e = Assert.Throws<ProtocolException>(() => PskFile.Load(KeyFile("empty", " \n\n"u8.ToArray())));
        Assert.Equal(ProtocolError.KeyFileRejected, e.Error);
        Assert.Contains("is empty", e.Message);
    }

    [Fact]
    public void World_or_group_readable_file_is_refused_with_a_chmod_hint()
    {
        string path = KeyFile("open", new byte[32], UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.OtherRead);
        var e = Assert.Throws<ProtocolException>(() => PskFile.Load(path));
        Assert.Equal(ProtocolError.KeyFileRejected, e.Error);
        Assert.Contains("chmod 600", e.Message);
        path = KeyFile("group", new byte[32], UnixFileMode.UserRead | UnixFileMode.GroupRead);
        Assert.Equal(ProtocolError.KeyFileRejected, Assert.Throws<ProtocolException>(() => PskFile.Load(path)).Error);
    }

    [Fact]
    public void Missing_file_is_refused_with_how_to_create_one()
    {
        var e = Assert.Throws<ProtocolException>(() => PskFile.Load(Path.Combine(_dir, "nope")));
        Assert.Equal(ProtocolError.KeyFileRejected, e.Error);
        Assert.Contains("openssl rand -hex 32", e.Message);
    }

    [Fact]
    public void Oversized_file_is_refused() =>
        Assert.Equal(ProtocolError.KeyFileRejected, Assert.Throws<ProtocolException>(() => PskFile.Load(KeyFile("big", new byte[5000]))).Error);

    [Fact]
    public void Disposed_key_cannot_be_used()
    {
        var key = new PreSharedKey(new byte[16]);
        key.Dispose();
        Assert.Throws<ObjectDisposedException>(() => HandshakeTranscript.SenderProof(key, new byte[1], new byte[40]));
    }
}
