/*
 * page.h - this node's copy of the DSM pages: MSI state and protection.
 *
 * A region is memory the embedding program already mapped (QEMU's guest
 * space, or a test's mmap).  Each page has a local state, I, S or M,
 * enforced by host protection (PROT_NONE, PROT_READ, PROT_READ|WRITE),
 * and an upper bound set by the program (QEMU's own wanted protection):
 * the host protection is always state ∩ bound.  Page data comes and goes
 * through /proc/self/mem, so it is written while the page is still
 * inaccessible and no local thread sees a half-written page.
 */
#ifndef DQEMU_PAGE_H
#define DQEMU_PAGE_H

#include <sys/mman.h>           /* PROT_* for bounds and states */

#include "dqemu.h"

/* Ordered: a state allows every access a lower one allows. */
typedef enum DqPageState {
    DQ_PAGE_I = 0,              /* no copy: PROT_NONE */
    DQ_PAGE_S = 1,              /* a read-only copy: PROT_READ */
    DQ_PAGE_M = 2,              /* the only copy: PROT_READ|PROT_WRITE */
} DqPageState;

/*
 * One byte of page information, four pages per 32-bit word so the word
 * doubles as the futex the faulting threads sleep on (page.c).
 */
#define DQ_PAGE_STATE_MASK  0x03u  /* DqPageState */
#define DQ_PAGE_PENDING     0x04u  /* fault.c: one local request in flight */
#define DQ_PAGE_TRANSIT     0x08u  /* page.c: a protection change under way */
#define DQ_PAGE_WAITERS     0x10u  /* a thread sleeps until PENDING or
                                    * TRANSIT clears */
#define DQ_PAGE_MAX_SHIFT   5      /* the bound: PROT_READ|WRITE|EXEC << 5 */

/*
 * A registered region.  Fields are read-only outside page.c; the page
 * bytes are reached only through the functions below.
 */
typedef struct DqPageRegion {
    uintptr_t base;
    size_t len;
    size_t page_size;           /* the host page size, from sysconf */
    unsigned page_shift;
    size_t pages;
    int mem_fd;                 /* /proc/self/mem, open while registered */
    uint32_t *words;            /* page bytes, DQ_PAGE_* bits */
} DqPageRegion;

/*
 * Register [@base, @base + @len) (both page-aligned, @len > 0): every page
 * starts in @initial with bound @max_prot (PROT_* bits), and the whole
 * range is mprotected to match.  Opens /proc/self/mem and allocates the
 * page bytes here, once.  DQ_ERR_RANGE for bad input, DQ_ERR_NOMEM,
 * DQ_ERR_PAGE_MEM, DQ_ERR_PAGE_PROTECT.
 * Context: set-up, before any other thread uses @r or faults in it.
 */
DqStatus dq_page_region_init(DqPageRegion *r, void *base, size_t len,
                             DqPageState initial, int max_prot);

/*
 * Forget the region; its memory and protections stay as they are.
 * Context: tear-down, after every user of @r has stopped.
 */
void dq_page_region_destroy(DqPageRegion *r);

/*
 * The index of the page holding @addr; false outside the region.
 * Context: any thread, signal handlers included.
 */
bool dq_page_index(const DqPageRegion *r, uintptr_t addr, size_t *index);

/* Context: any thread, signal handlers included. */
static inline uintptr_t dq_page_addr(const DqPageRegion *r, size_t index)
{
    return r->base + (index << r->page_shift);
}

/*
 * The state and the bound last published; a change under way is not
 * visible until it is complete.
 * Context: any thread, signal handlers included.
 */
DqPageState dq_page_state(const DqPageRegion *r, size_t index);
int dq_page_max_prot(const DqPageRegion *r, size_t index);

/* The host protection the page has: state ∩ bound.  Context: any. */
int dq_page_prot(const DqPageRegion *r, size_t index);

/* The protection a state grants before the bound is applied. */
int dq_page_state_prot(DqPageState state);

/*
 * Make @data (one page) the page's contents in @state (S or M): the page
 * is made PROT_NONE if it is not already, written through /proc/self/mem,
 * and only then given state ∩ bound.  DQ_ERR_RANGE, DQ_ERR_PAGE_MEM,
 * DQ_ERR_PAGE_PROTECT (the page is then left I).  @data must not lie in
 * a DSM region.
 * Context: the transport's I/O thread or a faulting thread (any thread,
 * async-signal-safe: pwrite, mprotect, atomics, futex).  Takes and
 * releases the page's TRANSIT bit.
 */
DqStatus dq_page_install(DqPageRegion *r, size_t index, const void *data,
                         DqPageState state);

/*
 * Change the page's state without moving data: an upgrade grant (S to M)
 * or a drop of an S copy (S to I).  Leaving M this way discards local
 * writes; use dq_page_downgrade() to keep them.  Raising I to S or M
 * exposes whatever the page holds, so only do it when that is current.
 * DQ_ERR_RANGE, DQ_ERR_PAGE_PROTECT (state unchanged).
 * Context: as dq_page_install().
 */
DqStatus dq_page_set_state(DqPageRegion *r, size_t index, DqPageState state);

/*
 * dq_page_set_state(), and the state it replaced in *@was (when not
 * NULL).  With @force the page is mprotected even when its byte says the
 * protection is right already: for a page whose mapping the program has
 * just replaced (a fresh mmap is read/write whatever we recorded).
 * Context: as dq_page_install().
 */
DqStatus dq_page_set_state_ex(DqPageRegion *r, size_t index,
                              DqPageState state, bool force,
                              DqPageState *was);

/*
 * Lower the page to @state (S or I, from any state) and then copy its
 * contents into @buf (one page), in that order under one TRANSIT: copied
 * before the lowering, a local write landing in between would be lost.
 * This is the recall and writeback path.  DQ_ERR_RANGE,
 * DQ_ERR_PAGE_PROTECT (state unchanged, nothing copied), DQ_ERR_PAGE_MEM.
 * Context: as dq_page_install().
 */
DqStatus dq_page_downgrade(DqPageRegion *r, size_t index, DqPageState state,
                           void *buf);

/*
 * Copy the page's current contents into @buf (one page), in any state:
 * directly when readable, else through /proc/self/mem.  An M page may be
 * written meanwhile by local threads; the copy is then of some moment.
 * DQ_ERR_RANGE, DQ_ERR_PAGE_MEM.
 * Context: as dq_page_install().
 */
DqStatus dq_page_copy_out(DqPageRegion *r, size_t index, void *buf);

/*
 * Set the page's bound (PROT_* bits): what the program itself allows,
 * e.g. the guest's mprotect or QEMU's write-protection of translated
 * code.  The host protection becomes state ∩ @prot at once; the page is
 * always mprotected, so this also repairs the protection of a page whose
 * mapping the program replaced (mmap) since we last set it.
 * DQ_ERR_RANGE, DQ_ERR_PAGE_PROTECT (bound unchanged).
 * Context: any thread; takes and releases the page's TRANSIT bit.
 */
DqStatus dq_page_set_max_prot(DqPageRegion *r, size_t index, int prot);

/*
 * The same for every page of [@addr, @addr + @len), page-aligned and
 * inside the region: pages are taken a batch at a time, in address
 * order, and a run of pages that ends up with one protection gets one
 * mprotect.  Stops at the first failed mprotect (that run unchanged).
 * Context: any thread; takes a batch of TRANSIT bits at a time, in
 * address order.
 */
DqStatus dq_page_set_max_prot_range(DqPageRegion *r, uintptr_t addr,
                                    size_t len, int prot);

/*
 * Set pages [@first, @first + @n) to @state without moving data, each
 * keeping its bound, and re-apply their protection even where it looked
 * right (as dq_page_set_state_ex() with force), batched like
 * dq_page_set_max_prot_range().  DQ_ERR_RANGE, DQ_ERR_PAGE_PROTECT.
 * Context: as dq_page_set_max_prot_range().
 */
DqStatus dq_page_set_state_range(DqPageRegion *r, size_t first, size_t n,
                                 DqPageState state);

/* ---- for fault.c: the page byte and its futex ------------------------- */

/*
 * The page's byte now (DQ_PAGE_* bits).
 * Context: any thread, signal handlers included.
 */
uint8_t dq_page_peek(const DqPageRegion *r, size_t index);

/*
 * Set PENDING if the byte still equals @seen (which has neither PENDING
 * nor TRANSIT): true when this thread now owns the page's request.
 * Context: any thread, signal handlers included.
 */
bool dq_page_claim(DqPageRegion *r, size_t index, uint8_t seen);

/*
 * Clear PENDING and wake the waiters.
 * Context: the thread whose dq_page_claim() succeeded.
 */
void dq_page_unclaim(DqPageRegion *r, size_t index);

/*
 * Sleep until the byte may have changed from @seen (PENDING or TRANSIT
 * set), or a signal arrives; callers re-check, spurious returns happen.
 * Context: any thread, signal handlers included; no lock held.
 */
void dq_page_wait(DqPageRegion *r, size_t index, uint8_t seen);

#endif /* DQEMU_PAGE_H */
