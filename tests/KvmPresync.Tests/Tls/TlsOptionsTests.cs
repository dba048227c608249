using KvmPresync.Wire;

namespace KvmPresync.Tests.Tls;

/// <summary>Loading the PEM files behind --tls-cert / --tls-key / --tls-ca: what is refused, and that key material is never echoed.</summary>
public sealed class TlsOptionsTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("kvmpresync-tls").FullName;

    [Fact]
    public void Files_from_a_CA_load()
    {
        var (cert, key, ca) = new TestCertificates().WriteFiles(_dir, "sender");
        TlsOptions tls = TlsOptions.Load(cert, key, ca);
        Assert.True(tls.Certificate.HasPrivateKey);
        Assert.Single(tls.Trusted);
    }

    [Fact]
    public void A_key_file_others_can_read_is_refused_with_the_chmod_to_run()
    {
        Assert.SkipWhen(OperatingSystem.IsWindows(), "Unix file modes");
        var (cert, key, ca) = new TestCertificates().WriteFiles(_dir, "sender");
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(key, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        var e = Assert.Throws<ProtocolException>(() => TlsOptions.Load(cert, key, ca));
        Assert.Equal(ProtocolError.TlsFailed, e.Error);
        Assert.Contains($"chmod 600 {key}", e.Message);
    }

    [Fact]
    public void A_key_that_does_not_match_the_certificate_is_refused_without_printing_it()
    {
        var pki = new TestCertificates();
        var (cert, _, ca) = pki.WriteFiles(_dir, "sender");
        var (_, otherKey, _) = pki.WriteFiles(_dir, "other");
        string keyText = File.ReadAllText(otherKey);
        var e = Assert.Throws<ProtocolException>(() => TlsOptions.Load(cert, otherKey, ca));
        Assert.Equal(ProtocolError.TlsFailed, e.Error);
        Assert.Contains("cannot be used with the certificate", e.Message);
        string base64 = keyText.Split('\n')[1];
        Assert.DoesNotContain(base64, e.ToString());
    }

    [Fact]
    public void Missing_files_and_a_CA_file_without_certificates_are_refused()
    {
        var (cert, key, ca) = new TestCertificates().WriteFiles(_dir, "sender");
        Assert.Contains("does not exist", Assert.Throws<ProtocolException>(() => TlsOptions.Load(cert, key, Path.Combine(_dir, "nope.crt"))).Message);
        string empty = Path.Combine(_dir, "empty.crt");
        File.WriteAllText(empty, "not a certificate\n");
        Assert.Contains("holds no PEM certificate", Assert.Throws<ProtocolException>(() => TlsOptions.Load(cert, key, empty)).Message);
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
