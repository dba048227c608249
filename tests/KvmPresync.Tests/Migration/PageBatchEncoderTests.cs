using KvmPresync.Memory;
using KvmPresync.Migration;
using KvmPresync.Wire;

namespace KvmPresync.Tests.Migration;

/// <summary>The batch encoder's early stop (a launch during a sync round's send): what it leaves in the page set is what was sent.</summary>
public sealed class PageBatchEncoderTests
{
    [Fact]
    public async Task AStopBeforeABatchLeavesExactlyTheSentPagesInTheSet()
    {
        const int pages = 64, batch = 8;
        using var memory = GuestMemoryMap.Single(GuestMemory.Create(pages * 4096L), ownsMemory: true);
        for (long p = 0; p < pages; p++) memory.Page(p)[0] = (byte)(p + 1); // non-zero: each is a Full payload
        var wire = new MemoryStream();
        var writer = new FrameWriter(wire);
        writer.UseSession(MigrationLayout.Of(memory), HelloOptions.ZeroPages);
        var encoder = new PageBatchEncoder(memory, writer, batch);
        var set = new DirtyBitmap(pages);
        set.SetAll();
        int asked = 0;
        SendCounts counts = await encoder.SendAsync(0, set, TestContext.Current.CancellationToken, stopEarly: () => ++asked > 3);
        Assert.Equal(3 * batch, counts.Sent);                       // three whole batches went out, then the stop
        var left = new List<long>();
        foreach (long p in set) left.Add(p);
        Assert.Equal(Enumerable.Range(0, 3 * batch).Select(p => (long)p), left);
        Assert.True(wire.Length > 3 * batch * 4096);

        // the pages not sent are still unsent to the encoder: a later send takes them (not skipped as unchanged)
        set.SetAll();
        SendCounts again = await encoder.SendAsync(1, set, TestContext.Current.CancellationToken);
        Assert.Equal(pages - 3 * batch, again.Sent);
        Assert.Equal(3 * batch, again.Unchanged);
    }
}
