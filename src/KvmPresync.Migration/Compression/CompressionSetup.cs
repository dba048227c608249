namespace KvmPresync.Migration.Compression;

/// <summary>How a sender's <see cref="PresyncOptions"/> turn into its batch compressor.</summary>
internal static class CompressionSetup
{
    /// <summary>Why compression cannot run with these options (null = it can).</summary>
    public static string? DisabledBecause(PresyncOptions options) =>
        options.ZeroCopy ? "--zero-copy: payloads are sent in place from guest memory" : null;

    /// <summary>Whether the sender offers CompressedPages in its Hello.</summary>
    public static bool Offered(PresyncOptions options) => options.Compression != CompressionMode.Off && DisabledBecause(options) is null;

    /// <summary>
    /// The compressor for a run. The chooser's link rate: the in-process limit when the sender paces itself (the same rate
    /// <see cref="SenderChannel"/> gives its token bucket), else null — measure the sends.
    /// </summary>
    public static BatchCompressor For(PresyncOptions options)
    {
        double limit = options.RateLimitBitsPerSecond ?? options.Engine.LinkBitsPerSecond;
        return new BatchCompressor(options.Compression, limit > 0 ? limit / 8 : null, DisabledBecause(options));
    }
}
