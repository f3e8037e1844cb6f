/*
 * xport-bench.c - the node transport's latency and throughput, with and
 * without CURVE, between 2 processes on 127.0.0.1.
 *
 * 1. Latency of one remote page read: a small request and a 4 KiB reply
 *    (the shape of a DSM read fault), dq_xport_request() to a node whose
 *    I/O thread answers from on_message, over an insecure cluster and
 *    over a CURVE one; against a raw TCP socket with TCP_NODELAY and plain
 *    ZeroMQ REQ/REP (those two in baseline.c, shared with dsm-bench).
 *
 * 2. Streaming throughput: the client pushes CALLs with 64 KiB tails (and
 *    then 4 KiB tails, a page each) with dq_xport_send() from its
 *    application thread, in windows of WINDOW_BYTES closed by a
 *    dq_xport_request() the receiver answers with the byte count it has
 *    seen (sends of one thread keep their order, so the answer comes after
 *    the whole window arrived; the count proves it).  The baseline is the
 *    same stream over a bare libzmq DEALER -> ROUTER pair, with and
 *    without CURVE (same windows, same sync; no ZAP handler, which only
 *    the handshake would see).  Each figure is timed after one unmeasured
 *    window; MB is 10^6 bytes.
 *
 * All four servers (both clusters, both raw ZeroMQ receivers) stay up for
 * the whole run and the measurements alternate between them in @rounds
 * rounds: a slice of the round trips, ~stream_ms of each stream.  Latency
 * pools the slices; throughput is the median of the rounds.  So every
 * CURVE/insecure ratio compares figures taken moments apart under the
 * same load.  Prints each figure, the ratios, and "bench: NAME = VALUE
 * UNIT" lines; never fails on a timing (exit 1 only when a dqemu cluster
 * could not form).  Each server is a forked child that tells the parent
 * its address through a pipe, before any thread or ZeroMQ context exists
 * in the parent.
 *
 * Usage: xport-bench [round_trips [stream_ms_per_round [rounds]]]
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "baseline.h"
#include "clusterkey.h"
#include "xport.h"

#define PAGE        BENCH_PAGE
#define REQ_BYTES   BENCH_REQ_BYTES
#define WARMUP      1000

/* Streams: one window of this many bytes, then a sync round trip. */
#define WINDOW_BYTES    (8u << 20)
/* CALL ops of the stream. */
#define OP_DATA         1u      /* count my tail, no answer */
#define OP_SYNC         2u      /* answer with the byte count seen so far */
/* A raw ZeroMQ sync frame is this long; data frames are longer. */
#define ZSYNC_LEN       8

static const size_t stream_sizes[] = { 64 * 1024, PAGE };
#define NSIZES      (sizeof(stream_sizes) / sizeof(stream_sizes[0]))

#define ROUNDS_MAX  9

static unsigned iters = 20000;
static unsigned stream_ms = 500;
static unsigned rounds = 3;

/* The cluster's key pair (every node holds the same one); children get
 * it through fork.  Only read when a session asks for CURVE. */
static DqClusterKey key;

typedef struct StreamResult {
    const char *name;
    double mbps, msgs_per_s;
    uint64_t bytes;
    unsigned errors;
    char why[128];
} StreamResult;

static void note(unsigned *errors, char *why, size_t len, const char *fmt,
                 ...) __attribute__((format(printf, 4, 5)));

/* Count an error, keeping the text of the first one only. */
static void note(unsigned *errors, char *why, size_t len, const char *fmt,
                 ...)
{
    va_list ap;

    if ((*errors)++ == 0) {
        va_start(ap, fmt);
        vsnprintf(why, len, fmt, ap);
        va_end(ap);
    }
}

#define RFAIL(r, ...)  note(&(r)->errors, (r)->why, sizeof((r)->why), \
                            __VA_ARGS__)

/* ---- the stream loop, over either transport ----------------------------- */

typedef struct StreamOps {
    /* Send @len bytes of @p as one message; 0 or -1 with @why set. */
    int (*send)(void *c, const uint8_t *p, size_t len, char *why,
                size_t wlen);
    /* Round trip: *@seen = the bytes the receiver counted so far. */
    int (*sync)(void *c, uint64_t *seen, char *why, size_t wlen);
} StreamOps;

/*
 * Windows of @msg_len-byte messages, each closed by a sync, until
 * stream_ms have passed after the first (unmeasured) window.  @sent
 * counts every byte sent on this connection (the receiver's count is
 * cumulative too).
 */
static void run_stream(StreamResult *r, const StreamOps *ops, void *c,
                       size_t msg_len, uint64_t *sent)
{
    unsigned per = WINDOW_BYTES / msg_len, i, w;
    uint64_t t0 = 0, now, seen, bytes = 0, msgs = 0;
    uint8_t *p = malloc(msg_len);

    if (p == NULL) {
        RFAIL(r, "out of memory");
        return;
    }
    memset(p, 0xa5, msg_len);
    if (per == 0) {
        per = 1;
    }
    for (w = 0;; w++) {
        if (w == 1) {
            t0 = bench_now_ns();
        }
        for (i = 0; i < per; i++) {
            if (ops->send(c, p, msg_len, r->why, sizeof(r->why)) != 0) {
                r->errors++;
                goto out;
            }
            *sent += msg_len;
        }
        if (ops->sync(c, &seen, r->why, sizeof(r->why)) != 0) {
            r->errors++;
            goto out;
        }
        if (seen != *sent) {
            RFAIL(r, "the receiver counted %llu bytes, %llu were sent",
                  (unsigned long long)seen, (unsigned long long)*sent);
            goto out;
        }
        if (w == 0) {
            continue;
        }
        bytes += (uint64_t)per * msg_len;
        msgs += per;
        now = bench_now_ns();
        if (now - t0 >= (uint64_t)stream_ms * 1000000u) {
            r->bytes = bytes;
            r->mbps = bytes / ((now - t0) / 1e9) / 1e6;
            r->msgs_per_s = msgs / ((now - t0) / 1e9);
            break;
        }
    }
out:
    free(p);
}

/* ---- dqemu transport ---------------------------------------------------- */

static DqXport *srv_x;
static bool srv_curve;          /* set by the parent before the fork */
static uint8_t srv_page[PAGE];
static uint64_t srv_stream_bytes;   /* I/O thread only */

static void srv_on_message(void *opaque, const DqMsg *msg)
{
    DqMsg r;

    (void)opaque;
    memset(&r, 0, sizeof(r));
    r.dst = msg->src;
    r.req_id = msg->req_id;
    if (msg->type == DQ_MSG_READ_REQ) {
        r.type = DQ_MSG_GRANT_DATA;
        r.u.page.addr = msg->u.page.addr;
        r.u.page.state = DQ_PROTO_STATE_S;
        r.tail = srv_page;
        r.tail_len = PAGE;
        dq_xport_send(srv_x, &r);
    } else if (msg->type == DQ_MSG_CALL && msg->u.call.op == OP_DATA) {
        srv_stream_bytes += msg->tail_len;
    } else if (msg->type == DQ_MSG_CALL && msg->u.call.op == OP_SYNC) {
        r.type = DQ_MSG_CALL_REPLY;
        r.u.call.op = OP_SYNC;
        r.u.call.arg = srv_stream_bytes;
        dq_xport_send(srv_x, &r);
    }
}

static void xport_cfg(DqXportConfig *c, unsigned id, const char *master,
                      bool curve)
{
    memset(c, 0, sizeof(*c));
    c->node_id = id;
    c->node_count = 2;
    c->master_endpoint = master;
    c->cluster_id = 0xbe7c4;
    c->page_size = PAGE;
    /* A loaded machine must not turn a slow window into a failed peer. */
    c->failure_timeout_ms = BENCH_WAIT_MS;
    if (curve) {
        c->curve_secret = key.secret;
        c->curve_public = key.public_;
    }
}

static void xport_server(int wfd)
{
    DqXportConfig c;
    char err[DQ_ERRBUF_SIZE], ep[DQ_XPORT_ENDPOINT_MAX] = { 0 };
    uint32_t code;

    xport_cfg(&c, 0, "tcp://127.0.0.1:*", srv_curve);
    c.ops.on_message = srv_on_message;
    if (dq_xport_start(&c, &srv_x, err, sizeof(err)) != DQ_OK) {
        fprintf(stderr, "bench server: %s\n", err);
        exit(1);
    }
    snprintf(ep, sizeof(ep), "%s", dq_xport_endpoint(srv_x));
    if (bench_write_all(wfd, ep, sizeof(ep)) != 0) {
        exit(1);
    }
    if (dq_xport_wait_ready(srv_x, err, sizeof(err)) != DQ_OK) {
        fprintf(stderr, "bench server: %s\n", err);
        exit(1);
    }
    /* Serve until the client is gone (or 5 minutes). */
    dq_xport_wait_shutdown(srv_x, 300000, &code, err, sizeof(err));
    dq_xport_free(srv_x);
    exit(0);
}

typedef struct XportClient {
    DqXport *x;
    uint8_t *buf;
    size_t buflen;
} XportClient;

static int xc_send(void *c, const uint8_t *p, size_t len, char *why,
                   size_t wlen)
{
    XportClient *xc = c;
    DqMsg m;
    DqStatus st;

    memset(&m, 0, sizeof(m));
    m.type = DQ_MSG_CALL;
    m.dst = 0;
    m.u.call.op = OP_DATA;
    m.tail = p;
    m.tail_len = len;
    st = dq_xport_send(xc->x, &m);
    if (st != DQ_OK) {
        snprintf(why, wlen, "dq_xport_send: %s", dq_status_str(st));
        return -1;
    }
    return 0;
}

static int xc_sync(void *c, uint64_t *seen, char *why, size_t wlen)
{
    XportClient *xc = c;
    DqMsg q, rep;
    DqStatus st;

    memset(&q, 0, sizeof(q));
    q.type = DQ_MSG_CALL;
    q.dst = 0;
    q.u.call.op = OP_SYNC;
    st = dq_xport_request(xc->x, &q, &rep, xc->buf, xc->buflen,
                          BENCH_WAIT_MS);
    if (st != DQ_OK) {
        snprintf(why, wlen, "sync: %s", dq_status_str(st));
        return -1;
    }
    if (rep.type != DQ_MSG_CALL_REPLY || rep.u.call.op != OP_SYNC) {
        snprintf(why, wlen, "sync: unexpected reply type %d", rep.type);
        return -1;
    }
    *seen = rep.u.call.arg;
    return 0;
}

static const StreamOps xport_stream_ops = { xc_send, xc_sync };

/* ---- raw libzmq stream: DEALER -> ROUTER -------------------------------- */

static bool zsrv_curve;         /* set by the parent before the fork */

static void zstream_server(int wfd)
{
    char ep[DQ_XPORT_ENDPOINT_MAX] = { 0 };
    size_t len = sizeof(ep);
    void *ctx = zmq_ctx_new();
    void *s = zmq_socket(ctx, ZMQ_ROUTER);
    uint64_t total = 0;
    zmq_msg_t id, m;
    int one = 1;

    if (s == NULL) {
        exit(1);
    }
    if (zsrv_curve &&
        (zmq_setsockopt(s, ZMQ_CURVE_SERVER, &one, sizeof(one)) != 0 ||
         zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, key.secret,
                        DQ_CLUSTER_KEY_Z85_LEN) != 0)) {
        fprintf(stderr, "bench zmq server: CURVE: %s\n",
                zmq_strerror(zmq_errno()));
        exit(1);
    }
    if (zmq_bind(s, "tcp://127.0.0.1:*") != 0 ||
        zmq_getsockopt(s, ZMQ_LAST_ENDPOINT, ep, &len) != 0 ||
        bench_write_all(wfd, ep, sizeof(ep)) != 0) {
        exit(1);
    }
    zmq_msg_init(&id);
    zmq_msg_init(&m);
    /* Serve until the parent reaps us. */
    while (zmq_msg_recv(&id, s, 0) >= 0 && zmq_msg_recv(&m, s, 0) >= 0) {
        if (zmq_msg_size(&m) != ZSYNC_LEN) {
            total += zmq_msg_size(&m);
            continue;
        }
        if (zmq_send(s, zmq_msg_data(&id), zmq_msg_size(&id),
                     ZMQ_SNDMORE) < 0 ||
            zmq_send(s, &total, sizeof(total), 0) < 0) {
            break;
        }
    }
    exit(0);
}

static int zc_send(void *c, const uint8_t *p, size_t len, char *why,
                   size_t wlen)
{
    if (zmq_send(c, p, len, 0) < 0) {
        snprintf(why, wlen, "zmq_send: %s", zmq_strerror(zmq_errno()));
        return -1;
    }
    return 0;
}

static int zc_sync(void *c, uint64_t *seen, char *why, size_t wlen)
{
    char q[ZSYNC_LEN] = "sync";
    int n;

    if (zmq_send(c, q, sizeof(q), 0) < 0) {
        snprintf(why, wlen, "sync: %s", zmq_strerror(zmq_errno()));
        return -1;
    }
    n = zmq_recv(c, seen, sizeof(*seen), 0);
    if (n != (int)sizeof(*seen)) {
        snprintf(why, wlen, "sync: %s", n < 0 ? zmq_strerror(zmq_errno())
                                              : "short reply");
        return -1;
    }
    return 0;
}

static const StreamOps zmq_stream_ops = { zc_send, zc_sync };

/* @n round trips into @ns[0..n), after @warmup unrecorded ones. */
static void xport_rtt(BenchResult *r, XportClient *xc, unsigned warmup,
                      unsigned n, uint64_t *ns)
{
    DqMsg q, rep;
    DqStatus st;
    unsigned i;
    uint64_t t0;

    for (i = 0; i < warmup + n; i++) {
        memset(&q, 0, sizeof(q));
        q.type = DQ_MSG_READ_REQ;
        q.dst = 0;
        q.u.page.addr = (uint64_t)(i % 1024) * PAGE;
        t0 = bench_now_ns();
        st = dq_xport_request(xc->x, &q, &rep, xc->buf, xc->buflen, 0);
        if (st != DQ_OK) {
            RFAIL(r, "round trip %u: %s", i, dq_status_str(st));
        } else if (rep.type != DQ_MSG_GRANT_DATA || rep.tail_len != PAGE) {
            RFAIL(r, "round trip %u: unexpected reply", i);
        }
        if (i >= warmup) {
            ns[i - warmup] = bench_now_ns() - t0;
        }
    }
}

/*
 * The clients of one run.  Every server is forked before the first
 * client context exists; then both clusters (insecure and CURVE) and both
 * raw ZeroMQ connections stay up side by side, so the rounds below can
 * alternate between them and each ratio compares figures taken moments
 * apart.  An idle cluster costs a heartbeat every 250 ms.
 */
typedef struct XSession {
    pid_t pid;
    XportClient xc;
    uint64_t sent;
    bool ok;
    char why[DQ_ERRBUF_SIZE];
} XSession;

typedef struct ZSession {
    pid_t pid;
    void *s;
    uint64_t sent;
    bool ok;
    char why[DQ_ERRBUF_SIZE];
} ZSession;

/* Fork node 0 of a cluster (@curve or not); the client joins later. */
static void xsession_spawn(XSession *xs, bool curve, char *ep, size_t len)
{
    srv_curve = curve;
    xs->pid = bench_spawn(xport_server, ep, len);
    if (xs->pid < 0) {
        snprintf(xs->why, sizeof(xs->why),
                 "the dqemu transport server did not start");
        return;
    }
    ep[len - 1] = '\0';
    xs->ok = true;
}

static void xsession_start(XSession *xs, bool curve, const char *ep)
{
    DqXportConfig c;

    if (!xs->ok) {
        return;
    }
    xport_cfg(&c, 1, ep, curve);
    if (dq_xport_start(&c, &xs->xc.x, xs->why, sizeof(xs->why)) != DQ_OK) {
        xs->ok = false;
    }
}

static void xsession_ready(XSession *xs)
{
    if (!xs->ok) {
        return;
    }
    if (dq_xport_wait_ready(xs->xc.x, xs->why, sizeof(xs->why)) != DQ_OK) {
        xs->ok = false;
        return;
    }
    xs->xc.buflen = dq_xport_max_msg_size(xs->xc.x);
    xs->xc.buf = malloc(xs->xc.buflen);
    if (xs->xc.buf == NULL) {
        snprintf(xs->why, sizeof(xs->why), "out of memory");
        xs->ok = false;
    }
}

static void xsession_end(XSession *xs)
{
    /* Joins the transport's threads and terminates its context. */
    dq_xport_free(xs->xc.x);
    free(xs->xc.buf);
    if (xs->pid > 0) {
        bench_reap(xs->pid);
    }
}

static void zsession_spawn(ZSession *zs, bool curve, char *ep, size_t len)
{
    zsrv_curve = curve;
    zs->pid = bench_spawn(zstream_server, ep, len);
    if (zs->pid < 0) {
        snprintf(zs->why, sizeof(zs->why),
                 "the ZeroMQ stream server did not start");
        return;
    }
    ep[len - 1] = '\0';
    zs->ok = true;
}

static void zsession_start(ZSession *zs, void *ctx, bool curve,
                           const char *ep)
{
    int wait_ms = BENCH_WAIT_MS;

    if (!zs->ok) {
        return;
    }
    zs->s = zmq_socket(ctx, ZMQ_DEALER);
    /* A dead server is an error, not a hang. */
    if (zs->s == NULL ||
        zmq_setsockopt(zs->s, ZMQ_RCVTIMEO, &wait_ms, sizeof(wait_ms)) ||
        zmq_setsockopt(zs->s, ZMQ_SNDTIMEO, &wait_ms, sizeof(wait_ms)) ||
        (curve &&
         (zmq_setsockopt(zs->s, ZMQ_CURVE_SERVERKEY, key.public_,
                         DQ_CLUSTER_KEY_Z85_LEN) ||
          zmq_setsockopt(zs->s, ZMQ_CURVE_PUBLICKEY, key.public_,
                         DQ_CLUSTER_KEY_Z85_LEN) ||
          zmq_setsockopt(zs->s, ZMQ_CURVE_SECRETKEY, key.secret,
                         DQ_CLUSTER_KEY_Z85_LEN))) ||
        zmq_connect(zs->s, ep) != 0) {
        snprintf(zs->why, sizeof(zs->why), "connect to %s: %s", ep,
                 zmq_strerror(zmq_errno()));
        zs->ok = false;
    }
}

static void zsession_end(ZSession *zs)
{
    int linger = 0;

    if (zs->s != NULL) {
        zmq_setsockopt(zs->s, ZMQ_LINGER, &linger, sizeof(linger));
        zmq_close(zs->s);
    }
}

/* ---- report ------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

/* Median of the rounds (a sorted copy, the rounds keep their order). */
static double median(const double *v, unsigned n)
{
    double t[ROUNDS_MAX];

    memcpy(t, v, n * sizeof(*v));
    qsort(t, n, sizeof(*t), cmp_double);
    return n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
}

/* "bench: NAME = VALUE UNIT", or why there is no value (on stderr). */
static void headline(const char *name, double v, unsigned errors,
                     const char *why, const char *unit)
{
    if (errors != 0) {
        fprintf(stderr, "bench: %s: not measured (%s)\n", name, why);
        return;
    }
    printf("bench: %s = %.*f %s\n", name, v < 10 ? 2 : 1, v, unit);
}

static void ratio_headline(const char *name, double num, unsigned num_err,
                           double den, unsigned den_err)
{
    if (num_err == 0 && den_err == 0 && den > 0) {
        printf("bench: %s = %.3f x\n", name, num / den);
    }
}

static void print_ratio(const char *what, double num, unsigned num_err,
                        double den, unsigned den_err)
{
    if (num_err == 0 && den_err == 0 && den > 0) {
        printf("  %-38s %8.3fx\n", what, num / den);
    } else {
        printf("  %-38s %9s\n", what, "n/a");
    }
}

/* Rows of the tables. */
enum { R_XPORT, R_XPORT_CURVE, R_TCP, R_ZMQ, R_COUNT };
enum { S_XPORT, S_XPORT_CURVE, S_ZMQ, S_ZMQ_CURVE, S_COUNT };

int main(int argc, char **argv)
{
    BenchResult res[R_COUNT] = {
        [R_XPORT] = { .name = "dqemu xport" },
        [R_XPORT_CURVE] = { .name = "dqemu xport CURVE" },
        [R_TCP] = { .name = "raw TCP" },
        [R_ZMQ] = { .name = "ZeroMQ REQ/REP" },
    };
    static const char *const sname[S_COUNT] = {
        "dqemu xport", "dqemu xport CURVE", "ZeroMQ DEALER/ROUTER",
        "ZeroMQ CURVE",
    };
    /* Headline names, [row][size]. */
    static const char *const hname[S_COUNT][NSIZES] = {
        { "xport_stream_insecure_MBps", "xport_stream_4k_insecure_MBps" },
        { "xport_stream_curve_MBps", "xport_stream_4k_curve_MBps" },
        { "zmq_stream_insecure_MBps", "zmq_stream_4k_insecure_MBps" },
        { "zmq_stream_curve_MBps", "zmq_stream_4k_curve_MBps" },
    };
    StreamResult st[S_COUNT][NSIZES];
    double mbps[S_COUNT][NSIZES][ROUNDS_MAX];
    char err[DQ_ERRBUF_SIZE - 32];  /* room for "no cluster key: " */
    char xep[2][DQ_XPORT_ENDPOINT_MAX], zep[2][DQ_XPORT_ENDPOINT_MAX];
    XSession xs[2];
    ZSession zs[2];
    void *zctx = NULL;
    bool have_key, xport_ok;
    uint64_t *ns, *xns[2], t_start = bench_now_ns();
    unsigned i, j, m, r, nmodes, done;
    int rc = 0;

    if (argc > 1) {
        iters = (unsigned)atoi(argv[1]);
        if (iters == 0) {
            iters = 1;
        }
    }
    if (argc > 2) {
        stream_ms = (unsigned)atoi(argv[2]);
        if (stream_ms == 0) {
            stream_ms = 1;
        }
    }
    if (argc > 3) {
        rounds = (unsigned)atoi(argv[3]);
        if (rounds == 0) {
            rounds = 1;
        } else if (rounds > ROUNDS_MAX) {
            rounds = ROUNDS_MAX;
        }
    }
    if (iters < rounds) {
        iters = rounds;
    }
    memset(st, 0, sizeof(st));
    memset(mbps, 0, sizeof(mbps));
    memset(xs, 0, sizeof(xs));
    memset(zs, 0, sizeof(zs));
    for (i = 0; i < S_COUNT; i++) {
        for (j = 0; j < NSIZES; j++) {
            st[i][j].name = sname[i];
        }
    }
    ns = malloc(sizeof(*ns) * iters * 3);
    if (ns == NULL) {
        return 1;
    }
    xns[0] = ns + iters;
    xns[1] = ns + 2 * (size_t)iters;
    /* No thread nor context is left behind by this (libsodium only). */
    have_key = dq_cluster_key_generate(&key, err, sizeof(err)) == DQ_OK;
    nmodes = have_key ? 2 : 1;
    if (!have_key) {
        snprintf(xs[1].why, sizeof(xs[1].why), "no cluster key: %s", err);
        snprintf(zs[1].why, sizeof(zs[1].why), "no cluster key: %s", err);
    }

    /* The baselines fork their own servers and end their contexts. */
    if (bench_tcp_rtt(&res[R_TCP], WARMUP, iters, ns) != 0) {
        fprintf(stderr, "bench: raw TCP: %s\n", res[R_TCP].why);
    }
    if (bench_zmq_rtt(&res[R_ZMQ], WARMUP, iters, ns) != 0) {
        fprintf(stderr, "bench: ZeroMQ REQ/REP: %s\n", res[R_ZMQ].why);
    }

    /* Every server forked before any client context or thread exists. */
    for (m = 0; m < nmodes; m++) {
        xsession_spawn(&xs[m], m == 1, xep[m], sizeof(xep[m]));
        zsession_spawn(&zs[m], m == 1, zep[m], sizeof(zep[m]));
    }
    /* Both clusters form at once. */
    for (m = 0; m < nmodes; m++) {
        xsession_start(&xs[m], m == 1, xep[m]);
    }
    for (m = 0; m < nmodes; m++) {
        xsession_ready(&xs[m]);
    }
    zctx = zmq_ctx_new();
    for (m = 0; m < nmodes; m++) {
        if (zctx == NULL && zs[m].ok) {
            snprintf(zs[m].why, sizeof(zs[m].why), "zmq_ctx_new failed");
            zs[m].ok = false;
        }
        if (zctx != NULL) {
            zsession_start(&zs[m], zctx, m == 1, zep[m]);
        }
    }
    for (m = 0; m < 2; m++) {
        if (!xs[m].ok) {
            RFAIL(&res[R_XPORT + m], "%s", xs[m].why);
        }
        for (j = 0; j < NSIZES; j++) {
            if (!xs[m].ok) {
                RFAIL(&st[S_XPORT + m][j], "%s", xs[m].why);
            }
            if (!zs[m].ok) {
                RFAIL(&st[S_ZMQ + m][j], "%s", zs[m].why);
            }
        }
    }

    /* Round trips: a slice of each mode per round, insecure then CURVE. */
    done = 0;
    for (r = 0; r < rounds; r++) {
        unsigned n = iters * (r + 1) / rounds - done;

        for (m = 0; m < 2; m++) {
            if (xs[m].ok) {
                xport_rtt(&res[R_XPORT + m], &xs[m].xc,
                          r == 0 ? WARMUP : WARMUP / 5, n, xns[m] + done);
            }
        }
        done += n;
    }
    for (m = 0; m < 2; m++) {
        if (xs[m].ok) {
            bench_summarize(&res[R_XPORT + m], xns[m], iters);
        }
    }

    /* Streams: per round and size, the four one after the other. */
    for (r = 0; r < rounds; r++) {
        for (j = 0; j < NSIZES; j++) {
            for (m = 0; m < 2; m++) {
                StreamResult *t = &st[S_XPORT + m][j];

                if (xs[m].ok && t->errors == 0 &&
                    stream_sizes[j] + DQ_PROTO_HDR_SIZE + DQ_BODY_CALL >
                    xs[m].xc.buflen) {
                    RFAIL(t, "a %zu-byte tail exceeds the %zu-byte message "
                          "limit", stream_sizes[j], xs[m].xc.buflen);
                }
                if (xs[m].ok && t->errors == 0) {
                    run_stream(t, &xport_stream_ops, &xs[m].xc,
                               stream_sizes[j], &xs[m].sent);
                    mbps[S_XPORT + m][j][r] = t->mbps;
                }
            }
            for (m = 0; m < 2; m++) {
                StreamResult *t = &st[S_ZMQ + m][j];

                if (zs[m].ok && t->errors == 0) {
                    run_stream(t, &zmq_stream_ops, zs[m].s, stream_sizes[j],
                               &zs[m].sent);
                    mbps[S_ZMQ + m][j][r] = t->mbps;
                }
            }
        }
    }
    for (i = 0; i < S_COUNT; i++) {
        for (j = 0; j < NSIZES; j++) {
            st[i][j].mbps = median(mbps[i][j], rounds);
            st[i][j].msgs_per_s = st[i][j].mbps * 1e6 / stream_sizes[j];
        }
    }

    for (m = 0; m < 2; m++) {
        zsession_end(&zs[m]);
    }
    if (zctx != NULL) {
        zmq_ctx_term(zctx);
    }
    for (m = 0; m < 2; m++) {
        if (zs[m].pid > 0) {
            bench_reap(zs[m].pid);
        }
        xsession_end(&xs[m]);
    }
    xport_ok = xs[0].ok && (xs[1].ok || !have_key);
    if (!xport_ok) {
        rc = 1;
    }

    printf("4 KiB remote read (%d-byte request, %d-byte reply), "
           "2 processes on 127.0.0.1, %u round trips each\n",
           REQ_BYTES, PAGE, iters);
    printf("  (dqemu insecure and CURVE alternate in %u slice(s))\n", rounds);
    printf("  %-18s %10s %10s %10s %10s\n", "", "median us", "p99 us",
           "vs TCP", "vs REQ/REP");
    for (i = 0; i < R_COUNT; i++) {
        if (res[i].errors != 0 && res[i].median_us == 0) {
            printf("  %-18s  not measured: %s\n", res[i].name, res[i].why);
            continue;
        }
        printf("  %-18s %10.1f %10.1f %9.2fx %9.2fx%s\n", res[i].name,
               res[i].median_us, res[i].p99_us,
               res[i].median_us / res[R_TCP].median_us,
               res[i].median_us / res[R_ZMQ].median_us,
               res[i].errors ? "  (errors!)" : "");
        if (res[i].errors != 0) {
            printf("  %-18s   first error: %s\n", "", res[i].why);
        }
    }
    print_ratio("CURVE/insecure xport median", res[R_XPORT_CURVE].median_us,
                res[R_XPORT_CURVE].errors, res[R_XPORT].median_us,
                res[R_XPORT].errors);
    print_ratio("CURVE/insecure xport p99", res[R_XPORT_CURVE].p99_us,
                res[R_XPORT_CURVE].errors, res[R_XPORT].p99_us,
                res[R_XPORT].errors);
    printf("  goal: remote read fault <= 100 us median (DESIGN.md)\n\n");

    printf("Stream, 1 sender -> 1 receiver on 127.0.0.1, %u MiB windows "
           "closed by a sync;\n  median of %u round(s) of ~%u ms each, the "
           "four transports alternating (MB = 10^6 bytes)\n",
           WINDOW_BYTES >> 20, rounds, stream_ms);
    printf("  %-22s", "");
    for (j = 0; j < NSIZES; j++) {
        printf(" %6zu KiB: %8s %9s", stream_sizes[j] / 1024, "MB/s",
               "msgs/s");
    }
    printf("\n");
    for (i = 0; i < S_COUNT; i++) {
        printf("  %-22s", sname[i]);
        for (j = 0; j < NSIZES; j++) {
            if (st[i][j].errors != 0) {
                printf(" %11s %8s %9s", "", "error", "");
            } else {
                printf(" %11s %8.1f %9.0f", "", st[i][j].mbps,
                       st[i][j].msgs_per_s);
            }
        }
        printf("\n");
        for (j = 0; j < NSIZES; j++) {
            if (st[i][j].errors != 0) {
                printf("  %-22s   %zu KiB: %s\n", "",
                       stream_sizes[j] / 1024, st[i][j].why);
            }
        }
    }
    for (j = 0; j < NSIZES; j++) {
        char what[64];

        snprintf(what, sizeof(what), "CURVE/insecure xport, %zu KiB",
                 stream_sizes[j] / 1024);
        print_ratio(what, st[S_XPORT_CURVE][j].mbps,
                    st[S_XPORT_CURVE][j].errors, st[S_XPORT][j].mbps,
                    st[S_XPORT][j].errors);
        snprintf(what, sizeof(what), "CURVE/insecure ZeroMQ, %zu KiB",
                 stream_sizes[j] / 1024);
        print_ratio(what, st[S_ZMQ_CURVE][j].mbps, st[S_ZMQ_CURVE][j].errors,
                    st[S_ZMQ][j].mbps, st[S_ZMQ][j].errors);
        snprintf(what, sizeof(what), "xport/ZeroMQ insecure, %zu KiB",
                 stream_sizes[j] / 1024);
        print_ratio(what, st[S_XPORT][j].mbps, st[S_XPORT][j].errors,
                    st[S_ZMQ][j].mbps, st[S_ZMQ][j].errors);
        snprintf(what, sizeof(what), "xport/ZeroMQ CURVE, %zu KiB",
                 stream_sizes[j] / 1024);
        print_ratio(what, st[S_XPORT_CURVE][j].mbps,
                    st[S_XPORT_CURVE][j].errors, st[S_ZMQ_CURVE][j].mbps,
                    st[S_ZMQ_CURVE][j].errors);
    }
    printf("  whole run: %.1f s\n\n", (bench_now_ns() - t_start) / 1e9);

    headline("xport_rtt_insecure_us", res[R_XPORT].median_us,
             res[R_XPORT].errors, res[R_XPORT].why, "us");
    headline("xport_rtt_curve_us", res[R_XPORT_CURVE].median_us,
             res[R_XPORT_CURVE].errors, res[R_XPORT_CURVE].why, "us");
    ratio_headline("xport_rtt_curve_ratio", res[R_XPORT_CURVE].median_us,
                   res[R_XPORT_CURVE].errors, res[R_XPORT].median_us,
                   res[R_XPORT].errors);
    headline("tcp_rtt_us", res[R_TCP].median_us, res[R_TCP].errors,
             res[R_TCP].why, "us");
    headline("zmq_rtt_us", res[R_ZMQ].median_us, res[R_ZMQ].errors,
             res[R_ZMQ].why, "us");
    for (j = 0; j < NSIZES; j++) {
        for (i = 0; i < S_COUNT; i++) {
            headline(hname[i][j], st[i][j].mbps, st[i][j].errors,
                     st[i][j].why, "MB/s");
        }
        ratio_headline(j == 0 ? "xport_stream_curve_ratio"
                              : "xport_stream_4k_curve_ratio",
                       st[S_XPORT_CURVE][j].mbps, st[S_XPORT_CURVE][j].errors,
                       st[S_XPORT][j].mbps, st[S_XPORT][j].errors);
        ratio_headline(j == 0 ? "zmq_stream_curve_ratio"
                              : "zmq_stream_4k_curve_ratio",
                       st[S_ZMQ_CURVE][j].mbps, st[S_ZMQ_CURVE][j].errors,
                       st[S_ZMQ][j].mbps, st[S_ZMQ][j].errors);
    }
    free(ns);
    return rc;
}
