using System.Security.Cryptography;

namespace KvmPresync.Wire;

/// <summary>
/// The key both sides hold for the handshake's HMAC challenge–response. At least <see cref="MinimumLength"/>
/// bytes. Load it with <see cref="PskFile.Load"/>; never pass it on a command line. Disposing zeroes it.
/// </summary>
public sealed class PreSharedKey : IDisposable
{
    public const int MinimumLength = 16;
    public const int MaximumLength = 4096;

    private readonly byte[] _key;

    public PreSharedKey(ReadOnlySpan<byte> key)
    {
        if (key.Length < MinimumLength)
            throw new ArgumentException($"a pre-shared key needs at least {MinimumLength} bytes, got {key.Length}", nameof(key));
        if (key.Length > MaximumLength)
            throw new ArgumentException($"a pre-shared key may have at most {MaximumLength} bytes, got {key.Length}", nameof(key));
        _key = key.ToArray();
    }

    public int Length => _key.Length;

    /// <summary>HMAC-SHA256 under this key over the concatenation of <paramref name="parts"/>.</summary>
    internal byte[] Mac(params ReadOnlySpan<ReadOnlyMemory<byte>> parts)
    {
        ObjectDisposedException.ThrowIf(IsDisposed, this);
        using var hmac = IncrementalHash.CreateHMAC(HashAlgorithmName.SHA256, _key);
        foreach (ReadOnlyMemory<byte> part in parts) hmac.AppendData(part.Span);
        return hmac.GetHashAndReset();
    }

    public bool IsDisposed { get; private set; }

    public void Dispose()
    {
        CryptographicOperations.ZeroMemory(_key);
        IsDisposed = true;
    }

    public override string ToString() => $"PreSharedKey({_key.Length} bytes)";
}
