/*
 * dsm-test.c - one node of a host-only DSM cluster over the coherence engine.
 *
 * Test that K processes sharing one region at the same address, with a
 * SIGSEGV handler calling dq_dsm_fault(), see coherent memory: a producer's
 * data behind a flag (prodcons), one page written at disjoint slots by all
 * (false), random reads and writes with per-node sequence numbers checked
 * exactly (stress), that a killed peer ends the run with a report, never
 * a hang (the driver kills a node during stress), and that the pages it
 * held are either intact elsewhere or refused as lost (lost).
 * tests/dsm/test_dsm.py drives it.
 *
 * stdout: "node K: endpoint E", "node K: ready", "node K: running",
 * "node K: done SCENARIO", "node K: verified SCENARIO" (master),
 * "node K: peer-failed J at T", "dqemu: node K: dsm: ..." (the engine's
 * counters, dq_dsm_counters_print), "node K: shutdown C".
 * stderr: "dqemu: node K: <what failed>: <why>".
 * Exit: 0 done, 1 usage, 2 start-up failed, 3 a peer failed, 4 bad data,
 * 5 timeout.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <getopt.h>
#include <inttypes.h>
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
} Control;

static unsigned node_id, nodes;
static size_t ps;
static volatile uint8_t *region;
static volatile Control *ctl;
static volatile int peer_failed;

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
    switch (dq_dsm_fault((uintptr_t)si->si_addr, is_write, &st)) {
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

/* Master, once every node is done: check the scenario's final state. */
static int verify(const char *scenario, unsigned pages, unsigned iters)
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

static void usage(void)
{
    fprintf(stderr,
            "usage: dsm-test --node K --nodes N [--master EP]\n"
            "       --scenario prodcons|false|stress|lost (3 nodes)\n"
            "       [--home master|hash]\n"
            "       [--pages P] [--iters I] [--seed S] [--fail-ms MS]\n");
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
        { NULL, 0, NULL, 0 },
    };
    DqDsmConfig cfg;
    DqDsmCounters c;
    struct sigaction sa;
    char err[DQ_ERRBUF_SIZE];
    const char *scenario = NULL;
    unsigned pages = 8, iters = 1000, n;
    uint64_t seed = 1;
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
        default: usage(); return 1;
        }
    }
    if (!have_node || nodes < 2 || nodes > DQ_MAX_NODES || optind != argc ||
        scenario == NULL || pages == 0 ||
        (strcmp(scenario, "prodcons") && strcmp(scenario, "false") &&
         strcmp(scenario, "stress") && strcmp(scenario, "lost")) ||
        (strcmp(scenario, "lost") == 0 && (nodes != 3 || pages < 2))) {
        usage();
        return 1;
    }

    ps = (size_t)sysconf(_SC_PAGESIZE);
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

    cfg.xport.node_id = node_id;
    cfg.xport.node_count = nodes;
    cfg.xport.ops.on_peer_failed = on_peer_failed;
    cfg.base = p;
    cfg.len = len;
    st = dq_dsm_start(&cfg, err, sizeof(err));
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
        dq_dsm_stop();
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
    } else {
        rc = run_stress(pages, iters, seed, true);
    }
    if (rc != 0) {
        if (rc == EXIT_PEER) {
            linger_after_failure();
        }
        dq_dsm_stop();
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
            dq_dsm_stop();
            return EXIT_PEER;
        }
        dq_dsm_counters(&c);
        dq_dsm_counters_print(stdout, node_id, &c);
        printf("node %u: shutdown %u faults %" PRIu64 "/%" PRIu64 "/%" PRIu64
               " served %" PRIu64 " errors %" PRIu64 "\n", node_id, code,
               c.read_faults, c.write_faults, c.upgrade_faults,
               c.home_requests, c.proto_errors);
        fflush(stdout);
        dq_dsm_stop();
        return (int)code;
    }

    for (n = 0; n < nodes && rc == 0; n++) {
        rc = WAIT_FOR(ctl->done[n] == 1);
        if (rc != 0) {
            dq_error("cluster run failed", "node %u never finished", n);
        }
    }
    if (rc == 0) {
        rc = verify(scenario, pages, iters);
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
    dq_dsm_stop();
    return rc;
}
