using System.IO.Hashing;
using System.Net.Sockets;
using System.Security.Cryptography;
using KvmPresync.Wire;
using static KvmPresync.Tests.Wire.WireTestSupport;

namespace KvmPresync.Tests.Wire;

/// <summary>
/// A whole migration conversation over loopback with the codec alone (guest memory = arrays), one receiver gate
/// from the first frame: handshake,
/// two sync rounds with acks, launch, final pages, FinalState, Resumed. Shows the API the sender and receiver
/// state machines build on, and checks the receiver ends with the sender's memory.
/// </summary>
public sealed class ConversationTests
{
    private static byte[] Digest(byte[] memory)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        for (int offset = 0; offset < memory.Length; offset += PageSize)
            sha.AppendData(BitConverter.GetBytes(XxHash3.HashToUInt64(memory.AsSpan(offset, PageSize))));
        return sha.GetHashAndReset();
    }

    [Fact]
    public async Task Sync_rounds_launch_and_resume_leave_the_receiver_with_the_senders_memory()
    {
        MemoryLayout layout = TwoSlotLayout(); // pages 0..63 and 256..271, linear 0..79
        byte[] source = new byte[layout.TotalPages * PageSize];
        Random.Shared.NextBytes(source);
        source.AsSpan(5 * PageSize, PageSize).Clear(); // a zero page
        byte[] destination = new byte[source.Length];
        destination.AsSpan().Fill(0xEE);
        byte[] keyBytes = RandomKey();

        (Socket client, Socket server) = await LoopbackPairAsync();
        await using var senderStream = new NetworkStream(client, ownsSocket: true);
        await using var receiverStream = new NetworkStream(server, ownsSocket: true);

        Task receiver = Task.Run(async () =>
        {
            using var key = new PreSharedKey(keyBytes);
            var reader = new FrameReader(receiverStream);
            var writer = new FrameWriter(receiverStream);
            // One gate from the first byte: the handshake frames pass it like every other frame.
            var gate = new ReceiverFrameGate();
            AcceptedHello? hello = null;
            HandshakeResult? session = null;
            ulong pagesThisRound = 0;
            long bytesAtRoundStart = reader.BytesRead;
            while (gate.Phase != ReceiverPhase.Done)
            {
                FrameHeader header = await reader.ReadHeaderAsync(Ct);
                gate.Accept(header.Type);
                switch (header.Type)
                {
                    case FrameType.Hello:
                        hello = await Handshake.AnswerHelloAsync(reader, writer, header, new ReceiverHandshakeOptions(), key, Ct);
                        break;
                    case FrameType.AuthProof:
                        session = await Handshake.VerifyAuthProofAsync(reader, writer, header, hello!, key, Ct);
                        break;
                    case FrameType.PageBatch:
                        PageBatch batch = await reader.ReadPageBatchAsync(header, Ct);
                        for (int i = 0; i < batch.Descriptors.Length; i++)
                        {
                            PageDescriptor d = batch.Descriptors.Span[i];
                            Span<byte> target = destination.AsSpan((int)session!.Layout.Locate(d.PageNumber).LinearIndex * PageSize, PageSize);
                            if (d.Kind == PageKind.Full) reader.ReadPayload(target);       // straight into "guest memory"
                            else if (d.Kind == PageKind.Zero) target.Clear();
                            pagesThisRound++;
                        }
                        break;
                    case FrameType.RoundEnd:
                        RoundEnd end = await reader.ReadBodyAsync<RoundEnd>(header, Ct);
                        await writer.WriteAsync(new Ack(end.RoundId, (ulong)(reader.BytesRead - bytesAtRoundStart), pagesThisRound, end.SenderTimestampNs, 1), Ct);
                        pagesThisRound = 0;
                        bytesAtRoundStart = reader.BytesRead;
                        break;
                    case FrameType.Launch:
                        await reader.ReadBodyAsync<Launch>(header, Ct);
                        break;
                    case FrameType.FinalState:
                        FinalState final = await reader.ReadBodyAsync<FinalState>(header, Ct);
                        if (!final.MemoryDigest.Span.SequenceEqual(Digest(destination)))
                        {
                            await writer.WriteAsync(new Abort(AbortReason.DigestMismatch, "memory digest differs"), Ct);
                            gate.MarkAborted();
                            return;
                        }
                        await writer.WriteAsync(new Resumed(final.SenderTimestampNs, 2), Ct);
                        gate.MarkResumed();
                        break;
                    default:
                        throw new InvalidOperationException($"unexpected {header.Type}");
                }
            }
        }, Ct);

        using var senderKey = new PreSharedKey(keyBytes);
        var sReader = new FrameReader(senderStream);
        var sWriter = new FrameWriter(senderStream);
        await Handshake.RunSenderAsync(sReader, sWriter, new SenderHandshakeOptions(layout, PageHashAlgorithm.XxHash3, HelloOptions.All), senderKey, Ct);

        async Task SendPages(ulong round, IEnumerable<long> linearPages)
        {
            var descriptors = new List<PageDescriptor>();
            var payloads = new List<ReadOnlyMemory<byte>>();
            foreach (long linear in linearPages)
            {
                ReadOnlyMemory<byte> page = source.AsMemory((int)linear * PageSize, PageSize);
                bool zero = page.Span.IndexOfAnyExcept((byte)0) < 0;
                descriptors.Add(new PageDescriptor(layout.PageNumberOfLinearIndex(linear), zero ? PageKind.Zero : PageKind.Full, XxHash3.HashToUInt64(page.Span)));
                if (!zero) payloads.Add(page); // a view into "guest memory", not a copy
            }
            await sWriter.WritePageBatchAsync(round, descriptors.ToArray(), payloads, Ct);
        }

        // Round 1: everything. Round 2: the guest "dirtied" a few pages.
        await SendPages(1, Enumerable.Range(0, 80).Select(i => (long)i));
        await sWriter.WriteAsync(new RoundEnd(1, 80, 80, 0, 1 << 20, 111), Ct);
        Ack ack1 = await sReader.ReadExpectedAsync<Ack>(Ct);
        Assert.Equal(80UL, ack1.PagesApplied);
        Assert.Equal(111UL, ack1.SenderTimestampEchoNs);

        foreach (int p in new[] { 3, 70 }) Random.Shared.NextBytes(source.AsSpan(p * PageSize, PageSize));
        await SendPages(2, [3]);
        await sWriter.WriteAsync(new RoundEnd(2, 2, 1, 1, 1 << 20, 222), Ct);
        Assert.Equal(1UL, (await sReader.ReadExpectedAsync<Ack>(Ct)).PagesApplied);

        // Launch: the held-back page 70 goes in the final round, then state + digest.
        await sWriter.WriteAsync(new Launch(3, 1, 333), Ct);
        await SendPages(3, [70]);
        await sWriter.WriteAsync(new FinalState((ulong)layout.TotalPages, 444, Digest(source), new byte[] { 1, 2, 3 }), Ct);
        Resumed resumed = await sReader.ReadExpectedAsync<Resumed>(Ct);
        await receiver;

        Assert.Equal(444UL, resumed.SenderTimestampEchoNs);
        Assert.Equal(source, destination);
    }
}
