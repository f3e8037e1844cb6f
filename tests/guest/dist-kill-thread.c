/*
 * Test signals aimed at one secondary thread (which a cluster runs on a
 * worker):
 *   - pthread_kill(SIGUSR1) to a running thread: the handler runs in that
 *     thread (its gettid), not in main;
 *   - tgkill(SIGUSR2) on a thread blocked in read() on an empty pipe,
 *     handler without SA_RESTART: read() fails with EINTR;
 *   - tgkill(SIGUSR2) with SA_RESTART on a thread blocked in read(): the
 *     handler runs in that thread and the read goes on to return the byte
 *     main writes afterwards.
 * A signal can land just before the target enters read(); the checks are
 * built so that the outcome does not depend on it (see each test).
 *
 * "dist-kill-thread segv-in-thread": the first thread created writes to
 * NULL and the program dies of the uncaught SIGSEGV (the dist harness
 * compares how with stock qemu-user); main waits in pthread_join.
 * "dist-kill-thread atomic-segv-in-thread": the same with an atomic
 * fetch-and-add on an unmapped address.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/syscall.h>

#include "guest-check.h"

static pid_t gettid_(void)
{
    return (pid_t)syscall(SYS_gettid);
}

static int tgkill_(pid_t tid, int sig)
{
    return (int)syscall(SYS_tgkill, getpid(), tid, sig);
}

static void set_handler(int sig, void (*fn)(int), int flags)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = fn;
    sa.sa_flags = flags;
    sigemptyset(&sa.sa_mask);
    CHECK_SYS(sigaction(sig, &sa, NULL));
}

/* ---- pthread_kill: the handler runs on the target thread ---- */

static volatile pid_t usr1_tid;
static volatile int usr1_count;
static pid_t target_tid;
static int target_ready;

static void usr1_handler(int sig)
{
    (void)sig;
    usr1_tid = gettid_();
    usr1_count++;
}

static void *spin_target(void *arg)
{
    uint64_t n = 0;

    (void)arg;
    __atomic_store_n(&target_tid, gettid_(), __ATOMIC_RELEASE);
    __atomic_store_n(&target_ready, 1, __ATOMIC_RELEASE);
    /* Compute (no syscalls) until the handler has run here. */
    while (usr1_count == 0) {
        n = n * 6364136223846793005ull + 1;
    }
    return (void *)(uintptr_t)(n | 1);
}

static void test_pthread_kill(void)
{
    pthread_t t;

    set_handler(SIGUSR1, usr1_handler, 0);
    CHECK_PT(pthread_create(&t, NULL, spin_target, NULL));
    while (!__atomic_load_n(&target_ready, __ATOMIC_ACQUIRE)) {
        sched_yield();
    }
    CHECK_PT(pthread_kill(t, SIGUSR1));
    CHECK_PT(pthread_join(t, NULL));
    CHECK(usr1_count == 1, "SIGUSR1 handled %d times", usr1_count);
    CHECK(usr1_tid == target_tid, "SIGUSR1 for tid %d ran on tid %d", (int)target_tid,
          (int)usr1_tid);
    CHECK(usr1_tid != getpid(), "SIGUSR1 ran on the main thread");
    printf("pthread_kill: SIGUSR1 handled on the target thread\n");
}

/* ---- tgkill on a thread blocked in read() ---- */

struct blocked {
    int fd;
    pid_t tid;
    int ready;                  /* tid is set, about to read() */
    int done;                   /* read() has returned for good */
    ssize_t result;
    int err;
    char byte;
};

static volatile pid_t usr2_tid;
static volatile int usr2_count;

static void usr2_handler(int sig)
{
    (void)sig;
    usr2_tid = gettid_();
    usr2_count++;
}

static void *eintr_reader(void *arg)
{
    struct blocked *b = arg;

    b->tid = gettid_();
    __atomic_store_n(&b->ready, 1, __ATOMIC_RELEASE);
    /*
     * A signal that arrives before read() starts only runs the handler;
     * read() then blocks and main's next signal interrupts it.
     */
    b->result = read(b->fd, &b->byte, 1);
    b->err = errno;
    __atomic_store_n(&b->done, 1, __ATOMIC_RELEASE);
    return NULL;
}

static void test_tgkill_eintr(void)
{
    struct blocked b = { 0 };
    int fds[2];
    pthread_t t;
    int sent = 0;

    set_handler(SIGUSR2, usr2_handler, 0);          /* no SA_RESTART */
    usr2_count = 0;
    CHECK_SYS(pipe(fds));
    b.fd = fds[0];
    CHECK_PT(pthread_create(&t, NULL, eintr_reader, &b));
    while (!__atomic_load_n(&b.ready, __ATOMIC_ACQUIRE)) {
        sched_yield();
    }
    /* Signal until read() gives up; the pipe stays empty throughout. */
    while (!__atomic_load_n(&b.done, __ATOMIC_ACQUIRE)) {
        CHECK_SYS(tgkill_(b.tid, SIGUSR2));
        sent++;
        for (int i = 0; i < 20 && !__atomic_load_n(&b.done, __ATOMIC_ACQUIRE); i++) {
            usleep(1000);
        }
    }
    CHECK_PT(pthread_join(t, NULL));
    CHECK(b.result == -1 && b.err == EINTR, "blocked read returned %zd (%s)", b.result,
          b.result < 0 ? strerror(b.err) : "data");
    CHECK(usr2_count >= 1 && usr2_count <= sent, "SIGUSR2 handled %d times, sent %d",
          usr2_count, sent);
    CHECK(usr2_tid == b.tid, "SIGUSR2 for tid %d ran on tid %d", (int)b.tid,
          (int)usr2_tid);
    CHECK_SYS(close(fds[0]));
    CHECK_SYS(close(fds[1]));
    printf("tgkill: read() blocked in the target thread failed with EINTR\n");
}

static void *restart_reader(void *arg)
{
    struct blocked *b = arg;

    b->tid = gettid_();
    __atomic_store_n(&b->ready, 1, __ATOMIC_RELEASE);
    b->result = read(b->fd, &b->byte, 1);
    b->err = errno;
    __atomic_store_n(&b->done, 1, __ATOMIC_RELEASE);
    return NULL;
}

static void test_tgkill_restart(void)
{
    struct blocked b = { 0 };
    int fds[2];
    pthread_t t;

    set_handler(SIGUSR2, usr2_handler, SA_RESTART);
    usr2_count = 0;
    usr2_tid = 0;
    CHECK_SYS(pipe(fds));
    b.fd = fds[0];
    CHECK_PT(pthread_create(&t, NULL, restart_reader, &b));
    while (!__atomic_load_n(&b.ready, __ATOMIC_ACQUIRE)) {
        sched_yield();
    }
    /*
     * Whether the signal interrupts read() (which then restarts) or lands
     * just before it, the handler runs once on the target and read() goes
     * on to return the byte written after the handler ran.
     */
    CHECK_SYS(tgkill_(b.tid, SIGUSR2));
    while (usr2_count == 0) {
        usleep(1000);
    }
    CHECK(!__atomic_load_n(&b.done, __ATOMIC_ACQUIRE),
          "read() returned although SA_RESTART is set and the pipe is empty");
    CHECK(write(fds[1], "R", 1) == 1, "write: %s", strerror(errno));
    CHECK_PT(pthread_join(t, NULL));
    CHECK(b.result == 1 && b.byte == 'R', "restarted read returned %zd (%s)",
          b.result, b.result < 0 ? strerror(b.err) : "data");
    CHECK(usr2_count == 1, "SIGUSR2 handled %d times", usr2_count);
    CHECK(usr2_tid == b.tid, "SIGUSR2 for tid %d ran on tid %d", (int)b.tid,
          (int)usr2_tid);
    CHECK_SYS(close(fds[0]));
    CHECK_SYS(close(fds[1]));
    printf("tgkill: SA_RESTART read() in the target thread resumed and got the byte\n");
}

/* ---- an uncaught SIGSEGV on a secondary thread ---- */

static void *segv_thread(void *arg)
{
    volatile int *p = arg;

    *p = 42;
    return NULL;
}

static void *atomic_segv_thread(void *arg)
{
    int *p = arg;

    __atomic_fetch_add(p + 4, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

static void crash_in_thread(bool atomic)
{
    pthread_t t;

    printf("crashing in a secondary thread%s\n", atomic ? " (atomic)" : "");
    fflush(stdout);
    CHECK_PT(pthread_create(&t, NULL, atomic ? atomic_segv_thread : segv_thread,
                            NULL));
    CHECK_PT(pthread_join(t, NULL));
    CHECK(0, "the write to NULL in a thread did not kill the process");
}

int main(int argc, char **argv)
{
    if (argc > 1) {
        bool atomic = strcmp(argv[1], "atomic-segv-in-thread") == 0;

        CHECK(atomic || strcmp(argv[1], "segv-in-thread") == 0,
              "unknown mode '%s'", argv[1]);
        crash_in_thread(atomic);
    }
    test_pthread_kill();
    test_tgkill_eintr();
    test_tgkill_restart();
    guest_pass("dist-kill-thread");
    return 0;
}
