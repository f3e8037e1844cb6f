/*
 * dsm.c - the coherence engine (dsm.h): faults become requests to homes,
 * homes run the directory, holders obey INVAL and RECALL.
 *
 * Threads and what they own:
 *
 *   faulting threads (SIGSEGV handlers): a request slot each while they
 *     wait; dq_xport_request() to a remote home, or, for a page homed
 *     here, the directory itself under d->home_lock.  No allocation.
 *   I/O thread (transport callbacks): INVAL and RECALL for pages held
 *     here, late installs, and the home side for remote requests, under
 *     d->home_lock.  Home messages leave straight to the socket.  Its
 *     timer (dq_xport_arm_timer) answers the recalls a lease held back.
 *
 *   other threads of the program: dq_dsm_claim_range() (home_lock, then
 *     TRANSIT), dq_dsm_drop_range() (PENDING then TRANSIT, like a fault),
 *     dq_dsm_set_bound() (TRANSIT only).
 *
 * So a request crosses no thread of ours at the home, and a local request
 * needs no other thread at all unless copies elsewhere must go: every
 * hand-off costs a wake-up, 10-20 us on this kind of machine, and a fault
 * is a chain of them.  The transport is the engine's own (dq_dsm_start)
 * or the program's (dq_dsm_attach), whose callbacks forward to us.
 *
 * Locks: d->home_lock (the directory, the entries, the home copies, lost,
 * the self events, the deferred drop notes, the queue of recalls held
 * back by leases) comes before the transport's
 * x->lock and sock_lock, and before a page's TRANSIT bit; the interrupted
 * thread never holds it (it touches no DSM memory inside).  A faulting
 * thread holds its page's PENDING bit when it takes home_lock, so nothing
 * takes PENDING under home_lock.  A slot's install word is taken by CAS by
 * the faulting thread or the I/O thread, whichever comes first; the other
 * waits for it to reach INSTALL_DONE, which needs no other thread.
 *
 * Memory: every per-page table is reserved with MAP_NORESERVE and left
 * untouched until a page is used (directory entries are initialised on
 * first use, entry_ok says which), so the guest space of a 32-bit guest,
 * 4 GiB and 1 Mi pages, costs a few MB at start-up instead of 75 MB and
 * a quarter of a second.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "dsm.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "dir.h"
#include "lease.h"

#define INSTALL_NONE    0u
#define INSTALL_BUSY    1u
#define INSTALL_DONE    2u
#define REPLY_NONE      DQ_MSG__COUNT   /* no reply in the slot yet */
/*
 * Events the home gives itself: each directory call makes at most one
 * (its own copy invalidated or recalled), consumed right after it.
 */
#define SELF_EVENTS     4
#define RETRY_SLEEP_NS  1000000L
/*
 * Pages dropped by the home's own events, noted under home_lock and
 * reported once it is released.  One directory event drops at most its
 * own page (coalesced), and the failure loop reports page by page, so
 * two would do.
 */
#define DROP_NOTES      8
/* dq_dsm_stop(): how long the I/O thread gets to answer held-back recalls. */
#define LEASE_FLUSH_MS  1000

/* One fault in progress: preallocated, claimed by CAS. */
typedef struct DqDsmSlot {
    uint32_t busy;              /* claimed by a faulting thread */
    uint32_t done;              /* local home: futex, 1 when answered */
    uint32_t install;           /* INSTALL_*: futex */
    uint32_t pin;               /* I/O thread looking at the slot */
    DqStatus status;            /* local home: the answer */
    DqStatus install_status;
    size_t index;
    DqDirEventKind kind;        /* local home: READ, WRITE, UPGRADE */
    bool lease;                 /* an atomic's write: its M grant leases */
    DqMsg req;
    DqMsg reply;
    uint8_t *buf;               /* reply buffer, buflen bytes */
} DqDsmSlot;

/* An event the home gives itself (its own INVAL/RECALL answered). */
typedef struct DqDsmEv {
    struct DqDsmEv *next;
    size_t index;
    DqDirEvent ev;
    uint8_t data[];             /* one page when ev.has_data */
} DqDsmEv;

typedef struct DqDsm {
    DqDsmConfig cfg;
    unsigned me;
    unsigned nodes;
    size_t ps;
    size_t pages;
    unsigned timeout_ms;
    bool own_xport;             /* dq_dsm_start() made it: stop frees it */
    DqPageRegion region;
    DqFault fault;
    DqHome home;
    DqDir dir;
    bool dir_ok, home_ok, region_ok;
    /* Entries of pages homed here, initialised on first use (entry_of). */
    DqDirEntry *entries;
    uint64_t *entry_ok;         /* bit per page: entries[i] initialised */
    DqDirEntry scratch;         /* takes failure notices when none is used */
    uint8_t *home_valid;        /* home copy ever stored: else zeros */
    const uint8_t *zero_page;
    /*
     * Per page homed here: its last data died with a node (that node's id
     * + 1).  Requests for it are refused from then on, never answered
     * with the stale home copy.  Written under home_lock, read
     * atomically by the I/O thread before it takes the lock.
     */
    uint8_t *lost;
    uint8_t *home_copy;
    DqXport *x;                 /* atomic: set once started */
    DqDsmSlot *slots;
    unsigned nslots;
    uint8_t *slot_bufs;
    size_t buflen;
    DqDsmSlot **pending;        /* per page: slot of a remote request */
    uint8_t *io_buf;            /* I/O thread: recalled page */

    /* Leases (lease.h). */
    uint64_t lease_ns;          /* atomic: dq_dsm_set_lease_ns */
    bool leases_off;            /* atomic: stopping, every lease is over */
    uint64_t *lease;            /* per page: its lease word */
    DqLeaseDefer *defer_rec;    /* per page: a recall held back */
    DqLeaseQueue deferq;        /* under home_lock (len: atomic) */

    /* The home side: under home_lock. */
    pthread_mutex_t home_lock;
    bool home_lock_ok;
    pthread_t home_holder;      /* valid while home_held */
    bool home_held;
    uint64_t failed_later;      /* nodes that failed meanwhile */
    DqDsmEv *self_head, *self_tail;
    DqDsmEv *self_free;         /* preallocated: no malloc in a handler */
    size_t *serve;
    size_t nserve;
    uint64_t *txn_dir;          /* per page: the directory's INVAL/RECALL id */
    uint64_t *txn_wire;         /* ... and the transport id it travels as */
    uint8_t *serve_flag;
    const uint8_t *cur_data;
    size_t drop_note[DROP_NOTES]; /* pages for on_page_dropped, distinct */
    unsigned ndrop;

    DqDsmCounters c;
} DqDsm;

static DqDsm dsm_g;
static DqDsm *dsm_live;
/*
 * Threads inside dq_dsm_handle_message() / handle_peer_failed() of an
 * attached engine; dq_dsm_stop() waits for them after unpublishing.
 */
static uint32_t dsm_users;

#define CNT(d, f) __atomic_fetch_add(&(d)->c.f, 1, __ATOMIC_RELAXED)
#define CNT_ADD(d, f, n) \
    __atomic_fetch_add(&(d)->c.f, (uint64_t)(n), __ATOMIC_RELAXED)

/* ---- small helpers (async-signal-safe) ------------------------------- */

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t now_ms(void)
{
    return now_ns() / 1000000;
}

static void nap(long ns)
{
    struct timespec ts = { 0, ns };

    nanosleep(&ts, NULL);
}

static void futex_wait_ms(uint32_t *word, uint32_t val, unsigned ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

    syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, val, &ts, NULL, 0);
}

static void futex_wake_all(uint32_t *word)
{
    syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, INT32_MAX, NULL, NULL, 0);
}

static uint64_t page_addr(DqDsm *d, size_t index)
{
    return (uint64_t)dq_page_addr(&d->region, index);
}

static bool is_homed(DqDsm *d, size_t index)
{
    return dq_home_of(&d->home, index) == d->me;
}

/*
 * Zero-filled memory the kernel backs only when it is touched, without
 * charging it against the commit limit: the per-page tables and home
 * copies are as large as the region, but only used pages cost anything.
 */
static void *lazy_alloc(size_t n)
{
    void *p = mmap(NULL, n ? n : 1, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

    return p == MAP_FAILED ? NULL : p;
}

static void lazy_free(void *p, size_t n)
{
    if (p != NULL) {
        munmap(p, n ? n : 1);
    }
}

/*
 * The directory entry of page @index, homed here; a page nobody used yet
 * gets its UNCACHED entry now.  Context: home_lock held.
 */
static DqDirEntry *entry_of(DqDsm *d, size_t index)
{
    uint64_t bit = UINT64_C(1) << (index % 64);

    assert(is_homed(d, index));
    if (!(d->entry_ok[index / 64] & bit)) {
        dq_dir_entry_init(&d->entries[index], page_addr(d, index),
                          DQ_DIR_NO_NODE);
        d->entry_ok[index / 64] |= bit;
    }
    return &d->entries[index];
}

static DqXport *xport_of(DqDsm *d)
{
    DqXport *x;
    int i;

    /* The I/O thread may call in before dq_xport_start() has returned. */
    for (i = 0; i < 1000; i++) {
        x = __atomic_load_n(&d->x, __ATOMIC_ACQUIRE);
        if (x != NULL) {
            return x;
        }
        nap(RETRY_SLEEP_NS);
    }
    return NULL;
}

static DqPageState mode_state(DqDirMode m)
{
    return m == DQ_DIR_MODE_M ? DQ_PAGE_M :
           m == DQ_DIR_MODE_S ? DQ_PAGE_S : DQ_PAGE_I;
}

static DqProtoState mode_proto(DqDirMode m)
{
    return m == DQ_DIR_MODE_M ? DQ_PROTO_STATE_M :
           m == DQ_DIR_MODE_S ? DQ_PROTO_STATE_S : DQ_PROTO_STATE_I;
}

/* ---- leases (lease.h, docs/dsm.md "Leases") ------------------------- */

/* A lease length as the engine uses it: at most DQ_DSM_LEASE_MAX_NS. */
static uint64_t lease_ns_capped(uint64_t ns)
{
    return ns > DQ_DSM_LEASE_MAX_NS ? DQ_DSM_LEASE_MAX_NS : ns;
}

/*
 * The end of page @index's lease if it still runs at @now, else 0 (and
 * always 0 once dq_dsm_stop() has begun).  Context: any thread.
 */
static uint64_t lease_until(DqDsm *d, size_t index, uint64_t now)
{
    if (__atomic_load_n(&d->leases_off, __ATOMIC_SEQ_CST)) {
        return 0;
    }
    return dq_lease_until(&d->lease[index], now);
}

/*
 * The grant answering an atomic's write is installed in M: the lease is
 * open until the faulting thread is back (lease_back), within the cap.
 * Context: whoever installed it, before the faulting thread can return.
 */
static void lease_begin(DqDsm *d, size_t index)
{
    dq_lease_open(&d->lease[index], now_ns(), DQ_DSM_LEASE_OPEN_CAP_NS);
    CNT(d, lease_grants);
}

/* The page is leaving M on a recall: whatever lease it had is over. */
static void lease_end(DqDsm *d, size_t index)
{
    if (__atomic_load_n(&d->lease[index], __ATOMIC_RELAXED) != 0) {
        dq_lease_clear(&d->lease[index]);
    }
}

/*
 * A recall of page @index (M here) arrived: hold it back if the page's
 * lease runs, and have the timer answer it when the lease ends.  True if
 * held back; false to answer now (no lease, or it ended).
 * Context: home_lock held.
 */
static bool lease_defer(DqDsm *d, size_t index, DqLeaseDeferKind kind,
                        unsigned src, uint64_t id, uint8_t keep)
{
    uint64_t now = now_ns();
    DqLeaseDefer r;
    DqXport *x;

    if (lease_until(d, index, now) == 0) {
        lease_end(d, index);
        return false;
    }
    memset(&r, 0, sizeof(r));
    r.kind = (uint8_t)kind;
    r.src = (uint16_t)src;
    r.id = id;
    r.keep = keep;
    r.since = now;
    if (dq_lease_defer(&d->deferq, index, &r) != DQ_OK) {
        /* A second recall while one waits: not the protocol.  Answer. */
        CNT(d, proto_errors);
        lease_end(d, index);
        return false;
    }
    CNT(d, lease_deferrals);
    x = xport_of(d);
    if (x != NULL) {
        /*
         * Read the lease again now that the deferral is marked: a thread
         * closing its lease at the same moment either wrote its end
         * before this read or sees the mark and arms the timer itself
         * (lease_back).  An end already past arms it for at once.
         */
        dq_xport_arm_timer(x, dq_lease_until(&d->lease[index], now_ns()));
    }
    return true;
}

/*
 * The faulting thread of an atomic is about to re-execute it: its
 * page's open lease now ends lease_ns from now.  If a recall waits for
 * that page, move the timer up to the new end (it was armed for the
 * cap).  Context: faulting thread, signal handler; async-signal-safe.
 */
static void lease_back(DqDsm *d, uintptr_t addr)
{
    size_t index;
    uint64_t until;

    if (!dq_page_index(&d->region, addr, &index)) {
        return;
    }
    until = dq_lease_close(&d->lease[index], now_ns(),
                           __atomic_load_n(&d->lease_ns, __ATOMIC_RELAXED));
    if (until != 0 && dq_lease_deferred(&d->deferq, index)) {
        dq_xport_arm_timer(d->x, until);
    }
}

/* ---- grants: installed by the requester or, first, the I/O thread ---- */

/* Context: faulting thread or I/O thread, holding the slot's install. */
static DqStatus install_reply(DqDsm *d, DqDsmSlot *s)
{
    const DqMsg *r = &s->reply;

    if (r->u.page.addr != page_addr(d, s->index)) {
        return DQ_ERR_DSM_BAD_REPLY;
    }
    if (r->type == DQ_MSG_GRANT_DATA) {
        if (r->u.page.state == DQ_PROTO_STATE_I || r->tail_len != d->ps) {
            return DQ_ERR_DSM_BAD_REPLY;
        }
        return dq_page_install(&d->region, s->index, r->tail,
                               r->u.page.state == DQ_PROTO_STATE_M ?
                               DQ_PAGE_M : DQ_PAGE_S);
    }
    if (r->type == DQ_MSG_GRANT) {
        return dq_page_set_state(&d->region, s->index, DQ_PAGE_M);
    }
    return DQ_ERR_DSM_BAD_REPLY;
}

/*
 * Install the grant in @s unless someone else does; either way return
 * once it is installed, with its status.
 * Context: faulting thread or I/O thread; async-signal-safe.
 */
static DqStatus install_once(DqDsm *d, DqDsmSlot *s)
{
    uint32_t z = INSTALL_NONE;

    if (__atomic_compare_exchange_n(&s->install, &z, INSTALL_BUSY, false,
                                    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        s->install_status = install_reply(d, s);
        /*
         * Before INSTALL_DONE: a RECALL right behind the grant waits in
         * late_install() for DONE and must find the lease open.
         */
        if (s->install_status == DQ_OK && s->lease &&
            dq_page_state(&d->region, s->index) == DQ_PAGE_M) {
            lease_begin(d, s->index);
        }
        __atomic_store_n(&s->install, INSTALL_DONE, __ATOMIC_RELEASE);
        futex_wake_all(&s->install);
    } else {
        while (__atomic_load_n(&s->install, __ATOMIC_ACQUIRE) !=
               INSTALL_DONE) {
            futex_wait_ms(&s->install, INSTALL_BUSY, 10);
        }
    }
    return s->install_status;
}

/*
 * An INVAL or RECALL for page @index arrived: a grant for it that came
 * earlier (FIFO) and sits in a slot not yet installed must go in first.
 * Context: I/O thread.
 */
static void late_install(DqDsm *d, size_t index)
{
    DqDsmSlot *s = __atomic_load_n(&d->pending[index], __ATOMIC_ACQUIRE);
    DqMsgType t;

    if (s == NULL) {
        return;
    }
    __atomic_fetch_add(&s->pin, 1, __ATOMIC_ACQ_REL);
    if (__atomic_load_n(&d->pending[index], __ATOMIC_ACQUIRE) == s) {
        /* Replies are written by this very thread: no race on type. */
        t = __atomic_load_n(&s->reply.type, __ATOMIC_ACQUIRE);
        if (t == DQ_MSG_GRANT_DATA || t == DQ_MSG_GRANT) {
            if (__atomic_load_n(&s->install, __ATOMIC_ACQUIRE) ==
                INSTALL_NONE) {
                CNT(d, late_installs);
            }
            install_once(d, s);
        }
    }
    __atomic_fetch_sub(&s->pin, 1, __ATOMIC_ACQ_REL);
}

/* ---- the fault side --------------------------------------------------- */

static DqDsmSlot *slot_claim(DqDsm *d, uint64_t deadline)
{
    unsigned i;
    uint32_t z;

    for (;;) {
        for (i = 0; i < d->nslots; i++) {
            z = 0;
            if (__atomic_compare_exchange_n(&d->slots[i].busy, &z, 1, false,
                                            __ATOMIC_ACQUIRE,
                                            __ATOMIC_RELAXED)) {
                return &d->slots[i];
            }
        }
        if (now_ms() >= deadline) {
            return NULL;
        }
        nap(RETRY_SLEEP_NS / 10);
    }
}

static void slot_release(DqDsmSlot *s)
{
    __atomic_store_n(&s->busy, 0, __ATOMIC_RELEASE);
}

static unsigned left_ms(uint64_t deadline)
{
    uint64_t now = now_ms();

    return now >= deadline ? 0 : (unsigned)(deadline - now);
}

/* Context: faulting thread; async-signal-safe. */
static DqStatus obtain_remote(DqDsm *d, DqDsmSlot *s, unsigned home,
                              DqMsgType type, uint64_t deadline)
{
    DqStatus st;
    unsigned ms;

    s->install = INSTALL_NONE;
    __atomic_store_n(&s->reply.type, REPLY_NONE, __ATOMIC_RELEASE);
    __atomic_store_n(&d->pending[s->index], s, __ATOMIC_RELEASE);
    for (;;) {
        ms = left_ms(deadline);
        if (ms == 0) {
            st = DQ_ERR_XPORT_TIMEOUT;
            break;
        }
        memset(&s->req, 0, sizeof(s->req));
        s->req.type = type;
        s->req.dst = (uint16_t)home;
        /* For the home's information; the lease itself is ours. */
        s->req.flags = s->lease ? DQ_MSG_F_ATOMIC : 0;
        s->req.u.page.addr = page_addr(d, s->index);
        __atomic_store_n(&s->reply.type, REPLY_NONE, __ATOMIC_RELEASE);
        st = dq_xport_request(d->x, &s->req, &s->reply, s->buf, d->buflen,
                              ms);
        if (st != DQ_OK) {
            break;
        }
        if (s->reply.type == DQ_MSG_NACK) {
            if (s->reply.u.nack.code == DQ_NACK_RETRY) {
                CNT(d, retries);
                nap(RETRY_SLEEP_NS);
                continue;
            }
            st = s->reply.u.nack.code == DQ_NACK_LOST ?
                 DQ_ERR_DSM_PAGE_LOST : DQ_ERR_DSM_REFUSED;
            break;
        }
        st = install_once(d, s);
        break;
    }
    __atomic_store_n(&d->pending[s->index], NULL, __ATOMIC_RELEASE);
    while (__atomic_load_n(&s->pin, __ATOMIC_ACQUIRE) != 0) {
        sched_yield();
    }
    return st;
}

static void home_local_request(DqDsm *d, DqDsmSlot *s);

/*
 * A page homed here: run the directory on this thread; only when copies
 * elsewhere must go first does the I/O thread finish the job and wake us.
 * Context: faulting thread; async-signal-safe.
 */
static DqStatus obtain_local(DqDsm *d, DqDsmSlot *s, uint64_t deadline,
                             bool *leak)
{
    DqStatus st;

    for (;;) {
        s->done = 0;
        s->status = DQ_OK;
        home_local_request(d, s);
        while (!__atomic_load_n(&s->done, __ATOMIC_ACQUIRE)) {
            if (left_ms(deadline) == 0) {
                /* The I/O thread may still answer into the slot. */
                *leak = true;
                return DQ_ERR_XPORT_TIMEOUT;
            }
            futex_wait_ms(&s->done, 0, 50);
        }
        st = s->status;
        if (st != DQ_ERR_DIR_QUEUE_FULL || left_ms(deadline) == 0) {
            return st;
        }
        CNT(d, retries);
        nap(RETRY_SLEEP_NS);
    }
}

/* DqFaultOps.obtain.  Context: faulting thread, signal handler. */
static DqStatus dsm_obtain(void *opaque, size_t index, DqPageState have,
                           DqPageState want, bool atomic)
{
    DqDsm *d = opaque;
    uint64_t t0 = now_ns(), dt;
    uint64_t deadline = t0 / 1000000 + d->timeout_ms;
    unsigned home = dq_home_of(&d->home, index);
    DqDirEventKind kind;
    DqMsgType type;
    DqDsmSlot *s;
    DqStatus st;
    bool leak = false;

    if (want == DQ_PAGE_S) {
        kind = DQ_DIR_EV_READ;
        type = DQ_MSG_READ_REQ;
        CNT(d, read_faults);
    } else if (have == DQ_PAGE_S) {
        kind = DQ_DIR_EV_UPGRADE;
        type = DQ_MSG_UPGRADE_REQ;
        CNT(d, upgrade_faults);
    } else {
        kind = DQ_DIR_EV_WRITE;
        type = DQ_MSG_WRITE_REQ;
        CNT(d, write_faults);
    }
    s = slot_claim(d, deadline);
    if (s == NULL) {
        return DQ_ERR_XPORT_TIMEOUT;
    }
    s->index = index;
    s->kind = kind;
    /* Only a write leases: a load-exclusive fetches S (docs/dsm.md). */
    s->lease = atomic && want == DQ_PAGE_M &&
               __atomic_load_n(&d->lease_ns, __ATOMIC_RELAXED) != 0 &&
               !__atomic_load_n(&d->leases_off, __ATOMIC_RELAXED);
    if (home == d->me) {
        st = obtain_local(d, s, deadline, &leak);
    } else {
        st = obtain_remote(d, s, home, type, deadline);
    }
    if (!leak) {
        slot_release(s);
    }
    dt = now_ns() - t0;
    CNT_ADD(d, fault_ns, dt);
    CNT(d, fault_hist[dq_dsm_hist_bucket(dt)]);
    return st;
}

/* ---- the home side (I/O thread) ---------------------------------------- */

static void svc_send(DqDsm *d, DqMsg *m)
{
    DqXport *x = xport_of(d);

    if (x != NULL) {
        /* A failed peer is the directory's business (NODE_FAILED). */
        dq_xport_send(x, m);
    }
}

static void complete_local(DqDsm *d, uint64_t id, DqStatus st)
{
    DqDsmSlot *s;

    if (id >= d->nslots) {
        return;
    }
    s = &d->slots[id];
    s->status = st;
    __atomic_store_n(&s->done, 1, __ATOMIC_RELEASE);
    futex_wake_all(&s->done);
}

static DqDsmEv *self_alloc(DqDsm *d)
{
    DqDsmEv *ev = d->self_free;

    /* More than SELF_EVENTS at once would be a directory bug. */
    assert(ev != NULL);
    d->self_free = ev->next;
    ev->next = NULL;
    memset(&ev->ev, 0, sizeof(ev->ev));
    return ev;
}

static void self_release(DqDsm *d, DqDsmEv *ev)
{
    ev->next = d->self_free;
    d->self_free = ev;
}

static void self_push(DqDsm *d, DqDsmEv *ev)
{
    ev->next = NULL;
    if (d->self_tail != NULL) {
        d->self_tail->next = ev;
    } else {
        d->self_head = ev;
    }
    d->self_tail = ev;
}

/*
 * The directory numbers its INVAL/RECALL rounds itself, but the answers
 * travel as replies and would be taken for the answer to one of this
 * node's own requests with the same id: they carry a fresh transport id
 * instead (dq_xport_next_req_id), mapped back here.  One round per page
 * is in flight, so one pair per page is enough.
 * Context: home_lock held.
 */
static uint64_t wire_id(DqDsm *d, size_t index, uint64_t txn)
{
    DqXport *x = xport_of(d);

    if (d->txn_wire[index] == 0 || d->txn_dir[index] != txn) {
        d->txn_dir[index] = txn;
        d->txn_wire[index] = x != NULL ? dq_xport_next_req_id(x) : 0;
    }
    return d->txn_wire[index];
}

static uint64_t dir_id(DqDsm *d, size_t index, uint64_t wire)
{
    if (wire != 0 && wire == d->txn_wire[index]) {
        return d->txn_dir[index];
    }
    return UINT64_MAX;          /* stale: the directory refuses it */
}

/*
 * This node's copy of @index went from S or M to I on its home's word.
 * Context: the I/O thread, no lock held (a remote home's INVAL or RECALL).
 */
static void report_dropped(DqDsm *d, size_t index)
{
    if (d->cfg.on_page_dropped != NULL) {
        d->cfg.on_page_dropped(d->cfg.page_opaque,
                               dq_page_addr(&d->region, index));
    }
}

/*
 * The same for a page homed here, dropped by the directory's own events:
 * the callee is told once home_lock is released (home_unlock).
 * Context: home_lock held.
 */
static void note_dropped(DqDsm *d, size_t index)
{
    unsigned i;

    if (d->cfg.on_page_dropped == NULL) {
        return;
    }
    for (i = 0; i < d->ndrop; i++) {
        if (d->drop_note[i] == index) {
            return;
        }
    }
    assert(d->ndrop < DROP_NOTES);
    d->drop_note[d->ndrop++] = index;
}

/*
 * The home recalls its own M copy of @index (directory round @id; it may
 * keep @keep): downgrade it and queue the answer as an event to itself.
 * Context: home_lock held.
 */
static void self_recall(DqDsm *d, size_t index, uint64_t id, DqDirMode keep)
{
    DqDsmEv *ev = self_alloc(d);

    CNT(d, recalls);
    lease_end(d, index);
    ev->index = index;
    ev->ev.kind = DQ_DIR_EV_RECALL_REPLY;
    ev->ev.node = d->me;
    ev->ev.id = id;
    ev->ev.kept = keep;
    ev->ev.has_data =
        dq_page_state(&d->region, index) == DQ_PAGE_M &&
        dq_page_downgrade(&d->region, index, mode_state(keep),
                          ev->data) == DQ_OK;
    if (ev->ev.has_data && keep == DQ_DIR_MODE_I) {
        note_dropped(d, index);
    }
    self_push(d, ev);
}

/*
 * A grant to this node's own request (slot @id) went in as @st: if it
 * gave M to an atomic's write, the lease opens before the faulting
 * thread is woken.  Context: home_lock held.
 */
static void grant_local(DqDsm *d, uint64_t id, size_t index, DqStatus st,
                        DqDirMode mode)
{
    if (st == DQ_OK && mode == DQ_DIR_MODE_M && id < d->nslots &&
        d->slots[id].lease) {
        lease_begin(d, index);
    }
    complete_local(d, id, st);
}

/* DqDirOps.act.  Context: home_lock held, inside dq_dir_*. */
static void dsm_act(void *opaque, const DqDirAction *a)
{
    DqDsm *d = opaque;
    DqPageState was;
    size_t index;
    uint8_t *home;
    DqDsmEv *ev;
    DqMsg m;

    if (!dq_page_index(&d->region, (uintptr_t)a->page, &index)) {
        return;
    }
    /* A page never stored home is zeros: leave its home memory untouched. */
    home = d->home_valid[index] ? d->home_copy + index * d->ps :
           (uint8_t *)d->zero_page;
    memset(&m, 0, sizeof(m));
    m.dst = (uint16_t)a->node;
    m.req_id = a->id;
    m.u.page.addr = a->page;

    switch (a->kind) {
    case DQ_DIR_ACT_INVAL:
        if (a->node == d->me) {
            ev = self_alloc(d);
            if (dq_page_set_state_ex(&d->region, index, DQ_PAGE_I, false,
                                     &was) == DQ_OK && was != DQ_PAGE_I) {
                note_dropped(d, index);
            }
            CNT(d, invals);
            ev->index = index;
            ev->ev.kind = DQ_DIR_EV_INV_ACK;
            ev->ev.node = d->me;
            ev->ev.id = a->id;
            self_push(d, ev);
        } else {
            m.type = DQ_MSG_INVAL;
            m.req_id = wire_id(d, index, a->id);
            CNT(d, invals_sent);
            svc_send(d, &m);
        }
        break;
    case DQ_DIR_ACT_RECALL:
        if (a->node == d->me) {
            /*
             * Held back while a local atomic's lease runs: the entry
             * stays BUSY_RECALL, requests queue behind it, and the
             * timer (lease_expire) answers it as below.
             */
            if (dq_page_state(&d->region, index) != DQ_PAGE_M ||
                !lease_defer(d, index, DQ_LEASE_DEFER_SELF, d->me, a->id,
                             (uint8_t)a->mode)) {
                self_recall(d, index, a->id, a->mode);
            }
        } else {
            m.type = DQ_MSG_RECALL;
            m.req_id = wire_id(d, index, a->id);
            m.u.page.state = mode_proto(a->mode);
            CNT(d, recalls_sent);
            svc_send(d, &m);
        }
        break;
    case DQ_DIR_ACT_STORE_HOME:
        if (d->cur_data != NULL) {
            memcpy(d->home_copy + index * d->ps, d->cur_data, d->ps);
            d->home_valid[index] = 1;
        }
        break;
    case DQ_DIR_ACT_GRANT_DATA:
    case DQ_DIR_ACT_GRANT:
        if (d->lost[index]) {
            /* Served while its owner's failure was being processed. */
            if (a->node == d->me) {
                complete_local(d, a->id, DQ_ERR_DSM_PAGE_LOST);
            } else {
                m.type = DQ_MSG_NACK;
                m.u.nack.addr = a->page;
                m.u.nack.code = DQ_NACK_LOST;
                svc_send(d, &m);
            }
        } else if (a->kind == DQ_DIR_ACT_GRANT) {
            if (a->node == d->me) {
                grant_local(d, a->id, index,
                            dq_page_set_state(&d->region, index, DQ_PAGE_M),
                            DQ_DIR_MODE_M);
            } else {
                m.type = DQ_MSG_GRANT;
                svc_send(d, &m);
            }
        } else if (a->node == d->me) {
            grant_local(d, a->id, index,
                        dq_page_install(&d->region, index, home,
                                        mode_state(a->mode)),
                        a->mode);
        } else {
            m.type = DQ_MSG_GRANT_DATA;
            m.u.page.state = mode_proto(a->mode);
            m.tail = home;
            m.tail_len = d->ps;
            svc_send(d, &m);
        }
        break;
    case DQ_DIR_ACT_SERVE_NEXT:
        if (!d->serve_flag[index]) {
            d->serve_flag[index] = 1;
            d->serve[d->nserve++] = index;
        }
        break;
    default:
        break;
    }
}

static bool is_request(DqDirEventKind k)
{
    return k == DQ_DIR_EV_READ || k == DQ_DIR_EV_WRITE ||
           k == DQ_DIR_EV_UPGRADE;
}

/* One event into the directory.  Context: home_lock held. */
static void svc_feed(DqDsm *d, size_t index, const DqDirEvent *ev,
                     const uint8_t *data)
{
    DqDirEntry *e = entry_of(d, index);
    DqStatus st;
    DqMsg m;

    /*
     * The owner answers our recall without data (it dropped the page):
     * the directory will serve the requester from the stale home copy
     * inside this very call, so the page is lost before, not after.
     */
    if (ev->kind == DQ_DIR_EV_RECALL_REPLY && !ev->has_data &&
        ev->kept == DQ_DIR_MODE_I && e->state == DQ_DIR_BUSY_RECALL &&
        e->owner == ev->node && e->txn == ev->id &&
        !dq_dir_set_has(&e->stale, ev->node)) {
        __atomic_store_n(&d->lost[index], (uint8_t)(ev->node + 1),
                         __ATOMIC_RELAXED);
    }
    d->cur_data = data;
    st = dq_dir_handle(&d->dir, e, ev);
    d->cur_data = NULL;
    if (st == DQ_OK) {
        return;
    }
    if (st == DQ_ERR_DIR_DATA_LOST) {
        CNT(d, data_lost);
        if (!d->lost[index]) {
            __atomic_store_n(&d->lost[index], (uint8_t)(ev->node + 1),
                             __ATOMIC_RELAXED);
        }
        return;
    }
    if (!is_request(ev->kind)) {
        if (st != DQ_ERR_DIR_NODE_FAILED) {
            CNT(d, proto_errors);
        }
        return;
    }
    if (ev->node == d->me) {
        complete_local(d, ev->id, st);
        return;
    }
    if (st == DQ_ERR_DIR_NODE_FAILED) {
        return;
    }
    if (st != DQ_ERR_DIR_QUEUE_FULL) {
        CNT(d, proto_errors);
    }
    memset(&m, 0, sizeof(m));
    m.type = DQ_MSG_NACK;
    m.dst = (uint16_t)ev->node;
    m.req_id = ev->id;
    m.u.nack.addr = page_addr(d, index);
    m.u.nack.code = st == DQ_ERR_DIR_QUEUE_FULL ? DQ_NACK_RETRY :
                    DQ_NACK_UNEXPECTED;
    svc_send(d, &m);
}

/* Run self events and deferred serve_next calls until none is left. */
static void svc_drain(DqDsm *d)
{
    DqDsmEv *ev;
    size_t index;

    for (;;) {
        if (d->self_head != NULL) {
            ev = d->self_head;
            d->self_head = ev->next;
            if (d->self_head == NULL) {
                d->self_tail = NULL;
            }
            svc_feed(d, ev->index, &ev->ev,
                     ev->ev.has_data ? ev->data : NULL);
            self_release(d, ev);
        } else if (d->nserve > 0) {
            index = d->serve[--d->nserve];
            d->serve_flag[index] = 0;
            if (dq_dir_serve_next(&d->dir, entry_of(d, index)) != DQ_OK) {
                CNT(d, proto_errors);
            }
        } else {
            return;
        }
    }
}

static void home_lock_take(DqDsm *d)
{
    pthread_mutex_lock(&d->home_lock);
    d->home_holder = pthread_self();
    __atomic_store_n(&d->home_held, true, __ATOMIC_RELEASE);
}

static void home_lock_drop(DqDsm *d)
{
    __atomic_store_n(&d->home_held, false, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&d->home_lock);
}

/*
 * Release home_lock, then tell on_page_dropped about the pages the
 * directory dropped meanwhile: its callee runs with no lock of ours.
 */
static void home_unlock(DqDsm *d)
{
    size_t notes[DROP_NOTES];
    unsigned n = d->ndrop, i;

    memcpy(notes, d->drop_note, n * sizeof(notes[0]));
    d->ndrop = 0;
    home_lock_drop(d);
    for (i = 0; i < n; i++) {
        d->cfg.on_page_dropped(d->cfg.page_opaque,
                               dq_page_addr(&d->region, notes[i]));
    }
}

/* Is this thread inside the directory?  Only the holder can see true. */
static bool home_lock_mine(DqDsm *d)
{
    /* Unlocked read: the id there may be another holder's or a stale
     * one, but it equals ours only if this thread wrote it and still
     * holds the lock (held is cleared before every unlock). */
    return __atomic_load_n(&d->home_held, __ATOMIC_ACQUIRE) &&
           pthread_equal(d->home_holder, pthread_self());
}

/*
 * Tell every entry homed here that @node is gone.  A page it held in M
 * (and had not written back) is marked lost first: the directory goes on
 * to serve waiting requests from the stale home copy, and those answers
 * must become refusals.  Entries never used cannot involve @node; the
 * scratch entry makes sure the directory records the failure anyway.
 * A page the home's own copy lost meanwhile (a waiting write served) is
 * reported at once, home_lock released for the callback: between two
 * entries the directory is consistent, so letting other threads in is
 * fine.
 * Context: home_lock held (released and retaken in between).
 */
static void home_node_failed(DqDsm *d, unsigned node)
{
    const DqDirEntry *e;
    DqDirEvent ev;
    uint64_t bits;
    size_t w, i;

    memset(&ev, 0, sizeof(ev));
    ev.kind = DQ_DIR_EV_NODE_FAILED;
    ev.node = node;
    dq_dir_entry_init(&d->scratch, 0, DQ_DIR_NO_NODE);
    dq_dir_handle(&d->dir, &d->scratch, &ev);
    for (w = 0; w < (d->pages + 63) / 64; w++) {
        for (bits = d->entry_ok[w]; bits != 0; bits &= bits - 1) {
            i = w * 64 + (size_t)__builtin_ctzll(bits);
            e = &d->entries[i];
            if (e->owner == node && !dq_dir_home_current(e)) {
                __atomic_store_n(&d->lost[i], (uint8_t)(node + 1),
                                 __ATOMIC_RELAXED);
            }
            svc_feed(d, i, &ev, NULL);
            svc_drain(d);
            if (d->ndrop > 0) {
                home_unlock(d);
                home_lock_take(d);
            }
        }
    }
}

/* The failures reported while the directory was busy.  Context: home_lock. */
static void home_failures(DqDsm *d)
{
    unsigned node;

    while (d->failed_later != 0) {
        node = (unsigned)__builtin_ctzll(d->failed_later);
        d->failed_later &= d->failed_later - 1;
        home_node_failed(d, node);
    }
}

/*
 * One event from the wire or this node into the directory.  A send the
 * directory makes may find its peer gone, and the transport reports that
 * at once (on_peer_failed): the directory is not re-entered for it, the
 * failure waits until this event is done.
 * Context: home_lock held.
 */
static void home_event(DqDsm *d, size_t index, DqDirEvent *ev,
                       const uint8_t *data)
{
    if (is_request(ev->kind)) {
        CNT(d, home_requests);
    } else {
        ev->id = dir_id(d, index, ev->id);
    }
    svc_feed(d, index, ev, data);
    svc_drain(d);
    home_failures(d);
}

/* A local faulting thread's request.  Context: faulting thread. */
static void home_local_request(DqDsm *d, DqDsmSlot *s)
{
    DqDirEvent de;

    home_lock_take(d);
    if (d->lost[s->index]) {
        complete_local(d, (uint64_t)(s - d->slots), DQ_ERR_DSM_PAGE_LOST);
    } else {
        memset(&de, 0, sizeof(de));
        de.kind = s->kind;
        de.node = d->me;
        de.id = (uint64_t)(s - d->slots);
        home_event(d, s->index, &de, NULL);
    }
    home_unlock(d);
}

/* ---- transport callbacks (I/O thread) --------------------------------- */

/* A page request (answered with a NACK when it cannot be served). */
static bool is_request_msg(DqMsgType t)
{
    return t == DQ_MSG_READ_REQ || t == DQ_MSG_WRITE_REQ ||
           t == DQ_MSG_UPGRADE_REQ;
}

static void io_nack(DqDsm *d, const DqMsg *msg, DqNackCode code)
{
    DqMsg m;
    DqXport *x = xport_of(d);

    if (x == NULL) {
        return;
    }
    memset(&m, 0, sizeof(m));
    m.type = DQ_MSG_NACK;
    m.dst = msg->src;
    m.req_id = msg->req_id;
    m.u.nack.addr = msg->u.page.addr;
    m.u.nack.code = code;
    dq_xport_send(x, &m);
}

/* Home traffic: straight into the directory. */
static void io_home(DqDsm *d, const DqMsg *msg, size_t index)
{
    DqDirEvent ev;

    if (!is_homed(d, index)) {
        if (is_request_msg(msg->type)) {
            io_nack(d, msg, DQ_NACK_UNEXPECTED);
        }
        return;
    }
    if (__atomic_load_n(&d->lost[index], __ATOMIC_RELAXED) &&
        is_request_msg(msg->type)) {
        io_nack(d, msg, DQ_NACK_LOST);
        return;
    }
    memset(&ev, 0, sizeof(ev));
    ev.node = msg->src;
    ev.id = msg->req_id;
    ev.flags = msg->flags;
    switch (msg->type) {
    case DQ_MSG_READ_REQ:
        ev.kind = DQ_DIR_EV_READ;
        break;
    case DQ_MSG_WRITE_REQ:
        ev.kind = DQ_DIR_EV_WRITE;
        break;
    case DQ_MSG_UPGRADE_REQ:
        ev.kind = DQ_DIR_EV_UPGRADE;
        break;
    case DQ_MSG_INVAL_ACK:
        ev.kind = DQ_DIR_EV_INV_ACK;
        break;
    case DQ_MSG_NACK:
        /* An owner without the page refused our RECALL (dsm_handle). */
        ev.kind = DQ_DIR_EV_RECALL_REPLY;
        ev.kept = DQ_DIR_MODE_I;
        ev.has_data = false;
        break;
    default:                    /* RECALL_DATA */
        ev.kind = DQ_DIR_EV_RECALL_REPLY;
        ev.kept = msg->u.page.state == DQ_PROTO_STATE_S ?
                  DQ_DIR_MODE_S : DQ_DIR_MODE_I;
        ev.has_data = msg->tail_len == d->ps;
        break;
    }
    home_lock_take(d);
    /*
     * Any other NACK is a late answer to a request of ours that gave up:
     * nothing for the directory.  (Recall ids and request ids come from
     * one counter, so they cannot be confused.)
     */
    if (msg->type != DQ_MSG_NACK ||
        (msg->req_id != 0 && msg->req_id == d->txn_wire[index])) {
        home_event(d, index, &ev, ev.has_data ? msg->tail : NULL);
    }
    home_unlock(d);
}

/* The message types the engine owns: the page protocol. */
static bool is_dsm_msg(DqMsgType t)
{
    switch (t) {
    case DQ_MSG_READ_REQ:
    case DQ_MSG_WRITE_REQ:
    case DQ_MSG_UPGRADE_REQ:
    case DQ_MSG_GRANT_DATA:
    case DQ_MSG_GRANT:
    case DQ_MSG_INVAL:
    case DQ_MSG_INVAL_ACK:
    case DQ_MSG_RECALL:
    case DQ_MSG_RECALL_DATA:
    case DQ_MSG_FORWARD:
    case DQ_MSG_NACK:
        return true;
    default:
        return false;
    }
}

/*
 * Answer home @src's RECALL (@req_id) of page @index, which may keep
 * @keep (S or I): the page's data, or a NACK when we have no M copy.
 * Context: I/O thread, no lock held (on_page_dropped may be called).
 */
static void answer_recall(DqDsm *d, DqXport *x, size_t index, unsigned src,
                          uint64_t req_id, DqProtoState keep)
{
    DqPageState was;
    DqMsg m;

    CNT(d, recalls);
    lease_end(d, index);
    memset(&m, 0, sizeof(m));
    m.dst = (uint16_t)src;
    m.req_id = req_id;
    m.u.page.addr = page_addr(d, index);
    m.type = DQ_MSG_RECALL_DATA;
    if (dq_page_state(&d->region, index) != DQ_PAGE_M) {
        /*
         * The home thinks we own the page but we have no M copy: we
         * dropped it (dq_dsm_drop_range, no claim first) or its grant
         * came after our request had given up.  Say so, keeping
         * nothing: silence would leave the home's entry busy for ever.
         * A RECALL_DATA always carries a page, so the answer is a NACK
         * with the recall's id, which the home takes for a recall reply
         * without data (io_home) and so refuses the page as lost.
         */
        if (dq_page_set_state_ex(&d->region, index, DQ_PAGE_I, false,
                                 &was) == DQ_OK && was != DQ_PAGE_I) {
            report_dropped(d, index);
        }
        m.type = DQ_MSG_NACK;
        m.u.nack.addr = m.u.page.addr;
        m.u.nack.code = DQ_NACK_UNEXPECTED;
        dq_xport_send(x, &m);
        return;
    }
    if (dq_page_downgrade(&d->region, index,
                          keep == DQ_PROTO_STATE_S ? DQ_PAGE_S : DQ_PAGE_I,
                          d->io_buf) != DQ_OK) {
        return;
    }
    if (keep != DQ_PROTO_STATE_S) {
        report_dropped(d, index);
    }
    m.u.page.state = keep;
    m.tail = d->io_buf;
    m.tail_len = d->ps;
    dq_xport_send(x, &m);
}

/*
 * A remote home's RECALL of page @index: held back while the page's
 * lease runs (true), else to be answered now.  The common case, no
 * lease, takes no lock.  Context: I/O thread, no lock held.
 */
static bool recall_held(DqDsm *d, const DqMsg *msg, size_t index)
{
    bool held;

    if (dq_page_state(&d->region, index) != DQ_PAGE_M ||
        lease_until(d, index, now_ns()) == 0) {
        return false;
    }
    home_lock_take(d);
    held = lease_defer(d, index, DQ_LEASE_DEFER_REMOTE, msg->src,
                       msg->req_id, (uint8_t)msg->u.page.state);
    home_unlock(d);
    return held;
}

/*
 * The transport's timer: answer every recall whose lease has ended (all
 * of them once dq_dsm_stop() has begun), one at a time and exactly as
 * if it had just arrived, then re-arm for the earliest lease left.
 * Context: I/O thread, no lock held.
 */
static void lease_expire(DqDsm *d)
{
    bool all = __atomic_load_n(&d->leases_off, __ATOMIC_SEQ_CST);
    DqXport *x = xport_of(d);
    DqLeaseDefer r;
    uint64_t now, next;
    size_t index;

    if (x == NULL) {
        return;
    }
    for (;;) {
        home_lock_take(d);
        now = now_ns();
        if (!dq_lease_take(&d->deferq, now, all, &index, &r, &next)) {
            home_unlock(d);
            if (next != DQ_LEASE_NONE) {
                dq_xport_arm_timer(x, next);
            }
            return;
        }
        CNT_ADD(d, lease_wait_ns, now - r.since);
        if (r.kind == DQ_LEASE_DEFER_SELF) {
            /* The directory carries on as it would have at the recall. */
            self_recall(d, index, r.id, (DqDirMode)r.keep);
            svc_drain(d);
            home_failures(d);
            home_unlock(d);
        } else {
            home_unlock(d);
            answer_recall(d, x, index, r.src, r.id, (DqProtoState)r.keep);
        }
    }
}

/*
 * DqXport timer callback, on the engine's transport or the program's:
 * pinned like dq_dsm_handle_message(), so dq_dsm_stop() never frees
 * under it, and a no-op for an engine that is gone.
 */
static void dsm_on_timer(void *opaque)
{
    DqDsm *d;

    __atomic_fetch_add(&dsm_users, 1, __ATOMIC_SEQ_CST);
    d = __atomic_load_n(&dsm_live, __ATOMIC_SEQ_CST);
    if (d != NULL && d == opaque) {
        lease_expire(d);
    }
    __atomic_fetch_sub(&dsm_users, 1, __ATOMIC_SEQ_CST);
}

/*
 * One of the engine's messages that is not the answer to a request of
 * ours.  Context: I/O thread, no lock held.
 */
static void dsm_handle(DqDsm *d, const DqMsg *msg)
{
    DqPageState was;
    DqXport *x;
    size_t index;
    DqMsg m;

    switch (msg->type) {
    case DQ_MSG_READ_REQ:
    case DQ_MSG_WRITE_REQ:
    case DQ_MSG_UPGRADE_REQ:
    case DQ_MSG_INVAL_ACK:
    case DQ_MSG_RECALL_DATA:
    case DQ_MSG_INVAL:
    case DQ_MSG_RECALL:
    case DQ_MSG_NACK:           /* maybe an owner's answer to a RECALL */
        break;
    default:
        return;                 /* late replies, forwarding: not yet */
    }
    if (!dq_page_index(&d->region, (uintptr_t)(msg->type == DQ_MSG_NACK ?
                                               msg->u.nack.addr :
                                               msg->u.page.addr), &index)) {
        if (is_request_msg(msg->type)) {
            io_nack(d, msg, DQ_NACK_UNMAPPED);
        }
        return;
    }
    if (msg->type != DQ_MSG_INVAL && msg->type != DQ_MSG_RECALL) {
        io_home(d, msg, index);
        return;
    }
    x = xport_of(d);
    if (x == NULL) {
        return;
    }
    late_install(d, index);
    memset(&m, 0, sizeof(m));
    m.dst = msg->src;
    m.req_id = msg->req_id;
    m.u.page.addr = msg->u.page.addr;
    if (msg->type == DQ_MSG_INVAL) {
        CNT(d, invals);
        if (dq_page_set_state_ex(&d->region, index, DQ_PAGE_I, false,
                                 &was) == DQ_OK && was != DQ_PAGE_I) {
            report_dropped(d, index);
        }
        m.type = DQ_MSG_INVAL_ACK;
        dq_xport_send(x, &m);
        return;
    }
    /*
     * RECALL (the decoder lets it allow only I or S to be kept): the
     * grant it follows is in (late_install), so a lease it opened is
     * seen here.  INVAL above is never held back: leases are M only.
     */
    if (!recall_held(d, msg, index)) {
        answer_recall(d, x, index, msg->src, msg->req_id,
                      msg->u.page.state);
    }
}

/* DqXportOps.on_message of a transport dq_dsm_start() made. */
static void dsm_on_message(void *opaque, const DqMsg *msg)
{
    dsm_handle(opaque, msg);
}

/* @node failed: the home side forgets it.  Context: I/O thread. */
static void dsm_peer_failed(DqDsm *d, unsigned node)
{
    if (node >= d->nodes || node == d->me) {
        return;
    }
    if (home_lock_mine(d)) {
        d->failed_later |= 1ull << node;    /* after the current event */
    } else {
        home_lock_take(d);
        d->failed_later |= 1ull << node;
        home_failures(d);
        home_unlock(d);
    }
}

static void dsm_on_peer_failed(void *opaque, unsigned node, const char *why)
{
    DqDsm *d = opaque;

    dsm_peer_failed(d, node);
    if (d->cfg.xport.ops.on_peer_failed != NULL) {
        d->cfg.xport.ops.on_peer_failed(d->cfg.xport.opaque, node, why);
    }
}

static void dsm_on_shutdown(void *opaque, uint32_t code)
{
    DqDsm *d = opaque;

    if (d->cfg.xport.ops.on_shutdown != NULL) {
        d->cfg.xport.ops.on_shutdown(d->cfg.xport.opaque, code);
    }
}

/*
 * The attached engine, pinned against dq_dsm_stop() until dsm_unpin():
 * the pin is counted before dsm_live is read and stop clears dsm_live
 * before it waits for the count to drop (both sequentially consistent),
 * so stop never frees under a handler.  NULL: not attached.
 */
static DqDsm *dsm_pin(void)
{
    DqDsm *d;

    __atomic_fetch_add(&dsm_users, 1, __ATOMIC_SEQ_CST);
    d = __atomic_load_n(&dsm_live, __ATOMIC_SEQ_CST);
    if (d != NULL && d->own_xport) {
        d = NULL;               /* its transport calls us itself */
    }
    return d;
}

static void dsm_unpin(void)
{
    __atomic_fetch_sub(&dsm_users, 1, __ATOMIC_SEQ_CST);
}

bool dq_dsm_handle_message(const DqMsg *msg)
{
    DqDsm *d;

    if (!is_dsm_msg(msg->type)) {
        return false;
    }
    d = dsm_pin();
    if (d != NULL) {
        dsm_handle(d, msg);
    }
    dsm_unpin();
    return d != NULL;
}

void dq_dsm_handle_peer_failed(unsigned node, const char *why)
{
    DqDsm *d = dsm_pin();

    (void)why;
    if (d != NULL) {
        dsm_peer_failed(d, node);
    }
    dsm_unpin();
}

/* ---- claims, drops and bounds ----------------------------------------- */

/*
 * Check that [@addr, @addr + @len) is page-aligned and inside the region;
 * set *@first and *@n (pages).
 */
static DqStatus range_pages(DqDsm *d, uintptr_t addr, size_t len,
                            size_t *first, size_t *n)
{
    if (((addr | len) & (d->ps - 1)) != 0 ||
        (len != 0 && (!dq_page_index(&d->region, addr, first) ||
                      len > d->region.len - (addr - d->region.base)))) {
        return DQ_ERR_RANGE;
    }
    *n = len / d->ps;
    if (*n == 0) {
        *first = 0;
    }
    return DQ_OK;
}

DqStatus dq_dsm_set_bound(uintptr_t addr, size_t len, int prot)
{
    DqDsm *d = __atomic_load_n(&dsm_live, __ATOMIC_ACQUIRE);

    if (d == NULL) {
        return DQ_ERR_USAGE;
    }
    return dq_page_set_max_prot_range(&d->region, addr, len, prot);
}

DqStatus dq_dsm_claim_range(uintptr_t addr, size_t len)
{
    DqDsm *d = __atomic_load_n(&dsm_live, __ATOMIC_ACQUIRE);
    DqStatus st;
    DqDirEntry *e;
    size_t first, n, i, run = 0;

    if (d == NULL) {
        return DQ_ERR_USAGE;
    }
    st = range_pages(d, addr, len, &first, &n);
    if (st != DQ_OK) {
        return st;
    }
    for (i = first; i < first + n; i++) {
        if (!is_homed(d, i)) {
            return DQ_ERR_USAGE;
        }
    }
    home_lock_take(d);
    /*
     * Entries first, then the local state of each run of claimed pages
     * at once: one mprotect per run (forced: a fresh mapping there may
     * have any protection), not one per page.
     */
    for (i = first; i <= first + n && st == DQ_OK; i++) {
        if (i < first + n) {
            e = entry_of(d, i);
            if (!dq_dir_busy(e) && e->q_len == 0) {
                dq_dir_entry_release(&d->dir, e);
                dq_dir_entry_init(e, page_addr(d, i), d->me);
                __atomic_store_n(&d->lost[i], 0, __ATOMIC_RELAXED);
                CNT(d, claims);
                run++;
                continue;
            }
            /* Its answers are on their way: rewriting it would lose them. */
            CNT(d, claims_busy);
        }
        if (run > 0) {
            st = dq_page_set_state_range(&d->region, i - run, run, DQ_PAGE_M);
            run = 0;
        }
    }
    home_unlock(d);
    return st;
}

/* Pages dq_dsm_drop_range() holds at once (their PENDING bits). */
#define DROP_BATCH 256

/*
 * Drop this node's copies of pages [@first, @first + @n), at most
 * DROP_BATCH: hold their PENDING bits as a fault would, in address
 * order, so no request of ours for them is in flight (its grant would
 * land after the drop, stale) or starts meanwhile, then lower them all.
 * Holding several PENDING bits is safe here: whoever holds one we wait
 * for needs only the I/O thread and homes to finish, and those never
 * wait for PENDING.
 * Context: any thread but the I/O thread; no lock held.
 */
static DqStatus drop_pages(DqDsm *d, size_t first, size_t n)
{
    DqPageRegion *r = &d->region;
    DqStatus st;
    size_t i, had = 0;
    uint8_t b;

    assert(n <= DROP_BATCH);
    for (i = first; i < first + n; i++) {
        for (;;) {
            b = dq_page_peek(r, i);
            if (b & (DQ_PAGE_PENDING | DQ_PAGE_TRANSIT)) {
                dq_page_wait(r, i, b);
                continue;
            }
            if (dq_page_claim(r, i, b)) {
                break;
            }
        }
        had += (b & DQ_PAGE_STATE_MASK) != DQ_PAGE_I;
    }
    st = dq_page_set_state_range(r, first, n, DQ_PAGE_I);
    for (i = first; i < first + n; i++) {
        dq_page_unclaim(r, i);
    }
    if (st == DQ_OK) {
        CNT_ADD(d, drops, had);
    }
    return st;
}

DqStatus dq_dsm_drop_range(uintptr_t addr, size_t len)
{
    DqDsm *d = __atomic_load_n(&dsm_live, __ATOMIC_ACQUIRE);
    DqStatus st;
    size_t first, n, i, cnt;

    if (d == NULL) {
        return DQ_ERR_USAGE;
    }
    st = range_pages(d, addr, len, &first, &n);
    for (i = 0; i < n && st == DQ_OK; i += cnt) {
        cnt = n - i < DROP_BATCH ? n - i : DROP_BATCH;
        st = drop_pages(d, first + i, cnt);
    }
    return st;
}

/* ---- set-up and tear-down --------------------------------------------- */

static void dsm_free(DqDsm *d)
{
    size_t pages = d->pages;

    if (d->own_xport) {
        dq_xport_free(d->x);
    }
    d->x = NULL;
    while (d->self_head != NULL) {
        DqDsmEv *ev = d->self_head;

        d->self_head = ev->next;
        self_release(d, ev);
    }
    while (d->self_free != NULL) {
        DqDsmEv *ev = d->self_free;

        d->self_free = ev->next;
        free(ev);
    }
    if (d->home_lock_ok) {
        pthread_mutex_destroy(&d->home_lock);
    }
    if (d->dir_ok) {
        dq_dir_destroy(&d->dir);
    }
    if (d->home_ok) {
        dq_home_destroy(&d->home);
    }
    if (d->region_ok) {
        dq_page_region_destroy(&d->region);
    }
    lazy_free(d->entries, pages * sizeof(*d->entries));
    free(d->entry_ok);
    lazy_free(d->home_valid, pages);
    free((void *)d->zero_page);
    lazy_free(d->lost, pages);
    lazy_free(d->home_copy, pages * d->ps);
    free(d->slots);
    free(d->slot_bufs);
    lazy_free(d->pending, pages * sizeof(*d->pending));
    free(d->io_buf);
    lazy_free(d->serve, pages * sizeof(*d->serve));
    lazy_free(d->serve_flag, pages);
    lazy_free(d->txn_dir, pages * sizeof(*d->txn_dir));
    lazy_free(d->txn_wire, pages * sizeof(*d->txn_wire));
    lazy_free(d->lease, pages * sizeof(*d->lease));
    lazy_free(d->defer_rec, pages * sizeof(*d->defer_rec));
    memset(d, 0, sizeof(*d));
}

#define SETUP_FAIL(st_, ...)                        \
    do {                                            \
        snprintf(err, errlen, __VA_ARGS__);         \
        return (st_);                               \
    } while (0)

/*
 * Everything but the transport: the region, homes, directory, tables.
 * On error @err says why; the caller frees what was made (dsm_free).
 * Context: process context, the engine not published.
 */
static DqStatus dsm_setup(DqDsm *d, const DqDsmConfig *cfg, bool attach,
                          char *err, size_t errlen)
{
    const int prot_all = PROT_READ | PROT_WRITE | PROT_EXEC;
    long ps = sysconf(_SC_PAGESIZE);
    int bound = cfg->initial_bound;
    DqFaultOps fops;
    DqDirOps dops;
    DqStatus st;
    size_t i, pages;

    d->cfg = *cfg;
    d->me = cfg->xport.node_id;
    d->nodes = cfg->xport.node_count;
    d->ps = (size_t)ps;
    d->timeout_ms = cfg->request_timeout_ms ? cfg->request_timeout_ms :
                    DQ_DSM_REQUEST_TIMEOUT_MS;
    d->nslots = cfg->slots ? cfg->slots : DQ_DSM_DEFAULT_SLOTS;
    /* dq_dsm_start() callers predate the field: 0 was read/write. */
    if (!attach && bound == 0) {
        bound = PROT_READ | PROT_WRITE;
    }

    if (cfg->home_policy == DQ_HOME_FIRST_TOUCH) {
        SETUP_FAIL(DQ_ERR_NOSYS, "first-touch homes are not supported yet");
    }
    if (d->nodes == 0 || d->nodes > DQ_MAX_NODES || d->me >= d->nodes) {
        SETUP_FAIL(DQ_ERR_RANGE, "node %u of %u", d->me, d->nodes);
    }
    if (bound & ~prot_all) {
        SETUP_FAIL(DQ_ERR_RANGE, "initial bound %#x is not PROT_* bits",
                   (unsigned)bound);
    }
    st = dq_page_region_init(&d->region, cfg->base, cfg->len, DQ_PAGE_I,
                             bound);
    if (st != DQ_OK) {
        SETUP_FAIL(st, "cannot register the region: %s", dq_status_str(st));
    }
    d->region_ok = true;
    d->pages = pages = d->region.pages;
    fops.obtain = dsm_obtain;
    fops.opaque = d;
    dq_fault_init(&d->fault, &d->region, &fops);
    st = dq_home_init(&d->home, cfg->home_policy, d->nodes,
                      cfg->home_block_shift, 0);
    if (st != DQ_OK) {
        SETUP_FAIL(st, "cannot set up homes: %s", dq_status_str(st));
    }
    d->home_ok = true;
    dops.act = dsm_act;
    dops.opaque = d;
    st = dq_dir_init(&d->dir, d->nodes, d->nodes * d->nslots + 16, &dops);
    if (st != DQ_OK) {
        SETUP_FAIL(st, "cannot set up the directory: %s", dq_status_str(st));
    }
    d->dir_ok = true;
    /*
     * A slot only ever receives the answer to a page request: a page at
     * most (anything larger is refused with NOSPACE, as it must be).
     */
    d->buflen = dq_proto_tail_offset(DQ_MSG_GRANT_DATA) + d->ps;

    /* Per page: reserved, backed only where pages are used. */
    d->entries = lazy_alloc(pages * sizeof(*d->entries));
    d->home_valid = lazy_alloc(pages);
    d->lost = lazy_alloc(pages);
    d->home_copy = lazy_alloc(pages * d->ps);
    d->pending = lazy_alloc(pages * sizeof(*d->pending));
    d->serve = lazy_alloc(pages * sizeof(*d->serve));
    d->serve_flag = lazy_alloc(pages);
    d->txn_dir = lazy_alloc(pages * sizeof(*d->txn_dir));
    d->txn_wire = lazy_alloc(pages * sizeof(*d->txn_wire));
    d->lease = lazy_alloc(pages * sizeof(*d->lease));
    d->defer_rec = lazy_alloc(pages * sizeof(*d->defer_rec));
    /* Small. */
    d->entry_ok = calloc((pages + 63) / 64, sizeof(*d->entry_ok));
    d->zero_page = calloc(1, d->ps);
    d->slots = calloc(d->nslots, sizeof(*d->slots));
    d->slot_bufs = calloc(d->nslots, d->buflen);
    d->io_buf = malloc(d->ps);
    if (!d->entries || !d->entry_ok || !d->home_valid || !d->zero_page ||
        !d->lost || !d->home_copy || !d->pending ||
        !d->serve || !d->serve_flag || !d->txn_dir || !d->txn_wire ||
        !d->lease || !d->defer_rec ||
        !d->slots || !d->slot_bufs || !d->io_buf) {
        SETUP_FAIL(DQ_ERR_NOMEM, "out of memory for %zu pages", pages);
    }
    for (i = 0; i < d->nslots; i++) {
        d->slots[i].buf = d->slot_bufs + i * d->buflen;
    }
    dq_lease_queue_init(&d->deferq, d->defer_rec, d->lease);
    d->lease_ns = lease_ns_capped(cfg->lease_ns);
    for (i = 0; i < SELF_EVENTS; i++) {
        DqDsmEv *ev = calloc(1, sizeof(*ev) + d->ps);

        if (ev == NULL) {
            SETUP_FAIL(DQ_ERR_NOMEM, "out of memory");
        }
        self_release(d, ev);
    }
    pthread_mutex_init(&d->home_lock, NULL);
    d->home_lock_ok = true;
    return DQ_OK;
}

DqStatus dq_dsm_start(const DqDsmConfig *cfg, char *err, size_t errlen)
{
    DqDsm *d = &dsm_g;
    DqXportConfig xc;
    DqXport *x;
    DqStatus st;

    if (__atomic_load_n(&dsm_live, __ATOMIC_ACQUIRE) != NULL) {
        snprintf(err, errlen, "the DSM engine is already running");
        return DQ_ERR_USAGE;
    }
    memset(d, 0, sizeof(*d));
    if (cfg->xport.ops.on_message != NULL) {
        snprintf(err, errlen, "on_message belongs to the DSM engine");
        return DQ_ERR_USAGE;
    }
    st = dsm_setup(d, cfg, false, err, errlen);
    if (st != DQ_OK) {
        goto fail;
    }
    d->own_xport = true;
    xc = cfg->xport;
    xc.page_size = (uint32_t)d->ps;
    xc.ops.on_message = dsm_on_message;
    xc.ops.on_peer_failed = dsm_on_peer_failed;
    xc.ops.on_shutdown = dsm_on_shutdown;
    xc.opaque = d;
    st = dq_xport_start(&xc, &x, err, errlen);
    if (st != DQ_OK) {
        goto fail;
    }
    /* The I/O thread may already be in dsm_on_message(): xport_of(). */
    __atomic_store_n(&d->x, x, __ATOMIC_RELEASE);
    dq_xport_set_timer(x, dsm_on_timer, d);
    __atomic_store_n(&dsm_live, d, __ATOMIC_SEQ_CST);
    return DQ_OK;

fail:
    dsm_free(d);
    return st;
}

DqStatus dq_dsm_attach(const DqDsmConfig *cfg, DqXport *x, char *err,
                       size_t errlen)
{
    DqDsm *d = &dsm_g;
    const DqXportConfig *xc;
    DqStatus st;
    unsigned n;

    if (__atomic_load_n(&dsm_live, __ATOMIC_ACQUIRE) != NULL) {
        snprintf(err, errlen, "the DSM engine is already running");
        return DQ_ERR_USAGE;
    }
    if (x == NULL) {
        snprintf(err, errlen, "no transport to attach to");
        return DQ_ERR_USAGE;
    }
    xc = dq_xport_config(x);
    if (xc->node_id != cfg->xport.node_id ||
        xc->node_count != cfg->xport.node_count) {
        snprintf(err, errlen, "the transport is node %u of %u, the DSM "
                 "configuration says node %u of %u", xc->node_id,
                 xc->node_count, cfg->xport.node_id, cfg->xport.node_count);
        return DQ_ERR_USAGE;
    }
    if (xc->page_size != (uint32_t)sysconf(_SC_PAGESIZE)) {
        snprintf(err, errlen, "the transport's page size is %u, the host's "
                 "%ld", xc->page_size, sysconf(_SC_PAGESIZE));
        return DQ_ERR_RANGE;
    }
    memset(d, 0, sizeof(*d));
    st = dsm_setup(d, cfg, true, err, errlen);
    if (st != DQ_OK) {
        dsm_free(d);
        return st;
    }
    d->x = x;
    /* Ours, not the program's ops: it owns those. */
    dq_xport_set_timer(x, dsm_on_timer, d);
    __atomic_store_n(&dsm_live, d, __ATOMIC_SEQ_CST);
    /* Failures reported before we were there to hear them. */
    for (n = 0; n < d->nodes; n++) {
        if (n != d->me && dq_xport_peer_failed(x, n)) {
            dsm_peer_failed(d, n);
        }
    }
    return DQ_OK;
}

DqStatus dq_dsm_wait_ready(char *err, size_t errlen)
{
    DqDsm *d = __atomic_load_n(&dsm_live, __ATOMIC_ACQUIRE);

    if (d == NULL) {
        snprintf(err, errlen, "the DSM engine is not running");
        return DQ_ERR_USAGE;
    }
    return dq_xport_wait_ready(d->x, err, errlen);
}

DqXport *dq_dsm_xport(void)
{
    DqDsm *d = __atomic_load_n(&dsm_live, __ATOMIC_ACQUIRE);

    return d != NULL ? d->x : NULL;
}

DqFaultResult dq_dsm_fault_ex(uintptr_t addr, bool is_write, bool is_atomic,
                              DqStatus *status)
{
    DqDsm *d = __atomic_load_n(&dsm_live, __ATOMIC_ACQUIRE);
    DqFaultResult res;
    int saved_errno;

    if (d == NULL) {
        return DQ_FAULT_NOT_OURS;
    }
    res = dq_fault_handle(&d->fault, addr, is_write, is_atomic, status);
    if (res == DQ_FAULT_HANDLED && is_atomic && is_write) {
        /* The thread is back: its lease starts counting now. */
        saved_errno = errno;
        lease_back(d, addr);
        errno = saved_errno;
    }
    return res;
}

DqFaultResult dq_dsm_fault(uintptr_t addr, bool is_write, DqStatus *status)
{
    return dq_dsm_fault_ex(addr, is_write, false, status);
}

void dq_dsm_set_lease_ns(uint64_t ns)
{
    DqDsm *d = __atomic_load_n(&dsm_live, __ATOMIC_ACQUIRE);

    if (d != NULL) {
        __atomic_store_n(&d->lease_ns, lease_ns_capped(ns), __ATOMIC_RELAXED);
    }
}

DqStatus dq_dsm_acquire_range(uintptr_t addr, size_t len, bool write)
{
    DqDsm *d = __atomic_load_n(&dsm_live, __ATOMIC_ACQUIRE);

    if (d == NULL) {
        return DQ_ERR_USAGE;
    }
    return dq_fault_acquire_range(&d->fault, addr, len, write);
}

void dq_dsm_counters(DqDsmCounters *out)
{
    DqDsm *d = &dsm_g;
    DqXport *x = __atomic_load_n(&d->x, __ATOMIC_ACQUIRE);
    DqXportTraffic t;
    unsigned i;

#define DQ_DSM_COUNTER_LOAD(name, unit, help) \
    out->name = __atomic_load_n(&d->c.name, __ATOMIC_RELAXED);
    DQ_DSM_COUNTER_LIST(DQ_DSM_COUNTER_LOAD)
#undef DQ_DSM_COUNTER_LOAD
    for (i = 0; i < DQ_DSM_HIST_BUCKETS; i++) {
        out->fault_hist[i] = __atomic_load_n(&d->c.fault_hist[i],
                                             __ATOMIC_RELAXED);
    }
    /* The transport counts its own traffic; it lives as long as we do. */
    if (x != NULL) {
        dq_xport_traffic(x, &t);
        out->msgs_sent = t.msgs_sent;
        out->bytes_sent = t.bytes_sent;
        out->msgs_received = t.msgs_received;
        out->bytes_received = t.bytes_received;
    }
}

unsigned dq_dsm_hist_bucket(uint64_t ns)
{
    uint64_t us = ns / 1000;
    unsigned b = 0;

    while (us >= 2 && b < DQ_DSM_HIST_BUCKETS - 1) {
        us >>= 1;
        b++;
    }
    return b;
}

void dq_dsm_counters_print(FILE *out, unsigned node, const DqDsmCounters *c)
{
    char line[DQ_DSM_HIST_BUCKETS * 24];
    size_t off = 0;
    unsigned i;

#define DQ_DSM_COUNTER_PRINT(name, unit, help)                              \
    fprintf(out, "dqemu: node %u: dsm: %-15s %12" PRIu64 " %s\n", node,   \
            #name, c->name, unit);
    DQ_DSM_COUNTER_LIST(DQ_DSM_COUNTER_PRINT)
#undef DQ_DSM_COUNTER_PRINT
    line[0] = '\0';
    for (i = 0; i < DQ_DSM_HIST_BUCKETS; i++) {
        if (c->fault_hist[i] == 0 || off >= sizeof(line)) {
            continue;
        }
        if (i == 0) {
            off += snprintf(line + off, sizeof(line) - off, " <2:%" PRIu64,
                            c->fault_hist[i]);
        } else if (i == DQ_DSM_HIST_BUCKETS - 1) {
            off += snprintf(line + off, sizeof(line) - off, " >=%llu:%" PRIu64,
                            1ull << i, c->fault_hist[i]);
        } else {
            off += snprintf(line + off, sizeof(line) - off,
                            " %llu-%llu:%" PRIu64, 1ull << i, 1ull << (i + 1),
                            c->fault_hist[i]);
        }
    }
    fprintf(out, "dqemu: node %u: dsm: fault latency us (bucket:count):%s\n",
            node, off > 0 ? line : " none");
}

void dq_dsm_counters_print_json(FILE *out, const DqDsmCounters *c)
{
    const char *sep = "";
    unsigned i;

    fputc('{', out);
#define DQ_DSM_COUNTER_JSON(name, unit, help)                               \
    fprintf(out, "\"%s\": %" PRIu64 ", ", #name, c->name);
    DQ_DSM_COUNTER_LIST(DQ_DSM_COUNTER_JSON)
#undef DQ_DSM_COUNTER_JSON
    fputs("\"fault_hist_us\": [", out);
    for (i = 0; i < DQ_DSM_HIST_BUCKETS; i++) {
        if (c->fault_hist[i] == 0) {
            continue;
        }
        /* The edges dq_dsm_hist_bucket() puts a latency between. */
        fprintf(out, "%s[%llu, ", sep, i == 0 ? 0ull : 1ull << i);
        if (i == DQ_DSM_HIST_BUCKETS - 1) {
            fputs("null", out);
        } else {
            fprintf(out, "%llu", 1ull << (i + 1));
        }
        fprintf(out, ", %" PRIu64 "]", c->fault_hist[i]);
        sep = ", ";
    }
    fputs("]}", out);
}

void dq_dsm_counters_sum(DqDsmCounters *sum, const DqDsmCounters *add)
{
    unsigned i;

#define DQ_DSM_COUNTER_SUM(name, unit, help) sum->name += add->name;
    DQ_DSM_COUNTER_LIST(DQ_DSM_COUNTER_SUM)
#undef DQ_DSM_COUNTER_SUM
    for (i = 0; i < DQ_DSM_HIST_BUCKETS; i++) {
        sum->fault_hist[i] += add->fault_hist[i];
    }
}

/*
 * Every lease is over: have the I/O thread answer the recalls still held
 * back (homes elsewhere may wait for them), for a bounded time.  What is
 * left after that lives in the per-page tables dsm_free() unmaps.
 * Context: dq_dsm_stop(), the engine still published.
 */
static void lease_flush(DqDsm *d)
{
    uint64_t end = now_ms() + LEASE_FLUSH_MS;

    __atomic_store_n(&d->leases_off, true, __ATOMIC_SEQ_CST);
    if (d->x == NULL) {
        return;
    }
    while (__atomic_load_n(&d->deferq.len, __ATOMIC_SEQ_CST) != 0 &&
           now_ms() < end) {
        dq_xport_arm_timer(d->x, 0);
        nap(RETRY_SLEEP_NS / 10);
    }
}

void dq_dsm_stop(void)
{
    DqDsm *d = __atomic_load_n(&dsm_live, __ATOMIC_SEQ_CST);

    if (d == NULL) {
        return;
    }
    lease_flush(d);
    if (!d->own_xport && d->x != NULL) {
        /* The program's transport outlives us: no more calls of ours. */
        dq_xport_set_timer(d->x, NULL, NULL);
    }
    d = __atomic_exchange_n(&dsm_live, NULL, __ATOMIC_SEQ_CST);
    if (d == NULL) {
        return;
    }
    /* An attached transport's I/O thread may be inside a handler. */
    while (__atomic_load_n(&dsm_users, __ATOMIC_SEQ_CST) != 0) {
        nap(RETRY_SLEEP_NS / 10);
    }
    dsm_free(d);
}
