/*
 * at-common.h - what every tests/atomics program shares: its command line
 * (thread count, rounds), starting the threads together, and waiting
 * loops that cannot run for ever.
 *
 * Every program is run as `prog THREADS ROUNDS`, prints only lines that
 * depend on THREADS and ROUNDS (never on timing or on which thread won a
 * race), so the harness can compare stdout exactly, and ends with
 * "PASS <name>".  A wrong result makes it print what it wanted and what it
 * got, and exit 1 (guest-check.h's CHECK, shared with tests/guest).
 */
#ifndef DQEMU_AT_COMMON_H
#define DQEMU_AT_COMMON_H

#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <time.h>

#include "guest-check.h"

/* The issue asks for up to 16 guest threads; a little room above that. */
#define AT_MAX_THREADS 64
#define AT_MAX_ROUNDS  1000000

/*
 * How long any single wait may last before the program gives up with a
 * FAIL naming what it waited for.  A lost wake-up or a stuck lock word
 * then ends as a readable failure, well before the harness's own time
 * limit kills the run without a word.
 */
#define AT_WAIT_LIMIT_NS (60ll * 1000000000ll)

struct at_args {
    int threads;
    int rounds;
};

static inline int at_parse_int(const char *text, int lo, int hi, const char *what)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v < lo || v > hi) {
        fprintf(stderr, "bad %s '%s': want an integer in %d..%d\n", what, text, lo, hi);
        exit(2);
    }
    return (int)v;
}

/* THREADS ROUNDS from argv; @min_threads is what the program needs. */
static inline struct at_args at_parse_args(int argc, char **argv, int min_threads)
{
    struct at_args a;

    if (argc != 3) {
        fprintf(stderr, "usage: %s THREADS ROUNDS\n", argv[0]);
        exit(2);
    }
    a.threads = at_parse_int(argv[1], min_threads, AT_MAX_THREADS, "thread count");
    a.rounds = at_parse_int(argv[2], 1, AT_MAX_ROUNDS, "round count");
    return a;
}

static inline int64_t at_now_ns(void)
{
    struct timespec ts;

    CHECK_SYS(clock_gettime(CLOCK_MONOTONIC, &ts));
    return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

/*
 * A bound for a busy-wait or retry loop:
 *
 *     struct at_spin s = AT_SPIN_INIT;
 *     while (!done()) {
 *         at_spin(&s, "what we wait for");
 *     }
 *
 * Every 16th call gives the host CPU away: on a 2-core machine running 16
 * guest threads on up to 4 emulator processes, a spinning thread would
 * otherwise keep the thread it waits for -- or the emulator thread that
 * moves the page it waits for -- off the CPU.  The first times it yields;
 * a wait that goes on (a page on its way from another node) sleeps 20 us
 * instead: under Linux's CFS a yield gives way only briefly, and a few
 * yielding spinners still crowd out the threads that do the work (it
 * measured faster here).  Every 1024th call reads the clock, and after
 * AT_WAIT_LIMIT_NS the program fails.
 */
struct at_spin {
    uint64_t calls;
    int64_t start_ns;
};

#define AT_SPIN_INIT { 0, 0 }

static inline void at_spin(struct at_spin *s, const char *what)
{
    s->calls++;
    if ((s->calls & 15) == 0) {
        if (s->calls < 1024) {
            sched_yield();
        } else {
            struct timespec nap = { 0, 20000 };

            nanosleep(&nap, NULL);
        }
    }
    if ((s->calls & 1023) == 1) {
        int64_t now = at_now_ns();

        if (s->start_ns == 0) {
            s->start_ns = now;
        } else if (now - s->start_ns > AT_WAIT_LIMIT_NS) {
            guest_fail(__FILE__, __LINE__, "gave up after %lld s (%llu tries): %s",
                       (long long)(AT_WAIT_LIMIT_NS / 1000000000ll),
                       (unsigned long long)s->calls, what);
        }
    }
}

/*
 * Run @fn(0) .. @fn(n - 1) on n threads that start together, and report
 * on stderr how long that took under @label (stderr is not compared: it
 * says which part of a slow run was slow).
 */
static inline void at_run_threads(int n, void (*fn)(int));

static inline void at_run_timed(const char *label, int n, void (*fn)(int))
{
    int64_t start = at_now_ns();

    at_run_threads(n, fn);
    fprintf(stderr, "%s: %.3f s\n", label, (double)(at_now_ns() - start) / 1e9);
}

/*
 * Run @fn(0) .. @fn(n - 1) on n threads that start together, and join
 * them.  The start line is a spinning one, not pthread_barrier_wait: a
 * futex wake-up reaches a thread on another node milliseconds later, by
 * when the first threads would have finished a short test alone.
 * Spinning, every thread leaves within about one page transfer of the
 * last arrival.
 *
 * The team lives on a page of its own, not on the caller's stack: the
 * start line is written from every node, and the main thread's stack
 * page would travel with it (that is a different test -- false sharing
 * with a stack -- and not the one these programs are about).
 */
struct at_team {
    void (*fn)(int);
    int n;
    int arrived;                /* atomic */
} __attribute__((aligned(4096)));

struct at_member {
    struct at_team *team;
    int id;
};

static inline void *at_member_main(void *arg)
{
    struct at_member *m = arg;
    struct at_spin s = AT_SPIN_INIT;

    __atomic_fetch_add(&m->team->arrived, 1, __ATOMIC_ACQ_REL);
    while (__atomic_load_n(&m->team->arrived, __ATOMIC_ACQUIRE) < m->team->n) {
        at_spin(&s, "the other threads at the start line");
    }
    m->team->fn(m->id);
    return NULL;
}

static inline void at_run_threads(int n, void (*fn)(int))
{
    static struct at_team team;
    static struct at_member members[AT_MAX_THREADS];
    pthread_t tids[AT_MAX_THREADS];

    CHECK(n >= 1 && n <= AT_MAX_THREADS, "thread count %d", n);
    team.fn = fn;
    team.n = n;
    team.arrived = 0;
    for (int i = 0; i < n; i++) {
        members[i].team = &team;
        members[i].id = i;
        CHECK_PT(pthread_create(&tids[i], NULL, at_member_main, &members[i]));
    }
    for (int i = 0; i < n; i++) {
        CHECK_PT(pthread_join(tids[i], NULL));
    }
}

#endif
