/*
 * baseline.c - raw TCP and ZeroMQ REQ/REP 4 KiB round trips (baseline.h),
 * and the fork/pipe/timing helpers the benchmarks share.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "baseline.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

/* Longest ZeroMQ endpoint string a server reports. */
#define ENDPOINT_MAX 128

uint64_t bench_now_ns(void)
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

void bench_summarize(BenchResult *r, uint64_t *ns, unsigned n)
{
    qsort(ns, n, sizeof(*ns), cmp_u64);
    r->median_us = n ? ns[n / 2] / 1000.0 : 0;
    r->p99_us = n ? ns[(size_t)n * 99 / 100] / 1000.0 : 0;
}

static void fail(BenchResult *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Record the first error only: later ones are its consequences. */
static void fail(BenchResult *r, const char *fmt, ...)
{
    va_list ap;

    if (r->errors++ == 0) {
        va_start(ap, fmt);
        vsnprintf(r->why, sizeof(r->why), fmt, ap);
        va_end(ap);
    }
}

/* Wait until @fd is readable or @deadline (CLOCK_MONOTONIC ns) passes. */
static int wait_readable(int fd, uint64_t deadline)
{
    struct pollfd pfd = { .fd = fd, .events = POLLIN };
    uint64_t now;
    int rc;

    for (;;) {
        now = bench_now_ns();
        if (now >= deadline) {
            errno = ETIMEDOUT;
            return -1;
        }
        rc = poll(&pfd, 1, (int)((deadline - now + 999999) / 1000000));
        if (rc > 0) {
            return 0;
        }
        if (rc < 0 && errno != EINTR) {
            return -1;
        }
    }
}

/* The loop behind the three: @deadline 0 waits as long as @fd does. */
static int xfer_all(int fd, char *c, size_t n, bool out, uint64_t deadline)
{
    ssize_t k;

    while (n > 0) {
        if (deadline != 0 && wait_readable(fd, deadline) != 0) {
            return -1;
        }
        if (out) {
            /* send() so a vanished socket peer is EPIPE, not SIGPIPE. */
            k = send(fd, c, n, MSG_NOSIGNAL);
            if (k < 0 && errno == ENOTSOCK) {
                k = write(fd, c, n);
            }
        } else {
            k = read(fd, c, n);
        }
        if (k < 0 && errno == EINTR) {
            continue;
        }
        if (k <= 0) {
            if (k == 0) {
                errno = EPIPE;
            }
            return -1;
        }
        c += k;
        n -= (size_t)k;
    }
    return 0;
}

int bench_write_all(int fd, const void *p, size_t n)
{
    return xfer_all(fd, (char *)p, n, true, 0);
}

int bench_read_all(int fd, void *p, size_t n)
{
    return xfer_all(fd, p, n, false, 0);
}

int bench_read_within(int fd, void *p, size_t n, unsigned ms)
{
    return xfer_all(fd, p, n, false,
                    bench_now_ns() + (uint64_t)ms * 1000000u);
}

pid_t bench_spawn(void (*server)(int wfd), void *addr, size_t len)
{
    pid_t parent = getpid(), pid;
    int p[2];

    if (pipe(p) != 0) {
        return -1;
    }
    /* Unflushed output would be written again by the child. */
    fflush(stdout);
    fflush(stderr);
    pid = fork();
    if (pid < 0) {
        close(p[0]);
        close(p[1]);
        return -1;
    }
    if (pid == 0) {
        close(p[0]);
        /* A server blocked in accept() must not outlive a killed parent. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) {
            _exit(1);
        }
        server(p[1]);
        exit(0);
    }
    close(p[1]);
    if (bench_read_within(p[0], addr, len, BENCH_WAIT_MS) != 0) {
        close(p[0]);
        bench_reap(pid);
        return -1;
    }
    close(p[0]);
    return pid;
}

void bench_reap(pid_t pid)
{
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
}

/* ---- raw TCP ---------------------------------------------------------- */

static void tcp_server(int wfd)
{
    struct sockaddr_in a;
    socklen_t al = sizeof(a);
    char req[BENCH_REQ_BYTES], page[BENCH_PAGE];
    int ls, s, one = 1;

    memset(page, 0x5a, sizeof(page));
    ls = socket(AF_INET, SOCK_STREAM, 0);
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        listen(ls, 1) != 0 || getsockname(ls, (struct sockaddr *)&a, &al) ||
        bench_write_all(wfd, &a.sin_port, sizeof(a.sin_port)) != 0) {
        exit(1);
    }
    s = accept(ls, NULL, NULL);
    if (s < 0) {
        exit(1);
    }
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    while (bench_read_all(s, req, sizeof(req)) == 0 &&
           bench_write_all(s, page, sizeof(page)) == 0) {
        /* serve until the client closes */
    }
    exit(0);
}

int bench_tcp_rtt(BenchResult *r, unsigned warmup, unsigned iters,
                  uint64_t *ns)
{
    struct timeval tv = { BENCH_WAIT_MS / 1000, 0 };
    struct sockaddr_in a;
    char req[BENCH_REQ_BYTES], page[BENCH_PAGE];
    uint16_t port;
    uint64_t t0;
    unsigned i;
    pid_t pid;
    int s, one = 1;

    pid = bench_spawn(tcp_server, &port, sizeof(port));
    if (pid < 0) {
        fail(r, "the TCP server did not start");
        return -1;
    }
    memset(req, 1, sizeof(req));
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = port;
    s = socket(AF_INET, SOCK_STREAM, 0);
    if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof(a)) != 0) {
        fail(r, "connect to 127.0.0.1:%u: %s", ntohs(port),
             strerror(errno));
        iters = 0;
    } else {
        setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        /* A stuck server is an error, not a hang. */
        setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    }
    for (i = 0; r->errors == 0 && i < warmup + iters; i++) {
        t0 = bench_now_ns();
        if (bench_write_all(s, req, sizeof(req)) != 0 ||
            bench_read_all(s, page, sizeof(page)) != 0) {
            fail(r, "round trip %u: %s", i,
                 errno == EPIPE ? "the server closed" : strerror(errno));
            break;
        }
        if (i >= warmup) {
            ns[i - warmup] = bench_now_ns() - t0;
        }
    }
    if (s >= 0) {
        close(s);
    }
    bench_reap(pid);
    if (r->errors != 0) {
        return -1;
    }
    bench_summarize(r, ns, iters);
    return 0;
}

/* ---- ZeroMQ REQ/REP --------------------------------------------------- */

static void zmq_server(int wfd)
{
    char ep[ENDPOINT_MAX] = { 0 }, req[BENCH_REQ_BYTES], page[BENCH_PAGE];
    size_t len = sizeof(ep);
    void *ctx = zmq_ctx_new();
    void *s = zmq_socket(ctx, ZMQ_REP);

    memset(page, 0x5a, sizeof(page));
    if (s == NULL || zmq_bind(s, "tcp://127.0.0.1:*") != 0 ||
        zmq_getsockopt(s, ZMQ_LAST_ENDPOINT, ep, &len) != 0 ||
        bench_write_all(wfd, ep, sizeof(ep)) != 0) {
        exit(1);
    }
    while (zmq_recv(s, req, sizeof(req), 0) >= 0 &&
           zmq_send(s, page, sizeof(page), 0) >= 0) {
        /* serve until the parent reaps us */
    }
    exit(0);
}

int bench_zmq_rtt(BenchResult *r, unsigned warmup, unsigned iters,
                  uint64_t *ns)
{
    char ep[ENDPOINT_MAX], req[BENCH_REQ_BYTES], page[BENCH_PAGE];
    int linger = 0, wait_ms = BENCH_WAIT_MS;
    void *ctx, *s;
    uint64_t t0;
    unsigned i;
    pid_t pid;

    pid = bench_spawn(zmq_server, ep, sizeof(ep));
    if (pid < 0) {
        fail(r, "the ZeroMQ server did not start");
        return -1;
    }
    ep[sizeof(ep) - 1] = '\0';
    memset(req, 1, sizeof(req));
    ctx = zmq_ctx_new();
    s = zmq_socket(ctx, ZMQ_REQ);
    /* Without timeouts a REQ socket waits forever for a dead server. */
    if (s == NULL ||
        zmq_setsockopt(s, ZMQ_RCVTIMEO, &wait_ms, sizeof(wait_ms)) != 0 ||
        zmq_setsockopt(s, ZMQ_SNDTIMEO, &wait_ms, sizeof(wait_ms)) != 0 ||
        zmq_connect(s, ep) != 0) {
        fail(r, "connect to %s: %s", ep, zmq_strerror(zmq_errno()));
        iters = 0;
    }
    for (i = 0; r->errors == 0 && i < warmup + iters; i++) {
        t0 = bench_now_ns();
        if (zmq_send(s, req, sizeof(req), 0) < 0 ||
            zmq_recv(s, page, sizeof(page), 0) != BENCH_PAGE) {
            fail(r, "round trip %u: %s", i, zmq_strerror(zmq_errno()));
            break;
        }
        if (i >= warmup) {
            ns[i - warmup] = bench_now_ns() - t0;
        }
    }
    if (s != NULL) {
        zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof(linger));
        zmq_close(s);
    }
    /* Joins ZeroMQ's threads: the caller may fork again afterwards. */
    zmq_ctx_term(ctx);
    bench_reap(pid);
    if (r->errors != 0) {
        return -1;
    }
    bench_summarize(r, ns, iters);
    return 0;
}
