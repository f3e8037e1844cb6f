/*
 * dsm-node.c - one node of a host-only cluster over the dqemu transport.
 *
 * Test that K processes on loopback join one cluster (or are refused with
 * a clear message), read pages from each other through dq_xport_request()
 * with every byte checked, notice a peer that dies, and shut down on the
 * master's word.  tests/dsm/test_membership.py drives it.
 *
 * stdout (for the driver): "node K: endpoint E", "node K: ready",
 * "node K: exchanged N pages", "node K: peer-failed J at T" (T is
 * CLOCK_REALTIME seconds), "node K: shutdown C".
 * stderr: diagnostics, "dqemu: node K: <what failed>: <why>".
 * Exit: 0 done, 1 usage, 2 start-up failed, 3 a peer failed, 4 bad data.
 */
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "xport.h"

#define EXIT_START  2
#define EXIT_PEER   3
#define EXIT_DATA   4

/* A READ_REQ for this address means "I am done exchanging". */
#define DONE_ADDR   0xd0e0000ull

static unsigned node_id;
static uint32_t page_size = 4096;
static DqXport *xport;
static pthread_mutex_t done_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t done_cond = PTHREAD_COND_INITIALIZER;
static unsigned done_count;
static uint8_t *serve_page;         /* I/O thread only */

static void dq_error(const char *what, const char *f, ...)
    __attribute__((format(printf, 2, 3)));

static void dq_error(const char *what, const char *f, ...)
{
    va_list ap;

    fprintf(stderr, "dqemu: node %u: %s: ", node_id, what);
    va_start(ap, f);
    vfprintf(stderr, f, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static uint8_t pattern(uint64_t addr, unsigned node, size_t i)
{
    return (uint8_t)((addr / page_size) * 13 + node * 101 + i * 7);
}

static void on_message(void *opaque, const DqMsg *msg)
{
    DqMsg r;
    size_t i;

    (void)opaque;
    if (msg->type != DQ_MSG_READ_REQ) {
        return;
    }
    if (msg->u.page.addr == DONE_ADDR) {
        pthread_mutex_lock(&done_lock);
        done_count++;
        pthread_cond_broadcast(&done_cond);
        pthread_mutex_unlock(&done_lock);
    }
    for (i = 0; i < page_size; i++) {
        serve_page[i] = pattern(msg->u.page.addr, node_id, i);
    }
    memset(&r, 0, sizeof(r));
    r.type = DQ_MSG_GRANT_DATA;
    r.dst = msg->src;
    r.req_id = msg->req_id;
    r.u.page.addr = msg->u.page.addr;
    r.u.page.state = DQ_PROTO_STATE_S;
    r.tail = serve_page;
    r.tail_len = page_size;
    dq_xport_send(xport, &r);
}

static void on_refused(void *opaque, const char *addr, const char *why)
{
    (void)opaque;
    dq_error("refused a connection", "from %s: %s", addr, why);
}

static void on_peer_failed(void *opaque, unsigned node, const char *why)
{
    struct timespec ts;

    (void)opaque;
    clock_gettime(CLOCK_REALTIME, &ts);
    dq_error("peer failed", "lost contact with node %u (%s)", node, why);
    printf("node %u: peer-failed %u at %lld.%03ld\n", node_id, node,
           (long long)ts.tv_sec, ts.tv_nsec / 1000000);
    fflush(stdout);
}

static DqStatus read_page(unsigned dst, uint64_t addr, uint8_t *buf,
                          size_t buflen, bool check)
{
    DqMsg q, r;
    DqStatus st;
    size_t i;

    memset(&q, 0, sizeof(q));
    q.type = DQ_MSG_READ_REQ;
    q.dst = (uint16_t)dst;
    q.u.page.addr = addr;
    st = dq_xport_request(xport, &q, &r, buf, buflen, 0);
    if (st != DQ_OK) {
        return st;
    }
    if (r.type != DQ_MSG_GRANT_DATA || r.u.page.addr != addr ||
        r.tail_len != page_size) {
        return DQ_ERR_PROTO_FIELD;
    }
    for (i = 0; check && i < page_size; i++) {
        if (r.tail[i] != pattern(addr, dst, i)) {
            return DQ_ERR_PROTO_FIELD;
        }
    }
    return DQ_OK;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: dsm-node --node K --nodes N [--master EP] [--rounds R]\n"
            "       [--cluster-id X] [--join-version V] [--page-size P]\n"
            "       [--hold-ms MS] [--heartbeat-ms MS] [--fail-ms MS]\n"
            "       [--join-ms MS]\n");
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        { "node", required_argument, NULL, 'k' },
        { "nodes", required_argument, NULL, 'n' },
        { "master", required_argument, NULL, 'm' },
        { "rounds", required_argument, NULL, 'r' },
        { "cluster-id", required_argument, NULL, 'c' },
        { "join-version", required_argument, NULL, 'v' },
        { "page-size", required_argument, NULL, 'p' },
        { "hold-ms", required_argument, NULL, 'h' },
        { "heartbeat-ms", required_argument, NULL, 'b' },
        { "fail-ms", required_argument, NULL, 'f' },
        { "join-ms", required_argument, NULL, 'j' },
        { NULL, 0, NULL, 0 },
    };
    DqXportConfig cfg;
    char err[DQ_ERRBUF_SIZE];
    unsigned rounds = 20, hold_ms = 0, i, d, moved = 0;
    uint32_t code = 0;
    uint8_t *buf;
    size_t buflen;
    DqStatus st;
    int opt;
    bool have_node = false;

    memset(&cfg, 0, sizeof(cfg));
    cfg.master_endpoint = "tcp://127.0.0.1:*";
    cfg.cluster_id = 0xd0e0;
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (opt) {
        case 'k': cfg.node_id = (unsigned)atoi(optarg); have_node = true;
                  break;
        case 'n': cfg.node_count = (unsigned)atoi(optarg); break;
        case 'm': cfg.master_endpoint = optarg; break;
        case 'r': rounds = (unsigned)atoi(optarg); break;
        case 'c': cfg.cluster_id = strtoull(optarg, NULL, 0); break;
        case 'v': cfg.join_version = (uint16_t)atoi(optarg); break;
        case 'p': page_size = (uint32_t)atoi(optarg); break;
        case 'h': hold_ms = (unsigned)atoi(optarg); break;
        case 'b': cfg.heartbeat_ms = (unsigned)atoi(optarg); break;
        case 'f': cfg.failure_timeout_ms = (unsigned)atoi(optarg); break;
        case 'j': cfg.join_timeout_ms = (unsigned)atoi(optarg); break;
        default: usage(); return 1;
        }
    }
    if (!have_node || cfg.node_count == 0 || optind != argc) {
        usage();
        return 1;
    }
    node_id = cfg.node_id;
    cfg.page_size = page_size;
    cfg.ops.on_message = on_message;
    cfg.ops.on_peer_failed = on_peer_failed;
    cfg.ops.on_refused = on_refused;
    serve_page = malloc(page_size);
    if (serve_page == NULL) {
        return 1;
    }

    st = dq_xport_start(&cfg, &xport, err, sizeof(err));
    if (st != DQ_OK) {
        dq_error("cannot start the transport", "%s", err);
        return EXIT_START;
    }
    printf("node %u: endpoint %s\n", node_id, dq_xport_endpoint(xport));
    fflush(stdout);
    st = dq_xport_wait_ready(xport, err, sizeof(err));
    if (st != DQ_OK) {
        dq_error(node_id == 0 ? "cluster start-up failed" :
                 "cannot join the cluster", "%s", err);
        if (node_id == 0) {
            /* Workers that did join should not wait for a timeout. */
            dq_xport_shutdown(xport, EXIT_START);
        }
        dq_xport_free(xport);
        return EXIT_START;
    }
    printf("node %u: ready\n", node_id);
    fflush(stdout);

    buflen = dq_xport_max_msg_size(xport);
    buf = malloc(buflen);
    if (buf == NULL) {
        return 1;
    }
    for (i = 0; i < rounds; i++) {
        for (d = 0; d < cfg.node_count; d++) {
            if (d == node_id) {
                continue;
            }
            st = read_page(d, (uint64_t)(i * 64 + node_id) * page_size, buf,
                           buflen, true);
            if (st != DQ_OK) {
                dq_error("page exchange failed", "page from node %u: %s", d,
                         dq_status_str(st));
                dq_xport_free(xport);
                free(buf);
                return st == DQ_ERR_PROTO_FIELD ? EXIT_DATA : EXIT_PEER;
            }
            moved++;
        }
    }
    printf("node %u: exchanged %u pages\n", node_id, moved);
    fflush(stdout);

    if (node_id != 0) {
        /* Tell the master we are done, then wait for its SHUTDOWN. */
        st = read_page(0, DONE_ADDR, buf, buflen, false);
        if (st == DQ_OK) {
            st = dq_xport_wait_shutdown(xport, hold_ms + 30000, &code, err,
                                        sizeof(err));
        } else {
            snprintf(err, sizeof(err), "telling the master: %s",
                     dq_status_str(st));
        }
        if (st != DQ_OK) {
            dq_error("cluster run failed", "%s", err);
            dq_xport_free(xport);
            free(buf);
            return EXIT_PEER;
        }
        printf("node %u: shutdown %u\n", node_id, code);
        fflush(stdout);
        dq_xport_free(xport);
        free(buf);
        free(serve_page);
        return (int)code;
    }

    /* Master: wait for every worker's "done", then hold, then shut down. */
    {
        struct timespec dl;

        clock_gettime(CLOCK_REALTIME, &dl);
        dl.tv_sec += 30;
        pthread_mutex_lock(&done_lock);
        while (done_count < cfg.node_count - 1) {
            if (pthread_cond_timedwait(&done_cond, &done_lock, &dl) != 0) {
                break;
            }
        }
        pthread_mutex_unlock(&done_lock);
    }
    st = DQ_ERR_XPORT_TIMEOUT;
    if (hold_ms > 0) {
        st = dq_xport_wait_shutdown(xport, hold_ms, &code, err, sizeof(err));
    }
    if (st == DQ_ERR_XPORT_PEER_FAILED) {
        dq_error("cluster run failed", "%s", err);
        code = EXIT_PEER;
    } else if (done_count < cfg.node_count - 1) {
        dq_error("cluster run failed", "only %u of %u workers finished",
                 done_count, cfg.node_count - 1);
        code = EXIT_PEER;
    }
    st = dq_xport_shutdown(xport, code);
    if (st != DQ_OK) {
        dq_error("shutdown", "%s", dq_status_str(st));
    }
    printf("node %u: shutdown %u\n", node_id, code);
    fflush(stdout);
    dq_xport_free(xport);
    free(buf);
    free(serve_page);
    return (int)code;
}
