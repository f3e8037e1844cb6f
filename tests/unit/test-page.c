/*
 * Test that a node's page states map to the right host protection in
 * every transition, bounded by the program's own protection, that data
 * installed into a page is never seen half-written, and that data copied
 * out is the page's last write, whatever the page's protection.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>
#include <unistd.h>
#include <cmocka.h>

#include "page.h"

#define NPAGES 4
#define RW     (PROT_READ | PROT_WRITE)

/* ---- probing protection with a real SIGSEGV ------------------------------ */

/* volatile: the stores must not be merged away around the probing load. */
static __thread sigjmp_buf *volatile probe_env;
static DqPageRegion *volatile spin_region; /* the half-written test */

/*
 * A probe jumps back out of the fault.  A reader thread of the
 * half-written test instead waits until the page is readable again and
 * retries, as the real fault path would after a request.
 */
static void on_segv(int sig, siginfo_t *si, void *uc)
{
    size_t index;

    (void)sig;
    (void)uc;
    if (probe_env) {
        siglongjmp(*probe_env, 1);
    }
    if (spin_region &&
        dq_page_index(spin_region, (uintptr_t)si->si_addr, &index)) {
        while (!(dq_page_prot(spin_region, index) & PROT_READ)) {
            sched_yield();
        }
        return;
    }
    abort();
}

/* cmocka installs its own SIGSEGV handler around each test: call first. */
static void arm_segv(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    assert_int_equal(sigaction(SIGSEGV, &sa, NULL), 0);
}

static bool can_read(uintptr_t a)
{
    sigjmp_buf env;
    volatile bool ok = false;

    if (sigsetjmp(env, 1) == 0) {
        probe_env = &env;
        (void)*(volatile uint8_t *)a;
        ok = true;
    }
    probe_env = NULL;
    return ok;
}

/* A locked add of 0 is a write access that changes nothing. */
static bool can_write(uintptr_t a)
{
    sigjmp_buf env;
    volatile bool ok = false;

    if (sigsetjmp(env, 1) == 0) {
        probe_env = &env;
        __atomic_fetch_add((volatile uint8_t *)a, 0, __ATOMIC_SEQ_CST);
        ok = true;
    }
    probe_env = NULL;
    return ok;
}

static int probed_prot(uintptr_t a)
{
    return (can_read(a) ? PROT_READ : 0) | (can_write(a) ? PROT_WRITE : 0);
}

/* The protection the page really has is the one its state promises. */
static void assert_prot(DqPageRegion *r, size_t i, DqPageState state, int max)
{
    int want = dq_page_state_prot(state) & max & RW;

    assert_int_equal(dq_page_state(r, i), state);
    assert_int_equal(dq_page_max_prot(r, i), max);
    assert_int_equal(dq_page_prot(r, i) & RW, want);
    assert_int_equal(probed_prot(dq_page_addr(r, i)), want);
}

/* ---- fixture ----------------------------------------------------------- */

typedef struct Fx {
    uint8_t *mem;
    size_t ps;
    DqPageRegion r;
    uint8_t *buf;               /* one page, outside the region */
    uint8_t *pat;               /* one page, outside the region */
} Fx;

static int fx_setup(void **state)
{
    Fx *f = calloc(1, sizeof(*f));

    if (!f) {
        return -1;
    }
    f->ps = (size_t)sysconf(_SC_PAGESIZE);
    f->mem = mmap(NULL, NPAGES * f->ps, RW, MAP_PRIVATE | MAP_ANONYMOUS,
                  -1, 0);
    f->buf = malloc(f->ps);
    f->pat = malloc(f->ps);
    if (f->mem == MAP_FAILED || !f->buf || !f->pat ||
        dq_page_region_init(&f->r, f->mem, NPAGES * f->ps, DQ_PAGE_I,
                            RW) != DQ_OK) {
        return -1;
    }
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    Fx *f = *state;

    dq_page_region_destroy(&f->r);
    munmap(f->mem, NPAGES * f->ps);
    free(f->buf);
    free(f->pat);
    free(f);
    return 0;
}

static void fill(uint8_t *p, size_t n, uint8_t v)
{
    memset(p, v, n);
}

static bool all_equal(const uint8_t *p, size_t n, uint8_t v)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (p[i] != v) {
            return false;
        }
    }
    return true;
}

/* ---- tests ------------------------------------------------------------- */

static void region_init_rejects_bad_input(void **state)
{
    Fx *f = *state;
    DqPageRegion r;

    assert_int_equal(dq_page_region_init(&r, f->mem + 1, f->ps, DQ_PAGE_I,
                                         RW), DQ_ERR_RANGE);
    assert_int_equal(dq_page_region_init(&r, f->mem, f->ps + 1, DQ_PAGE_I,
                                         RW), DQ_ERR_RANGE);
    assert_int_equal(dq_page_region_init(&r, f->mem, 0, DQ_PAGE_I, RW),
                     DQ_ERR_RANGE);
    assert_int_equal(dq_page_region_init(&r, f->mem, f->ps, 3, RW),
                     DQ_ERR_RANGE);
    assert_int_equal(dq_page_region_init(&r, f->mem, f->ps, DQ_PAGE_I,
                                         0x100), DQ_ERR_RANGE);
    assert_int_equal(dq_page_region_init(&r, (void *)(UINTPTR_MAX & ~(f->ps
                                         - 1)), 2 * f->ps, DQ_PAGE_I, RW),
                     DQ_ERR_RANGE);
    assert_int_equal(r.mem_fd, -1);
}

static void region_init_protects_every_page_by_its_initial_state(void **state)
{
    Fx *f = *state;
    DqPageRegion r;
    size_t i;

    arm_segv();
    assert_int_equal(dq_page_region_init(&r, f->mem, NPAGES * f->ps,
                                         DQ_PAGE_S, RW), DQ_OK);
    for (i = 0; i < NPAGES; i++) {
        assert_prot(&r, i, DQ_PAGE_S, RW);
    }
    dq_page_region_destroy(&r);
    assert_int_equal(dq_page_region_init(&r, f->mem, NPAGES * f->ps,
                                         DQ_PAGE_M, PROT_READ), DQ_OK);
    for (i = 0; i < NPAGES; i++) {
        assert_prot(&r, i, DQ_PAGE_M, PROT_READ);
    }
    dq_page_region_destroy(&r);
}

static void index_covers_the_region_and_nothing_else(void **state)
{
    Fx *f = *state;
    uintptr_t base = (uintptr_t)f->mem;
    size_t i = 99;

    assert_false(dq_page_index(&f->r, base - 1, &i));
    assert_false(dq_page_index(&f->r, base + NPAGES * f->ps, &i));
    assert_int_equal(i, 99);
    assert_true(dq_page_index(&f->r, base, &i));
    assert_int_equal(i, 0);
    assert_true(dq_page_index(&f->r, base + 2 * f->ps + 17, &i));
    assert_int_equal(i, 2);
    assert_true(dq_page_index(&f->r, base + NPAGES * f->ps - 1, &i));
    assert_int_equal(i, NPAGES - 1);
    assert_int_equal(dq_page_addr(&f->r, 3), base + 3 * f->ps);
    assert_int_equal(f->r.pages, NPAGES);
}

static void protection_follows_state_in_every_transition(void **state)
{
    Fx *f = *state;
    DqPageState from, to;

    arm_segv();
    assert_prot(&f->r, 1, DQ_PAGE_I, RW);
    for (from = DQ_PAGE_I; from <= DQ_PAGE_M; from++) {
        for (to = DQ_PAGE_I; to <= DQ_PAGE_M; to++) {
            assert_int_equal(dq_page_set_state(&f->r, 1, from), DQ_OK);
            assert_prot(&f->r, 1, from, RW);
            assert_int_equal(dq_page_set_state(&f->r, 1, to), DQ_OK);
            assert_prot(&f->r, 1, to, RW);
            /* Neighbours in the same futex word are left alone. */
            assert_prot(&f->r, 0, DQ_PAGE_I, RW);
            assert_prot(&f->r, 2, DQ_PAGE_I, RW);
        }
    }
    /* Installs, from every state, end in the installed state. */
    for (from = DQ_PAGE_I; from <= DQ_PAGE_M; from++) {
        for (to = DQ_PAGE_S; to <= DQ_PAGE_M; to++) {
            assert_int_equal(dq_page_set_state(&f->r, 1, from), DQ_OK);
            fill(f->pat, f->ps, (uint8_t)(0x10 * from + to));
            assert_int_equal(dq_page_install(&f->r, 1, f->pat, to), DQ_OK);
            assert_prot(&f->r, 1, to, RW);
            assert_memory_equal(f->mem + f->ps, f->pat, f->ps);
        }
    }
    /* Downgrades, from every state, end no higher than asked. */
    for (from = DQ_PAGE_I; from <= DQ_PAGE_M; from++) {
        for (to = DQ_PAGE_I; to <= DQ_PAGE_S; to++) {
            assert_int_equal(dq_page_set_state(&f->r, 1, from), DQ_OK);
            assert_int_equal(dq_page_downgrade(&f->r, 1, to, f->buf), DQ_OK);
            assert_prot(&f->r, 1, from < to ? from : to, RW);
        }
    }
}

static void state_changes_reject_bad_input(void **state)
{
    Fx *f = *state;

    assert_int_equal(dq_page_install(&f->r, NPAGES, f->pat, DQ_PAGE_S),
                     DQ_ERR_RANGE);
    assert_int_equal(dq_page_install(&f->r, 0, f->pat, DQ_PAGE_I),
                     DQ_ERR_RANGE);
    assert_int_equal(dq_page_set_state(&f->r, NPAGES, DQ_PAGE_S),
                     DQ_ERR_RANGE);
    assert_int_equal(dq_page_set_state(&f->r, 0, 3), DQ_ERR_RANGE);
    assert_int_equal(dq_page_downgrade(&f->r, 0, DQ_PAGE_M, f->buf),
                     DQ_ERR_RANGE);
    assert_int_equal(dq_page_copy_out(&f->r, NPAGES, f->buf), DQ_ERR_RANGE);
    assert_int_equal(dq_page_set_max_prot(&f->r, 0, 0x100), DQ_ERR_RANGE);
    assert_int_equal(dq_page_set_max_prot_range(&f->r, (uintptr_t)f->mem,
                                                 (NPAGES + 1) * f->ps,
                                                 PROT_READ), DQ_ERR_RANGE);
    assert_int_equal(dq_page_set_max_prot_range(&f->r, (uintptr_t)f->mem + 1,
                                                 f->ps, PROT_READ),
                     DQ_ERR_RANGE);
    assert_int_equal(dq_page_state(&f->r, 0), DQ_PAGE_I);
    assert_int_equal(dq_page_max_prot(&f->r, 0), RW);
}

static void copy_out_reads_the_page_in_every_state(void **state)
{
    Fx *f = *state;
    DqPageState s;

    arm_segv();
    fill(f->pat, f->ps, 0x5a);
    assert_int_equal(dq_page_install(&f->r, 2, f->pat, DQ_PAGE_M), DQ_OK);
    for (s = DQ_PAGE_M; ; s--) {
        assert_int_equal(dq_page_set_state(&f->r, 2, s), DQ_OK);
        fill(f->buf, f->ps, 0);
        assert_int_equal(dq_page_copy_out(&f->r, 2, f->buf), DQ_OK);
        assert_memory_equal(f->buf, f->pat, f->ps);
        assert_prot(&f->r, 2, s, RW);
        if (s == DQ_PAGE_I) {
            break;
        }
    }
}

static void downgrade_copies_the_last_local_write(void **state)
{
    Fx *f = *state;
    uint8_t *p = f->mem + 3 * f->ps;

    arm_segv();
    fill(f->pat, f->ps, 0x11);
    assert_int_equal(dq_page_install(&f->r, 3, f->pat, DQ_PAGE_M), DQ_OK);
    p[0] = 0x22;
    p[f->ps - 1] = 0x33;
    assert_int_equal(dq_page_downgrade(&f->r, 3, DQ_PAGE_S, f->buf), DQ_OK);
    assert_int_equal(f->buf[0], 0x22);
    assert_int_equal(f->buf[f->ps - 1], 0x33);
    assert_true(all_equal(f->buf + 1, f->ps - 2, 0x11));
    assert_prot(&f->r, 3, DQ_PAGE_S, RW);
    /* Through /proc/self/mem once the page is inaccessible. */
    fill(f->buf, f->ps, 0);
    assert_int_equal(dq_page_downgrade(&f->r, 3, DQ_PAGE_I, f->buf), DQ_OK);
    assert_int_equal(f->buf[0], 0x22);
    assert_int_equal(f->buf[f->ps - 1], 0x33);
    assert_prot(&f->r, 3, DQ_PAGE_I, RW);
}

static void max_prot_bounds_the_protection_of_every_state(void **state)
{
    static const int bounds[] = {
        PROT_NONE, PROT_READ, RW, PROT_READ | PROT_EXEC,
    };
    Fx *f = *state;
    DqPageState s;
    size_t b;

    arm_segv();
    for (b = 0; b < sizeof(bounds) / sizeof(bounds[0]); b++) {
        for (s = DQ_PAGE_I; s <= DQ_PAGE_M; s++) {
            assert_int_equal(dq_page_set_max_prot(&f->r, 0, RW), DQ_OK);
            assert_int_equal(dq_page_set_state(&f->r, 0, s), DQ_OK);
            assert_int_equal(dq_page_set_max_prot(&f->r, 0, bounds[b]),
                             DQ_OK);
            assert_prot(&f->r, 0, s, bounds[b]);
            /* A state change keeps the bound. */
            assert_int_equal(dq_page_set_state(&f->r, 0, DQ_PAGE_M), DQ_OK);
            assert_prot(&f->r, 0, DQ_PAGE_M, bounds[b]);
        }
    }
    /* An install under a bound of NONE stays unreachable but lands. */
    fill(f->pat, f->ps, 0x77);
    assert_int_equal(dq_page_set_max_prot(&f->r, 0, PROT_NONE), DQ_OK);
    assert_int_equal(dq_page_install(&f->r, 0, f->pat, DQ_PAGE_S), DQ_OK);
    assert_prot(&f->r, 0, DQ_PAGE_S, PROT_NONE);
    assert_int_equal(dq_page_copy_out(&f->r, 0, f->buf), DQ_OK);
    assert_memory_equal(f->buf, f->pat, f->ps);
    assert_int_equal(dq_page_set_max_prot(&f->r, 0, RW), DQ_OK);
    assert_prot(&f->r, 0, DQ_PAGE_S, RW);
    assert_memory_equal(f->mem, f->pat, f->ps);
}

static void max_prot_range_sets_every_page_of_the_range(void **state)
{
    Fx *f = *state;
    size_t i;

    arm_segv();
    for (i = 0; i < NPAGES; i++) {
        assert_int_equal(dq_page_set_state(&f->r, i, DQ_PAGE_M), DQ_OK);
    }
    assert_int_equal(dq_page_set_max_prot_range(&f->r,
                                                 (uintptr_t)f->mem + f->ps,
                                                 2 * f->ps, PROT_READ),
                     DQ_OK);
    assert_prot(&f->r, 0, DQ_PAGE_M, RW);
    assert_prot(&f->r, 1, DQ_PAGE_M, PROT_READ);
    assert_prot(&f->r, 2, DQ_PAGE_M, PROT_READ);
    assert_prot(&f->r, 3, DQ_PAGE_M, RW);
    assert_int_equal(dq_page_set_max_prot_range(&f->r, (uintptr_t)f->mem, 0,
                                                 PROT_NONE), DQ_OK);
    assert_prot(&f->r, 0, DQ_PAGE_M, RW);
}

/* ---- installs are never seen half-written ------------------------------ */

#define INSTALLS 3000
#define READERS  2

typedef struct HalfFx {
    Fx *f;
    int done;                   /* atomic: the installer has finished */
    unsigned long reads[READERS];
    unsigned long torn[READERS];
    bool backwards[READERS];
} HalfFx;

typedef struct Reader {
    HalfFx *h;
    int id;
} Reader;

/*
 * Every install writes version k into each 64-bit word of the page and
 * versions only grow, so a reader walking the page in either direction
 * must see versions that never decrease: seeing a later version and then
 * an earlier one means it saw a page that was partly written.
 */
static void *reader_main(void *arg)
{
    Reader *rd = arg;
    HalfFx *h = rd->h;
    const volatile uint64_t *w = (const volatile uint64_t *)h->f->mem;
    size_t n = h->f->ps / sizeof(uint64_t);
    size_t j, k;
    uint64_t prev, v;
    bool back = rd->id & 1;

    h->backwards[rd->id] = back;
    while (!__atomic_load_n(&h->done, __ATOMIC_ACQUIRE)) {
        prev = 0;
        for (j = 0; j < n; j++) {
            k = back ? n - 1 - j : j;
            v = w[k];
            if (v < prev) {
                h->torn[rd->id]++;
                break;
            }
            prev = v;
        }
        __atomic_fetch_add(&h->reads[rd->id], 1, __ATOMIC_RELEASE);
    }
    return NULL;
}

static void install_is_never_seen_half_written(void **state)
{
    Fx *f = *state;
    HalfFx h;
    Reader rd[READERS];
    pthread_t t[READERS];
    uint64_t *pat = (uint64_t *)f->pat;
    size_t n = f->ps / sizeof(uint64_t);
    uint64_t k;
    size_t j;
    int i;

    arm_segv();
    memset(&h, 0, sizeof(h));
    h.f = f;
    spin_region = &f->r;
    for (j = 0; j < n; j++) {
        pat[j] = 1;
    }
    assert_int_equal(dq_page_install(&f->r, 0, pat, DQ_PAGE_S), DQ_OK);
    for (i = 0; i < READERS; i++) {
        rd[i].h = &h;
        rd[i].id = i;
        assert_int_equal(pthread_create(&t[i], NULL, reader_main, &rd[i]), 0);
    }
    /* Installs only count while both readers run (bounded wait). */
    for (i = 0; i < READERS; i++) {
        for (j = 0; j < 5000 &&
             !__atomic_load_n(&h.reads[i], __ATOMIC_ACQUIRE); j++) {
            usleep(1000);
        }
    }
    for (k = 2; k < 2 + INSTALLS; k++) {
        for (j = 0; j < n; j++) {
            pat[j] = k;
        }
        /* Every other install goes through I, as an invalidation would. */
        if (k & 1) {
            assert_int_equal(dq_page_set_state(&f->r, 0, DQ_PAGE_I), DQ_OK);
        }
        assert_int_equal(dq_page_install(&f->r, 0, pat, DQ_PAGE_S), DQ_OK);
    }
    __atomic_store_n(&h.done, 1, __ATOMIC_RELEASE);
    for (i = 0; i < READERS; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
    }
    spin_region = NULL;
    for (i = 0; i < READERS; i++) {
        assert_int_equal(h.torn[i], 0);
        assert_true(h.reads[i] > 0);
    }
    assert_int_equal(*(uint64_t *)f->mem, k - 1);
}

/* Put a fresh read/write mapping over page @i, as a program's mmap does. */
static void remap_page(Fx *f, size_t i)
{
    void *p = mmap(f->mem + i * f->ps, f->ps, RW,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);

    assert_ptr_equal(p, f->mem + i * f->ps);
}

/*
 * set_state_ex reports what it replaced, and with force repairs a page
 * whose mapping the program replaced: the byte said PROT_NONE and so did
 * the new state, but the fresh mapping was read/write.
 */
static void set_state_ex_reports_and_forces_the_protection(void **state)
{
    Fx *f = *state;
    DqPageState was = DQ_PAGE_M;

    arm_segv();
    assert_int_equal(dq_page_set_state_ex(&f->r, 0, DQ_PAGE_S, false, &was),
                     DQ_OK);
    assert_int_equal(was, DQ_PAGE_I);
    assert_prot(&f->r, 0, DQ_PAGE_S, RW);
    assert_int_equal(dq_page_set_state_ex(&f->r, 0, DQ_PAGE_I, false, &was),
                     DQ_OK);
    assert_int_equal(was, DQ_PAGE_S);
    assert_prot(&f->r, 0, DQ_PAGE_I, RW);

    remap_page(f, 1);
    assert_int_equal(probed_prot(dq_page_addr(&f->r, 1)), RW);
    /* Unforced, I to I looks like nothing to do, and does nothing. */
    assert_int_equal(dq_page_set_state_ex(&f->r, 1, DQ_PAGE_I, false, NULL),
                     DQ_OK);
    assert_int_equal(probed_prot(dq_page_addr(&f->r, 1)), RW);
    assert_int_equal(dq_page_set_state_ex(&f->r, 1, DQ_PAGE_I, true, &was),
                     DQ_OK);
    assert_int_equal(was, DQ_PAGE_I);
    assert_prot(&f->r, 1, DQ_PAGE_I, RW);

    /* M over a fresh mapping under a read-only bound: read-only. */
    assert_int_equal(dq_page_set_max_prot(&f->r, 2, PROT_READ), DQ_OK);
    remap_page(f, 2);
    assert_int_equal(dq_page_set_state_ex(&f->r, 2, DQ_PAGE_M, true, NULL),
                     DQ_OK);
    assert_prot(&f->r, 2, DQ_PAGE_M, PROT_READ);
    assert_int_equal(dq_page_set_state_ex(&f->r, NPAGES, DQ_PAGE_I, true,
                                          NULL), DQ_ERR_RANGE);
}

/* A bound set after an mmap is applied even if it looks unchanged. */
static void max_prot_repairs_a_replaced_mapping(void **state)
{
    Fx *f = *state;

    arm_segv();
    remap_page(f, 3);
    assert_int_equal(dq_page_set_max_prot(&f->r, 3, RW), DQ_OK);
    assert_prot(&f->r, 3, DQ_PAGE_I, RW);
    assert_int_equal(dq_page_set_state(&f->r, 3, DQ_PAGE_M), DQ_OK);
    remap_page(f, 3);
    assert_int_equal(dq_page_set_max_prot_range(&f->r,
                                                dq_page_addr(&f->r, 3),
                                                f->ps, PROT_READ), DQ_OK);
    assert_prot(&f->r, 3, DQ_PAGE_M, PROT_READ);
}

/* A region whose pages start with bound PROT_NONE: all zero bytes. */
static void region_with_a_none_bound_starts_inaccessible(void **state)
{
    Fx *f = *state;
    size_t i;

    arm_segv();
    dq_page_region_destroy(&f->r);
    assert_int_equal(mprotect(f->mem, NPAGES * f->ps, RW), 0);
    assert_int_equal(dq_page_region_init(&f->r, f->mem, NPAGES * f->ps,
                                         DQ_PAGE_I, PROT_NONE), DQ_OK);
    for (i = 0; i < NPAGES; i++) {
        assert_int_equal(dq_page_peek(&f->r, i), 0);
        assert_prot(&f->r, i, DQ_PAGE_I, PROT_NONE);
    }
    assert_int_equal(dq_page_set_state(&f->r, 0, DQ_PAGE_M), DQ_OK);
    assert_prot(&f->r, 0, DQ_PAGE_M, PROT_NONE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(region_init_rejects_bad_input,
                                        fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(
            region_init_protects_every_page_by_its_initial_state,
            fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(
            index_covers_the_region_and_nothing_else, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(
            protection_follows_state_in_every_transition,
            fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(state_changes_reject_bad_input,
                                        fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(
            copy_out_reads_the_page_in_every_state, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(
            downgrade_copies_the_last_local_write, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(
            max_prot_bounds_the_protection_of_every_state,
            fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(
            max_prot_range_sets_every_page_of_the_range,
            fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(install_is_never_seen_half_written,
                                        fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(
            set_state_ex_reports_and_forces_the_protection,
            fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(max_prot_repairs_a_replaced_mapping,
                                        fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(
            region_with_a_none_bound_starts_inaccessible,
            fx_setup, fx_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
