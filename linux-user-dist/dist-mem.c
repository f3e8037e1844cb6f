/*
 * dist-mem.c - the guest address space as one DSM region on every node.
 *
 * The whole reserved guest space (reserved_va, at the same guest_base on
 * every node) is one region of the coherence engine (dqemu/dsm.h), homed
 * on the master.  Two things are kept apart:
 *
 * - the layout (which guest pages exist and with which protection) is
 *   QEMU's page flags; the master owns it and replays every change on the
 *   workers through the page_set_flags() hook, synchronously, so that a
 *   mapping a thread learned about exists on its node;
 * - the contents, which move page by page under the MSI protocol.  A new
 *   mapping (or an unmap) on the master makes the master the owner of its
 *   pages with whatever its own memory now holds (zeros, file data), and
 *   every worker drops its copies.
 *
 * Host protection is always QEMU's wanted protection ∩ the DSM state's:
 * QEMU's own mprotect calls (target_mprotect, page_protect for translated
 * code, page_unprotect) come here and set the engine's per-page bound
 * instead.  SIGSEGV reaches the engine before QEMU looks at it; the engine
 * declines faults beyond the bound, which QEMU then handles as before
 * (translated-code write protection, or a guest SIGSEGV).
 *
 * Translated code of a page another node writes: the engine reports each
 * page this node loses (on_page_dropped, possibly from a signal handler);
 * pages that held translated code are marked, and the service thread
 * invalidates their translations under mmap_lock, which is all
 * page_unprotect needs for the same job.
 */
#include "qemu/osdep.h"
#include "qemu.h"
#include "user-internals.h"
#include "user-mmap.h"
#include "user/page-protection.h"
#include "exec/exec-all.h"
#include "dist-hooks.h"
#include "dist-internal.h"
#include "dist-wire.h"
#include "dsm.h"
#include "hostinsn.h"

static bool mem_attached;
static uintptr_t mem_base;      /* g2h(0) */
static size_t mem_len;          /* reserved_va + 1 */
static size_t mem_pages;
static unsigned mem_shift;
/* Per page: translated code was made from it (set under mmap_lock). */
static unsigned long *code_pages;
/* Per page: its translations must go (set from any context). */
static unsigned long *code_stale;
/* Some bit of code_stale may be set: a cheap test for the fault path. */
static int code_stale_any;
/*
 * Per page: the host protection QEMU wants (the engine's bound), kept
 * here too so that a fork child can restore it without mmap_lock, which
 * QEMU's fork_start() holds across fork().
 */
static uint8_t *wanted_prot;

static void dist_note_wanted(uintptr_t h, size_t len, int prot)
{
    size_t i = (h - mem_base) >> mem_shift;
    size_t n = len >> mem_shift;

    if (i < mem_pages) {
        memset(wanted_prot + i, prot, MIN(n, mem_pages - i));
    }
}

#define BITS_PER_WORD (8 * sizeof(unsigned long))

static inline void bit_set_atomic(unsigned long *map, size_t i)
{
    __atomic_fetch_or(&map[i / BITS_PER_WORD], 1ul << (i % BITS_PER_WORD),
                      __ATOMIC_RELAXED);
}

static inline bool bit_test(const unsigned long *map, size_t i)
{
    return __atomic_load_n(&map[i / BITS_PER_WORD], __ATOMIC_RELAXED) &
           (1ul << (i % BITS_PER_WORD));
}

/* QEMU's wanted host protection for a page with @flags (target_to_host_prot
 * plus the translated-code write protection: PAGE_WRITE cleared). */
static int dist_prot_of_flags(int flags)
{
    int prot = 0;

    if (!(flags & PAGE_VALID)) {
        return PROT_NONE;
    }
    if (flags & (PAGE_READ | PAGE_EXEC)) {
        prot |= PROT_READ;
    }
    if (flags & PAGE_WRITE) {
        prot |= PROT_READ | PROT_WRITE;
    }
    return prot;
}

/* ---- engine callbacks ---------------------------------------------------- */

/* Async-signal-safe: may run in a faulting thread's SIGSEGV handler. */
static void dist_mem_page_dropped(void *opaque, uintptr_t page_addr)
{
    size_t i = (page_addr - mem_base) >> mem_shift;

    if (i < mem_pages && bit_test(code_pages, i)) {
        bit_set_atomic(code_stale, i);
        __atomic_store_n(&code_stale_any, 1, __ATOMIC_RELEASE);
        dist_node_kick_service();
    }
}

/*
 * Invalidate the translations of every page marked stale.  Runs on the
 * service thread, and -- so that no stale translation can run once the
 * writer's later stores or a syscall result became visible here -- in a
 * thread right after a fault or a delegated call returned, inside the
 * SIGSEGV handler if need be, as page_unprotect() does.
 */
void dist_mem_flush_code(void)
{
    size_t w, words = (mem_pages + BITS_PER_WORD - 1) / BITS_PER_WORD;

    if (!mem_attached ||
        !__atomic_exchange_n(&code_stale_any, 0, __ATOMIC_ACQ_REL)) {
        return;
    }
    for (w = 0; w < words; w++) {
        unsigned long bits;

        if (__atomic_load_n(&code_stale[w], __ATOMIC_RELAXED) == 0) {
            continue;
        }
        bits = __atomic_exchange_n(&code_stale[w], 0, __ATOMIC_ACQ_REL);
        mmap_lock();
        while (bits) {
            size_t i = w * BITS_PER_WORD + __builtin_ctzl(bits);
            target_ulong start = (target_ulong)(i << mem_shift);

            bits &= bits - 1;
            tb_invalidate_phys_range(start, start + (1ul << mem_shift) - 1);
            __atomic_fetch_and(&code_pages[i / BITS_PER_WORD],
                               ~(1ul << (i % BITS_PER_WORD)), __ATOMIC_RELAXED);
        }
        mmap_unlock();
    }
}

void dist_mem_attach(void)
{
    char err[DQ_ERRBUF_SIZE + 128];
    DqDsmConfig cfg;
    size_t words, region_lo;

    mem_base = (uintptr_t)g2h_untagged(0);
    mem_len = (size_t)reserved_va + 1;
    mem_shift = ctz32(qemu_real_host_page_size());
    mem_pages = mem_len >> mem_shift;
    if (reserved_va == 0 || (mem_len & ((1ul << mem_shift) - 1))) {
        dist_fatal("multi-node runs need a reserved guest space (-R), "
                   "got 0x%lx", reserved_va);
    }
    words = (mem_pages + BITS_PER_WORD - 1) / BITS_PER_WORD;
    code_pages = g_new0(unsigned long, words);
    code_stale = g_new0(unsigned long, words);
    wanted_prot = g_new0(uint8_t, mem_pages);

    memset(&cfg, 0, sizeof(cfg));
    cfg.xport.node_id = dist_node_id;
    cfg.xport.node_count = dist_node_count;
    /*
     * With guest_base 0 (an identity-mapped 32-bit guest) the host keeps
     * the pages below mmap_min_addr; the guest cannot map them either, so
     * the region starts above them.
     */
    region_lo = guest_base ? 0 : ROUND_UP(mmap_min_addr, 1ul << mem_shift);
    cfg.base = (void *)(mem_base + region_lo);
    cfg.len = mem_len - region_lo;
    cfg.home_policy = DQ_HOME_MASTER;
    cfg.initial_bound = PROT_NONE;
    cfg.on_page_dropped = dist_mem_page_dropped;
    /* The master's choice: every node got it with the configuration. */
    cfg.lease_ns = dist_options.atomic_lease_us < 0 ? DQ_DSM_LEASE_DEFAULT_NS
                   : (uint64_t)dist_options.atomic_lease_us * 1000;
    if (dq_dsm_attach(&cfg, dist_xport, err, sizeof(err)) != DQ_OK) {
        dist_fatal("cannot share the guest memory: %s", err);
    }
    mem_attached = true;
}

void dist_mem_detach(void)
{
    size_t i, run;

    if (!mem_attached) {
        return;
    }
    mem_attached = false;
    /* Every page as QEMU wants it: the coherence states no longer apply. */
    for (i = 0; i < mem_pages; i = run) {
        for (run = i + 1; run < mem_pages && wanted_prot[run] == wanted_prot[i];
             run++) {
        }
        if (wanted_prot[i] != PROT_NONE) {
            mprotect((void *)(mem_base + (i << mem_shift)),
                     (run - i) << mem_shift, wanted_prot[i]);
        }
    }
}

/* ---- hooks from QEMU --------------------------------------------------- */

void dist_keep_page_faults(sigset_t *set)
{
    if (mem_attached) {
        sigdelset(set, SIGSEGV);
    }
}

bool dist_sigsegv(uintptr_t host_addr, bool is_write, uintptr_t host_pc)
{
    DqStatus st = DQ_OK;
    DqFaultResult r;
    int saved_errno;

    if (!mem_attached) {
        return false;
    }
    saved_errno = errno;
    /* Only a write can need M; a load-exclusive fetches S (docs/dsm.md). */
    r = dq_dsm_fault_ex(host_addr, is_write,
                        is_write && dq_host_insn_is_atomic((const uint8_t *)
                                                           host_pc), &st);
    if (r == DQ_FAULT_HANDLED) {
        /*
         * Not when this thread was interrupted inside mmap_lock (say,
         * translating): QEMU's structures may be half-changed; the
         * service thread will do it.
         */
        if (!have_mmap_lock()) {
            dist_mem_flush_code();
        }
        errno = saved_errno;
        return true;
    }
    errno = saved_errno;
    if (r == DQ_FAULT_ERROR) {
        char msg[192];
        int n;

        /*
         * A page is out of reach because a node failed: the failure path
         * (service thread, transport) names the node and ends the run in
         * a moment; this thread waits for it rather than speak first.
         */
        for (n = 0; n < 30; n++) {
            struct timespec ts = { 0, 100 * 1000 * 1000 };

            nanosleep(&ts, NULL);
        }

        n = snprintf(msg, sizeof(msg), "dqemu-" TARGET_NAME ": node %u: "
                     "cannot get guest page 0x%lx: %s\n", dist_node_id,
                     (unsigned long)(host_addr - mem_base),
                     dq_status_str(st));
        if (write(2, msg, MIN(n, (int)sizeof(msg) - 1)) < 0) {
            /* Nothing left to tell anyone. */
        }
        _exit(EXIT_FAILURE);
    }
    return false;
}

int dist_mprotect(void *host, size_t len, int prot)
{
    DqStatus st;

    if (!mem_attached) {
        return mprotect(host, len, prot);
    }
    st = dq_dsm_set_bound((uintptr_t)host, len, prot);
    dist_note_wanted((uintptr_t)host, len, prot);
    if (st != DQ_OK) {
        errno = st == DQ_ERR_RANGE ? EINVAL : ENOMEM;
        return -1;
    }
    return 0;
}

void dist_page_has_code(target_ulong addr)
{
    size_t i = (size_t)addr >> mem_shift;

    if (mem_attached && i < mem_pages) {
        bit_set_atomic(code_pages, i);
    }
}

bool dist_mem_acquire(abi_ulong addr, abi_ulong len, bool write)
{
    uintptr_t start, end;

    if (!mem_attached || len == 0) {
        return true;
    }
    start = (uintptr_t)g2h_untagged(addr) & ~((1ul << mem_shift) - 1);
    end = ROUND_UP((uintptr_t)g2h_untagged(addr) + len, 1ul << mem_shift);
    return dq_dsm_acquire_range(start, end - start, write) == DQ_OK;
}

bool dist_access_ok(int type, abi_ulong addr, abi_ulong size)
{
    if (!mem_attached || size == 0 || type == 0) {
        return true;
    }
    if (!dist_mem_acquire(addr, size, type & PAGE_WRITE)) {
        /* Only a failing cluster gets here; the failure path reports it. */
        return false;
    }
    return true;
}

/*
 * Only buffers of a system call get a private copy.  QEMU code outside
 * system calls has been seen to rely on lock_user() returning the guest
 * memory itself (riscv64's setup_rt_frame() never unlocks its frame), and
 * its accesses fault and fetch pages like any other.  A VERIFY_NONE range
 * is an address range the kernel looks at (mincore), not a buffer.
 */
__thread bool dist_in_syscall;

void *dist_lock_user(int type, void *host_addr, ssize_t len, bool copy)
{
    if (!mem_attached || len <= 0 || !dist_in_syscall || type == VERIFY_NONE) {
        return host_addr;
    }
    return copy ? g_memdup2(host_addr, len) : g_malloc0(len);
}

void dist_unlock_user(void *host_ptr, abi_ulong guest_addr, ssize_t len)
{
    void *direct;

    if (host_ptr == NULL) {
        return;
    }
    direct = g2h(thread_cpu, guest_addr);
    if (host_ptr == direct) {
        return;
    }
    if (len > 0) {
        memcpy(direct, host_ptr, len);
    }
    g_free(host_ptr);
}

/* ---- the layout --------------------------------------------------------- */

/*
 * One change is (start, last, flags): a page_set_flags() call.  A layout
 * message is a u32 count followed by that many changes.
 */
static void dist_wr_change(DistWr *w, target_ulong start, target_ulong last,
                           int flags)
{
    dist_wr_u64(w, start);
    dist_wr_u64(w, last);
    dist_wr_u32(w, flags);
}

typedef struct SnapshotWalk {
    DistWr w;
    uint32_t count;
} SnapshotWalk;

static int dist_snapshot_region(void *opaque, target_ulong start,
                                target_ulong end, unsigned long flags)
{
    SnapshotWalk *s = opaque;

    dist_wr_change(&s->w, start, end - 1, (int)flags | PAGE_RESET);
    s->count++;
    return 0;
}

uint8_t *dist_mem_layout_snapshot(size_t *len)
{
    SnapshotWalk s;
    DistWr out;
    uint8_t *buf;

    dist_wr_init(&s.w);
    s.count = 0;
    walk_memory_regions(&s, dist_snapshot_region);
    dist_wr_init(&out);
    dist_wr_u32(&out, s.count);
    dist_wr_bytes(&out, dist_wr_data(&s.w), dist_wr_len(&s.w));
    dist_wr_free(&s.w);
    *len = dist_wr_len(&out);
    buf = g_byte_array_free(out.buf, false);
    return buf;
}

static int dist_claim_region(void *opaque, target_ulong start,
                             target_ulong end, unsigned long flags)
{
    uintptr_t h = (uintptr_t)g2h_untagged(start);
    size_t len = end - start;

    dist_note_wanted(h, len, dist_prot_of_flags(flags));
    if (dq_dsm_claim_range(h, len) != DQ_OK ||
        dq_dsm_set_bound(h, len, dist_prot_of_flags(flags)) != DQ_OK) {
        dist_fatal("cannot share guest pages 0x" TARGET_FMT_lx "..0x"
                   TARGET_FMT_lx, start, end - 1);
    }
    return 0;
}

void dist_mem_claim_all(void)
{
    walk_memory_regions(NULL, dist_claim_region);
}

/* One engine operation on [h, h + len), as page_set_flags() asked. */
static DqStatus dist_mem_op(bool fresh, uintptr_t h, size_t len, int prot)
{
    DqStatus st = DQ_OK;

    if (fresh) {
        st = dist_node_id == 0 ? dq_dsm_claim_range(h, len)
                               : dq_dsm_drop_range(h, len);
    }
    if (st == DQ_OK) {
        st = dq_dsm_set_bound(h, len, prot);
    }
    return st;
}

/*
 * Make the engine agree with a page_set_flags() that just happened on
 * this node.  QEMU can leave host holes inside the reserved guest space
 * (its mremap shrink re-reserves the wrong tail), where the engine cannot
 * set a protection; when the whole range fails, go page by page and put
 * the reservation (PROT_NONE) back over any hole first, as QEMU meant to.
 * Context: mmap_lock held.
 */
static void dist_mem_follow_flags(target_ulong start, target_ulong last,
                                  int flags, bool reset)
{
    uintptr_t h = (uintptr_t)g2h_untagged(start);
    size_t len = (size_t)(last - start) + 1;
    size_t ps = 1ul << mem_shift, off;
    bool fresh = reset || !(flags & PAGE_VALID);
    int prot = dist_prot_of_flags(flags);
    DqStatus st;

    dist_note_wanted(h, len, prot);
    if (dist_mem_op(fresh, h, len, prot) == DQ_OK) {
        return;
    }
    for (off = 0; off < len; off += ps) {
        void *page = (void *)(h + off);
        unsigned char in_core;

        if (mincore(page, ps, &in_core) < 0 && errno == ENOMEM &&
            mmap(page, ps, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS |
                 MAP_NORESERVE | MAP_FIXED, -1, 0) == MAP_FAILED) {
            dist_fatal("cannot reserve guest page 0x" TARGET_FMT_lx ": %s",
                       (target_ulong)(start + off), strerror(errno));
        }
        st = dist_mem_op(fresh, h + off, ps, prot);
        if (st != DQ_OK) {
            dist_fatal("cannot follow the guest layout at 0x" TARGET_FMT_lx
                       ": %s", (target_ulong)(start + off),
                       dq_status_str(st));
        }
    }
}

void dist_page_set_flags(target_ulong start, target_ulong last, int flags,
                         bool reset)
{
    DistWr w;

    if (!mem_attached || dist_node_id != 0) {
        return;     /* workers replay under dist_mem_apply_layout() */
    }
    dist_mem_follow_flags(start, last, flags, reset);
    dist_wr_init(&w);
    dist_wr_u32(&w, 1);
    dist_wr_change(&w, start, last, flags | (reset ? PAGE_RESET : 0));
    dist_node_broadcast(DIST_OP_LAYOUT, 0, 0, dist_wr_data(&w),
                        dist_wr_len(&w));
    dist_wr_free(&w);
}

void dist_mem_apply_layout(const uint8_t *buf, size_t len)
{
    DistRd r;
    uint32_t n, i;

    dist_rd_init(&r, buf, len);
    n = dist_rd_u32(&r);
    mmap_lock();
    for (i = 0; i < n; i++) {
        target_ulong start = dist_rd_u64(&r);
        target_ulong last = dist_rd_u64(&r);
        int flags = dist_rd_u32(&r);
        bool reset = flags & PAGE_RESET;

        if (r.bad || start > last || last > reserved_va ||
            (start & ~TARGET_PAGE_MASK) || (~last & ~TARGET_PAGE_MASK)) {
            mmap_unlock();
            dist_fatal("malformed layout change from the master");
        }
        /* Translated-code protection is this node's business. */
        if (flags & PAGE_WRITE_ORG) {
            flags |= PAGE_WRITE;
        }
        flags &= ~PAGE_WRITE_ORG;
        if (!(flags & PAGE_VALID)) {
            flags = 0;
        }
        page_set_flags(start, last, flags);
        dist_mem_follow_flags(start, last, flags, reset);
    }
    mmap_unlock();
    if (!dist_rd_done(&r)) {
        dist_fatal("malformed layout message from the master");
    }
}

void dist_mem_zeroed(abi_ulong addr, abi_ulong len)
{
    uintptr_t h = (uintptr_t)g2h_untagged(addr);
    DistWr w;

    if (!mem_attached || dist_node_id != 0 || len == 0) {
        return;
    }
    len = ROUND_UP(len, 1ul << mem_shift);
    if (dq_dsm_claim_range(h, len) != DQ_OK) {
        dist_fatal("cannot take zeroed pages 0x" TARGET_ABI_FMT_lx, addr);
    }
    dist_wr_init(&w);
    dist_wr_u64(&w, addr);
    dist_wr_u64(&w, len);
    dist_node_broadcast(DIST_OP_DROP, 0, 0, dist_wr_data(&w),
                        dist_wr_len(&w));
    dist_wr_free(&w);
}

void dist_mem_apply_drop(const uint8_t *buf, size_t len)
{
    DistRd r;
    uint64_t addr, n;

    dist_rd_init(&r, buf, len);
    addr = dist_rd_u64(&r);
    n = dist_rd_u64(&r);
    if (!dist_rd_done(&r) || addr > reserved_va || n > reserved_va + 1 - addr) {
        dist_fatal("malformed drop message from the master");
    }
    if (dq_dsm_drop_range((uintptr_t)g2h_untagged(addr), n) != DQ_OK) {
        dist_fatal("cannot drop zeroed pages 0x%" PRIx64, addr);
    }
}
