/*
 * content.c — what every written page must contain, as a pure function of (seed, pfn, version),
 * so the guest can verify any page it wrote from a few bytes of metadata.
 *
 * A data page: word 0 = KP_PAGE_TAG | pfn, word 1 = version, words 2..511 pseudo-random from a
 * key = mix(seed, pfn, version). The readable header lets a mismatch report say whether a page is
 * stale (an older version of the right page), misplaced (another pfn) or garbage.
 */
#include "rt.h"

#define KP_PAGE_TAG 0x4B50000000000000ULL /* "KP" in the top bytes; pfn in the low 48 bits */
#define GOLDEN 0x9E3779B97F4A7C15ULL

uint64_t kp_mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xBF58476D1CE4E5B9ULL;
    x ^= x >> 27;
    x *= 0x94D049BB133111EBULL;
    x ^= x >> 31;
    return x;
}

int kp_fill_is_zero(uint64_t seed, uint64_t pfn, uint32_t zero_permille)
{
    return kp_mix64(seed ^ 0x5A17E0D0ULL ^ (pfn * GOLDEN)) % 1000 < zero_permille;
}

uint8_t kp_pattern_byte(uint64_t seed, uint64_t pfn)
{
    return (uint8_t)(kp_mix64(seed ^ (pfn * GOLDEN) ^ 0xA5ULL) | 1);
}

static inline uint64_t page_key(uint64_t seed, uint64_t pfn, uint64_t version)
{
    return kp_mix64(seed + kp_mix64(pfn) + version * GOLDEN);
}

/* One multiply per word: cheap enough for ~30,000 pages/s (movie) on one core. */
static inline uint64_t data_word(uint64_t key, uint64_t i)
{
    uint64_t x = key + i * GOLDEN;
    x = (x ^ (x >> 32)) * 0xD6E8FEB86659FD93ULL;
    return x ^ (x >> 32);
}

void kp_page_data(uint64_t *page, uint64_t seed, uint64_t pfn, uint64_t version)
{
    uint64_t key = page_key(seed, pfn, version);
    page[0] = KP_PAGE_TAG | pfn;
    page[1] = version;
    for (uint64_t i = 2; i < 512; i++)
        page[i] = data_word(key, i);
}

uint64_t kp_expected_word(uint64_t seed, uint64_t pfn, enum kp_expect kind, uint64_t version, uint64_t index)
{
    switch (kind) {
    case KP_EXPECT_DATA:
        if (index == 0) return KP_PAGE_TAG | pfn;
        if (index == 1) return version;
        return data_word(page_key(seed, pfn, version), index);
    case KP_EXPECT_PATTERN:
        return index == 0 ? kp_pattern_byte(seed, pfn) : 0;
    default:
        return 0;
    }
}

uint64_t kp_page_check(const uint64_t *page, uint64_t seed, uint64_t pfn, enum kp_expect kind, uint64_t version, uint64_t *digest)
{
    uint64_t d = *digest, bad = 0;
    if (kind == KP_EXPECT_DATA) {
        uint64_t key = page_key(seed, pfn, version);
        if (page[0] != (KP_PAGE_TAG | pfn)) bad = 1;
        else if (page[1] != version) bad = 2;
        for (uint64_t i = 0; i < 512; i++) {
            uint64_t w = page[i];
            d = (d ^ w) * 0x100000001B3ULL;
            if (i >= 2 && !bad && w != data_word(key, i)) bad = i + 1;
        }
    } else {
        uint64_t first = kind == KP_EXPECT_PATTERN ? kp_pattern_byte(seed, pfn) : 0;
        for (uint64_t i = 0; i < 512; i++) {
            uint64_t w = page[i];
            d = (d ^ w) * 0x100000001B3ULL;
            if (!bad && w != (i == 0 ? first : 0)) bad = i + 1;
        }
    }
    *digest = d;
    return bad;
}
