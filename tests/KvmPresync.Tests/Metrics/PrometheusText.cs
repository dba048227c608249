using System.Globalization;
using System.Net.Http;

namespace KvmPresync.Tests.Metrics;

/// <summary>Reads the Prometheus text format as a scraper does: samples by series (<c>name{labels}</c>) and the HELP of each family.</summary>
internal sealed class PrometheusText
{
    private PrometheusText(string text)
    {
        Text = text;
        foreach (string raw in text.Split('\n'))
        {
            string line = raw.TrimEnd('\r');
            if (line.Length == 0) continue;
            if (line.StartsWith("# HELP ", StringComparison.Ordinal))
            {
                string[] parts = line[7..].Split(' ', 2);
                Help[parts[0]] = parts.Length > 1 ? parts[1] : "";
                continue;
            }
            if (line.StartsWith('#')) continue;
            int space = line.LastIndexOf(' ');
            Samples[line[..space]] = double.Parse(line[(space + 1)..], CultureInfo.InvariantCulture);
        }
    }

    public string Text { get; }

    public Dictionary<string, double> Samples { get; } = [];

    public Dictionary<string, string> Help { get; } = [];

    public static PrometheusText Parse(string text) => new(text);

    public static async Task<PrometheusText> ScrapeAsync(Uri url, CancellationToken ct)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        using HttpResponseMessage response = await http.GetAsync(url, ct);
        Assert.Equal(System.Net.HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/plain; version=0.0.4; charset=utf-8", response.Content.Headers.ContentType?.ToString());
        return Parse(await response.Content.ReadAsStringAsync(ct));
    }

    /// <summary>The value of a series (exact <c>name</c> or <c>name{labels}</c>); fails with the whole scrape when absent.</summary>
    public double this[string series] => Samples.TryGetValue(series, out double v) ? v : throw new Xunit.Sdk.XunitException($"no series {series} in:\n{Text}");

    /// <summary>The sum over all series of a family (<c>name</c> and <c>name{…}</c>).</summary>
    public double Sum(string name) => Samples.Where(s => s.Key == name || s.Key.StartsWith(name + "{", StringComparison.Ordinal)).Sum(s => s.Value);

    public bool Has(string name) => Samples.Keys.Any(k => k == name || k.StartsWith(name + "{", StringComparison.Ordinal));

    /// <summary>The metric families (names as in HELP lines).</summary>
    public IEnumerable<string> Families => Help.Keys;
}
