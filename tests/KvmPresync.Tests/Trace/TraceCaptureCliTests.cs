using KvmPresync.Memory;
using KvmPresync.Tests.Migration;
using KvmPresync.Tests.ProcessMemory;
using KvmPresync.Trace;

namespace KvmPresync.Tests.Trace;

/// <summary>
/// <c>kvmpresync trace capture</c> end to end: scripted-writer in loop mode (a parent and a forked child each writing
/// 32 pages of their private copy of region A, the parent 8 pages of the shared region S) for 2 s; the trace reads back
/// with <c>trace info</c>, and its per-mapping summary counts exactly those pages.
/// </summary>
public sealed class TraceCaptureCliTests
{
    [Fact]
    public async Task CaptureOfAForkingProgramWritesAReadableTraceWithItsPages()
    {
        ProcessTrackingRequirement.SkipUnlessAvailable();
        string writer = ProcessTrackingRequirement.NativeOrFail("scripted-writer");
        string file = Path.Combine(Path.GetTempPath(), $"kvmpresync-capture-{Guid.NewGuid():N}.kpt");
        try
        {
            using (var cli = CliProcess.Start("trace", "capture", "--seconds", "2", "--interval", "50ms", "--grace", "1s", "-o", file, "--", writer, "--loop", "32"))
            {
                Assert.Equal(0, await cli.WaitForExitAsync(TimeSpan.FromSeconds(60), TestContext.Current.CancellationToken));
                Assert.Contains("ended: time-limit", cli.Output);
            }

            using (var reader = TraceReader.Open(file))
            {
                TraceHeader h = reader.Header;
                Assert.Equal("scripted-writer", h.Workload);
                Assert.Equal("capture", h.Metadata["source"]);
                Assert.Equal("first-write", h.Metadata["page-space"]);
                Assert.Equal(TimeSpan.FromMilliseconds(50), h.Interval);
                Assert.True(int.Parse(h.Metadata["processes"]) >= 2, h.Metadata["processes-seen"]);
                string[] regions = h.Metadata["regions"].Split("; ");
                Assert.Contains("64 /memfd:kp-private (deleted)", regions); // 32 each in parent and child
                Assert.Contains("8 /memfd:kp-shared (deleted)", regions);
                Assert.Contains(h.Metadata.Keys, k => k.StartsWith("resident-kib-per-", StringComparison.Ordinal));

                var bitmap = new DirtyBitmap(h.PageCount);
                var union = new DirtyBitmap(h.PageCount);
                int intervals = 0;
                while (reader.TryReadInterval(bitmap, out _))
                {
                    union.Or(bitmap);
                    bitmap.Clear();
                    intervals++;
                }
                Assert.InRange(intervals, 20, 60);
                Assert.Equal(h.PageCount, union.Count()); // every page of the compact space was written in some interval
            }

            using var info = CliProcess.Start("trace", "info", file);
            Assert.Equal(0, await info.WaitForExitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken));
            Assert.Contains("source: capture", info.Output);
            Assert.Contains("64 /memfd:kp-private (deleted)", info.Output);
            Assert.Contains("resident (Rss of the tracked processes", info.Output);
        }
        finally
        {
            File.Delete(file);
        }
    }
}
