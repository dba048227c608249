/*
 * kp-content.c — the guest's page content on the host (development tool; content.c compiled with
 * the guest's flags, so the timing is the guest's code).
 *   kp-content pages PERMILLE [COUNT]   COUNT (default 256) data pages (pfns 4096.., versions 1..)
 *                                       for that content_lz4_permille, raw to stdout: pipe into
 *                                       `lz4 -1` / `zstd -1` to measure the ratios
 *   kp-content check PERMILLE           each page passes kp_page_check; as an older version, as
 *                                       another pfn and with one flipped bit it fails; prints how
 *                                       many words a stale and a misplaced page differ in
 *   kp-content bench PERMILLE [SECONDS] ns per kp_page_data (one 4 KiB page, in cache): the fastest
 *                                       and the median of 50 ms rounds of thread CPU time (the
 *                                       fastest is the one other load on the host disturbs least)
 * PERMILLE 0 or 1000 = random (incompressible) content.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "../rt.h"

#define FIRST_PFN 4096

static uint64_t page[512], other[512];

static double cpu_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int pages(const struct kp_content *c, long count)
{
    for (long k = 0; k < count; k++) {
        kp_page_data(page, 1, FIRST_PFN + k, 1 + k % 7, c);
        if (fwrite(page, sizeof page, 1, stdout) != 1) { perror("kp-content: stdout"); return 1; }
    }
    return 0;
}

static int differing(const uint64_t *a, const uint64_t *b)
{
    int n = 0;
    for (int i = 0; i < 512; i++) n += a[i] != b[i];
    return n;
}

static int check(const struct kp_content *c)
{
    uint64_t d = 0, min_stale = 512, min_misplaced = 512, failures = 0;
    for (uint64_t k = 0; k < 1000; k++) {
        uint64_t pfn = FIRST_PFN + k, version = 2 + k % 5;
        kp_page_data(page, 1, pfn, version, c);
        if (kp_page_check(page, 1, pfn, KP_EXPECT_DATA, version, &d, c)) { fprintf(stderr, "pfn %lu v%lu: a fresh page fails its check\n", pfn, version); failures++; }
        for (uint64_t i = 0; i < 512; i++)
            if (kp_expected_word(1, pfn, KP_EXPECT_DATA, version, i, c) != page[i]) { fprintf(stderr, "pfn %lu: kp_expected_word(%lu) disagrees\n", pfn, i); failures++; break; }
        if (!kp_page_check(page, 1, pfn, KP_EXPECT_DATA, version + 1, &d, c)) { fprintf(stderr, "pfn %lu: a stale page passes\n", pfn); failures++; }
        if (!kp_page_check(page, 1, pfn + 1, KP_EXPECT_DATA, version, &d, c)) { fprintf(stderr, "pfn %lu: a misplaced page passes\n", pfn); failures++; }
        kp_page_data(other, 1, pfn, version - 1, c);
        uint64_t n = (uint64_t)differing(page, other);
        if (n < min_stale) min_stale = n;
        kp_page_data(other, 1, pfn + 1, version, c);
        n = (uint64_t)differing(page, other);
        if (n < min_misplaced) min_misplaced = n;
        page[(k * 37) % 512] ^= 1ULL << (k % 64);
        if (!kp_page_check(page, 1, pfn, KP_EXPECT_DATA, version, &d, c)) { fprintf(stderr, "pfn %lu: a flipped bit passes\n", pfn); failures++; }
    }
    printf("content %u permille (%u literal words, %u text): 1000 pages, %lu failures; a stale page differs in >= %lu of 512 words, a misplaced one in >= %lu\n",
           c->lz4_permille, c->literal_words, c->text_words, failures, min_stale, min_misplaced);
    return failures != 0;
}

#define MAX_ROUNDS 1000

static int bench(const struct kp_content *c, double seconds)
{
    static double ns[MAX_ROUNDS];
    uint64_t n = 0, sink = 0;
    int rounds = 0;
    for (double spent = 0; spent < seconds && rounds < MAX_ROUNDS; rounds++) {
        uint64_t done = 0;
        double start = cpu_s(), end = start;
        while (end - start < 0.05) {
            for (int k = 0; k < 1000; k++, n++, done++) {
                kp_page_data(page, 1, FIRST_PFN + (n & 1023), n, c);
                sink += page[n & 511];
            }
            end = cpu_s();
        }
        ns[rounds] = (end - start) * 1e9 / done;
        spent += end - start;
    }
    qsort(ns, rounds, sizeof ns[0], by_value);
    printf("content %u permille: %.1f ns per page fastest, %.1f median (%d rounds of 50 ms CPU time; %lu)\n",
           c->lz4_permille, ns[0], ns[rounds / 2], rounds, sink & 1);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: kp-content pages|check|bench PERMILLE [COUNT|SECONDS] (see the header of kp-content.c)\n");
        return 2;
    }
    long permille = strtol(argv[2], 0, 0);
    if (permille < 0 || permille > 1000) { fprintf(stderr, "kp-content: PERMILLE must be 0..1000\n"); return 2; }
    struct kp_content c = kp_content_layout((uint32_t)permille);
    if (!strcmp(argv[1], "pages")) return pages(&c, argc > 3 ? atol(argv[3]) : 256);
    if (!strcmp(argv[1], "check")) return check(&c);
    if (!strcmp(argv[1], "bench")) return bench(&c, argc > 3 ? atof(argv[3]) : 2);
    fprintf(stderr, "kp-content: unknown mode %s (pages, check or bench)\n", argv[1]);
    return 2;
}
