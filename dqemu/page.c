/*
 * page.c - this node's MSI state per page, its protection and its data.
 *
 * One byte per page, packed four to a 32-bit word and changed only by
 * compare-and-swap on the whole word, so the word is also a futex: a
 * thread that must wait for a page sleeps on it, and every change that
 * can end a wait wakes it.  No mutex anywhere, so a SIGSEGV handler may
 * use all of this (fault.c) without deadlocking against the thread it
 * interrupted.
 *
 * Lock ordering and context:
 *
 *   PENDING bit of a page (fault.c; held across ops->obtain())
 *     TRANSIT bit of the same page (page_begin/page_end; held across at
 *                            most one pwrite or memcpy and two mprotects,
 *                            never while waiting for anything else)
 *
 *   No thread waits for PENDING while it holds TRANSIT.  Only the range
 *   changes (page_change_range) hold several TRANSIT bits, taken in
 *   address order, a batch at a time, so no two threads wait for each
 *   other's.  Taking TRANSIT never touches guest memory except the
 *   memcpy of a readable page that TRANSIT itself keeps readable, so no
 *   thread can fault while holding it, and a wait for TRANSIT lasts at
 *   most a few system calls (a batch's mprotects).  The transport's I/O
 *   thread takes TRANSIT (install, downgrade, set_state, copy_out) and
 *   never PENDING, so it never waits for a faulting thread (DESIGN.md §4:
 *   it also never takes mmap_lock or clone_lock).  dq_dsm_drop_range()
 *   takes PENDING like a fault would, then TRANSIT, so it waits for a
 *   fault in progress.  An asynchronous signal handler that interrupts a
 *   TRANSIT holder must not touch DSM memory: its fault would wait for
 *   the TRANSIT its own thread holds.
 *
 *   set-up / tear-down, while nothing else uses the region
 *     dq_page_region_init(), dq_page_region_destroy()
 *   I/O thread or faulting thread (or any thread; async-signal-safe)
 *     dq_page_install(), dq_page_set_state(), dq_page_set_state_ex(),
 *     dq_page_downgrade(), dq_page_copy_out()
 *   any thread (the embedding program's mprotect clamp)
 *     dq_page_set_max_prot(), dq_page_set_max_prot_range(),
 *     dq_page_set_state_range()
 *   any thread, signal handlers included, no lock
 *     dq_page_index(), dq_page_state(), dq_page_prot(), dq_page_peek(),
 *     dq_page_claim(), dq_page_unclaim(), dq_page_wait()
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE     /* also set by QEMU's build */
#endif
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "page.h"

#define PROT_ALL (PROT_READ | PROT_WRITE | PROT_EXEC)
/*
 * Pages a range change holds at once: enough that one mprotect covers a
 * run of them, few enough that a fault on one of them waits briefly.
 */
#define RANGE_BATCH 256

/* ---- the page byte ------------------------------------------------------- */

static uint32_t *page_word(const DqPageRegion *r, size_t index)
{
    return &r->words[index >> 2];
}

static unsigned page_bit(size_t index)
{
    return (unsigned)(index & 3) * 8;
}

static uint8_t page_byte(uint32_t word, size_t index)
{
    return (uint8_t)(word >> page_bit(index));
}

static uint32_t page_with_byte(uint32_t word, size_t index, uint8_t b)
{
    return (word & ~(UINT32_C(0xff) << page_bit(index))) |
           ((uint32_t)b << page_bit(index));
}

static uint8_t page_make(DqPageState state, int max_prot)
{
    return (uint8_t)(state | ((unsigned)max_prot << DQ_PAGE_MAX_SHIFT));
}

static DqPageState page_byte_state(uint8_t b)
{
    return (DqPageState)(b & DQ_PAGE_STATE_MASK);
}

static int page_byte_max(uint8_t b)
{
    return (b >> DQ_PAGE_MAX_SHIFT) & PROT_ALL;
}

/*
 * Replace the page's byte @old by @new; false if it is no longer @old.
 * Neighbours in the same word may change under us: only they make the
 * CAS retry, so this never spins on our own byte.
 */
static bool page_cas(const DqPageRegion *r, size_t index, uint8_t old,
                     uint8_t new)
{
    uint32_t *w = page_word(r, index);
    uint32_t cur = __atomic_load_n(w, __ATOMIC_ACQUIRE);

    for (;;) {
        if (page_byte(cur, index) != old) {
            return false;
        }
        if (__atomic_compare_exchange_n(w, &cur,
                                        page_with_byte(cur, index, new),
                                        false, __ATOMIC_ACQ_REL,
                                        __ATOMIC_ACQUIRE)) {
            return true;
        }
    }
}

/*
 * FUTEX_WAKE every sleeper on the word: the four pages share it, so each
 * woken thread re-checks its own page.  syscall() keeps this
 * async-signal-safe (it may set errno; fault.c restores it).
 */
static void page_wake(const DqPageRegion *r, size_t index)
{
    syscall(SYS_futex, page_word(r, index), FUTEX_WAKE_PRIVATE, INT_MAX,
            NULL, NULL, 0);
}

uint8_t dq_page_peek(const DqPageRegion *r, size_t index)
{
    return page_byte(__atomic_load_n(page_word(r, index), __ATOMIC_ACQUIRE),
                     index);
}

void dq_page_wait(DqPageRegion *r, size_t index, uint8_t seen)
{
    uint32_t *w = page_word(r, index);
    uint32_t cur = __atomic_load_n(w, __ATOMIC_ACQUIRE);
    uint8_t b;

    for (;;) {
        b = page_byte(cur, index);
        if ((b & ~DQ_PAGE_WAITERS) != (seen & ~DQ_PAGE_WAITERS) ||
            !(b & (DQ_PAGE_PENDING | DQ_PAGE_TRANSIT))) {
            return;
        }
        if (b & DQ_PAGE_WAITERS) {
            break;
        }
        /* Ask whoever clears PENDING or TRANSIT to wake us. */
        if (__atomic_compare_exchange_n(w, &cur,
                                        page_with_byte(cur, index,
                                                       b | DQ_PAGE_WAITERS),
                                        false, __ATOMIC_ACQ_REL,
                                        __ATOMIC_ACQUIRE)) {
            cur = page_with_byte(cur, index, b | DQ_PAGE_WAITERS);
            break;
        }
    }
    /*
     * EAGAIN if the word moved since @cur (maybe a neighbour: the caller
     * re-checks), EINTR on a signal: both just return.
     */
    syscall(SYS_futex, w, FUTEX_WAIT_PRIVATE, cur, NULL, NULL, 0);
}

bool dq_page_claim(DqPageRegion *r, size_t index, uint8_t seen)
{
    assert(!(seen & (DQ_PAGE_PENDING | DQ_PAGE_TRANSIT)));
    return page_cas(r, index, seen, seen | DQ_PAGE_PENDING);
}

void dq_page_unclaim(DqPageRegion *r, size_t index)
{
    uint8_t b;

    do {
        b = dq_page_peek(r, index);
        assert(b & DQ_PAGE_PENDING);
    } while (!page_cas(r, index, b,
                       b & ~(DQ_PAGE_PENDING | DQ_PAGE_WAITERS)));
    if (b & DQ_PAGE_WAITERS) {
        page_wake(r, index);
    }
}

/*
 * Take the page's TRANSIT bit, waiting while another thread holds it;
 * returns the byte as it was, without TRANSIT.
 */
static uint8_t page_begin(DqPageRegion *r, size_t index)
{
    uint8_t b;

    for (;;) {
        b = dq_page_peek(r, index);
        if (b & DQ_PAGE_TRANSIT) {
            dq_page_wait(r, index, b);
            continue;
        }
        if (page_cas(r, index, b, b | DQ_PAGE_TRANSIT)) {
            return b & ~DQ_PAGE_WAITERS;
        }
    }
}

/*
 * Publish the new state and bound, matching the protection just set,
 * drop TRANSIT and wake the waiters.  PENDING is left to its owner.
 * Context: the thread that holds TRANSIT (asserted).
 */
static void page_end(DqPageRegion *r, size_t index, DqPageState state,
                     int max_prot)
{
    uint8_t b;

    do {
        b = dq_page_peek(r, index);
        assert(b & DQ_PAGE_TRANSIT);
    } while (!page_cas(r, index, b,
                       page_make(state, max_prot) |
                       (b & DQ_PAGE_PENDING)));
    if (b & DQ_PAGE_WAITERS) {
        page_wake(r, index);
    }
}

/* ---- protection and data --------------------------------------------- */

int dq_page_state_prot(DqPageState state)
{
    switch (state) {
    case DQ_PAGE_S:
        return PROT_READ | PROT_EXEC;
    case DQ_PAGE_M:
        return PROT_ALL;
    default:
        return PROT_NONE;
    }
}

static int page_prot_of(uint8_t b)
{
    return dq_page_state_prot(page_byte_state(b)) & page_byte_max(b);
}

/*
 * What page_protect() is told when the page's real protection is not
 * known: the program replaced its mapping (a fresh mmap is read/write
 * whatever the page byte says), so the byte no longer describes it.
 */
#define PROT_UNKNOWN (-1)

/* mprotect one page unless it already has @prot. */
static bool page_protect(DqPageRegion *r, size_t index, int old, int prot)
{
    if (old == prot) {
        return true;
    }
    return mprotect((void *)dq_page_addr(r, index), r->page_size, prot) == 0;
}

/*
 * Through /proc/self/mem the kernel reaches a private mapping whatever
 * its protection (FOLL_FORCE), which is what lets data land while the
 * page is still PROT_NONE for every local thread.
 */
static bool page_mem_io(DqPageRegion *r, size_t index, void *buf, bool write)
{
    char *p = buf;
    off_t off = (off_t)dq_page_addr(r, index);
    size_t done = 0;
    ssize_t n;

    while (done < r->page_size) {
        n = write ? pwrite(r->mem_fd, p + done, r->page_size - done,
                           off + (off_t)done)
                  : pread(r->mem_fd, p + done, r->page_size - done,
                          off + (off_t)done);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return false;
        }
        done += (size_t)n;
    }
    return true;
}

static bool page_mem_write(DqPageRegion *r, size_t index, const void *data)
{
    /* pwrite only reads the buffer; the cast serves the shared helper. */
    return page_mem_io(r, index, (void *)data, true);
}

static bool page_mem_read(DqPageRegion *r, size_t index, void *buf)
{
    return page_mem_io(r, index, buf, false);
}

/* Copy out a page under TRANSIT, directly when @prot lets us read it. */
static bool page_read(DqPageRegion *r, size_t index, int prot, void *buf)
{
    if (prot & PROT_READ) {
        memcpy(buf, (const void *)dq_page_addr(r, index), r->page_size);
        return true;
    }
    return page_mem_read(r, index, buf);
}

/* ---- the region --------------------------------------------------------- */

DqStatus dq_page_region_init(DqPageRegion *r, void *base, size_t len,
                             DqPageState initial, int max_prot)
{
    long ps = sysconf(_SC_PAGESIZE);
    uintptr_t b = (uintptr_t)base;
    size_t nwords;

    memset(r, 0, sizeof(*r));
    r->mem_fd = -1;
    if (ps <= 0 || (ps & (ps - 1)) || len == 0 ||
        (b & ((uintptr_t)ps - 1)) || (len & ((size_t)ps - 1)) ||
        b + len < b || initial > DQ_PAGE_M || (max_prot & ~PROT_ALL)) {
        return DQ_ERR_RANGE;
    }
    r->base = b;
    r->len = len;
    r->page_size = (size_t)ps;
    r->page_shift = (unsigned)__builtin_ctzl((unsigned long)ps);
    r->pages = len >> r->page_shift;
    nwords = (r->pages + 3) / 4;
    r->words = calloc(nwords, sizeof(*r->words));
    if (!r->words) {
        return DQ_ERR_NOMEM;
    }
    /*
     * Four equal bytes per word: the byte order does not matter.  calloc
     * gave zeros already, which for a large region it has not even
     * backed with memory yet: keep it that way when zero is the byte.
     */
    if (page_make(initial, max_prot) != 0) {
        memset(r->words, page_make(initial, max_prot),
               nwords * sizeof(*r->words));
    }
    r->mem_fd = open("/proc/self/mem", O_RDWR | O_CLOEXEC);
    if (r->mem_fd < 0) {
        dq_page_region_destroy(r);
        return DQ_ERR_PAGE_MEM;
    }
    if (mprotect(base, len, dq_page_state_prot(initial) & max_prot) != 0) {
        dq_page_region_destroy(r);
        return DQ_ERR_PAGE_PROTECT;
    }
    return DQ_OK;
}

void dq_page_region_destroy(DqPageRegion *r)
{
    if (r->mem_fd >= 0) {
        close(r->mem_fd);
    }
    free(r->words);
    memset(r, 0, sizeof(*r));
    r->mem_fd = -1;
}

bool dq_page_index(const DqPageRegion *r, uintptr_t addr, size_t *index)
{
    if (addr < r->base || addr - r->base >= r->len) {
        return false;
    }
    *index = (addr - r->base) >> r->page_shift;
    return true;
}

DqPageState dq_page_state(const DqPageRegion *r, size_t index)
{
    return page_byte_state(dq_page_peek(r, index));
}

int dq_page_max_prot(const DqPageRegion *r, size_t index)
{
    return page_byte_max(dq_page_peek(r, index));
}

int dq_page_prot(const DqPageRegion *r, size_t index)
{
    return page_prot_of(dq_page_peek(r, index));
}

/* ---- state changes ------------------------------------------------------- */

DqStatus dq_page_install(DqPageRegion *r, size_t index, const void *data,
                         DqPageState state)
{
    uint8_t old;
    int max, prot;

    if (index >= r->pages || (state != DQ_PAGE_S && state != DQ_PAGE_M)) {
        return DQ_ERR_RANGE;
    }
    old = page_begin(r, index);
    max = page_byte_max(old);
    prot = page_prot_of(old);
    /* Nobody may see the page while it is only partly written. */
    if (!page_protect(r, index, prot, PROT_NONE)) {
        page_end(r, index, page_byte_state(old), max);
        return DQ_ERR_PAGE_PROTECT;
    }
    if (!page_mem_write(r, index, data)) {
        page_end(r, index, DQ_PAGE_I, max);
        return DQ_ERR_PAGE_MEM;
    }
    if (!page_protect(r, index, PROT_NONE,
                      dq_page_state_prot(state) & max)) {
        page_end(r, index, DQ_PAGE_I, max);
        return DQ_ERR_PAGE_PROTECT;
    }
    page_end(r, index, state, max);
    return DQ_OK;
}

DqStatus dq_page_set_state_ex(DqPageRegion *r, size_t index,
                              DqPageState state, bool force,
                              DqPageState *was)
{
    uint8_t old;
    int max;

    if (index >= r->pages || state > DQ_PAGE_M) {
        return DQ_ERR_RANGE;
    }
    old = page_begin(r, index);
    max = page_byte_max(old);
    if (was != NULL) {
        *was = page_byte_state(old);
    }
    if (!page_protect(r, index, force ? PROT_UNKNOWN : page_prot_of(old),
                      dq_page_state_prot(state) & max)) {
        page_end(r, index, page_byte_state(old), max);
        return DQ_ERR_PAGE_PROTECT;
    }
    page_end(r, index, state, max);
    return DQ_OK;
}

DqStatus dq_page_set_state(DqPageRegion *r, size_t index, DqPageState state)
{
    return dq_page_set_state_ex(r, index, state, false, NULL);
}

DqStatus dq_page_downgrade(DqPageRegion *r, size_t index, DqPageState state,
                           void *buf)
{
    uint8_t old;
    int max, prot;
    bool copied;

    if (index >= r->pages || (state != DQ_PAGE_I && state != DQ_PAGE_S)) {
        return DQ_ERR_RANGE;
    }
    old = page_begin(r, index);
    max = page_byte_max(old);
    if (state > page_byte_state(old)) {
        /* Not a downgrade: keep what we have, still copy it out. */
        state = page_byte_state(old);
    }
    prot = dq_page_state_prot(state) & max;
    if (!page_protect(r, index, page_prot_of(old), prot)) {
        page_end(r, index, page_byte_state(old), max);
        return DQ_ERR_PAGE_PROTECT;
    }
    /* Lowered first: no local write can land after this copy. */
    copied = page_read(r, index, prot, buf);
    page_end(r, index, state, max);
    return copied ? DQ_OK : DQ_ERR_PAGE_MEM;
}

DqStatus dq_page_copy_out(DqPageRegion *r, size_t index, void *buf)
{
    uint8_t old;
    bool copied;

    if (index >= r->pages) {
        return DQ_ERR_RANGE;
    }
    /* TRANSIT keeps a readable page readable while memcpy runs. */
    old = page_begin(r, index);
    copied = page_read(r, index, page_prot_of(old), buf);
    page_end(r, index, page_byte_state(old), page_byte_max(old));
    return copied ? DQ_OK : DQ_ERR_PAGE_MEM;
}

DqStatus dq_page_set_max_prot(DqPageRegion *r, size_t index, int prot)
{
    uint8_t old;
    DqPageState state;

    if (index >= r->pages || (prot & ~PROT_ALL)) {
        return DQ_ERR_RANGE;
    }
    old = page_begin(r, index);
    state = page_byte_state(old);
    /*
     * Always mprotect: this is where the program tells us about a page
     * whose mapping it may just have replaced (see PROT_UNKNOWN).
     */
    if (!page_protect(r, index, PROT_UNKNOWN,
                      dq_page_state_prot(state) & prot)) {
        page_end(r, index, state, page_byte_max(old));
        return DQ_ERR_PAGE_PROTECT;
    }
    page_end(r, index, state, prot);
    return DQ_OK;
}

/*
 * Change pages [@first, @first + @n) to @state (or keep each one's when
 * -1) and bound @max_prot (or keep when -1), always mprotecting (the
 * range changes are where the program tells us about fresh mappings).
 * Pages are taken RANGE_BATCH at a time, in address order, and each run
 * of consecutive pages that ends up with one protection gets one
 * mprotect: a 16 MB mapping is a handful of system calls, not 8192.  On
 * a failed mprotect the pages of that run keep their state and bound and
 * the change stops there.
 * Context: any thread; holds up to RANGE_BATCH TRANSIT bits.
 */
static DqStatus page_change_range(DqPageRegion *r, size_t first, size_t n,
                                  int state, int max_prot)
{
    uint8_t old[RANGE_BATCH];
    int prot[RANGE_BATCH];
    size_t done, cnt, k, run;
    DqStatus st = DQ_OK;
    DqPageState s;
    bool ok;
    int max;

    for (done = 0; done < n && st == DQ_OK; done += cnt) {
        cnt = n - done < RANGE_BATCH ? n - done : RANGE_BATCH;
        for (k = 0; k < cnt; k++) {
            old[k] = page_begin(r, first + done + k);
            s = state < 0 ? page_byte_state(old[k]) : (DqPageState)state;
            max = max_prot < 0 ? page_byte_max(old[k]) : max_prot;
            prot[k] = dq_page_state_prot(s) & max;
        }
        for (k = 0; k < cnt; k += run) {
            for (run = 1; k + run < cnt && prot[k + run] == prot[k]; run++) {
            }
            ok = st == DQ_OK &&
                 mprotect((void *)dq_page_addr(r, first + done + k),
                          run << r->page_shift, prot[k]) == 0;
            if (!ok && st == DQ_OK) {
                st = DQ_ERR_PAGE_PROTECT;
            }
            for (size_t j = k; j < k + run; j++) {
                s = !ok || state < 0 ? page_byte_state(old[j])
                                     : (DqPageState)state;
                max = !ok || max_prot < 0 ? page_byte_max(old[j]) : max_prot;
                page_end(r, first + done + j, s, max);
            }
        }
    }
    return st;
}

/* The pages of [@addr, @addr + @len): page-aligned and inside @r. */
static DqStatus page_range(const DqPageRegion *r, uintptr_t addr,
                           size_t len, size_t *first, size_t *n)
{
    *first = 0;
    *n = 0;
    if (len == 0) {
        return DQ_OK;
    }
    if (((addr | len) & (r->page_size - 1)) ||
        !dq_page_index(r, addr, first) ||
        len > r->len - (addr - r->base)) {
        return DQ_ERR_RANGE;
    }
    *n = len >> r->page_shift;
    return DQ_OK;
}

DqStatus dq_page_set_max_prot_range(DqPageRegion *r, uintptr_t addr,
                                    size_t len, int prot)
{
    size_t first, n;
    DqStatus st;

    if (prot & ~PROT_ALL) {
        return DQ_ERR_RANGE;
    }
    st = page_range(r, addr, len, &first, &n);
    return st != DQ_OK ? st : page_change_range(r, first, n, -1, prot);
}

DqStatus dq_page_set_state_range(DqPageRegion *r, size_t first, size_t n,
                                 DqPageState state)
{
    if (state > DQ_PAGE_M || first > r->pages || n > r->pages - first) {
        return DQ_ERR_RANGE;
    }
    return page_change_range(r, first, n, (int)state, -1);
}
