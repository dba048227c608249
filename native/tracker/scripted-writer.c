/* scripted-writer — a forking, scripted page writer for the process-tree capture's tests (ProcessTreeCapture,
 * `kvmpresync trace capture`). Its dedicated regions have names in /proc/PID/maps, so a test can tell them apart
 * from everything else the program (libc, the loader) writes:
 *   A  PAGES pages, private:  a MAP_PRIVATE mapping of memfd "kp-private"  -> "/memfd:kp-private (deleted)"
 *   S  PAGES pages, shared:   a MAP_SHARED  mapping of memfd "kp-shared"   -> "/memfd:kp-shared (deleted)"
 *   B  mapped on demand (m):  a MAP_PRIVATE mapping of memfd "kp-later"    -> "/memfd:kp-later (deleted)"
 * Nothing is written into them at start.
 *
 *   scripted-writer PAGES          prints "ready 0xA 0xS PAGES", then one command per line on stdin, "done ..." after each:
 *     w R P1 P2 ...   write one byte into each listed page of region R (A, S or B)        -> "done N"
 *     r R P1 P2 ...   read them (no write)                                                -> "done N"
 *     m N             map region B with N pages                                           -> "done 0xB"
 *     f               fork a child; later "c CMD" lines go to it                          -> "done PID"
 *     c CMD           run CMD (w/r/m) in the child, relay its reply                       -> the child's reply
 *     q               exit (the child exits with it)
 *   scripted-writer --loop PAGES   forks one child, then parent and child each write pages 0..PAGES-1 of A (their
 *                                  own copies) and the parent pages 0..PAGES/4-1 of S, every 10 ms, until killed;
 *                                  prints "ready" once both run. For `trace capture` tests. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct region {
    volatile uint8_t *mem;
    long pages;
};

static long g_psz;

static struct region map_named(const char *name, long pages, int flags)
{
    struct region r = { NULL, pages };
    int fd = memfd_create(name, MFD_CLOEXEC);
    if (fd < 0 || ftruncate(fd, pages * g_psz) < 0) {
        perror("scripted-writer: memfd");
        exit(1);
    }
    void *p = mmap(NULL, (size_t)(pages * g_psz), PROT_READ | PROT_WRITE, flags, fd, 0);
    if (p == MAP_FAILED) {
        perror("scripted-writer: mmap");
        exit(1);
    }
    close(fd);
    r.mem = p;
    return r;
}

/* Runs one w/r/m command on this process's regions; writes the reply into `reply`. */
static void run(char *line, struct region *a, struct region *s, struct region *b, char *reply, size_t cap)
{
    char op = line[0];
    if (op == 'm') {
        long n = strtol(line + 1, NULL, 10);
        *b = map_named("kp-later", n > 0 ? n : 1, MAP_PRIVATE);
        snprintf(reply, cap, "done 0x%llx", (unsigned long long)(uintptr_t)b->mem);
        return;
    }
    if (op != 'w' && op != 'r') {
        snprintf(reply, cap, "error unknown command %c", op);
        return;
    }
    char *p = line + 1;
    while (*p == ' ')
        p++;
    struct region *r = *p == 'A' ? a : *p == 'S' ? s : *p == 'B' ? b : NULL;
    if (!r || !r->mem) {
        snprintf(reply, cap, "error no region %c", *p);
        return;
    }
    p++;
    long n = 0;
    uint64_t sink = 0;
    for (char *end;; p = end) {
        long page = strtol(p, &end, 10);
        if (end == p)
            break;
        if (page < 0 || page >= r->pages)
            continue;
        volatile uint8_t *byte = r->mem + page * g_psz + (size_t)((n * 64) % g_psz);
        if (op == 'w')
            *byte = (uint8_t)(*byte + 1);
        else
            sink += *byte;
        n++;
    }
    snprintf(reply, cap, "done %ld", n + (long)(sink & 0));
}

static void sleep_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
    nanosleep(&ts, NULL);
}

static int loop(long pages)
{
    struct region a = map_named("kp-private", pages, MAP_PRIVATE);
    struct region s = map_named("kp-shared", pages, MAP_SHARED);
    pid_t child = fork();
    if (child < 0) {
        perror("scripted-writer: fork");
        return 1;
    }
    if (child == 0)
        prctl(PR_SET_PDEATHSIG, SIGTERM);
    else {
        printf("ready %d\n", (int)child);
        fflush(stdout);
    }
    for (;;) {
        for (long p = 0; p < pages; p++)
            a.mem[p * g_psz]++;
        if (child > 0)
            for (long p = 0; p < pages / 4; p++)
                s.mem[p * g_psz]++;
        sleep_ms(10);
    }
}

int main(int argc, char **argv)
{
    g_psz = sysconf(_SC_PAGESIZE);
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 3 && strcmp(argv[1], "--loop") == 0)
        return loop(strtol(argv[2], NULL, 10));
    long pages = argc == 2 ? strtol(argv[1], NULL, 10) : 0;
    if (pages <= 0) {
        fprintf(stderr, "usage: scripted-writer PAGES | scripted-writer --loop PAGES\n");
        return 2;
    }
    struct region a = map_named("kp-private", pages, MAP_PRIVATE);
    struct region s = map_named("kp-shared", pages, MAP_SHARED);
    struct region b = { NULL, 0 };
    printf("ready 0x%llx 0x%llx %ld\n", (unsigned long long)(uintptr_t)a.mem, (unsigned long long)(uintptr_t)s.mem, pages);

    static char line[1 << 16], reply[256];
    FILE *to_child = NULL, *from_child = NULL;
    pid_t child = 0;
    while (fgets(line, sizeof(line), stdin)) {
        if (line[0] == 'q')
            break;
        if (line[0] == 'f') {
            int down[2], up[2];
            if (child || pipe(down) < 0 || pipe(up) < 0) {
                printf("error fork: %s\n", child ? "a child runs already" : "pipe failed");
                continue;
            }
            child = fork();
            if (child == 0) { /* the child: commands from the parent over a pipe */
                close(down[1]);
                close(up[0]);
                FILE *in = fdopen(down[0], "r"), *out = fdopen(up[1], "w");
                while (fgets(line, sizeof(line), in)) {
                    run(line, &a, &s, &b, reply, sizeof(reply));
                    fprintf(out, "%s\n", reply);
                    fflush(out);
                }
                _exit(0);
            }
            close(down[0]);
            close(up[1]);
            to_child = fdopen(down[1], "w");
            from_child = fdopen(up[0], "r");
            printf("done %d\n", (int)child);
            continue;
        }
        if (line[0] == 'c') {
            if (!child) {
                printf("error no child\n");
                continue;
            }
            fputs(line + 2, to_child);
            fflush(to_child);
            if (!fgets(reply, sizeof(reply), from_child))
                snprintf(reply, sizeof(reply), "error child gone\n");
            fputs(reply, stdout);
            continue;
        }
        run(line, &a, &s, &b, reply, sizeof(reply));
        printf("%s\n", reply);
    }
    if (child) {
        fclose(to_child);
        waitpid(child, NULL, 0);
    }
    return 0;
}
