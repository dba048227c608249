using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using BenchmarkDotNet.Attributes;
using KvmPresync.Wire;

namespace KvmPresync.Bench;

/// <summary>
/// What TLS costs the sync stream: 256 MiB of guest pages (256 frames of 256 contiguous 4 KiB pages, as an initial copy
/// sends them) over loopback TCP, unlimited, received page by page into a destination buffer. Plaintext uses the
/// sender's default transport (<see cref="SocketGatherWriter"/>: one sendmsg per frame); TLS is what
/// <c>PresyncOptions.Tls</c> builds: mutual TLS 1.3 (ECDSA P-256 certificates, the cipher suite OpenSSL negotiates),
/// <see cref="StreamGatherWriter"/> coalescing into full 16 KiB records over an SslStream, the reader over an SslStream.
/// </summary>
public class TlsLoopbackBenchmarks
{
    private const int PageSize = 4096;
    private const int PagesPerFrame = 256;
    private const int Frames = 256;
    private const long Bytes = (long)PageSize * PagesPerFrame * Frames;

    private readonly MemoryLayout _layout = MemoryLayout.SingleSlot(PageSize, (ulong)Bytes);
    private byte[] _guestOut = [];
    private byte[] _guestIn = [];
    private PageDescriptor[][] _descriptors = [];
    private ReadOnlyMemory<byte>[][] _payloads = [];
    private Socket _client = null!, _server = null!;
    private SslStream? _clientTls, _serverTls;
    private FrameWriter _writer = null!;
    private FrameReader _reader = null!;

    public enum Transport { Plaintext, Tls13 }

    [Params(Transport.Plaintext, Transport.Tls13)]
    public Transport Kind { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _guestOut = new byte[Bytes];
        _guestIn = new byte[Bytes];
        new Random(1).NextBytes(_guestOut);
        _descriptors = new PageDescriptor[Frames][];
        _payloads = new ReadOnlyMemory<byte>[Frames][];
        for (int f = 0; f < Frames; f++)
        {
            _descriptors[f] = Enumerable.Range(0, PagesPerFrame).Select(i => new PageDescriptor((ulong)(f * PagesPerFrame + i), PageKind.Full, 0)).ToArray();
            _payloads[f] = _descriptors[f].Select(d => (ReadOnlyMemory<byte>)_guestOut.AsMemory((int)d.PageNumber * PageSize, PageSize)).ToArray();
        }

        using Socket listener = MigrationSocket.Listen(new IPEndPoint(IPAddress.Loopback, 0));
        Task<Socket> accept = MigrationSocket.AcceptAsync(listener);
        _client = MigrationSocket.ConnectAsync(listener.LocalEndPoint!).GetAwaiter().GetResult();
        _server = accept.GetAwaiter().GetResult();

        if (Kind == Transport.Plaintext)
        {
            _writer = new FrameWriter(new SocketGatherWriter(_client));
            _reader = new FrameReader(new NetworkStream(_server));
        }
        else
        {
            X509Certificate2 ca = MakeCa();
            TlsOptions Side(string name) => new() { Certificate = Issue(ca, name), Trusted = [ca] };
            Task<SslStream> server = TlsTransport.AcceptAsync(new NetworkStream(_server), Side("receiver"), default);
            _clientTls = TlsTransport.ConnectAsync(new NetworkStream(_client), Side("sender"), default).GetAwaiter().GetResult();
            _serverTls = server.GetAwaiter().GetResult();
            _writer = new FrameWriter(new StreamGatherWriter(_clientTls, TlsTransport.RecordPayloadBytes));
            _reader = new FrameReader(_serverTls);
            Console.WriteLine($"// TLS: {_clientTls.SslProtocol}, {_clientTls.NegotiatedCipherSuite}");
        }
        _writer.UseSession(_layout, HelloOptions.All);
        _reader.UseSession(_layout, HelloOptions.All);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _clientTls?.Dispose();
        _serverTls?.Dispose();
        _client.Dispose();
        _server.Dispose();
    }

    [Benchmark(Description = "send + receive 256 MiB (256 frames of 256 contiguous pages)")]
    public async Task SendAndReceive256MiB()
    {
        Task send = Task.Run(async () =>
        {
            for (int f = 0; f < Frames; f++)
                await _writer.WritePageBatchAsync((ulong)f, _descriptors[f], _payloads[f]);
        });
        for (int f = 0; f < Frames; f++)
        {
            PageBatch batch = await _reader.ReadPageBatchAsync(await _reader.ReadHeaderAsync());
            for (int i = 0; i < batch.FullPages; i++)
                await _reader.ReadPayloadAsync(_guestIn.AsMemory((f * PagesPerFrame + i) * PageSize, PageSize));
        }
        await send;
    }

    private static X509Certificate2 MakeCa()
    {
        var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=bench CA", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign, true));
        return request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
    }

    private static X509Certificate2 Issue(X509Certificate2 ca, string name)
    {
        var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        using X509Certificate2 signed = request.Create(ca, DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1), RandomNumberGenerator.GetBytes(8));
        return signed.CopyWithPrivateKey(key);
    }
}
