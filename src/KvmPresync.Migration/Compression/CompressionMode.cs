using System.Text.Json.Serialization;

namespace KvmPresync.Migration.Compression;

/// <summary>How the sender compresses PageBatch payloads (CLI <c>--compression</c>).</summary>
[JsonConverter(typeof(JsonStringEnumConverter<CompressionMode>))]
public enum CompressionMode
{
    /// <summary>Never: every batch raw, and CompressedPages is not offered.</summary>
    Off = 0,
    /// <summary>Per batch, raw, LZ4 or zstd, whichever the <see cref="CompressionChooser"/> expects to be fastest.</summary>
    Auto,
    /// <summary>Every batch LZ4 (raw when the result would not be smaller).</summary>
    Lz4,
    /// <summary>Every batch zstd level 1 (raw when the result would not be smaller).</summary>
    Zstd,
}
