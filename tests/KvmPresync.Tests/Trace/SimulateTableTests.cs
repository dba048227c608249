using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using KvmPresync.Cli;
using KvmPresync.Tests.Migration;
using KvmPresync.Trace;

namespace KvmPresync.Tests.Trace;

/// <summary><c>kvmpresync simulate</c> over two trace files (one saturating its link), run as a process; the tables and
/// the JSON parsed.</summary>
public sealed class SimulateTableTests(ITestOutputHelper output)
{
    private static string WriteTrace(string directory, SyntheticWorkload source, TimeSpan duration)
    {
        string path = Path.Combine(directory, source.Workload + ".kptrace");
        using TraceWriter writer = TraceWriter.Create(path, ReplaySources.HeaderFor(source));
        source.WriteTo(writer, duration);
        return path;
    }

    private static SyntheticWorkload Saturating() => new(new SyntheticWorkloadSpec
    {
        PageCount = 65_536,
        Interval = TimeSpan.FromMilliseconds(100),
        Duration = TimeSpan.FromSeconds(30),
        Name = "saturating",
        Behaviours = [new HotSetBehaviour(0, 2_000), new SequentialBehaviour(10_000, 40_000, 2_000)],
    });

    /// <summary>Rows of the table titled by <paramref name="trace"/>: policy → the columns after it.</summary>
    private static Dictionary<string, string[]> Rows(string text, string trace)
    {
        string[] lines = text.Split('\n', StringSplitOptions.TrimEntries);
        int title = Array.FindIndex(lines, l => l.StartsWith(trace + ":", StringComparison.Ordinal));
        Assert.True(title >= 0, $"no table for {trace}:\n{text}");
        Assert.StartsWith("policy", lines[title + 2]);
        var rows = new Dictionary<string, string[]>();
        for (int i = title + 3; i < lines.Length && lines[i].Length > 0 && !lines[i].StartsWith("wrote", StringComparison.Ordinal); i++)
        {
            string[] cells = Regex.Split(lines[i], @"\s{2,}");
            Assert.Equal(6, cells.Length);
            rows[cells[0]] = cells[1..];
        }
        return rows;
    }

    private static long Bytes(string cell) => long.Parse(cell, NumberStyles.AllowThousands, CultureInfo.InvariantCulture);

    private static double? Percent(string cell) => cell == "–" ? null : double.Parse(cell.TrimEnd(' ', '%'), CultureInfo.InvariantCulture);

    [Fact]
    public async Task Tables_for_every_trace_list_all_four_policies_and_a_saturated_trace_reports_no_reduction()
    {
        string dir = Directory.CreateTempSubdirectory("kp-simulate-").FullName;
        try
        {
            string editor = WriteTrace(dir, RealTraceTests.HeldOutEditor(), TimeSpan.FromSeconds(30));
            string saturating = WriteTrace(dir, Saturating(), TimeSpan.FromSeconds(30)); // 4,000 pages per 100 ms: 164 MB/s
            string json = Path.Combine(dir, "out.json");
            using var cli = CliProcess.Start("simulate", "--trace", editor, "--trace", saturating, "--warmup", "5s", "--duration", "20s", "--json", json);
            int code = await cli.WaitForExitAsync(TimeSpan.FromSeconds(120), TestContext.Current.CancellationToken);
            output.WriteLine(cli.Output);
            Assert.Equal(ExitCodes.Ok, code);

            Dictionary<string, string[]> rows = Rows(cli.Output, editor);
            Assert.Equal(["none", "predict", "predict+slowstart", "oracle"], rows.Keys);
            long none = Bytes(rows["none"][0]), oracle = Bytes(rows["oracle"][0]);
            Assert.True(oracle < none);
            Assert.Equal(100.0, Percent(rows["oracle"][4]));
            foreach ((string policy, string[] cells) in rows)
            {
                long sync = Bytes(cells[0]);
                Assert.Equal("within budget", cells[2]);
                Assert.Equal(100.0 * (none - sync) / none, Percent(cells[3])!.Value, 0.05);
                Assert.Equal(100.0 * (none - sync) / (none - oracle), Percent(cells[4])!.Value, 0.05);
                _ = Bytes(cells[1]);
                Assert.False(string.IsNullOrEmpty(policy));
            }
            Assert.Matches(@"(?m)^\s+writes [\d.]+ MB/s ≤ link 125 MB/s\s*$", cli.Output);

            Dictionary<string, string[]> saturated = Rows(cli.Output, saturating);
            Assert.Equal(4, saturated.Count);
            Assert.All(saturated.Values, cells => Assert.Equal(["–", "–"], cells[3..]));
            Assert.Matches(@"link saturated: writes [\d.]+ MB/s > link 125 MB/s — reduction not meaningful", cli.Output);

            using JsonDocument doc = JsonDocument.Parse(File.ReadAllText(json));
            JsonElement traces = doc.RootElement.GetProperty("traces");
            Assert.Equal(2, traces.GetArrayLength());
            JsonElement first = traces[0];
            Assert.Equal(editor, first.GetProperty("source").GetString());
            Assert.False(first.GetProperty("saturation").GetProperty("saturated").GetBoolean());
            Assert.True(traces[1].GetProperty("saturation").GetProperty("saturated").GetBoolean());
            JsonElement outcomes = first.GetProperty("outcomes");
            Assert.Equal(4, outcomes.GetArrayLength());
            Assert.Equal(oracle, outcomes[3].GetProperty("syncBytes").GetInt64());
            Assert.Equal("oracle", outcomes[3].GetProperty("result").GetProperty("policy").GetString());
            Assert.True(outcomes[3].GetProperty("result").GetProperty("rounds").GetArrayLength() > 0);
            Assert.Equal(JsonValueKind.Null, traces[1].GetProperty("outcomes")[1].GetProperty("reductionPercent").ValueKind);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task A_policy_list_with_an_unknown_name_is_an_error_naming_the_choices()
    {
        using var cli = CliProcess.Start("simulate", "--trace", "/nonexistent", "--policy", "none,predikt");
        int code = await cli.WaitForExitAsync(TimeSpan.FromSeconds(60), TestContext.Current.CancellationToken);
        Assert.Equal(ExitCodes.Error, code);
        Assert.Contains("oracle", cli.Output);
    }
}
