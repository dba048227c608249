using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace KvmPresync.Wire;

/// <summary>
/// Opens the TLS 1.3 channel of a migration connection (<see cref="TlsOptions"/>): mutual authentication with
/// certificates, established before the first frame; the frames (Hello/PSK handshake included) then run inside it
/// unchanged. Every failure is a <see cref="ProtocolException"/> with <see cref="ProtocolError.TlsFailed"/> saying
/// what failed and what to check.
/// </summary>
public static class TlsTransport
{
    /// <summary>Name sent as SNI by the sender; the receiver's certificate name is not checked against it.</summary>
    public const string TargetHost = "kvmpresync-receiver";

    /// <summary>The most plaintext one TLS record carries (2^14 bytes): the size to coalesce small writes to.</summary>
    public const int RecordPayloadBytes = 16384;

    /// <summary>What the first byte(s) of a connection say about the peer.</summary>
    public enum FirstBytes
    {
        /// <summary>The peer closed before sending anything.</summary>
        Nothing,
        /// <summary>A TLS handshake record (0x16 0x03 …): the peer speaks TLS.</summary>
        TlsHandshake,
        /// <summary>A KvmPresync Hello frame header: the peer speaks the protocol in plaintext.</summary>
        PlaintextHello,
        /// <summary>Anything else.</summary>
        Other,
    }

    /// <summary>Classifies the first bytes a peer sent (at least one byte, when there are any).</summary>
    public static FirstBytes Classify(ReadOnlySpan<byte> first)
    {
        if (first.IsEmpty) return FirstBytes.Nothing;
        if (first[0] == 0x16 && (first.Length < 2 || first[1] == 0x03)) return FirstBytes.TlsHandshake;
        if (first[0] == (byte)FrameType.Hello && (first.Length < 4 || (first[1] == 0 && first[2] == 0 && first[3] == 0))) return FirstBytes.PlaintextHello;
        return FirstBytes.Other;
    }

    /// <summary>
    /// Waits (at most <paramref name="timeout"/>) for the peer's first bytes and classifies them without consuming
    /// them (MSG_PEEK), so the receiver can tell a plaintext peer from a TLS one before choosing how to read.
    /// </summary>
    public static async Task<FirstBytes> PeekAsync(Socket socket, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(socket);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        cts.CancelAfter(timeout);
        byte[] buffer = new byte[4];
        int n;
        try
        {
            n = await socket.ReceiveAsync(buffer, SocketFlags.Peek, cts.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new ProtocolException(ProtocolError.ConnectionFailed, "connection", null,
                $"the peer sent nothing within {timeout.TotalSeconds:0.#} s of connecting");
        }
        return Classify(buffer.AsSpan(0, n));
    }

    /// <summary>The sender's side: TLS client with its certificate; verifies the receiver's certificate.</summary>
    public static Task<SslStream> ConnectAsync(Stream inner, TlsOptions options, CancellationToken cancellationToken = default) =>
        HandshakeAsync(inner, options, side: "sender", peer: "receiver", (ssl, verifier, ct) => ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = TargetHost,
            EnabledSslProtocols = SslProtocols.Tls13,
            CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
            ClientCertificateContext = SslStreamCertificateContext.Create(options.Certificate, options.Intermediates, offline: true),
            RemoteCertificateValidationCallback = verifier.Verify,
        }, ct),
            "the receiver closed the connection or refused the TLS handshake: check that it runs with TLS (--tls-cert/--tls-key/--tls-ca; " +
            "a plaintext receiver drops a TLS connection) and that its CA trusts this side's certificate", cancellationToken);

    /// <summary>The receiver's side: TLS server with its certificate; requires and verifies the sender's certificate.</summary>
    public static Task<SslStream> AcceptAsync(Stream inner, TlsOptions options, CancellationToken cancellationToken = default) =>
        HandshakeAsync(inner, options, side: "receiver", peer: "sender", (ssl, verifier, ct) => ssl.AuthenticateAsServerAsync(new SslServerAuthenticationOptions
        {
            EnabledSslProtocols = SslProtocols.Tls13,
            CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
            ServerCertificateContext = SslStreamCertificateContext.Create(options.Certificate, options.Intermediates, offline: true),
            ClientCertificateRequired = true,
            RemoteCertificateValidationCallback = verifier.Verify,
        }, ct),
            "the sender closed the connection or refused the TLS handshake: check that its CA (--tls-ca) trusts this receiver's certificate", cancellationToken);

    /// <summary>One TLS handshake within the options' timeout; a failure becomes <see cref="ProtocolError.TlsFailed"/> saying what to check.</summary>
    private static async Task<SslStream> HandshakeAsync(Stream inner, TlsOptions options, string side, string peer,
        Func<SslStream, PeerVerifier, CancellationToken, Task> authenticate, string hint, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(inner);
        ArgumentNullException.ThrowIfNull(options);
        var verifier = new PeerVerifier(options, peer);
        var ssl = new SslStream(inner, leaveInnerStreamOpen: true);
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        cts.CancelAfter(options.HandshakeTimeout);
        try
        {
            await authenticate(ssl, verifier, cts.Token).ConfigureAwait(false);
            return ssl;
        }
        catch (Exception e) when (e is AuthenticationException or IOException or OperationCanceledException or SocketException or ObjectDisposedException)
        {
            await ssl.DisposeAsync().ConfigureAwait(false);
            if (e is OperationCanceledException && cancellationToken.IsCancellationRequested) throw;
            throw Failed(side, verifier, e, options.HandshakeTimeout, hint);
        }
    }

    /// <summary>
    /// An exception that means "the peer refused our certificate or our TLS" after our own handshake call returned
    /// (TLS 1.3: the client learns that the server rejected its certificate only on its first read). True for an
    /// <see cref="AuthenticationException"/> anywhere in the chain.
    /// </summary>
    public static bool IsTlsFailure(Exception? e)
    {
        for (; e is not null; e = e.InnerException)
            if (e is AuthenticationException || e is ProtocolException { Error: ProtocolError.TlsFailed }) return true;
        return false;
    }

    private static ProtocolException Failed(string self, PeerVerifier verifier, Exception e, TimeSpan timeout, string otherwise)
    {
        string detail = Innermost(e);
        string message = verifier.Rejection is { } rejection
            ? $"TLS handshake failed on the {self}: {rejection}"
            : e is OperationCanceledException
                ? $"TLS handshake failed on the {self}: not completed within {timeout.TotalSeconds:0.#} s ({otherwise})"
                : $"TLS handshake failed on the {self}: {detail}; {otherwise}";
        return new ProtocolException(ProtocolError.TlsFailed, "tls", null, message, e);
    }

    private static string Innermost(Exception e)
    {
        string text = e.Message;
        for (Exception? i = e.InnerException; i is not null; i = i.InnerException)
            if (!string.IsNullOrWhiteSpace(i.Message) && !text.Contains(i.Message, StringComparison.Ordinal)) text += " — " + i.Message;
        return text;
    }

    /// <summary>Accepts the peer's certificate when it is pinned or chains to a trusted CA; remembers why it refused.</summary>
    private sealed class PeerVerifier(TlsOptions options, string peer)
    {
        public string? Rejection { get; private set; }

        public bool Verify(object sender, X509Certificate? certificate, X509Chain? presented, SslPolicyErrors errors)
        {
            if (certificate is null)
            {
                Rejection = $"the {peer} presented no certificate; both sides need --tls-cert and --tls-key (mutual TLS)";
                return false;
            }
            using var peerCert = new X509Certificate2(certificate);
            byte[] fingerprint = peerCert.GetCertHash(HashAlgorithmName.SHA256);
            foreach (X509Certificate2 pinned in options.Trusted)
                if (CryptographicOperations.FixedTimeEquals(pinned.GetCertHash(HashAlgorithmName.SHA256), fingerprint))
                    return true; // pinned peer certificate

            using var chain = new X509Chain();
            chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
            chain.ChainPolicy.CustomTrustStore.AddRange(options.Trusted);
            chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
            if (presented is not null)
                foreach (X509ChainElement element in presented.ChainElements)
                    if (!element.Certificate.Equals(peerCert)) chain.ChainPolicy.ExtraStore.Add(element.Certificate);
            if (chain.Build(peerCert)) return true;

            string status = string.Join("; ", chain.ChainStatus.Select(s => $"{s.Status}: {s.StatusInformation.Trim()}").Distinct());
            Rejection = $"the {peer}'s certificate (subject '{peerCert.Subject}', issuer '{peerCert.Issuer}', SHA-256 {Convert.ToHexString(fingerprint)}) " +
                $"is neither signed by nor pinned in {options.TrustSource} ({status}). Give both sides the CA that signed the other side's certificate (--tls-ca), or the peer's own certificate to pin it";
            return false;
        }
    }
}
