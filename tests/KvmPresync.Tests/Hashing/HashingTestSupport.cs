using KvmPresync.Memory;

namespace KvmPresync.Tests.Hashing;

/// <summary>Shared helpers: path selection by name (the enum is internal) and deterministic test data.</summary>
internal static class HashingTestSupport
{
    /// <summary>Every path, scalar first (it is the reference).</summary>
    public static readonly HashPath[] AllPaths = [HashPath.Scalar, HashPath.Vector128, HashPath.Vector256, HashPath.Vector512];

    /// <summary>Parses a path name and skips the test when this CPU does not accelerate it.</summary>
    public static HashPath RequirePath(string name)
    {
        HashPath path = Enum.Parse<HashPath>(name);
        Assert.SkipUnless(PageHasher.IsAccelerated(path), $"{path} is not supported on this CPU");
        return path;
    }

    /// <summary>The paths this CPU accelerates (always includes Scalar).</summary>
    public static HashPath[] AcceleratedPaths() => AllPaths.Where(PageHasher.IsAccelerated).ToArray();

    public static byte[] RandomBytes(int length, int seed)
    {
        byte[] bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    public static ulong HashOn(HashPath path, ReadOnlySpan<byte> page) => PageHasher.Hash(page, out _, path);
}
