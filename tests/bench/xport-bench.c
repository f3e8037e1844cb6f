/*
 * xport-bench.c - latency of one remote page read between 2 processes.
 *
 * A small request and a 4 KiB reply (the shape of a DSM read fault) over
 * 127.0.0.1, three ways: the dqemu transport (dq_xport_request() to a
 * node whose I/O thread answers from on_message), a raw TCP socket with
 * TCP_NODELAY, and plain ZeroMQ REQ/REP.  Prints median and p99 of each
 * and the ratios; never fails on a timing.  Each server is a forked child
 * that tells the parent its port through a pipe, before any thread or
 * ZeroMQ context exists in the parent.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "xport.h"

#define PAGE        4096
#define REQ_BYTES   36      /* a READ_REQ: header + address */
#define WARMUP      1000

static unsigned iters = 20000;

static uint64_t now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

    return x < y ? -1 : x > y;
}

typedef struct Result {
    const char *name;
    double median_us, p99_us;
    unsigned errors;
} Result;

static void summarize(Result *r, uint64_t *ns, unsigned n)
{
    qsort(ns, n, sizeof(*ns), cmp_u64);
    r->median_us = n ? ns[n / 2] / 1000.0 : 0;
    r->p99_us = n ? ns[(size_t)n * 99 / 100] / 1000.0 : 0;
}

static void die(const char *what)
{
    perror(what);
    exit(1);
}

static void write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    ssize_t k;

    while (n > 0) {
        k = write(fd, c, n);
        if (k <= 0) {
            die("write");
        }
        c += k;
        n -= (size_t)k;
    }
}

static int read_all(int fd, void *p, size_t n)
{
    char *c = p;
    ssize_t k;

    while (n > 0) {
        k = read(fd, c, n);
        if (k <= 0) {
            return -1;
        }
        c += k;
        n -= (size_t)k;
    }
    return 0;
}

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
    write_all(wfd, ep, sizeof(ep));
    if (dq_xport_wait_ready(srv_x, err, sizeof(err)) != DQ_OK) {
        fprintf(stderr, "bench server: %s\n", err);
        exit(1);
    }
    /* Serve until the client is gone (or 5 minutes). */
    dq_xport_wait_shutdown(srv_x, 300000, &code, err, sizeof(err));
    dq_xport_free(srv_x);
    exit(0);
}

static void bench_xport(Result *r, const char *ep, uint64_t *ns)
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
        t0 = now_ns();
        if (dq_xport_request(x, &q, &rep, buf, dq_xport_max_msg_size(x),
                             0) != DQ_OK || rep.tail_len != PAGE) {
            r->errors++;
        }
        if (i >= WARMUP) {
            ns[i - WARMUP] = now_ns() - t0;
        }
    }
    free(buf);
    dq_xport_free(x);
    summarize(r, ns, iters);
}

/* ---- raw TCP ---------------------------------------------------------- */

static void tcp_server(int wfd)
{
    struct sockaddr_in a;
    socklen_t al = sizeof(a);
    char req[REQ_BYTES], page[PAGE];
    int ls, s, one = 1;

    memset(page, 0x5a, sizeof(page));
    ls = socket(AF_INET, SOCK_STREAM, 0);
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        listen(ls, 1) != 0 || getsockname(ls, (struct sockaddr *)&a, &al)) {
        die("tcp server");
    }
    write_all(wfd, &a.sin_port, sizeof(a.sin_port));
    s = accept(ls, NULL, NULL);
    if (s < 0) {
        die("accept");
    }
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    while (read_all(s, req, sizeof(req)) == 0) {
        write_all(s, page, sizeof(page));
    }
    exit(0);
}

static void bench_tcp(Result *r, uint16_t port, uint64_t *ns)
{
    struct sockaddr_in a;
    char req[REQ_BYTES], page[PAGE];
    int s, one = 1;
    unsigned i;
    uint64_t t0;

    memset(req, 1, sizeof(req));
    s = socket(AF_INET, SOCK_STREAM, 0);
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = port;
    if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof(a)) != 0) {
        die("tcp connect");
    }
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    for (i = 0; i < WARMUP + iters; i++) {
        t0 = now_ns();
        write_all(s, req, sizeof(req));
        if (read_all(s, page, sizeof(page)) != 0) {
            r->errors++;
        }
        if (i >= WARMUP) {
            ns[i - WARMUP] = now_ns() - t0;
        }
    }
    close(s);
    summarize(r, ns, iters);
}

/* ---- ZeroMQ REQ/REP --------------------------------------------------- */

static void zmq_server(int wfd)
{
    char ep[DQ_XPORT_ENDPOINT_MAX] = { 0 }, req[REQ_BYTES], page[PAGE];
    size_t len = sizeof(ep);
    void *ctx = zmq_ctx_new();
    void *s = zmq_socket(ctx, ZMQ_REP);

    memset(page, 0x5a, sizeof(page));
    if (zmq_bind(s, "tcp://127.0.0.1:*") != 0 ||
        zmq_getsockopt(s, ZMQ_LAST_ENDPOINT, ep, &len) != 0) {
        die("zmq server");
    }
    write_all(wfd, ep, sizeof(ep));
    while (zmq_recv(s, req, sizeof(req), 0) >= 0) {
        zmq_send(s, page, sizeof(page), 0);
    }
    exit(0);
}

static void bench_zmq(Result *r, const char *ep, uint64_t *ns)
{
    char req[REQ_BYTES], page[PAGE];
    void *ctx = zmq_ctx_new();
    void *s = zmq_socket(ctx, ZMQ_REQ);
    int linger = 0;
    unsigned i;
    uint64_t t0;

    memset(req, 1, sizeof(req));
    if (zmq_connect(s, ep) != 0) {
        die("zmq connect");
    }
    for (i = 0; i < WARMUP + iters; i++) {
        t0 = now_ns();
        if (zmq_send(s, req, sizeof(req), 0) < 0 ||
            zmq_recv(s, page, sizeof(page), 0) != PAGE) {
            r->errors++;
        }
        if (i >= WARMUP) {
            ns[i - WARMUP] = now_ns() - t0;
        }
    }
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof(linger));
    zmq_close(s);
    zmq_ctx_term(ctx);
    summarize(r, ns, iters);
}

/* ---- driver ----------------------------------------------------------- */

/* Fork a server that writes @len bytes of address to a pipe; read them. */
static pid_t spawn(void (*server)(int), void *addr, size_t len)
{
    int p[2];
    pid_t pid;

    if (pipe(p) != 0) {
        die("pipe");
    }
    pid = fork();
    if (pid < 0) {
        die("fork");
    }
    if (pid == 0) {
        close(p[0]);
        server(p[1]);
        exit(0);
    }
    close(p[1]);
    if (read_all(p[0], addr, len) != 0) {
        fprintf(stderr, "bench: server did not start\n");
        exit(1);
    }
    close(p[0]);
    return pid;
}

static void reap(pid_t pid)
{
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
}

int main(int argc, char **argv)
{
    Result res[3] = { { .name = "dqemu xport" }, { .name = "raw TCP" },
                      { .name = "ZeroMQ REQ/REP" } };
    char ep[DQ_XPORT_ENDPOINT_MAX];
    uint16_t port;
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
    pid = spawn(tcp_server, &port, sizeof(port));
    bench_tcp(&res[1], port, ns);
    reap(pid);
    pid = spawn(zmq_server, ep, sizeof(ep));
    bench_zmq(&res[2], ep, ns);
    reap(pid);
    pid = spawn(xport_server, ep, sizeof(ep));
    bench_xport(&res[0], ep, ns);
    reap(pid);

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
