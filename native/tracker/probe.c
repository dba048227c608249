/* tracker-probe — a scripted writer for the process-memory tracker's exactness tests.
 *   tracker-probe PAGES [FILE]
 * Maps PAGES pages (anonymous private memory, or FILE shared — created and sized — when given), writes every page
 * once, prints "ready 0xADDR PAGES", then obeys one command per line on stdin:
 *   w P1 P2 ...   write one byte into each listed page (an increment, so the content changes)   -> "ok N"
 *   r P1 P2 ...   read each listed page (no write)                                               -> "ok N"
 *   q             exit                                                                           -> (exits 0)
 * Page numbers are relative to the mapping. Nothing else is written inside the mapping. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: tracker-probe PAGES [FILE]\n");
        return 2;
    }
    long pages = strtol(argv[1], NULL, 10);
    long psz = sysconf(_SC_PAGESIZE);
    if (pages <= 0) {
        fprintf(stderr, "tracker-probe: bad page count %s\n", argv[1]);
        return 2;
    }
    size_t len = (size_t)pages * (size_t)psz;
    volatile uint8_t *mem;
    if (argc > 2) {
        int fd = open(argv[2], O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0 || ftruncate(fd, (off_t)len) < 0) {
            perror("tracker-probe: file");
            return 1;
        }
        mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    } else {
        mem = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    }
    if (mem == MAP_FAILED) {
        perror("tracker-probe: mmap");
        return 1;
    }
    for (long p = 0; p < pages; p++)
        mem[p * psz] = 1;
    printf("ready 0x%llx %ld\n", (unsigned long long)(uintptr_t)mem, pages);
    fflush(stdout);

    char line[1 << 16];
    uint64_t sink = 0;
    while (fgets(line, sizeof(line), stdin)) {
        char op = line[0];
        if (op == 'q')
            break;
        if (op != 'w' && op != 'r') {
            printf("error unknown command %c\n", op);
            fflush(stdout);
            continue;
        }
        long n = 0;
        char *s = line + 1, *end;
        for (;;) {
            long p = strtol(s, &end, 10);
            if (end == s)
                break;
            s = end;
            if (p < 0 || p >= pages)
                continue;
            /* a different byte of the page each time, to show the tracking is per page, not per line */
            volatile uint8_t *b = mem + p * psz + (size_t)((n * 64) % psz);
            if (op == 'w')
                *b = (uint8_t)(*b + 1);
            else
                sink += *b;
            n++;
        }
        printf("ok %ld\n", n);
        fflush(stdout);
    }
    return (int)(sink & 0);
}
