using System.CommandLine;
using KvmPresync.Wire;

namespace KvmPresync.Cli.Commands;

/// <summary>
/// <c>--tls-cert FILE --tls-key FILE --tls-ca FILE</c>: mutual TLS 1.3 around a migration connection (both sides give
/// all three, or none for plaintext with PSK authentication). The key file must be mode 600, like the PSK file; its
/// content is never printed.
/// </summary>
internal sealed class TlsOptionsBinding
{
    private readonly Option<string?> _cert = new("--tls-cert")
    {
        Description = "Mutual TLS 1.3: this side's certificate (PEM; leaf first, then intermediates). Needs --tls-key and --tls-ca; default: plaintext (PSK-authenticated only)",
    };

    private readonly Option<string?> _key = new("--tls-key") { Description = "Mutual TLS: the private key of --tls-cert (PEM, unencrypted, mode 600)" };

    private readonly Option<string?> _ca = new("--tls-ca")
    {
        Description = "Mutual TLS: the CA certificate(s) that signed the other side's certificate, or the other side's certificate itself to pin it (PEM)",
    };

    public void AddTo(Command command)
    {
        command.Options.Add(_cert);
        command.Options.Add(_key);
        command.Options.Add(_ca);
    }

    /// <summary>The TLS settings, or null when none of the three options was given; throws saying which is missing or what is wrong with a file.</summary>
    public TlsOptions? Load(ParseResult parse)
    {
        string? cert = parse.GetValue(_cert), key = parse.GetValue(_key), ca = parse.GetValue(_ca);
        if (cert is null && key is null && ca is null) return null;
        string[] missing = [.. new[] { (cert, "--tls-cert"), (key, "--tls-key"), (ca, "--tls-ca") }.Where(o => o.Item1 is null).Select(o => o.Item2)];
        if (missing.Length > 0)
            throw new ArgumentException($"TLS needs --tls-cert, --tls-key and --tls-ca together; missing: {string.Join(", ", missing)} (tools/make-test-certs.sh makes a test set)");
        return TlsOptions.Load(cert!, key!, ca!);
    }

    /// <summary>Whether any of the options was given (to refuse combinations before loading files).</summary>
    public bool Given(ParseResult parse) => parse.GetValue(_cert) is not null || parse.GetValue(_key) is not null || parse.GetValue(_ca) is not null;
}
