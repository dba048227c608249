using KvmPresync.Wire;

namespace KvmPresync.Tests.Wire;

public sealed class LinkRateTests
{
    [Theory]
    [InlineData("1gbit", 1_000_000_000L)]
    [InlineData("1Gbit", 1_000_000_000L)]
    [InlineData("100mbit", 100_000_000L)]
    [InlineData("500kbit", 500_000L)]
    [InlineData("1.5gbit", 1_500_000_000L)]
    [InlineData("10MB/s", 80_000_000L)]
    [InlineData("1 GiB/s", 8L * 1024 * 1024 * 1024)]
    [InlineData("64kibit", 65_536L)]
    [InlineData("800bit", 800L)]
    [InlineData(" 2tbit ", 2_000_000_000_000L)]
    public void Parses_bit_and_byte_rates(string text, long bits) => Assert.Equal(bits, LinkRate.Parse(text));

    [Theory]
    [InlineData("", "empty")]
    [InlineData("fast", "does not start with a number")]
    [InlineData("100", "has no unit")]
    [InlineData("100mbps", "ambiguous")]
    [InlineData("100furlongs", "unknown")]
    [InlineData("0.01bit", "below 1 bit/s")]
    [InlineData("99999999999tbit", "too large")]
    public void Refuses_bad_rates_with_a_clear_message(string text, string expected)
    {
        var e = Assert.Throws<FormatException>(() => LinkRate.Parse(text));
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void Formats_readably()
    {
        Assert.Equal("1 Gbit/s", LinkRate.Format(1_000_000_000));
        Assert.Equal("12.5 Mbit/s", LinkRate.Format(12_500_000));
    }
}
