/*
 * dsm-bench.c - what one DSM page fault costs, beside what the wire costs.
 *
 * Threads are only worth spreading over nodes if a fault on one node is
 * served by another in about a network round trip: the project's goal is
 * a remote read fault at <= 100 us median and <= 4x a raw TCP round trip
 * measured in the same run.  Between 2 node processes on 127.0.0.1 (node
 * 0 homes every page) this times remote read, write and upgrade faults
 * and a home write that must invalidate the other node's copy, each as
 * one access to one fresh page, next to the raw TCP and ZeroMQ REQ/REP
 * baselines (baseline.c).  The engine's counters show that each access
 * was the fault it claims to be.  Prints, never fails on a timing; exits
 * 1 when a node or a baseline failed, 2 on a usage error.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "baseline.h"
#include "dsm.h"

#if !defined(__x86_64__)
/* A write fault taken for a read would be granted S and fault forever. */
#error "dsm-bench reads the fault's write bit from x86-64's REG_ERR"
#endif

#define REGION_ADDR     0x3d5b00000000ull
#define EXIT_NODE       3
#define MAX_ITERS       200000
/* Leaving the cluster: the master waits at most the failure timeout. */
#define LEAVE_MS        30000

/* ---- what is measured ------------------------------------------------- */

/*
 * The timed rows, each one access to each of warmup + iters pages of its
 * own block of the region (so every access is the first on its page).
 * read-dirty reads the pages home-local wrote.  SIGNAL uses a private
 * mapping outside the DSM instead: the floor under every fault.
 */
typedef enum Phase {
    PH_READ,
    PH_READ_DIRTY,
    PH_WRITE,
    PH_UPGRADE,
    PH_INVAL,
    PH_HOME_LOCAL,
    PH_SIGNAL,
    PH__COUNT
} Phase;

/* The engine counter one access must add to on the measuring node. */
typedef enum Want { WANT_NONE, WANT_READ, WANT_WRITE, WANT_UPGRADE } Want;

typedef struct PhaseInfo {
    const char *name;
    unsigned node;              /* makes the accesses and keeps the clock */
    int block;                  /* block of the region; -1: outside it */
    bool write;
    Want want;
    const char *what;
} PhaseInfo;

#define BLOCKS 5

static const PhaseInfo phase_info[PH__COUNT] = {
    [PH_READ] = { "read", 1, 0, false, WANT_READ,
        "worker reads a page nobody wrote (home copy of zeros): "
        "READ_REQ, GRANT_DATA S" },
    [PH_READ_DIRTY] = { "read-dirty", 1, 1, false, WANT_READ,
        "worker reads a page the home last wrote (M on node 0): "
        "the home recalls its own copy, then GRANT_DATA S" },
    [PH_WRITE] = { "write", 1, 2, true, WANT_WRITE,
        "worker writes a page nobody holds: WRITE_REQ, GRANT_DATA M" },
    [PH_UPGRADE] = { "upgrade", 1, 3, true, WANT_UPGRADE,
        "worker writes a page it holds S: UPGRADE_REQ, GRANT (no data)" },
    [PH_INVAL] = { "inval", 0, 4, true, WANT_WRITE,
        "home writes a page the worker holds S: INVAL, INVAL_ACK, "
        "then its own grant (timed on node 0)" },
    [PH_HOME_LOCAL] = { "home-local", 0, 1, true, WANT_WRITE,
        "home writes a page nobody holds: its own directory grants "
        "it, no message" },
    [PH_SIGNAL] = { "sigsegv", 1, -1, false, WANT_NONE,
        "a fault outside the DSM whose handler only calls mprotect: "
        "the kernel's floor under every row above" },
};

/* DqDsmCounters as an array (DQ_DSM_COUNTER_LIST), for deltas and print. */
typedef enum CounterId {
#define COUNTER_ENUM(name, unit, help) C_##name,
    DQ_DSM_COUNTER_LIST(COUNTER_ENUM)
#undef COUNTER_ENUM
    C__COUNT
} CounterId;

static const char *const counter_name[C__COUNT] = {
#define COUNTER_NAME(name, unit, help) [C_##name] = #name,
    DQ_DSM_COUNTER_LIST(COUNTER_NAME)
#undef COUNTER_NAME
};

static const char *const counter_unit[C__COUNT] = {
#define COUNTER_UNIT(name, unit, help) [C_##name] = unit,
    DQ_DSM_COUNTER_LIST(COUNTER_UNIT)
#undef COUNTER_UNIT
};

static void counters_get(const DqDsmCounters *c, uint64_t out[C__COUNT])
{
#define COUNTER_GET(name, unit, help) out[C_##name] = c->name;
    DQ_DSM_COUNTER_LIST(COUNTER_GET)
#undef COUNTER_GET
}

/* What one node sends the parent: fixed size, under PIPE_BUF. */
typedef struct PhaseReport {
    double median_us, p99_us;
    uint64_t segv;              /* SIGSEGV handler calls in the phase */
    uint64_t bad;               /* reads that saw the wrong byte */
    uint64_t csw;               /* context switches of this node's threads */
    uint64_t delta[C__COUNT];   /* this node's counters across the phase */
} PhaseReport;

typedef struct NodeReport {
    PhaseReport ph[PH__COUNT];
    uint64_t total[C__COUNT];   /* this node's counters at the end */
} NodeReport;

_Static_assert(sizeof(NodeReport) <= PIPE_BUF, "one atomic pipe write");

static unsigned iters = 3000, warmup = 200;

static uint64_t ms_now(void)
{
    return bench_now_ns() / 1000000u;
}

/* Pages per block, and per row. */
static size_t per_block(void)
{
    return (size_t)warmup + iters;
}

/* ---- one node process ------------------------------------------------- */

static unsigned node_id;
static size_t ps;
static volatile uint8_t *region;
static volatile uint8_t *calib;     /* PH_SIGNAL's private pages */
static size_t calib_len;
static uint64_t segv_calls;
static bool peer_lost;              /* the transport gave up on the other */

static void node_error(const char *what, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void node_error(const char *what, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "dsm-bench: node %u: %s: ", node_id, what);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* Context: signal handler; async-signal-safe. */
static void on_segv(int sig, siginfo_t *si, void *uc)
{
    uintptr_t a = (uintptr_t)si->si_addr;
    bool is_write =
        (((ucontext_t *)uc)->uc_mcontext.gregs[REG_ERR] & 2) != 0;
    char head[] = "dsm-bench: node ?: page fault failed: ";
    const char *why;
    DqStatus st = DQ_OK;
    int saved_errno;

    __atomic_fetch_add(&segv_calls, 1, __ATOMIC_RELAXED);
    if (a - (uintptr_t)calib < calib_len) {
        /* The sigsegv row: what any fault costs before the DSM acts. */
        saved_errno = errno;
        mprotect((void *)(a & ~(uintptr_t)(ps - 1)), ps,
                 PROT_READ | PROT_WRITE);
        errno = saved_errno;
        return;
    }
    switch (dq_dsm_fault(a, is_write, &st)) {
    case DQ_FAULT_HANDLED:
        return;
    case DQ_FAULT_ERROR:
        why = dq_status_str(st);
        head[16] = (char)('0' + node_id);
        if (write(2, head, sizeof(head) - 1) < 0 ||
            write(2, why, strlen(why)) < 0 || write(2, "\n", 1) < 0) {
            /* nothing more to say */
        }
        _exit(EXIT_NODE);
    default:
        /* Not ours: a real crash, let it kill us with its signal. */
        signal(sig, SIG_DFL);
        return;
    }
}

static void on_peer_failed(void *opaque, unsigned node, const char *why)
{
    (void)opaque;
    node_error("peer failed", "lost contact with node %u (%s)", node, why);
    __atomic_store_n(&peer_lost, true, __ATOMIC_RELEASE);
}

static volatile uint8_t *phase_page(Phase p, size_t i)
{
    const PhaseInfo *pi = &phase_info[p];

    if (pi->block < 0) {
        return calib + i * ps;
    }
    return region + ((size_t)pi->block * per_block() + i) * ps;
}

/* The byte home-local stores at page i, which read-dirty must see. */
static uint8_t pattern(size_t i)
{
    return (uint8_t)(0x80 | (i & 0x7f));
}

/*
 * One access to each page of @p's block, each timed on its own: the
 * first access to a page is exactly one fault.  The rows measured on
 * this node run one after another with the other node idle, so they
 * never share the 2 cores with each other.
 */
static void run_phase(Phase p, NodeReport *rep, uint64_t *ns)
{
    const PhaseInfo *pi = &phase_info[p];
    PhaseReport *r = &rep->ph[p];
    uint64_t c0[C__COUNT], c1[C__COUNT], segv0, t0, t1;
    struct rusage ru0, ru1;
    DqDsmCounters c;
    BenchResult br = { .name = pi->name };
    volatile uint8_t *pg;
    uint8_t v, want;
    size_t i;
    unsigned k;

    dq_dsm_counters(&c);
    counters_get(&c, c0);
    segv0 = __atomic_load_n(&segv_calls, __ATOMIC_RELAXED);
    /* Thread hand-offs are where a fault's time goes on a small host. */
    getrusage(RUSAGE_SELF, &ru0);
    for (i = 0; i < per_block(); i++) {
        pg = phase_page(p, i);
        want = p == PH_READ_DIRTY ? pattern(i) : 0;
        v = want;
        t0 = bench_now_ns();
        if (pi->write) {
            *pg = pattern(i);
        } else {
            v = *pg;
        }
        t1 = bench_now_ns();
        if (v != want) {
            r->bad++;
        }
        if (i >= warmup) {
            ns[i - warmup] = t1 - t0;
        }
    }
    getrusage(RUSAGE_SELF, &ru1);
    r->segv = __atomic_load_n(&segv_calls, __ATOMIC_RELAXED) - segv0;
    r->csw = (uint64_t)(ru1.ru_nvcsw + ru1.ru_nivcsw -
                        ru0.ru_nvcsw - ru0.ru_nivcsw);
    dq_dsm_counters(&c);
    counters_get(&c, c1);
    for (k = 0; k < C__COUNT; k++) {
        r->delta[k] = c1[k] - c0[k];
    }
    bench_summarize(&br, ns, iters);
    r->median_us = br.median_us;
    r->p99_us = br.p99_us;
}

/* Untimed: get S copies of @p's pages (one read fault each). */
static void read_block(Phase p)
{
    uint8_t sum = 0;
    size_t i;

    for (i = 0; i < per_block(); i++) {
        sum += *phase_page(p, i);
    }
    (void)sum;
}

/*
 * Turns: the two nodes never run a phase at once; each hands over
 * through a socketpair with one byte.  Never timed.
 */
#define TURN_HOLDS      'h'     /* worker holds the inval block S */
#define TURN_WROTE      'w'     /* master timed its rows */
#define TURN_DONE       'd'     /* worker timed its rows */

/* Longest a node waits for the other's rows: generous, but bounded. */
static unsigned turn_wait_ms(void)
{
    return 60000 + (unsigned)(per_block() * 4 * 5);
}

static int turn_give(int fd, char t)
{
    if (bench_write_all(fd, &t, 1) != 0) {
        node_error("cannot hand over", "the other node is gone (%s)",
                   strerror(errno));
        return -1;
    }
    return 0;
}

/*
 * Wait for the other node's byte.  In short slices, so a peer that is
 * alive but stuck (stopped, say) ends the wait once the transport has
 * declared it failed, not at the end of the whole bound.
 */
static int turn_take(int fd, char t, const char *what)
{
    uint64_t deadline = ms_now() + turn_wait_ms();
    char c;

    while (bench_read_within(fd, &c, 1, 200) != 0) {
        if (errno != ETIMEDOUT) {
            node_error("no turn", "waiting for %s: the other node is gone",
                       what);
            return -1;
        }
        if (__atomic_load_n(&peer_lost, __ATOMIC_ACQUIRE) ||
            ms_now() > deadline) {
            node_error("no turn", "waiting for %s: %s", what,
                       peer_lost ? "the other node failed" : "timed out");
            return -1;
        }
    }
    if (c != t) {
        node_error("no turn", "waiting for %s: got '%c'", what, c);
        return -1;
    }
    return 0;
}

static int worker_rows(int turn_fd, NodeReport *rep, uint64_t *ns)
{
    run_phase(PH_SIGNAL, rep, ns);
    run_phase(PH_READ, rep, ns);
    run_phase(PH_WRITE, rep, ns);
    read_block(PH_UPGRADE);
    run_phase(PH_UPGRADE, rep, ns);
    read_block(PH_INVAL);
    if (turn_give(turn_fd, TURN_HOLDS) != 0 ||
        turn_take(turn_fd, TURN_WROTE, "the home's writes") != 0) {
        return -1;
    }
    run_phase(PH_READ_DIRTY, rep, ns);
    return turn_give(turn_fd, TURN_DONE);
}

static int master_rows(int turn_fd, NodeReport *rep, uint64_t *ns)
{
    if (turn_take(turn_fd, TURN_HOLDS, "the worker's rows") != 0) {
        return -1;
    }
    run_phase(PH_INVAL, rep, ns);
    run_phase(PH_HOME_LOCAL, rep, ns);
    if (turn_give(turn_fd, TURN_WROTE) != 0) {
        return -1;
    }
    return turn_take(turn_fd, TURN_DONE, "the worker's read-dirty row");
}

/*
 * Node @id of the 2-node cluster: map the region, start the engine,
 * time this node's rows and send them to the parent through @report_fd.
 * The master publishes its endpoint through @ep_fd first.  Returns the
 * exit code.
 */
static int node_main(unsigned id, const char *master_ep, int ep_fd,
                     int turn_fd, int report_fd)
{
    char err[DQ_ERRBUF_SIZE], ep[DQ_XPORT_ENDPOINT_MAX] = { 0 };
    size_t len;
    DqDsmConfig cfg;
    DqDsmCounters c;
    NodeReport *rep;
    struct sigaction sa;
    uint64_t *ns;
    uint32_t code;
    DqStatus st;
    void *p;
    int rc;

    node_id = id;
    ps = (size_t)sysconf(_SC_PAGESIZE);
    len = BLOCKS * per_block() * ps;
    rep = calloc(1, sizeof(*rep));
    ns = malloc(sizeof(*ns) * iters);
    if (rep == NULL || ns == NULL) {
        node_error("out of memory", "for %u samples", iters);
        return EXIT_NODE;
    }
    p = mmap((void *)(uintptr_t)REGION_ADDR, len, PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (p != (void *)(uintptr_t)REGION_ADDR) {
        node_error("cannot map the region", "%zu bytes at %#llx: %s", len,
                   REGION_ADDR, strerror(errno));
        return EXIT_NODE;
    }
    region = p;
    calib_len = per_block() * ps;
    p = mmap(NULL, calib_len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        node_error("cannot map the sigsegv pages", "%s", strerror(errno));
        return EXIT_NODE;
    }
    calib = p;

    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, NULL);

    memset(&cfg, 0, sizeof(cfg));
    cfg.xport.node_id = id;
    cfg.xport.node_count = 2;
    cfg.xport.master_endpoint = master_ep;
    cfg.xport.cluster_id = 0xd5be;
    cfg.xport.ops.on_peer_failed = on_peer_failed;
    cfg.base = (void *)region;
    cfg.len = len;
    cfg.home_policy = DQ_HOME_MASTER;
    st = dq_dsm_start(&cfg, err, sizeof(err));
    if (st != DQ_OK) {
        node_error("cannot start the DSM engine", "%s", err);
        return EXIT_NODE;
    }
    if (id == 0) {
        snprintf(ep, sizeof(ep), "%s", dq_xport_endpoint(dq_dsm_xport()));
        if (bench_write_all(ep_fd, ep, sizeof(ep)) != 0) {
            node_error("cannot publish the endpoint", "%s", strerror(errno));
            dq_dsm_stop();
            return EXIT_NODE;
        }
        close(ep_fd);
    }
    st = dq_dsm_wait_ready(err, sizeof(err));
    if (st != DQ_OK) {
        node_error(id == 0 ? "cluster start-up failed" :
                   "cannot join the cluster", "%s", err);
        if (id == 0) {
            dq_xport_shutdown(dq_dsm_xport(), EXIT_NODE);
        }
        dq_dsm_stop();
        return EXIT_NODE;
    }

    rc = id == 0 ? master_rows(turn_fd, rep, ns) :
                   worker_rows(turn_fd, rep, ns);
    if (rc == 0) {
        dq_dsm_counters(&c);
        counters_get(&c, rep->total);
        if (bench_write_all(report_fd, rep, sizeof(*rep)) != 0) {
            node_error("cannot report", "%s", strerror(errno));
            rc = -1;
        }
    }
    if (id == 0) {
        st = dq_xport_shutdown(dq_dsm_xport(), rc == 0 ? 0 : EXIT_NODE);
        if (st != DQ_OK) {
            node_error("shutdown", "%s", dq_status_str(st));
            rc = -1;
        }
    } else {
        st = dq_xport_wait_shutdown(dq_dsm_xport(), LEAVE_MS, &code,
                                    err, sizeof(err));
        if (st != DQ_OK) {
            node_error("no shutdown from the master", "%s", err);
            rc = -1;
        }
    }
    dq_dsm_stop();
    free(ns);
    free(rep);
    return rc == 0 ? 0 : EXIT_NODE;
}

/* ---- the parent: start both nodes, collect, print --------------------- */

typedef struct Cluster {
    pid_t pid[2];
    int report_fd[2];           /* read ends */
    bool reported[2];
    bool exited[2];
    int status[2];
    NodeReport rep[2];
} Cluster;

static const char *const node_role[2] = { "master", "worker" };

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void say(const char *fmt, ...)
{
    va_list ap;

    fflush(stdout);
    fputs("dsm-bench: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* "exited with status 3", "killed by signal 11". */
static const char *how_ended(int status, char *buf, size_t len)
{
    if (WIFSIGNALED(status)) {
        snprintf(buf, len, "was killed by signal %d", WTERMSIG(status));
    } else {
        snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));
    }
    return buf;
}

/*
 * Fork node @id.  The child keeps only its own descriptors, so the
 * parent's and the other node's reads see end of file when it dies.
 */
static pid_t fork_node(unsigned id, const char *master_ep, int ep_fd,
                       int turn_fd, int report_fd, const int *close_fds,
                       unsigned nclose)
{
    pid_t parent = getpid(), pid;
    unsigned i;

    fflush(stdout);
    fflush(stderr);
    pid = fork();
    if (pid != 0) {
        return pid;
    }
    for (i = 0; i < nclose; i++) {
        close(close_fds[i]);
    }
    /* Bounded waits end a node anyway; this just ends it sooner. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) {
        _exit(EXIT_NODE);
    }
    exit(node_main(id, master_ep, ep_fd, turn_fd, report_fd));
}

/* Kill whichever node is still running (ours, by pid) and reap it. */
static void kill_nodes(Cluster *c)
{
    unsigned i;

    for (i = 0; i < 2; i++) {
        if (c->pid[i] > 0 && !c->exited[i]) {
            kill(c->pid[i], SIGKILL);
            waitpid(c->pid[i], &c->status[i], 0);
            c->exited[i] = true;
        }
    }
}

static void reap_nohang(Cluster *c)
{
    unsigned i;

    for (i = 0; i < 2; i++) {
        if (c->pid[i] > 0 && !c->exited[i] &&
            waitpid(c->pid[i], &c->status[i], WNOHANG) == c->pid[i]) {
            c->exited[i] = true;
        }
    }
}

/*
 * Wait for both reports, then for both nodes to leave.  A node that dies
 * or goes silent ends the wait with a message naming it; the other one is
 * killed.  0, or -1 once reported.
 */
static int collect(Cluster *c)
{
    uint64_t deadline = ms_now() + 2 * turn_wait_ms() + LEAVE_MS;
    struct pollfd pfd[2];
    char how[64];
    unsigned i, n, idx[2];
    int rc = 0;

    while (!(c->reported[0] && c->reported[1])) {
        for (i = 0, n = 0; i < 2; i++) {
            if (!c->reported[i] && c->report_fd[i] >= 0) {
                pfd[n].fd = c->report_fd[i];
                pfd[n].events = POLLIN;
                idx[n++] = i;
            }
        }
        if (n > 0 && poll(pfd, n, 100) < 0 && errno != EINTR) {
            say("poll: %s", strerror(errno));
            kill_nodes(c);
            return -1;
        }
        if (n == 0) {
            poll(NULL, 0, 100);
        }
        for (i = 0; i < n; i++) {
            if (pfd[i].revents == 0) {
                continue;
            }
            /* One write under PIPE_BUF: all of it is there, or EOF. */
            if (bench_read_all(c->report_fd[idx[i]], &c->rep[idx[i]],
                               sizeof(c->rep[0])) == 0) {
                c->reported[idx[i]] = true;
            } else {
                close(c->report_fd[idx[i]]);
                c->report_fd[idx[i]] = -1;
            }
        }
        reap_nohang(c);
        for (i = 0; i < 2; i++) {
            if (c->exited[i] && !c->reported[i] && c->report_fd[i] < 0) {
                say("the %s (node %u, pid %d) %s before reporting its "
                    "figures; its own message, if any, is above", node_role[i],
                    i, (int)c->pid[i], how_ended(c->status[i], how,
                                                 sizeof(how)));
                kill_nodes(c);
                return -1;
            }
        }
        if (ms_now() > deadline) {
            for (i = 0; i < 2; i++) {
                if (!c->reported[i]) {
                    say("the %s (node %u, pid %d) reported nothing within "
                        "%u s", node_role[i], i, (int)c->pid[i],
                        (unsigned)((2 * turn_wait_ms() + LEAVE_MS) / 1000));
                }
            }
            kill_nodes(c);
            return -1;
        }
    }

    deadline = ms_now() + LEAVE_MS;
    while (!(c->exited[0] && c->exited[1]) && ms_now() < deadline) {
        poll(NULL, 0, 10);
        reap_nohang(c);
    }
    for (i = 0; i < 2; i++) {
        if (!c->exited[i]) {
            say("the %s (node %u, pid %d) did not leave the cluster within "
                "%u s", node_role[i], i, (int)c->pid[i], LEAVE_MS / 1000);
            rc = -1;
        } else if (c->status[i] != 0) {
            say("the %s (node %u, pid %d) %s after reporting (shutdown "
                "failed)", node_role[i], i, (int)c->pid[i],
                how_ended(c->status[i], how, sizeof(how)));
            rc = -1;
        }
    }
    kill_nodes(c);
    return rc;
}

/* Start the master, hand its endpoint to the worker, collect both. */
static int run_cluster(Cluster *c)
{
    char ep[DQ_XPORT_ENDPOINT_MAX], how[64];
    int turn[2], mrep[2], wrep[2], epp[2];
    int fds[3];
    bool silent;

    memset(c, 0, sizeof(*c));
    c->report_fd[0] = c->report_fd[1] = -1;
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, turn) != 0 || pipe(mrep) != 0 ||
        pipe(epp) != 0) {
        say("cannot create the node channels: %s", strerror(errno));
        return -1;
    }
    fds[0] = turn[1];
    fds[1] = mrep[0];
    fds[2] = epp[0];
    c->pid[0] = fork_node(0, "tcp://127.0.0.1:*", epp[1], turn[0], mrep[1],
                          fds, 3);
    if (c->pid[0] < 0) {
        say("cannot fork the master: %s", strerror(errno));
        return -1;
    }
    close(turn[0]);
    close(mrep[1]);
    close(epp[1]);
    c->report_fd[0] = mrep[0];
    if (bench_read_within(epp[0], ep, sizeof(ep), BENCH_WAIT_MS) != 0) {
        silent = errno == ETIMEDOUT;
        close(epp[0]);
        kill_nodes(c);
        say("the master (node 0, pid %d) %s before publishing its "
            "endpoint", (int)c->pid[0],
            silent ? "stayed silent for 10 s" :
            how_ended(c->status[0], how, sizeof(how)));
        return -1;
    }
    close(epp[0]);
    ep[sizeof(ep) - 1] = '\0';

    if (pipe(wrep) != 0) {
        say("cannot create the worker's channel: %s", strerror(errno));
        kill_nodes(c);
        return -1;
    }
    fds[0] = mrep[0];
    fds[1] = wrep[0];
    c->pid[1] = fork_node(1, ep, -1, turn[1], wrep[1], fds, 2);
    if (c->pid[1] < 0) {
        say("cannot fork the worker: %s", strerror(errno));
        kill_nodes(c);
        return -1;
    }
    close(turn[1]);
    close(wrep[1]);
    c->report_fd[1] = wrep[0];
    return collect(c);
}

/* ---- printing ---------------------------------------------------------- */

static uint64_t want_count(Want w, Want field)
{
    return w == field ? per_block() : 0;
}

/*
 * Did every access of @p make exactly one fault of the claimed kind on
 * the measuring node?  Writes what differs into @buf; true if nothing.
 */
static bool phase_ok(Phase p, const PhaseReport *r, char *buf, size_t len)
{
    const PhaseInfo *pi = &phase_info[p];
    uint64_t want[C__COUNT] = { 0 };
    size_t used = 0;
    unsigned k;

    want[C_read_faults] = want_count(pi->want, WANT_READ);
    want[C_write_faults] = want_count(pi->want, WANT_WRITE);
    want[C_upgrade_faults] = want_count(pi->want, WANT_UPGRADE);
    buf[0] = '\0';
    if (r->segv != per_block()) {
        used += (size_t)snprintf(buf + used, len - used,
                                 " sigsegv %" PRIu64 " (want %zu)", r->segv,
                                 per_block());
    }
    /* The fault kinds and the counters that must stay 0; the rest
     * (home requests, invals, recalls, traffic) belong to the other
     * node's share or to timing; the totals check those. */
    for (k = 0; k < C__COUNT && used < len; k++) {
        if ((k == C_read_faults || k == C_write_faults ||
             k == C_upgrade_faults || k == C_retries ||
             k == C_proto_errors || k == C_data_lost) &&
            r->delta[k] != want[k]) {
            used += (size_t)snprintf(buf + used, len - used,
                                     " %s +%" PRIu64 " (want +%" PRIu64 ")",
                                     counter_name[k], r->delta[k], want[k]);
        }
    }
    if (r->bad != 0 && used < len) {
        snprintf(buf + used, len - used, " %" PRIu64 " wrong bytes read",
                 r->bad);
    }
    return buf[0] == '\0';
}

/*
 * The counts a row added on its node, the ones that moved (times and
 * byte counts are left out: the table has the times, and the bytes follow
 * from the messages).
 */
static void phase_moved(const PhaseReport *r, char *buf, size_t len)
{
    size_t used = 0;
    unsigned k;

    buf[0] = '\0';
    for (k = 0; k < C__COUNT && used < len; k++) {
        if (r->delta[k] != 0 && strcmp(counter_unit[k], "ns") != 0 &&
            strcmp(counter_unit[k], "bytes") != 0) {
            used += (size_t)snprintf(buf + used, len - used, "%s%s +%" PRIu64,
                                     used ? ", " : "", counter_name[k],
                                     r->delta[k]);
        }
    }
    if (buf[0] == '\0') {
        snprintf(buf, len, "none");
    }
}

/*
 * Each node's counters at the end, as the rows imply them: every read,
 * write and upgrade fault is one request to node 0.  -1: any value
 * (times, traffic with its heartbeats, late installs: they depend on
 * timing; and counters this program does not know).
 */
static void expected_totals(int64_t want[2][C__COUNT])
{
    int64_t m = (int64_t)per_block();
    unsigned i, k;

    for (k = 0; k < C__COUNT; k++) {
        want[0][k] = want[1][k] = -1;
    }
    for (i = 0; i < 2; i++) {
        want[i][C_read_faults] = want[i][C_write_faults] = 0;
        want[i][C_upgrade_faults] = want[i][C_retries] = 0;
        want[i][C_home_requests] = 0;
        want[i][C_invals_sent] = want[i][C_invals] = 0;
        want[i][C_recalls_sent] = want[i][C_recalls] = 0;
        want[i][C_proto_errors] = want[i][C_data_lost] = 0;
    }
    /* read, upgrade's and inval's preparation, read-dirty */
    want[1][C_read_faults] = 4 * m;
    want[1][C_write_faults] = m;
    want[1][C_upgrade_faults] = m;
    want[1][C_invals] = m;
    want[0][C_write_faults] = 2 * m;        /* inval, home-local */
    want[0][C_invals_sent] = m;             /* inval */
    want[0][C_recalls] = m;                 /* read-dirty: from itself */
    want[0][C_home_requests] = 8 * m;
}

static bool print_totals(const Cluster *c)
{
    int64_t want[2][C__COUNT];
    char item[96];
    bool ok = true;
    unsigned i, k;
    size_t col;

    expected_totals(want);
    printf("engine counters at the end (dq_dsm_counters), with (want N) "
           "where they differ from what the rows imply:\n");
    for (i = 0; i < 2; i++) {
        col = (size_t)printf("  node %u (%s):", i, node_role[i]);
        for (k = 0; k < C__COUNT; k++) {
            if (want[i][k] >= 0 &&
                c->rep[i].total[k] != (uint64_t)want[i][k]) {
                snprintf(item, sizeof(item), " %s %" PRIu64 " (want %" PRId64
                         ")", counter_name[k], c->rep[i].total[k],
                         want[i][k]);
                ok = false;
            } else {
                snprintf(item, sizeof(item), " %s %" PRIu64,
                         counter_name[k], c->rep[i].total[k]);
            }
            if (col + strlen(item) > 100) {
                col = (size_t)printf("\n   ") - 1;
            }
            col += (size_t)printf("%s", item);
        }
        printf("\n");
    }
    return ok;
}

static void print_results(const Cluster *c, const BenchResult *tcp,
                          const BenchResult *zmq)
{
    const PhaseReport *r, *rd;
    char moved[160], diff[256], engine[16];
    uint64_t faults;
    bool all_ok = true, goal_abs, goal_rel;
    double vs_tcp;
    unsigned p;

    printf("DSM fault latency: 2 node processes on 127.0.0.1, homes: "
           "master (node 0 homes every page)\n");
    printf("%u timed accesses per row after %u warm-up ones, each the "
           "first access to a fresh %zu-byte page\n\n", iters, warmup,
           (size_t)sysconf(_SC_PAGESIZE));
    printf("  %-11s %9s %9s %9s %11s %10s  %-4s %7s  %-5s  %s\n", "row",
           "median us", "p99 us", "vs TCP", "vs REQ/REP", "engine us",
           "node", "csw/acc", "check", "counts that moved there");
    printf("  %-11s %9.1f %9.1f %8.2fx %10.2fx\n", "tcp-4k", tcp->median_us,
           tcp->p99_us, 1.0, tcp->median_us / zmq->median_us);
    printf("  %-11s %9.1f %9.1f %8.2fx %10.2fx\n", "zmq-4k", zmq->median_us,
           zmq->p99_us, zmq->median_us / tcp->median_us, 1.0);
    for (p = 0; p < PH__COUNT; p++) {
        r = &c->rep[phase_info[p].node].ph[p];
        phase_moved(r, moved, sizeof(moved));
        if (!phase_ok(p, r, diff, sizeof(diff))) {
            all_ok = false;
        }
        faults = r->delta[C_read_faults] + r->delta[C_write_faults] +
                 r->delta[C_upgrade_faults];
        if (faults != 0) {
            snprintf(engine, sizeof(engine), "%.1f",
                     r->delta[C_fault_ns] / 1000.0 / faults);
        } else {
            snprintf(engine, sizeof(engine), "-");
        }
        printf("  %-11s %9.1f %9.1f %8.2fx %10.2fx %10s  %-4u %7.1f  %-5s  "
               "%s\n", phase_info[p].name, r->median_us, r->p99_us,
               r->median_us / tcp->median_us, r->median_us / zmq->median_us,
               engine, phase_info[p].node, (double)r->csw / per_block(),
               diff[0] ? "BAD" : "ok", moved);
        if (diff[0]) {
            printf("  %-11s   not what the row claims:%s\n", "", diff);
        }
    }
    printf("\nrows:\n");
    printf("  %-11s raw TCP, %d-byte request, %d-byte reply, TCP_NODELAY, "
           "one connection\n", "tcp-4k", BENCH_REQ_BYTES, BENCH_PAGE);
    printf("  %-11s plain ZeroMQ REQ/REP, same sizes\n", "zmq-4k");
    for (p = 0; p < PH__COUNT; p++) {
        printf("  %-11s %s\n", phase_info[p].name, phase_info[p].what);
    }
    printf("  engine us: mean time inside the engine per fault, request "
           "to installed page (fault_ns); the rest is the signal's\n");
    printf("  csw/acc: context switches of the timed node's threads per "
           "access (getrusage), the other node's not counted\n");
    printf("  check: on the timed node, one SIGSEGV and one fault of the "
           "claimed kind per access, data as written\n\n");
    if (!print_totals(c)) {
        all_ok = false;
    }

    rd = &c->rep[phase_info[PH_READ].node].ph[PH_READ];
    vs_tcp = rd->median_us / tcp->median_us;
    goal_abs = rd->median_us <= 100.0;
    goal_rel = vs_tcp <= 4.0;
    printf("\ngoal: remote read fault (row read) median <= 100 us: %s "
           "(%.1f us); <= 4x raw TCP: %s (%.2fx)\n",
           goal_abs ? "met" : "NOT met", rd->median_us,
           goal_rel ? "met" : "NOT met", vs_tcp);
    if (!all_ok) {
        printf("warning: some rows did not measure what they claim "
               "(see BAD and want above)\n");
    }
    printf("bench-dsm: read median %.1f us (%.2f x TCP, %.2f x ZeroMQ)\n",
           rd->median_us, vs_tcp, rd->median_us / zmq->median_us);
}

/* ---- main ------------------------------------------------------------ */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: dsm-bench [--iters N] [--warmup N]\n"
            "  --iters N    timed accesses per row (default 3000, "
            "at most %u)\n"
            "  --warmup N   untimed accesses first (default 200)\n",
            MAX_ITERS);
}

static bool parse_count(const char *s, unsigned lo, unsigned *out)
{
    char *end;
    unsigned long v;

    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > MAX_ITERS) {
        return false;
    }
    *out = (unsigned)v;
    return true;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "iters", required_argument, NULL, 'i' },
        { "warmup", required_argument, NULL, 'w' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    BenchResult tcp = { .name = "raw TCP" }, zmq = { .name = "ZeroMQ" };
    Cluster *c;
    uint64_t *ns;
    int opt;

    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (opt) {
        case 'i':
            if (!parse_count(optarg, 1, &iters)) {
                usage(stderr);
                return 2;
            }
            break;
        case 'w':
            if (!parse_count(optarg, 0, &warmup)) {
                usage(stderr);
                return 2;
            }
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    ns = malloc(sizeof(*ns) * iters);
    c = calloc(1, sizeof(*c));
    if (ns == NULL || c == NULL) {
        say("out of memory");
        return 1;
    }
    /* Baselines first: the parent has no thread or context left after
     * them when it forks the nodes. */
    if (bench_tcp_rtt(&tcp, warmup, iters, ns) != 0) {
        say("raw TCP baseline failed: %s", tcp.why);
        return 1;
    }
    if (bench_zmq_rtt(&zmq, warmup, iters, ns) != 0) {
        say("ZeroMQ baseline failed: %s", zmq.why);
        return 1;
    }
    free(ns);
    if (run_cluster(c) != 0) {
        if (c->reported[0] && c->reported[1]) {
            /* The figures stand; only leaving the cluster failed. */
            print_results(c, &tcp, &zmq);
        }
        free(c);
        return 1;
    }
    print_results(c, &tcp, &zmq);
    free(c);
    return 0;
}
