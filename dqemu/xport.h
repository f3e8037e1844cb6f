/*
 * xport.h - the node transport (ZeroMQ) and cluster membership.
 *
 * Every node binds one ROUTER socket; node 0 (the master) binds a known
 * endpoint, workers bind an ephemeral loopback port, join through the
 * master and learn every other node's endpoint from the JOIN_ACCEPT, so
 * any node can send to any other (homes are spread over nodes).  One I/O
 * thread per node receives everything, sends heartbeats and detects
 * failures; once the cluster is ready an application thread sends its own
 * requests straight to the socket (under a lock) and sleeps on a futex
 * until the I/O thread hands it its reply.  Unsolicited messages are
 * given to on_message() on the I/O thread, right where they are received
 * (docs/dsm.md: every thread hand-off costs a wake-up).
 */
#ifndef DQEMU_XPORT_H
#define DQEMU_XPORT_H

#include <limits.h>

#include "dqemu.h"
#include "proto.h"

#define DQ_XPORT_HEARTBEAT_MS        250
#define DQ_XPORT_FAILURE_TIMEOUT_MS  2000
#define DQ_XPORT_JOIN_TIMEOUT_MS     10000
/* Longest endpoint string ("tcp://127.0.0.1:65535" and friends). */
#define DQ_XPORT_ENDPOINT_MAX        128
/*
 * dq_xport_request()'s timeout for an answer that may take as long as it
 * takes (a delegated read() on an empty pipe): no clock, only the reply,
 * the peer's failure or departure, or this node's shutdown end the wait.
 */
#define DQ_XPORT_WAIT_FOREVER        UINT_MAX

typedef struct DqXport DqXport;

/*
 * Callbacks, all invoked on the node's I/O thread (Context: I/O thread;
 * may call dq_xport_send(), must not call dq_xport_request() or block).
 *
 * on_message: an unsolicited message (not the reply to a pending
 *   dq_xport_request() of this node): a request for which this node is
 *   home, an invalidation, a recall, forwarded pages, a CALL, a late
 *   reply (a CALL_REPLY or GRANT whose requester gave up).  @msg and its
 *   tail are valid only during the call.
 * on_peer_failed: @node stopped answering (no traffic for the failure
 *   timeout) or its connection went away; called once per node, @why
 *   says which ("no traffic for 2003 ms", "connection lost").
 * on_shutdown: the master sent SHUTDOWN with the guest's exit @code
 *   (workers only); the ack has already been sent.
 * on_refused: a connection or a JOIN from @addr ("10.0.0.7", or
 *   "a local socket") was turned away: a peer without the cluster's key,
 *   one that does not speak ZMTP/CURVE, or a JOIN that failed its checks.
 *   @why says which.  The cluster goes on forming; may be NULL.  Called
 *   on the I/O thread or on the transport's guard thread (xport-guard.h).
 */
typedef struct DqXportOps {
    void (*on_message)(void *opaque, const DqMsg *msg);
    void (*on_peer_failed)(void *opaque, unsigned node, const char *why);
    void (*on_shutdown)(void *opaque, uint32_t code);
    void (*on_refused)(void *opaque, const char *addr, const char *why);
} DqXportOps;

typedef struct DqXportConfig {
    unsigned node_id;           /* 0 is the master */
    /*
     * Master included, <= DQ_MAX_NODES.  A worker may pass 0 when it does
     * not know the cluster's size: it then takes the master's from
     * JOIN_ACCEPT (dq_xport_config() tells it after wait_ready).
     */
    unsigned node_count;
    /*
     * The master binds it, workers connect to it, e.g.
     * "tcp://127.0.0.1:7000".  The master may use port "*" (ephemeral)
     * and publish dq_xport_endpoint() itself.
     */
    const char *master_endpoint;
    /* Workers bind this; NULL means "tcp://127.0.0.1:*". */
    const char *bind_endpoint;
    uint64_t cluster_id;
    uint32_t page_size;
    uint32_t max_payload;       /* 0: dq_proto_limits_init() default */
    unsigned heartbeat_ms;      /* 0: DQ_XPORT_HEARTBEAT_MS */
    unsigned failure_timeout_ms; /* 0: DQ_XPORT_FAILURE_TIMEOUT_MS */
    unsigned join_timeout_ms;   /* 0: DQ_XPORT_JOIN_TIMEOUT_MS */
    /*
     * Protocol version this node claims in its JOIN_REQ body; 0 means
     * DQ_PROTO_VERSION.  Only tests set it, to play an incompatible peer.
     */
    uint16_t join_version;
    /*
     * ZeroMQ CURVE with the cluster's key pair (Z85, clusterkey.h): every
     * connection is encrypted and only peers holding the same pair get
     * in.  NULL: no security mechanism (an ipc:// cluster in a private
     * directory, or --insecure).
     */
    const char *curve_secret;
    const char *curve_public;
    /*
     * Simulation aid (tests/cluster): hold every received message this
     * many microseconds before handling it, a one-way link delay where
     * the kernel has no netem.  0: off.
     */
    unsigned rx_delay_us;
    DqXportOps ops;
    void *opaque;               /* first argument of every callback */
} DqXportConfig;

/*
 * Create node @cfg->node_id: bind its socket, start its I/O thread and
 * start joining (workers send JOIN_REQ; the master waits for them).
 * Returns at once; dq_xport_wait_ready() waits for the cluster to form.
 * On error *@out is NULL and @err says what failed.
 * Context: process context; not async-signal-safe.
 */
DqStatus dq_xport_start(const DqXportConfig *cfg, DqXport **out,
                        char *err, size_t errlen);

/*
 * Wait until all node_count nodes have joined and this node has heard
 * from every peer.  Errors: DQ_ERR_XPORT_REFUSED (a join was refused; on
 * the master the refused node and why, on the worker why),
 * DQ_ERR_XPORT_TIMEOUT (@err names the nodes never heard from),
 * DQ_ERR_XPORT_PEER_FAILED (a node died during start-up),
 * DQ_ERR_XPORT_SHUTDOWN (the master gave up: its start-up failed).
 * The transport stays usable only after DQ_OK.
 * Context: any thread but the I/O thread; sleeps.
 */
DqStatus dq_xport_wait_ready(DqXport *x, char *err, size_t errlen);

/* The endpoint this node bound (ephemeral ports resolved). */
const char *dq_xport_endpoint(const DqXport *x);

/* A fresh request id of this node, for messages sent with dq_xport_send()
 * whose answers come back through on_message (e.g. a home's INVAL).
 * Context: any thread. */
uint64_t dq_xport_next_req_id(DqXport *x);

/*
 * Send @req to node @req->dst and sleep until the message with the same
 * req_id comes back from that node; decode it into *@reply, whose tail
 * points into @buf (@buflen >= dq_xport_max_msg_size(), or at least the
 * largest reply expected).  @req->src and @req->req_id are filled in here.
 * Replies are GRANT_DATA, GRANT, INVAL_ACK, RECALL_DATA, NACK and
 * CALL_REPLY; a request may carry any tail its type allows, up to the
 * configured max_payload (a 200 KB CALL, if max_payload allows it).
 *
 * @timeout_ms 0 means the failure timeout; DQ_XPORT_WAIT_FOREVER means no
 * clock at all: the wait ends with the reply, with
 * DQ_ERR_XPORT_PEER_FAILED once the peer is declared failed (within the
 * failure timeout of its death), or with DQ_ERR_XPORT_SHUTDOWN once the
 * peer has left at shutdown (its SHUTDOWN_ACK), this node got or sent
 * SHUTDOWN, or dq_xport_free() began (or with the start-up's error when
 * the cluster never formed).  A peer that is alive and silent
 * about this request keeps it waiting: heartbeats flow meanwhile.
 *
 * Errors: DQ_ERR_XPORT_PEER_FAILED (the peer failed before or while we
 * waited), DQ_ERR_XPORT_TIMEOUT, DQ_ERR_XPORT_SHUTDOWN, DQ_ERR_NOSPACE
 * (reply larger than @buflen), encoder errors for a bad @req,
 * DQ_ERR_USAGE when called on the I/O thread.
 * Context: application thread; takes and releases x->lock; sleeps on a
 * futex; allocates nothing.
 */
DqStatus dq_xport_request(DqXport *x, DqMsg *req, DqMsg *reply,
                          uint8_t *buf, size_t buflen, unsigned timeout_ms);

/*
 * Send @msg to node @msg->dst without waiting (replies, acks, the home's
 * invalidations).  @msg->src is filled in.  On the I/O thread (from a
 * callback) it goes straight to the socket; from any other thread it is
 * encoded into a queued buffer (allocated) and sent by the I/O thread.
 * Errors: encoder errors, DQ_ERR_XPORT_PEER_FAILED, _SHUTDOWN, DQ_ERR_NOMEM.
 * Context: any thread.
 */
DqStatus dq_xport_send(DqXport *x, const DqMsg *msg);

/*
 * Master: send SHUTDOWN(@code) to every live worker and wait (bounded by
 * the failure timeout) for their SHUTDOWN_ACKs.  After a failed start-up
 * it still tells the workers that joined, so they stop waiting at once.
 * DQ_ERR_XPORT_TIMEOUT when some never acked.  DQ_ERR_USAGE on a worker.
 * Context: application thread; sleeps.
 */
DqStatus dq_xport_shutdown(DqXport *x, uint32_t code);

/*
 * Wait up to @timeout_ms for the master's SHUTDOWN (DQ_OK, *@code set),
 * or for a failure that ends this node's part: on a worker the loss of
 * the master (other workers' failures are only reported through
 * on_peer_failed: the master decides), on the master the loss of any
 * worker.  DQ_ERR_XPORT_PEER_FAILED (@err: "lost contact with node J
 * (why)") or DQ_ERR_XPORT_TIMEOUT.
 * Context: application thread; sleeps.
 */
DqStatus dq_xport_wait_shutdown(DqXport *x, unsigned timeout_ms,
                                uint32_t *code, char *err, size_t errlen);

/* What this node's socket moved so far (routing frames not counted). */
typedef struct DqXportTraffic {
    uint64_t msgs_sent, bytes_sent;
    uint64_t msgs_received, bytes_received;
} DqXportTraffic;

/* Context: any thread. */
void dq_xport_traffic(DqXport *x, DqXportTraffic *out);

/*
 * A one-shot timer on the I/O thread, for whoever runs on the transport
 * besides the program's ops (the DSM engine holds recalls back during
 * leases and must answer them on time without the I/O thread sleeping).
 * One callback per transport, registered apart from DqXportOps so that
 * an engine attached to the program's transport can have its own.
 *
 * dq_xport_set_timer: @fn(@opaque) is what a due timer calls on the I/O
 *   thread (NULL: nothing).  Context: any thread but the I/O thread; a
 *   call of the previous @fn may still be running when this returns.
 * dq_xport_arm_timer: make the timer due at @deadline_ns at the latest
 *   (CLOCK_MONOTONIC ns; already past: as soon as the I/O thread can).
 *   An earlier deadline armed already wins; the timer is disarmed just
 *   before @fn runs, so @fn re-arms for what it still waits for.  The
 *   I/O thread sleeps with ns precision and 1 us timer slack.
 *   Context: any thread, signal handlers included (atomics, and a
 *   write() that wakes the I/O thread when the deadline moved up).
 */
typedef void (*DqXportTimerFn)(void *opaque);

void dq_xport_set_timer(DqXport *x, DqXportTimerFn fn, void *opaque);
void dq_xport_arm_timer(DqXport *x, uint64_t deadline_ns);

/* Has @node been declared failed? */
bool dq_xport_peer_failed(DqXport *x, unsigned node);

/* Largest encoded message under this node's limits (ZMQ_MAXMSGSIZE). */
size_t dq_xport_max_msg_size(const DqXport *x);

/*
 * The configuration @x runs with, defaults filled in (node_id,
 * node_count, page_size, timeouts...).  Valid until dq_xport_free().
 * Context: any thread.
 */
const DqXportConfig *dq_xport_config(const DqXport *x);

/*
 * Stop the I/O thread, close the socket (queued messages get up to the
 * linger time to leave) and free everything.  Requests in progress in
 * other threads (DQ_XPORT_WAIT_FOREVER ones included) fail with
 * DQ_ERR_XPORT_SHUTDOWN first, and this waits until their threads have
 * left dq_xport_request().  NULL is a no-op.
 * Context: application thread, not the I/O thread; no call on @x may
 * start once this has begun.
 */
void dq_xport_free(DqXport *x);

#endif /* DQEMU_XPORT_H */
