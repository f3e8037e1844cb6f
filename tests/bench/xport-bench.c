/*
 * xport-bench.c - latency of one remote page read between 2 processes.
 *
 * A small request and a 4 KiB reply (the shape of a DSM read fault) over
 * 127.0.0.1, three ways: the dqemu transport (dq_xport_request() to a
 * node whose I/O thread answers from on_message), a raw TCP socket with
 * TCP_NODELAY, and plain ZeroMQ REQ/REP (those two in baseline.c, shared
 * with dsm-bench).  Prints median and p99 of each and the ratios; never
 * fails on a timing.  Each server is a forked child that tells the parent
 * its address through a pipe, before any thread or ZeroMQ context exists
 * in the parent.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "baseline.h"
#include "xport.h"

#define PAGE        BENCH_PAGE
#define REQ_BYTES   BENCH_REQ_BYTES
#define WARMUP      1000

static unsigned iters = 20000;

/* ---- dqemu transport -------------------------------------------------- */

static DqXport *srv_x;
static uint8_t srv_page[PAGE];

static void srv_on_message(void *opaque, const DqMsg *msg)
{
    DqMsg r;

    (void)opaque;
    if (msg->type != DQ_MSG_READ_REQ) {
        return;
    }
    memset(&r, 0, sizeof(r));
    r.type = DQ_MSG_GRANT_DATA;
    r.dst = msg->src;
    r.req_id = msg->req_id;
    r.u.page.addr = msg->u.page.addr;
    r.u.page.state = DQ_PROTO_STATE_S;
    r.tail = srv_page;
    r.tail_len = PAGE;
    dq_xport_send(srv_x, &r);
}

static void xport_cfg(DqXportConfig *c, unsigned id, const char *master)
{
    memset(c, 0, sizeof(*c));
    c->node_id = id;
    c->node_count = 2;
    c->master_endpoint = master;
    c->cluster_id = 0xbe7c4;
    c->page_size = PAGE;
}

static void xport_server(int wfd)
{
    DqXportConfig c;
    char err[DQ_ERRBUF_SIZE], ep[DQ_XPORT_ENDPOINT_MAX] = { 0 };
    uint32_t code;

    xport_cfg(&c, 0, "tcp://127.0.0.1:*");
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

static void bench_xport(BenchResult *r, const char *ep, uint64_t *ns)
{
    DqXportConfig c;
    char err[DQ_ERRBUF_SIZE];
    DqXport *x;
    uint8_t *buf;
    DqMsg q, rep;
    unsigned i;
    uint64_t t0;

    xport_cfg(&c, 1, ep);
    if (dq_xport_start(&c, &x, err, sizeof(err)) != DQ_OK ||
        dq_xport_wait_ready(x, err, sizeof(err)) != DQ_OK) {
        fprintf(stderr, "bench client: %s\n", err);
        exit(1);
    }
    buf = malloc(dq_xport_max_msg_size(x));
    for (i = 0; i < WARMUP + iters; i++) {
        memset(&q, 0, sizeof(q));
        q.type = DQ_MSG_READ_REQ;
        q.dst = 0;
        q.u.page.addr = (uint64_t)(i % 1024) * PAGE;
        t0 = bench_now_ns();
        if (dq_xport_request(x, &q, &rep, buf, dq_xport_max_msg_size(x),
                             0) != DQ_OK || rep.tail_len != PAGE) {
            r->errors++;
        }
        if (i >= WARMUP) {
            ns[i - WARMUP] = bench_now_ns() - t0;
        }
    }
    free(buf);
    dq_xport_free(x);
    bench_summarize(r, ns, iters);
}

/* ---- driver ----------------------------------------------------------- */

int main(int argc, char **argv)
{
    BenchResult res[3] = { { .name = "dqemu xport" }, { .name = "raw TCP" },
                           { .name = "ZeroMQ REQ/REP" } };
    char ep[DQ_XPORT_ENDPOINT_MAX];
    uint64_t *ns;
    pid_t pid;
    unsigned i;

    if (argc > 1) {
        iters = (unsigned)atoi(argv[1]);
        if (iters == 0) {
            iters = 1;
        }
    }
    ns = malloc(sizeof(*ns) * iters);
    if (ns == NULL) {
        return 1;
    }
    /* The ZeroMQ-free and ZeroMQ-using clients each run after their own
     * fork, so no child inherits a parent's context or threads. */
    if (bench_tcp_rtt(&res[1], WARMUP, iters, ns) != 0) {
        fprintf(stderr, "bench: raw TCP: %s\n", res[1].why);
    }
    if (bench_zmq_rtt(&res[2], WARMUP, iters, ns) != 0) {
        fprintf(stderr, "bench: ZeroMQ REQ/REP: %s\n", res[2].why);
    }
    pid = bench_spawn(xport_server, ep, sizeof(ep));
    if (pid < 0) {
        fprintf(stderr, "bench: the dqemu transport server did not start\n");
        free(ns);
        return 1;
    }
    bench_xport(&res[0], ep, ns);
    bench_reap(pid);

    printf("4 KiB remote read (%d-byte request, %d-byte reply), "
           "2 processes on 127.0.0.1, %u round trips each\n",
           REQ_BYTES, PAGE, iters);
    printf("  %-16s %10s %10s %10s %10s\n", "", "median us", "p99 us",
           "vs TCP", "vs REQ/REP");
    for (i = 0; i < 3; i++) {
        printf("  %-16s %10.1f %10.1f %9.2fx %9.2fx%s\n", res[i].name,
               res[i].median_us, res[i].p99_us,
               res[i].median_us / res[1].median_us,
               res[i].median_us / res[2].median_us,
               res[i].errors ? "  (errors!)" : "");
    }
    printf("  goal: remote read fault <= 100 us median (DESIGN.md)\n");
    free(ns);
    return 0;
}
