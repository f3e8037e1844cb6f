/*
 * dsm.h - the coherence engine: pages, faults, directory and transport
 * joined into one distributed shared memory region per process.
 *
 * Design (DESIGN.md §5):
 *
 * - Initial state: every page of the region starts UNCACHED in its home's
 *   directory with an all-zero home copy, and I (PROT_NONE) on every node;
 *   the region must be fresh anonymous memory (zeros) on every node.  The
 *   first toucher gets the zeros from the home.
 * - Home copy: each node keeps a private buffer as large as the region
 *   (calloc, so pages it does not home cost nothing) holding the home copy
 *   of every page it homes, apart from its own guest mapping: the home
 *   node is a requester like any other.  Homes: MASTER or HASH policies
 *   (home.h) over the page index within the region; FIRST_TOUCH is not
 *   supported yet (DQ_ERR_NOSYS).
 * - Threads: the transport's I/O thread answers INVAL and RECALL for pages
 *   this node holds (dq_page_set_state / dq_page_downgrade, then
 *   INVAL_ACK / RECALL_DATA) and forwards requests, acks and recalled
 *   data for pages this node homes to the DSM service thread.  The
 *   service thread alone owns the directory and the home copies and sends
 *   every home message (GRANT*, INVAL, RECALL, NACK) through one FIFO
 *   (dq_xport_send from a non-I/O thread), so per-pair order holds.  A
 *   faulting thread whose page is homed elsewhere calls
 *   dq_xport_request(); one homed here pushes a preallocated slot onto a
 *   lock-free list and wakes the service thread through an eventfd; the
 *   directory is never touched by a faulting thread.
 * - A grant that arrived but is not installed yet when an INVAL or RECALL
 *   for the same page follows it (FIFO) is installed by the I/O thread
 *   first, so the invalidation applies to it.
 * - One engine per process (the SIGSEGV handler has no argument).
 * - Not yet: leases for atomics, forwarding, writeback/eviction,
 *   first-touch homes, statistics beyond the counters below.
 */
#ifndef DQEMU_DSM_H
#define DQEMU_DSM_H

#include "fault.h"
#include "home.h"
#include "xport.h"

/* Default bound on one page request (NACK retries included). */
#define DQ_DSM_REQUEST_TIMEOUT_MS   10000
/* Default number of concurrent faults (request slots). */
#define DQ_DSM_DEFAULT_SLOTS        64

typedef struct DqDsmConfig {
    /*
     * The transport.  ops.on_message is the engine's own and must be
     * NULL; on_peer_failed and on_shutdown, if set, are called after the
     * engine's own handling, with xport.opaque.  page_size is set by the
     * engine (the host page size).
     */
    DqXportConfig xport;
    void *base;                 /* same address on every node */
    size_t len;                 /* page-aligned, > 0 */
    DqHomePolicy home_policy;   /* MASTER or HASH */
    unsigned home_block_shift;  /* pages per home block: 2^shift */
    unsigned request_timeout_ms; /* 0: DQ_DSM_REQUEST_TIMEOUT_MS */
    unsigned slots;             /* 0: DQ_DSM_DEFAULT_SLOTS */
} DqDsmConfig;

/*
 * Per-node statistics.  One X-macro names every counter with its unit and
 * meaning, so dq_dsm_counters_print() cannot drift from the counting.
 */
#define DQ_DSM_COUNTER_LIST(X)                                             \
    X(read_faults,    "faults",   "read requests made (I -> S)")           \
    X(write_faults,   "faults",   "write requests made (I -> M)")          \
    X(upgrade_faults, "faults",   "upgrade requests made (S -> M)")        \
    X(fault_ns,       "ns",       "time from request to installed page")   \
    X(retries,        "retries",  "requests retried (home queue full)")    \
    X(home_requests,  "requests", "requests served as home")               \
    X(invals_sent,    "messages", "invalidations sent as home")            \
    X(invals,         "messages", "invalidations received and obeyed")     \
    X(recalls_sent,   "messages", "recalls sent as home")                  \
    X(recalls,        "messages", "recalls received and obeyed")           \
    X(late_installs,  "pages",    "grants installed by the I/O thread")    \
    X(proto_errors,   "events",   "events the directory refused")          \
    X(data_lost,      "pages",    "pages whose only copy died with a node") \
    X(msgs_sent,      "messages", "messages sent (all kinds)")             \
    X(bytes_sent,     "bytes",    "bytes sent (headers included)")         \
    X(msgs_received,  "messages", "messages received (all kinds)")         \
    X(bytes_received, "bytes",    "bytes received (headers included)")

/*
 * Fault latency histogram: bucket 0 counts requests served in under
 * 2 us, bucket i >= 1 those in [2^i, 2^(i+1)) us; the last one is open.
 */
#define DQ_DSM_HIST_BUCKETS 24

typedef struct DqDsmCounters {
#define DQ_DSM_COUNTER_FIELD(name, unit, help) uint64_t name;
    DQ_DSM_COUNTER_LIST(DQ_DSM_COUNTER_FIELD)
#undef DQ_DSM_COUNTER_FIELD
    uint64_t fault_hist[DQ_DSM_HIST_BUCKETS];
} DqDsmCounters;

/*
 * Register the region, set up the directory and start the transport and
 * the service thread.  The region must already be mapped (read/write,
 * zero-filled) at the same address on every node; it is made PROT_NONE
 * here.  Returns at once; dq_dsm_wait_ready() waits for the cluster.
 * On error @err says what failed and nothing is left running.
 * Context: process context, once per process.
 */
DqStatus dq_dsm_start(const DqDsmConfig *cfg, char *err, size_t errlen);

/* dq_xport_wait_ready() of the engine's transport. */
DqStatus dq_dsm_wait_ready(char *err, size_t errlen);

/*
 * The engine's transport, for endpoint, shutdown and wait_shutdown; NULL
 * when not started.  Do not free it; dq_dsm_stop() does.
 */
DqXport *dq_dsm_xport(void);

/*
 * For the SIGSEGV handler: resolve a fault at @addr.  NOT_OURS when the
 * engine is not running or @addr is outside the region; ERROR (with
 * *@status) when the page cannot be obtained (peer failed, timeout).
 * Context: signal handler; async-signal-safe, allocates nothing.
 */
DqFaultResult dq_dsm_fault(uintptr_t addr, bool is_write, DqStatus *status);

/*
 * Make [@addr, @addr + @len) present for reading (or writing), e.g.
 * before a system call uses it as a buffer.
 * Context: any thread, signal handlers included.
 */
DqStatus dq_dsm_acquire_range(uintptr_t addr, size_t len, bool write);

/* A snapshot of the counters (zeros when the engine never started). */
void dq_dsm_counters(DqDsmCounters *out);

/* The histogram bucket of a fault that took @ns. */
unsigned dq_dsm_hist_bucket(uint64_t ns);

/*
 * Print @c for node @node: one "dqemu: node K: dsm: name value unit" line
 * per counter, then the non-empty histogram buckets on one line.
 */
void dq_dsm_counters_print(FILE *out, unsigned node, const DqDsmCounters *c);

/*
 * Stop the service thread, free the transport (call dq_xport_shutdown /
 * wait_shutdown first to leave the cluster in order) and forget the
 * region; its memory keeps its last protections.  No fault may be in
 * progress or follow.  A no-op when not started.
 * Context: process context.
 */
void dq_dsm_stop(void);

#endif /* DQEMU_DSM_H */
