/* Test that signals are delivered correctly: sigaction, raise, kill, masks, RT queueing, SIGSEGV recovery, timers. */
#define _GNU_SOURCE
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>

#include "guest-check.h"

/* What the most recent handler invocation saw. */
static volatile sig_atomic_t hits[_NSIG];
static volatile int last_code;
static volatile pid_t last_pid;
static volatile int last_value;
static volatile int rt_order[16];
static volatile int rt_count;

static void info_handler(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    hits[sig]++;
    last_code = si->si_code;
    last_pid = si->si_pid;
    if (sig >= SIGRTMIN && sig <= SIGRTMAX) {
        if (rt_count < 16) {
            rt_order[rt_count] = (sig - SIGRTMIN) * 100 + si->si_value.sival_int;
        }
        rt_count++;
    }
    last_value = si->si_value.sival_int;
}

static void set_handler_mask(int sig, void (*fn)(int, siginfo_t *, void *), int flags,
                             int block_all)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = fn;
    sa.sa_flags = SA_SIGINFO | flags;
    if (block_all) {
        sigfillset(&sa.sa_mask);
    } else {
        sigemptyset(&sa.sa_mask);
    }
    CHECK_SYS(sigaction(sig, &sa, NULL));
}

static void set_handler(int sig, void (*fn)(int, siginfo_t *, void *), int flags)
{
    set_handler_mask(sig, fn, flags, 0);
}

static void test_raise_kill(void)
{
    struct sigaction old;

    set_handler(SIGUSR1, info_handler, 0);
    CHECK_SYS(sigaction(SIGUSR1, NULL, &old));
    CHECK(old.sa_sigaction == info_handler && (old.sa_flags & SA_SIGINFO),
          "sigaction did not read back the handler");

    /* raise() delivers before it returns, with SI_TKILL (it uses tgkill). */
    CHECK(raise(SIGUSR1) == 0, "raise");
    CHECK(hits[SIGUSR1] == 1, "SIGUSR1 hits %d after raise", (int)hits[SIGUSR1]);
    CHECK(last_code == SI_TKILL, "raise si_code %d", last_code);

    set_handler(SIGUSR2, info_handler, 0);
    CHECK_SYS(kill(getpid(), SIGUSR2));
    CHECK(hits[SIGUSR2] == 1, "SIGUSR2 hits %d after kill", (int)hits[SIGUSR2]);
    CHECK(last_code == SI_USER, "kill si_code %d", last_code);
    CHECK(last_pid == getpid(), "kill si_pid is not our pid");

    /* Ignored signals vanish; kill(pid, 0) only probes. */
    signal(SIGUSR2, SIG_IGN);
    CHECK_SYS(kill(getpid(), SIGUSR2));
    CHECK(hits[SIGUSR2] == 1, "ignored SIGUSR2 was delivered");
    CHECK_SYS(kill(getpid(), 0));
    CHECK_ERRNO(kill(getpid(), 1000), EINVAL);
    printf("raise/kill: delivered synchronously with the right si_code\n");
}

static void test_masks(void)
{
    sigset_t block, old, pending;

    hits[SIGUSR1] = 0;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR1);
    CHECK_SYS(sigprocmask(SIG_BLOCK, &block, &old));
    CHECK(!sigismember(&old, SIGUSR1), "SIGUSR1 blocked from the start");

    /* Standard signals do not queue: two raises, one pending instance. */
    raise(SIGUSR1);
    raise(SIGUSR1);
    CHECK(hits[SIGUSR1] == 0, "blocked SIGUSR1 was delivered");
    CHECK_SYS(sigpending(&pending));
    CHECK(sigismember(&pending, SIGUSR1), "SIGUSR1 not pending");
    CHECK_SYS(sigprocmask(SIG_SETMASK, &old, NULL));
    CHECK(hits[SIGUSR1] == 1, "unblocking delivered %d SIGUSR1s", (int)hits[SIGUSR1]);
    CHECK_SYS(sigpending(&pending));
    CHECK(!sigismember(&pending, SIGUSR1), "SIGUSR1 still pending");

    /*
     * Real-time signals queue, carry a value, and the lowest number is
     * delivered first.  The handlers block everything: otherwise the
     * kernel (and qemu) set up the next frame on top of the first one
     * before any handler runs, and the last one set up runs first.
     */
    int lo = SIGRTMIN + 1, hi = SIGRTMIN + 3;
    set_handler_mask(lo, info_handler, 0, 1);
    set_handler_mask(hi, info_handler, 0, 1);
    sigemptyset(&block);
    sigaddset(&block, lo);
    sigaddset(&block, hi);
    CHECK_SYS(sigprocmask(SIG_BLOCK, &block, &old));
    rt_count = 0;
    for (int i = 1; i <= 3; i++) {
        union sigval v = { .sival_int = i };
        CHECK_SYS(sigqueue(getpid(), hi, v));
        v.sival_int = 10 + i;
        CHECK_SYS(sigqueue(getpid(), lo, v));
    }
    CHECK(rt_count == 0, "blocked RT signals delivered");
    CHECK_SYS(sigprocmask(SIG_SETMASK, &old, NULL));
    CHECK(rt_count == 6, "%d RT signals delivered, want 6", (int)rt_count);
    int want[6] = { 111, 112, 113, 301, 302, 303 };
    for (int i = 0; i < 6; i++) {
        CHECK(rt_order[i] == want[i], "RT delivery %d was %d, want %d", i,
              (int)rt_order[i], want[i]);
    }
    CHECK(last_code == SI_QUEUE, "sigqueue si_code %d", last_code);
    printf("masks: standard signal merged, 6 RT signals queued in order\n");
}

/* ---- SIGSEGV recovery with sigsetjmp/siglongjmp ---- */

static sigjmp_buf segv_env;
static volatile void *fault_addr;
static volatile int fault_code;
static volatile int fault_sig;

static void segv_handler(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    fault_sig = sig;
    fault_addr = si->si_addr;
    fault_code = si->si_code;
    siglongjmp(segv_env, 1);
}

/* Returns 1 when the access faulted, recording the fault details. */
static int try_write(volatile char *p)
{
    fault_addr = NULL;
    fault_code = 0;
    if (sigsetjmp(segv_env, 1) == 0) {
        *p = 1;
        return 0;
    }
    return 1;
}

static int try_read(volatile char *p)
{
    fault_addr = NULL;
    fault_code = 0;
    if (sigsetjmp(segv_env, 1) == 0) {
        (void)*p;
        return 0;
    }
    return 1;
}

static void *segv_thread(void *arg)
{
    volatile char *ro = arg;
    int n = 0;

    /* Faults taken and recovered from inside a second thread. */
    for (int i = 0; i < 50; i++) {
        n += try_write(ro + i * 13);
        CHECK(fault_addr == (void *)(ro + i * 13), "thread fault address wrong");
    }
    return (void *)(intptr_t)n;
}

static void test_segv(void)
{
    long pagesz = sysconf(_SC_PAGESIZE);
    char *pages = mmap(NULL, (size_t)pagesz * 2, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    sigset_t cur;

    CHECK(pages != MAP_FAILED, "mmap: %s", strerror(errno));
    set_handler(SIGSEGV, segv_handler, 0);
    /* Write-protect page 0, unmap page 1. */
    CHECK_SYS(mprotect(pages, (size_t)pagesz, PROT_READ));
    CHECK_SYS(munmap(pages + pagesz, (size_t)pagesz));

    /* Many rounds: sigsetjmp(…, 1) must restore the mask each time. */
    for (int i = 0; i < 100; i++) {
        volatile char *p = pages + (i * 37) % pagesz;
        CHECK(try_write(p), "write to read-only page %d did not fault", i);
        CHECK(fault_sig == SIGSEGV, "got signal %d", fault_sig);
        CHECK(fault_addr == (void *)p, "si_addr mismatch on round %d", i);
        CHECK(fault_code == SEGV_ACCERR, "read-only fault si_code %d", fault_code);
        CHECK(!try_read(p), "read of read-only page faulted");
    }
    for (int i = 0; i < 20; i++) {
        volatile char *p = pages + pagesz + (i * 101) % pagesz;
        CHECK(try_read(p), "read of unmapped page did not fault");
        CHECK(fault_addr == (void *)p, "si_addr mismatch for unmapped page");
        CHECK(fault_code == SEGV_MAPERR, "unmapped fault si_code %d", fault_code);
    }
    CHECK_SYS(sigprocmask(SIG_SETMASK, NULL, &cur));
    CHECK(!sigismember(&cur, SIGSEGV), "SIGSEGV left blocked after siglongjmp");

    pthread_t t;
    void *ret;
    CHECK_PT(pthread_create(&t, NULL, segv_thread, pages));
    CHECK_PT(pthread_join(t, &ret));
    CHECK((intptr_t)ret == 50, "thread recovered from %ld of 50 faults", (long)(intptr_t)ret);

    /* The page is still write-protected, not silently made writable. */
    CHECK(pages[0] == 0, "read-only page was modified");
    CHECK_SYS(munmap(pages, (size_t)pagesz));
    signal(SIGSEGV, SIG_DFL);
    printf("SIGSEGV: 120 faults recovered in main, 50 in a thread, si_addr/si_code right\n");
}

/* ---- a trap instruction ---- */

static void test_trap(void)
{
    set_handler(SIGILL, segv_handler, 0);
    set_handler(SIGTRAP, segv_handler, 0);
    fault_sig = 0;
    if (sigsetjmp(segv_env, 1) == 0) {
        /* udf on arm, brk on aarch64, ebreak on riscv */
        __builtin_trap();
    }
    CHECK(fault_sig == SIGILL || fault_sig == SIGTRAP, "trap raised signal %d",
          fault_sig);
    signal(SIGILL, SIG_DFL);
    signal(SIGTRAP, SIG_DFL);
    printf("trap: recovered from %s\n", fault_sig == SIGILL ? "SIGILL" : "SIGTRAP");
}

/* ---- sigaltstack ---- */

static char *alt_base;
static size_t alt_size;
static volatile int on_alt;

static void alt_handler(int sig, siginfo_t *si, void *uc)
{
    char local;
    stack_t st;

    (void)sig;
    (void)si;
    (void)uc;
    on_alt = &local >= alt_base && &local < alt_base + alt_size;
    if (sigaltstack(NULL, &st) == 0 && !(st.ss_flags & SS_ONSTACK)) {
        on_alt = 0;
    }
}

static void test_altstack(void)
{
    stack_t ss, old;

    alt_size = 64 * 1024;
    alt_base = malloc(alt_size);
    CHECK(alt_base != NULL, "malloc");
    ss.ss_sp = alt_base;
    ss.ss_size = alt_size;
    ss.ss_flags = 0;
    CHECK_SYS(sigaltstack(&ss, &old));
    set_handler(SIGUSR1, alt_handler, SA_ONSTACK);
    raise(SIGUSR1);
    CHECK(on_alt, "SA_ONSTACK handler did not run on the alternate stack");
    ss.ss_flags = SS_DISABLE;
    CHECK_SYS(sigaltstack(&ss, NULL));
    free(alt_base);
    printf("sigaltstack: handler ran on the alternate stack\n");
}

/* ---- pthread_kill targets exactly one thread ---- */

static volatile pid_t handled_tid;
static volatile int target_ready;

static void tid_handler(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)si;
    (void)uc;
    handled_tid = (pid_t)syscall(SYS_gettid);
}

static void *target_thread(void *arg)
{
    pid_t *tid = arg;

    *tid = (pid_t)syscall(SYS_gettid);
    __atomic_store_n(&target_ready, 1, __ATOMIC_RELEASE);
    while (handled_tid == 0) {
        usleep(1000);
    }
    return NULL;
}

static void test_pthread_kill(void)
{
    pthread_t t;
    pid_t tid = 0;

    set_handler(SIGUSR2, tid_handler, 0);
    handled_tid = 0;
    CHECK_PT(pthread_create(&t, NULL, target_thread, &tid));
    while (!__atomic_load_n(&target_ready, __ATOMIC_ACQUIRE)) {
        usleep(1000);
    }
    CHECK_PT(pthread_kill(t, SIGUSR2));
    CHECK_PT(pthread_join(t, NULL));
    CHECK(handled_tid == tid, "signal for the thread ran in another thread");
    printf("pthread_kill: handler ran in the target thread\n");
}

/* ---- timers: setitimer, alarm, EINTR, SA_RESTART ---- */

static volatile sig_atomic_t alarms;

static void alarm_handler(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)si;
    (void)uc;
    alarms++;
}

static void test_timers(void)
{
    struct itimerval it, old;
    sigset_t block, waitmask;
    struct timespec t0, t1;

    set_handler(SIGALRM, alarm_handler, 0);

    /* Periodic 20 ms timer; wait for 5 ticks with sigsuspend. */
    sigemptyset(&block);
    sigaddset(&block, SIGALRM);
    CHECK_SYS(sigprocmask(SIG_BLOCK, &block, &waitmask));
    sigdelset(&waitmask, SIGALRM);
    alarms = 0;
    memset(&it, 0, sizeof(it));
    it.it_interval.tv_usec = 20000;
    it.it_value.tv_usec = 20000;
    CHECK_SYS(clock_gettime(CLOCK_MONOTONIC, &t0));
    CHECK_SYS(setitimer(ITIMER_REAL, &it, NULL));
    while (alarms < 5) {
        CHECK_ERRNO(sigsuspend(&waitmask), EINTR);
    }
    CHECK_SYS(clock_gettime(CLOCK_MONOTONIC, &t1));
    memset(&it, 0, sizeof(it));
    CHECK_SYS(setitimer(ITIMER_REAL, &it, &old));
    CHECK(old.it_interval.tv_usec == 20000 && old.it_interval.tv_sec == 0,
          "itimer interval read back %ld.%06ld", (long)old.it_interval.tv_sec,
          (long)old.it_interval.tv_usec);
    CHECK_SYS(sigprocmask(SIG_UNBLOCK, &block, NULL));
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    CHECK(ms >= 95, "5 ticks of 20 ms took only %ld ms", ms);
    printf("setitimer: 5 periodic ticks, not early\n");

    /* alarm(): the remaining time reads back; a real one fires once. */
    CHECK(alarm(30) == 0, "stale alarm pending");
    CHECK(alarm(0) == 30, "alarm(0) did not report 30 s remaining");
    alarms = 0;
    /* Blocked until sigsuspend, so the alarm cannot slip in before the wait. */
    CHECK_SYS(sigprocmask(SIG_BLOCK, &block, NULL));
    CHECK_SYS(clock_gettime(CLOCK_MONOTONIC, &t0));
    alarm(1);
    while (alarms == 0) {
        CHECK_ERRNO(sigsuspend(&waitmask), EINTR);
    }
    CHECK_SYS(clock_gettime(CLOCK_MONOTONIC, &t1));
    CHECK_SYS(sigprocmask(SIG_UNBLOCK, &block, NULL));
    ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    CHECK(ms >= 990, "alarm(1) fired after %ld ms", ms);
    CHECK(alarms == 1, "alarm fired %d times", (int)alarms);
    printf("alarm: fired once, not early\n");

    /* Without SA_RESTART a blocking read is interrupted with EINTR. */
    int fds[2];
    char c;
    CHECK_SYS(pipe(fds));
    memset(&it, 0, sizeof(it));
    /* Periodic, so a tick that lands before read() starts is not the last. */
    it.it_value.tv_usec = 30000;
    it.it_interval.tv_usec = 30000;
    CHECK_SYS(setitimer(ITIMER_REAL, &it, NULL));
    CHECK_ERRNO(read(fds[0], &c, 1), EINTR);
    memset(&it, 0, sizeof(it));
    CHECK_SYS(setitimer(ITIMER_REAL, &it, NULL));
    printf("EINTR: read interrupted by SIGALRM\n");

    CHECK_SYS(close(fds[0]));
    CHECK_SYS(close(fds[1]));
}

/* With SA_RESTART the same read resumes and gets the byte written later. */
static int restart_pipe[2];
static volatile int writer_ready;

static void *late_writer(void *arg)
{
    sigset_t all;

    (void)arg;
    /* SIGALRM must hit the reader, so this thread blocks it. */
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    __atomic_store_n(&writer_ready, 1, __ATOMIC_RELEASE);
    while (alarms == 0) {
        usleep(1000);
    }
    usleep(20000);
    CHECK(write(restart_pipe[1], "R", 1) == 1, "late write");
    return NULL;
}

static void test_restart(void)
{
    struct itimerval it;
    pthread_t t;
    char c = 0;

    set_handler(SIGALRM, alarm_handler, SA_RESTART);
    CHECK_SYS(pipe(restart_pipe));
    alarms = 0;
    CHECK_PT(pthread_create(&t, NULL, late_writer, NULL));
    while (!__atomic_load_n(&writer_ready, __ATOMIC_ACQUIRE)) {
        usleep(1000);
    }
    memset(&it, 0, sizeof(it));
    it.it_value.tv_usec = 30000;
    CHECK_SYS(setitimer(ITIMER_REAL, &it, NULL));
    ssize_t n = read(restart_pipe[0], &c, 1);
    CHECK(n == 1 && c == 'R', "restarted read returned %zd (%s)", n,
          n < 0 ? strerror(errno) : "data");
    CHECK(alarms == 1, "SIGALRM count %d", (int)alarms);
    CHECK_PT(pthread_join(t, NULL));
    CHECK_SYS(close(restart_pipe[0]));
    CHECK_SYS(close(restart_pipe[1]));
    printf("SA_RESTART: read resumed after SIGALRM\n");
}

int main(void)
{
    test_raise_kill();
    test_masks();
    test_segv();
    test_trap();
    test_altstack();
    test_pthread_kill();
    test_timers();
    test_restart();
    guest_pass("signals");
    return 0;
}
