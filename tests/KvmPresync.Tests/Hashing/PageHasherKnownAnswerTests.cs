using KvmPresync.Memory;
using static KvmPresync.Tests.Hashing.HashingTestSupport;

namespace KvmPresync.Tests.Hashing;

/// <summary>
/// Pins the function itself. Both ends of a migration must compute the same hash, so any change to these
/// values is a new algorithm version (wire and digest), never a silent edit.
/// </summary>
public sealed class PageHasherKnownAnswerTests
{
    public static readonly TheoryData<int, int, ulong> Vectors = new()
    {
        // (page size, pattern, expected): pattern 0 = zeros, 1 = byte i is i mod 251, 2 = all 0xFF
        { 4096, 0, PageHasher.ZeroPage4096Hash },
        { 4096, 1, 0xA2A3C0A376D76A8DUL },
        { 4096, 2, 0xB4F4F3610CB52D64UL },
        { 64, 1, 0x00DB40F30DB27697UL },
        { 192, 1, 0x69C4896E6CB99BAEUL },
        { 8192, 1, 0x434496E7DF3E53FEUL },
    };

    [Theory]
    [MemberData(nameof(Vectors))]
    public void Every_path_reproduces_the_known_answers(int pageSize, int pattern, ulong expected)
    {
        byte[] page = new byte[pageSize];
        for (int i = 0; i < pageSize; i++)
            page[i] = pattern switch { 0 => 0, 1 => (byte)(i % 251), _ => 0xFF };
        foreach (HashPath path in AcceleratedPaths())
        {
            ulong actual = HashOn(path, page);
            Assert.True(expected == actual, $"{path}: {pageSize}-byte pattern {pattern} hashed to 0x{actual:X16}, expected 0x{expected:X16}");
        }
    }
}
