using System.Net.Sockets;
using KvmPresync.Core;
using KvmPresync.Memory;
using KvmPresync.Migration;
using KvmPresync.ProcessMemory;
using KvmPresync.Tests.ProcessMemory;
using KvmPresync.Wire;
using static KvmPresync.Tests.Wire.WireTestSupport;

namespace KvmPresync.Tests.Migration;

/// <summary>
/// The receiver as one state machine from the first byte: out-of-order handshake frames are refused by its gate,
/// and every failure — including the migration target's own exceptions, unexpected exception types and
/// cancellation — ends in an Abort with the cause on the wire, a failed <see cref="ReceiveResult"/> saying in which
/// phase, a disposed target and a closed connection. Nothing escapes <see cref="PresyncReceiver.RunAsync"/>.
/// </summary>
public sealed class ReceiverFailureTests
{
    private const long MemoryBytes = 1L << 20; // 256 pages

    private static MemoryLayout Layout(long bytes = MemoryBytes) => MemoryLayout.SingleSlot(PageSize, (ulong)bytes);

    /// <summary>A target over real anonymous memory whose Memory getter and Resume can be made to fail.</summary>
    private sealed class TestTarget(long bytes) : IMigrationTarget
    {
        private readonly GuestMemoryMap _memory = GuestMemoryMap.Single(GuestMemory.Create(bytes), ownsMemory: true);
        public Func<GuestMemoryMap>? MemoryGetter { get; init; }
        public Action? OnResume { get; init; }
        public int ResumeCalls { get; private set; }
        public bool Disposed { get; private set; }
        public GuestMemoryMap Memory => MemoryGetter is null ? _memory : MemoryGetter();
        public void Resume(ReadOnlySpan<byte> deviceState)
        {
            ResumeCalls++;
            OnResume?.Invoke();
        }
        public void Dispose()
        {
            Disposed = true;
            _memory.Dispose();
        }
    }

    /// <summary>The test's side of the connection: a hand-driven sender.</summary>
    private sealed class Sender(Socket socket) : IDisposable
    {
        public NetworkStream Stream { get; } = new(socket, ownsSocket: true);
        public FrameReader Reader => _reader ??= new FrameReader(Stream);
        public FrameWriter Writer => _writer ??= new FrameWriter(Stream);
        private FrameReader? _reader;
        private FrameWriter? _writer;

        public Task<HandshakeResult> HandshakeAsync(PreSharedKey key, long bytes = MemoryBytes) =>
            Handshake.RunSenderAsync(Reader, Writer, new SenderHandshakeOptions(Layout(bytes), PageHashAlgorithm.PageHasher, HelloOptions.ZeroPages), key, Ct);

        /// <summary>A Ping, and its Pong's echo: the receiver has handled every frame sent before it.</summary>
        public async Task<ulong> PingAsync(ulong timestampNs)
        {
            await Writer.WriteAsync(new Ping(timestampNs), Ct);
            return (await Reader.ReadExpectedAsync<Pong>(Ct)).TimestampEchoNs;
        }

        /// <summary>The next frame must be the receiver's Abort; after it the receiver closes the connection.</summary>
        public async Task<Abort> ReadAbortThenEndAsync()
        {
            Abort abort = await Reader.ReadExpectedAsync<Abort>(Ct).AsTask().WaitAsync(TimeSpan.FromSeconds(10), Ct);
            var end = await Assert.ThrowsAnyAsync<ProtocolException>(async () => await Reader.ReadHeaderAsync(Ct));
            // closed: FIN, or a reset when the receiver left bytes of ours unread in its buffer
            Assert.True(end.Error is ProtocolError.PeerClosed or ProtocolError.ConnectionFailed, $"expected the connection closed, got {end.Error}: {end.Message}");
            return abort;
        }

        public void Dispose() => Stream.Dispose();
    }

    private static async Task<(Task<ReceiveResult> Receive, Sender Sender)> StartAsync(PreSharedKey key, CancellationToken receiverToken,
        Func<MemoryLayout, IMigrationTarget> createTarget, ReceiverOptions? options = null)
    {
        (Socket client, Socket server) = await LoopbackPairAsync();
        Task<ReceiveResult> receive = Task.Run(async () =>
        {
            using (server)
                return await PresyncReceiver.RunAsync(server, key, createTarget, options, receiverToken);
        }, Ct);
        return (receive, new Sender(client));
    }

    private static byte[] ZeroMemoryDigest(long bytes = MemoryBytes) => MemoryDigestOf(new byte[bytes / PageSize][]);

    /// <summary>The flat digest of memory holding <paramref name="pages"/> (a null page is all zero).</summary>
    private static byte[] MemoryDigestOf(byte[]?[] pages)
    {
        var digest = new MemoryDigest(pages.Length, PageSize);
        for (int p = 0; p < pages.Length; p++) digest.SetPage(p, pages[p] is { } c ? PageHasher.Hash(c, out _) : PageHasher.ZeroPageHash(PageSize));
        return digest.Compute();
    }

    private static void AssertFailed(ReceiveResult result, ReceiverPhase failedIn, AbortReason? abortSent, string failureContains)
    {
        Assert.False(result.Resumed);
        Assert.False(result.Verified);
        Assert.Equal(failedIn, result.FailedIn);
        Assert.Equal(abortSent, result.AbortSent);
        Assert.NotNull(result.Failure);
        Assert.Contains(failureContains, result.Failure);
        Assert.Contains("not resumed", result.Failure);
    }

    [Fact]
    public async Task A_target_factory_that_throws_is_answered_with_an_Abort()
    {
        using var key = MigrationHarness.Key();
        int factoryCalls = 0;
        (Task<ReceiveResult> receive, Sender sender) = await StartAsync(key, Ct, _ =>
        {
            factoryCalls++;
            throw new IOException("/dev/kvm: no space left for another VM");
        });
        using (sender)
        {
            await sender.HandshakeAsync(key); // authentication succeeds: the factory runs only after it
            Abort abort = await sender.ReadAbortThenEndAsync();
            Assert.Equal(AbortReason.ReceiverFailure, abort.Reason);
            Assert.Contains("could not create the destination", abort.Message);
            Assert.Contains("/dev/kvm: no space left for another VM", abort.Message);

            ReceiveResult result = await receive.WaitAsync(TimeSpan.FromSeconds(10), Ct);
            AssertFailed(result, ReceiverPhase.AwaitAuthProof, AbortReason.ReceiverFailure, "/dev/kvm: no space left for another VM");
            Assert.Equal(1, factoryCalls);
        }
    }

    [Fact]
    public async Task A_target_whose_memory_does_not_match_the_layout_is_released_and_the_sender_told()
    {
        using var key = MigrationHarness.Key();
        TestTarget? target = null;
        (Task<ReceiveResult> receive, Sender sender) = await StartAsync(key, Ct, _ => target = new TestTarget(MemoryBytes / 2));
        using (sender)
        {
            await sender.HandshakeAsync(key);
            Abort abort = await sender.ReadAbortThenEndAsync();
            Assert.Equal(AbortReason.ReceiverFailure, abort.Reason);
            Assert.Contains("does not match the announced layout", abort.Message);

            ReceiveResult result = await receive.WaitAsync(TimeSpan.FromSeconds(10), Ct);
            AssertFailed(result, ReceiverPhase.AwaitAuthProof, AbortReason.ReceiverFailure, "does not match the announced layout");
            Assert.NotNull(target);
            Assert.True(target!.Disposed);
            Assert.Equal(0, target.ResumeCalls);
        }
    }

    [Fact]
    public async Task An_unexpected_exception_type_from_the_target_becomes_an_Abort()
    {
        using var key = MigrationHarness.Key();
        TestTarget? target = null;
        (Task<ReceiveResult> receive, Sender sender) = await StartAsync(key, Ct, _ => target = new TestTarget(MemoryBytes)
        {
            MemoryGetter = () => throw new InvalidCastException("Unable to cast object of type 'Slot' to type 'GuestRegion'"),
        });
        using (sender)
        {
            await sender.HandshakeAsync(key);
            Abort abort = await sender.ReadAbortThenEndAsync();
            Assert.Equal(AbortReason.ReceiverFailure, abort.Reason);
            Assert.Contains("InvalidCastException", abort.Message);
            Assert.Contains("Unable to cast object of type 'Slot'", abort.Message);

            ReceiveResult result = await receive.WaitAsync(TimeSpan.FromSeconds(10), Ct);
            AssertFailed(result, ReceiverPhase.AwaitAuthProof, AbortReason.ReceiverFailure, "InvalidCastException");
            Assert.True(target!.Disposed);
        }
    }

    [Fact]
    public async Task A_target_whose_Resume_throws_is_released_and_the_sender_told()
    {
        using var key = MigrationHarness.Key();
        TestTarget? target = null;
        (Task<ReceiveResult> receive, Sender sender) = await StartAsync(key, Ct, _ => target = new TestTarget(MemoryBytes)
        {
            OnResume = () => throw new ArgumentOutOfRangeException("deviceState", "vCPU count 0 is out of range"),
        });
        using (sender)
        {
            await sender.HandshakeAsync(key);
            await sender.Writer.WriteAsync(new Launch(1, 0, 1), Ct);
            await sender.Writer.WriteAsync(new FinalState((ulong)(MemoryBytes / PageSize), 2, ZeroMemoryDigest(), new byte[] { 1, 2, 3 }), Ct);
            Abort abort = await sender.ReadAbortThenEndAsync();
            Assert.Equal(AbortReason.ReceiverFailure, abort.Reason);
            Assert.Contains("could not resume the guest", abort.Message);
            Assert.Contains("vCPU count 0 is out of range", abort.Message);

            ReceiveResult result = await receive.WaitAsync(TimeSpan.FromSeconds(10), Ct);
            AssertFailed(result, ReceiverPhase.Verifying, AbortReason.ReceiverFailure, "could not resume the guest");
            Assert.Equal(1, target!.ResumeCalls); // the digest verified, so Resume was tried
            Assert.True(target.Disposed);
        }
    }

    [Fact]
    public async Task Memory_that_does_not_verify_is_never_resumed()
    {
        using var key = MigrationHarness.Key();
        TestTarget? target = null;
        (Task<ReceiveResult> receive, Sender sender) = await StartAsync(key, Ct, _ => target = new TestTarget(MemoryBytes));
        using (sender)
        {
            await sender.HandshakeAsync(key);
            await sender.Writer.WriteAsync(new Launch(1, 0, 1), Ct);
            byte[] wrong = ZeroMemoryDigest();
            wrong[0] ^= 1;
            await sender.Writer.WriteAsync(new FinalState((ulong)(MemoryBytes / PageSize), 2, wrong, new byte[] { 1 }), Ct);
            Abort abort = await sender.ReadAbortThenEndAsync();
            Assert.Equal(AbortReason.DigestMismatch, abort.Reason);

            ReceiveResult result = await receive.WaitAsync(TimeSpan.FromSeconds(10), Ct);
            AssertFailed(result, ReceiverPhase.Verifying, AbortReason.DigestMismatch, "memory digest mismatch");
            Assert.Equal(0, target!.ResumeCalls);
            Assert.True(target.Disposed);
        }
    }

    /// <summary>The real write tracker of the destination's memory, and how many pages each of its scans reported.</summary>
    private sealed class CountingTracker(GuestMemoryWriteTracker tracker) : IDirtyPageSource, IDisposable
    {
        public System.Collections.Concurrent.ConcurrentQueue<long> Scans { get; } = new();
        public long PageCount => tracker.PageCount;
        public int PageSize => tracker.PageSize;
        public DirtyHarvest Harvest(DirtyBitmap into)
        {
            DirtyHarvest h = tracker.Harvest(into);
            Scans.Enqueue(h.DirtyPages);
            return h;
        }
        public void Dispose() => tracker.Dispose();
    }

    [Fact]
    public async Task After_Launch_live_rounds_are_rehashed_when_the_next_begins_once_that_pays_and_a_page_changed_after_that_is_still_refused()
    {
        ProcessTrackingRequirement.SkipUnlessAvailable();
        using var key = MigrationHarness.Key();
        TestTarget? target = null;
        CountingTracker? tracker = null;
        var options = new ReceiverOptions { TrackWrites = memory => tracker = new CountingTracker(GuestMemoryWriteTracker.Track(memory)) };
        (Task<ReceiveResult> receive, Sender sender) = await StartAsync(key, Ct, _ => target = new TestTarget(MemoryBytes), options);
        using (sender)
        {
            await sender.HandshakeAsync(key);
            long pages = MemoryBytes / PageSize;
            var content = new byte[]?[pages];
            await sender.Writer.WriteAsync(new Launch(5, 74, 1), Ct);
            await SendPagesAsync(round: 5, first: 100, count: 2); // the first live round: 2 pages, less than a scan costs (256 / 64)
            await SendPagesAsync(round: 6, first: 0, count: 64);  // its first batch ends round 5: too little to re-hash yet
            await sender.PingAsync(2); // every batch before it was applied
            Assert.NotNull(tracker);
            Assert.Empty(tracker.Scans); // no RoundEnd came, and round 5 alone did not pay for a scan
            await SendPagesAsync(round: 7, first: 64, count: 8);  // ends round 6: rounds 5 and 6 re-hashed now
            await sender.PingAsync(2); // every batch before it was applied
            Assert.Equal(66, Assert.Single(tracker.Scans));

            target!.Memory.Page(3)[100] ^= 0x01; // a stray write on the destination after its round was re-hashed
            await sender.Writer.WriteAsync(new FinalState((ulong)pages, 3, MemoryDigestOf(content), new byte[] { 1 }), Ct);
            Abort abort = await sender.ReadAbortThenEndAsync();
            Assert.Equal(AbortReason.DigestMismatch, abort.Reason);

            ReceiveResult result = await receive.WaitAsync(TimeSpan.FromSeconds(10), Ct);
            AssertFailed(result, ReceiverPhase.Verifying, AbortReason.DigestMismatch, "memory digest mismatch");
            Assert.Equal(0, target.ResumeCalls);
            Assert.Equal(8 + 1, tracker.Scans.Last()); // the switchover's scan: round 7's pages and the changed one, not the earlier rounds' again

            async Task SendPagesAsync(ulong round, long first, int count)
            {
                var descriptors = new PageDescriptor[count];
                var payloads = new ReadOnlyMemory<byte>[count];
                for (int i = 0; i < count; i++)
                {
                    long page = first + i;
                    content[page] = RandomKey(PageSize);
                    descriptors[i] = new PageDescriptor((ulong)page, PageKind.Full, PageHasher.Hash(content[page], out _));
                    payloads[i] = content[page];
                }
                await sender.Writer.WritePageBatchAsync(round, descriptors, payloads, Ct);
            }
        }
    }

    public static TheoryData<string, byte[][], string> OutOfOrderHandshakes() => new()
    {
        { "PageBatch before Hello", [Frame(FrameType.PageBatch, new byte[16])], "PageBatch frame before the handshake" },
        { "RoundEnd before Hello", [Frame(FrameType.RoundEnd, new byte[RoundEnd.Length])], "a RoundEnd frame is not allowed while the receiver is in phase AwaitHello" },
        { "AuthProof before Hello", [Frame(FrameType.AuthProof, new byte[AuthProof.Length])], "a AuthProof frame is not allowed while the receiver is in phase AwaitHello" },
        { "FinalState right after Hello", [HelloFrame(), Frame(FrameType.FinalState, new byte[FinalState.FixedLength])],
            "a FinalState frame is not allowed while the receiver is in phase AwaitAuthProof" },
        { "a second Hello", [HelloFrame(), HelloFrame()], "a Hello frame is not allowed while the receiver is in phase AwaitAuthProof" },
        { "Launch instead of the proof", [HelloFrame(), Frame(FrameType.Launch, new byte[Launch.Length])],
            "a Launch frame is not allowed while the receiver is in phase AwaitAuthProof" },
    };

    private static byte[] HelloFrame() =>
        Frame(FrameType.Hello, Encode(new Hello(ProtocolVersion.Current, Layout(), PageHashAlgorithm.PageHasher, HelloOptions.ZeroPages, RandomKey(32))));

    [Theory]
    [MemberData(nameof(OutOfOrderHandshakes))]
    public async Task Frames_out_of_order_during_the_handshake_are_refused_with_an_Abort(string name, byte[][] frames, string refusal)
    {
        using var key = MigrationHarness.Key();
        bool targetCreated = false;
        (Task<ReceiveResult> receive, Sender sender) = await StartAsync(key, Ct, layout => { targetCreated = true; return new TestTarget((long)layout.TotalBytes); });
        using (sender)
        {
            foreach (byte[] frame in frames) await sender.Stream.WriteAsync(frame, Ct);
            bool helloSent = frames[0].AsSpan(0, 4).SequenceEqual(BitConverter.GetBytes((uint)FrameType.Hello));
            if (helloSent) await sender.Reader.ReadExpectedAsync<HelloAck>(Ct); // the first Hello was answered
            Abort abort = await sender.ReadAbortThenEndAsync();
            Assert.Equal(AbortReason.ProtocolViolation, abort.Reason);
            Assert.Contains(refusal, abort.Message);

            ReceiveResult result = await receive.WaitAsync(TimeSpan.FromSeconds(10), Ct);
            AssertFailed(result, helloSent ? ReceiverPhase.AwaitAuthProof : ReceiverPhase.AwaitHello, AbortReason.ProtocolViolation, refusal);
            Assert.False(targetCreated, $"{name}: the target was created before authentication");
        }
    }

    [Fact]
    public async Task A_sender_Abort_during_the_handshake_is_not_answered()
    {
        using var key = MigrationHarness.Key();
        (Task<ReceiveResult> receive, Sender sender) = await StartAsync(key, Ct, layout => new TestTarget((long)layout.TotalBytes));
        using (sender)
        {
            await sender.Stream.WriteAsync(HelloFrame(), Ct);
            await sender.Reader.ReadExpectedAsync<HelloAck>(Ct);
            await sender.Writer.WriteAsync(new Abort(AbortReason.SenderFailure, "source VM stopped"), Ct);
            ReceiveResult result = await receive.WaitAsync(TimeSpan.FromSeconds(10), Ct);
            AssertFailed(result, ReceiverPhase.AwaitAuthProof, null, "source VM stopped");
            var end = await Assert.ThrowsAnyAsync<ProtocolException>(async () => await sender.Reader.ReadHeaderAsync(Ct));
            Assert.Equal(ProtocolError.PeerClosed, end.Error); // closed, with no Abort sent back
        }
    }

    [Fact]
    public async Task Cancellation_aborts_cleanly_and_releases_the_target()
    {
        using var key = MigrationHarness.Key();
        using var cancel = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        TestTarget? target = null;
        (Task<ReceiveResult> receive, Sender sender) = await StartAsync(key, cancel.Token, _ => target = new TestTarget(MemoryBytes));
        using (sender)
        {
            await sender.HandshakeAsync(key);
            await sender.Writer.WriteAsync(new Launch(1, 0, 1), Ct); // now waiting in Final for the last delta
            Assert.Equal(7UL, await sender.PingAsync(7)); // the receiver is past Launch
            await cancel.CancelAsync();
            Abort abort = await sender.ReadAbortThenEndAsync();
            Assert.Equal(AbortReason.Cancelled, abort.Reason);

            ReceiveResult result = await receive.WaitAsync(TimeSpan.FromSeconds(10), Ct);
            AssertFailed(result, ReceiverPhase.Final, AbortReason.Cancelled, "cancelled");
            Assert.True(result.Cancelled);
            Assert.True(target!.Disposed);
            Assert.Equal(0, target.ResumeCalls);
        }
    }
}
