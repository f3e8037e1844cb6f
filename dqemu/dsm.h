/*
 * dsm.h - the coherence engine: pages, faults, directory and transport
 * joined into one distributed shared memory region per process.
 *
 * Design (DESIGN.md §5; threads, locks and costs: docs/dsm.md):
 *
 * - Initial state: every page of the region starts UNCACHED in its home's
 *   directory with an all-zero home copy, and I on every node, its host
 *   protection the page's bound (initial_bound) intersected with
 *   PROT_NONE.  A page nobody claimed holds zeros for the cluster: the
 *   first toucher gets them from the home.  dq_dsm_claim_range() makes
 *   the home's current local contents the page's data instead (a loaded
 *   ELF image, a fresh mapping).
 * - Homes: MASTER or HASH policies (home.h) over the page index within
 *   the region; FIRST_TOUCH is not supported yet (DQ_ERR_NOSYS).  Each
 *   node keeps the home copies of the pages it homes apart from its own
 *   guest mapping (the home node is a requester like any other).  Every
 *   per-page table (directory entries, home copies, ...) is reserved
 *   untouched and filled in as pages are first used, so a region of
 *   4 GiB costs a few MB until it is used.
 * - Threads: no thread of the engine's own.  A faulting thread whose
 *   page is homed elsewhere sends its request itself (dq_xport_request)
 *   and sleeps; one whose page is homed here runs the directory itself
 *   under the engine's home lock.  The transport's I/O thread obeys
 *   INVAL and RECALL for pages this node holds, runs the directory for
 *   remote requests, acks and recalled data, and finishes transactions a
 *   local fault had to wait for.
 * - A grant that arrived but is not installed yet when an INVAL or RECALL
 *   for the same page follows it (FIFO) is installed by the I/O thread
 *   first, so the invalidation applies to it.
 * - Leases (docs/dsm.md "Leases"): a node that obtained a page in M for
 *   a guest atomic (dq_dsm_fault_ex with is_atomic) keeps it lease_ns
 *   after the faulting thread is back before it answers a recall, so a
 *   CAS or LL/SC loop cannot livelock under ping-pong.  Held-back
 *   recalls are answered from a timer on the transport's I/O thread.
 * - The transport: dq_dsm_start() creates its own; dq_dsm_attach() runs
 *   over one the program created, whose on_message and on_peer_failed
 *   forward to dq_dsm_handle_message() and dq_dsm_handle_peer_failed().
 * - One engine per process (the SIGSEGV handler has no argument).
 * - Not yet: forwarding, writeback/eviction,
 *   first-touch homes, re-homing the pages of a dead home.
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
/*
 * The lease for atomics a program should use when its user said nothing
 * (QEMU's --atomic-lease); DqDsmConfig.lease_ns 0 itself means no lease.
 * Chosen from `make bench-lease` (docs/dsm.md "Leases"): on 4 nodes it
 * gains ~50% ops/s on a contended word, and it stays well under one
 * remote page round trip, the most it makes another node wait.
 */
#define DQ_DSM_LEASE_DEFAULT_NS     (50u * 1000u)
/* Longer leases are cut to this: a page held longer starves the others. */
#define DQ_DSM_LEASE_MAX_NS         (2u * 1000u * 1000u)
/*
 * A lease is open from the grant's install until the faulting thread is
 * back from its handler, but never longer than this, so a thread that is
 * descheduled or never returns (its fault timed out) cannot hold a page.
 */
#define DQ_DSM_LEASE_OPEN_CAP_NS    (4u * 1000u * 1000u)

typedef struct DqDsmConfig {
    /*
     * The transport.  dq_dsm_start(): ops.on_message is the engine's own
     * and must be NULL; on_peer_failed and on_shutdown, if set, are
     * called after the engine's own handling, with xport.opaque;
     * page_size is set by the engine (the host page size).
     * dq_dsm_attach(): only node_id and node_count are used (and must be
     * the transport's); everything else here is the caller's business.
     */
    DqXportConfig xport;
    void *base;                 /* same address on every node */
    size_t len;                 /* page-aligned, > 0 */
    DqHomePolicy home_policy;   /* MASTER or HASH */
    unsigned home_block_shift;  /* pages per home block: 2^shift */
    unsigned request_timeout_ms; /* 0: DQ_DSM_REQUEST_TIMEOUT_MS */
    unsigned slots;             /* 0: DQ_DSM_DEFAULT_SLOTS */
    /*
     * The bound (PROT_* bits, dq_page_set_max_prot) every page starts
     * with; dq_dsm_set_bound() changes it per range.  dq_dsm_attach()
     * takes it as it is, so PROT_NONE (0) makes every page NOT_OURS for
     * dq_dsm_fault() until the program says what is mapped.
     * dq_dsm_start() reads 0 as PROT_READ | PROT_WRITE, its behaviour
     * before the field existed.  Other bits than PROT_READ, PROT_WRITE,
     * PROT_EXEC: DQ_ERR_RANGE.
     */
    int initial_bound;
    /*
     * If set: this node's copy of the page at @page_addr just went from
     * S or M to I because its home invalidated or recalled it, i.e.
     * another node is about to write it (not called for
     * dq_dsm_drop_range(), whose caller knows).  Called with no engine
     * lock held and without the page's TRANSIT bit, on the transport's
     * I/O thread or, for a page homed here, on whichever thread ran the
     * home directory: the I/O thread, a thread in dq_dsm_acquire_range()
     * or dq_dsm_attach() (failures it catches up on), or a faulting
     * thread inside its SIGSEGV handler.  So the callee
     * must be async-signal-safe (set a bit, write an eventfd) and must
     * not touch DSM memory or call into the engine.  A page invalidated
     * by a remote home is reported before this node's ack leaves; one
     * homed here may be reported just after the grant to the writer left.
     */
    void (*on_page_dropped)(void *opaque, uintptr_t page_addr);
    void *page_opaque;          /* on_page_dropped's first argument */
    /*
     * The lease for atomics (ns): how long after a thread whose atomic
     * write fault obtained its page in M is back from the fault this
     * node keeps the page before it answers a recall.  0: no lease;
     * above DQ_DSM_LEASE_MAX_NS: that.  dq_dsm_set_lease_ns() changes it.
     */
    uint64_t lease_ns;
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
    X(recalls,        "messages", "recalls received and answered")         \
    X(late_installs,  "pages",    "grants installed by the I/O thread")    \
    X(lease_grants,   "grants",   "atomic grants that started a lease")    \
    X(lease_deferrals, "recalls", "recalls deferred until a lease ended")  \
    X(lease_wait_ns,  "ns",       "total time deferred recalls waited")    \
    X(proto_errors,   "events",   "events the directory refused")          \
    X(data_lost,      "pages",    "pages whose only copy died or was dropped") \
    X(claims,         "pages",    "pages taken in M with their contents")  \
    X(claims_busy,    "pages",    "pages a claim left: transaction in flight") \
    X(drops,          "pages",    "copies dropped without writeback")      \
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
 * Register the region, set up the directory and start the transport.
 * The region must already be mapped (read/write, zero-filled) at the
 * same address on every node; it is made PROT_NONE here.  Returns at
 * once; dq_dsm_wait_ready() waits for the cluster.  On error @err says
 * what failed and nothing is left running.
 * Context: process context, once per process.
 */
DqStatus dq_dsm_start(const DqDsmConfig *cfg, char *err, size_t errlen);

/*
 * Same as dq_dsm_start() over a transport @x the caller started with its
 * own ops (ready, or becoming ready): only cfg->xport.node_id and
 * node_count are used from cfg->xport, and they must be @x's; @x's page
 * size must be the host's.  The caller's on_message must pass every
 * message to dq_dsm_handle_message() and its on_peer_failed to
 * dq_dsm_handle_peer_failed().  A peer @x declared failed before this
 * call is taken into account here.  DSM messages that arrive before this
 * returns are not consumed (the caller drops them and the requester
 * times out): attach on every node before any node can fault, e.g. before
 * dq_xport_wait_ready() returns anywhere.  The region keeps its contents
 * and is made PROT_NONE.  dq_dsm_stop() leaves @x running; free it after.
 * DQ_ERR_USAGE (already running, @x NULL or not matching), DQ_ERR_RANGE,
 * DQ_ERR_NOSYS, DQ_ERR_NOMEM, the page region's errors; @err says which.
 * Context: process context, once per process; not the I/O thread.
 */
DqStatus dq_dsm_attach(const DqDsmConfig *cfg, DqXport *x, char *err,
                       size_t errlen);

/*
 * For the on_message of a transport the engine is attached to: handle
 * @msg if it is one of the engine's (READ_REQ .. NACK: requests, grants,
 * invalidations, recalls and their answers, late ones included) and
 * return true; false for anything else (CALL, CALL_REPLY, ...) and when
 * no engine is attached, so the caller handles or drops it.
 * Context: the transport's I/O thread.
 */
bool dq_dsm_handle_message(const DqMsg *msg);

/*
 * For the on_peer_failed of a transport the engine is attached to: the
 * engine forgets @node's copies, refuses the pages only it had, fails
 * requests waiting on it.  A no-op when not attached.
 * Context: the transport's I/O thread.
 */
void dq_dsm_handle_peer_failed(unsigned node, const char *why);

/*
 * Set the bound of every page of [@addr, @addr + @len) (page-aligned,
 * inside the region) to @prot: dq_page_set_max_prot_range().  The host
 * protection becomes state ∩ @prot at once, and is re-applied even where
 * it looked right already (the caller may just have mmapped there).  A
 * fault beyond the bound is NOT_OURS for dq_dsm_fault().  Stops at the
 * first failure.  DQ_ERR_USAGE when not running, DQ_ERR_RANGE,
 * DQ_ERR_PAGE_PROTECT.
 * Context: any thread (QEMU's mprotect paths, under mmap_lock); takes
 * the pages' TRANSIT bits a batch at a time in address order (one
 * mprotect per run of pages), no lock of the engine's.
 */
DqStatus dq_dsm_set_bound(uintptr_t addr, size_t len, int prot);

/*
 * This node takes every page of [@addr, @addr + @len) (page-aligned,
 * inside the region) in M with its CURRENT local contents as the page's
 * data: the master right after the program loaded an image there, or
 * after a fresh mmap put zeros or file data there.  This node must be
 * the home of every page (MASTER homes on node 0), else DQ_ERR_USAGE
 * and nothing changes.  Each directory entry becomes MODIFIED with this
 * node as owner, whatever it was, forgetting other copies, and the page
 * is no longer lost; an entry with a transaction in flight (or requests
 * waiting) is left alone and counted in claims_busy.  The local state
 * becomes M (no data moves; the protection is re-applied, state ∩
 * bound).  The other nodes' copies are NOT touched: the caller has them
 * call dq_dsm_drop_range() on the range, until then they may read
 * their old copies.  Stops at the first failure.  DQ_ERR_USAGE,
 * DQ_ERR_RANGE, DQ_ERR_PAGE_PROTECT.
 * Context: any thread but the I/O thread, not inside a fault; takes the
 * engine's home lock, then the pages' TRANSIT bits a batch at a time.
 */
DqStatus dq_dsm_claim_range(uintptr_t addr, size_t len);

/*
 * This node's copies of [@addr, @addr + @len) (page-aligned, inside the
 * region) become I without any writeback: their contents are being
 * replaced by a new mapping elsewhere (the home claimed the range).  A
 * fault of this node's in progress on a page is waited for first (its
 * grant could otherwise be installed after the drop, stale).  Dropping a
 * page the home still records this node as the owner of (no claim came
 * first) loses its data: this node answers the home's next recall with a
 * NACK, and the home refuses the page (DQ_ERR_DSM_PAGE_LOST, never its
 * stale copy) until it claims it again.  on_page_dropped is not called.
 * The protection is re-applied (state I ∩ bound).  Stops at the first
 * failure.  DQ_ERR_USAGE when not running, DQ_ERR_RANGE,
 * DQ_ERR_PAGE_PROTECT.
 * Context: any thread but the I/O thread (a fault it waits for needs
 * it), not inside a fault; takes the pages' PENDING bits, then their
 * TRANSIT bits, a batch at a time in address order; no lock of the
 * engine's.
 */
DqStatus dq_dsm_drop_range(uintptr_t addr, size_t len);

/* dq_xport_wait_ready() of the engine's transport. */
DqStatus dq_dsm_wait_ready(char *err, size_t errlen);

/*
 * The engine's transport, for endpoint, shutdown and wait_shutdown; NULL
 * when not started.  Do not free one dq_dsm_start() made; dq_dsm_stop()
 * does.  An attached one is the caller's.
 */
DqXport *dq_dsm_xport(void);

/*
 * For the SIGSEGV handler: resolve a fault at @addr.  NOT_OURS when the
 * engine is not running or @addr is outside the region; ERROR (with
 * *@status) when the page cannot be obtained (peer failed, timeout).
 * @is_atomic: the access is a guest atomic (a host locked instruction
 * on the page: CAS, fetch-and-op, exchange, store-exclusive).  A write
 * fault that obtains the page in M for it starts a lease: the page
 * stays here lease_ns after this call returns HANDLED (the lease counts
 * from the thread being back, not from the grant) before a recall is
 * answered.  A read fault never starts one: a load-exclusive fetches S,
 * and the store that follows is a write fault of its own.  errno is
 * preserved.
 * Context: signal handler; async-signal-safe, allocates nothing.
 */
DqFaultResult dq_dsm_fault_ex(uintptr_t addr, bool is_write, bool is_atomic,
                              DqStatus *status);

/* dq_dsm_fault_ex(@addr, @is_write, false, @status). */
DqFaultResult dq_dsm_fault(uintptr_t addr, bool is_write, DqStatus *status);

/*
 * Change the lease for atomics (DqDsmConfig.lease_ns: 0 none, capped at
 * DQ_DSM_LEASE_MAX_NS) of the running engine, e.g. from an option parsed
 * after dq_dsm_attach().  Leases already closed keep their end; later
 * ones use @ns.  A no-op when the engine is not running.
 * Context: any thread.
 */
void dq_dsm_set_lease_ns(uint64_t ns);

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
 * Print @c as one JSON object: every counter by name, then
 * "fault_hist_us": [[lo, hi, count], ...] for the non-empty buckets, in
 * microseconds, lo included, hi excluded (null for the open last one).
 */
void dq_dsm_counters_print_json(FILE *out, const DqDsmCounters *c);

/* Add every counter and bucket of @add to @sum. */
void dq_dsm_counters_sum(DqDsmCounters *sum, const DqDsmCounters *add);

/*
 * Stop the engine and forget the region; its memory keeps its last
 * protections.  A transport dq_dsm_start() made is freed (call
 * dq_xport_shutdown / wait_shutdown first to leave the cluster in
 * order); an attached one keeps running, and dq_dsm_handle_message() /
 * handle_peer_failed() calls in progress on its I/O thread are waited
 * for, later ones return false / do nothing.  Recalls held back by
 * leases are answered first (the I/O thread gets up to a second).  No fault, claim, drop or
 * set_bound may be in progress or follow.  A no-op when not started.
 * Context: process context, not the I/O thread.
 */
void dq_dsm_stop(void);

#endif /* DQEMU_DSM_H */
