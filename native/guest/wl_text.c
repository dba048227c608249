/*
 * wl_text.c — workload 1: a person editing a large document in a GUI editor.
 *
 * Typing comes in bursts (keystrokes every ~200 ms) separated by idle gaps. A keystroke inserts
 * or deletes a character at the cursor: the document bytes from the cursor to the end of its line
 * shift (1-2 pages of the document buffer), and the editor redraws the text row from the cursor
 * to the line's end in the frame buffer (8x16 glyph cells: 16 scanlines, each on its own page).
 * Sometimes the cursor jumps (click, search, page keys): near jumps stay on screen (two cursor
 * cells redrawn), far jumps scroll and redraw the whole screen. While the user pauses the cursor
 * blinks (one cell redrawn per toggle) until the blink timeout. Every few seconds a spell-check
 * pass reads the document and updates a dictionary cache; every ~30 s an autosave writes the
 * document into the page cache. Every keystroke also rewrites the editor's per-key state (undo entry,
 * screen-line cache, terminal output and grid: KEY_STATE_PAGES). Defaults fitted to vim in a 100x40
 * terminal typing notes (tests/data/traces/apps/text-vim.kptrace). progress = keystrokes; schedule (kp_schedule) = the
 * due time of the next key, and a dropped key's time to the next key of its burst counts as lost; both are published
 * as each key is done.
 * Parameters: docs/WORKLOADS.md.
 */
#include "rt.h"
#include "ticker.h"

#define CELL_W 8           /* px: VGA 8x16 text font */
#define CELL_H 16
#define LINE_CHARS 80      /* document line length (bytes); the classic 80-column line */
#define BACKSPACE_PERMILLE 30
#define DICT_PAGES_PER_PASS 4
#define KEY_STATE_PAGES 44   /* fitted to vim + tmux: ~55 distinct pages written per keystroke, of them ~44 besides the row and the document */
#define MAX_KEY_LAG_US 1000000  /* keys queued longer than this while the guest was stopped are lost */
#define MS 1000ULL

struct text {
    struct kp_region doc, fb, dict, cache, keystate;
    uint64_t rng;                  /* the user's keystrokes: depends on the seed only */
    uint64_t spell_rng;            /* dictionary pages: apart, so timing cannot shift the keystroke stream */
    uint64_t doc_bytes, screen_w, screen_h, rows;
    uint64_t key_us, burst_min_us, burst_max_us, gap_min_us, gap_max_us;
    uint64_t jump_permille, blink_us, blink_timeout_us;
    uint64_t cursor, top;          /* byte offset in the document; first line on screen */
    int in_burst;
    uint64_t phase_end_us;         /* end of the current burst or gap */
    uint64_t next_key_us;
    uint64_t last_key_us;
    struct kp_ticker spell, save, blink;
    int cursor_hidden, doc_dirty;
    uint64_t keys_since_spell, keys, missed_keys, full_redraws;
    uint64_t lost_us;              /* schedule time of the dropped keys: each from its due time to the next key's (or the burst's end) */
};

/* Rewrites every frame-buffer page that a w x h pixel rectangle at (x, y) touches, each once. */
static void fb_rect(struct kp_rt *rt, struct text *t, uint64_t x, uint64_t y, uint64_t w, uint64_t h)
{
    uint64_t stride = t->screen_w * 4, last = KP_NEVER;
    if (x >= t->screen_w || y >= t->screen_h || !w || !h) return;
    if (x + w > t->screen_w) w = t->screen_w - x;
    if (y + h > t->screen_h) h = t->screen_h - y;
    for (uint64_t row = y; row < y + h; row++) {
        uint64_t first = (row * stride + x * 4) >> KP_PAGE_SHIFT;
        uint64_t end = (row * stride + (x + w) * 4 - 1) >> KP_PAGE_SHIFT;
        for (uint64_t p = first; p <= end; p++) {
            if (p == last) continue;           /* pages only grow row by row: no page twice */
            kp_region_write_page(rt, t->fb, p);
            last = p;
        }
    }
}

static void draw_cursor(struct kp_rt *rt, struct text *t)
{
    uint64_t line = t->cursor / LINE_CHARS, col = t->cursor % LINE_CHARS;
    fb_rect(rt, t, col * CELL_W, (line - t->top) * CELL_H, 2, CELL_H);
}

/* Scrolls so the cursor line is visible; 1 if the whole screen had to be redrawn. */
static int scroll_to_cursor(struct kp_rt *rt, struct text *t, int far)
{
    uint64_t line = t->cursor / LINE_CHARS;
    if (line >= t->top && line < t->top + t->rows) return 0;
    if (far) t->top = line > t->rows / 2 ? line - t->rows / 2 : 0;
    else t->top = line < t->top ? line : line - t->rows + 1;
    kp_region_write_all(rt, t->fb);
    t->full_redraws++;
    return 1;
}

static void keystroke(struct kp_rt *rt, struct text *t)
{
    uint64_t r = kp_rand_below(&t->rng, 1000);
    if (r < t->jump_permille) {
        int far = r >= t->jump_permille / 2;
        draw_cursor(rt, t);                                  /* erase at the old place */
        if (far) t->cursor = kp_rand_below(&t->rng, t->doc_bytes);
        else t->cursor = (t->top + kp_rand_below(&t->rng, t->rows)) * LINE_CHARS + kp_rand_below(&t->rng, LINE_CHARS);
        if (t->cursor >= t->doc_bytes) t->cursor = t->doc_bytes - 1;
        if (!scroll_to_cursor(rt, t, far)) draw_cursor(rt, t);
        return;
    }
    if (r < t->jump_permille + BACKSPACE_PERMILLE && t->cursor > 0) t->cursor--;   /* backspace */
    uint64_t line_end = (t->cursor / LINE_CHARS + 1) * LINE_CHARS;
    if (line_end > t->doc_bytes) line_end = t->doc_bytes;
    kp_region_write_bytes(rt, t->doc, t->cursor, line_end - t->cursor);      /* the rest of the line shifts */
    uint64_t col = t->cursor % LINE_CHARS, line = t->cursor / LINE_CHARS;
    if (!scroll_to_cursor(rt, t, 0))
        fb_rect(rt, t, col * CELL_W, (line - t->top) * CELL_H, (LINE_CHARS - col) * CELL_W, CELL_H);
    if (r >= t->jump_permille + BACKSPACE_PERMILLE) {                         /* typed a character */
        t->cursor++;
        if (t->cursor >= t->doc_bytes) t->cursor = 0;
        scroll_to_cursor(rt, t, 0);
    }
    kp_region_write_all(rt, t->keystate);
    t->doc_dirty = 1;
    t->keys_since_spell++;
}

static uint64_t min_u64(uint64_t a, uint64_t b) { return a < b ? a : b; }

static uint64_t text_step(struct kp_rt *rt, void *ctx, uint64_t now)
{
    struct text *t = ctx;
    uint32_t keys = 0;
    for (;;) {
        if (t->in_burst) {
            if (t->next_key_us >= t->phase_end_us) {        /* burst over: a pause follows */
                t->in_burst = 0;
                t->phase_end_us += kp_rand_range(&t->rng, t->gap_min_us, t->gap_max_us);
                continue;
            }
            if (t->next_key_us > now) break;
            uint64_t due = t->next_key_us;
            int missed = now - due > MAX_KEY_LAG_US;
            if (missed) {
                t->missed_keys++;
            } else {
                keystroke(rt, t);
                keys++;
                t->last_key_us = due;
                t->cursor_hidden = 0;
                t->blink.next_us = now + t->blink_us;       /* the cursor stays solid while typing */
            }
            t->next_key_us += kp_rand_range(&t->rng, t->key_us / 2, t->key_us * 3 / 2);
            if (missed) {
                t->lost_us += min_u64(t->next_key_us, t->phase_end_us) - due;
            } else {
                /* each key as it is done: a late guest's step handles every key due by its start, which can take
                 * seconds; its schedule then advances key by key, not in one jump at the step's end */
                kp_schedule(rt, t->next_key_us, t->lost_us);
                kp_progress(rt, 1);
            }
        } else {
            if (now < t->phase_end_us) break;
            t->in_burst = 1;
            t->next_key_us = t->phase_end_us;
            t->phase_end_us += kp_rand_range(&t->rng, t->burst_min_us, t->burst_max_us);
        }
    }
    t->keys += keys;
    kp_schedule(rt, t->in_burst ? t->next_key_us : t->phase_end_us, t->lost_us);   /* the next key's due time */

    if (kp_tick(&t->blink, now, 1)) {
        if (now < t->last_key_us + t->blink_timeout_us || t->cursor_hidden) {
            t->cursor_hidden = !t->cursor_hidden;
            draw_cursor(rt, t);
        }
    }
    if (now >= t->last_key_us + t->blink_timeout_us && !t->cursor_hidden)
        t->blink.next_us = t->in_burst ? t->next_key_us : t->phase_end_us;   /* no blinking until typing resumes */
    if (kp_tick(&t->spell, now, 1) && t->keys_since_spell) {
        rt->sink += kp_region_read(rt, t->doc, 0, t->doc_bytes, 64);
        for (int i = 0; i < DICT_PAGES_PER_PASS; i++)
            kp_region_write_page(rt, t->dict, kp_rand_below(&t->spell_rng, t->dict.pages));
        t->keys_since_spell = 0;
    }
    if (kp_tick(&t->save, now, 1) && t->doc_dirty) {
        kp_region_write_all(rt, t->cache);
        t->doc_dirty = 0;
    }

    uint64_t next = t->in_burst ? t->next_key_us : t->phase_end_us;
    next = min_u64(next, t->blink.next_us);
    next = min_u64(next, t->spell.next_us);
    return min_u64(next, t->save.next_us);
}

void kp_run_text(struct kp_rt *rt)
{
    struct text t;
    kp_memset(&t, 0, sizeof t);
    t.rng = kp_mix64(rt->seed ^ 0x7E47ULL);
    t.spell_rng = kp_mix64(rt->seed ^ 0x5BE11ULL);
    t.doc_bytes = kp_param(rt, 0, 64 << 10);
    t.key_us = kp_param(rt, 1, 200) * MS;
    t.burst_min_us = kp_param(rt, 2, 5000) * MS;
    t.burst_max_us = kp_param(rt, 3, 15000) * MS;
    t.gap_min_us = kp_param(rt, 4, 300) * MS;
    t.gap_max_us = kp_param(rt, 5, 1000) * MS;
    t.jump_permille = kp_param(rt, 6, 2);
    uint64_t spell_us = kp_param(rt, 7, 5000) * MS, save_us = kp_param(rt, 8, 30000) * MS;
    t.screen_w = kp_param(rt, 9, 800);
    t.screen_h = kp_param(rt, 10, 640);
    uint64_t dict_bytes = kp_param(rt, 11, 256 << 10);
    t.blink_us = kp_param(rt, 12, 600) * MS;
    t.blink_timeout_us = kp_param(rt, 13, 10000) * MS;
    if (t.burst_max_us < t.burst_min_us || t.gap_max_us < t.gap_min_us)
        kp_fail(rt, KP_EXIT_BAD_WORKLOAD, "text: burst and gap maxima (params 3, 5) must not be below their minima (params 2, 4)");
    if (t.jump_permille + BACKSPACE_PERMILLE > 1000)
        kp_fail(rt, KP_EXIT_BAD_WORKLOAD, "text: params[6] (jump permille) must be at most 970");
    if (t.screen_w < LINE_CHARS * CELL_W || t.screen_h < CELL_H || t.screen_w > 16384 || t.screen_h > 16384)
        kp_fail(rt, KP_EXIT_BAD_WORKLOAD, "text: screen (params 9, 10) must be 640x16 .. 16384x16384 pixels");
    if (t.doc_bytes < LINE_CHARS) kp_fail(rt, KP_EXIT_BAD_WORKLOAD, "text: params[0] (document bytes) must be at least 80");
    t.rows = t.screen_h / CELL_H;

    uint64_t doc_pages = (t.doc_bytes + KP_PAGE_SIZE - 1) / KP_PAGE_SIZE;
    uint64_t fb_pages = (t.screen_w * t.screen_h * 4 + KP_PAGE_SIZE - 1) / KP_PAGE_SIZE;
    uint64_t dict_pages = (dict_bytes + KP_PAGE_SIZE - 1) / KP_PAGE_SIZE;
    kp_work_reserve(rt, 2 * doc_pages + fb_pages + dict_pages + KEY_STATE_PAGES, "text");
    t.doc = kp_region_alloc(rt, t.doc_bytes);
    t.fb = kp_region_alloc(rt, t.screen_w * t.screen_h * 4);
    t.dict = kp_region_alloc(rt, dict_bytes);
    t.cache = kp_region_alloc(rt, t.doc_bytes);
    t.keystate = kp_region_alloc(rt, KEY_STATE_PAGES * KP_PAGE_SIZE);
    kp_region_write_all(rt, t.keystate);
    kp_region_write_all(rt, t.cache);   /* the file was read into the page cache, */
    kp_region_write_all(rt, t.doc);     /* loaded into the editor's buffer, */
    kp_region_write_all(rt, t.dict);    /* the dictionary cache warmed up */
    kp_region_write_all(rt, t.fb);      /* and the first screen drawn */

    uint64_t now = kp_clock_us(rt);
    t.in_burst = 1;                     /* the user starts typing at once */
    t.next_key_us = now;
    t.phase_end_us = now + kp_rand_range(&t.rng, t.burst_min_us, t.burst_max_us);
    t.last_key_us = now;
    kp_schedule(rt, now, 0);            /* the first key is due now */
    kp_ticker_start(&t.blink, now + t.blink_us, t.blink_us);
    kp_ticker_start(&t.spell, now + spell_us, spell_us);
    kp_ticker_start(&t.save, now + save_us, save_us);
    kp_loop(rt, text_step, &t);
}
