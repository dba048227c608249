using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using KvmPresync.Wire;

namespace KvmPresync.Tests.Tls;

/// <summary>A CA and certificates signed by it, made in-process (ECDSA P-256), and the PEM files for them when a test needs files.</summary>
internal sealed class TestCertificates
{
    private static readonly DateTimeOffset NotBefore = DateTimeOffset.UtcNow.AddDays(-1);
    private static readonly DateTimeOffset NotAfter = DateTimeOffset.UtcNow.AddDays(30);

    public TestCertificates(string name = "KvmPresync test CA")
    {
        var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        Ca = request.CreateSelfSigned(NotBefore, NotAfter);
    }

    public X509Certificate2 Ca { get; }

    /// <summary>A leaf certificate for a migration peer, signed by this CA, with its private key.</summary>
    public X509Certificate2 Issue(string name)
    {
        var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(
            [new Oid("1.3.6.1.5.5.7.3.1"), new Oid("1.3.6.1.5.5.7.3.2")], false)); // serverAuth, clientAuth
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        byte[] serial = RandomNumberGenerator.GetBytes(12);
        serial[0] &= 0x7F;
        using X509Certificate2 signed = request.Create(Ca, NotBefore, NotAfter, serial);
        return signed.CopyWithPrivateKey(key);
    }

    /// <summary>Options for one side: a fresh certificate from this CA, trusting <paramref name="trusted"/> (default: this CA).</summary>
    public TlsOptions Side(string name, X509Certificate2? trusted = null) => new()
    {
        Certificate = Issue(name),
        Trusted = [trusted ?? Ca],
        TrustSource = trusted is null ? "the test CA" : $"'{trusted.Subject}'",
        HandshakeTimeout = TimeSpan.FromSeconds(10),
    };

    /// <summary>Writes cert.pem, key.pem (mode 600) and ca.pem for <paramref name="name"/> into <paramref name="dir"/>; returns their paths.</summary>
    public (string Cert, string Key, string Ca) WriteFiles(string dir, string name)
    {
        X509Certificate2 cert = Issue(name);
        string certPath = Path.Combine(dir, name + ".crt"), keyPath = Path.Combine(dir, name + ".key"), caPath = Path.Combine(dir, "ca.crt");
        File.WriteAllText(certPath, cert.ExportCertificatePem());
        File.WriteAllText(keyPath, "");
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(keyPath, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        File.WriteAllText(keyPath, cert.GetECDsaPrivateKey()!.ExportPkcs8PrivateKeyPem());
        File.WriteAllText(caPath, Ca.ExportCertificatePem());
        return (certPath, keyPath, caPath);
    }
}
