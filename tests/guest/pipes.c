/* Test that pipes carry data intact across fork and across threads, with EOF, EPIPE, non-blocking mode and polling. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/wait.h>

#include "guest-check.h"

#define FORK_BYTES   (1u << 20)
#define THREAD_BYTES (4u << 20)
#define NWRITERS     4
#define RECORDS      500
#define RECORD_SIZE  64

static unsigned char stream_byte(uint64_t i)
{
    return (unsigned char)((i * 2654435761u) >> 13);
}

/* A deterministic generator for chunk sizes (xorshift32). */
static uint32_t next_rand(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

static uint32_t fnv_update(uint32_t h, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h = (h ^ p[i]) * 16777619u;
    }
    return h;
}

static void write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;

    while (len > 0) {
        ssize_t n = write(fd, p, len);
        CHECK(n > 0, "write: %s", strerror(errno));
        p += n;
        len -= (size_t)n;
    }
}

static void test_basic(void)
{
    int fds[2];
    char buf[64];
    int avail;

    CHECK_SYS(pipe(fds));
    write_all(fds[1], "hello, pipe", 11);
    CHECK_SYS(ioctl(fds[0], FIONREAD, &avail));
    CHECK(avail == 11, "FIONREAD says %d", avail);
    /* A read returns what is there, not the full request. */
    CHECK(read(fds[0], buf, sizeof(buf)) == 11, "short read");
    CHECK(memcmp(buf, "hello, pipe", 11) == 0, "pipe data");
    CHECK_SYS(close(fds[1]));
    CHECK(read(fds[0], buf, sizeof(buf)) == 0, "no EOF after writer closed");
    CHECK_SYS(close(fds[0]));
    printf("basic: data, FIONREAD and EOF ok\n");
}

/* Parent streams 1 MiB to the child; the child sends back its hash. */
static void test_fork(void)
{
    int down[2], up[2];
    uint32_t want = 2166136261u, got = 0;
    static unsigned char buf[65536];

    CHECK_SYS(pipe(down));
    CHECK_SYS(pipe(up));
    fflush(stdout);
    pid_t pid = fork();
    CHECK_SYS(pid);
    if (pid == 0) {
        uint32_t h = 2166136261u;
        size_t total = 0;
        ssize_t n;

        close(down[1]);
        close(up[0]);
        while ((n = read(down[0], buf, sizeof(buf))) > 0) {
            h = fnv_update(h, buf, (size_t)n);
            total += (size_t)n;
        }
        if (n < 0 || total != FORK_BYTES) {
            _exit(3);
        }
        if (write(up[1], &h, sizeof(h)) != (ssize_t)sizeof(h)) {
            _exit(4);
        }
        _exit(0);
    }
    CHECK_SYS(close(down[0]));
    CHECK_SYS(close(up[1]));

    uint32_t seed = 12345;
    for (size_t off = 0; off < FORK_BYTES;) {
        size_t len = 1 + next_rand(&seed) % 20000;
        if (len > FORK_BYTES - off) {
            len = FORK_BYTES - off;
        }
        for (size_t i = 0; i < len; i++) {
            buf[i] = stream_byte(off + i);
        }
        want = fnv_update(want, buf, len);
        write_all(down[1], buf, len);
        off += len;
    }
    CHECK_SYS(close(down[1]));
    CHECK(read(up[0], &got, sizeof(got)) == (ssize_t)sizeof(got), "no hash from child");
    CHECK_SYS(close(up[0]));
    int status;
    CHECK(waitpid(pid, &status, 0) == pid, "waitpid");
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %#x", status);
    CHECK(got == want, "child hash %08x != %08x", got, want);
    printf("fork: 1 MiB to child, hash %08x matches\n", want);
}

/* A producer thread writes 4 MiB in odd-sized chunks; main checks every byte. */
static int thread_pipe[2];

static void *producer(void *arg)
{
    static unsigned char buf[40000];
    uint32_t seed = 777;

    (void)arg;
    for (size_t off = 0; off < THREAD_BYTES;) {
        size_t len = 1 + next_rand(&seed) % sizeof(buf);
        if (len > THREAD_BYTES - off) {
            len = THREAD_BYTES - off;
        }
        for (size_t i = 0; i < len; i++) {
            buf[i] = stream_byte(off + i);
        }
        write_all(thread_pipe[1], buf, len);
        off += len;
    }
    close(thread_pipe[1]);
    return NULL;
}

static void test_threads(void)
{
    static unsigned char buf[7919];
    pthread_t t;
    size_t off = 0;
    ssize_t n;

    CHECK_SYS(pipe(thread_pipe));
    CHECK_PT(pthread_create(&t, NULL, producer, NULL));
    while ((n = read(thread_pipe[0], buf, sizeof(buf))) > 0) {
        for (ssize_t i = 0; i < n; i++) {
            CHECK(buf[i] == stream_byte(off + (size_t)i), "byte %zu wrong",
                  off + (size_t)i);
        }
        off += (size_t)n;
    }
    CHECK(n == 0, "read: %s", strerror(errno));
    CHECK(off == THREAD_BYTES, "received %zu bytes", off);
    CHECK_PT(pthread_join(t, NULL));
    CHECK_SYS(close(thread_pipe[0]));
    printf("threads: 4 MiB in order and intact\n");
}

/* Writes of at most PIPE_BUF bytes are atomic even with several writers. */
static int atomic_pipe[2];

static void *record_writer(void *arg)
{
    unsigned char rec[RECORD_SIZE];
    int id = (int)(intptr_t)arg;

    for (int seq = 0; seq < RECORDS; seq++) {
        rec[0] = (unsigned char)id;
        rec[1] = (unsigned char)(seq & 0xff);
        rec[2] = (unsigned char)(seq >> 8);
        for (int i = 3; i < RECORD_SIZE; i++) {
            rec[i] = (unsigned char)(id * 31 + seq + i);
        }
        CHECK(write(atomic_pipe[1], rec, RECORD_SIZE) == RECORD_SIZE, "record write");
    }
    return NULL;
}

static void test_atomic_writes(void)
{
    pthread_t t[NWRITERS];
    int next_seq[NWRITERS] = { 0 };
    unsigned char rec[RECORD_SIZE];

    CHECK(RECORD_SIZE <= PIPE_BUF, "record larger than PIPE_BUF");
    CHECK_SYS(pipe(atomic_pipe));
    for (int i = 0; i < NWRITERS; i++) {
        CHECK_PT(pthread_create(&t[i], NULL, record_writer, (void *)(intptr_t)i));
    }
    for (int r = 0; r < NWRITERS * RECORDS; r++) {
        size_t got = 0;
        while (got < RECORD_SIZE) {
            ssize_t n = read(atomic_pipe[0], rec + got, RECORD_SIZE - got);
            CHECK(n > 0, "record read: %s", n < 0 ? strerror(errno) : "EOF");
            got += (size_t)n;
        }
        int id = rec[0], seq = rec[1] | rec[2] << 8;
        CHECK(id < NWRITERS, "record %d from writer %d", r, id);
        /* Each writer's records arrive in its order, never interleaved. */
        CHECK(seq == next_seq[id], "writer %d: seq %d, want %d", id, seq, next_seq[id]);
        for (int i = 3; i < RECORD_SIZE; i++) {
            CHECK(rec[i] == (unsigned char)(id * 31 + seq + i), "record torn");
        }
        next_seq[id]++;
    }
    for (int i = 0; i < NWRITERS; i++) {
        CHECK_PT(pthread_join(t[i], NULL));
    }
    CHECK_SYS(close(atomic_pipe[0]));
    CHECK_SYS(close(atomic_pipe[1]));
    printf("PIPE_BUF: %d writers x %d records, none torn\n", NWRITERS, RECORDS);
}

static void test_epipe(void)
{
    int fds[2], status;

    /* Ignored SIGPIPE: write to a reader-less pipe fails with EPIPE. */
    CHECK_SYS(pipe(fds));
    CHECK_SYS(close(fds[0]));
    signal(SIGPIPE, SIG_IGN);
    CHECK_ERRNO(write(fds[1], "x", 1), EPIPE);
    signal(SIGPIPE, SIG_DFL);
    CHECK_SYS(close(fds[1]));

    /* Default SIGPIPE: the writer dies from it. */
    CHECK_SYS(pipe(fds));
    fflush(stdout);
    pid_t pid = fork();
    CHECK_SYS(pid);
    if (pid == 0) {
        close(fds[0]);
        /*
         * Writes succeed (or block on a full pipe) until the parent has
         * closed its read end; the first write after that raises SIGPIPE.
         */
        for (;;) {
            if (write(fds[1], "x", 1) < 0) {
                _exit(5);
            }
        }
    }
    CHECK_SYS(close(fds[0]));
    CHECK_SYS(close(fds[1]));
    CHECK(waitpid(pid, &status, 0) == pid, "waitpid");
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGPIPE,
          "writer status %#x, want death by SIGPIPE", status);
    printf("EPIPE with SIGPIPE ignored, death by SIGPIPE otherwise\n");
}

static void test_nonblock_poll(void)
{
    int fds[2];
    char buf[4096];
    int avail;

    CHECK_SYS(pipe2(fds, O_NONBLOCK | O_CLOEXEC));
    CHECK(fcntl(fds[0], F_GETFL) & O_NONBLOCK, "O_NONBLOCK not set");
    CHECK(fcntl(fds[1], F_GETFD) & FD_CLOEXEC, "FD_CLOEXEC not set");
    CHECK_ERRNO(read(fds[0], buf, sizeof(buf)), EAGAIN);

    struct pollfd pfd = { .fd = fds[0], .events = POLLIN };
    CHECK(poll(&pfd, 1, 10) == 0, "poll on an empty pipe is ready");

    /* Fill the pipe until it refuses; everything written is readable. */
    memset(buf, 'f', sizeof(buf));
    size_t filled = 0;
    for (;;) {
        ssize_t n = write(fds[1], buf, sizeof(buf));
        if (n < 0) {
            CHECK(errno == EAGAIN, "fill: %s", strerror(errno));
            break;
        }
        filled += (size_t)n;
        CHECK(filled < (64u << 20), "pipe never filled");
    }
    CHECK_SYS(ioctl(fds[0], FIONREAD, &avail));
    CHECK((size_t)avail == filled, "FIONREAD %d != %zu written", avail, filled);
    pfd.events = POLLOUT;
    pfd.fd = fds[1];
    CHECK(poll(&pfd, 1, 0) == 0, "full pipe polls writable");
    pfd.fd = fds[0];
    pfd.events = POLLIN;
    CHECK(poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLIN), "full pipe not readable");

    /* select sees the same. */
    fd_set rset;
    struct timeval tv = { 0, 0 };
    FD_ZERO(&rset);
    FD_SET(fds[0], &rset);
    CHECK(select(fds[0] + 1, &rset, NULL, NULL, &tv) == 1 && FD_ISSET(fds[0], &rset),
          "select does not see data");

    size_t drained = 0;
    for (;;) {
        ssize_t n = read(fds[0], buf, sizeof(buf));
        if (n < 0) {
            CHECK(errno == EAGAIN, "drain: %s", strerror(errno));
            break;
        }
        for (ssize_t i = 0; i < n; i++) {
            CHECK(buf[i] == 'f', "drained wrong data");
        }
        drained += (size_t)n;
    }
    CHECK(drained == filled, "drained %zu of %zu", drained, filled);

    /* epoll: one edge for new data, then hangup when the writer goes. */
    int ep = epoll_create1(EPOLL_CLOEXEC);
    CHECK_SYS(ep);
    struct epoll_event ev = { .events = EPOLLIN, .data.u64 = 0x1122334455667788ull };
    CHECK_SYS(epoll_ctl(ep, EPOLL_CTL_ADD, fds[0], &ev));
    struct epoll_event out[4];
    CHECK(epoll_wait(ep, out, 4, 10) == 0, "epoll ready on empty pipe");
    write_all(fds[1], "e", 1);
    CHECK(epoll_wait(ep, out, 4, 1000) == 1, "epoll missed data");
    CHECK(out[0].data.u64 == 0x1122334455667788ull, "epoll data mangled");
    CHECK(out[0].events & EPOLLIN, "epoll events %#x", out[0].events);
    CHECK(read(fds[0], buf, 1) == 1, "read epoll byte");
    CHECK_SYS(close(fds[1]));
    CHECK(epoll_wait(ep, out, 4, 1000) == 1 && (out[0].events & EPOLLHUP),
          "no EPOLLHUP after writer closed");
    CHECK_SYS(close(ep));
    CHECK_SYS(close(fds[0]));
    printf("non-blocking: EAGAIN both ways; poll, select, epoll agree\n");
}

int main(void)
{
    test_basic();
    test_fork();
    test_threads();
    test_atomic_writes();
    test_epipe();
    test_nonblock_poll();
    guest_pass("pipes");
    return 0;
}
