using System.Net;
using System.Net.Sockets;
using KvmPresync.Core;
using KvmPresync.Engine;
using KvmPresync.Memory;
using KvmPresync.Migration;
using KvmPresync.Tests.Migration;
using KvmPresync.Wire;

namespace KvmPresync.Tests.Tls;

/// <summary>
/// Migrations over mutual TLS 1.3 with a scripted source (no KVM): end to end verified and resumed; a certificate the
/// other side does not trust fails both sides with a message naming it, and the source keeps running; a plaintext peer
/// on either side is refused cleanly — the receiver returns a failed result, never throws, and closes the connection.
/// </summary>
public sealed class TlsMigrationTests(ITestOutputHelper output)
{
    /// <summary>Random memory; each harvest rewrites a few pages; launch after a fixed number of harvests.</summary>
    private sealed class ScriptedSource : IMigrationSource, IDirtyPageSource, IDisposable
    {
        private readonly Random _random = new(42);
        private readonly int _launchAfterHarvest;
        private int _harvests;

        public ScriptedSource(long bytes, int launchAfterHarvest)
        {
            _launchAfterHarvest = launchAfterHarvest;
            Memory = GuestMemoryMap.Single(GuestMemory.Create(bytes), ownsMemory: true);
            for (long p = 0; p < Memory.PageCount; p += 2) _random.NextBytes(Memory.Page(p)); // every other page: zero pages too
        }

        public PresyncSender? Sender { get; set; }
        public GuestMemoryMap Memory { get; }
        public IDirtyPageSource DirtyLog => this;
        public long ProgressTotal => _harvests;
        public bool Paused { get; private set; }
        public bool Stopped { get; private set; }
        public bool Resumed { get; private set; }
        public long PageCount => Memory.PageCount;
        public int PageSize => Memory.PageSize;

        public DirtyHarvest Harvest(DirtyBitmap into)
        {
            int k = _harvests++;
            if (k == 0) into.SetAll();
            else if (!Paused)
                for (int i = 0; i < 64; i++)
                {
                    long page = _random.NextInt64(PageCount);
                    _random.NextBytes(Memory.Page(page));
                    into.Set(page);
                }
            if (k == _launchAfterHarvest) Sender?.Launch();
            return new DirtyHarvest(TimeSpan.FromMilliseconds(100 * k), k == 0 ? PageCount : 64, (ulong)k);
        }

        public void Pause() => Paused = true;
        public void Resume() { Paused = false; Resumed = true; }
        public byte[] SaveState() => [1, 2, 3];
        public void Stop() => Stopped = true;
        public void Dispose() => Memory.Dispose();
    }

    private sealed class BlankTarget(MemoryLayout layout) : IMigrationTarget
    {
        public GuestMemoryMap Memory { get; } = GuestMemoryMap.Single(GuestMemory.Create((long)layout.TotalBytes), ownsMemory: true);
        public byte[]? State { get; private set; }
        public void Resume(ReadOnlySpan<byte> deviceState) => State = deviceState.ToArray();
        public void Dispose() => Memory.Dispose();
    }

    private sealed record Outcome(MigrationResult Sent, ReceiveResult Received, BlankTarget? Target, ScriptedSource Source, bool ReceiverSocketClosed);

    private static async Task<Outcome> MigrateAsync(TlsOptions? senderTls, TlsOptions? receiverTls, long bytes = 16 << 20)
    {
        CancellationToken ct = TestContext.Current.CancellationToken;
        using PreSharedKey key = MigrationHarness.Key();
        var source = new ScriptedSource(bytes, launchAfterHarvest: 4);
        BlankTarget? target = null;
        bool closed = false;
        using Socket listener = MigrationSocket.Listen(new IPEndPoint(IPAddress.Loopback, 0));
        Task<ReceiveResult> receiver = Task.Run(async () =>
        {
            using Socket connection = await MigrationSocket.AcceptAsync(listener, ct);
            ReceiveResult r = await PresyncReceiver.RunAsync(connection, key, layout => target = new BlankTarget(layout),
                new ReceiverOptions { Tls = receiverTls, IdleTimeout = TimeSpan.FromSeconds(10) }, ct);
            // RunAsync closed the connection: reading now ends at once (0 bytes or an error), it does not wait for the peer
            try { closed = connection.Receive(new byte[64 << 10]) >= 0; } catch (SocketException) { closed = true; } catch (ObjectDisposedException) { closed = true; }
            return r;
        }, ct);
        using Socket socket = await MigrationSocket.ConnectAsync(listener.LocalEndPoint!, ct);
        var sender = new PresyncSender(source, socket, key, new PresyncOptions
        {
            Engine = new SyncEngineOptions { LinkBitsPerSecond = 1e9 },
            RateLimitBitsPerSecond = 0,
            Tls = senderTls,
        });
        source.Sender = sender;
        MigrationResult sent = await sender.RunAsync(ct).WaitAsync(TimeSpan.FromSeconds(60), ct);
        ReceiveResult received = await receiver.WaitAsync(TimeSpan.FromSeconds(30), ct);
        return new Outcome(sent, received, received.Resumed ? target : null, source, closed);
    }

    [Fact]
    public async Task A_migration_over_mutual_TLS_is_verified_and_resumed_with_identical_memory()
    {
        var pki = new TestCertificates();
        Outcome o = await MigrateAsync(pki.Side("sender"), pki.Side("receiver"));
        using (o.Source)
        using (o.Target)
        {
            Assert.True(o.Sent.Succeeded, o.Sent.Failure + " / receiver: " + o.Received.Failure);
            Assert.True(o.Sent.Verified);
            Assert.True(o.Received.Resumed && o.Received.Verified, o.Received.Failure);
            Assert.True(o.Source.Stopped);
            Assert.NotNull(o.Target);
            Assert.Equal([1, 2, 3], o.Target!.State);
            for (long p = 0; p < o.Source.Memory.PageCount; p++)
                Assert.True(o.Source.Memory.Page(p).SequenceEqual(o.Target.Memory.Page(p)), $"page {p} differs");
            output.WriteLine($"sync {o.Sent.SyncBytes} B, launch {o.Sent.LaunchBytes} B; receiver read {o.Received.BytesReceived} B of frames");
        }
    }

    [Fact]
    public async Task A_pinned_peer_certificate_is_accepted_without_a_CA()
    {
        var pki = new TestCertificates();
        X509CertificatePair pair = new(pki.Issue("sender"), pki.Issue("receiver"));
        var senderTls = new TlsOptions { Certificate = pair.Sender, Trusted = [Public(pair.Receiver)] };
        var receiverTls = new TlsOptions { Certificate = pair.Receiver, Trusted = [Public(pair.Sender)] };
        Outcome o = await MigrateAsync(senderTls, receiverTls, bytes: 4 << 20);
        using (o.Source)
        using (o.Target)
            Assert.True(o.Sent.Succeeded && o.Received.Resumed, o.Sent.Failure + " / receiver: " + o.Received.Failure);
    }

    private sealed record X509CertificatePair(System.Security.Cryptography.X509Certificates.X509Certificate2 Sender, System.Security.Cryptography.X509Certificates.X509Certificate2 Receiver);

    private static System.Security.Cryptography.X509Certificates.X509Certificate2 Public(System.Security.Cryptography.X509Certificates.X509Certificate2 c) =>
        System.Security.Cryptography.X509Certificates.X509CertificateLoader.LoadCertificate(c.RawData);

    [Theory]
    [InlineData(true)]  // the receiver's CA did not sign the sender's certificate
    [InlineData(false)] // the sender's CA did not sign the receiver's certificate
    public async Task A_certificate_from_the_wrong_CA_fails_both_sides_clearly_and_the_source_keeps_running(bool receiverDistrustsSender)
    {
        var pki = new TestCertificates();
        var other = new TestCertificates("some other CA");
        TlsOptions senderTls = pki.Side("sender", trusted: receiverDistrustsSender ? null : other.Ca);
        TlsOptions receiverTls = pki.Side("receiver", trusted: receiverDistrustsSender ? other.Ca : null);
        Outcome o = await MigrateAsync(senderTls, receiverTls);
        using (o.Source)
        {
            output.WriteLine("sender:   " + o.Sent.Failure);
            output.WriteLine("receiver: " + o.Received.Failure);
            Assert.False(o.Sent.Succeeded);
            Assert.Equal(SenderPhase.Handshake, o.Sent.FailedPhase);
            Assert.Contains("the source guest kept running", o.Sent.Failure);
            Assert.False(o.Source.Stopped || o.Source.Paused);
            Assert.Contains("--tls-ca", o.Sent.Failure);
            Assert.False(o.Received.Resumed);
            Assert.Contains("TLS", o.Received.Failure);
            Assert.Equal(0, o.Received.PagesApplied);
            Assert.Null(o.Received.AbortSent);
            Assert.True(o.ReceiverSocketClosed);
            if (receiverDistrustsSender)
                Assert.Contains("sender's certificate (subject 'CN=sender'", o.Received.Failure);
            else
                Assert.Contains("receiver's certificate (subject 'CN=receiver'", o.Sent.Failure);
        }
    }

    [Fact]
    public async Task A_plaintext_sender_is_refused_by_a_TLS_receiver_with_an_Abort_saying_why()
    {
        var pki = new TestCertificates();
        Outcome o = await MigrateAsync(senderTls: null, receiverTls: pki.Side("receiver"));
        using (o.Source)
        {
            output.WriteLine("sender:   " + o.Sent.Failure);
            output.WriteLine("receiver: " + o.Received.Failure);
            Assert.False(o.Sent.Succeeded);
            Assert.Equal(SenderPhase.Handshake, o.Sent.FailedPhase);
            Assert.Contains("requires TLS", o.Sent.Failure);            // the receiver's plaintext Abort reached the sender
            Assert.Contains("--tls-cert", o.Sent.Failure);
            Assert.False(o.Source.Stopped || o.Source.Paused);
            Assert.False(o.Received.Resumed);
            Assert.Contains("connected in plaintext", o.Received.Failure);
            Assert.Equal(AbortReason.ProtocolViolation, o.Received.AbortSent);
            Assert.True(o.ReceiverSocketClosed);
        }
    }

    [Fact]
    public async Task A_TLS_sender_is_refused_by_a_plaintext_receiver()
    {
        var pki = new TestCertificates();
        Outcome o = await MigrateAsync(senderTls: pki.Side("sender"), receiverTls: null);
        using (o.Source)
        {
            output.WriteLine("sender:   " + o.Sent.Failure);
            output.WriteLine("receiver: " + o.Received.Failure);
            Assert.False(o.Sent.Succeeded);
            Assert.Equal(SenderPhase.Handshake, o.Sent.FailedPhase);
            Assert.Contains("TLS handshake failed on the sender", o.Sent.Failure);
            Assert.Contains("check that it runs with TLS", o.Sent.Failure);
            Assert.False(o.Source.Stopped || o.Source.Paused);
            Assert.False(o.Received.Resumed);
            Assert.Contains("opened a TLS connection, but this receiver runs in plaintext", o.Received.Failure);
            Assert.Null(o.Received.AbortSent);
            Assert.True(o.ReceiverSocketClosed);
        }
    }

    [Fact]
    public void Zero_copy_with_TLS_is_refused_with_the_reason()
    {
        var pki = new TestCertificates();
        var e = Assert.Throws<ArgumentException>(() => new PresyncOptions { ZeroCopy = true, Tls = pki.Side("sender") }.Validate());
        Assert.Contains("cannot be combined with TLS", e.Message);
    }
}
