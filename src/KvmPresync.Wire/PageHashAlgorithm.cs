namespace KvmPresync.Wire;

/// <summary>The 64-bit page hash carried in PageBatch descriptors (u32 in Hello). 0 is reserved as Invalid.</summary>
public enum PageHashAlgorithm : uint
{
    Invalid = 0,
    /// <summary>XXH64, seed 0, over the page bytes (System.IO.Hashing.XxHash64).</summary>
    XxHash64 = 1,
    /// <summary>XXH3-64, seed 0, over the page bytes (System.IO.Hashing.XxHash3).</summary>
    XxHash3 = 2,

    /// <summary>KvmPresync's SIMD page hash (Memory/PageHasher, docs/HASHING.md); the engine's default.</summary>
    PageHasher = 3,
}
