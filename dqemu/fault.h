/*
 * fault.h - the local fault path: from a SIGSEGV in a DSM region to the
 * page being present in the state the access needs.
 *
 * The embedding program's SIGSEGV handler calls dq_fault_handle(); code
 * that must touch guest memory without faulting (syscall buffers, which
 * the kernel would answer with EFAULT) calls dq_fault_acquire_range().
 * Both coalesce local threads: one request per page is in flight on this
 * node, the other threads wanting that page sleep until it is answered.
 * The request itself leaves through ops->obtain(), the engine's business.
 */
#ifndef DQEMU_FAULT_H
#define DQEMU_FAULT_H

#include "page.h"

typedef struct DqFaultOps {
    /*
     * Get page @index of the region from the cluster in @want (S or M;
     * @have, lower, is what this node held when it asked: S to M is an
     * upgrade; @atomic when the access is a guest atomic or exclusive,
     * for which the engine may keep an M page a while: dsm.h, leases)
     * and return once it is installed (dq_page_install() or
     * dq_page_set_state() done, by any thread), or with an error status
     * when that cannot happen: this must return, never hang (a silent
     * peer is an error within the transport's time limit).
     * Context: the faulting thread, in a signal handler, holding the
     * page's PENDING bit and no other lock.  So it must be
     * async-signal-safe (hand a preallocated per-thread request to the
     * I/O thread and sleep on a futex), must not touch DSM memory and
     * must not call dq_fault_*; it may call dq_page_install() itself.
     */
    DqStatus (*obtain)(void *opaque, size_t index, DqPageState have,
                       DqPageState want, bool atomic);
    void *opaque;
} DqFaultOps;

/*
 * What the fault path did.  Counters are bumped with relaxed atomics
 * (safe in a signal handler) and read for statistics and tests.
 */
typedef struct DqFault {
    DqPageRegion *region;
    DqFaultOps ops;
    uint64_t obtains;           /* ops->obtain() calls */
    uint64_t waits;             /* sleeps on another thread's request */
} DqFault;

typedef enum DqFaultResult {
    /*
     * Not a DSM fault: outside the region, or beyond the page's bound
     * (dq_page_set_max_prot()), so the program's own handling runs (in
     * QEMU: page_unprotect for translated code, or a guest SIGSEGV).
     */
    DQ_FAULT_NOT_OURS,
    /* The page now allows the access: return and retry it. */
    DQ_FAULT_HANDLED,
    /* ops->obtain() failed; the status says why.  Report and exit. */
    DQ_FAULT_ERROR,
} DqFaultResult;

/*
 * Set up @f over @r (which must outlive it) with the engine's @ops.
 * Context: set-up, before the SIGSEGV handler can call in.
 */
void dq_fault_init(DqFault *f, DqPageRegion *r, const DqFaultOps *ops);

/*
 * Resolve a fault at @addr; @is_write for a write access (a read or an
 * instruction fetch otherwise); @is_atomic when the access is a guest
 * atomic (passed on to ops->obtain() for the request it makes, if any;
 * a thread that waited for another's request passes nothing on).  An
 * access the page's state and bound already allow was racing with an
 * install: HANDLED at once, without a request.  On DQ_FAULT_ERROR
 * *@status (if not NULL) gets obtain's status.
 * errno is as it was on entry.
 * Context: a SIGSEGV handler (or any thread); async-signal-safe: no
 * allocation, no mutex, only atomics, futex and ops->obtain().  Takes and
 * releases the page's PENDING bit around ops->obtain().
 */
DqFaultResult dq_fault_handle(DqFault *f, uintptr_t addr, bool is_write,
                              bool is_atomic, DqStatus *status);

/*
 * Make every page of [@addr, @addr + @len) present in S (or M if @write),
 * obtaining the missing ones in address order, before the kernel or
 * library code touches the range.  The page bounds are not checked: the
 * caller has checked the program's own rights.  A page may be taken away
 * again by a remote request right after; callers that cannot tolerate
 * that must retry on EFAULT.  DQ_ERR_RANGE if the range leaves the
 * region, else DQ_OK or obtain's status.  errno is preserved.
 * Context: any thread, signal handlers included; as dq_fault_handle().
 */
DqStatus dq_fault_acquire_range(DqFault *f, uintptr_t addr, size_t len,
                                bool write);

#endif /* DQEMU_FAULT_H */
