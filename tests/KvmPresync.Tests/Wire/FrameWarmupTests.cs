using System.Runtime;
using KvmPresync.Wire;

namespace KvmPresync.Tests.Wire;

/// <summary>
/// The switchover's frames are compiled ahead (<see cref="FrameWarmup"/>): after it, writing and reading a Resumed or Launch
/// frame — generic code instantiated per value-type body — JIT-compiles nothing. (Meaningful as the process's first use of
/// these frames, e.g. run alone; later in a full run other tests may have compiled them already.)
/// </summary>
public sealed class FrameWarmupTests
{
    [Fact]
    public async Task Round_trips_keep_every_field()
    {
        Assert.Equal(new Resumed(7, 9), await FrameWarmup.RoundTripAsync(new Resumed(7, 9)));
        Assert.Equal(new Launch(3, 4, 5), await FrameWarmup.RoundTripAsync(new Launch(3, 4, 5)));
        byte[] digest = Enumerable.Range(1, WireLimits.DigestBytes).Select(i => (byte)i).ToArray();
        FinalState final = await FrameWarmup.RoundTripAsync(new FinalState(12, 34, digest, new byte[] { 1, 2, 3 }));
        Assert.Equal((12UL, 34UL), (final.PageCount, final.SenderTimestampNs));
        Assert.Equal(digest, final.MemoryDigest.ToArray());
        Assert.Equal(new byte[] { 1, 2, 3 }, final.DeviceState.ToArray());
    }

    [Fact]
    public async Task After_the_warmup_the_switchover_frames_compile_nothing()
    {
        await FrameWarmup.SwitchoverAsync();
        long compiled = await CompiledWhileExchangingAsync(TestContext.Current.CancellationToken);
        Assert.True(compiled == 0, $"writing and reading the switchover's frames after the warm-up JIT-compiled {compiled} method(s)");
    }

    /// <summary>
    /// Writes the switchover's frames and reads them back, awaited as the sender and receiver do; returns how many methods
    /// the JIT compiled on this thread meanwhile (counted inside, so this helper's own code is not counted).
    /// </summary>
    private static async Task<long> CompiledWhileExchangingAsync(CancellationToken ct)
    {
        var stream = new MemoryStream();
        var writer = new FrameWriter(stream);
        byte[] digest = new byte[WireLimits.DigestBytes], state = new byte[64];
        _ = JitInfo.GetCompiledMethodCount(currentThread: true);
        long before = JitInfo.GetCompiledMethodCount(currentThread: true);
        await writer.WriteAsync(new Launch(1, 2, 3), ct).ConfigureAwait(false);
        await writer.WriteAsync(new FinalState(5, 6, digest, state), ct).ConfigureAwait(false);
        await writer.WriteAsync(new Resumed(7, 8), ct).ConfigureAwait(false);
        await writer.WriteAsync(new DestinationReady(9), ct).ConfigureAwait(false);
        stream.Position = 0;
        var reader = new FrameReader(stream);
        Launch launch = await reader.ReadBodyAsync<Launch>(await reader.ReadHeaderAsync(ct).ConfigureAwait(false), ct).ConfigureAwait(false);
        FinalState final = await reader.ReadBodyAsync<FinalState>(await reader.ReadHeaderAsync(ct).ConfigureAwait(false), ct).ConfigureAwait(false);
        Resumed resumed = await reader.ReadBodyAsync<Resumed>(await reader.ReadHeaderAsync(ct).ConfigureAwait(false), ct).ConfigureAwait(false);
        DestinationReady ready = await reader.ReadBodyAsync<DestinationReady>(await reader.ReadHeaderAsync(ct).ConfigureAwait(false), ct).ConfigureAwait(false);
        long compiled = JitInfo.GetCompiledMethodCount(currentThread: true) - before;
        Assert.Equal(new Launch(1, 2, 3), launch);
        Assert.Equal(5UL, final.PageCount);
        Assert.Equal(new Resumed(7, 8), resumed);
        Assert.Equal(9UL, ready.ReceiverTimestampNs);
        return compiled;
    }
}
