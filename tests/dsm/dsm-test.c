/*
 * dsm-test.c - one node of a host-only DSM cluster over the coherence engine.
 *
 * Test that K processes sharing one region at the same address, with a
 * SIGSEGV handler calling dq_dsm_fault(), see coherent memory: a producer's
 * data behind a flag (prodcons), one page written at disjoint slots by all
 * (false), random reads and writes with per-node sequence numbers checked
 * exactly (stress), that a killed peer ends the run with a report, never
 * a hang (the driver kills a node during stress), and that the pages it
 * held are either intact elsewhere or refused as lost (lost).  That
 * threads of every node incrementing one word with CAS loops and
 * fetch_add, their faults passed as atomic (dq_dsm_fault_ex) so that
 * leases apply, lose no increment and finish (atomic; its ops/s is what
 * `make bench-lease` prints).  With the program owning the transport
 * (dq_dsm_attach), that claims, drops, bounds and on_page_dropped work
 * across processes, steered by CALLs (attach, 2 nodes), and what
 * attaching to a 4 GiB region costs (cost, 1 node); --attach runs the
 * other scenarios over a transport the program made.
 * tests/dsm/test_dsm.py drives it.
 *
 * stdout: "node K: endpoint E", "node K: ready", "node K: running",
 * "node K: done SCENARIO", "node K: verified SCENARIO" (master),
 * "node K: peer-failed J at T", "dqemu: node K: dsm: ..." (the engine's
 * counters, dq_dsm_counters_print), "node K: shutdown C", "node K: step
 * S" (attach), "node 0: cost attach MS ms rss KB kB ..." (cost),
 * "node K: atomic N ops in S s, R cas retries" (atomic).
 * stderr: "dqemu: node K: <what failed>: <why>".
 * Exit: 0 done, 1 usage, 2 start-up failed, 3 a peer failed, 4 bad data,
 * 5 timeout.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "dsm.h"

#define EXIT_START  2
#define EXIT_PEER   3
#define EXIT_DATA   4
#define EXIT_TIME   5

#define REGION_ADDR 0x3d5a00000000ull
#define WAIT_S      60

/* Page 0: control.  Page 1: flag / false-sharing slots.  Then data. */
typedef struct Control {
    uint64_t done[DQ_MAX_NODES];
    uint64_t csum[DQ_MAX_NODES];
    uint64_t go[DQ_MAX_NODES];  /* atomic: this node is at the start line */
} Control;

static unsigned node_id, nodes;
static size_t ps;
static volatile uint8_t *region;
static volatile Control *ctl;
static volatile int peer_failed;
/*
 * Set around a thread's atomic operations (atomic scenario), as QEMU
 * would around a guest atomic: the SIGSEGV handler passes it on.
 */
static __thread volatile int in_atomic;

static void dq_error(const char *what, const char *f, ...)
    __attribute__((format(printf, 2, 3)));

static void dq_error(const char *what, const char *f, ...)
{
    va_list ap;

    fprintf(stderr, "dqemu: node %u: %s: ", node_id, what);
    va_start(ap, f);
    vfprintf(stderr, f, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* Wait up to @ms for the failure report of a peer; true if it came. */
static bool peer_failure_seen(long ms)
{
    struct timespec ts = { 0, 10000000L };
    long i;

    for (i = 0; i < ms / 10 && !peer_failed; i++) {
        nanosleep(&ts, NULL);
    }
    return peer_failed;
}

/*
 * After a failure, stay in the cluster a little longer than the failure
 * timeout, so every node detects the dead one itself rather than seeing
 * only the survivors that leave.
 */
static void linger_after_failure(void)
{
    struct timespec ts = { 2, 500000000L };

    nanosleep(&ts, NULL);
}

static void segv(int sig, siginfo_t *si, void *uc)
{
    bool is_write = false;
    DqStatus st = DQ_OK;
    char msg[64] = "dqemu: node ", num[8];
    const char *why;
    size_t l = strlen(msg), k = 0;
    unsigned v = node_id;

#if defined(__x86_64__)
    is_write = (((ucontext_t *)uc)->uc_mcontext.gregs[REG_ERR] & 2) != 0;
#else
    (void)uc;
#endif
    switch (dq_dsm_fault_ex((uintptr_t)si->si_addr, is_write, in_atomic != 0,
                            &st)) {
    case DQ_FAULT_HANDLED:
        return;
    case DQ_FAULT_ERROR:
        why = dq_status_str(st);
        do {
            num[k++] = (char)('0' + v % 10);
            v /= 10;
        } while (v != 0);
        while (k > 0) {
            msg[l++] = num[--k];
        }
        memcpy(msg + l, ": page fault failed: ", 22);
        l += 21;
        /* Let the transport's own report of the failure come out first. */
        if (st == DQ_ERR_XPORT_PEER_FAILED) {
            peer_failure_seen(1000);
        }
        linger_after_failure();
        if (write(2, msg, l) < 0 ||
            write(2, why, strlen(why)) < 0 || write(2, "\n", 1) < 0) {
            /* nothing more to say */
        }
        _exit(EXIT_PEER);
    default:
        signal(sig, SIG_DFL);
        return;
    }
}

static void on_peer_failed(void *opaque, unsigned node, const char *why)
{
    struct timespec ts;

    (void)opaque;
    clock_gettime(CLOCK_REALTIME, &ts);
    dq_error("peer failed", "lost contact with node %u (%s)", node, why);
    printf("node %u: peer-failed %u at %lld.%03ld\n", node_id, node,
           (long long)ts.tv_sec, ts.tv_nsec / 1000000);
    fflush(stdout);
    peer_failed = 1;
}

static double now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void nap_ms(long ms)
{
    struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

    nanosleep(&ts, NULL);
}

static uint64_t xs(uint64_t *s)
{
    uint64_t x = *s;

    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static volatile uint64_t *data_words(void)
{
    return (volatile uint64_t *)(region + 2 * ps);
}

static uint64_t pattern(size_t w)
{
    return (uint64_t)w * 0x9e3779b97f4a7c15ull + 1;
}

/* Wait for @cond with a bound; returns 0, EXIT_PEER or EXIT_TIME. */
#define WAIT_FOR(cond)                                           \
    ({                                                           \
        double dl_ = now_s() + WAIT_S;                           \
        int rc_ = 0;                                             \
        while (!(cond)) {                                        \
            if (peer_failed) { rc_ = EXIT_PEER; break; }         \
            if (now_s() > dl_) { rc_ = EXIT_TIME; break; }       \
            nap_ms(1);                                           \
        }                                                        \
        rc_;                                                     \
    })

/*
 * Wrong data is a bug.  (A page whose only copy died with a peer is
 * refused, not served stale, so a failure explains no wrong value; it is
 * still given the time to be reported, as the likelier first cause.)
 */
static int data_error(void)
{
    return peer_failure_seen(3000) ? EXIT_PEER : EXIT_DATA;
}

/*
 * Is data page @p intact (every word its pattern)?  Through
 * dq_dsm_acquire_range(), so a refused page is a status, not a signal.
 */
static DqStatus check_page(unsigned p, bool *intact)
{
    volatile uint64_t *w = data_words() + (size_t)p * (ps / 8);
    DqStatus st;
    size_t i;

    *intact = false;
    st = dq_dsm_acquire_range((uintptr_t)w, ps, false);
    if (st == DQ_OK) {
        *intact = true;
        for (i = 0; i < ps / 8; i++) {
            *intact &= w[i] == pattern((size_t)p * (ps / 8) + i);
        }
    }
    return st;
}

/*
 * A node dies holding pages: data page 0 only it has (M, never read
 * back), data page 1 it wrote but node 0 read since.  The survivors must
 * still read page 1 exactly and be refused page 0, never given the
 * stale zeros of its home copy.  Node 2 is the victim, the driver kills
 * it after "node 0: read back"; nodes 0 (the home) and 1 check.
 */
static int run_lost(void)
{
    volatile uint64_t *w = data_words();
    unsigned p;
    bool intact;
    size_t i;
    DqStatus st;
    int rc;

    if (node_id == 2) {
        for (i = 0; i < 2 * ps / 8; i++) {
            w[i] = pattern(i);
        }
        ctl->done[2] = 2;
        printf("node 2: holding\n");
        fflush(stdout);
        return peer_failure_seen(WAIT_S * 1000) ? EXIT_PEER : EXIT_TIME;
    }
    if (node_id == 0) {
        rc = WAIT_FOR(ctl->done[2] == 2);
        if (rc != 0) {
            return rc;
        }
        ctl->done[0] = 2;       /* the control page is ours now, not 2's */
        if (check_page(1, &intact) != DQ_OK || !intact) {
            dq_error("lost", "page 1 read back wrong before the failure");
            return EXIT_DATA;
        }
        printf("node 0: read back\n");
        fflush(stdout);
    }
    if (!peer_failure_seen(WAIT_S * 1000)) {
        return EXIT_TIME;
    }
    for (p = 0; p < 2; p++) {
        st = check_page(p, &intact);
        printf("node %u: page %u: %s\n", node_id, p,
               st != DQ_OK ? dq_status_str(st) :
               intact ? "intact" : "wrong data");
        fflush(stdout);
    }
    return EXIT_PEER;
}

static int run_prodcons(unsigned pages)
{
    volatile uint64_t *w = data_words();
    volatile uint64_t *flag = (volatile uint64_t *)(region + ps);
    size_t n = pages * ps / 8, i;
    int rc;

    if (node_id == 1) {
        for (i = 0; i < n; i++) {
            w[i] = pattern(i);
        }
        *flag = 0xf1a9;
        return 0;
    }
    rc = WAIT_FOR(*flag == 0xf1a9);
    if (rc != 0) {
        dq_error("prodcons", "flag never set");
        return rc;
    }
    for (i = 0; i < n; i++) {
        if (w[i] != pattern(i)) {
            dq_error("prodcons", "word %zu is %#" PRIx64 ", want %#" PRIx64,
                     i, w[i], pattern(i));
            return data_error();
        }
    }
    return 0;
}

static int run_false(unsigned iters)
{
    volatile uint64_t *slot = (volatile uint64_t *)(region + ps);
    unsigned i;

    for (i = 0; i < iters; i++) {
        if (peer_failed) {
            return EXIT_PEER;
        }
        if (slot[node_id * 8] != i) {
            dq_error("false", "own slot is %" PRIu64 " at step %u",
                     slot[node_id * 8], i);
            return data_error();
        }
        slot[node_id * 8] = i + 1;
    }
    return 0;
}

static int run_stress(unsigned pages, unsigned iters, uint64_t seed,
                      bool announce)
{
    volatile uint64_t *w = data_words();
    size_t lane = pages * ps / 8 / nodes, j;
    uint64_t *shadow = calloc(lane, sizeof(uint64_t));
    uint64_t s = seed * 0x100000001b3ull + node_id * 7919 + 1;
    uint64_t seq = 0, sum = 0, r, max = (uint64_t)iters;
    unsigned i;

    if (shadow == NULL) {
        return 1;
    }
    for (i = 0; i < iters; i++) {
        if (peer_failed) {
            free(shadow);
            return EXIT_PEER;
        }
        if (announce && i == (iters < 20000 ? iters / 100 : 200)) {
            printf("node %u: running\n", node_id);
            fflush(stdout);
        }
        r = xs(&s);
        j = (size_t)((r >> 8) % lane);
        if (r & 1) {
            shadow[j] = ++seq;
            w[j * nodes + node_id] = seq;
        } else {
            unsigned n = (unsigned)((r >> 40) % nodes);
            uint64_t v = w[j * nodes + n];

            if ((n == node_id && v != shadow[j]) || v > max) {
                dq_error("stress", "word %zu of node %u is %" PRIu64, j, n,
                         v);
                free(shadow);
                return data_error();
            }
        }
    }
    for (j = 0; j < lane; j++) {
        if (w[j * nodes + node_id] != shadow[j]) {
            dq_error("stress", "final word %zu is %" PRIu64 ", want %" PRIu64,
                     j, w[j * nodes + node_id], shadow[j]);
            free(shadow);
            return data_error();
        }
        sum += shadow[j] * (j + 1);
    }
    ctl->csum[node_id] = sum;
    free(shadow);
    return 0;
}

/* ---- atomic: one word, every thread of every node --------------------- */

typedef struct Hammer {
    pthread_t t;
    unsigned rounds;
    long pause_ns;              /* sleep between two increments */
    uint64_t cas_retries;
    int rc;
} Hammer;

/*
 * @h->rounds increments of the first data word, CAS loops and fetch_add
 * alternating, each flagged atomic for the SIGSEGV handler.
 */
static void *hammer_main(void *arg)
{
    Hammer *h = arg;
    uint64_t *w = (uint64_t *)data_words(), old;
    unsigned i;

    for (i = 0; i < h->rounds; i++) {
        if (peer_failed) {
            h->rc = EXIT_PEER;
            break;
        }
        in_atomic = 1;
        /* The flag must be up before the access faults, and stay up. */
        __atomic_signal_fence(__ATOMIC_SEQ_CST);
        if (i & 1) {
            __atomic_fetch_add(w, 1, __ATOMIC_SEQ_CST);
        } else {
            old = __atomic_load_n(w, __ATOMIC_RELAXED);
            while (!__atomic_compare_exchange_n(w, &old, old + 1, false,
                                                __ATOMIC_SEQ_CST,
                                                __ATOMIC_RELAXED)) {
                h->cas_retries++;
            }
        }
        __atomic_signal_fence(__ATOMIC_SEQ_CST);
        in_atomic = 0;
        if (h->pause_ns > 0) {
            struct timespec ts = { 0, h->pause_ns };

            nanosleep(&ts, NULL);
        }
    }
    return NULL;
}

/*
 * Every node starts its @threads threads at once (a start line in the
 * control page), so they contend; prints this node's ops and time.
 */
static int run_atomic(unsigned threads, unsigned rounds, long pause_ns)
{
    Hammer *h = calloc(threads, sizeof(*h));
    uint64_t retries = 0;
    double t0, t1;
    unsigned i, n;
    int rc = 0;

    if (h == NULL) {
        return 1;
    }
    __atomic_store_n((uint64_t *)&ctl->go[node_id], 1, __ATOMIC_SEQ_CST);
    for (n = 0; n < nodes && rc == 0; n++) {
        rc = WAIT_FOR(__atomic_load_n((uint64_t *)&ctl->go[n],
                                      __ATOMIC_SEQ_CST) != 0);
    }
    if (rc != 0) {
        free(h);
        return rc;
    }
    /*
     * The nodes passed the line up to a nap apart, and a node alone does
     * its rounds in a few ms: the last one in says go (one more fault
     * round), the others spin on their S copy until its INVAL.
     */
    if (__atomic_add_fetch((uint64_t *)&ctl->go[0], 1, __ATOMIC_SEQ_CST) <
        nodes + 1) {
        t0 = now_s() + WAIT_S;
        while (__atomic_load_n((uint64_t *)&ctl->go[0], __ATOMIC_SEQ_CST) <
               nodes + 1) {
            if (peer_failed || now_s() > t0) {
                free(h);
                return peer_failed ? EXIT_PEER : EXIT_TIME;
            }
            sched_yield();
        }
    }
    printf("node %u: running\n", node_id);
    fflush(stdout);
    t0 = now_s();
    for (i = 0; i < threads; i++) {
        h[i].rounds = rounds;
        h[i].pause_ns = pause_ns;
        if (pthread_create(&h[i].t, NULL, hammer_main, &h[i]) != 0) {
            dq_error("atomic", "cannot start thread %u", i);
            _exit(1);
        }
    }
    for (i = 0; i < threads; i++) {
        pthread_join(h[i].t, NULL);
        retries += h[i].cas_retries;
        if (rc == 0) {
            rc = h[i].rc;
        }
    }
    t1 = now_s();
    free(h);
    if (rc == 0) {
        printf("node %u: atomic %" PRIu64 " ops in %.6f s, %" PRIu64
               " cas retries\n", node_id, (uint64_t)threads * rounds,
               t1 - t0, retries);
        fflush(stdout);
    }
    return rc;
}

/* Master, once every node is done: check the scenario's final state. */
static int verify(const char *scenario, unsigned pages, unsigned iters,
                  unsigned threads)
{
    unsigned n;
    size_t j;

    if (strcmp(scenario, "false") == 0) {
        volatile uint64_t *slot = (volatile uint64_t *)(region + ps);

        for (n = 0; n < nodes; n++) {
            if (slot[n * 8] != iters) {
                dq_error("verify", "slot of node %u is %" PRIu64, n,
                         slot[n * 8]);
                return EXIT_DATA;
            }
        }
    } else if (strcmp(scenario, "atomic") == 0) {
        uint64_t want = (uint64_t)nodes * threads * iters;

        if (data_words()[0] != want) {
            dq_error("verify", "the word is %" PRIu64 ", want %" PRIu64,
                     data_words()[0], want);
            return EXIT_DATA;
        }
    } else if (strcmp(scenario, "stress") == 0) {
        volatile uint64_t *w = data_words();
        size_t lane = pages * ps / 8 / nodes;
        uint64_t sums[DQ_MAX_NODES] = { 0 };

        for (j = 0; j < lane; j++) {
            for (n = 0; n < nodes; n++) {
                sums[n] += w[j * nodes + n] * (j + 1);
            }
        }
        for (n = 0; n < nodes; n++) {
            if (sums[n] != ctl->csum[n]) {
                dq_error("verify", "checksum of node %u is %#" PRIx64
                         ", node says %#" PRIx64, n, sums[n], ctl->csum[n]);
                return EXIT_DATA;
            }
        }
    }
    return 0;
}

/* ---- attach: the program owns the transport --------------------------- */

/*
 * CALL ops node 0 sends node 1, which runs them on its main thread (they
 * fault; the I/O thread must not) and answers with a CALL_REPLY whose aux
 * is a DqStatus (or 0 / 1 for a data check) and arg a value.
 */
enum {
    OP_BOUND = 1,   /* arg page, aux prot, tail[0] pages: set_bound */
    OP_CHECK,       /* arg page, aux pages, tail[0] id: read and compare */
    OP_WRITE,       /* arg page, tail[0] id: write the pattern */
    OP_DROP,        /* arg page, aux pages: drop_range */
    OP_DROPS,       /* arg page: how often on_page_dropped named it */
    OP_PROBE,       /* arg page, aux is_write: dq_dsm_fault() result */
    OP_CLAIM,       /* arg page: claim_range (node 1 homes nothing) */
    OP_ECHO,        /* answered on the I/O thread with the same bytes */
    OP_QUIT,
};

#define ATT_PAGES       6       /* 0-3 data, 4 read-only on 1, 5 unmapped */
#define ATT_MAX_PAYLOAD (256u * 1024u)
#define ATT_BIG         (200u * 1000u)
#define ATT_QUEUE       8

typedef struct AttWork {
    uint32_t op, aux;
    uint64_t arg;
    uint16_t src;
    uint64_t req_id;
    uint8_t id;                 /* tail[0], when there is one */
} AttWork;

static DqXport *att_x;
static pthread_mutex_t att_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t att_cond = PTHREAD_COND_INITIALIZER;
static AttWork att_q[ATT_QUEUE];
static unsigned att_head, att_len;
static unsigned att_odd;        /* messages the engine left us, not CALLs */
static bool att_shutdown;       /* node 1: the master said stop */
static uint32_t att_drops[64];  /* on_page_dropped per page, atomic */

static uint64_t att_word(unsigned page, uint8_t id, size_t w)
{
    return ((uint64_t)id << 56) ^ ((uint64_t)page << 40) ^
           (w * 0x9e3779b97f4a7c15ull >> 24);
}

static volatile uint64_t *att_page(unsigned page)
{
    return (volatile uint64_t *)(region + (size_t)page * ps);
}

static void att_fill(unsigned page, uint8_t id)
{
    volatile uint64_t *w = att_page(page);
    size_t i;

    for (i = 0; i < ps / 8; i++) {
        w[i] = att_word(page, id, i);
    }
}

/* 0 if @pages pages from @page hold pattern @id, else 1. */
static int att_check(unsigned page, unsigned pages, uint8_t id)
{
    unsigned p;
    size_t i;

    for (p = page; p < page + pages; p++) {
        volatile uint64_t *w = att_page(p);

        for (i = 0; i < ps / 8; i++) {
            if (w[i] != att_word(p, id, i)) {
                dq_error("attach", "page %u word %zu is %#" PRIx64
                         ", want %#" PRIx64, p, i, w[i],
                         att_word(p, id, i));
                return 1;
            }
        }
    }
    return 0;
}

/* Async-signal-safe: may run in a faulting thread's SIGSEGV handler. */
static void att_on_page_dropped(void *opaque, uintptr_t page_addr)
{
    size_t i = (page_addr - (uintptr_t)region) / ps;

    (void)opaque;
    if (i < 64) {
        __atomic_fetch_add(&att_drops[i], 1, __ATOMIC_RELAXED);
    }
}

/* Context: I/O thread. */
static void att_on_message(void *opaque, const DqMsg *msg)
{
    DqMsg r;

    (void)opaque;
    if (dq_dsm_handle_message(msg)) {
        if (msg->type == DQ_MSG_CALL || msg->type == DQ_MSG_CALL_REPLY) {
            att_odd++;          /* the engine must leave CALLs alone */
        }
        return;
    }
    if (msg->type != DQ_MSG_CALL) {
        att_odd++;
        return;
    }
    if (msg->u.call.op == OP_ECHO) {
        memset(&r, 0, sizeof(r));
        r.type = DQ_MSG_CALL_REPLY;
        r.dst = msg->src;
        r.req_id = msg->req_id;
        r.u.call.op = OP_ECHO;
        r.u.call.arg = msg->tail_len;
        r.tail = msg->tail;
        r.tail_len = msg->tail_len;
        if (dq_xport_send(att_x, &r) != DQ_OK) {
            att_odd++;
        }
        return;
    }
    pthread_mutex_lock(&att_lock);
    if (att_len == ATT_QUEUE) {
        att_odd++;
    } else {
        AttWork *w = &att_q[(att_head + att_len++) % ATT_QUEUE];

        w->op = msg->u.call.op;
        w->aux = msg->u.call.aux;
        w->arg = msg->u.call.arg;
        w->src = msg->src;
        w->req_id = msg->req_id;
        w->id = msg->tail_len > 0 ? msg->tail[0] : 0;
        pthread_cond_broadcast(&att_cond);
    }
    pthread_mutex_unlock(&att_lock);
}

static void att_on_peer_failed(void *opaque, unsigned node, const char *why)
{
    dq_dsm_handle_peer_failed(node, why);
    on_peer_failed(opaque, node, why);
    pthread_mutex_lock(&att_lock);
    pthread_cond_broadcast(&att_cond);
    pthread_mutex_unlock(&att_lock);
}

/* Node 1: the master gave up on the scenario (or finished it). */
static void att_on_shutdown(void *opaque, uint32_t code)
{
    (void)opaque;
    (void)code;
    pthread_mutex_lock(&att_lock);
    att_shutdown = true;
    pthread_cond_broadcast(&att_cond);
    pthread_mutex_unlock(&att_lock);
}

/* Node 1: run node 0's CALLs until OP_QUIT.  0 or an exit code. */
static int att_serve(void)
{
    struct timespec dl;
    DqFaultResult fr;
    DqStatus st;
    AttWork w;
    DqMsg r;
    uint64_t val;
    uint32_t res;

    for (;;) {
        clock_gettime(CLOCK_REALTIME, &dl);
        dl.tv_sec += WAIT_S;
        pthread_mutex_lock(&att_lock);
        while (att_len == 0 && !peer_failed && !att_shutdown) {
            if (pthread_cond_timedwait(&att_cond, &att_lock, &dl) != 0) {
                break;
            }
        }
        if (att_len == 0) {
            pthread_mutex_unlock(&att_lock);
            if (att_shutdown) {
                dq_error("attach", "shut down before the scenario ended");
                return EXIT_DATA;
            }
            return peer_failed ? EXIT_PEER : EXIT_TIME;
        }
        w = att_q[att_head];
        att_head = (att_head + 1) % ATT_QUEUE;
        att_len--;
        pthread_mutex_unlock(&att_lock);

        val = 0;
        switch (w.op) {
        case OP_BOUND:
            res = dq_dsm_set_bound((uintptr_t)att_page((unsigned)w.arg),
                                   (size_t)w.id * ps, (int)w.aux);
            break;
        case OP_CHECK:
            res = (uint32_t)att_check((unsigned)w.arg, w.aux, w.id);
            break;
        case OP_WRITE:
            att_fill((unsigned)w.arg, w.id);
            res = 0;
            break;
        case OP_DROP:
            res = dq_dsm_drop_range((uintptr_t)att_page((unsigned)w.arg),
                                    (size_t)w.aux * ps);
            break;
        case OP_DROPS:
            val = __atomic_load_n(&att_drops[w.arg % 64], __ATOMIC_RELAXED);
            res = 0;
            break;
        case OP_PROBE:
            st = DQ_OK;
            fr = dq_dsm_fault((uintptr_t)att_page((unsigned)w.arg), w.aux != 0,
                              &st);
            val = (uint64_t)fr;
            res = st;
            break;
        case OP_CLAIM:
            res = dq_dsm_claim_range((uintptr_t)att_page((unsigned)w.arg),
                                     ps);
            break;
        default:
            res = 0;
            break;
        }
        memset(&r, 0, sizeof(r));
        r.type = DQ_MSG_CALL_REPLY;
        r.dst = w.src;
        r.req_id = w.req_id;
        r.u.call.op = w.op;
        r.u.call.aux = res;
        r.u.call.arg = val;
        st = dq_xport_send(att_x, &r);
        if (st != DQ_OK) {
            dq_error("attach", "reply to op %u: %s", w.op, dq_status_str(st));
            return EXIT_PEER;
        }
        if (w.op == OP_QUIT) {
            return 0;
        }
    }
}

/*
 * Node 0: ask node 1 to run @op; its result in *@res, its value in *@val.
 * Returns 0 or an exit code (the transport failed).
 */
static int att_call(uint32_t op, uint32_t aux, uint64_t arg, uint8_t id,
                    uint32_t *res, uint64_t *val)
{
    static uint8_t buf[DQ_PROTO_HDR_SIZE + DQ_BODY_CALL + 64];
    DqMsg q, r;
    DqStatus st;

    memset(&q, 0, sizeof(q));
    q.type = DQ_MSG_CALL;
    q.dst = 1;
    q.u.call.op = op;
    q.u.call.aux = aux;
    q.u.call.arg = arg;
    q.tail = &id;
    q.tail_len = 1;
    st = dq_xport_request(att_x, &q, &r, buf, sizeof(buf),
                          DQ_XPORT_WAIT_FOREVER);
    if (st != DQ_OK) {
        dq_error("attach", "op %u: %s", op, dq_status_str(st));
        return st == DQ_ERR_XPORT_PEER_FAILED ? EXIT_PEER : EXIT_TIME;
    }
    if (r.type != DQ_MSG_CALL_REPLY || r.u.call.op != op) {
        dq_error("attach", "op %u: answered with %s op %u", op,
                 dq_msg_type_name(r.type), r.u.call.op);
        return EXIT_DATA;
    }
    *res = r.u.call.aux;
    if (val != NULL) {
        *val = r.u.call.arg;
    }
    return 0;
}

/* Fail the attach scenario at step @what unless @cond. */
#define ATT_EXPECT(cond, what, ...)                                       \
    do {                                                                  \
        if (!(cond)) {                                                    \
            dq_error("attach", what ": " __VA_ARGS__);                    \
            return EXIT_DATA;                                             \
        }                                                                 \
    } while (0)

#define ATT_CALL(op, aux, arg, id, res, val)                              \
    do {                                                                  \
        int rc_ = att_call(op, aux, arg, id, res, val);                   \
        if (rc_ != 0) {                                                   \
            return rc_;                                                   \
        }                                                                 \
    } while (0)

static void att_step(const char *what)
{
    printf("node %u: step %s\n", node_id, what);
    fflush(stdout);
}

/* A fresh read/write mapping over pages [@page, @page + @n), as mmap. */
static bool att_remap(unsigned page, unsigned n)
{
    void *want = (void *)att_page(page);

    return mmap(want, (size_t)n * ps, PROT_READ | PROT_WRITE,
                MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == want;
}

/* Node 0's side of the attach scenario.  0 or an exit code. */
static int att_drive(void)
{
    const int rw = PROT_READ | PROT_WRITE;
    DqDsmCounters c0, c1;
    DqStatus st = DQ_OK;
    uint8_t *big, *buf;
    size_t buflen;
    uint32_t res;
    uint64_t val;
    DqMsg q, r;

    /* Nothing is mapped yet: the initial bound is PROT_NONE. */
    ATT_EXPECT(dq_dsm_fault((uintptr_t)att_page(0), false, &st) ==
               DQ_FAULT_NOT_OURS, "bound", "page 0 is ours before a bound");
    ATT_EXPECT(dq_dsm_claim_range((uintptr_t)att_page(0) + 8, ps) ==
               DQ_ERR_RANGE, "claim", "unaligned range accepted");
    ATT_EXPECT(dq_dsm_claim_range((uintptr_t)att_page(0), 64 * ps) ==
               DQ_ERR_RANGE, "claim", "range beyond the region accepted");

    /* The "loader": a fresh mapping, an image written, then shared. */
    dq_dsm_counters(&c0);
    ATT_EXPECT(att_remap(0, 5), "load", "mmap failed");
    for (unsigned p = 0; p < 5; p++) {
        att_fill(p, 1);
    }
    ATT_EXPECT(dq_dsm_claim_range((uintptr_t)att_page(0), 5 * ps) == DQ_OK,
               "claim", "pages 0-4 refused");
    ATT_EXPECT(dq_dsm_set_bound((uintptr_t)att_page(0), 5 * ps, rw) ==
               DQ_OK, "bound", "pages 0-4 refused");
    ATT_EXPECT(att_check(0, 5, 1) == 0, "claim", "own image changed");
    att_fill(4, 1);             /* written in M: no fault either */
    dq_dsm_counters(&c1);
    ATT_EXPECT(c1.claims - c0.claims == 5 && c1.claims_busy == 0,
               "claim", "claims %" PRIu64 " busy %" PRIu64,
               c1.claims - c0.claims, c1.claims_busy);
    ATT_EXPECT(c1.read_faults + c1.write_faults + c1.upgrade_faults ==
               c0.read_faults + c0.write_faults + c0.upgrade_faults,
               "claim", "claimed pages faulted");
    ATT_EXPECT(dq_dsm_fault((uintptr_t)att_page(5), true, &st) ==
               DQ_FAULT_NOT_OURS, "bound", "unmapped page 5 is ours");
    att_step("loaded");

    /* Node 1's layout: 0-3 read/write, 4 read-only, 5 nothing. */
    ATT_CALL(OP_BOUND, rw, 0, 4, &res, NULL);
    ATT_EXPECT(res == DQ_OK, "bound", "node 1: %s", dq_status_str(res));
    ATT_CALL(OP_BOUND, PROT_READ, 4, 1, &res, NULL);
    ATT_EXPECT(res == DQ_OK, "bound", "node 1: %s", dq_status_str(res));
    ATT_CALL(OP_PROBE, 0, 5, 0, &res, &val);
    ATT_EXPECT(val == DQ_FAULT_NOT_OURS, "bound",
               "node 1: read of unmapped page 5 gave %" PRIu64, val);
    ATT_CALL(OP_PROBE, 1, 4, 0, &res, &val);
    ATT_EXPECT(val == DQ_FAULT_NOT_OURS, "bound",
               "node 1: write to read-only page 4 gave %" PRIu64, val);
    ATT_CALL(OP_PROBE, 0, 4, 0, &res, &val);
    ATT_EXPECT(val == DQ_FAULT_HANDLED && res == DQ_OK, "bound",
               "node 1: read of page 4 gave %" PRIu64 " (%s)", val,
               dq_status_str(res));
    att_step("bounds");

    /* Node 1 reads the image through faults. */
    ATT_CALL(OP_CHECK, 5, 0, 1, &res, NULL);
    ATT_EXPECT(res == 0, "read", "node 1 saw other data");
    att_step("read");

    /* Node 1 writes page 0 (it had S): the home's own S copy goes. */
    ATT_EXPECT(__atomic_load_n(&att_drops[0], __ATOMIC_RELAXED) == 0,
               "dropped", "page 0 reported before it went");
    ATT_CALL(OP_WRITE, 0, 0, 2, &res, NULL);
    ATT_EXPECT(__atomic_load_n(&att_drops[0], __ATOMIC_RELAXED) == 1,
               "dropped", "home's copy of page 0 reported %u times",
               __atomic_load_n(&att_drops[0], __ATOMIC_RELAXED));
    ATT_EXPECT(att_check(0, 1, 2) == 0, "write", "node 1's write not seen");
    att_step("written");

    /* A new mapping at page 0 on the home: it claims, node 1 drops. */
    ATT_EXPECT(att_remap(0, 1), "remap", "mmap failed");
    att_fill(0, 3);
    ATT_EXPECT(dq_dsm_claim_range((uintptr_t)att_page(0), ps) == DQ_OK,
               "reclaim", "page 0 refused");
    ATT_EXPECT(dq_dsm_set_bound((uintptr_t)att_page(0), ps, rw) == DQ_OK,
               "reclaim", "bound refused");
    ATT_CALL(OP_DROP, 1, 0, 0, &res, NULL);
    ATT_EXPECT(res == DQ_OK, "drop", "node 1: %s", dq_status_str(res));
    ATT_CALL(OP_CHECK, 1, 0, 3, &res, NULL);
    ATT_EXPECT(res == 0, "reclaim", "node 1 did not see the new page 0");
    ATT_CALL(OP_DROPS, 0, 0, 0, &res, &val);
    ATT_EXPECT(val == 0, "dropped",
               "node 1 reported page 0 %" PRIu64 " times (a drop_range)",
               val);
    att_step("reclaimed");

    /* The home writes page 1, which node 1 shares: node 1 is told. */
    att_fill(1, 4);
    ATT_CALL(OP_DROPS, 0, 1, 0, &res, &val);
    ATT_EXPECT(val == 1, "dropped", "node 1 reported page 1 %" PRIu64
               " times", val);
    ATT_CALL(OP_CHECK, 1, 1, 4, &res, NULL);
    ATT_EXPECT(res == 0, "write", "node 1 did not see the home's write");
    att_step("invalidated");

    /*
     * A drop the home did not ask for: node 1 writes page 2 (M) and
     * drops it.  Its data is gone, so the home refuses the page (never
     * serves its stale copy) until it claims the page again, with its
     * own contents: still image 1, which node 1 then reads.
     */
    ATT_CALL(OP_WRITE, 0, 2, 5, &res, NULL);
    ATT_CALL(OP_DROP, 1, 2, 0, &res, NULL);
    ATT_EXPECT(res == DQ_OK, "drop", "node 1: %s", dq_status_str(res));
    st = dq_dsm_acquire_range((uintptr_t)att_page(2), ps, false);
    ATT_EXPECT(st == DQ_ERR_DSM_PAGE_LOST, "lost",
               "home read of a page dropped in M: %s", dq_status_str(st));
    ATT_EXPECT(dq_dsm_claim_range((uintptr_t)att_page(2), ps) == DQ_OK,
               "lost", "claim refused");
    ATT_EXPECT(att_check(2, 1, 1) == 0, "lost", "claimed page changed");
    ATT_CALL(OP_CHECK, 1, 2, 1, &res, NULL);
    ATT_EXPECT(res == 0, "lost", "node 1 did not see the claimed page");
    att_step("lost");

    /* Only the home claims. */
    ATT_CALL(OP_CLAIM, 0, 0, 0, &res, NULL);
    ATT_EXPECT(res == DQ_ERR_USAGE, "claim", "node 1 claimed: %s",
               dq_status_str(res));

    /* 200 KB each way, request forever, echo from the I/O thread. */
    buflen = dq_xport_max_msg_size(att_x);
    big = malloc(ATT_BIG);
    buf = malloc(buflen);
    if (big == NULL || buf == NULL) {
        free(big);
        free(buf);
        return 1;
    }
    for (size_t i = 0; i < ATT_BIG; i++) {
        big[i] = (uint8_t)(i * 13 + (i >> 10));
    }
    memset(&q, 0, sizeof(q));
    q.type = DQ_MSG_CALL;
    q.dst = 1;
    q.u.call.op = OP_ECHO;
    q.tail = big;
    q.tail_len = ATT_BIG;
    st = dq_xport_request(att_x, &q, &r, buf, buflen, DQ_XPORT_WAIT_FOREVER);
    res = st == DQ_OK && r.type == DQ_MSG_CALL_REPLY &&
          r.u.call.arg == ATT_BIG && r.tail_len == ATT_BIG &&
          memcmp(r.tail, big, ATT_BIG) == 0;
    free(big);
    free(buf);
    ATT_EXPECT(res, "echo", "200 KB CALL: %s", dq_status_str(st));
    att_step("echoed");

    ATT_CALL(OP_QUIT, 0, 0, 0, &res, NULL);
    ATT_EXPECT(att_odd == 0, "messages", "%u odd messages", att_odd);
    return 0;
}

/*
 * The attach scenario on either node: start our own transport, attach
 * before waiting for the cluster, then drive (node 0) or serve (node 1).
 */
static int run_attach(DqDsmConfig *cfg)
{
    DqXportConfig xc = cfg->xport;
    char err[DQ_ERRBUF_SIZE];
    DqDsmCounters c;
    uint32_t code = 0;
    DqStatus st;
    int rc;

    xc.page_size = (uint32_t)ps;
    xc.max_payload = ATT_MAX_PAYLOAD;
    xc.ops.on_message = att_on_message;
    xc.ops.on_peer_failed = att_on_peer_failed;
    xc.ops.on_shutdown = att_on_shutdown;
    xc.opaque = NULL;
    st = dq_xport_start(&xc, &att_x, err, sizeof(err));
    if (st != DQ_OK) {
        dq_error("cannot start the transport", "%s", err);
        return EXIT_START;
    }
    cfg->initial_bound = PROT_NONE;
    cfg->on_page_dropped = att_on_page_dropped;
    /* Only node_id and node_count count: these must be ignored. */
    cfg->xport.master_endpoint = "tcp://ignored:1";
    cfg->xport.ops.on_message = att_on_message;
    st = dq_dsm_attach(cfg, att_x, err, sizeof(err));
    if (st != DQ_OK) {
        dq_error("cannot attach the DSM engine", "%s", err);
        dq_xport_free(att_x);
        return EXIT_START;
    }
    printf("node %u: endpoint %s\n", node_id, dq_xport_endpoint(att_x));
    fflush(stdout);
    st = dq_xport_wait_ready(att_x, err, sizeof(err));
    if (st != DQ_OK) {
        dq_error(node_id == 0 ? "cluster start-up failed" :
                 "cannot join the cluster", "%s", err);
        if (node_id == 0) {
            dq_xport_shutdown(att_x, EXIT_START);
        }
        dq_dsm_stop();
        dq_xport_free(att_x);
        return EXIT_START;
    }
    printf("node %u: ready\n", node_id);
    fflush(stdout);

    rc = node_id == 0 ? att_drive() : att_serve();
    if (rc == 0) {
        printf("node %u: done attach\n", node_id);
        if (node_id == 0) {
            printf("node 0: verified attach\n");
        }
        fflush(stdout);
    }
    if (node_id == 0) {
        st = dq_xport_shutdown(att_x, (uint32_t)rc);
        if (st != DQ_OK) {
            dq_error("shutdown", "%s", dq_status_str(st));
        }
        code = (uint32_t)rc;
    } else if (rc == 0) {
        st = dq_xport_wait_shutdown(att_x, WAIT_S * 1000, &code, err,
                                    sizeof(err));
        if (st != DQ_OK) {
            dq_error("cluster run failed", "%s", err);
            rc = EXIT_PEER;
        }
    }
    dq_dsm_counters(&c);
    dq_dsm_counters_print(stdout, node_id, &c);
    printf("node %u: shutdown %u faults %" PRIu64 "/%" PRIu64 "/%" PRIu64
           " served %" PRIu64 " errors %" PRIu64 "\n", node_id, code,
           c.read_faults, c.write_faults, c.upgrade_faults,
           c.home_requests, c.proto_errors);
    fflush(stdout);
    dq_dsm_stop();
    /* Ours, not the engine's: still alive after dq_dsm_stop(). */
    if (dq_dsm_handle_message(&(DqMsg){ .type = DQ_MSG_INVAL }) ||
        dq_xport_endpoint(att_x)[0] == '\0') {
        dq_error("attach", "engine still attached after dq_dsm_stop");
        rc = rc != 0 ? rc : EXIT_DATA;
    }
    dq_xport_free(att_x);
    return rc != 0 ? rc : (int)code;
}

/* ---- cost: attaching to a 32-bit guest's space ------------------------- */

static long rss_kb(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, res = 0;

    if (f != NULL) {
        if (fscanf(f, "%ld %ld", &size, &res) != 2) {
            res = 0;
        }
        fclose(f);
    }
    return res * (long)(ps / 1024);
}

/*
 * Attach node 0 of a 1-node cluster (MASTER homes) to @len bytes of
 * reserved space, as QEMU's guest space is, and report the time and the
 * memory it took; then what claiming and bounding 16 MB of it costs.
 */
static int run_cost(DqDsmConfig *cfg, size_t len)
{
    const size_t claim = 16u << 20;
    DqXportConfig xc = cfg->xport;
    char err[DQ_ERRBUF_SIZE];
    double t0, t_attach, t_claim;
    long rss0, rss1;
    DqStatus st;
    void *p;

    p = mmap(cfg->base, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS |
             MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
    if (p != cfg->base) {
        dq_error("cost", "cannot reserve %zu bytes", len);
        return EXIT_START;
    }
    cfg->len = len;
    xc.page_size = (uint32_t)ps;
    xc.node_count = 1;
    st = dq_xport_start(&xc, &att_x, err, sizeof(err));
    if (st != DQ_OK) {
        dq_error("cannot start the transport", "%s", err);
        return EXIT_START;
    }
    cfg->xport.node_count = 1;
    cfg->initial_bound = PROT_NONE;
    rss0 = rss_kb();
    t0 = now_s();
    st = dq_dsm_attach(cfg, att_x, err, sizeof(err));
    t_attach = now_s() - t0;
    rss1 = rss_kb();
    if (st != DQ_OK) {
        dq_error("cannot attach the DSM engine", "%s", err);
        dq_xport_free(att_x);
        return EXIT_START;
    }
    t0 = now_s();
    if (mmap(cfg->base, claim, PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != cfg->base ||
        dq_dsm_claim_range((uintptr_t)cfg->base, claim) != DQ_OK ||
        dq_dsm_set_bound((uintptr_t)cfg->base, claim,
                         PROT_READ | PROT_WRITE) != DQ_OK) {
        dq_error("cost", "cannot claim %zu bytes", claim);
        st = DQ_ERR_RANGE;
    }
    t_claim = now_s() - t0;
    printf("node 0: cost attach %.1f ms rss %ld kB pages %zu "
           "claim+bound %.2f us/page\n", t_attach * 1e3, rss1 - rss0,
           len / ps, t_claim * 1e6 / (double)(claim / ps));
    fflush(stdout);
    dq_dsm_stop();
    dq_xport_free(att_x);
    return st == DQ_OK ? 0 : EXIT_DATA;
}

/* ---- the generic scenarios over the program's own transport ---------- */

/* --attach: the transport main() made and attached the engine to. */
static DqXport *own_x;

static void fwd_on_message(void *opaque, const DqMsg *msg)
{
    (void)opaque;
    /* Only the engine's messages travel in these scenarios. */
    dq_dsm_handle_message(msg);
}

static void fwd_on_peer_failed(void *opaque, unsigned node, const char *why)
{
    dq_dsm_handle_peer_failed(node, why);
    on_peer_failed(opaque, node, why);
}

/*
 * Start the engine: its own transport, or (@attach) one made here with
 * callbacks that forward to it, as QEMU does.  The lease goes in through
 * the configuration, or after attaching (QEMU's --atomic-lease).
 */
static DqStatus engine_start(DqDsmConfig *cfg, bool attach,
                             uint64_t lease_ns, char *err, size_t errlen)
{
    DqXportConfig xc = cfg->xport;
    DqStatus st;

    cfg->xport.ops.on_peer_failed = on_peer_failed;
    if (!attach) {
        cfg->lease_ns = lease_ns;
        return dq_dsm_start(cfg, err, errlen);
    }
    xc.page_size = (uint32_t)ps;
    xc.ops.on_message = fwd_on_message;
    xc.ops.on_peer_failed = fwd_on_peer_failed;
    xc.ops.on_shutdown = NULL;
    xc.opaque = NULL;
    st = dq_xport_start(&xc, &own_x, err, errlen);
    if (st != DQ_OK) {
        return st;
    }
    cfg->initial_bound = PROT_READ | PROT_WRITE;
    st = dq_dsm_attach(cfg, own_x, err, errlen);
    if (st != DQ_OK) {
        dq_xport_free(own_x);
        own_x = NULL;
        return st;
    }
    dq_dsm_set_lease_ns(lease_ns);
    return DQ_OK;
}

/* The engine stops; a transport made here goes after it. */
static void engine_stop(void)
{
    dq_dsm_stop();
    dq_xport_free(own_x);
    own_x = NULL;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: dsm-test --node K --nodes N [--master EP]\n"
            "       --scenario prodcons|false|stress|atomic|lost (3 nodes)|\n"
            "                  attach (2 nodes)|cost (1 node)\n"
            "       [--home master|hash] [--attach]\n"
            "       [--pages P] [--iters I] [--seed S] [--fail-ms MS]\n"
            "       [--threads T] [--lease-us U] [--pause-us P] (atomic)\n"
            "       [--len-mb M] (cost)\n");
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "node", required_argument, NULL, 'k' },
        { "nodes", required_argument, NULL, 'n' },
        { "master", required_argument, NULL, 'm' },
        { "scenario", required_argument, NULL, 's' },
        { "home", required_argument, NULL, 'h' },
        { "pages", required_argument, NULL, 'p' },
        { "iters", required_argument, NULL, 'i' },
        { "seed", required_argument, NULL, 'S' },
        { "fail-ms", required_argument, NULL, 'f' },
        { "len-mb", required_argument, NULL, 'L' },
        { "threads", required_argument, NULL, 'T' },
        { "lease-us", required_argument, NULL, 'l' },
        { "attach", no_argument, NULL, 'A' },
        { "pause-us", required_argument, NULL, 'P' },
        { NULL, 0, NULL, 0 },
    };
    DqDsmConfig cfg;
    DqDsmCounters c;
    struct sigaction sa;
    char err[DQ_ERRBUF_SIZE];
    const char *scenario = NULL;
    unsigned pages = 8, iters = 1000, threads = 4, n;
    size_t len_mb = 4096;
    uint64_t seed = 1, lease_ns = 0;
    long pause_ns = 0;
    bool attach = false;
    uint32_t code = 0;
    size_t len;
    DqStatus st;
    void *p;
    int opt, rc = 0;
    bool have_node = false;

    memset(&cfg, 0, sizeof(cfg));
    cfg.xport.master_endpoint = "tcp://127.0.0.1:*";
    cfg.xport.cluster_id = 0xd5a;
    cfg.home_policy = DQ_HOME_MASTER;
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (opt) {
        case 'k': node_id = (unsigned)atoi(optarg); have_node = true; break;
        case 'n': nodes = (unsigned)atoi(optarg); break;
        case 'm': cfg.xport.master_endpoint = optarg; break;
        case 's': scenario = optarg; break;
        case 'h':
            if (dq_home_policy_parse(optarg, &cfg.home_policy) != DQ_OK) {
                usage();
                return 1;
            }
            break;
        case 'p': pages = (unsigned)atoi(optarg); break;
        case 'i': iters = (unsigned)atoi(optarg); break;
        case 'S': seed = strtoull(optarg, NULL, 0); break;
        case 'f': cfg.xport.failure_timeout_ms = (unsigned)atoi(optarg);
                  break;
        case 'L': len_mb = strtoull(optarg, NULL, 0); break;
        case 'T': threads = (unsigned)atoi(optarg); break;
        case 'l': lease_ns = strtoull(optarg, NULL, 0) * 1000; break;
        case 'A': attach = true; break;
        case 'P': pause_ns = atol(optarg) % 1000000 * 1000; break;
        default: usage(); return 1;
        }
    }
    if (!have_node || nodes < 1 || nodes > DQ_MAX_NODES || optind != argc ||
        scenario == NULL || pages == 0 || threads == 0 ||
        (strcmp(scenario, "prodcons") && strcmp(scenario, "false") &&
         strcmp(scenario, "stress") && strcmp(scenario, "lost") &&
         strcmp(scenario, "attach") && strcmp(scenario, "cost") &&
         strcmp(scenario, "atomic")) ||
        (attach && (strcmp(scenario, "attach") == 0 ||
                    strcmp(scenario, "cost") == 0)) ||
        (strcmp(scenario, "lost") == 0 && (nodes != 3 || pages < 2)) ||
        (strcmp(scenario, "attach") == 0 && nodes != 2) ||
        (strcmp(scenario, "cost") == 0 && (nodes != 1 || len_mb == 0)) ||
        (strcmp(scenario, "cost") != 0 && nodes < 2)) {
        usage();
        return 1;
    }

    ps = (size_t)sysconf(_SC_PAGESIZE);
    cfg.xport.node_id = node_id;
    cfg.xport.node_count = nodes;
    if (strcmp(scenario, "cost") == 0) {
        cfg.base = (void *)(uintptr_t)REGION_ADDR;
        return run_cost(&cfg, len_mb << 20);
    }
    if (strcmp(scenario, "attach") == 0) {
        pages = ATT_PAGES - 2;  /* the region below is pages + 2 */
    }
    len = (2 + (size_t)pages) * ps;
    p = mmap((void *)(uintptr_t)REGION_ADDR, len, PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (p != (void *)(uintptr_t)REGION_ADDR) {
        dq_error("cannot map the region", "at %#llx", REGION_ADDR);
        return EXIT_START;
    }
    region = p;
    ctl = (volatile Control *)region;

    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = segv;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, NULL);

    cfg.base = p;
    cfg.len = len;
    if (strcmp(scenario, "attach") == 0) {
        return run_attach(&cfg);
    }
    st = engine_start(&cfg, attach, lease_ns, err, sizeof(err));
    if (st != DQ_OK) {
        dq_error("cannot start the DSM engine", "%s", err);
        return EXIT_START;
    }
    printf("node %u: endpoint %s\n", node_id,
           dq_xport_endpoint(dq_dsm_xport()));
    fflush(stdout);
    st = dq_dsm_wait_ready(err, sizeof(err));
    if (st != DQ_OK) {
        dq_error(node_id == 0 ? "cluster start-up failed" :
                 "cannot join the cluster", "%s", err);
        if (node_id == 0) {
            dq_xport_shutdown(dq_dsm_xport(), EXIT_START);
        }
        engine_stop();
        return EXIT_START;
    }
    printf("node %u: ready\n", node_id);
    fflush(stdout);

    if (strcmp(scenario, "prodcons") == 0) {
        rc = run_prodcons(pages);
    } else if (strcmp(scenario, "false") == 0) {
        rc = run_false(iters);
    } else if (strcmp(scenario, "lost") == 0) {
        rc = run_lost();
    } else if (strcmp(scenario, "atomic") == 0) {
        rc = run_atomic(threads, iters, pause_ns);
    } else {
        rc = run_stress(pages, iters, seed, true);
    }
    if (rc != 0) {
        if (rc == EXIT_PEER) {
            linger_after_failure();
        }
        engine_stop();
        return rc;
    }
    ctl->done[node_id] = 1;
    printf("node %u: done %s\n", node_id, scenario);
    fflush(stdout);

    if (node_id != 0) {
        st = dq_xport_wait_shutdown(dq_dsm_xport(), WAIT_S * 1000, &code,
                                    err, sizeof(err));
        if (st != DQ_OK) {
            dq_error("cluster run failed", "%s", err);
            engine_stop();
            return EXIT_PEER;
        }
        dq_dsm_counters(&c);
        dq_dsm_counters_print(stdout, node_id, &c);
        printf("node %u: shutdown %u faults %" PRIu64 "/%" PRIu64 "/%" PRIu64
               " served %" PRIu64 " errors %" PRIu64 "\n", node_id, code,
               c.read_faults, c.write_faults, c.upgrade_faults,
               c.home_requests, c.proto_errors);
        fflush(stdout);
        engine_stop();
        return (int)code;
    }

    for (n = 0; n < nodes && rc == 0; n++) {
        rc = WAIT_FOR(ctl->done[n] == 1);
        if (rc != 0) {
            dq_error("cluster run failed", "node %u never finished", n);
        }
    }
    if (rc == 0) {
        rc = verify(scenario, pages, iters, threads);
    }
    if (rc == 0) {
        printf("node 0: verified %s\n", scenario);
        fflush(stdout);
    }
    st = dq_xport_shutdown(dq_dsm_xport(), (uint32_t)rc);
    if (st != DQ_OK) {
        dq_error("shutdown", "%s", dq_status_str(st));
    }
    dq_dsm_counters(&c);
    dq_dsm_counters_print(stdout, 0, &c);
    printf("node 0: shutdown %d faults %" PRIu64 "/%" PRIu64 "/%" PRIu64
           " served %" PRIu64 " errors %" PRIu64 "\n", rc, c.read_faults,
           c.write_faults, c.upgrade_faults, c.home_requests,
           c.proto_errors);
    fflush(stdout);
    engine_stop();
    return rc;
}
