/*
 * xport.c - node transport over ZeroMQ, and cluster membership (xport.h).
 *
 * One I/O thread per node receives on the ZeroMQ context's only socket, a
 * ROUTER: it polls the socket's ZMQ_FD, an eventfd that application
 * threads write after queuing work (or moving the timer up), the
 * heartbeat tick and the one-shot timer (dq_xport_arm_timer).  Once the
 * cluster is ready an application thread sends its request itself, under
 * x->sock_lock, instead of handing it to the I/O thread: every hand-off
 * costs a thread wake-up (10-20 us here), as much as a TCP round trip.
 * libzmq sockets are not thread-safe but may move between threads behind
 * a full barrier, which the mutex is.  A requester sleeps on a futex in
 * its own stack slot; the I/O thread copies the reply in and wakes it.
 *
 * ZMQ_FD is edge-like: any zmq call on the socket may consume the
 * notification of a message that just arrived.  So the I/O thread checks
 * ZMQ_EVENTS before it sleeps, and a thread that sent directly checks it
 * afterwards and wakes the I/O thread when input is waiting.
 *
 * Lock order: x->lock, then x->sock_lock; both are leaves for application
 * threads apart from that.  The I/O thread holds x->lock around zmq_send
 * of a queued request only (so the request it reads cannot vanish under
 * it); libzmq's internal locks nest inside.  Callbacks run with no lock
 * held.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE     /* also set by QEMU's build */
#endif
#include "xport.h"
#include "xport-guard.h"

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

/*
 * Routing ids: 'D', the node id, then (workers) 8 bytes unique to the
 * process, so a second process claiming a taken node id still gets its own
 * connection and can be refused instead of being dropped by the ROUTER.
 * The master's is just "D\0": workers must know it before joining.
 */
#define RID_MAX     10
#define RID_TAG     'D'

/* Linger at close: long enough for a last ack or refusal on loopback. */
#define XPORT_LINGER_MS     500
/* How long dq_xport_free() waits for libzmq's context to end. */
#define XPORT_TERM_WAIT_MS  3000
/* Largest request an application thread encodes on its own stack. */
#define XPORT_DIRECT_MAX    256
/* Messages read per poll round, so timers run under a flood. */
#define XPORT_RX_BATCH      256
/*
 * The I/O thread's timer slack.  Linux's default, 50 us, would stretch a
 * lease of tens of us (dsm.c) several times over; waking that little
 * earlier or later costs nothing measurable.
 */
#define XPORT_TIMER_SLACK_NS 1000
#define XPORT_TIMER_NONE    UINT64_MAX

typedef struct DqPeer {
    uint8_t rid[RID_MAX];
    size_t rid_len;             /* 0: not known yet */
    char endpoint[DQ_XPORT_ENDPOINT_MAX];
    bool joined;                /* member of the cluster */
    bool heard;                 /* something arrived from it */
    bool failed;                /* declared dead; written under x->lock */
    bool shutdown_acked;        /* it acknowledged a SHUTDOWN: leaving */
    bool unreachable;           /* a send found its connection gone */
    uint64_t join_req_id;       /* master: the JOIN_REQ to answer */
    uint64_t last_rx_ms;
    uint64_t last_tx_ms;
} DqPeer;

/* One application thread blocked in dq_xport_request(), on its stack. */
typedef struct DqXportWait {
    struct DqXportWait *next, *prev;    /* x->pending, under x->lock */
    struct DqXportWait *qnext;          /* x->sendq, under x->lock */
    bool queued;                        /* still on x->sendq */
    const DqMsg *req;
    uint64_t req_id;
    unsigned dst;
    DqMsg *reply;
    uint8_t *buf;
    size_t buflen;
    DqStatus status;
    uint32_t done;                      /* futex word: 0 waiting, 1 done */
} DqXportWait;

/*
 * A received message held back by the simulated link delay
 * (cfg.rx_delay_us): the frames, copied, and when it is due.
 */
typedef struct DqXportHeld {
    struct DqXportHeld *next;
    uint64_t due_ns;
    char addr[64];
    size_t rid_len, len, alen;  /* alen 0 and no annex: none */
    bool has_annex;
    uint8_t *rid, *data, *annex;    /* point into bytes[] */
    uint8_t bytes[];
} DqXportHeld;

/* One message from dq_xport_send() off the I/O thread, already encoded. */
typedef struct DqXportOut {
    struct DqXportOut *next;
    unsigned dst;
    size_t len;
    uint8_t data[];
} DqXportOut;

struct DqXport {
    DqXportConfig cfg;
    DqProtoLimits lim;
    char master_ep[DQ_XPORT_ENDPOINT_MAX];
    char bind_ep[DQ_XPORT_ENDPOINT_MAX];
    uint64_t nonce;

    void *ctx;
    void *sock;                 /* under sock_lock once started */
    pthread_mutex_t sock_lock;
    int zmq_fd;                 /* ZMQ_FD of sock */
    DqGuard *guard;             /* CURVE, ZAP, handshake monitor */
    /*
     * I/O thread only: the message being handled, to find where it came
     * from should it be refused (looked up then, not for every message),
     * or that address already, for a message held back by rx_delay_us.
     */
    zmq_msg_t *rx_frame;
    const char *rx_addr;
    DqXportHeld *held_head, *held_tail; /* I/O thread: delayed input */
    int wake_fd;
    pthread_t io_thread;
    bool io_started;
    uint8_t *scratch;           /* I/O thread's encode buffer */
    size_t scratch_len;

    uint64_t next_req_id;       /* atomic */
    DqXportTraffic traffic;     /* relaxed atomics */
    uint64_t timer_at;          /* atomic: CLOCK_MONOTONIC ns, or
                                 * XPORT_TIMER_NONE */
    uint64_t last_timers_ms;    /* I/O thread only: timers() last ran */

    /* Everything below is under lock. */
    pthread_mutex_t lock;
    pthread_cond_t cond;        /* ready, failures, shutdown progress,
                                 * requesters leaving */
    DqXportWait *pending;
    unsigned requesters;        /* threads inside dq_xport_request() */
    DqXportWait *sendq_head, *sendq_tail;
    DqXportOut *outq_head, *outq_tail;
    bool stop;
    bool ready;
    bool accepted;              /* worker: JOIN_ACCEPT seen */
    bool learn_count;           /* worker: node_count comes with the ACCEPT */
    uint64_t heard_mask;        /* peers[i].heard, for wait_ready's text */
    DqStatus start_status;      /* first start-up error */
    char start_err[DQ_ERRBUF_SIZE];
    bool fail_seen;             /* some peer failed */
    char fail_err[DQ_ERRBUF_SIZE];  /* the first failure */
    char master_err[DQ_ERRBUF_SIZE]; /* worker: how the master was lost */
    unsigned refusals;          /* connections and joins turned away */
    char refused_err[DQ_ERRBUF_SIZE]; /* the last of them */
    bool shutdown_req;          /* master: app asked for SHUTDOWN */
    bool shutdown_sent;
    uint32_t shutdown_code;
    bool got_shutdown;          /* worker: SHUTDOWN received */
    DqXportTimerFn timer_fn;    /* dq_xport_set_timer */
    void *timer_opaque;

    /* Peers: failed is under lock; the rest belongs to the I/O thread. */
    DqPeer peers[DQ_MAX_NODES];
};

static __thread DqXport *io_thread_of;

/* ---- small helpers ---------------------------------------------------- */

static void fmt(char *buf, size_t len, const char *f, ...)
    __attribute__((format(printf, 3, 4)));

static void fmt(char *buf, size_t len, const char *f, ...)
{
    va_list ap;

    if (buf == NULL || len == 0) {
        return;
    }
    va_start(ap, f);
    vsnprintf(buf, len, f, ap);
    va_end(ap);
}

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

static void deadline_ts(struct timespec *ts, unsigned ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000;
    if (ts->tv_nsec >= 1000000000) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000;
    }
}

static void wake_io(DqXport *x)
{
    uint64_t one = 1;

    /* Only EAGAIN (counter saturated) can fail here, and then a wake-up
     * is already pending. */
    if (write(x->wake_fd, &one, sizeof(one)) < 0) {
        return;
    }
}

static void futex_wake(uint32_t *word)
{
    syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

static void make_rid(uint8_t *rid, size_t *len, unsigned node, uint64_t nonce)
{
    rid[0] = RID_TAG;
    rid[1] = (uint8_t)node;
    if (node == 0) {
        *len = 2;
        return;
    }
    memcpy(rid + 2, &nonce, 8);
    *len = RID_MAX;
}

/* Messages that answer a request and may complete a dq_xport_request(). */
static bool is_reply(DqMsgType t)
{
    return t == DQ_MSG_GRANT_DATA || t == DQ_MSG_GRANT ||
           t == DQ_MSG_INVAL_ACK || t == DQ_MSG_RECALL_DATA ||
           t == DQ_MSG_NACK || t == DQ_MSG_CALL_REPLY;
}

static bool endpoint_ok(const char *ep, size_t len)
{
    size_t i;

    if (len == 0 || len >= DQ_XPORT_ENDPOINT_MAX) {
        return false;
    }
    for (i = 0; i < len; i++) {
        if (ep[i] < 0x21 || ep[i] > 0x7e) {
            return false;
        }
    }
    return true;
}

/* ---- sending (I/O thread) --------------------------------------------- */

/*
 * Send one message to routing id @rid, with an optional second frame
 * @annex (membership data that the fixed-body protocol cannot carry).
 * Returns 0 or an errno: EHOSTUNREACH when the ROUTER has no connection
 * to that peer (ZMQ_ROUTER_MANDATORY turns the silent drop into this).
 * Context: I/O thread.
 */
static int send_rid(DqXport *x, const uint8_t *rid, size_t rid_len,
                    const void *data, size_t len,
                    const void *annex, size_t annex_len)
{
    int more = annex != NULL ? ZMQ_SNDMORE : 0;
    int e = 0;

    pthread_mutex_lock(&x->sock_lock);
    if (zmq_send(x->sock, rid, rid_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
        e = errno;
    /* Once the routing frame is accepted the rest cannot be refused. */
    } else if (zmq_send(x->sock, data, len, more | ZMQ_DONTWAIT) < 0) {
        e = errno;
    } else if (annex != NULL &&
               zmq_send(x->sock, annex, annex_len, ZMQ_DONTWAIT) < 0) {
        e = errno;
    }
    pthread_mutex_unlock(&x->sock_lock);
    if (e == 0) {
        __atomic_fetch_add(&x->traffic.msgs_sent, 1, __ATOMIC_RELAXED);
        __atomic_fetch_add(&x->traffic.bytes_sent,
                           (uint64_t)(len + (annex ? annex_len : 0)),
                           __ATOMIC_RELAXED);
    }
    return e;
}

/* Is a message waiting on the socket?  Context: any thread. */
static bool sock_readable(DqXport *x)
{
    int ev = 0;
    size_t len = sizeof(ev);

    pthread_mutex_lock(&x->sock_lock);
    if (zmq_getsockopt(x->sock, ZMQ_EVENTS, &ev, &len) != 0) {
        ev = ZMQ_POLLIN;        /* let the I/O thread find out */
    }
    pthread_mutex_unlock(&x->sock_lock);
    return (ev & ZMQ_POLLIN) != 0;
}

static void fail_peer(DqXport *x, unsigned node, const char *why);

/*
 * Context: I/O thread, or an application thread once the cluster is ready
 * (routing ids no longer change then).
 */
static int send_node(DqXport *x, unsigned dst, const void *data, size_t len,
                     const void *annex, size_t annex_len)
{
    DqPeer *p = &x->peers[dst];
    int e;

    if (p->rid_len == 0) {
        return EHOSTUNREACH;
    }
    e = send_rid(x, p->rid, p->rid_len, data, len, annex, annex_len);
    if (e == 0) {
        __atomic_store_n(&p->last_tx_ms, now_ms(), __ATOMIC_RELAXED);
    }
    return e;
}

/*
 * Send @data from an application thread.  Afterwards the I/O thread is
 * woken if input waits: our zmq calls may have eaten its notification.
 * Context: application thread, cluster ready.
 */
static int send_direct(DqXport *x, unsigned dst, const void *data,
                       size_t len)
{
    int e = send_node(x, dst, data, len, NULL, 0);

    if (sock_readable(x)) {
        wake_io(x);
    }
    return e;
}

/* Encode @m into the scratch buffer and send it.  Context: I/O thread. */
static DqStatus send_msg_io(DqXport *x, const DqMsg *m,
                            const void *annex, size_t annex_len)
{
    size_t len;
    DqStatus st;
    int e;

    st = dq_proto_encode(m, &x->lim, x->scratch, x->scratch_len, &len);
    if (st != DQ_OK) {
        return st;
    }
    e = send_node(x, m->dst, x->scratch, len, annex, annex_len);
    if (e == EHOSTUNREACH) {
        if (x->ready) {
            x->peers[m->dst].unreachable = true;
        }
        return DQ_ERR_XPORT_PEER_FAILED;
    }
    return e == 0 ? DQ_OK : DQ_ERR_XPORT_ZMQ;
}

/* A message with no body (HEARTBEAT, SHUTDOWN_ACK).  Context: I/O thread. */
static void send_simple(DqXport *x, unsigned dst, DqMsgType type,
                        uint64_t req_id)
{
    DqMsg m;

    memset(&m, 0, sizeof(m));
    m.type = type;
    m.src = (uint16_t)x->cfg.node_id;
    m.dst = (uint16_t)dst;
    m.req_id = req_id;
    send_msg_io(x, &m, NULL, 0);
}

/* ---- completion of waiters -------------------------------------------- */

/* Context: x->lock held. */
static void unlink_wait_locked(DqXport *x, DqXportWait *w)
{
    DqXportWait **pp;

    if (w->prev != NULL) {
        w->prev->next = w->next;
    } else {
        x->pending = w->next;
    }
    if (w->next != NULL) {
        w->next->prev = w->prev;
    }
    w->next = w->prev = NULL;
    if (w->queued) {
        x->sendq_tail = NULL;
        for (pp = &x->sendq_head; *pp != NULL; pp = &(*pp)->qnext) {
            if (*pp == w) {
                *pp = w->qnext;
                break;
            }
        }
        for (pp = &x->sendq_head; *pp != NULL; pp = &(*pp)->qnext) {
            x->sendq_tail = *pp;
        }
        w->queued = false;
    }
}

/*
 * Finish @w with @st and wake its thread.  The waiter takes x->lock
 * before it returns, so @w stays valid until we unlock.
 * Context: x->lock held.
 */
static void complete_locked(DqXport *x, DqXportWait *w, DqStatus st)
{
    unlink_wait_locked(x, w);
    w->status = st;
    __atomic_store_n(&w->done, 1, __ATOMIC_RELEASE);
    futex_wake(&w->done);
}

/* Hand @w to the I/O thread to send.  Context: x->lock held. */
static void queue_request_locked(DqXport *x, DqXportWait *w)
{
    w->queued = true;
    w->qnext = NULL;
    if (x->sendq_tail != NULL) {
        x->sendq_tail->qnext = w;
    } else {
        x->sendq_head = w;
    }
    x->sendq_tail = w;
}

/* Context: x->lock held. */
static void fail_waiters_locked(DqXport *x, int node, DqStatus st)
{
    DqXportWait *w, *next;

    for (w = x->pending; w != NULL; w = next) {
        next = w->next;
        if (node < 0 || w->dst == (unsigned)node) {
            complete_locked(x, w, st);
        }
    }
}

/* Context: I/O thread; takes x->lock; calls on_peer_failed unlocked. */
static void fail_peer(DqXport *x, unsigned node, const char *why)
{
    pthread_mutex_lock(&x->lock);
    if (x->peers[node].failed) {
        pthread_mutex_unlock(&x->lock);
        return;
    }
    x->peers[node].failed = true;
    fail_waiters_locked(x, (int)node, DQ_ERR_XPORT_PEER_FAILED);
    if (!x->fail_seen) {
        x->fail_seen = true;
        fmt(x->fail_err, sizeof(x->fail_err), "lost contact with node %u (%s)",
            node, why);
    }
    if (node == 0) {
        fmt(x->master_err, sizeof(x->master_err),
            "lost contact with node 0 (%s)", why);
    }
    if (!x->ready && x->start_status == DQ_OK) {
        x->start_status = DQ_ERR_XPORT_PEER_FAILED;
        fmt(x->start_err, sizeof(x->start_err),
            "node %u failed during start-up (%s)", node, why);
    }
    pthread_cond_broadcast(&x->cond);
    pthread_mutex_unlock(&x->lock);
    if (x->cfg.ops.on_peer_failed != NULL) {
        x->cfg.ops.on_peer_failed(x->cfg.opaque, node, why);
    }
}

/*
 * The cluster will not form: record why, and fail what was asked of it
 * meanwhile (a request made before ready may wait forever otherwise).
 * Context: I/O thread; takes x->lock.
 */
static void start_error(DqXport *x, DqStatus st, const char *f, ...)
    __attribute__((format(printf, 3, 4)));

static void start_error(DqXport *x, DqStatus st, const char *f, ...)
{
    va_list ap;

    pthread_mutex_lock(&x->lock);
    if (x->start_status == DQ_OK && !x->ready) {
        x->start_status = st;
        va_start(ap, f);
        vsnprintf(x->start_err, sizeof(x->start_err), f, ap);
        va_end(ap);
        fail_waiters_locked(x, -1, st);
        pthread_cond_broadcast(&x->cond);
    }
    pthread_mutex_unlock(&x->lock);
}

/* ---- membership ------------------------------------------------------- */

/* First message from @n.  Context: I/O thread; takes x->lock. */
static void mark_heard(DqXport *x, unsigned n)
{
    x->peers[n].heard = true;
    pthread_mutex_lock(&x->lock);
    x->heard_mask |= 1ull << n;
    pthread_mutex_unlock(&x->lock);
}

/*
 * Ready once accepted (the master: once all joined) and every peer has
 * been heard from.  Context: I/O thread; takes x->lock.
 */
static void check_ready(DqXport *x)
{
    unsigned i;

    if (x->ready || (x->cfg.node_id != 0 && !x->accepted)) {
        return;
    }
    for (i = 0; i < x->cfg.node_count; i++) {
        if (i != x->cfg.node_id && !x->peers[i].heard) {
            return;
        }
    }
    pthread_mutex_lock(&x->lock);
    if (x->start_status == DQ_OK) {
        x->ready = true;
    }
    pthread_cond_broadcast(&x->cond);
    pthread_mutex_unlock(&x->lock);
}

static void fill_join(DqXport *x, DqMsg *m, DqMsgType type, unsigned dst,
                      uint64_t req_id)
{
    memset(m, 0, sizeof(*m));
    m->type = type;
    m->src = (uint16_t)x->cfg.node_id;
    m->dst = (uint16_t)dst;
    m->req_id = req_id;
    m->u.join.cluster_id = x->cfg.cluster_id;
    m->u.join.page_size = x->cfg.page_size;
    m->u.join.version = DQ_PROTO_VERSION;
    /* 0: "any size" -- a worker started without knowing it. */
    m->u.join.node_count = x->learn_count ? 0 : (uint16_t)x->cfg.node_count;
}

/*
 * The peer table that rides in JOIN_ACCEPT's second frame: for every node
 * in id order, u8 routing-id length, the routing id, u8 endpoint length,
 * the endpoint.  (A proto.h message type with a variable tail would be
 * the cleaner home for it; see the report on issue 4.)
 */
static size_t build_table(DqXport *x, uint8_t *out, size_t cap)
{
    size_t off = 0, el;
    unsigned i;

    for (i = 0; i < x->cfg.node_count; i++) {
        const DqPeer *p = &x->peers[i];

        el = strlen(p->endpoint);
        if (off + 2 + p->rid_len + el > cap) {
            return 0;
        }
        out[off++] = (uint8_t)p->rid_len;
        memcpy(out + off, p->rid, p->rid_len);
        off += p->rid_len;
        out[off++] = (uint8_t)el;
        memcpy(out + off, p->endpoint, el);
        off += el;
    }
    return off;
}

/* Where a received frame came from, for refusals. */
static const char *frame_addr(zmq_msg_t *m)
{
    const char *a = zmq_msg_gets(m, "Peer-Address");

    return a != NULL && *a != '\0' ? a : "a local socket";
}

/* Where the message being handled came from.  Context: I/O thread. */
static const char *rx_peer(DqXport *x)
{
    if (x->rx_addr != NULL) {
        return x->rx_addr;
    }
    return x->rx_frame != NULL ? frame_addr(x->rx_frame) :
           "an unknown address";
}

/*
 * A connection or a join from @addr was turned away: remember it for the
 * start-up's error and tell the application.  The cluster goes on
 * forming: whoever can reach the port must not be able to stop it.
 * Context: I/O thread; takes x->lock.
 */
static void note_refused(DqXport *x, const char *addr, const char *why)
{
    pthread_mutex_lock(&x->lock);
    x->refusals++;
    fmt(x->refused_err, sizeof(x->refused_err), "%s (from %s)", why, addr);
    pthread_mutex_unlock(&x->lock);
    if (x->cfg.ops.on_refused != NULL) {
        x->cfg.ops.on_refused(x->cfg.opaque, addr, why);
    }
}

/* The guard's report: refusals of ours, or a peer refusing us. */
static void guard_report(void *opaque, DqGuardEvent ev, const char *addr,
                         const char *why)
{
    DqXport *x = opaque;

    if (ev == DQ_GUARD_REFUSED) {
        note_refused(x, addr, why);
    } else if (x->cfg.node_id != 0) {
        start_error(x, DQ_ERR_XPORT_REFUSED, "node at %s refused this "
                    "node: %s (is --cluster-key the cluster's key?)", addr,
                    why);
    }
}

/* Answer a join with JOIN_REFUSE, so the joiner learns why, and note it.
 * Context: I/O thread; takes x->lock. */
static void refuse(DqXport *x, const uint8_t *rid, size_t rid_len,
                   unsigned node, uint64_t req_id, DqJoinRefuse reason,
                   const char *detail)
{
    char why[DQ_ERRBUF_SIZE];
    DqMsg m;
    size_t len;

    fill_join(x, &m, DQ_MSG_JOIN_REFUSE, node, req_id);
    m.u.join.reason = reason;
    if (dq_proto_encode(&m, &x->lim, x->scratch, x->scratch_len,
                        &len) == DQ_OK) {
        send_rid(x, rid, rid_len, x->scratch, len, NULL, 0);
    }
    fmt(why, sizeof(why), "not a member of this cluster (refused node %u: "
        "%s%s)", node, dq_join_refuse_str(reason), detail);
    note_refused(x, rx_peer(x), why);
}

/* Master: a JOIN_REQ from routing id @rid.  Context: I/O thread. */
static void handle_join(DqXport *x, const uint8_t *rid, size_t rid_len,
                        const DqMsg *m, const uint8_t *annex, size_t alen)
{
    const DqMsgJoin *j = &m->u.join;
    unsigned n = m->src, i;
    char detail[160];
    uint8_t table[DQ_MAX_NODES * (2 + RID_MAX + DQ_XPORT_ENDPOINT_MAX)];
    size_t tlen;
    DqMsg acc;
    DqPeer *p;

    if (j->version != DQ_PROTO_VERSION) {
        snprintf(detail, sizeof(detail), " (node has %u, cluster %u)",
                 j->version, DQ_PROTO_VERSION);
        refuse(x, rid, rid_len, n, m->req_id, DQ_JOIN_REFUSE_VERSION, detail);
        return;
    }
    if (j->cluster_id != x->cfg.cluster_id) {
        snprintf(detail, sizeof(detail),
                 " (node has %#" PRIx64 ", cluster %#" PRIx64 ")",
                 j->cluster_id, x->cfg.cluster_id);
        refuse(x, rid, rid_len, n, m->req_id, DQ_JOIN_REFUSE_CLUSTER, detail);
        return;
    }
    if (j->node_count != x->cfg.node_count && j->node_count != 0) {
        snprintf(detail, sizeof(detail), " (node has %u, cluster %u)",
                 j->node_count, x->cfg.node_count);
        refuse(x, rid, rid_len, n, m->req_id, DQ_JOIN_REFUSE_NODE_COUNT,
               detail);
        return;
    }
    if (j->page_size != x->cfg.page_size) {
        snprintf(detail, sizeof(detail), " (node has %u, cluster %u)",
                 j->page_size, x->cfg.page_size);
        refuse(x, rid, rid_len, n, m->req_id, DQ_JOIN_REFUSE_PAGE_SIZE,
               detail);
        return;
    }
    if (n == 0 || n >= x->cfg.node_count || x->peers[n].joined ||
        rid_len != RID_MAX || rid[1] != n) {
        snprintf(detail, sizeof(detail), " (cluster of %u nodes, %s)",
                 x->cfg.node_count,
                 n > 0 && n < x->cfg.node_count && x->peers[n].joined ?
                 "node id taken" : "node id invalid");
        refuse(x, rid, rid_len, n, m->req_id, DQ_JOIN_REFUSE_NODE_ID, detail);
        return;
    }
    if (annex == NULL || !endpoint_ok((const char *)annex, alen)) {
        refuse(x, rid, rid_len, n, m->req_id, DQ_JOIN_REFUSE_VERSION,
               " (no valid endpoint in the join request)");
        return;
    }

    p = &x->peers[n];
    memcpy(p->rid, rid, rid_len);
    p->rid_len = rid_len;
    memcpy(p->endpoint, annex, alen);
    p->endpoint[alen] = '\0';
    p->joined = true;
    mark_heard(x, n);
    p->last_rx_ms = now_ms();
    /* Answered when everyone is in, so workers start together. */
    p->join_req_id = m->req_id;

    for (i = 1; i < x->cfg.node_count; i++) {
        if (!x->peers[i].joined) {
            return;
        }
    }
    /* Everyone is in: send each worker the table, then we are ready. */
    tlen = build_table(x, table, sizeof(table));
    for (i = 1; i < x->cfg.node_count; i++) {
        fill_join(x, &acc, DQ_MSG_JOIN_ACCEPT, i, x->peers[i].join_req_id);
        if (send_msg_io(x, &acc, table, tlen) != DQ_OK) {
            start_error(x, DQ_ERR_XPORT_PEER_FAILED,
                        "could not send JOIN_ACCEPT to node %u", i);
        }
    }
    x->accepted = true;
    check_ready(x);
}

/* Worker: parse the peer table and connect to lower-numbered workers.
 * Context: I/O thread. */
static void handle_accept(DqXport *x, const DqMsg *m,
                          const uint8_t *annex, size_t alen)
{
    const DqMsgJoin *j = &m->u.join;
    size_t off = 0, rl, el;
    unsigned i;
    DqPeer *p;

    if (x->accepted) {
        return;
    }
    if (x->learn_count && j->cluster_id == x->cfg.cluster_id &&
        x->cfg.node_id < j->node_count && j->node_count <= DQ_MAX_NODES) {
        pthread_mutex_lock(&x->lock);
        x->cfg.node_count = j->node_count;
        x->learn_count = false;
        pthread_mutex_unlock(&x->lock);
    }
    if (j->cluster_id != x->cfg.cluster_id ||
        j->node_count != x->cfg.node_count ||
        j->page_size != x->cfg.page_size) {
        start_error(x, DQ_ERR_XPORT_REFUSED,
                    "master accepted us with other cluster parameters");
        return;
    }
    for (i = 0; i < x->cfg.node_count; i++) {
        if (annex == NULL || off >= alen) {
            goto bad;
        }
        rl = annex[off++];
        if (rl < 2 || rl > RID_MAX || off + rl >= alen) {
            goto bad;
        }
        if (annex[off] != RID_TAG || annex[off + 1] != i) {
            goto bad;
        }
        p = &x->peers[i];
        if (i != 0 && i != x->cfg.node_id) {
            memcpy(p->rid, annex + off, rl);
            p->rid_len = rl;
        }
        off += rl;
        el = annex[off++];
        if (off + el > alen || !endpoint_ok((const char *)annex + off, el)) {
            goto bad;
        }
        if (i != 0) {
            memcpy(p->endpoint, annex + off, el);
            p->endpoint[el] = '\0';
        }
        off += el;
    }
    if (off != alen) {
        goto bad;
    }

    /*
     * One connection per pair: the higher id connects to the lower, whose
     * routing id it names with ZMQ_CONNECT_ROUTING_ID.  Sends on the
     * connecting side queue at once; the bound side can send once the
     * connection is up, which it learns from our hello.
     */
    for (i = 1; i < x->cfg.node_id; i++) {
        int e = 0;

        p = &x->peers[i];
        pthread_mutex_lock(&x->sock_lock);
        if (zmq_setsockopt(x->sock, ZMQ_CONNECT_ROUTING_ID, p->rid,
                           p->rid_len) != 0 ||
            zmq_connect(x->sock, p->endpoint) != 0) {
            e = errno;
        }
        pthread_mutex_unlock(&x->sock_lock);
        if (e != 0) {
            start_error(x, DQ_ERR_XPORT_ZMQ, "connect to node %u at %s: %s",
                        i, p->endpoint, zmq_strerror(e));
            return;
        }
    }
    for (i = 1; i < x->cfg.node_count; i++) {
        x->peers[i].joined = true;
        x->peers[i].last_rx_ms = now_ms();
    }
    for (i = 1; i < x->cfg.node_id; i++) {
        send_simple(x, i, DQ_MSG_HEARTBEAT, 0);
    }
    x->accepted = true;
    check_ready(x);
    return;

bad:
    start_error(x, DQ_ERR_XPORT_REFUSED, "master sent a malformed peer table");
}

/* ---- receiving (I/O thread) ------------------------------------------- */

/*
 * A message that did not decode.  The one case worth an answer is a join
 * from a build with another protocol version: refuse it, so the other
 * side learns why instead of timing out.
 */
static void handle_undecodable(DqXport *x, const uint8_t *rid, size_t rid_len,
                               const uint8_t *data, size_t len, DqStatus st)
{
    unsigned type, src, ver;
    char why[DQ_ERRBUF_SIZE];

    if (x->cfg.node_id != 0 || st != DQ_ERR_PROTO_VERSION ||
        len < DQ_PROTO_HDR_SIZE) {
        fmt(why, sizeof(why), "not a member of this cluster (a message "
            "that does not decode: %s)", dq_status_str(st));
        note_refused(x, rx_peer(x), why);
        return;
    }
    type = data[DQ_HDR_OFF_TYPE] | (unsigned)data[DQ_HDR_OFF_TYPE + 1] << 8;
    src = data[DQ_HDR_OFF_SRC] | (unsigned)data[DQ_HDR_OFF_SRC + 1] << 8;
    ver = data[DQ_HDR_OFF_VERSION] |
          (unsigned)data[DQ_HDR_OFF_VERSION + 1] << 8;
    if (type == DQ_MSG_JOIN_REQ && src < DQ_MAX_NODES) {
        char detail[64];

        snprintf(detail, sizeof(detail), " (node speaks %u, cluster %u)",
                 ver, DQ_PROTO_VERSION);
        refuse(x, rid, rid_len, src, 0, DQ_JOIN_REFUSE_VERSION, detail);
    }
}

/* A reply for a waiting requester?  Context: I/O thread; takes x->lock. */
static bool deliver_reply(DqXport *x, const DqMsg *m, const uint8_t *data,
                          size_t len)
{
    DqXportWait *w;

    pthread_mutex_lock(&x->lock);
    for (w = x->pending; w != NULL; w = w->next) {
        if (w->req_id == m->req_id && w->dst == m->src && !w->queued) {
            break;
        }
    }
    if (w == NULL) {
        pthread_mutex_unlock(&x->lock);
        return false;
    }
    if (len > w->buflen) {
        complete_locked(x, w, DQ_ERR_NOSPACE);
    } else {
        memcpy(w->buf, data, len);
        *w->reply = *m;
        if (m->tail != NULL) {
            w->reply->tail = w->buf + (m->tail - data);
        }
        complete_locked(x, w, DQ_OK);
    }
    pthread_mutex_unlock(&x->lock);
    return true;
}

/*
 * One message from routing id @rid: decode, check who it is from, then
 * membership and shutdown here, replies to their waiters, the rest to
 * on_message.  Context: I/O thread; takes x->lock in helpers only.
 */
static void handle_rx(DqXport *x, const uint8_t *rid, size_t rid_len,
                      const uint8_t *data, size_t len,
                      const uint8_t *annex, size_t alen)
{
    DqMsg m;
    DqPeer *p;
    DqStatus st;
    unsigned n, i;

    st = dq_proto_decode(data, len, &x->lim, &m);
    if (st != DQ_OK) {
        handle_undecodable(x, rid, rid_len, data, len, st);
        return;
    }
    if (m.dst != x->cfg.node_id || rid_len < 2 || rid[0] != RID_TAG) {
        return;
    }
    n = rid[1];
    if (x->cfg.node_id == 0 && m.type == DQ_MSG_JOIN_REQ) {
        /* A member repeating itself is not a second claim on its id. */
        if (n >= x->cfg.node_count || x->peers[n].rid_len != rid_len ||
            memcmp(x->peers[n].rid, rid, rid_len) != 0) {
            handle_join(x, rid, rid_len, &m, annex, alen);
        }
        return;
    }
    /* Only members speak, and only as themselves. */
    if (n >= x->cfg.node_count || n != m.src) {
        return;
    }
    p = &x->peers[n];
    if (p->rid_len != rid_len || memcmp(p->rid, rid, rid_len) != 0 ||
        p->failed) {
        return;
    }
    p->last_rx_ms = now_ms();
    if (!p->heard) {
        mark_heard(x, n);
        /* The peer connected to us: say hello so it hears from us too. */
        if (__atomic_load_n(&p->last_tx_ms, __ATOMIC_RELAXED) == 0) {
            send_simple(x, n, DQ_MSG_HEARTBEAT, 0);
        }
        check_ready(x);
    }

    switch (m.type) {
    case DQ_MSG_HEARTBEAT:
    case DQ_MSG_JOIN_REQ:
        return;
    case DQ_MSG_JOIN_ACCEPT:
        if (n == 0) {
            handle_accept(x, &m, annex, alen);
        }
        return;
    case DQ_MSG_JOIN_REFUSE:
        if (n == 0) {
            start_error(x, DQ_ERR_XPORT_REFUSED,
                        "join refused by node 0: %s (cluster has version %u, "
                        "cluster id %#" PRIx64 ", %u nodes, page size %u)",
                        dq_join_refuse_str(m.u.join.reason),
                        m.u.join.version, m.u.join.cluster_id,
                        m.u.join.node_count, m.u.join.page_size);
        }
        return;
    case DQ_MSG_SHUTDOWN:
        if (n == 0 && x->cfg.node_id != 0) {
            /* To every peer: a worker still busy with us must not take
             * our leaving for a failure (check_unreachable). */
            for (i = 0; i < x->cfg.node_count; i++) {
                if (i != x->cfg.node_id && x->peers[i].joined &&
                    !x->peers[i].failed) {
                    send_simple(x, i, DQ_MSG_SHUTDOWN_ACK,
                                i == 0 ? m.req_id : 0);
                }
            }
            pthread_mutex_lock(&x->lock);
            x->got_shutdown = true;
            x->shutdown_code = m.u.shutdown.code;
            fail_waiters_locked(x, -1, DQ_ERR_XPORT_SHUTDOWN);
            pthread_cond_broadcast(&x->cond);
            pthread_mutex_unlock(&x->lock);
            if (x->cfg.ops.on_shutdown != NULL) {
                x->cfg.ops.on_shutdown(x->cfg.opaque, m.u.shutdown.code);
            }
        }
        return;
    case DQ_MSG_SHUTDOWN_ACK:
        /*
         * "Nothing more will come from me": a request to it would wait
         * for ever (its silence is not a failure any more, timers()).
         */
        pthread_mutex_lock(&x->lock);
        p->shutdown_acked = true;
        fail_waiters_locked(x, (int)n, DQ_ERR_XPORT_SHUTDOWN);
        pthread_cond_broadcast(&x->cond);
        pthread_mutex_unlock(&x->lock);
        return;
    default:
        break;
    }
    if (is_reply(m.type) && deliver_reply(x, &m, data, len)) {
        return;
    }
    if (x->cfg.ops.on_message != NULL) {
        x->cfg.ops.on_message(x->cfg.opaque, &m);
    }
}


/* Keep a copy of a received message until the simulated delay is over. */
static void hold_rx(DqXport *x, const char *addr, const uint8_t *rid,
                    size_t rid_len, const uint8_t *data, size_t len,
                    const uint8_t *annex, size_t alen)
{
    DqXportHeld *h = malloc(sizeof(*h) + rid_len + len + alen);

    if (h == NULL) {
        return;     /* as a lost message: the peers' timeouts cover it */
    }
    h->next = NULL;
    h->due_ns = now_ns() + (uint64_t)x->cfg.rx_delay_us * 1000u;
    snprintf(h->addr, sizeof(h->addr), "%s", addr);
    h->rid = h->bytes;
    h->data = h->rid + rid_len;
    h->annex = h->data + len;
    h->rid_len = rid_len;
    h->len = len;
    h->alen = alen;
    h->has_annex = annex != NULL;
    memcpy(h->rid, rid, rid_len);
    memcpy(h->data, data, len);
    if (alen) {
        memcpy(h->annex, annex, alen);
    }
    if (x->held_tail != NULL) {
        x->held_tail->next = h;
    } else {
        x->held_head = h;
    }
    x->held_tail = h;
}

/* Handle the held messages that are due, in arrival order. */
static void release_held(DqXport *x)
{
    DqXportHeld *h;
    uint64_t now = now_ns();

    while ((h = x->held_head) != NULL && h->due_ns <= now) {
        x->held_head = h->next;
        if (x->held_head == NULL) {
            x->held_tail = NULL;
        }
        x->rx_addr = h->addr;
        handle_rx(x, h->rid, h->rid_len, h->data, h->len,
                  h->has_annex ? h->annex : NULL, h->alen);
        x->rx_addr = NULL;
        free(h);
    }
}

/* Read whatever the socket has, up to a batch.  Context: I/O thread. */
static void drain_socket(DqXport *x)
{
    zmq_msg_t f[3];
    int nf, i, k, more;
    size_t sz;

    for (k = 0; k < XPORT_RX_BATCH; k++) {
        nf = 0;
        pthread_mutex_lock(&x->sock_lock);
        do {
            zmq_msg_t extra;
            zmq_msg_t *fm = nf < 3 ? &f[nf] : &extra;

            zmq_msg_init(fm);
            if (zmq_msg_recv(fm, x->sock, ZMQ_DONTWAIT) < 0) {
                pthread_mutex_unlock(&x->sock_lock);
                zmq_msg_close(fm);
                for (i = 0; i < nf && i < 3; i++) {
                    zmq_msg_close(&f[i]);
                }
                return;
            }
            more = zmq_msg_more(fm);
            if (fm == &extra) {
                zmq_msg_close(fm);
            }
            nf++;
        } while (more);
        pthread_mutex_unlock(&x->sock_lock);

        /* [routing id][message] or [routing id][message][annex]. */
        if (nf == 2 || nf == 3) {
            sz = nf == 3 ? zmq_msg_size(&f[2]) : 0;
            __atomic_fetch_add(&x->traffic.msgs_received, 1,
                               __ATOMIC_RELAXED);
            __atomic_fetch_add(&x->traffic.bytes_received,
                               (uint64_t)(zmq_msg_size(&f[1]) + sz),
                               __ATOMIC_RELAXED);
            if (x->cfg.rx_delay_us != 0) {
                hold_rx(x, frame_addr(&f[1]), zmq_msg_data(&f[0]),
                        zmq_msg_size(&f[0]), zmq_msg_data(&f[1]),
                        zmq_msg_size(&f[1]),
                        nf == 3 ? zmq_msg_data(&f[2]) : NULL, sz);
            } else {
                x->rx_frame = &f[1];
                handle_rx(x, zmq_msg_data(&f[0]), zmq_msg_size(&f[0]),
                          zmq_msg_data(&f[1]), zmq_msg_size(&f[1]),
                          nf == 3 ? zmq_msg_data(&f[2]) : NULL, sz);
                x->rx_frame = NULL;
            }
        }
        for (i = 0; i < nf && i < 3; i++) {
            zmq_msg_close(&f[i]);
        }
    }
}

/* Send what application threads queued.  Context: I/O thread. */
static void drain_queues(DqXport *x)
{
    DqXportWait *w;
    DqXportOut *o, *olist;
    DqStatus st;
    size_t len;
    int e;

    for (;;) {
        pthread_mutex_lock(&x->lock);
        w = x->sendq_head;
        if (w == NULL) {
            pthread_mutex_unlock(&x->lock);
            break;
        }
        x->sendq_head = w->qnext;
        if (x->sendq_head == NULL) {
            x->sendq_tail = NULL;
        }
        w->queued = false;
        /* Encode under the lock: the waiter may time out and leave. */
        st = dq_proto_encode(w->req, &x->lim, x->scratch, x->scratch_len,
                             &len);
        if (st != DQ_OK) {
            complete_locked(x, w, st);
            pthread_mutex_unlock(&x->lock);
            continue;
        }
        e = send_node(x, w->dst, x->scratch, len, NULL, 0);
        if (e != 0) {
            complete_locked(x, w, e == EHOSTUNREACH ?
                            DQ_ERR_XPORT_PEER_FAILED : DQ_ERR_XPORT_ZMQ);
        }
        pthread_mutex_unlock(&x->lock);
        if (e == EHOSTUNREACH && x->ready) {
            x->peers[w->dst].unreachable = true;
        }
    }

    pthread_mutex_lock(&x->lock);
    olist = x->outq_head;
    x->outq_head = x->outq_tail = NULL;
    pthread_mutex_unlock(&x->lock);
    while ((o = olist) != NULL) {
        olist = o->next;
        e = send_node(x, o->dst, o->data, o->len, NULL, 0);
        if (e == EHOSTUNREACH && x->ready) {
            x->peers[o->dst].unreachable = true;
        }
        free(o);
    }
}

/*
 * Peers whose connection a send found gone.  A worker leaving at
 * shutdown sends its SHUTDOWN_ACK to every peer before it closes: that
 * ack was received before the connection dropped, so once the socket is
 * drained a departure is told apart from a failure.
 * Context: I/O thread, after drain_socket().
 */
static void check_unreachable(DqXport *x)
{
    unsigned i;

    for (i = 0; i < x->cfg.node_count; i++) {
        if (x->peers[i].unreachable) {
            x->peers[i].unreachable = false;
            if (x->ready && !x->peers[i].shutdown_acked) {
                fail_peer(x, i, "connection lost");
            }
        }
    }
}

/* Heartbeats and failure detection.  Context: I/O thread. */
static void timers(DqXport *x)
{
    uint64_t now = now_ms();
    unsigned i, me = x->cfg.node_id;
    char why[64];
    DqPeer *p;

    /*
     * This thread did not run for two heartbeats: the host itself stood
     * still (a virtual machine not scheduled, SIGSTOP, swapping), so the
     * peers' silence meanwhile says nothing about them.  Each gets a full
     * failure timeout from now; one truly gone is still caught then.
     */
    if (x->last_timers_ms != 0 &&
        now - x->last_timers_ms >= 2 * (uint64_t)x->cfg.heartbeat_ms) {
        for (i = 0; i < x->cfg.node_count; i++) {
            if (x->peers[i].last_rx_ms < now) {
                x->peers[i].last_rx_ms = now;
            }
        }
    }
    x->last_timers_ms = now;

    for (i = 0; i < x->cfg.node_count; i++) {
        p = &x->peers[i];
        if (i == me || !p->joined || p->failed) {
            continue;
        }
        /* Any traffic counts; only a silent peer costs a ping. */
        if (now - __atomic_load_n(&p->last_tx_ms, __ATOMIC_RELAXED) >=
            x->cfg.heartbeat_ms &&
            (p->heard || i < me)) {
            send_simple(x, i, DQ_MSG_HEARTBEAT, 0);
        }
        /* After SHUTDOWN, silence is expected, not a failure. */
        if (x->got_shutdown || p->shutdown_acked) {
            continue;
        }
        if (p->heard && now - p->last_rx_ms >= x->cfg.failure_timeout_ms) {
            snprintf(why, sizeof(why), "no traffic for %u ms",
                     (unsigned)(now - p->last_rx_ms));
            fail_peer(x, i, why);
        }
    }
}

/*
 * How long the I/O thread may sleep: the heartbeat tick (@tick_ms), less
 * if the one-shot timer is due sooner, nothing if input already waits.
 */
static void sleep_for(DqXport *x, long tick_ms, struct timespec *ts)
{
    uint64_t ns = sock_readable(x) ? 0 : (uint64_t)tick_ms * 1000000u;
    uint64_t at = __atomic_load_n(&x->timer_at, __ATOMIC_ACQUIRE), now;

    if (at != XPORT_TIMER_NONE && ns > 0) {
        now = now_ns();
        ns = at <= now ? 0 : at - now < ns ? at - now : ns;
    }
    if (x->held_head != NULL && ns > 0) {
        at = x->held_head->due_ns;
        now = now_ns();
        ns = at <= now ? 0 : at - now < ns ? at - now : ns;
    }
    ts->tv_sec = (time_t)(ns / 1000000000u);
    ts->tv_nsec = (long)(ns % 1000000000u);
}

/*
 * The one-shot timer, if due: disarm it, then call the callback (which
 * re-arms for what it still waits for).  Context: I/O thread.
 */
static void run_timer(DqXport *x)
{
    uint64_t at = __atomic_load_n(&x->timer_at, __ATOMIC_ACQUIRE);
    DqXportTimerFn fn;
    void *opaque;

    while (at != XPORT_TIMER_NONE && at <= now_ns()) {
        /* A failed exchange reloads @at: someone armed meanwhile. */
        if (__atomic_compare_exchange_n(&x->timer_at, &at, XPORT_TIMER_NONE,
                                        false, __ATOMIC_ACQ_REL,
                                        __ATOMIC_ACQUIRE)) {
            pthread_mutex_lock(&x->lock);
            fn = x->timer_fn;
            opaque = x->timer_opaque;
            pthread_mutex_unlock(&x->lock);
            if (fn != NULL) {
                fn(opaque);
            }
            return;
        }
    }
}

/*
 * The I/O thread: joins (workers), then loops over the socket, the
 * wake-up fd and the timers until dq_xport_free() sets x->stop.
 */
static void *io_main(void *opaque)
{
    DqXport *x = opaque;
    struct pollfd items[2];
    struct timespec ts;
    long tick;
    uint64_t junk;
    DqMsg sd;
    bool stop;
    int linger = XPORT_LINGER_MS;
    unsigned i;

    io_thread_of = x;
    /* Best effort: a coarser slack only makes timers late. */
    prctl(PR_SET_TIMERSLACK, XPORT_TIMER_SLACK_NS, 0, 0, 0);
    tick = x->cfg.heartbeat_ms / 4;
    tick = tick < 10 ? 10 : tick > 50 ? 50 : tick;

    if (x->cfg.node_id != 0) {
        DqMsg j;

        fill_join(x, &j, DQ_MSG_JOIN_REQ, 0, dq_xport_next_req_id(x));
        if (x->cfg.join_version != 0) {
            j.u.join.version = x->cfg.join_version;
        }
        x->peers[0].joined = true;
        send_msg_io(x, &j, x->bind_ep, strlen(x->bind_ep));
    }

    for (;;) {
        items[0].fd = x->zmq_fd;
        items[0].events = POLLIN;
        items[0].revents = 0;
        items[1].fd = x->wake_fd;
        items[1].events = POLLIN;
        items[1].revents = 0;
        /* Input already waiting raises no edge on ZMQ_FD: look first. */
        sleep_for(x, tick, &ts);
        if (ppoll(items, 2, &ts, NULL) < 0 && errno != EINTR) {
            break;
        }
        if (items[1].revents & POLLIN) {
            if (read(x->wake_fd, &junk, sizeof(junk)) < 0) {
                /* EAGAIN: nothing to clear. */
            }
        }
        pthread_mutex_lock(&x->lock);
        stop = x->stop;
        pthread_mutex_unlock(&x->lock);
        if (stop) {
            break;
        }
        drain_queues(x);
        drain_socket(x);
        release_held(x);
        check_unreachable(x);
        run_timer(x);
        pthread_mutex_lock(&x->lock);
        if (x->shutdown_req && !x->shutdown_sent) {
            pthread_mutex_unlock(&x->lock);
            for (i = 1; i < x->cfg.node_count; i++) {
                if (x->peers[i].joined && !x->peers[i].failed) {
                    memset(&sd, 0, sizeof(sd));
                    sd.type = DQ_MSG_SHUTDOWN;
                    sd.src = 0;
                    sd.dst = (uint16_t)i;
                    sd.u.shutdown.code = x->shutdown_code;
                    send_msg_io(x, &sd, NULL, 0);
                }
            }
            /* dq_xport_shutdown() waits for this before it counts acks. */
            pthread_mutex_lock(&x->lock);
            x->shutdown_sent = true;
            pthread_cond_broadcast(&x->cond);
        }
        pthread_mutex_unlock(&x->lock);
        timers(x);
    }
    pthread_mutex_lock(&x->sock_lock);
    dq_guard_detach(x->guard, x->sock);
    zmq_setsockopt(x->sock, ZMQ_LINGER, &linger, sizeof(linger));
    zmq_close(x->sock);
    x->sock = NULL;
    pthread_mutex_unlock(&x->sock_lock);
    dq_guard_close(x->guard);
    x->guard = NULL;
    while (x->held_head != NULL) {
        DqXportHeld *h = x->held_head;

        x->held_head = h->next;
        free(h);
    }
    x->held_tail = NULL;
    return NULL;
}

/* ---- public API ------------------------------------------------------- */

DqStatus dq_xport_start(const DqXportConfig *cfg, DqXport **out,
                        char *err, size_t errlen)
{
    DqXport *x;
    pthread_condattr_t ca;
    uint8_t rid[RID_MAX];
    size_t rid_len, eplen;
    int one = 1, zero = 0;
    int64_t maxsz;
    DqStatus st;

    *out = NULL;
    /* A worker may leave node_count 0: it learns it from JOIN_ACCEPT. */
    if ((cfg->node_count == 0 && cfg->node_id == 0) ||
        cfg->node_count > DQ_MAX_NODES ||
        (cfg->node_count != 0 && cfg->node_id >= cfg->node_count) ||
        cfg->node_id >= DQ_MAX_NODES || cfg->master_endpoint == NULL ||
        strlen(cfg->master_endpoint) >= DQ_XPORT_ENDPOINT_MAX ||
        (cfg->bind_endpoint != NULL &&
         strlen(cfg->bind_endpoint) >= DQ_XPORT_ENDPOINT_MAX)) {
        fmt(err, errlen, "bad transport configuration (node %u of %u)",
            cfg->node_id, cfg->node_count);
        return DQ_ERR_RANGE;
    }
    x = calloc(1, sizeof(*x));
    if (x == NULL) {
        fmt(err, errlen, "out of memory");
        return DQ_ERR_NOMEM;
    }
    x->cfg = *cfg;
    if (x->cfg.node_count == 0) {
        /* Until JOIN_ACCEPT says, we know of the master and ourselves. */
        x->learn_count = true;
        x->cfg.node_count = x->cfg.node_id + 1;
    }
    if (x->cfg.heartbeat_ms == 0) {
        x->cfg.heartbeat_ms = DQ_XPORT_HEARTBEAT_MS;
    }
    if (x->cfg.failure_timeout_ms == 0) {
        x->cfg.failure_timeout_ms = DQ_XPORT_FAILURE_TIMEOUT_MS;
    }
    if (x->cfg.join_timeout_ms == 0) {
        x->cfg.join_timeout_ms = DQ_XPORT_JOIN_TIMEOUT_MS;
    }
    snprintf(x->master_ep, sizeof(x->master_ep), "%s", cfg->master_endpoint);
    x->cfg.master_endpoint = x->master_ep;
    x->cfg.bind_endpoint = NULL;
    x->wake_fd = -1;
    x->next_req_id = 1;
    x->timer_at = XPORT_TIMER_NONE;
    pthread_mutex_init(&x->lock, NULL);
    pthread_mutex_init(&x->sock_lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&x->cond, &ca);
    pthread_condattr_destroy(&ca);

    st = dq_proto_limits_init(&x->lim, cfg->page_size, cfg->max_payload);
    if (st != DQ_OK) {
        fmt(err, errlen, "page size %u / max payload %u not usable",
            cfg->page_size, cfg->max_payload);
        goto fail;
    }
    x->cfg.max_payload = x->lim.max_payload;      /* 0 meant a default */
    x->scratch_len = dq_proto_max_msg_size(&x->lim);
    x->scratch = malloc(x->scratch_len);
    x->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (x->scratch == NULL || x->wake_fd < 0) {
        fmt(err, errlen, "out of memory or file descriptors");
        st = DQ_ERR_NOMEM;
        goto fail;
    }
    x->nonce = ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)x ^
               ((uint64_t)now_ms() * 2654435761u);

    st = DQ_ERR_XPORT_ZMQ;
    x->ctx = zmq_ctx_new();
    if (x->ctx == NULL) {
        fmt(err, errlen, "zmq_ctx_new: %s", zmq_strerror(errno));
        goto fail;
    }
    x->sock = zmq_socket(x->ctx, ZMQ_ROUTER);
    if (x->sock == NULL) {
        fmt(err, errlen, "zmq_socket: %s", zmq_strerror(errno));
        goto fail;
    }
    make_rid(rid, &rid_len, cfg->node_id, x->nonce);
    maxsz = (int64_t)x->scratch_len;
    /*
     * Unlimited high-water marks: with ROUTER_MANDATORY a full pipe would
     * be EAGAIN, i.e. a message we must park somewhere anyway; the
     * protocol bounds what is in flight (one request per thread, acks).
     */
    if (zmq_setsockopt(x->sock, ZMQ_ROUTING_ID, rid, rid_len) != 0 ||
        zmq_setsockopt(x->sock, ZMQ_ROUTER_MANDATORY, &one, sizeof(one)) ||
        zmq_setsockopt(x->sock, ZMQ_MAXMSGSIZE, &maxsz, sizeof(maxsz)) ||
        zmq_setsockopt(x->sock, ZMQ_SNDHWM, &zero, sizeof(zero)) ||
        zmq_setsockopt(x->sock, ZMQ_RCVHWM, &zero, sizeof(zero))) {
        fmt(err, errlen, "zmq_setsockopt: %s", zmq_strerror(errno));
        goto fail;
    }
    st = dq_guard_attach(&x->guard, x->ctx, x->sock, cfg->curve_secret,
                         cfg->curve_public, guard_report, x, err, errlen);
    /* The guard has its copy; the caller's may go. */
    x->cfg.curve_secret = x->cfg.curve_public = NULL;
    if (st != DQ_OK) {
        goto fail;
    }
    st = DQ_ERR_XPORT_ZMQ;
    if (cfg->node_id == 0) {
        if (zmq_bind(x->sock, x->master_ep) != 0) {
            fmt(err, errlen, "bind %s: %s", x->master_ep,
                zmq_strerror(errno));
            goto fail;
        }
    } else {
        const char *ep = cfg->bind_endpoint != NULL ? cfg->bind_endpoint :
                         "tcp://127.0.0.1:*";
        if (zmq_bind(x->sock, ep) != 0) {
            fmt(err, errlen, "bind %s: %s", ep, zmq_strerror(errno));
            goto fail;
        }
    }
    if (dq_guard_connect_mode(x->guard, x->sock, err, errlen) != DQ_OK) {
        goto fail;
    }
    eplen = sizeof(x->zmq_fd);
    if (zmq_getsockopt(x->sock, ZMQ_FD, &x->zmq_fd, &eplen) != 0) {
        fmt(err, errlen, "ZMQ_FD: %s", zmq_strerror(errno));
        goto fail;
    }
    eplen = sizeof(x->bind_ep);
    if (zmq_getsockopt(x->sock, ZMQ_LAST_ENDPOINT, x->bind_ep, &eplen) != 0) {
        fmt(err, errlen, "ZMQ_LAST_ENDPOINT: %s", zmq_strerror(errno));
        goto fail;
    }
    memcpy(x->peers[cfg->node_id].rid, rid, rid_len);
    x->peers[cfg->node_id].rid_len = rid_len;
    snprintf(x->peers[cfg->node_id].endpoint, DQ_XPORT_ENDPOINT_MAX, "%s",
             x->bind_ep);
    x->peers[cfg->node_id].joined = true;
    if (cfg->node_id != 0) {
        make_rid(x->peers[0].rid, &x->peers[0].rid_len, 0, 0);
        snprintf(x->peers[0].endpoint, DQ_XPORT_ENDPOINT_MAX, "%s",
                 x->master_ep);
        if (zmq_setsockopt(x->sock, ZMQ_CONNECT_ROUTING_ID, x->peers[0].rid,
                           x->peers[0].rid_len) != 0 ||
            zmq_connect(x->sock, x->master_ep) != 0) {
            fmt(err, errlen, "connect %s: %s", x->master_ep,
                zmq_strerror(errno));
            goto fail;
        }
    } else if (cfg->node_count == 1) {
        x->ready = true;
    }
    if (pthread_create(&x->io_thread, NULL, io_main, x) != 0) {
        fmt(err, errlen, "cannot create the I/O thread");
        st = DQ_ERR_NOMEM;
        goto fail;
    }
    x->io_started = true;
    *out = x;
    return DQ_OK;

fail:
    dq_xport_free(x);
    return st;
}

DqStatus dq_xport_wait_ready(DqXport *x, char *err, size_t errlen)
{
    struct timespec dl;
    DqStatus st;
    char list[DQ_ERRBUF_SIZE];
    size_t off = 0;
    unsigned i;

    if (io_thread_of == x) {
        return DQ_ERR_USAGE;
    }
    deadline_ts(&dl, x->cfg.join_timeout_ms);
    pthread_mutex_lock(&x->lock);
    while (!x->ready && x->start_status == DQ_OK && !x->stop &&
           !x->got_shutdown) {
        if (pthread_cond_timedwait(&x->cond, &x->lock, &dl) == ETIMEDOUT) {
            break;
        }
    }
    if (x->ready) {
        st = DQ_OK;
    } else if (x->start_status != DQ_OK) {
        st = x->start_status;
        fmt(err, errlen, "%s", x->start_err);
    } else if (x->stop || x->got_shutdown) {
        st = DQ_ERR_XPORT_SHUTDOWN;
        fmt(err, errlen, x->got_shutdown ?
            "the master shut the cluster down during start-up" :
            "transport stopped during start-up");
    } else {
        list[0] = '\0';
        for (i = 0; i < x->cfg.node_count; i++) {
            if (i != x->cfg.node_id && !(x->heard_mask & (1ull << i)) &&
                off < sizeof(list)) {
                off += snprintf(list + off, sizeof(list) - off, "%s%u",
                                off ? ", " : "", i);
            }
        }
        st = DQ_ERR_XPORT_TIMEOUT;
        if (x->cfg.node_id == 0 && x->refusals > 0) {
            fmt(err, errlen, "nodes never joined within %u ms: %s; "
                "turned away %u connection%s, the last: %s",
                x->cfg.join_timeout_ms, list, x->refusals,
                x->refusals == 1 ? "" : "s", x->refused_err);
        } else if (x->cfg.node_id == 0) {
            fmt(err, errlen, "nodes never joined within %u ms: %s",
                x->cfg.join_timeout_ms, list);
        } else if (!(x->heard_mask & 1)) {
            fmt(err, errlen, "no answer from the master at %s within %u ms",
                x->master_ep, x->cfg.join_timeout_ms);
        } else {
            fmt(err, errlen, "never heard from nodes within %u ms: %s",
                x->cfg.join_timeout_ms, list);
        }
    }
    pthread_mutex_unlock(&x->lock);
    return st;
}

const char *dq_xport_endpoint(const DqXport *x)
{
    return x->bind_ep;
}

uint64_t dq_xport_next_req_id(DqXport *x)
{
    return __atomic_fetch_add(&x->next_req_id, 1, __ATOMIC_RELAXED);
}

size_t dq_xport_max_msg_size(const DqXport *x)
{
    return x->scratch_len;
}

const DqXportConfig *dq_xport_config(const DqXport *x)
{
    return &x->cfg;
}

void dq_xport_traffic(DqXport *x, DqXportTraffic *out)
{
    out->msgs_sent = __atomic_load_n(&x->traffic.msgs_sent,
                                     __ATOMIC_RELAXED);
    out->bytes_sent = __atomic_load_n(&x->traffic.bytes_sent,
                                      __ATOMIC_RELAXED);
    out->msgs_received = __atomic_load_n(&x->traffic.msgs_received,
                                         __ATOMIC_RELAXED);
    out->bytes_received = __atomic_load_n(&x->traffic.bytes_received,
                                          __ATOMIC_RELAXED);
}

void dq_xport_set_timer(DqXport *x, DqXportTimerFn fn, void *opaque)
{
    pthread_mutex_lock(&x->lock);
    x->timer_fn = fn;
    x->timer_opaque = opaque;
    pthread_mutex_unlock(&x->lock);
}

void dq_xport_arm_timer(DqXport *x, uint64_t deadline_ns)
{
    uint64_t cur = __atomic_load_n(&x->timer_at, __ATOMIC_ACQUIRE);

    while (deadline_ns < cur) {
        if (__atomic_compare_exchange_n(&x->timer_at, &cur, deadline_ns,
                                        false, __ATOMIC_ACQ_REL,
                                        __ATOMIC_ACQUIRE)) {
            /* The I/O thread itself recomputes its sleep before it sleeps. */
            if (io_thread_of != x) {
                wake_io(x);
            }
            return;
        }
    }
}

bool dq_xport_peer_failed(DqXport *x, unsigned node)
{
    bool f;

    if (node >= DQ_MAX_NODES) {
        return true;
    }
    pthread_mutex_lock(&x->lock);
    f = x->peers[node].failed;
    pthread_mutex_unlock(&x->lock);
    return f;
}

DqStatus dq_xport_request(DqXport *x, DqMsg *req, DqMsg *reply,
                          uint8_t *buf, size_t buflen, unsigned timeout_ms)
{
    DqXportWait w;
    struct timespec dl, now, rel;
    uint8_t wire[XPORT_DIRECT_MAX];
    bool forever = timeout_ms == DQ_XPORT_WAIT_FOREVER;
    DqStatus st;
    size_t len = 0;
    bool direct;
    int e;

    if (io_thread_of == x) {
        return DQ_ERR_USAGE;
    }
    if (req->dst >= x->cfg.node_count || req->dst == x->cfg.node_id ||
        (req->tail == NULL && req->tail_len != 0)) {
        return DQ_ERR_USAGE;
    }
    req->src = (uint16_t)x->cfg.node_id;
    req->req_id = dq_xport_next_req_id(x);
    memset(&w, 0, sizeof(w));
    w.req = req;
    w.req_id = req->req_id;
    w.dst = req->dst;
    w.reply = reply;
    w.buf = buf;
    w.buflen = buflen;
    if (!forever) {
        deadline_ts(&dl, timeout_ms != 0 ? timeout_ms :
                    x->cfg.failure_timeout_ms);
    }
    /*
     * Small requests (all of the DSM's) may go out from this thread;
     * larger ones (NOSPACE here) are encoded by the I/O thread.
     */
    st = dq_proto_encode(req, &x->lim, wire, sizeof(wire), &len);
    if (st != DQ_OK && st != DQ_ERR_NOSPACE) {
        return st;
    }

    pthread_mutex_lock(&x->lock);
    /* No answer can come once either side is leaving. */
    if (x->stop || x->got_shutdown || x->shutdown_req ||
        x->peers[w.dst].shutdown_acked) {
        pthread_mutex_unlock(&x->lock);
        return DQ_ERR_XPORT_SHUTDOWN;
    }
    if (x->peers[w.dst].failed) {
        pthread_mutex_unlock(&x->lock);
        return DQ_ERR_XPORT_PEER_FAILED;
    }
    w.next = x->pending;
    if (x->pending != NULL) {
        x->pending->prev = &w;
    }
    x->pending = &w;
    x->requesters++;
    /* Nothing queued may be overtaken: order per thread must hold. */
    direct = st == DQ_OK && x->ready && x->sendq_head == NULL &&
             x->outq_head == NULL;
    if (!direct) {
        queue_request_locked(x, &w);
    }
    pthread_mutex_unlock(&x->lock);

    if (direct) {
        e = send_direct(x, w.dst, wire, len);
        if (e != 0) {
            /* Let the I/O thread retry and declare the peer failed. */
            pthread_mutex_lock(&x->lock);
            if (!w.done) {
                queue_request_locked(x, &w);
            }
            pthread_mutex_unlock(&x->lock);
            wake_io(x);
        }
    } else {
        wake_io(x);
    }

    /*
     * Every way a request ends completes @w under x->lock: the reply
     * (deliver_reply), the peer's failure (fail_peer) or departure
     * (SHUTDOWN_ACK), SHUTDOWN, dq_xport_shutdown(), dq_xport_free(), a
     * failed start-up.  So waiting forever needs no clock.
     */
    while (!__atomic_load_n(&w.done, __ATOMIC_ACQUIRE)) {
        if (forever) {
            syscall(SYS_futex, &w.done, FUTEX_WAIT_PRIVATE, 0, NULL, NULL,
                    0);
            continue;
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        rel.tv_sec = dl.tv_sec - now.tv_sec;
        rel.tv_nsec = dl.tv_nsec - now.tv_nsec;
        if (rel.tv_nsec < 0) {
            rel.tv_sec--;
            rel.tv_nsec += 1000000000;
        }
        if (rel.tv_sec < 0) {
            break;
        }
        syscall(SYS_futex, &w.done, FUTEX_WAIT_PRIVATE, 0, &rel, NULL, 0);
    }

    /* Taking the lock also waits out a completer still inside futex_wake. */
    pthread_mutex_lock(&x->lock);
    if (__atomic_load_n(&w.done, __ATOMIC_ACQUIRE)) {
        st = w.status;
    } else {
        unlink_wait_locked(x, &w);
        st = DQ_ERR_XPORT_TIMEOUT;
    }
    /* dq_xport_free() waits for the last of us before it frees @x. */
    assert(x->requesters > 0);
    if (--x->requesters == 0 && x->stop) {
        pthread_cond_broadcast(&x->cond);
    }
    pthread_mutex_unlock(&x->lock);
    return st;
}

DqStatus dq_xport_send(DqXport *x, const DqMsg *msg)
{
    DqMsg m = *msg;
    DqXportOut *o;
    size_t need;
    DqStatus st;

    if (m.dst >= x->cfg.node_count || m.dst == x->cfg.node_id ||
        (m.tail == NULL && m.tail_len != 0)) {
        return DQ_ERR_USAGE;
    }
    m.src = (uint16_t)x->cfg.node_id;
    if (io_thread_of == x) {
        if (x->peers[m.dst].failed) {
            return DQ_ERR_XPORT_PEER_FAILED;
        }
        return send_msg_io(x, &m, NULL, 0);
    }
    need = dq_proto_tail_offset(m.type) + m.tail_len;
    if (need < DQ_PROTO_HDR_SIZE) {
        need = DQ_PROTO_HDR_SIZE;
    }
    o = malloc(sizeof(*o) + need);
    if (o == NULL) {
        return DQ_ERR_NOMEM;
    }
    st = dq_proto_encode(&m, &x->lim, o->data, need, &o->len);
    if (st != DQ_OK) {
        free(o);
        return st;
    }
    o->dst = m.dst;
    o->next = NULL;
    pthread_mutex_lock(&x->lock);
    if (x->stop) {
        st = DQ_ERR_XPORT_SHUTDOWN;
    } else if (x->peers[m.dst].failed) {
        st = DQ_ERR_XPORT_PEER_FAILED;
    } else if (x->ready && x->sendq_head == NULL && x->outq_head == NULL) {
        pthread_mutex_unlock(&x->lock);
        /* As dq_xport_request: straight out, the I/O thread on error. */
        if (send_direct(x, o->dst, o->data, o->len) == 0) {
            free(o);
            return DQ_OK;
        }
        pthread_mutex_lock(&x->lock);
        o->next = NULL;
        if (x->outq_tail != NULL) {
            x->outq_tail->next = o;
            x->outq_tail = o;
        } else {
            x->outq_head = x->outq_tail = o;
        }
    } else if (x->outq_tail != NULL) {
        x->outq_tail->next = o;
        x->outq_tail = o;
    } else {
        x->outq_head = x->outq_tail = o;
    }
    pthread_mutex_unlock(&x->lock);
    if (st != DQ_OK) {
        free(o);
        return st;
    }
    wake_io(x);
    return DQ_OK;
}

DqStatus dq_xport_shutdown(DqXport *x, uint32_t code)
{
    struct timespec dl;
    DqStatus st = DQ_OK;
    unsigned i;
    bool all;

    if (x->cfg.node_id != 0 || io_thread_of == x) {
        return DQ_ERR_USAGE;
    }
    deadline_ts(&dl, x->cfg.failure_timeout_ms);
    pthread_mutex_lock(&x->lock);
    x->shutdown_code = code;
    x->shutdown_req = true;
    pthread_mutex_unlock(&x->lock);
    wake_io(x);

    pthread_mutex_lock(&x->lock);
    for (;;) {
        /*
         * Before the cluster formed nobody was accepted: the SHUTDOWN is
         * a courtesy, sent before the socket closes, and no ack counts.
         */
        all = x->shutdown_sent || x->stop;
        for (i = 1; i < x->cfg.node_count && x->ready; i++) {
            if (!x->peers[i].shutdown_acked && !x->peers[i].failed) {
                all = false;
            }
        }
        if (all) {
            break;
        }
        if (pthread_cond_timedwait(&x->cond, &x->lock, &dl) == ETIMEDOUT) {
            st = DQ_ERR_XPORT_TIMEOUT;
            break;
        }
    }
    fail_waiters_locked(x, -1, DQ_ERR_XPORT_SHUTDOWN);
    pthread_mutex_unlock(&x->lock);
    return st;
}

DqStatus dq_xport_wait_shutdown(DqXport *x, unsigned timeout_ms,
                                uint32_t *code, char *err, size_t errlen)
{
    struct timespec dl;
    bool master = x->cfg.node_id == 0;
    DqStatus st;

    if (io_thread_of == x) {
        return DQ_ERR_USAGE;
    }
    deadline_ts(&dl, timeout_ms);
    pthread_mutex_lock(&x->lock);
    /* A worker waits out other workers' failures: the master decides. */
    while (!x->got_shutdown && !(master ? x->fail_seen : x->peers[0].failed)) {
        if (pthread_cond_timedwait(&x->cond, &x->lock, &dl) == ETIMEDOUT) {
            break;
        }
    }
    if (x->got_shutdown) {
        *code = x->shutdown_code;
        st = DQ_OK;
    } else if (master && x->fail_seen) {
        fmt(err, errlen, "%s", x->fail_err);
        st = DQ_ERR_XPORT_PEER_FAILED;
    } else if (!master && x->peers[0].failed) {
        fmt(err, errlen, "%s", x->master_err);
        st = DQ_ERR_XPORT_PEER_FAILED;
    } else {
        fmt(err, errlen, "no shutdown from the master within %u ms",
            timeout_ms);
        st = DQ_ERR_XPORT_TIMEOUT;
    }
    pthread_mutex_unlock(&x->lock);
    return st;
}

/* A context being terminated on a thread of its own (term_ctx_bounded). */
typedef struct DqCtxTerm {
    void *ctx;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool done;
    bool abandoned;             /* the waiter left: the thread frees this */
} DqCtxTerm;

static void *ctx_term_main(void *opaque)
{
    DqCtxTerm *t = opaque;
    bool abandoned;

    zmq_ctx_term(t->ctx);
    pthread_mutex_lock(&t->lock);
    t->done = true;
    abandoned = t->abandoned;
    pthread_cond_broadcast(&t->cond);
    pthread_mutex_unlock(&t->lock);
    if (abandoned) {
        pthread_mutex_destroy(&t->lock);
        pthread_cond_destroy(&t->cond);
        free(t);
    }
    return NULL;
}

/*
 * zmq_ctx_term(), but waiting at most XPORT_TERM_WAIT_MS.  libzmq 4.3.4
 * can wait forever here after every socket is closed when peers vanish
 * while it closes (seen on a loaded machine: 8 ASan dsm-test nodes
 * ending together, one stuck with no timer armed in libzmq's threads).
 * Past the bound the context is left to the process's exit; all our
 * sockets are closed by then, so nothing of ours is lost.
 */
static void term_ctx_bounded(void *ctx)
{
    DqCtxTerm *t = calloc(1, sizeof(*t));
    struct timespec dl;
    pthread_condattr_t ca;
    pthread_t th;
    bool done;

    if (t == NULL) {
        zmq_ctx_term(ctx);
        return;
    }
    t->ctx = ctx;
    pthread_mutex_init(&t->lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&t->cond, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&th, NULL, ctx_term_main, t) != 0) {
        zmq_ctx_term(ctx);
        t->done = true;
    } else {
        deadline_ts(&dl, XPORT_TERM_WAIT_MS);
        pthread_mutex_lock(&t->lock);
        while (!t->done &&
               pthread_cond_timedwait(&t->cond, &t->lock, &dl) == 0) {
        }
        done = t->done;
        t->abandoned = !done;
        pthread_mutex_unlock(&t->lock);
        if (!done) {
            pthread_detach(th);
            return;             /* the thread frees t if it ever ends */
        }
        pthread_join(th, NULL);
    }
    pthread_mutex_destroy(&t->lock);
    pthread_cond_destroy(&t->cond);
    free(t);
}

void dq_xport_free(DqXport *x)
{
    DqXportOut *o;
    int linger = XPORT_LINGER_MS;

    if (x == NULL) {
        return;
    }
    assert(io_thread_of != x);
    pthread_mutex_lock(&x->lock);
    x->stop = true;
    fail_waiters_locked(x, -1, DQ_ERR_XPORT_SHUTDOWN);
    pthread_cond_broadcast(&x->cond);
    /* They were woken; each still takes x->lock once on its way out. */
    while (x->requesters > 0) {
        pthread_cond_wait(&x->cond, &x->lock);
    }
    pthread_mutex_unlock(&x->lock);
    if (x->io_started) {
        wake_io(x);
        pthread_join(x->io_thread, NULL);
    } else {
        if (x->sock != NULL) {
            dq_guard_detach(x->guard, x->sock);
            zmq_setsockopt(x->sock, ZMQ_LINGER, &linger, sizeof(linger));
            zmq_close(x->sock);
        }
        dq_guard_close(x->guard);
    }
    if (x->ctx != NULL) {
        term_ctx_bounded(x->ctx);
    }
    while ((o = x->outq_head) != NULL) {
        x->outq_head = o->next;
        free(o);
    }
    if (x->wake_fd >= 0) {
        close(x->wake_fd);
    }
    free(x->scratch);
    pthread_cond_destroy(&x->cond);
    pthread_mutex_destroy(&x->sock_lock);
    pthread_mutex_destroy(&x->lock);
    free(x);
}
