namespace KvmPresync.Memory;

public static partial class PageHasher
{
    // The function's constants. They are the output of SplitMix64 seeded with 0x4B766D5072655379
    // ("KvmPreSy"): 32 keys, then 8 steps (forced odd), then 32 final tweaks; a test regenerates them.
    // Changing any of them changes every hash: that is a new algorithm version, not a tweak.

    /// <summary>Lanes of state: 4 groups × 8 lanes of 64 bits.</summary>
    internal const int LaneCount = 32;

    /// <summary>Bytes consumed by one lane group per step (8 lanes × 8 bytes).</summary>
    internal const int BlockSize = 64;

    /// <summary>Number of lane groups; block b feeds group b mod 4.</summary>
    internal const int GroupCount = 4;

    /// <summary>Key xored into block b before mixing: Keys[8·(b mod 4) + i] for word i.</summary>
    internal static ReadOnlySpan<ulong> Keys =>
    [
        0x019E4E6FF631D282UL, 0x0AF7688DEA6160E6UL, 0x12C106EBCF303EC1UL, 0xC0BC36AE9BEEFE92UL,
        0x105E3CADD58A5949UL, 0xBF5319F2AC165B4DUL, 0xEF1793F1BA1ECE50UL, 0x76A0DA426BAFE23AUL,
        0x1A232BB9AA089818UL, 0x4BC7185B366F1710UL, 0xC1A3631F17E785A9UL, 0x0AAE93B519C0D0FCUL,
        0x349CE2AF67F31983UL, 0x9650A4C710E336D1UL, 0xBB66CD6EC84D6723UL, 0x33E1F2D901586A44UL,
        0x483EC32FC1E86253UL, 0x017D4E3AB2B9D0FBUL, 0x305382F3ECAE81C3UL, 0xC1FDEA3861C5841CUL,
        0x51CB0B23BE83278FUL, 0xFC635794A6F5EF76UL, 0xEE2258693DAC6894UL, 0xE5AEE86632CBBF43UL,
        0x69E593BC012EA983UL, 0x9E819483361C3197UL, 0xF46118477AE29741UL, 0xB17F6017B0B81D3EUL,
        0x229A6D27A43BE71DUL, 0x7F2710D05161217DUL, 0x1FFCD9C8EEAA289DUL, 0x9846EAEB74A1F97CUL,
    ];

    /// <summary>Position key: block b is also xored with (b div 4)·Steps[i], so moved blocks hash differently.</summary>
    internal static ReadOnlySpan<ulong> Steps =>
    [
        0xEF46E92EF66389C7UL, 0x374A074EE7A88177UL, 0x35D22FB164571C25UL, 0xC6A64F5D1E92875DUL,
        0x1E707670D04AE0ADUL, 0xFEB28D630BACAA99UL, 0xC50C048BFB166EA1UL, 0x5DF3C63AED3DCBADUL,
    ];

    /// <summary>Per-lane tweak xored into each lane before its final mix, so lanes are not interchangeable.</summary>
    internal static ReadOnlySpan<ulong> FinalTweaks =>
    [
        0x0D891A7A9A034A6CUL, 0x5CF5937253472992UL, 0x3E8201DC3158C6ABUL, 0x99888C8B04B17D4EUL,
        0x7C8A6D29A8EB2395UL, 0xD9E4DBACD5F54204UL, 0x07303F42F10D56A0UL, 0x359A3EF73F9DCB2EUL,
        0x82F1788BC4C8F96BUL, 0xADC34E21EC63062CUL, 0x9F17F898474AD6B3UL, 0x7C5B657EB85EFCC6UL,
        0x6D44DDC911B81C76UL, 0x3B4D055E5089DE9AUL, 0x52D08F8E4C9A349BUL, 0xCBD645DEE5D058EEUL,
        0x187977C8D5098DADUL, 0x04BEE1CBAA612A3BUL, 0x364C5FB5AD6A29F4UL, 0x4554F70F79CAA363UL,
        0xA01FE35D3EFC4616UL, 0xFCC156798C180DD1UL, 0xC59C3AAF6E175E44UL, 0x1C4AEE1855042498UL,
        0x8BBAF48A20563543UL, 0x12D51D48D3C05E64UL, 0x904064C290DE61B4UL, 0xCF81ABA32D70D298UL,
        0x7552E10D1B1D3F53UL, 0x3079808C9710AD0CUL, 0x25F7682D9B4DA222UL, 0xDC6804570300C391UL,
    ];

    /// <summary>Seed the constants above were generated from.</summary>
    internal const ulong ConstantSeed = 0x4B766D5072655379UL;

    // MurmurHash3's 64-bit finalizer multipliers (a bijection with full avalanche).
    internal const ulong FmixMul1 = 0xFF51AFD7ED558CCDUL;
    internal const ulong FmixMul2 = 0xC4CEB9FE1A85EC53UL;

    /// <summary>Multiplier binding the input length into the final mix (2^64 / golden ratio).</summary>
    internal const ulong LengthMul = 0x9E3779B97F4A7C15UL;

    /// <summary>MurmurHash3 fmix64: a bijection on 64 bits where each input bit flips about half the output bits.</summary>
    internal static ulong Fmix64(ulong a)
    {
        a ^= a >> 33;
        a *= FmixMul1;
        a ^= a >> 33;
        a *= FmixMul2;
        return a ^ (a >> 33);
    }

    /// <summary>Last step of every path: bind the length and mix the lane sum.</summary>
    internal static ulong Finish(ulong laneSum, nuint length) => Fmix64(laneSum ^ ((ulong)length * LengthMul));
}
