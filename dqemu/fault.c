/*
 * fault.c - the local fault path, async-signal-safe from end to end.
 *
 * A fault makes at most one request per page on this node: the first
 * thread sets the page's PENDING bit and calls ops->obtain(); the others
 * sleep on the page's futex word (page.c) and, once woken, check again
 * from the start, because what arrived may not be what they need (a
 * read answered by an S install while a write is pending, a write woken
 * by an S answer, a page invalidated again before they ran).
 *
 * Lock ordering and context:
 *
 *   PENDING bit of a page (dq_page_claim .. dq_page_unclaim, here only;
 *                          held across ops->obtain(), which may block
 *                          for a network round trip)
 *     TRANSIT bit of the same page (page.c, inside ops->obtain() when it
 *                          installs the page itself)
 *
 *   A thread holds at most one PENDING bit, and ops->obtain() never
 *   touches DSM memory, so it cannot fault again while holding one.
 *   Threads that find PENDING set sleep without holding anything.  The
 *   service thread never waits for PENDING.  No mutex: a signal handler
 *   cannot deadlock against a lock its own interrupted thread holds.
 *
 *   any thread, SIGSEGV handlers included
 *     dq_fault_handle(), dq_fault_acquire_range()
 *   set-up
 *     dq_fault_init()
 */
#include <errno.h>
#include <sys/mman.h>

#include "fault.h"

void dq_fault_init(DqFault *f, DqPageRegion *r, const DqFaultOps *ops)
{
    f->region = r;
    f->ops = *ops;
    f->obtains = 0;
    f->waits = 0;
}

/*
 * Bring page @index to at least @want (for an atomic access if @atomic).
 * When @need (PROT_* bits) is not 0 and the page's bound lacks it, set
 * *@beyond and give up: the program itself forbids the access, so
 * fetching the page would not help.
 * Returns DQ_OK or ops->obtain()'s error.
 * Context: any thread; takes PENDING around ops->obtain().
 */
static DqStatus fault_page(DqFault *f, size_t index, DqPageState want,
                           bool atomic, int need, bool *beyond)
{
    DqPageRegion *r = f->region;
    DqPageState have;
    DqStatus st;
    uint8_t b;
    int max;

    *beyond = false;
    for (;;) {
        b = dq_page_peek(r, index);
        if (b & DQ_PAGE_TRANSIT) {
            /* State and protection are changing: wait for both. */
            dq_page_wait(r, index, b);
            continue;
        }
        max = (b >> DQ_PAGE_MAX_SHIFT) & (PROT_READ | PROT_WRITE | PROT_EXEC);
        if ((max & need) != need) {
            *beyond = true;
            return DQ_OK;
        }
        have = (DqPageState)(b & DQ_PAGE_STATE_MASK);
        if (have >= want) {
            return DQ_OK;
        }
        if (b & DQ_PAGE_PENDING) {
            __atomic_fetch_add(&f->waits, 1, __ATOMIC_RELAXED);
            dq_page_wait(r, index, b);
            continue;
        }
        if (!dq_page_claim(r, index, b)) {
            continue;           /* the byte moved: look again */
        }
        __atomic_fetch_add(&f->obtains, 1, __ATOMIC_RELAXED);
        st = f->ops.obtain(f->ops.opaque, index, have, want, atomic);
        /* Wake the sleepers even on failure: they ask for themselves. */
        dq_page_unclaim(r, index);
        if (st != DQ_OK) {
            return st;
        }
    }
}

DqFaultResult dq_fault_handle(DqFault *f, uintptr_t addr, bool is_write,
                              bool is_atomic, DqStatus *status)
{
    int saved_errno = errno;
    DqFaultResult res;
    size_t index;
    bool beyond;
    DqStatus st;

    if (!dq_page_index(f->region, addr, &index)) {
        res = DQ_FAULT_NOT_OURS;
    } else {
        st = fault_page(f, index, is_write ? DQ_PAGE_M : DQ_PAGE_S,
                        is_atomic, is_write ? PROT_WRITE : PROT_READ,
                        &beyond);
        if (st != DQ_OK) {
            if (status) {
                *status = st;
            }
            res = DQ_FAULT_ERROR;
        } else {
            res = beyond ? DQ_FAULT_NOT_OURS : DQ_FAULT_HANDLED;
        }
    }
    errno = saved_errno;
    return res;
}

DqStatus dq_fault_acquire_range(DqFault *f, uintptr_t addr, size_t len,
                                bool write)
{
    DqPageRegion *r = f->region;
    int saved_errno = errno;
    size_t first, last, i;
    DqStatus st = DQ_OK;
    bool beyond;

    if (len == 0) {
        return DQ_OK;
    }
    if (addr + len - 1 < addr || !dq_page_index(r, addr, &first) ||
        !dq_page_index(r, addr + len - 1, &last)) {
        return DQ_ERR_RANGE;
    }
    for (i = first; i <= last && st == DQ_OK; i++) {
        /* Syscall buffers: never an atomic, never a lease. */
        st = fault_page(f, i, write ? DQ_PAGE_M : DQ_PAGE_S, false, 0,
                        &beyond);
    }
    errno = saved_errno;
    return st;
}
