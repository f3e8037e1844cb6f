/*
 * baseline.h - the yardsticks dqemu's latency benchmarks are read against.
 *
 * A DSM read fault is a small request and a 4 KiB reply between two
 * processes.  The least any implementation pays for that on a machine is
 * a raw TCP round trip (TCP_NODELAY); what a plain ZeroMQ program pays is
 * a REQ/REP round trip.  Every benchmark measures both in its own run, so
 * its ratios compare figures taken under the same load.  Each server is a
 * forked child that reports its address through a pipe before the parent
 * creates any thread or ZeroMQ context, and dies with the parent.
 */
#ifndef DQEMU_BENCH_BASELINE_H
#define DQEMU_BENCH_BASELINE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define BENCH_PAGE          4096
#define BENCH_REQ_BYTES     36      /* a READ_REQ: header + address */
/* Longest a baseline server may take to start or to answer once. */
#define BENCH_WAIT_MS       10000

typedef struct BenchResult {
    const char *name;
    double median_us, p99_us;
    unsigned errors;
    char why[128];              /* the first error, for the caller to report */
} BenchResult;

uint64_t bench_now_ns(void);

/* Sort @ns[0..@n) and store its median and 99th percentile in @r. */
void bench_summarize(BenchResult *r, uint64_t *ns, unsigned n);

/*
 * Move exactly @n bytes through a pipe or socket, retrying short
 * transfers and EINTR.  0, or -1 on an error or end of file (a socket
 * whose peer is gone gives -1, never SIGPIPE).
 */
int bench_write_all(int fd, const void *p, size_t n);
int bench_read_all(int fd, void *p, size_t n);

/* bench_read_all(), but -1 with errno ETIMEDOUT if @fd stays silent for
 * @ms; so a reader never hangs on a peer that stopped. */
int bench_read_within(int fd, void *p, size_t n, unsigned ms);

/*
 * Fork a child running @server(wfd), which writes @len bytes (its
 * address) to wfd; read them into @addr within BENCH_WAIT_MS.  The child
 * gets SIGKILL if this process dies.  The child's pid, or -1 if it could
 * not be started or did not report (it is reaped then).
 */
pid_t bench_spawn(void (*server)(int wfd), void *addr, size_t len);

/* SIGTERM a child started by bench_spawn() and wait for it. */
void bench_reap(pid_t pid);

/*
 * One baseline each: fork the server, time @warmup + @iters round trips
 * of a BENCH_REQ_BYTES request and a BENCH_PAGE reply from this process,
 * keep the last @iters in @ns (room for @iters) and summarize them into
 * @r.  0, or -1 with @r->why set (the run stops at the first error).
 */
int bench_tcp_rtt(BenchResult *r, unsigned warmup, unsigned iters,
                  uint64_t *ns);
int bench_zmq_rtt(BenchResult *r, unsigned warmup, unsigned iters,
                  uint64_t *ns);

#endif /* DQEMU_BENCH_BASELINE_H */
