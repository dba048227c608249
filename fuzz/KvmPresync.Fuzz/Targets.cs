using System.Buffers;
using KvmPresync.Migration;
using KvmPresync.Wire;

namespace KvmPresync.Fuzz;

/// <summary>
/// The fuzz targets. Each takes the whole input and returns normally for every input the code under test handles
/// as designed (a <see cref="ProtocolException"/> or a failed <see cref="ReceiveResult"/> is a correct rejection);
/// anything else escapes and is a crash. Deterministic: in-memory streams, a fixed key and nonce, no clocks, no sleeps.
/// </summary>
public static class Targets
{
    private static readonly PreSharedKey Key = new(FuzzSession.KeyBytes());
    private static CanaryTarget? _target;

    /// <summary>The receiver target's last outcome (printed by <c>run</c>).</summary>
    public static ReceiveResult? LastReceive { get; private set; }

    public static Action<byte[]> Get(string name) => name switch
    {
        "frames" => Frames,
        "handshake" => HandshakeReceiver,
        "receiver" => Receiver,
        "selftest" => SelfTest,
        _ => throw new ArgumentException($"unknown fuzz target '{name}' (frames, handshake, receiver)"),
    };

    /// <summary>
    /// FrameReader over arbitrary bytes, bound to <see cref="FuzzSession.Layout"/> (so PageBatch parses) until a
    /// Hello announces another layout: every header, every body type, PageBatch descriptors and payloads (read
    /// synchronously, asynchronously or skipped, in turn).
    /// </summary>
    public static void Frames(byte[] input)
    {
        var reader = new FrameReader(new MemoryStream(input, writable: false));
        reader.UseSession(FuzzSession.Layout, HelloOptions.All);
        try
        {
            ReadFrames(reader, maxFrames: 1024);
        }
        catch (ProtocolException)
        {
        }
    }

    /// <summary>
    /// The receiver side of the handshake (<see cref="Handshake.RunReceiverAsync"/>: gate, AnswerHello,
    /// VerifyAuthProof) over arbitrary bytes; if a seed's valid Hello + AuthProof prefix survives, the frames after it
    /// are read with the negotiated session.
    /// </summary>
    public static void HandshakeReceiver(byte[] input)
    {
        var reader = new FrameReader(new MemoryStream(input, writable: false));
        var writer = new FrameWriter(new DiscardWriter());
        var options = new ReceiverHandshakeOptions
        {
            SupportedOptions = HelloOptions.ZeroPages,
            NonceSource = FuzzSession.ReceiverNonce,
            ValidateLayout = l => l.TotalBytes > 1UL << 20 ? "too large for the fuzz receiver" : null,
        };
        try
        {
            HandshakeResult session = Handshake.RunReceiverAsync(reader, writer, options, Key).GetAwaiter().GetResult();
            if (reader.Layout != session.Layout) throw new FuzzFinding("the handshake returned without binding the session to the reader");
            ReadFrames(reader, maxFrames: 1024);
        }
        catch (ProtocolException)
        {
        }
    }

    /// <summary>
    /// The whole receiver state machine (<see cref="PresyncReceiver"/> over a stream) into a <see cref="CanaryTarget"/>.
    /// Checks: it returns (never throws); a failure is a rejection the receiver meant (no "unexpected" exception, no
    /// transport error from an in-memory stream) and was answered with an Abort unless the sender aborted; the target was
    /// created at most once and released on failure; a resume only after verification; canaries intact.
    /// </summary>
    public static void Receiver(byte[] input)
    {
        CanaryTarget target = _target ??= new CanaryTarget();
        target.Reset();
        ReceiveResult result = PresyncReceiver.RunAsync(new MemoryStream(input, writable: false), new DiscardWriter(), Key,
            layout => { target.Created++; return target; },
            new ReceiverOptions { MaxMemoryBytes = 1L << 20, HandshakeNonce = FuzzSession.ReceiverNonce }).GetAwaiter().GetResult();
        LastReceive = result;
        target.CheckCanaries();
        CheckResult(result, target);
    }

    /// <summary>Proves the pipeline reports crashes: throws for an input that starts with "CRASH" (not part of <c>make fuzz</c>).</summary>
    public static void SelfTest(byte[] input)
    {
        if (input.AsSpan().StartsWith("CRASH"u8)) throw new FuzzFinding("selftest: an exception escaped, as asked");
    }

    /// <summary>The receiver's post-run invariants (shared with the property tests' wording).</summary>
    public static void CheckResult(ReceiveResult result, CanaryTarget target)
    {
        if (target.Created > 1) throw new FuzzFinding($"the target was created {target.Created} times");
        if (result.Resumed)
        {
            if (!result.Verified) throw new FuzzFinding("resumed without verifying the digest");
            if (target.Resumes != 1) throw new FuzzFinding($"Resumed reported, target resumed {target.Resumes} times");
            return;
        }
        string failure = result.Failure ?? throw new FuzzFinding("a failed receive without a failure text");
        if (failure.StartsWith("receiver failure: unexpected", StringComparison.Ordinal) || failure.StartsWith("connection failed", StringComparison.Ordinal))
            throw new FuzzFinding("not a protocol rejection: " + failure);
        if (result.AbortSent is null && !failure.StartsWith("the sender aborted", StringComparison.Ordinal))
            throw new FuzzFinding("rejected without an Abort: " + failure);
        if (target.Resumes != 0) throw new FuzzFinding("the target was resumed on a failed receive");
        if (target.Created != target.Disposals) throw new FuzzFinding($"target created {target.Created}×, released {target.Disposals}×");
    }

    /// <summary>Reads up to <paramref name="maxFrames"/> frames, decoding every body type, until the stream ends (a ProtocolException).</summary>
    public static void ReadFrames(FrameReader reader, int maxFrames)
    {
        for (int i = 0; i < maxFrames; i++)
        {
            FrameHeader h = Sync(reader.ReadHeaderAsync());
            switch (h.Type)
            {
                case FrameType.Hello:
                    Hello hello = Sync(reader.ReadBodyAsync<Hello>(h));
                    reader.UseSession(hello.Layout, hello.Options); // later PageBatches are checked against the announced layout
                    break;
                case FrameType.HelloAck: Sync(reader.ReadBodyAsync<HelloAck>(h)); break;
                case FrameType.AuthProof: Sync(reader.ReadBodyAsync<AuthProof>(h)); break;
                case FrameType.AuthOk: Sync(reader.ReadBodyAsync<AuthOk>(h)); break;
                case FrameType.RoundEnd: Sync(reader.ReadBodyAsync<RoundEnd>(h)); break;
                case FrameType.Ack: Sync(reader.ReadBodyAsync<Ack>(h)); break;
                case FrameType.Launch: Sync(reader.ReadBodyAsync<Launch>(h)); break;
                case FrameType.FinalState: Sync(reader.ReadBodyAsync<FinalState>(h)); break;
                case FrameType.Resumed: Sync(reader.ReadBodyAsync<Resumed>(h)); break;
                case FrameType.Abort: Sync(reader.ReadBodyAsync<Abort>(h)); break;
                case FrameType.Ping: Sync(reader.ReadBodyAsync<Ping>(h)); break;
                case FrameType.Pong: Sync(reader.ReadBodyAsync<Pong>(h)); break;
                case FrameType.SessionStart: Sync(reader.ReadBodyAsync<SessionStart>(h)); break;
                case FrameType.SessionState: Sync(reader.ReadBodyAsync<SessionState>(h)); break;
                case FrameType.PageHashes: Sync(reader.ReadBodyAsync<PageHashes>(h)); break;
                case FrameType.DestinationReady: Sync(reader.ReadBodyAsync<DestinationReady>(h)); break;
                case FrameType.StreamSetup: Sync(reader.ReadBodyAsync<StreamSetup>(h)); break;
                case FrameType.StreamJoin: Sync(reader.ReadBodyAsync<StreamJoin>(h)); break;
                case FrameType.StreamMark: Sync(reader.ReadBodyAsync<StreamMark>(h)); break;
                case FrameType.PageBatch: ReadPageBatch(reader, h); break;
                default: throw new FuzzFinding($"ReadHeaderAsync accepted frame type {(uint)h.Type}");
            }
        }
    }

    private static void ReadPageBatch(FrameReader reader, FrameHeader h)
    {
        PageBatch batch = Sync(reader.ReadPageBatchAsync(h));
        MemoryLayout layout = reader.Layout!;
        foreach (PageDescriptor d in batch.Descriptors.Span)
            if (!layout.TryLocate(d.PageNumber, out _)) throw new FuzzFinding($"ReadPageBatchAsync accepted page {d.PageNumber} outside {layout}");
        int pageSize = layout.PageSize;
        byte[] page = ArrayPool<byte>.Shared.Rent(pageSize + 64);
        try
        {
            page.AsSpan(pageSize, 64).Fill(0xCC); // guard behind the page-sized destination
            for (int k = 0; k < batch.FullPages; k++)
            {
                switch (k % 3)
                {
                    case 0: reader.ReadPayload(page.AsSpan(0, pageSize)); break;
                    case 1: Sync(reader.ReadPayloadAsync(page.AsMemory(0, pageSize))); break;
                    default: Sync(reader.SkipPayloadAsync()); break;
                }
                if (page.AsSpan(pageSize, 64).IndexOfAnyExcept((byte)0xCC) >= 0) throw new FuzzFinding("a payload read wrote past its page");
            }
            if (reader.PayloadsRemaining != 0) throw new FuzzFinding($"{reader.PayloadsRemaining} payloads left after reading FullPages");
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(page);
        }
    }

    private static T Sync<T>(ValueTask<T> task) => task.IsCompletedSuccessfully ? task.Result : task.AsTask().GetAwaiter().GetResult();

    private static void Sync(ValueTask task)
    {
        if (task.IsCompletedSuccessfully) return;
        task.AsTask().GetAwaiter().GetResult();
    }
}
