using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using CsCheck;
using KvmPresync.Fuzz;
using KvmPresync.Migration;
using KvmPresync.Wire;

namespace KvmPresync.Tests.Wire;

/// <summary>
/// Properties over everything that parses peer input (docs/RELIABILITY.md), with CsCheck: random frame sequences and
/// mutations of the recorded sender streams in fuzz/corpus/receiver (bit flips, byte overwrites, truncation, length
/// fields changed, frames duplicated, swapped or dropped), fed to the <see cref="FrameReader"/> and to the whole
/// receiver (<see cref="PresyncReceiver"/> over a stream, with the fuzz harness's fixed key and nonce, so the recorded
/// streams authenticate). (a) only a <see cref="ProtocolException"/> leaves the reader; the receiver never throws and
/// answers every stream it rejects with a failed result and an Abort; (b) nothing is written outside the announced
/// layout (canary blocks around the destination) and pages no valid descriptor names stay zero; (c) no allocation is
/// sized by an unchecked peer length. Iterations: 8000 mutated receiver runs, 20000 mutated and 20000 random reader runs; the class takes a few seconds.
/// </summary>
[Collection(nameof(KvmPresync.Tests.ZeroCopy.ProcessAllocationCollection))]
public sealed class ProtocolPropertyTests
{
    private static readonly byte[][] Recorded = Directory.GetFiles(CorpusDirectory("receiver"), "*.bin").Order().Select(File.ReadAllBytes).ToArray();
    private static readonly PreSharedKey Key = new(FuzzSession.KeyBytes());
    private static readonly CanaryTarget Target = new();
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static string CorpusDirectory(string target, [CallerFilePath] string here = "") =>
        Path.GetFullPath(Path.Combine(Path.GetDirectoryName(here)!, "..", "..", "..", "fuzz", "corpus", target));

    // ---- mutations of recorded streams ------------------------------------------------------------------------

    /// <summary>One mutation; <see cref="Kind"/> picks the operator, A/B/C its operands (reduced modulo the input).</summary>
    public readonly record struct Mutation(int Kind, int A, int B, ulong C)
    {
        public override string ToString() => Kind switch
        {
            0 => $"flip bit {A}", 1 => $"truncate at {A}", 2 => $"length of frame {A} ({B % 4}, {C})", 3 => $"duplicate frame {A}",
            4 => $"swap frames {A},{B}", 5 => $"drop frame {A}", _ => $"byte {A} := {(byte)C}",
        };
    }

    private static readonly Gen<Mutation> GenMutation = Gen.Select(Gen.Int[0, 6], Gen.Int[0, int.MaxValue], Gen.Int[0, int.MaxValue], Gen.ULong,
        (k, a, b, c) => new Mutation(k, a, b, c));

    private static readonly Gen<(int Seed, Mutation[] Mutations)> GenMutated = Gen.Select(Gen.Int[0, Recorded.Length - 1], GenMutation.Array[1, 3]);

    /// <summary>Frames of <paramref name="stream"/> as far as their headers' lengths fit; the rest as one trailing chunk.</summary>
    private static List<byte[]> Chunks(byte[] stream)
    {
        var chunks = new List<byte[]>();
        int at = 0;
        while (at + FrameHeader.Size <= stream.Length)
        {
            ulong body = BinaryPrimitives.ReadUInt64LittleEndian(stream.AsSpan(at + 8));
            if (body > (ulong)(stream.Length - at - FrameHeader.Size)) break;
            int length = FrameHeader.Size + (int)body;
            chunks.Add(stream[at..(at + length)]);
            at += length;
        }
        if (at < stream.Length) chunks.Add(stream[at..]);
        return chunks;
    }

    /// <summary>True when the stream holds a whole FinalState frame (header and the body its length announces).</summary>
    private static bool HasCompleteFinalState(byte[] stream) =>
        Chunks(stream).Any(f => f.Length >= FrameHeader.Size && BinaryPrimitives.ReadUInt32LittleEndian(f) == (uint)FrameType.FinalState
            && (ulong)f.Length == FrameHeader.Size + BinaryPrimitives.ReadUInt64LittleEndian(f.AsSpan(8)));

    public static byte[] Mutate(byte[] original, IEnumerable<Mutation> mutations)
    {
        byte[] s = original;
        foreach (Mutation m in mutations)
        {
            if (s.Length == 0) break;
            List<byte[]> frames = Chunks(s);
            int i = m.A % frames.Count, j = m.B % frames.Count;
            switch (m.Kind)
            {
                case 0: s = (byte[])s.Clone(); s[m.A % s.Length] ^= (byte)(1 << (m.B % 8)); continue;
                case 1: s = s[..(m.A % s.Length)]; continue;
                case 6: s = (byte[])s.Clone(); s[m.A % s.Length] = (byte)m.C; continue;
                case 2 when frames[i].Length >= FrameHeader.Size:
                    ulong old = BinaryPrimitives.ReadUInt64LittleEndian(frames[i].AsSpan(8));
                    ulong length = (m.B % 4) switch
                    {
                        0 => m.C,                                 // anything
                        1 => old + (m.C % 64) - 32,               // off by a little
                        2 => 1UL << (int)(m.C % 64),              // a power of two, up to 2^63
                        _ => m.C % 0x1_0000_0000,                 // a 32-bit length
                    };
                    frames[i] = (byte[])frames[i].Clone();
                    BinaryPrimitives.WriteUInt64LittleEndian(frames[i].AsSpan(8), length);
                    break;
                case 3: frames.Insert(i, frames[i]); break;
                case 4: (frames[i], frames[j]) = (frames[j], frames[i]); break;
                case 5 when frames.Count > 1: frames.RemoveAt(i); break;
            }
            s = frames.SelectMany(f => f).ToArray();
        }
        return s;
    }

    // ---- the receiver --------------------------------------------------------------------------------------------

    private sealed record Received(ReceiveResult Result, byte[] Output);

    private static Received Receive(byte[] input)
    {
        Target.Reset();
        var output = new MemoryStream();
        ReceiveResult result = PresyncReceiver.RunAsync(new MemoryStream(input, writable: false), new StreamGatherWriter(output), Key,
            layout => { Target.Created++; return Target; },
            new ReceiverOptions { MaxMemoryBytes = 1L << 20, HandshakeNonce = FuzzSession.ReceiverNonce }).GetAwaiter().GetResult();
        return new Received(result, output.ToArray());
    }

    /// <summary>The frame types the receiver answered with, in order (its answers are well-formed by construction).</summary>
    private static List<(FrameType Type, Abort? Abort)> Answers(byte[] output)
    {
        var reader = new FrameReader(new MemoryStream(output, writable: false));
        var answers = new List<(FrameType, Abort?)>();
        while (reader.BytesRead < output.Length)
        {
            FrameHeader h = reader.ReadHeaderAsync(Ct).AsTask().GetAwaiter().GetResult();
            if (h.Type == FrameType.Abort) answers.Add((h.Type, reader.ReadBodyAsync<Abort>(h, Ct).AsTask().GetAwaiter().GetResult()));
            else
            {
                reader.ReadRawBodyAsync(h, Ct).AsTask().GetAwaiter().GetResult();
                answers.Add((h.Type, null));
            }
        }
        return answers;
    }

    /// <summary>
    /// Linear indices of the pages named by a descriptor of some PageBatch that the reader validates, reading the
    /// stream past its handshake frames with the seeds' layout: the only pages the receiver may write (it stops at the
    /// first error, so it applies a prefix of these batches at most).
    /// </summary>
    /// <summary>Whether the stream opens with a Hello of minor ≥ 3 offering CompressedPages (the receiver then accepts it).</summary>
    private static bool OffersCompression(byte[] stream) =>
        stream.Length >= FrameHeader.Size + 20 && BinaryPrimitives.ReadUInt32LittleEndian(stream) == (uint)FrameType.Hello
        && BinaryPrimitives.ReadUInt16LittleEndian(stream.AsSpan(FrameHeader.Size + 6)) >= ProtocolVersion.CompressedPages.Minor
        && (BinaryPrimitives.ReadUInt32LittleEndian(stream.AsSpan(FrameHeader.Size + 16)) & (uint)HelloOptions.CompressedPages) != 0;

    private static HashSet<long> PagesNamedByValidDescriptors(byte[] stream)
    {
        var named = new HashSet<long>();
        var reader = new FrameReader(new MemoryStream(stream, writable: false));
        reader.UseSession(FuzzSession.Layout, HelloOptions.ZeroPages | (OffersCompression(stream) ? HelloOptions.CompressedPages : HelloOptions.None));
        try
        {
            for (int f = 0; f < 4096; f++)
            {
                FrameHeader h = reader.ReadHeaderAsync(Ct).AsTask().GetAwaiter().GetResult();
                if (h.Type != FrameType.PageBatch)
                {
                    reader.ReadRawBodyAsync(h, Ct).AsTask().GetAwaiter().GetResult();
                    continue;
                }
                PageBatch batch = reader.ReadPageBatchAsync(h, Ct).AsTask().GetAwaiter().GetResult();
                foreach (PageDescriptor d in batch.Descriptors.Span) named.Add(FuzzSession.Layout.Locate(d.PageNumber).LinearIndex);
                for (int k = 0; k < batch.FullPages; k++) reader.SkipPayloadAsync(Ct).AsTask().GetAwaiter().GetResult();
            }
        }
        catch (ProtocolException)
        {
        }
        return named;
    }

    [Fact]
    public void Every_recorded_stream_replays_to_a_verified_resume()
    {
        Assert.Equal(5, Recorded.Length); // three raw streams, and three-rounds with LZ4 and with zstd batches (1.3)
        foreach (byte[] stream in Recorded)
        {
            Received r = Receive(stream);
            Assert.True(r.Result.Resumed && r.Result.Verified, r.Result.Failure);
            Assert.Equal([FrameType.HelloAck, FrameType.AuthOk], Answers(r.Output).Take(2).Select(a => a.Type));
            Assert.Equal(FrameType.Resumed, Answers(r.Output)[^1].Type);
            Target.CheckCanaries();
        }
    }

    [Fact]
    public void Mutated_recorded_streams_are_refused_with_an_Abort_or_resume_verified_and_never_write_outside_the_layout()
    {
        GenMutated.Sample(t =>
        {
            (int seed, Mutation[] mutations) = t;
            byte[] stream = Mutate(Recorded[seed], mutations);
            Received r = Receive(stream); // (a) never throws: an exception here fails the property

            // (b) canaries around the destination untouched; pages no validated descriptor names are still zero
            Target.CheckCanaries();
            HashSet<long> named = PagesNamedByValidDescriptors(stream);
            for (long p = 0; p < Target.Memory.PageCount; p++)
                if (!named.Contains(p) && Target.Memory.Page(p).IndexOfAnyExcept((byte)0) >= 0)
                    throw new Exception($"page {p} was written but no valid descriptor names it");

            // (a) the outcome: a resume only after the digest verified; otherwise a protocol refusal answered with an Abort
            Targets.CheckResult(r.Result, Target);
            List<(FrameType Type, Abort? Abort)> answers = Answers(r.Output);
            if (r.Result.Resumed)
            {
                if (answers[^1].Type != FrameType.Resumed) throw new Exception("resumed without answering Resumed");
            }
            else if (r.Result.AbortSent is { } reason)
            {
                if (answers.Count == 0 || answers[^1].Abort?.Reason != reason)
                    throw new Exception($"AbortSent {reason}, but the last answer is {(answers.Count == 0 ? "nothing" : answers[^1].Type)}");
                if (answers.Any(a => a.Type == FrameType.Resumed)) throw new Exception("Resumed sent on a failed receive");
            }
            // A stream cut before any complete FinalState frame can never resume (a cut after one, e.g. in a duplicated
            // trailing FinalState, legitimately can: regression `a_truncated_duplicate_FinalState_may_resume`, seed cfT0bLWzd9p1).
            if (mutations.Any(m => m.Kind == 1) && r.Result.Resumed && !HasCompleteFinalState(stream))
                throw new Exception("a stream truncated before its FinalState resumed");
        }, iter: 8000, threads: 1, print: t => $"seed {t.Seed}: {string.Join("; ", t.Mutations)}");
    }

    // ---- the frame reader ----------------------------------------------------------------------------------------

    private static void ReadAll(byte[] stream)
    {
        var reader = new FrameReader(new MemoryStream(stream, writable: false));
        reader.UseSession(FuzzSession.Layout, HelloOptions.All);
        try
        {
            Targets.ReadFrames(reader, maxFrames: 4096);
        }
        catch (ProtocolException)
        {
            // a refusal or the end of the stream: the only exception that may leave the reader
        }
    }

    [Fact]
    public void Mutated_recorded_streams_leave_the_reader_only_as_a_ProtocolException()
    {
        GenMutated.Sample(t => ReadAll(Mutate(Recorded[t.Seed], t.Mutations)), iter: 20000, threads: 1,
            print: t => $"seed {t.Seed}: {string.Join("; ", t.Mutations)}");
    }

    /// <summary>A frame with a random (mostly known) type, mostly zero flags, a length that mostly fits, and a random body.</summary>
    private static readonly Gen<byte[]> GenFrame =
        Gen.Select(Gen.Frequency((9, Gen.UInt[1, 13]), (1, Gen.UInt)), Gen.Frequency((9, Gen.Const(0u)), (1, Gen.UInt)),
            Gen.Byte.Array[0, 96], Gen.Frequency((6, Gen.Const(-1L)), (1, Gen.Long[0, 1L << 24]), (1, Gen.Long)),
            (type, flags, body, lie) =>
            {
                byte[] frame = new byte[FrameHeader.Size + body.Length];
                new FrameHeader((FrameType)type, flags, lie == -1 ? (ulong)body.Length : (ulong)lie).Write(frame);
                body.CopyTo(frame, FrameHeader.Size);
                return frame;
            });

    /// <summary>A PageBatch with 0..6 descriptors (page numbers mostly near the layout, kinds 0..4), payloads for the Full ones, and maybe a wrong count.</summary>
    private static readonly Gen<byte[]> GenPageBatch =
        Gen.Select(Gen.Select(Gen.Frequency((4, Gen.ULong[0, 300]), (1, Gen.ULong)), Gen.UInt[0, 4]).Array[0, 6],
            Gen.Frequency((5, Gen.Const(-1)), (1, Gen.Int)), Gen.Bool,
            (descriptors, count, payloads) =>
            {
                int full = payloads ? descriptors.Count(d => d.Item2 == (uint)PageKind.Full) : 0;
                byte[] body = new byte[PageBatch.FixedLength + descriptors.Length * PageDescriptor.WireLength + full * FuzzSession.PageSize];
                BinaryPrimitives.WriteUInt64LittleEndian(body, 1);
                BinaryPrimitives.WriteUInt32LittleEndian(body.AsSpan(8), count == -1 ? (uint)descriptors.Length : (uint)count);
                for (int i = 0; i < descriptors.Length; i++)
                {
                    Span<byte> d = body.AsSpan(PageBatch.FixedLength + i * PageDescriptor.WireLength);
                    BinaryPrimitives.WriteUInt64LittleEndian(d, descriptors[i].Item1);
                    BinaryPrimitives.WriteUInt32LittleEndian(d[8..], descriptors[i].Item2);
                }
                body.AsSpan(PageBatch.FixedLength + descriptors.Length * PageDescriptor.WireLength).Fill(0xAB);
                return WireTestSupport.Frame(FrameType.PageBatch, body);
            });

    [Fact]
    public void Random_frame_sequences_leave_the_reader_only_as_a_ProtocolException_and_allocate_within_the_caps()
    {
        Gen.Frequency((3, GenFrame), (1, GenPageBatch)).Array[1, 8].Sample(frames =>
        {
            byte[] stream = frames.SelectMany(f => f).ToArray();
            long before = GC.GetAllocatedBytesForCurrentThread();
            ReadAll(stream);
            long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            // (c) every buffer is bounded by a checked cap: the largest one a frame may cause is its type's cap
            // (FinalState: 16 MiB of device state); a peer's length never sizes anything beyond that
            ulong caps = 0;
            foreach (byte[] f in frames)
            {
                FrameHeader.TryRead(f, out FrameHeader h);
                if (Enum.IsDefined(h.Type) && h.Type != FrameType.Invalid)
                    caps += Math.Min(h.BodyLength, WireLimits.MaxBodyLength(h.Type, FuzzSession.PageSize, out _));
            }
            if ((ulong)allocated > caps + (256 << 10))
                throw new Exception($"{allocated} bytes allocated reading {frames.Length} frames whose capped lengths add up to {caps}");
        }, iter: 20000, threads: 1, print: frames => Convert.ToHexString(frames.SelectMany(f => f).Take(256).ToArray()));
    }

    // ---- (c) lengths and counts the peer announces ---------------------------------------------------------------

    [Fact]
    public void An_oversized_body_length_fails_at_the_header_without_allocating_it()
    {
        Gen.Select(Gen.UInt[1, 13], Gen.ULong[1UL << 25, ulong.MaxValue], Gen.Bool).Sample(t =>
        {
            (uint type, ulong length, bool session) = t;
            byte[] header = new byte[FrameHeader.Size];
            new FrameHeader((FrameType)type, 0, length).Write(header);
            var reader = new FrameReader(new MemoryStream(header, writable: false));
            if (session) reader.UseSession(FuzzSession.Layout, HelloOptions.ZeroPages);
            long before = GC.GetAllocatedBytesForCurrentThread();
            ProtocolException e;
            try
            {
                reader.ReadHeaderAsync(Ct).AsTask().GetAwaiter().GetResult();
                throw new Exception($"a {(FrameType)type} header announcing {length} bytes was accepted");
            }
            catch (ProtocolException caught)
            {
                e = caught;
            }
            long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            bool beforeSession = (FrameType)type == FrameType.PageBatch && !session;
            if (e.Error != (beforeSession ? ProtocolError.UnexpectedFrame : ProtocolError.FrameTooLarge))
                throw new Exception($"{e.Error}: {e.Message}");
            if (!beforeSession && !e.Message.Contains("the limit for this type is")) throw new Exception("the error does not name the limit: " + e.Message);
            if (allocated > 64 << 10) throw new Exception($"{allocated} bytes allocated refusing a {length}-byte {(FrameType)type} header");
        }, iter: 500, threads: 1);
    }

    [Fact]
    public void A_PageBatch_announcing_too_many_descriptors_fails_before_allocating_them()
    {
        Gen.Select(Gen.UInt[WireLimits.MaxPagesPerBatch + 1, uint.MaxValue], Gen.ULong[PageBatch.FixedLength, 1UL << 25]).Sample(t =>
        {
            (uint count, ulong bodyLength) = t;
            byte[] frame = new byte[FrameHeader.Size + PageBatch.FixedLength];
            new FrameHeader(FrameType.PageBatch, 0, bodyLength).Write(frame);
            BinaryPrimitives.WriteUInt32LittleEndian(frame.AsSpan(FrameHeader.Size + 8), count);
            var reader = new FrameReader(new MemoryStream(frame, writable: false));
            reader.UseSession(FuzzSession.Layout, HelloOptions.ZeroPages);
            FrameHeader h = reader.ReadHeaderAsync(Ct).AsTask().GetAwaiter().GetResult();
            long before = GC.GetAllocatedBytesForCurrentThread();
            var e = Assert.Throws<ProtocolException>(() => reader.ReadPageBatchAsync(h, Ct).AsTask().GetAwaiter().GetResult());
            long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            Assert.Equal(ProtocolError.TooManyPages, e.Error);
            Assert.Contains($"the limit is {WireLimits.MaxPagesPerBatch}", e.Message);
            Assert.True(allocated < 64 << 10, $"{allocated} bytes allocated refusing {count} descriptors");
        }, iter: 300, threads: 1);
    }

    [Theory]
    [InlineData("PageBatch header announcing a 2^40-byte body", (uint)FrameType.PageBatch, 1UL << 40, 0u, "the limit for this type is")]
    [InlineData("PageBatch announcing 2^31 descriptors", (uint)FrameType.PageBatch, 1024UL, 1u << 31, "the limit is 8192")]
    [InlineData("FinalState header announcing a 2^40-byte body", (uint)FrameType.FinalState, 1UL << 40, 0u, "the limit for this type is")]
    [InlineData("Abort header announcing a 2^63-byte body", (uint)FrameType.Abort, 1UL << 63, 0u, "the limit for this type is")]
    public void The_receiver_refuses_a_huge_announced_length_after_authentication_without_allocating_it(string name, uint type, ulong bodyLength, uint count, string names)
    {
        byte[] recorded = Recorded[0];
        List<byte[]> frames = Chunks(recorded);
        byte[] authenticated = frames[0].Concat(frames[1]).ToArray(); // Hello + AuthProof, recorded from a real sender
        byte[] bad = new byte[FrameHeader.Size + 16];
        new FrameHeader((FrameType)type, 0, bodyLength).Write(bad);
        BinaryPrimitives.WriteUInt32LittleEndian(bad.AsSpan(FrameHeader.Size + 8), count);
        byte[] baseline = WireTestSupport.Frame(FrameType.Ping, new byte[3]); // refused at once: 3 is not Ping's length

        Receive([.. authenticated, .. baseline]); // warm up
        long before = GC.GetAllocatedBytesForCurrentThread();
        Receive([.. authenticated, .. baseline]);
        long baselineBytes = GC.GetAllocatedBytesForCurrentThread() - before;
        before = GC.GetAllocatedBytesForCurrentThread();
        Received r = Receive([.. authenticated, .. bad]);
        long hugeBytes = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.False(r.Result.Resumed, name);
        Assert.Equal(AbortReason.ProtocolViolation, r.Result.AbortSent);
        Assert.Contains(names, r.Result.Failure);
        Assert.Equal(FrameType.Abort, Answers(r.Output)[^1].Type);
        Assert.True(hugeBytes - baselineBytes < 64 << 10, $"{name}: {hugeBytes} bytes allocated, {baselineBytes} for a small bad frame");
        Target.CheckCanaries();
        for (long p = 0; p < Target.Memory.PageCount; p++) Assert.True(Target.Memory.Page(p).IndexOfAnyExcept((byte)0) < 0, $"page {p} written");
    }
}
