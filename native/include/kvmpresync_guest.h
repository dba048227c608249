/*
 * kvmpresync_guest.h — the contract between the VMM (src/KvmPresync.Vmm) and the project's own
 * freestanding x86-64 workload guests (native/guest/). Both sides follow this file; the C# mirror
 * is src/KvmPresync.Vmm/GuestAbi.cs and a test proves the two agree.
 *
 * Guest RAM is laid out as QEMU's pc machine and Firecracker do: up to a low-memory top (3 GiB by
 * default) in RAM region 0 at GPA 0, the rest in region 1 from GPA 4 GiB (KP_HIGH_MEMORY_GPA); the
 * hole between is never RAM (MMIO/PCI on a real machine). boot_info.regions lists the regions.
 *
 * Guest-virtual layout (long mode, 2 MiB pages, set up by the VMM): the guest sees its RAM as one
 * range [0, memory_size). Virtual [0, low top) maps GPA [0, low top) one to one; virtual
 * [low top, memory_size) maps region 1, GPA [4 GiB, ...). So the guest's page numbers ("pfn",
 * virtual address / 4096) are the VMM's linear page indices (region 0's pages, then region 1's),
 * the heap runs across both regions, and no page of the hole is ever touched. Region 0 holds:
 *
 *   0x0000_1000  GDT (null, kcode64 0x08, kdata 0x10, ucode64 0x18, udata 0x20); the guest runs at CPL 3, IOPL 3
 *   0x0000_8000  struct kp_boot_info (one page): read by the guest, mailbox written by the guest
 *   0x0001_0000  page tables: PML4, PDPT, then one PD per GiB of guest memory (up to 62 GiB)
 *   0x0005_0000 .. 0x000A_0000  stack (RSP starts at KP_STACK_TOP_GPA, grows down)
 *   0x000A_0000 .. 0x000B_0000  replay mailbox (replay workload only): struct kp_replay_batch, written by the VMM
 *   0x0010_0000  guest image (flat binary linked here, entry = first byte), then .bss
 *   heap: from boot_info.heap_start (2 MiB aligned, after the image) to memory_size (virtual)
 *
 * Port I/O (all 32-bit accesses, `in eax,dx` / `out dx,eax`):
 *   KP_PORT_CLOCK_LO   in   latches the guest clock (microseconds since the guest first ran,
 *                           continuous across pause, save/restore and migration), returns low 32 bits
 *   KP_PORT_CLOCK_HI   in   high 32 bits of the value latched by the last CLOCK_LO read
 *   KP_PORT_PACE       out  sleep until guest clock >= mailbox.pace_deadline_us (0 = just yield); the VMM also
 *                           reads mailbox.sched_* (a paced workload's schedule caught up: see struct kp_mailbox)
 *   KP_PORT_PROGRESS   out  value = work units completed since the last report (keystrokes,
 *                           audio periods, video frames): the application-performance signal
 *   KP_PORT_HEARTBEAT  out  a heartbeat; the VMM reads mailbox.hb_* (see below)
 *   KP_PORT_READY      out  initial memory fill finished; value = pages filled (low 32 bits); the VMM reads
 *                           mailbox.sched_* as at PACE
 *   KP_PORT_CONSOLE    out  one character (low byte) of diagnostic text
 *   KP_PORT_EXIT       out  guest stops; value 0 = clean, otherwise a KP_EXIT_* error code
 *   KP_PORT_REPLAY     out  replay workload: "next batch"; value = the batch's sequence number (low 32 bits);
 *                           the VMM writes struct kp_replay_batch at KP_REPLAY_MAILBOX_GPA before returning
 *
 * Heartbeat: the guest keeps a running 64-bit checksum of its own state in its own memory.
 * At each heartbeat it sets hb_seq = previous seq + 1, hb_prev = the checksum reported by the
 * previous heartbeat, hb_sum = the new checksum (a hash of hb_prev, hb_seq and a sample of the
 * pages it wrote, each verified against what the guest knows it wrote), hb_errors = number of
 * sampled pages whose content was not what the guest wrote (0 in a correct run). Continuity across
 * a migration: the destination's first heartbeat has seq = last seq + 1 and prev = last sum.
 */
#ifndef KVMPRESYNC_GUEST_H
#define KVMPRESYNC_GUEST_H

#include <stdint.h>

#define KP_GDT_GPA            0x1000ULL
#define KP_BOOT_INFO_GPA      0x8000ULL
#define KP_PAGE_TABLE_GPA     0x10000ULL
#define KP_PAGE_TABLE_END_GPA 0x50000ULL
#define KP_STACK_TOP_GPA      0xA0000ULL
#define KP_GUEST_LOAD_GPA     0x100000ULL
#define KP_REPLAY_MAILBOX_GPA 0xA0000ULL
#define KP_REPLAY_MAILBOX_PAGES 16
#define KP_HIGH_MEMORY_GPA    0x100000000ULL /* region 1 (RAM above the low-memory top) starts here */
#define KP_MAX_RAM_REGIONS    4

#define KP_PORT_CLOCK_LO   0x510
#define KP_PORT_CLOCK_HI   0x514
#define KP_PORT_PACE       0x518
#define KP_PORT_PROGRESS   0x51C
#define KP_PORT_HEARTBEAT  0x520
#define KP_PORT_READY      0x524
#define KP_PORT_CONSOLE    0x528
#define KP_PORT_EXIT       0x52C
#define KP_PORT_REPLAY     0x530

#define KP_BOOT_MAGIC      0x4942504BU /* "KPBI" little-endian */
#define KP_BOOT_VERSION    3U /* 3: the mailbox's schedule fields, content_lz4_permille (was reserved) */

enum kp_workload {
    KP_WORKLOAD_IDLE  = 0,
    KP_WORKLOAD_TEXT  = 1,
    KP_WORKLOAD_AUDIO = 2,
    KP_WORKLOAD_MOVIE = 3,
    KP_WORKLOAD_PATTERN = 4, /* test workload: writes the page list in params, then heartbeats */
    KP_WORKLOAD_REPLAY = 5,  /* writes the pages of a recorded dirty trace, batch by batch, at their times */
    KP_WORKLOAD_DATABASE = 6, /* a database server under a TPC-B-like load */
};

enum kp_exit_code {
    KP_EXIT_OK = 0,
    KP_EXIT_BAD_BOOT_INFO = 1,
    KP_EXIT_BAD_WORKLOAD = 2,
    KP_EXIT_NO_MEMORY = 3,
    KP_EXIT_SELF_CHECK = 4,
};

/* Written by the guest just before an OUT to PACE, HEARTBEAT or READY. */
struct kp_mailbox {
    uint64_t pace_deadline_us;
    uint64_t hb_seq;
    uint64_t hb_prev;
    uint64_t hb_sum;
    uint64_t hb_errors;
    uint64_t progress_total; /* all work units since boot (the PROGRESS port carries deltas) */
    /* A paced workload's schedule (0 and 0: it keeps none), read by the VMM at READY, PACE and PROGRESS: the guest has done every
     * item of its schedule due before sched_due_us (the due time of the first item not yet done), so it is caught up to
     * min(now, sched_due_us); sched_lost_us sums the schedule time of the items it dropped as too late (text: a key's
     * time to the next key). Schedule time caught up = min(now, sched_due_us) - sched_lost_us. */
    uint64_t sched_due_us;
    uint64_t sched_lost_us;
};

/* Replay workload: one run of pages to write, as page indices inside the replay region. */
struct kp_replay_run {
    uint32_t first;
    uint32_t count;
};

#define KP_REPLAY_END 1U /* flags: no more batches; the guest only heartbeats from now on */

/* Replay workload: the batch the VMM wrote at KP_REPLAY_MAILBOX_GPA in answer to OUT KP_PORT_REPLAY. */
struct kp_replay_batch {
    uint64_t seq;                /* the request's sequence number, echoed */
    uint64_t interval;           /* trace interval the batch belongs to (counts on across loops of the trace) */
    uint64_t due_us;             /* guest clock at which to write it: the interval's start */
    uint64_t pages;              /* sum of the runs' counts */
    uint32_t run_count;          /* 0 .. KP_REPLAY_MAX_RUNS (0: an empty interval) */
    uint32_t flags;              /* KP_REPLAY_END */
    uint32_t progress;           /* work units the trace recorded for the interval (its first batch; 0 in the others) */
    uint32_t reserved;           /* 0 */
    struct kp_replay_run runs[]; /* run_count entries */
};

#define KP_REPLAY_MAX_RUNS ((KP_REPLAY_MAILBOX_PAGES * 4096 - sizeof(struct kp_replay_batch)) / sizeof(struct kp_replay_run))

/* One block of guest RAM (a KVM memory slot). */
struct kp_ram_region {
    uint64_t gpa;                /* guest-physical start (2 MiB aligned) */
    uint64_t size;               /* bytes (a multiple of 4096) */
    uint64_t first_pfn;          /* guest page number (virtual address / 4096) of its first page */
};

/* Written by the VMM before the guest first runs; read-only to the guest except the mailbox. */
struct kp_boot_info {
    uint32_t magic;              /* KP_BOOT_MAGIC */
    uint32_t version;            /* KP_BOOT_VERSION */
    uint32_t workload;           /* enum kp_workload */
    uint32_t flags;              /* reserved, 0 */
    uint64_t memory_size;        /* bytes of guest RAM over all regions (holes excluded) */
    uint64_t seed;               /* PRNG seed: same seed, same data */
    uint64_t heap_start;         /* first heap byte (2 MiB aligned) */
    uint64_t fill_bytes;         /* bytes of heap filled with data at start (from heap_start) */
    uint32_t zero_permille;      /* of the filled pages, how many per 1000 are left zero */
    uint32_t heartbeat_ms;       /* heartbeat period in guest milliseconds */
    uint64_t params[16];         /* workload parameters, indices documented in docs/WORKLOADS.md */
    struct kp_mailbox mailbox;
    uint32_t region_count;       /* 1..KP_MAX_RAM_REGIONS */
    uint32_t content_lz4_permille; /* data pages' LZ4 compressed/raw ratio to aim for, per mille (1..1000);
                                    0 or 1000 = pseudo-random words, incompressible (docs/WORKLOADS.md, "Page content") */
    struct kp_ram_region regions[KP_MAX_RAM_REGIONS]; /* by address; first_pfn contiguous from 0 */
};

#endif
