/* kvmpresync-libvirt-hook — libvirt's qemu hook on a destination host that receives pre-synchronized migrations
 * (docs/LIBVIRT.md, "The destination hook"). Install it as /etc/libvirt/hooks/qemu (or in /etc/libvirt/hooks/qemu.d/)
 * and restart libvirtd: libvirt looks for hooks only when it starts.
 *
 * libvirt runs it as: kvmpresync-libvirt-hook NAME OPERATION SUB-OPERATION EXTRA, with the domain XML on stdin.
 * It acts only for domains whose XML carries the presync session in its metadata
 *     <kp:presync xmlns:kp="https://kvmpresync.dev/libvirt/1" session="HEX"/>
 * (the source's `kvmpresync libvirt presync` puts it in the destination XML); for every other domain and operation it
 * exits 0 at once. For a presync destination it asks the local receiver over a unix socket (default
 * /run/kvmpresync/libvirt-hook.sock, or KVMPRESYNC_HOOK_SOCKET, or --socket PATH before libvirt's arguments):
 *     "start SESSION UUID ID\n"    at "start begin": the receiver links the pre-synchronized RAM file where QEMU
 *                                  will open its memory backend, before QEMU runs;
 *     "started SESSION UUID ID\n"  at "started begin": QEMU runs with that RAM, incoming; the receiver answers only once
 *                                  the memory is complete and its digest verified (or the migration failed).
 * At "migrate begin" (libvirt replaces the incoming XML with what the hook prints) it removes the argument
 * -kvmpresync-destination-hook-missing the source put in the XML, so QEMU refuses to start where this hook is absent.
 * The answer is one line: "ok" (exit 0) or "fail REASON" (REASON on stderr, which libvirt logs; exit 1, so libvirt
 * abandons the start and the source guest keeps its memory and runs on). No receiver listening → fail too: a presync
 * destination without its memory must not start. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define DEFAULT_SOCKET "/run/kvmpresync/libvirt-hook.sock"
#define MAX_XML (4 << 20)

static char *read_all(FILE *f)
{
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap + 1);
    if (!buf)
        return NULL;
    for (;;) {
        size_t n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (n == 0)
            break;
        if (len == cap) {
            if (cap >= MAX_XML)
                break;
            cap *= 2;
            char *grown = realloc(buf, cap + 1);
            if (!grown) {
                free(buf);
                return NULL;
            }
            buf = grown;
        }
    }
    buf[len] = 0;
    return buf;
}

/* Copies the value of attribute ATTR (quoted with ' or ") found after position FROM into OUT; 0 when found. */
static int attribute(const char *from, const char *attr, char *out, size_t cap)
{
    const char *p = strstr(from, attr);
    if (!p)
        return -1;
    p += strlen(attr);
    if (*p != '=' || (p[1] != '\'' && p[1] != '"'))
        return -1;
    char quote = p[1];
    p += 2;
    const char *end = strchr(p, quote);
    if (!end || (size_t)(end - p) >= cap)
        return -1;
    memcpy(out, p, (size_t)(end - p));
    out[end - p] = 0;
    return 0;
}

/* The text of the first <TAG>…</TAG>. */
static int element(const char *xml, const char *tag, char *out, size_t cap)
{
    char open[64];
    snprintf(open, sizeof(open), "<%s>", tag);
    const char *p = strstr(xml, open);
    if (!p)
        return -1;
    p += strlen(open);
    const char *end = strchr(p, '<');
    if (!end || (size_t)(end - p) >= cap)
        return -1;
    memcpy(out, p, (size_t)(end - p));
    out[end - p] = 0;
    return 0;
}

/* Prints XML with every element carrying the guard argument removed (libvirt formats it <qemu:arg value='…'/>). */
static void print_without_guard(const char *xml)
{
    const char *guard = "-kvmpresync-destination-hook-missing";
    const char *p = xml;
    for (;;) {
        const char *hit = strstr(p, guard);
        if (!hit) {
            fputs(p, stdout);
            break;
        }
        const char *open = hit;
        while (open > p && *open != '<')
            open--;
        const char *close = strstr(hit, "/>");
        if (*open != '<' || !close) { /* not inside an element we can cut: print as is */
            fputs(p, stdout);
            break;
        }
        fwrite(p, 1, (size_t)(open - p), stdout);
        p = close + 2;
    }
    fflush(stdout);
}

static int hex_only(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f') || (*s >= 'A' && *s <= 'F')))
            return 0;
    return 1;
}

static int ask(const char *path, const char *line, char *answer, size_t cap)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(addr.sun_path)) {
        close(fd);
        return -ENAMETOOLONG;
    }
    strcpy(addr.sun_path, path);
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    size_t len = strlen(line), off = 0;
    while (off < len) {
        ssize_t w = write(fd, line + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int e = errno;
            close(fd);
            return -e;
        }
        off += (size_t)w;
    }
    size_t got = 0;
    while (got < cap - 1) {
        ssize_t r = read(fd, answer + got, cap - 1 - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
        if (memchr(answer, '\n', got))
            break;
    }
    close(fd);
    answer[got] = 0;
    char *nl = strchr(answer, '\n');
    if (nl)
        *nl = 0;
    return got > 0 ? 0 : -ECONNRESET;
}

int main(int argc, char **argv)
{
    const char *sock = getenv("KVMPRESYNC_HOOK_SOCKET");
    if (argc > 2 && strcmp(argv[1], "--socket") == 0) {
        sock = argv[2];
        argv += 2;
        argc -= 2;
    }
    if (!sock || !*sock)
        sock = DEFAULT_SOCKET;
    if (argc < 4)
        return 0; /* not called by libvirt's qemu driver as documented: nothing to do */
    const char *op = argv[2], *sub = argv[3];
    int at_migrate = strcmp(op, "migrate") == 0 && strcmp(sub, "begin") == 0;
    int at_start = strcmp(op, "start") == 0 && strcmp(sub, "begin") == 0;
    int at_started = strcmp(op, "started") == 0 && strcmp(sub, "begin") == 0;
    char *xml = read_all(stdin); /* always drained: libvirt writes the whole XML, whatever the operation */
    if (!xml || (!at_start && !at_started && !at_migrate)) {
        free(xml);
        return 0;
    }
    if (at_migrate) {
        if (strstr(xml, "kvmpresync.dev/libvirt/1"))
            print_without_guard(xml);
        free(xml);
        return 0;
    }
    const char *meta = strstr(xml, "kvmpresync.dev/libvirt/1");
    char session[64], uuid[64], id[32];
    if (!meta) {
        free(xml);
        return 0; /* not a presync destination */
    }
    const char *tag = meta;
    while (tag > xml && *tag != '<')
        tag--;
    if (attribute(tag, "session", session, sizeof(session)) != 0 || !hex_only(session)) {
        fprintf(stderr, "kvmpresync-libvirt-hook: %s: presync metadata without a valid session attribute\n", argv[1]);
        free(xml);
        return 1;
    }
    const char *dom = strstr(xml, "<domain");
    if (element(xml, "uuid", uuid, sizeof(uuid)) != 0 || !dom || attribute(dom, "id", id, sizeof(id)) != 0) {
        fprintf(stderr, "kvmpresync-libvirt-hook: %s: the domain XML has no uuid or id\n", argv[1]);
        free(xml);
        return 1;
    }
    free(xml);
    char line[256], answer[1024];
    snprintf(line, sizeof(line), "%s %s %s %s\n", at_start ? "start" : "started", session, uuid, id);
    int r = ask(sock, line, answer, sizeof(answer));
    if (r < 0) {
        fprintf(stderr, "kvmpresync-libvirt-hook: %s: no KvmPresync receiver answers on %s (%s): start `kvmpresync receive --libvirt` "
                        "on this host; refusing to start a presync destination without its memory\n", argv[1], sock, strerror(-r));
        return 1;
    }
    if (strcmp(answer, "ok") == 0)
        return 0;
    fprintf(stderr, "kvmpresync-libvirt-hook: %s: %s\n", argv[1], answer);
    return 1;
}
