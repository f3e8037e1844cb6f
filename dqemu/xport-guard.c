/*
 * xport-guard.c - CURVE set-up, the ZAP handler and the handshake monitor
 * of a node's socket (xport-guard.h says why and how).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "xport-guard.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <zmq.h>

#include "clusterkey.h"

#define GUARD_ZAP_ENDPOINT  "inproc://zeromq.zap.01"
#define GUARD_MON_ENDPOINT  "inproc://dqemu.xport.monitor"
#define GUARD_STOP_ENDPOINT "inproc://dqemu.xport.guard-stop"
#define GUARD_ZAP_DOMAIN    "dqemu"
/* Connections handshaking at once that we can attribute results to. */
#define GUARD_PENDING_MAX   64
#define GUARD_ADDR_MAX      64
/* A peer retrying with a bad key reconnects every 100 ms: say it once. */
#define GUARD_REPEAT_QUIET_MS 10000

#define GUARD_HANDSHAKE_EVENTS                                              \
    (ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_CONNECTED | ZMQ_EVENT_DISCONNECTED |    \
     ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | \
     ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)

typedef struct GuardConn {
    int fd;
    bool accepted;              /* they connected to us */
    char addr[GUARD_ADDR_MAX];
} GuardConn;

struct DqGuard {
    void *zap;                  /* REP at GUARD_ZAP_ENDPOINT, or NULL */
    void *mon;                  /* PAIR reading the monitor */
    void *stop_rx, *stop_tx;    /* PAIRs: closing tells the thread */
    pthread_t thread;
    bool thread_started;
    DqGuardReport report;
    void *opaque;
    bool curve;
    uint8_t member_key[32];     /* the cluster's public key, binary */
    char secret[DQ_CLUSTER_KEY_Z85_LEN + 1];
    char public_key[DQ_CLUSTER_KEY_Z85_LEN + 1];
    GuardConn pending[GUARD_PENDING_MAX];
    unsigned npending;
    char last_report[2 * GUARD_ADDR_MAX + DQ_ERRBUF_SIZE];
    uint64_t last_report_ms;
};

static uint64_t guard_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void *guard_main(void *arg);

DqStatus dq_guard_attach(DqGuard **out, void *ctx, void *sock,
                         const char *secret, const char *public_key,
                         DqGuardReport report, void *opaque,
                         char *err, size_t errlen)
{
    DqGuard *g = calloc(1, sizeof(*g));
    const char *what;
    int one = 1;

    *out = NULL;
    if (g == NULL) {
        return dq_fail(err, errlen, DQ_ERR_NOMEM, "out of memory");
    }
    g->report = report;
    g->opaque = opaque;
    if (secret != NULL) {
        what = "this libzmq has no CURVE support";
        if (!zmq_has("curve")) {
            goto fail;
        }
        what = "malformed cluster key";
        if (public_key == NULL ||
            strlen(secret) != DQ_CLUSTER_KEY_Z85_LEN ||
            strlen(public_key) != DQ_CLUSTER_KEY_Z85_LEN ||
            zmq_z85_decode(g->member_key, public_key) == NULL) {
            goto fail;
        }
        g->curve = true;
        memcpy(g->secret, secret, sizeof(g->secret));
        memcpy(g->public_key, public_key, sizeof(g->public_key));
        /* The handler must be there before the first handshake. */
        what = "ZAP handler";
        g->zap = zmq_socket(ctx, ZMQ_REP);
        if (g->zap == NULL || zmq_bind(g->zap, GUARD_ZAP_ENDPOINT) != 0) {
            goto fail;
        }
        what = "CURVE options";
        if (zmq_setsockopt(sock, ZMQ_CURVE_SERVER, &one, sizeof(one)) ||
            zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, secret,
                           DQ_CLUSTER_KEY_Z85_LEN) ||
            zmq_setsockopt(sock, ZMQ_ZAP_DOMAIN, GUARD_ZAP_DOMAIN,
                           strlen(GUARD_ZAP_DOMAIN))) {
            goto fail;
        }
    }
    what = "socket monitor";
    if (zmq_socket_monitor(sock, GUARD_MON_ENDPOINT,
                           GUARD_HANDSHAKE_EVENTS) != 0) {
        goto fail;
    }
    g->mon = zmq_socket(ctx, ZMQ_PAIR);
    if (g->mon == NULL || zmq_connect(g->mon, GUARD_MON_ENDPOINT) != 0) {
        goto fail;
    }
    what = "guard thread";
    g->stop_rx = zmq_socket(ctx, ZMQ_PAIR);
    g->stop_tx = zmq_socket(ctx, ZMQ_PAIR);
    if (g->stop_rx == NULL || g->stop_tx == NULL ||
        zmq_bind(g->stop_rx, GUARD_STOP_ENDPOINT) != 0 ||
        zmq_connect(g->stop_tx, GUARD_STOP_ENDPOINT) != 0 ||
        (errno = pthread_create(&g->thread, NULL, guard_main, g)) != 0) {
        goto fail;
    }
    g->thread_started = true;
    *out = g;
    return DQ_OK;

fail:
    dq_fail(err, errlen, DQ_ERR_XPORT_ZMQ, "%s: %s", what,
            zmq_strerror(errno));
    dq_guard_close(g);
    return DQ_ERR_XPORT_ZMQ;
}

DqStatus dq_guard_connect_mode(DqGuard *g, void *sock, char *err,
                               size_t errlen)
{
    if (!g->curve) {
        return DQ_OK;
    }
    /* Setting the server key turns the socket's later connects to clients. */
    if (zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, g->public_key,
                       DQ_CLUSTER_KEY_Z85_LEN) ||
        zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, g->public_key,
                       DQ_CLUSTER_KEY_Z85_LEN) ||
        zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, g->secret,
                       DQ_CLUSTER_KEY_Z85_LEN)) {
        return dq_fail(err, errlen, DQ_ERR_XPORT_ZMQ,
                       "CURVE client options: %s", zmq_strerror(errno));
    }
    return DQ_OK;
}

static void report(DqGuard *g, DqGuardEvent ev, const char *addr,
                   const char *why)
{
    char key[sizeof(g->last_report)];
    uint64_t now = guard_now_ms();

    snprintf(key, sizeof(key), "%d %s %s", (int)ev, addr, why);
    if (strcmp(key, g->last_report) == 0 &&
        now - g->last_report_ms < GUARD_REPEAT_QUIET_MS) {
        return;
    }
    memcpy(g->last_report, key, sizeof(key));
    g->last_report_ms = now;
    g->report(g->opaque, ev, addr, why);
}

/* ---- ZAP (RFC 27) ------------------------------------------------------ */

#define ZAP_FRAMES_MAX 8

static void zap_reply(DqGuard *g, const zmq_msg_t *request_id, bool ok)
{
    const char *code = ok ? "200" : "400";
    const char *text = ok ? "OK" : "not a member of this cluster";

    zmq_send(g->zap, "1.0", 3, ZMQ_SNDMORE);
    zmq_send(g->zap, zmq_msg_data((zmq_msg_t *)request_id),
             zmq_msg_size((zmq_msg_t *)request_id), ZMQ_SNDMORE);
    zmq_send(g->zap, code, 3, ZMQ_SNDMORE);
    zmq_send(g->zap, text, strlen(text), ZMQ_SNDMORE);
    zmq_send(g->zap, "", 0, ZMQ_SNDMORE);
    zmq_send(g->zap, "", 0, 0);
}

/* One request: admit a CURVE client holding the cluster's key, no one else. */
static bool zap_serve_one(DqGuard *g)
{
    zmq_msg_t f[ZAP_FRAMES_MAX];
    char addr[GUARD_ADDR_MAX];
    int n = 0, more, i;
    bool ok;

    do {
        zmq_msg_t extra, *fm = n < ZAP_FRAMES_MAX ? &f[n] : &extra;

        zmq_msg_init(fm);
        if (zmq_msg_recv(fm, g->zap, n == 0 ? ZMQ_DONTWAIT : 0) < 0) {
            zmq_msg_close(fm);
            for (i = 0; i < n && i < ZAP_FRAMES_MAX; i++) {
                zmq_msg_close(&f[i]);
            }
            return false;
        }
        more = zmq_msg_more(fm);
        if (fm == &extra) {
            zmq_msg_close(fm);
        }
        n++;
    } while (more);
    if (n > ZAP_FRAMES_MAX) {
        n = ZAP_FRAMES_MAX;
    }
    /* version, request id, domain, address, identity, mechanism, key. */
    ok = n == 7 && zmq_msg_size(&f[5]) == 5 &&
         memcmp(zmq_msg_data(&f[5]), "CURVE", 5) == 0 &&
         zmq_msg_size(&f[6]) == sizeof(g->member_key) &&
         memcmp(zmq_msg_data(&f[6]), g->member_key,
                sizeof(g->member_key)) == 0;
    if (n >= 2) {
        zap_reply(g, &f[1], ok);
    }
    if (!ok) {
        size_t alen = n >= 4 ? zmq_msg_size(&f[3]) : 0;

        if (alen == 0 || alen >= sizeof(addr)) {
            snprintf(addr, sizeof(addr), "an unknown address");
        } else {
            memcpy(addr, zmq_msg_data(&f[3]), alen);
            addr[alen] = '\0';
        }
        report(g, DQ_GUARD_REFUSED, addr,
               "not a member of this cluster");
    }
    for (i = 0; i < n; i++) {
        zmq_msg_close(&f[i]);
    }
    return true;
}

/* ---- the monitor ------------------------------------------------------ */

static void peer_addr(int fd, char *out, size_t len)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);

    if (getpeername(fd, (struct sockaddr *)&ss, &sl) != 0) {
        snprintf(out, len, "an unknown address");
    } else if (ss.ss_family == AF_INET) {
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, out, len);
    } else if (ss.ss_family == AF_INET6) {
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, out,
                  len);
    } else {
        snprintf(out, len, "a local socket");
    }
}

static void pending_push(DqGuard *g, int fd, bool accepted)
{
    GuardConn *c;

    if (g->npending == GUARD_PENDING_MAX) {
        memmove(&g->pending[0], &g->pending[1],
                (GUARD_PENDING_MAX - 1) * sizeof(g->pending[0]));
        g->npending--;
    }
    c = &g->pending[g->npending++];
    c->fd = fd;
    c->accepted = accepted;
    peer_addr(fd, c->addr, sizeof(c->addr));
}

static bool pending_take(DqGuard *g, unsigned i, GuardConn *out)
{
    if (i >= g->npending) {
        return false;
    }
    *out = g->pending[i];
    memmove(&g->pending[i], &g->pending[i + 1],
            (g->npending - i - 1) * sizeof(g->pending[0]));
    g->npending--;
    return true;
}

/* What a failed handshake of a peer of ours says about it. */
static const char *refusal_why(uint16_t ev, uint32_t value)
{
    if (ev == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL &&
        value == ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC) {
        return "not a member of this cluster (another cluster key)";
    }
    if (ev == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL &&
        value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH) {
        return "not a member of this cluster (no cluster key, or one where "
               "none is used)";
    }
    return "not a member of this cluster";
}

static void monitor_event(DqGuard *g, uint16_t ev, uint32_t value)
{
    GuardConn c;
    unsigned i;

    switch (ev) {
    case ZMQ_EVENT_ACCEPTED:
    case ZMQ_EVENT_CONNECTED:
        pending_push(g, (int)value, ev == ZMQ_EVENT_ACCEPTED);
        return;
    case ZMQ_EVENT_HANDSHAKE_SUCCEEDED:
        pending_take(g, 0, &c);
        return;
    case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
    case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
    case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
        if (!pending_take(g, 0, &c)) {
            return;
        }
        if (!c.accepted) {
            report(g, DQ_GUARD_REJECTED_US, c.addr,
                   ev == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH ?
                   "it does not take this node's cluster key" :
                   "the security handshake failed");
        } else if (ev != ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) {
            /* An AUTH failure was the ZAP handler's and is reported. */
            report(g, DQ_GUARD_REFUSED, c.addr, refusal_why(ev, value));
        }
        return;
    case ZMQ_EVENT_DISCONNECTED:
        for (i = 0; i < g->npending; i++) {
            if (g->pending[i].fd == (int)value) {
                pending_take(g, i, &c);
                report(g,
                       c.accepted ? DQ_GUARD_REFUSED : DQ_GUARD_REJECTED_US,
                       c.addr, c.accepted ?
                       "not a member of this cluster (it does not speak "
                       "ZMTP)" :
                       "it closed the connection during the security "
                       "handshake");
                return;
            }
        }
        return;
    default:
        return;
    }
}

static bool monitor_serve_one(DqGuard *g)
{
    uint8_t head[6];
    char ep[256];
    uint16_t ev;
    uint32_t value;
    int n, more = 0;
    size_t len = sizeof(more);

    n = zmq_recv(g->mon, head, sizeof(head), ZMQ_DONTWAIT);
    if (n < 0) {
        return false;
    }
    if (zmq_getsockopt(g->mon, ZMQ_RCVMORE, &more, &len) == 0 && more) {
        zmq_recv(g->mon, ep, sizeof(ep), 0);   /* the listener's, unused */
    }
    if (n != (int)sizeof(head)) {
        return true;
    }
    memcpy(&ev, head, sizeof(ev));
    memcpy(&value, head + 2, sizeof(value));
    monitor_event(g, ev, value);
    return true;
}

/* The guard's thread: sleeps in zmq_poll until a ZAP request, a monitor
 * event or the stop word comes. */
static void *guard_main(void *arg)
{
    DqGuard *g = arg;
    zmq_pollitem_t items[3];
    int n;

    for (;;) {
        n = 0;
        items[n++] = (zmq_pollitem_t){ .socket = g->stop_rx,
                                       .events = ZMQ_POLLIN };
        items[n++] = (zmq_pollitem_t){ .socket = g->mon,
                                       .events = ZMQ_POLLIN };
        if (g->zap != NULL) {
            items[n++] = (zmq_pollitem_t){ .socket = g->zap,
                                           .events = ZMQ_POLLIN };
        }
        if (zmq_poll(items, n, -1) < 0) {
            if (errno == EINTR) {
                continue;
            }
            break;
        }
        if (items[0].revents & ZMQ_POLLIN) {
            break;
        }
        /* Monitor first: an ACCEPTED's fd is worth the most when fresh. */
        while (monitor_serve_one(g)) {
        }
        while (g->zap != NULL && zap_serve_one(g)) {
        }
    }
    return NULL;
}

void dq_guard_detach(DqGuard *g, void *sock)
{
    if (g != NULL && sock != NULL) {
        zmq_socket_monitor(sock, NULL, 0);
    }
}

void dq_guard_close(DqGuard *g)
{
    int zero = 0;

    if (g == NULL) {
        return;
    }
    if (g->thread_started) {
        zmq_send(g->stop_tx, "", 0, 0);
        pthread_join(g->thread, NULL);
    }
    if (g->stop_tx != NULL) {
        zmq_setsockopt(g->stop_tx, ZMQ_LINGER, &zero, sizeof(zero));
        zmq_close(g->stop_tx);
    }
    if (g->stop_rx != NULL) {
        zmq_setsockopt(g->stop_rx, ZMQ_LINGER, &zero, sizeof(zero));
        zmq_close(g->stop_rx);
    }
    if (g->zap != NULL) {
        zmq_setsockopt(g->zap, ZMQ_LINGER, &zero, sizeof(zero));
        zmq_close(g->zap);
    }
    if (g->mon != NULL) {
        zmq_setsockopt(g->mon, ZMQ_LINGER, &zero, sizeof(zero));
        zmq_close(g->mon);
    }
    memset(g->secret, 0, sizeof(g->secret));
    free(g);
}
