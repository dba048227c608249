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
        var asked = new List<long>();
        SendCounts counts = await encoder.SendAsync(0, set, TestContext.Current.CancellationToken, stopEarly: unsent => { asked.Add(unsent); return asked.Count > 3; });
        Assert.Equal(3 * batch, counts.Sent);                       // three whole batches went out, then the stop
        Assert.Equal([64L, 56, 48, 40], asked);                     // asked once a batch, with the pages not yet sent
        var left = new List<long>();
        foreach (long p in set) left.Add(p);
        Assert.Equal(Enumerable.Range(0, 3 * batch).Select(p => (long)p), left);
        Assert.True(wire.Length > 3 * batch * 4096);

        // the pages not sent are still unsent to the encoder: a later send takes them (not skipped as unchanged)
        set.SetAll();
        SendCounts again = await encoder.SendAsync(1, set, TestContext.Current.CancellationToken);
        Assert.Equal(pages - 3 * batch, again.Sent);
        Assert.Equal(3 * batch, again.Unchanged);

        // pages skipped as unchanged do not make it ask again before the batch they fill goes out
        set.SetAll();
        asked.Clear();
        for (long p = 60; p < pages; p++) memory.Page(p)[1] = 9; // 4 changed pages at the end, after 60 unchanged ones
        SendCounts last = await encoder.SendAsync(2, set, TestContext.Current.CancellationToken, stopEarly: unsent => { asked.Add(unsent); return false; });
        Assert.Equal(4, last.Sent);
        Assert.Equal([64L], asked);
    }
}
