/*
 * lease.h - the forward-progress lease of a page obtained for an atomic,
 * and the recalls it holds back (DESIGN.md §5, docs/dsm.md "Leases").
 *
 * A guest atomic runs as one host locked instruction on the host page,
 * so the node needs the page in M at the moment the faulting thread
 * re-executes it.  Under contention the next RECALL often arrives right
 * behind our grant; answered at once, the page leaves before the thread
 * is even back from its SIGSEGV handler and a CAS loop can livelock.  So
 * a node that obtained a page in M for an atomic keeps it a short while
 * (the lease) before it answers a recall.
 *
 * One 64-bit word per page says where its lease stands:
 *
 *   0                 no lease
 *   deadline | OPEN   the grant is installed, the faulting thread is not
 *                     back yet: the lease lasts until it is, but never
 *                     past deadline (install time + a cap of a few ms, so
 *                     a thread that never comes back cannot hold the page)
 *   deadline          the thread is back; the lease ends at deadline
 *
 * Deadlines are CLOCK_MONOTONIC nanoseconds, even (bit 0 is OPEN).
 * Every word operation is a plain atomic: the faulting thread closes the
 * lease from its signal handler.
 *
 * A recall that finds the lease running is deferred, never dropped: the
 * deferral queue below keeps it (per page, linked through a per-page
 * record, so deferring allocates nothing) until the lease ends.  The
 * queue is pure logic; the engine (dsm.c) holds its lock and answers.
 */
#ifndef DQEMU_LEASE_H
#define DQEMU_LEASE_H

#include "dqemu.h"

#define DQ_LEASE_OPEN   UINT64_C(1)
#define DQ_LEASE_NONE   UINT64_MAX      /* "no deadline" for dq_lease_take */

/*
 * The grant answering an atomic write was installed at @now: open the
 * page's lease, bounded by @now + @cap.
 * Context: any thread, signal handlers included.
 */
static inline void dq_lease_open(uint64_t *w, uint64_t now, uint64_t cap)
{
    __atomic_store_n(w, ((now + cap) & ~DQ_LEASE_OPEN) | DQ_LEASE_OPEN,
                     __ATOMIC_SEQ_CST);
}

/*
 * The faulting thread is back, about to re-execute its atomic: an open
 * lease now ends at @now + @ns.  Returns that deadline, or 0 when the
 * lease was not open (none, already closed, or ended by a recall).
 * Context: any thread, signal handlers included.
 */
uint64_t dq_lease_close(uint64_t *w, uint64_t now, uint64_t ns);

/*
 * The deadline of a lease still running at @now (open or closed), or 0
 * when there is none or it has ended.
 * Context: any thread.
 */
uint64_t dq_lease_until(const uint64_t *w, uint64_t now);

/* The page left M (its recall was answered): no lease.  Context: any. */
static inline void dq_lease_clear(uint64_t *w)
{
    __atomic_store_n(w, 0, __ATOMIC_SEQ_CST);
}

/* ---- recalls held back by a lease ------------------------------------- */

typedef enum DqLeaseDeferKind {
    DQ_LEASE_DEFER_NONE = 0,
    DQ_LEASE_DEFER_REMOTE,      /* a remote home's RECALL message */
    DQ_LEASE_DEFER_SELF,        /* the home's recall of its own M copy */
} DqLeaseDeferKind;

/* One deferred recall: what answering it later needs. */
typedef struct DqLeaseDefer {
    uint64_t id;                /* REMOTE: the RECALL's req_id; SELF: the
                                 * directory's transaction id */
    uint64_t since;             /* when it was deferred (ns) */
    size_t next;                /* queue link: page index + 1, 0 ends */
    uint16_t src;               /* REMOTE: the home that recalled */
    uint8_t keep;               /* what may be kept: the engine's encoding */
    uint8_t kind;               /* DqLeaseDeferKind; atomic (read by the
                                 * faulting thread) */
} DqLeaseDefer;

/*
 * The pages whose recall waits, FIFO.  @rec and @lease have one entry
 * per page (zero-filled, owned by the caller); at most one recall per
 * page is ever deferred, since a home has one transaction per page in
 * flight.
 */
typedef struct DqLeaseQueue {
    DqLeaseDefer *rec;
    const uint64_t *lease;
    size_t head, tail;          /* page index + 1; 0: empty */
    size_t len;                 /* atomic: readable without the lock */
} DqLeaseQueue;

/* Context: set-up. */
void dq_lease_queue_init(DqLeaseQueue *q, DqLeaseDefer *rec,
                         const uint64_t *lease);

/*
 * Hold back @r (kind REMOTE or SELF) for page @index, which must have
 * none deferred already (DQ_ERR_USAGE then, nothing changes).
 * Context: the caller's lock.
 */
DqStatus dq_lease_defer(DqLeaseQueue *q, size_t index, const DqLeaseDefer *r);

/*
 * Is a recall of page @index held back?  An atomic read, so a faulting
 * thread closing its lease knows whether the timer must be moved up.
 * Context: any thread, signal handlers included.
 */
static inline bool dq_lease_deferred(const DqLeaseQueue *q, size_t index)
{
    return __atomic_load_n(&q->rec[index].kind, __ATOMIC_SEQ_CST) !=
           DQ_LEASE_DEFER_NONE;
}

/*
 * Take the oldest deferred recall whose page's lease has ended by @now
 * (any one with @all: leases are being given up) out of the queue: true,
 * with its page in *@index and the record in *@out.  False when none
 * has, with the earliest deadline among those left in *@next
 * (DQ_LEASE_NONE when the queue is empty).
 * Context: the caller's lock.
 */
bool dq_lease_take(DqLeaseQueue *q, uint64_t now, bool all, size_t *index,
                   DqLeaseDefer *out, uint64_t *next);

#endif /* DQEMU_LEASE_H */
