using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace KvmPresync.Wire;

/// <summary>
/// Mutual TLS 1.3 for a migration connection (<see cref="TlsTransport"/>): this side's certificate with its private
/// key, and what it trusts for the other side — a CA that must have signed the peer's certificate, or the peer's own
/// certificate (pinned, matched by its SHA-256 fingerprint). Both sides present a certificate and both verify; the
/// host name in the certificate is not checked (peers are named by the trusted CA / pin, not by DNS). The PSK
/// handshake still runs inside the TLS channel.
/// </summary>
public sealed record TlsOptions
{
    /// <summary>This side's certificate; must carry its private key.</summary>
    public required X509Certificate2 Certificate
    {
        get;
        init => field = (value ?? throw new ArgumentNullException(nameof(Certificate), "TlsOptions.Certificate must not be null")).HasPrivateKey ? value
            : throw new ArgumentException($"TlsOptions.Certificate {value.Subject} has no private key attached", nameof(Certificate));
    }

    /// <summary>Intermediate CA certificates sent along with <see cref="Certificate"/> (may be empty).</summary>
    public X509Certificate2Collection Intermediates { get; init => field = value ?? throw new ArgumentNullException(nameof(Intermediates), "TlsOptions.Intermediates must not be null"); } = [];

    /// <summary>CA certificates (trust anchors) and/or pinned peer certificates. At least one.</summary>
    public required X509Certificate2Collection Trusted
    {
        get;
        init => field = (value ?? throw new ArgumentNullException(nameof(Trusted), "TlsOptions.Trusted must not be null")).Count > 0 ? value
            : throw new ArgumentException("TlsOptions.Trusted must hold at least one trusted CA or pinned peer certificate", nameof(Trusted));
    }

    /// <summary>How long the TLS handshake may take.</summary>
    public TimeSpan HandshakeTimeout
    {
        get;
        init => field = value > TimeSpan.Zero ? value
            : throw new ArgumentOutOfRangeException(nameof(HandshakeTimeout), value, $"TlsOptions.HandshakeTimeout must be positive, got {value.TotalMilliseconds} ms");
    } = TimeSpan.FromSeconds(15);

    /// <summary>Where the trust came from, for error messages (e.g. the --tls-ca file).</summary>
    public string TrustSource { get; init; } = "the trusted CA";

    /// <summary>
    /// Loads PEM files: the certificate (leaf first, then any intermediates), its private key (PKCS#8, PKCS#1 or SEC1;
    /// unencrypted; the file must be readable by its owner only, as the PSK file), and the CA or pinned peer
    /// certificate(s). Throws <see cref="ProtocolException"/> (<see cref="ProtocolError.TlsFailed"/>) saying what to fix;
    /// never prints key material.
    /// </summary>
    public static TlsOptions Load(string certificatePath, string keyPath, string trustedPath)
    {
        ArgumentException.ThrowIfNullOrEmpty(certificatePath);
        ArgumentException.ThrowIfNullOrEmpty(keyPath);
        ArgumentException.ThrowIfNullOrEmpty(trustedPath);
        RequireFile(certificatePath, "certificate");
        RequireFile(trustedPath, "CA / pinned certificate");
        RequireFile(keyPath, "private key");
        if (!OperatingSystem.IsWindows())
        {
            UnixFileMode mode = new FileInfo(keyPath).UnixFileMode;
            const UnixFileMode groupOrOther = UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute
                | UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute;
            if ((mode & groupOrOther) != 0)
                throw Rejected(keyPath, $"TLS private key file {keyPath} is accessible by group or others (mode {Convert.ToString((int)mode, 8)}) — run: chmod 600 {keyPath}");
        }

        var chain = new X509Certificate2Collection();
        try
        {
            chain.ImportFromPemFile(certificatePath);
        }
        catch (Exception e) when (e is CryptographicException or IOException or UnauthorizedAccessException)
        {
            throw Rejected(certificatePath, $"TLS certificate file {certificatePath} cannot be read as PEM certificates: {e.Message}", e);
        }
        if (chain.Count == 0)
            throw Rejected(certificatePath, $"TLS certificate file {certificatePath} holds no PEM certificate (-----BEGIN CERTIFICATE-----)");

        X509Certificate2 leaf;
        try
        {
            leaf = X509Certificate2.CreateFromPemFile(certificatePath, keyPath);
        }
        catch (Exception e) when (e is CryptographicException or IOException or UnauthorizedAccessException or ArgumentException)
        {
            // The key file's content is never echoed: only which files and what kind of failure.
            throw Rejected(keyPath, $"TLS private key {keyPath} cannot be used with the certificate {certificatePath}: {e.GetType().Name} " +
                "(the key must be an unencrypted PEM private key that matches the certificate's public key — the first certificate in the file)", e);
        }

        var trusted = new X509Certificate2Collection();
        try
        {
            trusted.ImportFromPemFile(trustedPath);
        }
        catch (Exception e) when (e is CryptographicException or IOException or UnauthorizedAccessException)
        {
            throw Rejected(trustedPath, $"TLS CA file {trustedPath} cannot be read as PEM certificates: {e.Message}", e);
        }
        if (trusted.Count == 0)
            throw Rejected(trustedPath, $"TLS CA file {trustedPath} holds no PEM certificate (-----BEGIN CERTIFICATE-----)");

        var intermediates = new X509Certificate2Collection();
        for (int i = 1; i < chain.Count; i++) intermediates.Add(chain[i]);
        return new TlsOptions { Certificate = leaf, Intermediates = intermediates, Trusted = trusted, TrustSource = $"the CA file {trustedPath}" };
    }

    private static void RequireFile(string path, string what)
    {
        if (!File.Exists(path))
            throw Rejected(path, $"TLS {what} file {path} does not exist (tools/make-test-certs.sh makes a test CA and certificates)");
    }

    private static ProtocolException Rejected(string path, string message, Exception? inner = null) =>
        new(ProtocolError.TlsFailed, "tlsFile", path, message, inner);
}
