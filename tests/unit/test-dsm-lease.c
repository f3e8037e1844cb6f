/*
 * Test the engine's leases against a scripted home: the engine runs as
 * node 0 of 2 in this process, node 1 is a bare transport playing the
 * home of the test's pages, and it answers a write request with the
 * GRANT_DATA and, right behind it, a RECALL, as a contended home does.
 * The lease must let the faulting thread run its atomic before the page
 * leaves; a read never leases; without a lease nothing is held back;
 * dq_dsm_stop() answers a recall still held; a held recall whose home
 * died meanwhile is dropped cleanly.  What a held recall waits for is a
 * clock, so no assertion here depends on whether one was held: each
 * checks what holds either way (tests/dsm measures the rest).
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
#include <sys/mman.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>
#include <cmocka.h>

#include "dsm.h"

#define NPAGES      8
#define WAIT_MS     5000        /* every wait here is bounded */
#define REGION_ADDR 0x3d5c00000000ull

/* ---- node 1: the scripted home -------------------------------------- */

typedef struct Home {
    DqXport *x;                 /* atomic: set once started */
    uint8_t copy[NPAGES][4096]; /* its pages, under lock */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool recall_behind;         /* a RECALL right behind each M grant */
    unsigned write_reqs, read_reqs;
    uint32_t last_flags;        /* of the last request */
    unsigned recall_data;       /* RECALL_DATA received */
    unsigned nacks;
    unsigned inval_acks;
    unsigned errors;            /* sends that failed, odd messages */
} Home;

static Home home;
static uintptr_t base;
static size_t ps;

static size_t page_of(uint64_t addr)
{
    return (size_t)((addr - base) / ps);
}

/* Context: node 1's I/O thread. */
static void home_on_message(void *opaque, const DqMsg *msg)
{
    DqXport *x = __atomic_load_n(&home.x, __ATOMIC_ACQUIRE);
    bool write = msg->type == DQ_MSG_WRITE_REQ ||
                 msg->type == DQ_MSG_UPGRADE_REQ;
    size_t p;
    DqMsg m;

    (void)opaque;
    pthread_mutex_lock(&home.lock);
    switch (msg->type) {
    case DQ_MSG_READ_REQ:
    case DQ_MSG_WRITE_REQ:
    case DQ_MSG_UPGRADE_REQ:
        p = page_of(msg->u.page.addr);
        home.last_flags = msg->flags;
        if (write) {
            home.write_reqs++;
        } else {
            home.read_reqs++;
        }
        memset(&m, 0, sizeof(m));
        m.type = DQ_MSG_GRANT_DATA;
        m.dst = msg->src;
        m.req_id = msg->req_id;
        m.u.page.addr = msg->u.page.addr;
        m.u.page.state = write ? DQ_PROTO_STATE_M : DQ_PROTO_STATE_S;
        m.tail = home.copy[p];
        m.tail_len = ps;
        home.errors += dq_xport_send(x, &m) != DQ_OK;
        if (write && home.recall_behind) {
            /* Someone else wants it already: FIFO puts this behind. */
            memset(&m, 0, sizeof(m));
            m.type = DQ_MSG_RECALL;
            m.dst = msg->src;
            m.req_id = dq_xport_next_req_id(x);
            m.u.page.addr = msg->u.page.addr;
            m.u.page.state = DQ_PROTO_STATE_I;
            home.errors += dq_xport_send(x, &m) != DQ_OK;
        }
        break;
    case DQ_MSG_RECALL_DATA:
        p = page_of(msg->u.page.addr);
        if (msg->tail_len == ps) {
            memcpy(home.copy[p], msg->tail, ps);
        } else {
            home.errors++;
        }
        home.recall_data++;
        break;
    case DQ_MSG_NACK:
        home.nacks++;
        break;
    case DQ_MSG_INVAL_ACK:
        home.inval_acks++;
        break;
    default:
        break;
    }
    pthread_cond_broadcast(&home.cond);
    pthread_mutex_unlock(&home.lock);
}

/* Wait (bounded) until *@counter >= @n; returns the value seen. */
static unsigned home_wait(const unsigned *counter, unsigned n)
{
    struct timespec ts;
    unsigned v;

    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += WAIT_MS / 1000;
    pthread_mutex_lock(&home.lock);
    while (*counter < n &&
           pthread_cond_timedwait(&home.cond, &home.lock, &ts) == 0) {
    }
    v = *counter;
    pthread_mutex_unlock(&home.lock);
    return v;
}

/*
 * Wait (bounded) until the home's copy of @page starts with @v, which a
 * RECALL_DATA brings; returns what it holds then.
 */
static uint64_t home_wait_word(size_t page, uint64_t v)
{
    struct timespec ts;
    uint64_t got;

    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += WAIT_MS / 1000;
    pthread_mutex_lock(&home.lock);
    while (((uint64_t *)home.copy[page])[0] != v &&
           pthread_cond_timedwait(&home.cond, &home.lock, &ts) == 0) {
    }
    got = ((uint64_t *)home.copy[page])[0];
    pthread_mutex_unlock(&home.lock);
    return got;
}

/* A counter of the home's, read under its lock. */
static unsigned home_get(const unsigned *counter)
{
    unsigned v;

    pthread_mutex_lock(&home.lock);
    v = *counter;
    pthread_mutex_unlock(&home.lock);
    return v;
}

static uint32_t home_flags(void)
{
    uint32_t v;

    pthread_mutex_lock(&home.lock);
    v = home.last_flags;
    pthread_mutex_unlock(&home.lock);
    return v;
}

/* The home recalls @page from node 0 (it may keep nothing). */
static void home_recall(size_t page)
{
    DqMsg m;

    memset(&m, 0, sizeof(m));
    m.type = DQ_MSG_RECALL;
    m.dst = 0;
    m.req_id = dq_xport_next_req_id(home.x);
    m.u.page.addr = base + page * ps;
    m.u.page.state = DQ_PROTO_STATE_I;
    assert_int_equal(dq_xport_send(home.x, &m), DQ_OK);
}

/* ---- node 0: the engine, and its SIGSEGV handler ---------------------- */

static __thread volatile bool in_atomic;

static void on_segv(int sig, siginfo_t *si, void *ucv)
{
    ucontext_t *uc = ucv;
    bool is_write = (uc->uc_mcontext.gregs[REG_ERR] & 2) != 0;
    DqStatus st;

    if (dq_dsm_fault_ex((uintptr_t)si->si_addr, is_write, in_atomic, &st) !=
        DQ_FAULT_HANDLED) {
        signal(sig, SIG_DFL);
    }
}

/* A page of the region that node 1 homes (HASH homes, one page blocks). */
static size_t remote_page(unsigned nth)
{
    DqHome h;
    size_t i;

    assert_int_equal(dq_home_init(&h, DQ_HOME_HASH, 2, 0, 0), DQ_OK);
    for (i = 0; i < NPAGES; i++) {
        if (dq_home_of(&h, i) == 1 && nth-- == 0) {
            dq_home_destroy(&h);
            return i;
        }
    }
    dq_home_destroy(&h);
    fail_msg("no page homed on node 1");
    return 0;
}

static uint64_t *word(size_t page)
{
    return (uint64_t *)(base + page * ps);
}

/* Engine as node 0 with @lease_ns, the scripted home as node 1. */
static void cluster_start(uint64_t lease_ns, bool recall_behind)
{
    struct sigaction sa;
    DqXportConfig hc;
    DqDsmConfig cfg;
    char err[DQ_ERRBUF_SIZE];
    DqXport *x;
    void *p;

    ps = (size_t)sysconf(_SC_PAGESIZE);
    assert_int_equal(ps, sizeof(home.copy[0]));
    p = mmap((void *)(uintptr_t)REGION_ADDR, NPAGES * ps,
             PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    assert_true(p == (void *)(uintptr_t)REGION_ADDR);
    base = (uintptr_t)p;
    memset(&home, 0, sizeof(home));
    pthread_mutex_init(&home.lock, NULL);
    pthread_cond_init(&home.cond, NULL);
    home.recall_behind = recall_behind;

    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    assert_int_equal(sigaction(SIGSEGV, &sa, NULL), 0);

    memset(&cfg, 0, sizeof(cfg));
    cfg.xport.node_id = 0;
    cfg.xport.node_count = 2;
    cfg.xport.master_endpoint = "tcp://127.0.0.1:*";
    cfg.xport.cluster_id = 0x1ea5e;
    cfg.xport.heartbeat_ms = 50;
    cfg.xport.failure_timeout_ms = 400;
    cfg.base = p;
    cfg.len = NPAGES * ps;
    cfg.home_policy = DQ_HOME_HASH;
    cfg.request_timeout_ms = 3000;
    cfg.lease_ns = lease_ns;
    assert_int_equal(dq_dsm_start(&cfg, err, sizeof(err)), DQ_OK);

    memset(&hc, 0, sizeof(hc));
    hc.node_id = 1;
    hc.node_count = 2;
    hc.master_endpoint = dq_xport_endpoint(dq_dsm_xport());
    hc.cluster_id = cfg.xport.cluster_id;
    hc.page_size = (uint32_t)ps;
    hc.heartbeat_ms = 50;
    hc.failure_timeout_ms = 400;
    hc.ops.on_message = home_on_message;
    assert_int_equal(dq_xport_start(&hc, &x, err, sizeof(err)), DQ_OK);
    __atomic_store_n(&home.x, x, __ATOMIC_RELEASE);
    assert_int_equal(dq_dsm_wait_ready(err, sizeof(err)), DQ_OK);
    assert_int_equal(dq_xport_wait_ready(x, err, sizeof(err)), DQ_OK);
}

static void home_free(void)
{
    DqXport *x = __atomic_exchange_n(&home.x, NULL, __ATOMIC_ACQ_REL);

    dq_xport_free(x);
}

/* Teardown, also after a failed assertion: nothing left for the next. */
static int cluster_cleanup(void **s)
{
    (void)s;
    dq_dsm_stop();
    home_free();
    signal(SIGSEGV, SIG_DFL);
    if (base != 0) {
        munmap((void *)base, NPAGES * ps);
        base = 0;
    }
    return 0;
}

/*
 * Wait (bounded) until node 0 has the home's recall in hand, held back
 * or answered: a recall still on the wire when the engine stops is not
 * the engine's business any more.
 */
static void wait_recall_seen(void)
{
    DqDsmCounters c;
    int i;

    for (i = 0; i < WAIT_MS; i++) {
        dq_dsm_counters(&c);
        if (c.lease_deferrals + c.recalls > 0) {
            return;
        }
        usleep(1000);
    }
    fail_msg("the recall never reached node 0");
}

/* ---- tests ------------------------------------------------------------- */

static void recall_behind_an_atomic_grant_finds_the_atomic_done(void **s)
{
    size_t p = remote_page(0);
    DqDsmCounters c;

    (void)s;
    cluster_start(DQ_DSM_LEASE_MAX_NS, true);
    in_atomic = true;
    __atomic_fetch_add(word(p), 41, __ATOMIC_SEQ_CST);
    __atomic_fetch_add(word(p), 1, __ATOMIC_SEQ_CST);
    in_atomic = false;
    /*
     * Every recall gets answered, after the page's lease if it was still
     * running: the home ends with what this node wrote, whatever the
     * clock did.
     */
    assert_int_equal(home_wait_word(p, 42), 42);
    assert_int_equal(home_get(&home.nacks), 0);
    assert_int_equal(home_get(&home.errors), 0);
    dq_dsm_counters(&c);
    /* Every write fault here was an atomic's, granted M: one lease each. */
    assert_true(c.lease_grants >= 1);
    assert_int_equal(c.lease_grants, c.write_faults + c.upgrade_faults);
    assert_true(c.lease_deferrals <= c.recalls);
    assert_int_equal(c.proto_errors, 0);
}

static void atomic_read_never_leases_and_its_copy_is_invalidated_at_once(
    void **s)
{
    size_t p = remote_page(0);
    DqDsmCounters c;
    uint64_t v;
    DqMsg m;

    (void)s;
    cluster_start(DQ_DSM_LEASE_MAX_NS, false);
    in_atomic = true;
    v = __atomic_load_n(word(p), __ATOMIC_SEQ_CST);
    in_atomic = false;
    assert_int_equal(v, 0);
    assert_int_equal(home_get(&home.read_reqs), 1);
    /* The home is told an atomic write comes; a read is just a read. */
    assert_int_equal(home_flags(), 0);
    /* S has no lease: the INVAL is obeyed however long the lease is. */
    memset(&m, 0, sizeof(m));
    m.type = DQ_MSG_INVAL;
    m.dst = 0;
    m.req_id = dq_xport_next_req_id(home.x);
    m.u.page.addr = base + p * ps;
    assert_int_equal(dq_xport_send(home.x, &m), DQ_OK);
    assert_int_equal(home_wait(&home.inval_acks, 1), 1);
    dq_dsm_counters(&c);
    assert_int_equal(c.lease_grants, 0);
    assert_int_equal(c.lease_deferrals, 0);
    /* The write that follows a load-exclusive leases, and says so. */
    in_atomic = true;
    __atomic_store_n(word(p), 7, __ATOMIC_SEQ_CST);
    in_atomic = false;
    assert_int_equal(home_flags(), DQ_MSG_F_ATOMIC);
    dq_dsm_counters(&c);
    assert_int_equal(c.lease_grants, 1);
}

static void without_a_lease_nothing_is_held_back(void **s)
{
    size_t p = remote_page(0);
    DqDsmCounters c;

    (void)s;
    /*
     * Not with a recall right behind the grant: without a lease that is
     * the livelock the lease is for, and this thread might never finish.
     */
    cluster_start(0, false);
    in_atomic = true;
    __atomic_fetch_add(word(p), 1, __ATOMIC_SEQ_CST);
    in_atomic = false;
    assert_int_equal(home_flags(), 0);
    home_recall(p);
    assert_int_equal(home_wait_word(p, 1), 1);
    dq_dsm_counters(&c);
    assert_int_equal(c.lease_grants, 0);
    assert_int_equal(c.lease_deferrals, 0);
    assert_int_equal(c.lease_wait_ns, 0);
}

static void stop_answers_a_recall_still_held(void **s)
{
    size_t p = remote_page(0);

    (void)s;
    cluster_start(DQ_DSM_LEASE_MAX_NS, true);
    in_atomic = true;
    __atomic_fetch_add(word(p), 0x5709, __ATOMIC_SEQ_CST);
    in_atomic = false;
    wait_recall_seen();
    /* Stopping now: the recall (most likely held) must still go out. */
    dq_dsm_stop();
    assert_int_equal(home_wait_word(p, 0x5709), 0x5709);
    assert_int_equal(home_get(&home.errors), 0);
}

static void held_recall_of_a_home_that_died_is_dropped_cleanly(void **s)
{
    size_t p = remote_page(0);
    DqStatus st;

    (void)s;
    cluster_start(DQ_DSM_LEASE_MAX_NS, true);
    /* The fault by hand: back from it, the lease runs 2 ms. */
    assert_int_equal(dq_dsm_fault_ex(base + p * ps, true, true, &st),
                     DQ_FAULT_HANDLED);
    wait_recall_seen();
    /* The home goes while the recall is (most likely) held. */
    home_free();
    /* Past the lease and the failure timeout: the answer finds it gone. */
    usleep(600 * 1000);
    dq_dsm_stop();
}

int main(void)
{
#define T(name) cmocka_unit_test_teardown(name, cluster_cleanup)
    const struct CMUnitTest tests[] = {
        T(recall_behind_an_atomic_grant_finds_the_atomic_done),
        T(atomic_read_never_leases_and_its_copy_is_invalidated_at_once),
        T(without_a_lease_nothing_is_held_back),
        T(stop_answers_a_recall_still_held),
        T(held_recall_of_a_home_that_died_is_dropped_cleanly),
    };
#undef T

    return cmocka_run_group_tests_name("dsm-lease", tests, NULL, NULL);
}
