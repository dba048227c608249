namespace KvmPresync.Memory;

/// <summary>
/// Which implementation of the page hash runs. Every path computes the same function bit for bit;
/// they differ only in vector width. Internal so tests and benchmarks can force a path.
/// </summary>
internal enum HashPath
{
    /// <summary>Plain 64-bit integer code; runs everywhere and is the reference definition.</summary>
    Scalar,
    /// <summary>16-byte vectors (SSE2 / AdvSimd), one lane group at a time.</summary>
    Vector128,
    /// <summary>32-byte vectors (AVX2), all four lane groups interleaved.</summary>
    Vector256,
    /// <summary>64-byte vectors (AVX-512), one 64-byte block per instruction.</summary>
    Vector512,
}
