/*
 * Test that the local fault path resolves real SIGSEGVs in a region:
 * one request per page however many threads fault on it, the right final
 * state when reads and writes cross, faults that are not the DSM's left
 * to the program, and a failed request reported to every faulting thread
 * instead of a hang, and the atomic flag reaching ops->obtain() for the
 * engine's leases.  The cluster is a fake ops->obtain() that installs
 * the page itself, optionally after a gate opens.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/mman.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>
#include <cmocka.h>

#include "fault.h"

#define NPAGES   8
#define NTHREADS 8
#define MAX_LOG  32
#define RW       (PROT_READ | PROT_WRITE)
#define WAIT_NS  (5 * 1000000000LL)    /* every wait in here is bounded */

/* ---- the fake cluster ---------------------------------------------------- */

typedef struct Call {
    size_t index;
    DqPageState have, want;
    bool atomic;
} Call;

typedef struct Fx {
    uint8_t *mem;
    size_t ps;
    DqPageRegion r;
    DqFault f;
    uint8_t *data;              /* page i's remote contents: 0x40 + i */
    unsigned calls;             /* atomic */
    Call log[MAX_LOG];
    DqStatus fail;              /* obtain answers this when not DQ_OK */
    int gate;                   /* atomic: obtain waits until it is 1 */
    unsigned gate_waiters;      /* ... and until this many threads sleep */
    int clobber_errno;
} Fx;

static Fx *volatile fx;

static long long now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void nap(void)
{
    struct timespec ts = { 0, 100000 };

    nanosleep(&ts, NULL);
}

/* Async-signal-safe: atomics, clock_gettime, nanosleep, pwrite, mprotect. */
static DqStatus fake_obtain(void *opaque, size_t index, DqPageState have,
                            DqPageState want, bool atomic)
{
    Fx *f = opaque;
    unsigned n = __atomic_fetch_add(&f->calls, 1, __ATOMIC_ACQ_REL);
    long long end = now_ns() + WAIT_NS;

    if (n < MAX_LOG) {
        f->log[n] = (Call){ index, have, want, atomic };
    }
    while ((!__atomic_load_n(&f->gate, __ATOMIC_ACQUIRE) ||
            __atomic_load_n(&f->f.waits, __ATOMIC_RELAXED) <
            f->gate_waiters) && now_ns() < end) {
        nap();
    }
    if (f->clobber_errno) {
        errno = EIO;
    }
    if (f->fail != DQ_OK) {
        return f->fail;
    }
    if (have == DQ_PAGE_S && want == DQ_PAGE_M) {
        return dq_page_set_state(&f->r, index, DQ_PAGE_M);
    }
    return dq_page_install(&f->r, index, f->data + index * f->ps, want);
}

/* ---- faulting for real --------------------------------------------------- */

static __thread sigjmp_buf *volatile fault_env;
static __thread volatile DqFaultResult fault_res;
static __thread volatile DqStatus fault_status;
static __thread volatile bool fault_hint_write;
/* Set around an access the test calls atomic, as QEMU would. */
static __thread volatile bool fault_atomic;

static bool fault_is_write(void *ucv)
{
#if defined(__x86_64__)
    ucontext_t *uc = ucv;

    /* Page-fault error code: bit 1 is set for a write access. */
    return uc->uc_mcontext.gregs[REG_ERR] & 2;
#else
    (void)ucv;
    return fault_hint_write;
#endif
}

static void on_segv(int sig, siginfo_t *si, void *uc)
{
    DqStatus st = DQ_OK;
    DqFaultResult res;

    (void)sig;
    res = dq_fault_handle(&fx->f, (uintptr_t)si->si_addr, fault_is_write(uc),
                          fault_atomic, &st);
    if (res == DQ_FAULT_HANDLED) {
        return;
    }
    fault_res = res;
    fault_status = st;
    if (fault_env) {
        siglongjmp(*fault_env, 1);
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

/*
 * Read or write one byte of the region as guest code would; HANDLED
 * when the access completed (after any number of faults), else what the
 * fault path answered, with its status in *@st.
 */
static DqFaultResult touch(uintptr_t a, bool write, uint8_t *val,
                           DqStatus *st)
{
    sigjmp_buf env;

    fault_hint_write = write;
    if (sigsetjmp(env, 1)) {
        fault_env = NULL;
        *st = fault_status;
        return fault_res;
    }
    fault_env = &env;
    if (write) {
        *(volatile uint8_t *)a = *val;
    } else {
        *val = *(volatile uint8_t *)a;
    }
    fault_env = NULL;
    *st = DQ_OK;
    return DQ_FAULT_HANDLED;
}

static uintptr_t page(size_t i)
{
    return (uintptr_t)fx->mem + i * fx->ps + 5;
}

typedef struct Toucher {
    pthread_t t;
    size_t index;
    bool write;
    uint8_t val;
    DqFaultResult res;
    DqStatus st;
    int done;                   /* atomic */
} Toucher;

static void *toucher_main(void *arg)
{
    Toucher *w = arg;

    w->res = touch(page(w->index), w->write, &w->val, &w->st);
    __atomic_store_n(&w->done, 1, __ATOMIC_RELEASE);
    return NULL;
}

static void start(Toucher *w, size_t index, bool write, uint8_t val)
{
    memset(w, 0, sizeof(*w));
    w->index = index;
    w->write = write;
    w->val = val;
    assert_int_equal(pthread_create(&w->t, NULL, toucher_main, w), 0);
}

/* Join with a deadline: a hang is a failure, not a stuck test run. */
static void finish(Toucher *w)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += WAIT_NS / 1000000000LL;
    assert_int_equal(pthread_timedjoin_np(w->t, NULL, &ts), 0);
}

/* Wait (bounded) until *@p >= @n. */
static void wait_for(const void *p, bool wide, uint64_t n)
{
    long long end = now_ns() + WAIT_NS;

    while ((wide ? __atomic_load_n((const uint64_t *)p, __ATOMIC_ACQUIRE)
                 : __atomic_load_n((const unsigned *)p, __ATOMIC_ACQUIRE))
           < n && now_ns() < end) {
        nap();
    }
}

/* ---- fixture ----------------------------------------------------------- */

static int fx_setup(void **state)
{
    Fx *f = calloc(1, sizeof(*f));
    DqFaultOps ops = { .obtain = fake_obtain, .opaque = f };
    size_t i;

    if (!f) {
        return -1;
    }
    f->ps = (size_t)sysconf(_SC_PAGESIZE);
    f->mem = mmap(NULL, NPAGES * f->ps, RW, MAP_PRIVATE | MAP_ANONYMOUS,
                  -1, 0);
    f->data = malloc(NPAGES * f->ps);
    if (f->mem == MAP_FAILED || !f->data ||
        dq_page_region_init(&f->r, f->mem, NPAGES * f->ps, DQ_PAGE_I,
                            RW) != DQ_OK) {
        return -1;
    }
    for (i = 0; i < NPAGES; i++) {
        memset(f->data + i * f->ps, 0x40 + (int)i, f->ps);
    }
    dq_fault_init(&f->f, &f->r, &ops);
    f->gate = 1;
    fx = f;
    *state = f;
    return 0;
}

static int fx_teardown(void **state)
{
    Fx *f = *state;

    fx = NULL;
    dq_page_region_destroy(&f->r);
    munmap(f->mem, NPAGES * f->ps);
    free(f->data);
    free(f);
    return 0;
}

static void assert_call(const Fx *f, unsigned n, size_t index,
                        DqPageState have, DqPageState want)
{
    assert_int_equal(f->log[n].index, index);
    assert_int_equal(f->log[n].have, have);
    assert_int_equal(f->log[n].want, want);
}

/* ---- tests ------------------------------------------------------------- */

static void fault_outside_the_region_is_not_ours(void **state)
{
    Fx *f = *state;
    DqStatus st = DQ_OK;

    assert_int_equal(dq_fault_handle(&f->f, (uintptr_t)f->mem - 1, false,
                                     false, &st), DQ_FAULT_NOT_OURS);
    assert_int_equal(dq_fault_handle(&f->f,
                                     (uintptr_t)f->mem + NPAGES * f->ps,
                                     true, true, &st), DQ_FAULT_NOT_OURS);
    assert_int_equal(st, DQ_OK);
    assert_int_equal(f->calls, 0);
}

static void read_fault_on_an_invalid_page_obtains_it_shared(void **state)
{
    Fx *f = *state;
    DqStatus st;
    uint8_t v = 0;

    arm_segv();
    assert_int_equal(touch(page(2), false, &v, &st), DQ_FAULT_HANDLED);
    assert_int_equal(v, 0x42);
    assert_int_equal(f->calls, 1);
    assert_call(f, 0, 2, DQ_PAGE_I, DQ_PAGE_S);
    assert_int_equal(dq_page_state(&f->r, 2), DQ_PAGE_S);
    assert_int_equal(dq_page_prot(&f->r, 2) & RW, PROT_READ);
    assert_int_equal(dq_page_peek(&f->r, 2) & DQ_PAGE_PENDING, 0);
}

static void write_fault_on_an_invalid_page_obtains_it_modified(void **state)
{
    Fx *f = *state;
    DqStatus st;
    uint8_t v = 0x99;

    arm_segv();
    assert_int_equal(touch(page(3), true, &v, &st), DQ_FAULT_HANDLED);
    assert_int_equal(f->calls, 1);
    assert_call(f, 0, 3, DQ_PAGE_I, DQ_PAGE_M);
    assert_int_equal(dq_page_state(&f->r, 3), DQ_PAGE_M);
    assert_int_equal(f->mem[3 * f->ps + 5], 0x99);
    assert_int_equal(f->mem[3 * f->ps + 6], 0x43);
}

static void write_fault_on_a_shared_page_upgrades_it(void **state)
{
    Fx *f = *state;
    DqStatus st;
    uint8_t v = 0;

    arm_segv();
    assert_int_equal(touch(page(1), false, &v, &st), DQ_FAULT_HANDLED);
    v = 0x77;
    assert_int_equal(touch(page(1), true, &v, &st), DQ_FAULT_HANDLED);
    assert_int_equal(f->calls, 2);
    assert_call(f, 0, 1, DQ_PAGE_I, DQ_PAGE_S);
    assert_call(f, 1, 1, DQ_PAGE_S, DQ_PAGE_M);
    assert_int_equal(dq_page_state(&f->r, 1), DQ_PAGE_M);
    assert_int_equal(f->mem[f->ps + 5], 0x77);
    /* Now M: more reads and writes fault no more. */
    assert_int_equal(touch(page(1) + 1, true, &v, &st), DQ_FAULT_HANDLED);
    assert_int_equal(touch(page(1) + 2, false, &v, &st), DQ_FAULT_HANDLED);
    assert_int_equal(f->calls, 2);
}

static void fault_beyond_the_bound_is_not_ours(void **state)
{
    Fx *f = *state;
    DqStatus st;
    uint8_t v = 1;

    arm_segv();
    assert_int_equal(dq_page_set_max_prot(&f->r, 4, PROT_READ), DQ_OK);
    assert_int_equal(touch(page(4), true, &v, &st), DQ_FAULT_NOT_OURS);
    assert_int_equal(f->calls, 0);
    assert_int_equal(touch(page(4), false, &v, &st), DQ_FAULT_HANDLED);
    assert_int_equal(v, 0x44);
    assert_int_equal(f->calls, 1);
    /* Readable in S under the bound: a write is still the program's. */
    assert_int_equal(touch(page(4), true, &v, &st), DQ_FAULT_NOT_OURS);
    assert_int_equal(dq_page_set_max_prot(&f->r, 5, PROT_NONE), DQ_OK);
    assert_int_equal(touch(page(5), false, &v, &st), DQ_FAULT_NOT_OURS);
    assert_int_equal(f->calls, 1);
    /* The program raises its bound: the write now upgrades. */
    assert_int_equal(dq_page_set_max_prot(&f->r, 4, RW), DQ_OK);
    v = 9;
    assert_int_equal(touch(page(4), true, &v, &st), DQ_FAULT_HANDLED);
    assert_int_equal(f->calls, 2);
    assert_call(f, 1, 4, DQ_PAGE_S, DQ_PAGE_M);
}

static void fault_the_page_already_allows_is_handled_without_a_request(
    void **state)
{
    Fx *f = *state;
    DqStatus st = DQ_OK;

    assert_int_equal(dq_page_install(&f->r, 0, f->data, DQ_PAGE_S), DQ_OK);
    /* A racing fault: the page arrived between the access and here. */
    assert_int_equal(dq_fault_handle(&f->f, page(0), false, false, &st),
                     DQ_FAULT_HANDLED);
    assert_int_equal(f->calls, 0);
    assert_int_equal(dq_page_set_state(&f->r, 0, DQ_PAGE_M), DQ_OK);
    assert_int_equal(dq_fault_handle(&f->f, page(0), true, true, &st),
                     DQ_FAULT_HANDLED);
    assert_int_equal(f->calls, 0);
}

static void fault_path_preserves_errno(void **state)
{
    Fx *f = *state;
    DqStatus st;

    f->clobber_errno = 1;
    errno = ERANGE;
    assert_int_equal(dq_fault_handle(&f->f, page(6), true, false, &st),
                     DQ_FAULT_HANDLED);
    assert_int_equal(errno, ERANGE);
    assert_int_equal(dq_fault_acquire_range(&f->f, page(7), 1, false),
                     DQ_OK);
    assert_int_equal(errno, ERANGE);
    assert_int_equal(f->calls, 2);
}

static void atomic_flag_reaches_obtain_only_from_the_faulting_access(
    void **state)
{
    Fx *f = *state;
    DqStatus st;
    uint8_t v = 0x31;

    arm_segv();
    /* An atomic's write: the request says so. */
    fault_atomic = true;
    assert_int_equal(touch(page(3), true, &v, &st), DQ_FAULT_HANDLED);
    fault_atomic = false;
    assert_call(f, 0, 3, DQ_PAGE_I, DQ_PAGE_M);
    assert_true(f->log[0].atomic);
    /* An atomic's read is passed on too: the engine decides (no lease). */
    assert_int_equal(dq_fault_handle(&f->f, page(4), false, true, &st),
                     DQ_FAULT_HANDLED);
    assert_call(f, 1, 4, DQ_PAGE_I, DQ_PAGE_S);
    assert_true(f->log[1].atomic);
    /* Its upgrade later, from a plain store, is not atomic. */
    assert_int_equal(touch(page(4), true, &v, &st), DQ_FAULT_HANDLED);
    assert_call(f, 2, 4, DQ_PAGE_S, DQ_PAGE_M);
    assert_false(f->log[2].atomic);
    /* Syscall buffers never are. */
    assert_int_equal(dq_fault_acquire_range(&f->f, page(5), 1, true), DQ_OK);
    assert_call(f, 3, 5, DQ_PAGE_I, DQ_PAGE_M);
    assert_false(f->log[3].atomic);
    assert_int_equal(f->calls, 4);
}

static void failing_obtain_makes_the_fault_return_its_error(void **state)
{
    Fx *f = *state;
    DqStatus st = DQ_OK;
    uint8_t v = 0;

    arm_segv();
    f->fail = DQ_ERR_XPORT_TIMEOUT;
    assert_int_equal(touch(page(2), false, &v, &st), DQ_FAULT_ERROR);
    assert_int_equal(st, DQ_ERR_XPORT_TIMEOUT);
    assert_int_equal(dq_page_state(&f->r, 2), DQ_PAGE_I);
    assert_int_equal(dq_page_peek(&f->r, 2) &
                     (DQ_PAGE_PENDING | DQ_PAGE_WAITERS), 0);
    assert_int_equal(dq_fault_acquire_range(&f->f, page(2), 1, true),
                     DQ_ERR_XPORT_TIMEOUT);
    /* The cluster recovers: the next fault asks again and succeeds. */
    f->fail = DQ_OK;
    assert_int_equal(touch(page(2), false, &v, &st), DQ_FAULT_HANDLED);
    assert_int_equal(v, 0x42);
    assert_int_equal(f->calls, 3);
}

static void failing_obtain_releases_every_waiting_thread(void **state)
{
    Fx *f = *state;
    Toucher w[NTHREADS];
    int i;

    arm_segv();
    f->fail = DQ_ERR_XPORT_PEER_FAILED;
    f->gate_waiters = NTHREADS - 1;
    for (i = 0; i < NTHREADS; i++) {
        start(&w[i], 6, i & 1, 1);
    }
    for (i = 0; i < NTHREADS; i++) {
        finish(&w[i]);
        assert_int_equal(w[i].res, DQ_FAULT_ERROR);
        assert_int_equal(w[i].st, DQ_ERR_XPORT_PEER_FAILED);
    }
    /* Each thread asked for itself once the one before it failed. */
    assert_int_equal(f->calls, NTHREADS);
    assert_int_equal(dq_page_peek(&f->r, 6) &
                     (DQ_PAGE_PENDING | DQ_PAGE_WAITERS), 0);
}

static void concurrent_faults_on_one_page_make_one_request(void **state)
{
    Fx *f = *state;
    Toucher w[NTHREADS];
    int i;

    arm_segv();
    /* The one request is answered only once all the others sleep. */
    f->gate_waiters = NTHREADS - 1;
    for (i = 0; i < NTHREADS; i++) {
        start(&w[i], 5, false, 0);
    }
    for (i = 0; i < NTHREADS; i++) {
        finish(&w[i]);
        assert_int_equal(w[i].res, DQ_FAULT_HANDLED);
        assert_int_equal(w[i].val, 0x45);
    }
    assert_int_equal(f->calls, 1);
    assert_true(f->f.waits >= NTHREADS - 1);
    assert_int_equal(f->f.obtains, 1);

    /* The same for writers on another page. */
    f->calls = 0;
    f->f.waits = 0;
    for (i = 0; i < NTHREADS; i++) {
        start(&w[i], 6, true, (uint8_t)(0x80 + i));
    }
    for (i = 0; i < NTHREADS; i++) {
        finish(&w[i]);
        assert_int_equal(w[i].res, DQ_FAULT_HANDLED);
    }
    assert_int_equal(f->calls, 1);
    assert_call(f, 0, 6, DQ_PAGE_I, DQ_PAGE_M);
    assert_int_equal(dq_page_state(&f->r, 6), DQ_PAGE_M);
    assert_true(f->mem[6 * f->ps + 5] >= 0x80);
    assert_int_equal(f->mem[6 * f->ps + 6], 0x46);
}

static void read_is_satisfied_by_an_install_while_a_write_is_pending(
    void **state)
{
    Fx *f = *state;
    Toucher a, b;

    arm_segv();
    f->gate = 0;
    start(&a, 1, true, 0x99);
    wait_for(&f->calls, false, 1);
    assert_int_equal(f->calls, 1);
    start(&b, 1, false, 0);
    wait_for(&f->f.waits, true, 1);
    assert_true(f->f.waits >= 1);
    /* A's write request is still out; S data arrives (a forward). */
    assert_int_equal(dq_page_install(&f->r, 1, f->data + f->ps, DQ_PAGE_S),
                     DQ_OK);
    finish(&b);
    assert_int_equal(b.res, DQ_FAULT_HANDLED);
    assert_int_equal(b.val, 0x41);
    assert_false(__atomic_load_n(&a.done, __ATOMIC_ACQUIRE));
    assert_true(dq_page_peek(&f->r, 1) & DQ_PAGE_PENDING);
    /* Then A's grant comes, and A's write lands. */
    __atomic_store_n(&f->gate, 1, __ATOMIC_RELEASE);
    finish(&a);
    assert_int_equal(a.res, DQ_FAULT_HANDLED);
    assert_int_equal(f->calls, 1);
    assert_call(f, 0, 1, DQ_PAGE_I, DQ_PAGE_M);
    assert_int_equal(dq_page_state(&f->r, 1), DQ_PAGE_M);
    assert_int_equal(f->mem[f->ps + 5], 0x99);
}

static void write_woken_by_a_shared_answer_asks_for_an_upgrade(void **state)
{
    Fx *f = *state;
    Toucher a, b;

    arm_segv();
    f->gate = 0;
    start(&a, 3, false, 0);
    wait_for(&f->calls, false, 1);
    start(&b, 3, true, 0x55);
    wait_for(&f->f.waits, true, 1);
    assert_true(f->f.waits >= 1);
    __atomic_store_n(&f->gate, 1, __ATOMIC_RELEASE);
    finish(&a);
    finish(&b);
    assert_int_equal(a.res, DQ_FAULT_HANDLED);
    assert_int_equal(b.res, DQ_FAULT_HANDLED);
    /* A's retried read may come before or after B's write. */
    assert_true(a.val == 0x43 || a.val == 0x55);
    assert_int_equal(f->calls, 2);
    assert_call(f, 0, 3, DQ_PAGE_I, DQ_PAGE_S);
    assert_call(f, 1, 3, DQ_PAGE_S, DQ_PAGE_M);
    assert_int_equal(dq_page_state(&f->r, 3), DQ_PAGE_M);
    assert_int_equal(f->mem[3 * f->ps + 5], 0x55);
}

static void acquire_range_obtains_only_the_missing_pages(void **state)
{
    Fx *f = *state;
    uintptr_t start_addr = (uintptr_t)f->mem + f->ps + 100;
    size_t len = 3 * f->ps;     /* pages 1..4 */

    arm_segv();
    assert_int_equal(dq_page_install(&f->r, 2, f->data + 2 * f->ps,
                                     DQ_PAGE_S), DQ_OK);
    assert_int_equal(dq_page_install(&f->r, 3, f->data + 3 * f->ps,
                                     DQ_PAGE_M), DQ_OK);
    assert_int_equal(dq_fault_acquire_range(&f->f, start_addr, len, false),
                     DQ_OK);
    assert_int_equal(f->calls, 2);
    assert_call(f, 0, 1, DQ_PAGE_I, DQ_PAGE_S);
    assert_call(f, 1, 4, DQ_PAGE_I, DQ_PAGE_S);
    /* The kernel can now write there without EFAULT... */
    assert_int_equal(dq_fault_acquire_range(&f->f, start_addr, len, true),
                     DQ_OK);
    assert_int_equal(f->calls, 5);
    assert_call(f, 2, 1, DQ_PAGE_S, DQ_PAGE_M);
    assert_call(f, 3, 2, DQ_PAGE_S, DQ_PAGE_M);
    assert_call(f, 4, 4, DQ_PAGE_S, DQ_PAGE_M);
    memset((void *)start_addr, 0x11, len);
    /* ...and pages outside it were left alone. */
    assert_int_equal(dq_page_state(&f->r, 0), DQ_PAGE_I);
    assert_int_equal(dq_page_state(&f->r, 5), DQ_PAGE_I);
    assert_int_equal(dq_fault_acquire_range(&f->f, start_addr, len, true),
                     DQ_OK);
    assert_int_equal(f->calls, 5);
}

static void acquire_range_rejects_a_range_leaving_the_region(void **state)
{
    Fx *f = *state;
    uintptr_t base = (uintptr_t)f->mem;

    assert_int_equal(dq_fault_acquire_range(&f->f, base, 0, true), DQ_OK);
    assert_int_equal(dq_fault_acquire_range(&f->f, base - 1, 2, false),
                     DQ_ERR_RANGE);
    assert_int_equal(dq_fault_acquire_range(&f->f, base,
                                            NPAGES * f->ps + 1, false),
                     DQ_ERR_RANGE);
    assert_int_equal(dq_fault_acquire_range(&f->f, UINTPTR_MAX, 2, false),
                     DQ_ERR_RANGE);
    assert_int_equal(f->calls, 0);
}

#define T(name) cmocka_unit_test_setup_teardown(name, fx_setup, fx_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(fault_outside_the_region_is_not_ours),
        T(read_fault_on_an_invalid_page_obtains_it_shared),
        T(write_fault_on_an_invalid_page_obtains_it_modified),
        T(write_fault_on_a_shared_page_upgrades_it),
        T(fault_beyond_the_bound_is_not_ours),
        T(fault_the_page_already_allows_is_handled_without_a_request),
        T(fault_path_preserves_errno),
        T(atomic_flag_reaches_obtain_only_from_the_faulting_access),
        T(failing_obtain_makes_the_fault_return_its_error),
        T(failing_obtain_releases_every_waiting_thread),
        T(concurrent_faults_on_one_page_make_one_request),
        T(read_is_satisfied_by_an_install_while_a_write_is_pending),
        T(write_woken_by_a_shared_answer_asks_for_an_upgrade),
        T(acquire_range_obtains_only_the_missing_pages),
        T(acquire_range_rejects_a_range_leaving_the_region),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
