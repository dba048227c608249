/*
 * wl_database.c — workload 6: a database server (PostgreSQL-like) under a TPC-B-like load
 * (pgbench's default script). Transactions run at a fixed rate, spread over the clients' backends:
 *
 *   accounts   a random accounts block is read into its buffer (the pool is modelled direct-mapped:
 *              block b lives in buffer b mod buffers, evicting whatever block was there) and
 *              updated: both 4 KiB pages of the 8 KiB buffer are written;
 *   tellers,   one block each, updated by every transaction: very hot;
 *   branches
 *   history    a row appended to the current history block; every ROWS_PER_HISTORY_BLOCK rows the
 *              next block is taken (a new buffer);
 *   descriptor the buffer descriptors of the buffers pinned (64 B each);
 *   shared     lock manager, PGPROC, clog, statistics: a few random pages of a hot shared area;
 *   backend    the backend's private memory (executor and catalog caches): a few random pages;
 *   WAL        the transaction's records are appended to the WAL buffer ring; the first change of a
 *              block after a checkpoint adds a full-page image (8 KiB);
 *   checkpoint every checkpoint interval: the checkpointer clears every descriptor's dirty flag
 *              (all descriptor pages written), and full-page images start over.
 *
 * Defaults fitted to PostgreSQL 15 (128 MB shared buffers) under pgbench, 4 clients, scale 10
 * (tests/data/traces/apps/database-postgres.kptrace). progress = transactions. Parameters: docs/WORKLOADS.md.
 */
#include "rt.h"
#include "ticker.h"

#define BLOCK_PAGES 2                   /* BLCKSZ 8192 */
#define ROWS_PER_ACCOUNTS_BLOCK 61      /* pgbench_accounts: 61 rows of 100+ B per 8 KiB block */
#define ROWS_PER_HISTORY_BLOCK 100      /* pgbench_history rows are ~50 B plus tuple header */
#define DESC_BYTES 64                   /* sizeof(BufferDesc), one cache line */
#define MAX_BLOCKS (1u << 17)           /* full-page-image bitmap: accounts blocks + tellers + branches (scale 80) */
#define MAX_CLIENTS 64
#define BATCH_US 5000                   /* transactions are run in 5 ms batches, at the rate's average */
#define MS 1000ULL

struct database {
    struct kp_region pool, desc, shared, backends, wal;
    struct kp_ticker batch, checkpoint;
    uint64_t rng;
    uint64_t tps, buffers, accounts_blocks, clients, backend_pages, backend_writes, shared_writes, wal_bytes_per_txn;
    uint64_t start_us, done, wal_pos, history_rows;
    uint64_t fpi[MAX_BLOCKS / 64];      /* blocks changed since the last checkpoint (full-page image written) */
};

/* Pins and changes block: its buffer and descriptor written; returns the WAL bytes of its full-page image, if due. */
static uint64_t touch_block(struct kp_rt *rt, struct database *d, uint64_t block)
{
    uint64_t buf = block % d->buffers;
    for (uint64_t i = 0; i < BLOCK_PAGES; i++) kp_region_write_page(rt, d->pool, buf * BLOCK_PAGES + i);
    kp_region_write_page(rt, d->desc, buf * DESC_BYTES / KP_PAGE_SIZE);
    uint64_t bit = block % MAX_BLOCKS;
    if (d->fpi[bit / 64] & (1ULL << (bit % 64))) return 0;
    d->fpi[bit / 64] |= 1ULL << (bit % 64);
    return BLOCK_PAGES * KP_PAGE_SIZE;
}

static void transaction(struct kp_rt *rt, struct database *d)
{
    uint64_t wal = d->wal_bytes_per_txn;
    wal += touch_block(rt, d, kp_rand_below(&d->rng, d->accounts_blocks));      /* UPDATE accounts, SELECT */
    wal += touch_block(rt, d, d->accounts_blocks);                              /* UPDATE tellers */
    wal += touch_block(rt, d, d->accounts_blocks + 1);                          /* UPDATE branches */
    uint64_t hblock = d->accounts_blocks + 2 + d->history_rows++ / ROWS_PER_HISTORY_BLOCK;
    wal += touch_block(rt, d, hblock);                                          /* INSERT INTO history */
    for (uint64_t i = 0; i < d->shared_writes; i++)
        kp_region_write_page(rt, d->shared, kp_rand_below(&d->rng, d->shared.pages));
    uint64_t backend = d->done % d->clients;
    for (uint64_t i = 0; i < d->backend_writes; i++)
        kp_region_write_page(rt, d->backends, backend * d->backend_pages + kp_rand_below(&d->rng, d->backend_pages));
    kp_region_write_bytes(rt, d->wal, d->wal_pos, wal);                        /* XLogInsert, COMMIT */
    d->wal_pos = (d->wal_pos + wal) % (d->wal.pages * KP_PAGE_SIZE);
    d->done++;
}

static uint64_t database_step(struct kp_rt *rt, void *ctx, uint64_t now)
{
    struct database *d = ctx;
    if (kp_tick(&d->checkpoint, now, 1)) {
        kp_region_write_all(rt, d->desc);           /* BM_DIRTY cleared on every buffer written out */
        kp_memset(d->fpi, 0, sizeof d->fpi);
    }
    uint32_t txns = 0;
    if (kp_tick(&d->batch, now, 1)) {
        uint64_t due = (now - d->start_us) * d->tps / 1000000;
        if (due > d->done + d->tps) d->done = due - d->tps;   /* clients waited through a stall: at most 1 s of backlog */
        while (d->done < due) { transaction(rt, d); txns++; }
    }
    kp_progress(rt, txns);
    return d->batch.next_us < d->checkpoint.next_us ? d->batch.next_us : d->checkpoint.next_us;
}

void kp_run_database(struct kp_rt *rt)
{
    struct database db;                     /* ~16 KiB, on the guest stack like every workload's state */
    struct database *d = &db;
    kp_memset(d, 0, sizeof *d);
    d->rng = kp_mix64(rt->seed ^ 0xDA7AULL);
    d->tps = kp_param(rt, 0, 2200);
    uint64_t pool_bytes = kp_param(rt, 1, 128ULL << 20);
    uint64_t accounts = kp_param(rt, 2, 1000000);
    uint64_t wal_bytes = kp_param(rt, 3, 4ULL << 20);
    uint64_t checkpoint_ms = kp_param(rt, 4, 300000);
    d->clients = kp_param(rt, 5, 4);
    d->backend_pages = kp_param(rt, 6, 600 << 10) / KP_PAGE_SIZE;
    d->backend_writes = kp_param(rt, 7, 3);
    uint64_t shared_bytes = kp_param(rt, 8, 1600 << 10);
    d->shared_writes = kp_param(rt, 9, 6);
    d->wal_bytes_per_txn = kp_param(rt, 10, 600);
    d->buffers = pool_bytes / (BLOCK_PAGES * KP_PAGE_SIZE);
    d->accounts_blocks = (accounts + ROWS_PER_ACCOUNTS_BLOCK - 1) / ROWS_PER_ACCOUNTS_BLOCK;
    if (d->tps > 100000) kp_fail(rt, KP_EXIT_BAD_WORKLOAD, "database: params[0] (transactions/s) must be at most 100000");
    if (d->buffers < 16) kp_fail(rt, KP_EXIT_BAD_WORKLOAD, "database: params[1] (shared buffers) must be at least 256 KiB");
    if (d->accounts_blocks + 2 > MAX_BLOCKS) kp_fail(rt, KP_EXIT_BAD_WORKLOAD, "database: params[2] (accounts rows) must be at most 7,995,000 (scale 79)");
    if (d->clients > MAX_CLIENTS) kp_fail(rt, KP_EXIT_BAD_WORKLOAD, "database: params[5] (clients) must be 1..64");
    if (d->backend_pages == 0 || d->backend_writes > d->backend_pages)
        kp_fail(rt, KP_EXIT_BAD_WORKLOAD, "database: params[6] (backend memory) must be at least 4 KiB and hold params[7] pages");
    uint64_t desc_pages = (d->buffers * DESC_BYTES + KP_PAGE_SIZE - 1) / KP_PAGE_SIZE;
    uint64_t shared_pages = (shared_bytes + KP_PAGE_SIZE - 1) / KP_PAGE_SIZE, wal_pages = (wal_bytes + KP_PAGE_SIZE - 1) / KP_PAGE_SIZE;

    kp_work_reserve(rt, d->buffers * BLOCK_PAGES + desc_pages + shared_pages + d->clients * d->backend_pages + wal_pages, "database");
    d->pool = kp_region_alloc(rt, d->buffers * BLOCK_PAGES * KP_PAGE_SIZE);
    d->desc = kp_region_alloc(rt, d->buffers * DESC_BYTES);
    d->shared = kp_region_alloc(rt, shared_bytes);
    d->backends = kp_region_alloc(rt, d->clients * d->backend_pages * KP_PAGE_SIZE);
    d->wal = kp_region_alloc(rt, wal_bytes);
    kp_region_write_all(rt, d->pool);       /* the pool warmed up with the tables (pgbench's first run) */
    kp_region_write_all(rt, d->desc);
    kp_region_write_all(rt, d->shared);
    kp_region_write_all(rt, d->backends);   /* the clients connected */
    kp_region_write_all(rt, d->wal);
    uint64_t now = kp_clock_us(rt);
    d->start_us = now;                      /* a checkpoint has just completed: full-page images start now */
    kp_ticker_start(&d->batch, now + BATCH_US, BATCH_US);
    kp_ticker_start(&d->checkpoint, now + checkpoint_ms * MS, checkpoint_ms * MS);
    kp_loop(rt, database_step, d);
}
