namespace KvmPresync.Wire;

/// <summary>Option bits the sender offers in Hello; the receiver accepts a subset in HelloAck. Unknown bits are rejected.</summary>
[Flags]
public enum HelloOptions : uint
{
    None = 0,
    /// <summary>The sender may describe pages as <see cref="PageKind.Zero"/> instead of sending their bytes.</summary>
    ZeroPages = 1u << 0,
    /// <summary>The sender may describe pages as <see cref="PageKind.Unchanged"/> (content-hash deduplication).</summary>
    UnchangedPages = 1u << 1,

    /// <summary>Every bit this version defines.</summary>
    All = ZeroPages | UnchangedPages,
}
