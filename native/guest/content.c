/*
 * content.c — what every written page must contain, as a pure function of (seed, pfn, version,
 * content layout), so the guest can verify any page it wrote from a few bytes of metadata.
 *
 * A data page: word 0 = KP_PAGE_TAG | pfn, word 1 = version, words 2..511 from a key =
 * mix(seed, pfn, version). The readable header lets a mismatch report say whether a page is
 * stale (an older version of the right page), misplaced (another pfn) or garbage.
 *
 * How well the page compresses is the guest's content parameter (boot_info.content_lz4_permille:
 * the LZ4 compressed/raw ratio to aim for, docs/WORKLOADS.md "Page content"). The page is 8 blocks
 * of 64 words; block b holds, in order,
 *   random words  data_word(key, i): no codec shrinks them
 *   text words    data_word(key, i) with 4 random bits per byte (bytes 0x60..0x6F): LZ4 finds
 *                 almost no matches in them, an entropy coder (zstd) halves them
 *   a run         one word, data_word(key, last index of the block), repeated: both codecs
 *                 shrink it to a few bytes
 * The literal words (random + text) of a page follow the ratio; the text share of them is fitted
 * to the real programs' corpus, so zstd-1 lands near it too (all text at ratios up to 0.2, like
 * vim's and PostgreSQL's pages; three quarters from 0.25, like mpv's and memcached's). Every word
 * depends on the key, so a stale or misplaced page differs in all words but its header's one, as
 * with fully random content. Ratio 1.0 (and 0, "not set") is all random words: the content before
 * the parameter existed, bit for bit. The page is written block by block without a branch per
 * word; a run costs a store per word, so a compressible page is cheaper to write than a random one.
 */
#include "rt.h"

#define KP_PAGE_TAG 0x4B50000000000000ULL /* "KP" in the top bytes; pfn in the low 48 bits */
#define GOLDEN 0x9E3779B97F4A7C15ULL
#define BLOCK_WORDS 64
#define BLOCKS (512 / BLOCK_WORDS)
#define TEXT_MASK 0x0F0F0F0F0F0F0F0FULL
#define TEXT_BASE 0x6060606060606060ULL
/* LZ4 (fast, as the sender compresses) ratio in per mille of 256 pages with 32·k literal words each,
 * k = 0..16, measured with kp-content (half and all of them text: the two differ by < 1 %). The runs
 * and the literals' framing make it not quite linear; kp_content_layout interpolates it. */
static const uint16_t lz4_by_literal32[17] = { 27, 88, 150, 212, 275, 337, 400, 486, 550, 613, 676, 738, 780, 840, 902, 965, 1000 };

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

/* Literal words per page for an LZ4 ratio: the inverse of lz4_by_literal32, interpolated. */
static uint32_t literal_words_for(uint32_t lz4_permille)
{
    if (lz4_permille <= lz4_by_literal32[0]) return 0;
    for (uint32_t k = 0; k < 16; k++) {
        uint32_t lo = lz4_by_literal32[k], hi = lz4_by_literal32[k + 1];
        if (lz4_permille <= hi) return 32 * k + (32 * (lz4_permille - lo) + (hi - lo) / 2) / (hi - lo);
    }
    return 512;
}

struct kp_content kp_content_layout(uint32_t lz4_permille)
{
    struct kp_content c;
    c.lz4_permille = lz4_permille == 0 || lz4_permille > 1000 ? 1000 : lz4_permille;
    uint32_t text_permille = c.lz4_permille == 1000 ? 0 : c.lz4_permille <= 200 ? 1000
        : c.lz4_permille >= 250 ? 750 : 1000 - (c.lz4_permille - 200) * 5;
    c.literal_words = literal_words_for(c.lz4_permille);
    c.text_words = c.literal_words * text_permille / 1000;
    return c;
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

/* Block b's share of the page's literal and text words (the remainders spread over the blocks). */
static inline uint64_t block_literal(const struct kp_content *c, uint64_t b) { return (c->literal_words + b) / BLOCKS; }
static inline uint64_t block_text(const struct kp_content *c, uint64_t b) { return (c->text_words + b) / BLOCKS; }

static inline uint64_t content_word(const struct kp_content *c, uint64_t key, uint64_t i)
{
    uint64_t b = i / BLOCK_WORDS, j = i % BLOCK_WORDS, literal = block_literal(c, b);
    if (j >= literal) return data_word(key, b * BLOCK_WORDS + BLOCK_WORDS - 1);
    uint64_t w = data_word(key, i);
    return j < literal - block_text(c, b) ? w : (w & TEXT_MASK) | TEXT_BASE;
}

void kp_page_data(uint64_t *page, uint64_t seed, uint64_t pfn, uint64_t version, const struct kp_content *c)
{
    uint64_t key = page_key(seed, pfn, version);
    page[0] = KP_PAGE_TAG | pfn;
    page[1] = version;
    if (c->literal_words == 512 && c->text_words == 0) {    /* random: the one loop it always was (as fast) */
        for (uint64_t i = 2; i < 512; i++)
            page[i] = data_word(key, i);
        return;
    }
    for (uint64_t b = 0; b < BLOCKS; b++) {
        uint64_t first = b * BLOCK_WORDS, end = first + BLOCK_WORDS;
        uint64_t literal_end = first + block_literal(c, b), random_end = literal_end - block_text(c, b);
        uint64_t i = first;
        for (; i < random_end; i++) page[i] = data_word(key, i);
        for (; i < literal_end; i++) page[i] = (data_word(key, i) & TEXT_MASK) | TEXT_BASE;
        uint64_t run = data_word(key, end - 1);
        for (; i < end; i++) page[i] = run;
    }
    page[0] = KP_PAGE_TAG | pfn;   /* over block 0's first two words */
    page[1] = version;
}

uint64_t kp_expected_word(uint64_t seed, uint64_t pfn, enum kp_expect kind, uint64_t version, uint64_t index, const struct kp_content *c)
{
    switch (kind) {
    case KP_EXPECT_DATA:
        if (index == 0) return KP_PAGE_TAG | pfn;
        if (index == 1) return version;
        return content_word(c, page_key(seed, pfn, version), index);
    case KP_EXPECT_PATTERN:
        return index == 0 ? kp_pattern_byte(seed, pfn) : 0;
    default:
        return 0;
    }
}

uint64_t kp_page_check(const uint64_t *page, uint64_t seed, uint64_t pfn, enum kp_expect kind, uint64_t version, uint64_t *digest,
                       const struct kp_content *c)
{
    uint64_t d = *digest, bad = 0;
    if (kind == KP_EXPECT_DATA) {
        uint64_t key = page_key(seed, pfn, version);
        if (page[0] != (KP_PAGE_TAG | pfn)) bad = 1;
        else if (page[1] != version) bad = 2;
        for (uint64_t i = 0; i < 512; i++) {
            uint64_t w = page[i];
            d = (d ^ w) * 0x100000001B3ULL;
            if (i >= 2 && !bad && w != content_word(c, key, i)) bad = i + 1;
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
