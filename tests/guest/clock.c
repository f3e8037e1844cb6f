/* Test that clocks are sane and monotonic (also across threads) and that sleeps last at least as long as asked. */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/time.h>
#include <time.h>

#include "guest-check.h"

static int64_t ns_of(const struct timespec *ts)
{
    return (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec;
}

static int64_t now_ns(clockid_t clk)
{
    struct timespec ts;

    CHECK(clock_gettime(clk, &ts) == 0, "clock_gettime(%d): %s", (int)clk,
          strerror(errno));
    CHECK(ts.tv_nsec >= 0 && ts.tv_nsec < 1000000000, "clock %d: tv_nsec %ld",
          (int)clk, (long)ts.tv_nsec);
    return ns_of(&ts);
}

static void test_monotonic(void)
{
    static const struct {
        clockid_t id;
        const char *name;
    } clocks[] = {
        { CLOCK_MONOTONIC, "MONOTONIC" },
        { CLOCK_MONOTONIC_RAW, "MONOTONIC_RAW" },
        { CLOCK_MONOTONIC_COARSE, "MONOTONIC_COARSE" },
        { CLOCK_BOOTTIME, "BOOTTIME" },
    };

    for (size_t c = 0; c < sizeof(clocks) / sizeof(clocks[0]); c++) {
        int64_t prev = now_ns(clocks[c].id);
        for (int i = 0; i < 20000; i++) {
            int64_t t = now_ns(clocks[c].id);
            CHECK(t >= prev, "%s went backwards by %lld ns", clocks[c].name,
                  (long long)(prev - t));
            prev = t;
        }
        printf("%s: 20000 reads non-decreasing\n", clocks[c].name);
    }

    struct timespec res;
    CHECK_SYS(clock_getres(CLOCK_MONOTONIC, &res));
    CHECK(res.tv_sec == 0 && res.tv_nsec > 0 && res.tv_nsec <= 1000000,
          "MONOTONIC resolution %ld.%09ld", (long)res.tv_sec, (long)res.tv_nsec);
    CHECK_ERRNO(clock_gettime((clockid_t)12345, &res), EINVAL);
}

static void test_realtime(void)
{
    struct timeval tv;
    int64_t rt = now_ns(CLOCK_REALTIME);
    time_t t = time(NULL);

    CHECK_SYS(gettimeofday(&tv, NULL));
    /* 2020-01-01 00:00:00 UTC: any sane host clock is later than that. */
    CHECK(rt / 1000000000 > 1577836800, "CLOCK_REALTIME is in the past: %lld",
          (long long)(rt / 1000000000));
    CHECK(llabs((long long)t - (long long)(rt / 1000000000)) <= 2,
          "time() and CLOCK_REALTIME disagree");
    CHECK(llabs((long long)tv.tv_sec - (long long)(rt / 1000000000)) <= 2,
          "gettimeofday and CLOCK_REALTIME disagree");
    CHECK(tv.tv_usec >= 0 && tv.tv_usec < 1000000, "tv_usec %ld", (long)tv.tv_usec);
    printf("REALTIME, time() and gettimeofday agree\n");
}

static void test_sleeps(void)
{
    static const long req_ms[] = { 1, 20, 50, 100 };

    for (size_t i = 0; i < sizeof(req_ms) / sizeof(req_ms[0]); i++) {
        struct timespec req = { 0, req_ms[i] * 1000000 }, rem;
        int64_t t0 = now_ns(CLOCK_MONOTONIC);
        CHECK_SYS(nanosleep(&req, &rem));
        int64_t el = now_ns(CLOCK_MONOTONIC) - t0;
        CHECK(el >= req_ms[i] * 1000000, "nanosleep(%ld ms) took %lld ns", req_ms[i],
              (long long)el);
        printf("nanosleep %ld ms: not early\n", req_ms[i]);
    }

    int64_t t0 = now_ns(CLOCK_MONOTONIC);
    CHECK_SYS(usleep(30000));
    CHECK(now_ns(CLOCK_MONOTONIC) - t0 >= 30000000, "usleep(30 ms) was early");

    struct timespec rel = { 0, 40000000 };
    t0 = now_ns(CLOCK_MONOTONIC);
    CHECK_PT(clock_nanosleep(CLOCK_MONOTONIC, 0, &rel, NULL));
    CHECK(now_ns(CLOCK_MONOTONIC) - t0 >= 40000000, "clock_nanosleep relative was early");

    /* Absolute deadline: wake no earlier than the deadline itself. */
    int64_t deadline = now_ns(CLOCK_MONOTONIC) + 60000000;
    struct timespec abs = { (time_t)(deadline / 1000000000), (long)(deadline % 1000000000) };
    CHECK_PT(clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &abs, NULL));
    CHECK(now_ns(CLOCK_MONOTONIC) >= deadline, "TIMER_ABSTIME woke early");

    /* A deadline in the past returns at once. */
    abs.tv_sec -= 10;
    CHECK_PT(clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &abs, NULL));
    printf("usleep, clock_nanosleep relative and absolute: not early\n");
}

static void on_alarm(int sig)
{
    (void)sig;
}

static void test_interrupted_sleep(void)
{
    struct sigaction sa;
    struct itimerval it;
    /* Long request, early signal: generous margins for a loaded host. */
    struct timespec req = { 5, 0 }, rem = { 0, 0 };

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_alarm;
    sigemptyset(&sa.sa_mask);
    CHECK_SYS(sigaction(SIGALRM, &sa, NULL));
    memset(&it, 0, sizeof(it));
    /* Periodic, so a tick that lands before nanosleep starts is not the last. */
    it.it_value.tv_usec = 50000;
    it.it_interval.tv_usec = 50000;
    CHECK_SYS(setitimer(ITIMER_REAL, &it, NULL));

    int64_t t0 = now_ns(CLOCK_MONOTONIC);
    CHECK_ERRNO(nanosleep(&req, &rem), EINTR);
    int64_t el = now_ns(CLOCK_MONOTONIC) - t0;
    memset(&it, 0, sizeof(it));
    CHECK_SYS(setitimer(ITIMER_REAL, &it, NULL));
    int64_t left = ns_of(&rem);
    CHECK(el < 4000000000, "interrupted sleep still took %lld ns", (long long)el);
    CHECK(left > 0 && left <= 5000000000, "remaining time %lld ns", (long long)left);
    /* Slept plus remaining covers the request (less timer slack). */
    CHECK(el + left >= 4900000000, "slept %lld + remaining %lld < request",
          (long long)el, (long long)left);
    printf("nanosleep interrupted by SIGALRM: EINTR with a sane remainder\n");
}

static void test_cpu_clocks(void)
{
    int64_t p0 = now_ns(CLOCK_PROCESS_CPUTIME_ID);
    int64_t t0 = now_ns(CLOCK_THREAD_CPUTIME_ID);
    int64_t w0 = now_ns(CLOCK_MONOTONIC);
    volatile uint64_t x = 1;

    /* Burn at least 30 ms of wall time on this thread. */
    while (now_ns(CLOCK_MONOTONIC) - w0 < 30000000) {
        for (int i = 0; i < 10000; i++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
        }
    }
    int64_t p1 = now_ns(CLOCK_PROCESS_CPUTIME_ID);
    int64_t t1 = now_ns(CLOCK_THREAD_CPUTIME_ID);
    CHECK(p1 > p0, "process CPU time did not advance");
    CHECK(t1 > t0, "thread CPU time did not advance");
    printf("CPU-time clocks advance while busy\n");
}

/* ---- monotonic time carried between threads ---- */

static int ping[2], pong[2];

static void *ponger(void *arg)
{
    int64_t t;

    (void)arg;
    /* Each timestamp received must not be later than our own clock. */
    while (read(ping[0], &t, sizeof(t)) == (ssize_t)sizeof(t)) {
        int64_t mine = now_ns(CLOCK_MONOTONIC);
        CHECK(mine >= t, "thread clock behind the sender's by %lld ns",
              (long long)(t - mine));
        CHECK(write(pong[1], &mine, sizeof(mine)) == (ssize_t)sizeof(mine), "pong");
    }
    return NULL;
}

static void *stamp(void *arg)
{
    *(int64_t *)arg = now_ns(CLOCK_MONOTONIC);
    return NULL;
}

static void test_cross_thread(void)
{
    pthread_t t;

    CHECK_SYS(pipe(ping));
    CHECK_SYS(pipe(pong));
    CHECK_PT(pthread_create(&t, NULL, ponger, NULL));
    for (int i = 0; i < 200; i++) {
        int64_t sent = now_ns(CLOCK_MONOTONIC), back;
        CHECK(write(ping[1], &sent, sizeof(sent)) == (ssize_t)sizeof(sent), "ping");
        CHECK(read(pong[0], &back, sizeof(back)) == (ssize_t)sizeof(back), "pong read");
        CHECK(back >= sent, "reply stamped before the request");
        CHECK(now_ns(CLOCK_MONOTONIC) >= back, "main clock behind the thread's");
    }
    CHECK_SYS(close(ping[1]));
    CHECK_PT(pthread_join(t, NULL));
    CHECK_SYS(close(ping[0]));
    CHECK_SYS(close(pong[0]));
    CHECK_SYS(close(pong[1]));

    /* A fresh thread's reading lies between main's before and after. */
    for (int i = 0; i < 20; i++) {
        int64_t before = now_ns(CLOCK_MONOTONIC), mid = 0;
        CHECK_PT(pthread_create(&t, NULL, stamp, &mid));
        CHECK_PT(pthread_join(t, NULL));
        int64_t after = now_ns(CLOCK_MONOTONIC);
        CHECK(before <= mid && mid <= after, "thread stamp outside [before, after]");
    }
    printf("MONOTONIC consistent across threads (200 ping-pongs, 20 spawns)\n");
}

int main(void)
{
    test_monotonic();
    test_realtime();
    test_sleeps();
    test_interrupted_sleep();
    test_cpu_clocks();
    test_cross_thread();
    guest_pass("clock");
    return 0;
}
