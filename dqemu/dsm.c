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
 *     d->home_lock.  Home messages leave straight to the socket.
 *
 * So a request crosses no thread of ours at the home, and a local request
 * needs no other thread at all unless copies elsewhere must go: every
 * hand-off costs a wake-up, 10-20 us on this kind of machine, and a fault
 * is a chain of them.
 *
 * Locks: d->home_lock (the directory, the entries, the home copies, lost,
 * the self events) comes before the transport's x->lock and sock_lock; the
 * interrupted thread never holds it (it touches no DSM memory inside).  A
 * slot's install word is taken by CAS by the faulting thread or the I/O
 * thread, whichever comes first; the other waits for it to reach
 * INSTALL_DONE, which needs no other thread.
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
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "dir.h"

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
    unsigned timeout_ms;
    DqPageRegion region;
    DqFault fault;
    DqHome home;
    DqDir dir;
    bool dir_ok, home_ok, region_ok;
    DqDirEntry *entries;
    uint8_t *homed;
    uint8_t *home_valid;        /* home copy ever stored: else zeros */
    const uint8_t *zero_page;
    /*
     * Per page homed here: its last data died with a node (that node's id
     * + 1).  Requests for it are refused from then on, never answered
     * with the stale home copy.  I/O thread only.
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

    DqDsmCounters c;
} DqDsm;

static DqDsm dsm_g;
static DqDsm *dsm_live;

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
                           DqPageState want)
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
 * Context: service thread.
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

/* DqDirOps.act.  Context: service thread, inside dq_dir_*. */
static void dsm_act(void *opaque, const DqDirAction *a)
{
    DqDsm *d = opaque;
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
            dq_page_set_state(&d->region, index, DQ_PAGE_I);
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
            ev = self_alloc(d);
            CNT(d, recalls);
            ev->index = index;
            ev->ev.kind = DQ_DIR_EV_RECALL_REPLY;
            ev->ev.node = d->me;
            ev->ev.id = a->id;
            ev->ev.kept = a->mode;
            ev->ev.has_data =
                dq_page_state(&d->region, index) == DQ_PAGE_M &&
                dq_page_downgrade(&d->region, index, mode_state(a->mode),
                                  ev->data) == DQ_OK;
            self_push(d, ev);
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
                complete_local(d, a->id,
                               dq_page_set_state(&d->region, index,
                                                 DQ_PAGE_M));
            } else {
                m.type = DQ_MSG_GRANT;
                svc_send(d, &m);
            }
        } else if (a->node == d->me) {
            complete_local(d, a->id,
                           dq_page_install(&d->region, index, home,
                                           mode_state(a->mode)));
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

/* One event into the directory.  Context: service thread. */
static void svc_feed(DqDsm *d, size_t index, const DqDirEvent *ev,
                     const uint8_t *data)
{
    DqStatus st;
    DqMsg m;

    d->cur_data = data;
    st = dq_dir_handle(&d->dir, &d->entries[index], ev);
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
            if (dq_dir_serve_next(&d->dir, &d->entries[index]) != DQ_OK) {
                CNT(d, proto_errors);
            }
        } else {
            return;
        }
    }
}

/*
 * Tell every entry homed here that @node is gone.  A page it held in M
 * (and had not written back) is marked lost first: the directory goes on
 * to serve waiting requests from the stale home copy, and those answers
 * must become refusals.
 */
static void home_node_failed(DqDsm *d, unsigned node)
{
    const DqDirEntry *e;
    DqDirEvent ev;
    size_t i;

    for (i = 0; i < d->region.pages; i++) {
        if (d->homed[i]) {
            e = &d->entries[i];
            if (e->owner == node && !dq_dir_home_current(e)) {
                __atomic_store_n(&d->lost[i], (uint8_t)(node + 1),
                                 __ATOMIC_RELAXED);
            }
            memset(&ev, 0, sizeof(ev));
            ev.kind = DQ_DIR_EV_NODE_FAILED;
            ev.node = node;
            svc_feed(d, i, &ev, NULL);
            svc_drain(d);
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

/* Is this thread inside the directory?  Only the holder can see true. */
static bool home_lock_mine(DqDsm *d)
{
    /* Unlocked read: the id there may be another holder's or a stale
     * one, but it equals ours only if this thread wrote it and still
     * holds the lock (held is cleared before every unlock). */
    return __atomic_load_n(&d->home_held, __ATOMIC_ACQUIRE) &&
           pthread_equal(d->home_holder, pthread_self());
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
    home_lock_drop(d);
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

    if (!d->homed[index]) {
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
    default:                    /* RECALL_DATA */
        ev.kind = DQ_DIR_EV_RECALL_REPLY;
        ev.kept = msg->u.page.state == DQ_PROTO_STATE_S ?
                  DQ_DIR_MODE_S : DQ_DIR_MODE_I;
        ev.has_data = msg->tail_len == d->ps;
        break;
    }
    home_lock_take(d);
    home_event(d, index, &ev, ev.has_data ? msg->tail : NULL);
    home_lock_drop(d);
}

static void dsm_on_message(void *opaque, const DqMsg *msg)
{
    DqDsm *d = opaque;
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
        break;
    default:
        return;                 /* late replies, forwarding: not yet */
    }
    if (!dq_page_index(&d->region, (uintptr_t)msg->u.page.addr, &index)) {
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
        dq_page_set_state(&d->region, index, DQ_PAGE_I);
        m.type = DQ_MSG_INVAL_ACK;
        dq_xport_send(x, &m);
        return;
    }
    /* RECALL: only an M copy has data to send; otherwise ignore it. */
    if (dq_page_state(&d->region, index) != DQ_PAGE_M ||
        msg->u.page.state == DQ_PROTO_STATE_M) {
        return;
    }
    CNT(d, recalls);
    if (dq_page_downgrade(&d->region, index,
                          msg->u.page.state == DQ_PROTO_STATE_S ?
                          DQ_PAGE_S : DQ_PAGE_I, d->io_buf) != DQ_OK) {
        return;
    }
    m.type = DQ_MSG_RECALL_DATA;
    m.u.page.state = msg->u.page.state;
    m.tail = d->io_buf;
    m.tail_len = d->ps;
    dq_xport_send(x, &m);
}

static void dsm_on_peer_failed(void *opaque, unsigned node, const char *why)
{
    DqDsm *d = opaque;

    if (home_lock_mine(d)) {
        d->failed_later |= 1ull << node;    /* after the current event */
    } else {
        home_lock_take(d);
        d->failed_later |= 1ull << node;
        home_failures(d);
        home_lock_drop(d);
    }
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

/* ---- set-up and tear-down --------------------------------------------- */

static void dsm_free(DqDsm *d)
{
    dq_xport_free(d->x);
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
    free(d->entries);
    free(d->homed);
    free(d->home_valid);
    free((void *)d->zero_page);
    free(d->lost);
    free(d->home_copy);
    free(d->slots);
    free(d->slot_bufs);
    free(d->pending);
    free(d->io_buf);
    free(d->serve);
    free(d->serve_flag);
    free(d->txn_dir);
    free(d->txn_wire);
    memset(d, 0, sizeof(*d));
}

#define START_FAIL(st_, ...)                        \
    do {                                            \
        snprintf(err, errlen, __VA_ARGS__);         \
        st = (st_);                                 \
        goto fail;                                  \
    } while (0)

DqStatus dq_dsm_start(const DqDsmConfig *cfg, char *err, size_t errlen)
{
    DqDsm *d = &dsm_g;
    DqXportConfig xc;
    DqProtoLimits lim;
    DqFaultOps fops;
    DqDirOps dops;
    DqStatus st;
    size_t i;
    long ps = sysconf(_SC_PAGESIZE);

    if (__atomic_load_n(&dsm_live, __ATOMIC_ACQUIRE) != NULL) {
        snprintf(err, errlen, "the DSM engine is already running");
        return DQ_ERR_USAGE;
    }
    memset(d, 0, sizeof(*d));
    d->cfg = *cfg;
    d->me = cfg->xport.node_id;
    d->nodes = cfg->xport.node_count;
    d->ps = (size_t)ps;
    d->timeout_ms = cfg->request_timeout_ms ? cfg->request_timeout_ms :
                    DQ_DSM_REQUEST_TIMEOUT_MS;
    d->nslots = cfg->slots ? cfg->slots : DQ_DSM_DEFAULT_SLOTS;

    if (cfg->xport.ops.on_message != NULL) {
        START_FAIL(DQ_ERR_USAGE, "on_message belongs to the DSM engine");
    }
    if (cfg->home_policy == DQ_HOME_FIRST_TOUCH) {
        START_FAIL(DQ_ERR_NOSYS, "first-touch homes are not supported yet");
    }
    if (d->nodes == 0 || d->nodes > DQ_MAX_NODES || d->me >= d->nodes) {
        START_FAIL(DQ_ERR_RANGE, "node %u of %u", d->me, d->nodes);
    }
    st = dq_page_region_init(&d->region, cfg->base, cfg->len, DQ_PAGE_I,
                             PROT_READ | PROT_WRITE);
    if (st != DQ_OK) {
        START_FAIL(st, "cannot register the region: %s", dq_status_str(st));
    }
    d->region_ok = true;
    fops.obtain = dsm_obtain;
    fops.opaque = d;
    dq_fault_init(&d->fault, &d->region, &fops);
    st = dq_home_init(&d->home, cfg->home_policy, d->nodes,
                      cfg->home_block_shift, 0);
    if (st != DQ_OK) {
        START_FAIL(st, "cannot set up homes: %s", dq_status_str(st));
    }
    d->home_ok = true;
    dops.act = dsm_act;
    dops.opaque = d;
    st = dq_dir_init(&d->dir, d->nodes, d->nodes * d->nslots + 16, &dops);
    if (st != DQ_OK) {
        START_FAIL(st, "cannot set up the directory: %s", dq_status_str(st));
    }
    d->dir_ok = true;
    st = dq_proto_limits_init(&lim, (uint32_t)d->ps, cfg->xport.max_payload);
    if (st != DQ_OK) {
        START_FAIL(st, "bad limits: %s", dq_status_str(st));
    }
    d->buflen = dq_proto_max_msg_size(&lim);

    d->entries = calloc(d->region.pages, sizeof(*d->entries));
    d->homed = calloc(d->region.pages, 1);
    d->home_valid = calloc(d->region.pages, 1);
    d->zero_page = calloc(1, d->ps);
    d->lost = calloc(d->region.pages, 1);
    d->home_copy = calloc(d->region.pages, d->ps);
    d->pending = calloc(d->region.pages, sizeof(*d->pending));
    d->serve = calloc(d->region.pages, sizeof(*d->serve));
    d->serve_flag = calloc(d->region.pages, 1);
    d->txn_dir = calloc(d->region.pages, sizeof(uint64_t));
    d->txn_wire = calloc(d->region.pages, sizeof(uint64_t));
    d->slots = calloc(d->nslots, sizeof(*d->slots));
    d->slot_bufs = calloc(d->nslots, d->buflen);
    d->io_buf = malloc(d->ps);
    if (!d->entries || !d->homed || !d->home_valid || !d->zero_page ||
        !d->lost || !d->home_copy || !d->pending ||
        !d->serve || !d->serve_flag || !d->txn_dir || !d->txn_wire ||
        !d->slots || !d->slot_bufs ||
        !d->io_buf) {
        START_FAIL(DQ_ERR_NOMEM, "out of memory for %zu pages",
                   d->region.pages);
    }
    for (i = 0; i < d->nslots; i++) {
        d->slots[i].buf = d->slot_bufs + i * d->buflen;
    }
    for (i = 0; i < SELF_EVENTS; i++) {
        DqDsmEv *ev = calloc(1, sizeof(*ev) + d->ps);

        if (ev == NULL) {
            START_FAIL(DQ_ERR_NOMEM, "out of memory");
        }
        self_release(d, ev);
    }
    pthread_mutex_init(&d->home_lock, NULL);
    d->home_lock_ok = true;
    for (i = 0; i < d->region.pages; i++) {
        if (dq_home_of(&d->home, i) == d->me) {
            d->homed[i] = 1;
            dq_dir_entry_init(&d->entries[i], page_addr(d, i),
                              DQ_DIR_NO_NODE);
        }
    }
    xc = cfg->xport;
    xc.page_size = (uint32_t)d->ps;
    xc.ops.on_message = dsm_on_message;
    xc.ops.on_peer_failed = dsm_on_peer_failed;
    xc.ops.on_shutdown = dsm_on_shutdown;
    xc.opaque = d;
    {
        DqXport *x;

        st = dq_xport_start(&xc, &x, err, errlen);
        if (st != DQ_OK) {
            goto fail;
        }
        __atomic_store_n(&d->x, x, __ATOMIC_RELEASE);
    }
    __atomic_store_n(&dsm_live, d, __ATOMIC_RELEASE);
    return DQ_OK;

fail:
    dsm_free(d);
    return st;
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

DqFaultResult dq_dsm_fault(uintptr_t addr, bool is_write, DqStatus *status)
{
    DqDsm *d = __atomic_load_n(&dsm_live, __ATOMIC_ACQUIRE);

    if (d == NULL) {
        return DQ_FAULT_NOT_OURS;
    }
    return dq_fault_handle(&d->fault, addr, is_write, status);
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

void dq_dsm_stop(void)
{
    DqDsm *d = __atomic_exchange_n(&dsm_live, NULL, __ATOMIC_ACQ_REL);

    if (d != NULL) {
        dsm_free(d);
    }
}
