namespace KvmPresync.Wire;

/// <summary>What a PageBatch descriptor says about one page (u32 on the wire; exactly one kind per page).</summary>
public enum PageKind : uint
{
    Invalid = 0,
    /// <summary>The page's bytes follow in the batch payload (exactly one page size).</summary>
    Full = 1,
    /// <summary>The page is all zero bytes; no payload. The receiver zero-fills it.</summary>
    Zero = 2,
    /// <summary>The page equals what the receiver already holds (same hash as last sent); no payload.</summary>
    Unchanged = 3,
}
