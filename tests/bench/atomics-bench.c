/* Benchmark guest atomics under contention: a shared counter, a CAS loop, a mutex/condvar hand-off ring and private counters, each checked exactly. */
#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include "../guest/guest-check.h"
#include "bench-common.h"

/*
 * Usage: atomics-bench [THREADS [OPS [ROUNDS [PRIVATE_OPS [MAX_SECONDS]]]]]
 *   THREADS      worker threads, 2..MAX_THREADS (default 4)
 *   OPS          fetch_adds, and CAS increments, per thread on the shared
 *                word (default 500000)
 *   ROUNDS       laps of the token around the ring of threads: each lap is
 *                THREADS hand-offs (default 100)
 *   PRIVATE_OPS  fetch_adds per thread on its own page (default 1000000)
 *   MAX_SECONDS  a phase still running after this long stops early
 *                (default 5); see below
 *
 * The defaults keep each phase long against the few milliseconds by which
 * the workers' starts differ on 4 nodes, and a whole run at --nodes 4
 * within seconds on a 2-core host, where a hand-off between nodes costs
 * milliseconds (several page faults and delegated futex calls each).
 *
 * The worker threads are created once and run the four phases in step
 * with the main thread through one barrier, so a thread stays on the node
 * it was placed on (under dqemu's round-robin placement, THREADS >= nodes
 * puts every node to work) and thread creation is not timed.  The main
 * thread only checks between phases.  A phase lasts from the first
 * worker's start to the last worker's end, each taken by the worker
 * itself: the main thread's own clock readings around the barriers would
 * be late by however long it waits for a CPU after a wake-up, which on a
 * small host running more threads than cores can exceed the whole phase.
 * (CLOCK_MONOTONIC is one clock for every node on one host, which is where
 * this benchmark runs.)
 *
 * The work is fixed, but a phase that would take far longer than planned
 * (atomics across nodes can be orders of magnitude slower than on one) is
 * cut at MAX_SECONDS, so a benchmark run stays bounded without treating
 * slowness as an error.  Each worker counts what it completed, so the
 * checks stay exact; a cut phase is reported on a `note` line.
 *
 * Each phase's result is exact, so a lost update fails the run (exit 1)
 * however the threads interleave.  Results go to stdout as
 * `result KEY VALUE` lines for tests/bench/atomics-bench.sh, then the
 * usual PASS line.  Timings vary run to run and are never checked.
 */

#define MAX_THREADS 16
#define PAGE 4096

/*
 * Operations between two looks at the clock: often enough to stop within
 * milliseconds of MAX_SECONDS, rarely enough (a clock read costs about a
 * microsecond under emulation) not to show in the ops/s figures.
 */
#define CLOCK_EVERY 1024u

/*
 * A hand-off that takes this much longer than MAX_SECONDS is lost (a
 * missed wake-up), not slow: fail rather than wait forever.
 */
#define HANDOFF_GRACE_S 60

/*
 * Every shared object gets a page of its own: the DSM moves whole pages,
 * so a neighbour on the same page would add traffic the phase does not
 * mean to measure.  Page alignment on the type, not just the variable,
 * also pads it to a whole page, so the linker cannot put some C library
 * variable in the rest of it.
 */
#define PAGE_SIZED struct __attribute__((aligned(PAGE)))

static PAGE_SIZED { uint32_t v; } counter, cas_word;
static PAGE_SIZED { pthread_barrier_t b; } phase_line;

/* The hand-off token and what guards it, together as a program would. */
static PAGE_SIZED {
    pthread_mutex_t lock;
    pthread_cond_t wake[MAX_THREADS];   /* wake[i]: the token is i's */
    unsigned turn;                      /* who holds the token */
    uint32_t passes;                    /* hand-offs so far */
    int stop;                           /* time is up: pass it on and leave */
} ring;

enum { PH_COUNTER, PH_CAS, PH_RING, PH_PRIVATE, NPHASES };

static const char *const phase_name[NPHASES] = {
    "counter", "cas", "hand-off", "private",
};

/* One page per thread: its private counter and what it reports back. */
static PAGE_SIZED slot {
    uint32_t count;
    uint32_t done[NPHASES];         /* operations (hand-offs) completed */
    uint64_t cas_tries;             /* compare-exchange attempts, PH_CAS */
    double start[NPHASES], end[NPHASES];
} slots[MAX_THREADS];
_Static_assert(sizeof(struct slot) == PAGE, "one slot per page");

static unsigned nthreads = 4, ops = 500000, rounds = 100, private_ops = 1000000;
static unsigned max_seconds = 5;

/* Has this worker's current phase run past MAX_SECONDS? */
static int over_time(const struct slot *me, int phase)
{
    return bench_now_s() - me->start[phase] > max_seconds;
}

/* Every thread, the main one included, meets here between phases. */
static void line_up(void)
{
    int rc = pthread_barrier_wait(&phase_line.b);

    CHECK(rc == 0 || rc == PTHREAD_BARRIER_SERIAL_THREAD,
          "pthread_barrier_wait failed: %s", strerror(rc));
}

static uint32_t phase_counter(struct slot *me)
{
    unsigned k;

    for (k = 0; k < ops; k++) {
        if (k % CLOCK_EVERY == CLOCK_EVERY - 1 && over_time(me, PH_COUNTER)) {
            break;
        }
        __atomic_fetch_add(&counter.v, 1, __ATOMIC_SEQ_CST);
    }
    return k;
}

static uint32_t phase_cas(struct slot *me)
{
    uint64_t tries = 0;
    unsigned k;

    for (k = 0; k < ops; k++) {
        uint32_t old = __atomic_load_n(&cas_word.v, __ATOMIC_RELAXED);
        int stop = k % CLOCK_EVERY == CLOCK_EVERY - 1 && over_time(me, PH_CAS);

        /*
         * A failed CAS leaves the current value in old: retry from it.
         * Under MAX_SECONDS too, so one starved increment cannot hold the
         * phase; an increment given up never happened, and k not counting
         * it keeps the check exact.
         */
        for (uint64_t n = 1; !stop; n++) {
            tries++;
            if (__atomic_compare_exchange_n(&cas_word.v, &old, old + 1, 0,
                                            __ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) {
                break;
            }
            stop = n % CLOCK_EVERY == 0 && over_time(me, PH_CAS);
        }
        if (stop) {
            break;
        }
    }
    me->cas_tries = tries;
    return k;
}

/*
 * Pass the token round the ring ROUNDS times.  Whoever holds it past
 * MAX_SECONDS raises ring.stop; every thread then passes the token once
 * more and leaves, so none is left waiting for a token that will not come.
 */
static uint32_t phase_ring(struct slot *me, unsigned id)
{
    unsigned next = (id + 1) % nthreads;
    uint32_t passed = 0;
    int stop = 0;

    for (unsigned r = 0; r < rounds && !stop; r++) {
        struct timespec deadline;

        CHECK_SYS(clock_gettime(CLOCK_REALTIME, &deadline));
        deadline.tv_sec += max_seconds + HANDOFF_GRACE_S;
        CHECK_PT(pthread_mutex_lock(&ring.lock));
        while (ring.turn != id) {
            int rc = pthread_cond_timedwait(&ring.wake[id], &ring.lock, &deadline);
            CHECK(rc == 0 || rc == ETIMEDOUT, "pthread_cond_timedwait: %s", strerror(rc));
            CHECK(rc == 0 || ring.turn == id, "thread %u waited %u s for the token "
                  "(lap %u, %u hand-offs done)", id, max_seconds + HANDOFF_GRACE_S, r,
                  ring.passes);
        }
        /* The token goes round in order, so passes fixes whose turn it is. */
        CHECK(ring.passes % nthreads == id, "thread %u got the token at hand-off %u",
              id, ring.passes);
        if (!ring.stop && over_time(me, PH_RING)) {
            ring.stop = 1;
        }
        stop = ring.stop;
        ring.passes++;
        passed++;
        ring.turn = next;
        CHECK_PT(pthread_cond_signal(&ring.wake[next]));
        CHECK_PT(pthread_mutex_unlock(&ring.lock));
    }
    return passed;
}

static uint32_t phase_private(struct slot *me)
{
    unsigned k;

    for (k = 0; k < private_ops; k++) {
        if (k % CLOCK_EVERY == CLOCK_EVERY - 1 && over_time(me, PH_PRIVATE)) {
            break;
        }
        __atomic_fetch_add(&me->count, 1, __ATOMIC_SEQ_CST);
    }
    return k;
}

/* One phase of one worker, timed by that worker between two barriers. */
static void run_phase(struct slot *me, unsigned id, int phase)
{
    line_up();
    me->start[phase] = bench_now_s();
    switch (phase) {
    case PH_COUNTER:
        me->done[phase] = phase_counter(me);
        break;
    case PH_CAS:
        me->done[phase] = phase_cas(me);
        break;
    case PH_RING:
        me->done[phase] = phase_ring(me, id);
        break;
    case PH_PRIVATE:
        me->done[phase] = phase_private(me);
        break;
    }
    me->end[phase] = bench_now_s();
    line_up();
}

static void *worker(void *arg)
{
    unsigned id = (unsigned)(uintptr_t)arg;

    for (int phase = 0; phase < NPHASES; phase++) {
        run_phase(&slots[id], id, phase);
    }
    return NULL;
}

/*
 * Let the workers run a phase.  Returns its span from the first start to
 * the last end, and in *done the operations completed, saying so on a
 * `note` line when that is fewer than planned.
 */
static double time_phase(int phase, unsigned per_thread, uint32_t *done)
{
    double first, last;

    line_up();
    line_up();
    first = slots[0].start[phase];
    last = slots[0].end[phase];
    *done = 0;
    for (unsigned i = 0; i < nthreads; i++) {
        first = slots[i].start[phase] < first ? slots[i].start[phase] : first;
        last = slots[i].end[phase] > last ? slots[i].end[phase] : last;
        *done += slots[i].done[phase];
    }
    CHECK(*done > 0, "%s phase: nothing done", phase_name[phase]);
    if (*done < nthreads * per_thread) {
        printf("note %s phase cut at %u s: %u of %u done\n", phase_name[phase],
               max_seconds, *done, nthreads * per_thread);
    }
    return last - first;
}

int main(int argc, char **argv)
{
    pthread_t th[MAX_THREADS];
    double t_counter, t_cas, t_ring, t_private;
    uint32_t n_counter, n_cas, n_ring, n_private;

    CHECK(argc <= 6, "usage: %s [THREADS [OPS [ROUNDS [PRIVATE_OPS [MAX_SECONDS]]]]]",
          argv[0]);
    if (argc > 1) {
        nthreads = bench_parse_uint(argv[1], 2, MAX_THREADS, "THREADS");
    }
    /* Upper bounds keep every total below 2^32, the counters' range. */
    if (argc > 2) {
        ops = bench_parse_uint(argv[2], 1, 10000000, "OPS");
    }
    if (argc > 3) {
        rounds = bench_parse_uint(argv[3], 1, 10000000, "ROUNDS");
    }
    if (argc > 4) {
        private_ops = bench_parse_uint(argv[4], 1, 100000000, "PRIVATE_OPS");
    }
    if (argc > 5) {
        max_seconds = bench_parse_uint(argv[5], 1, 3600, "MAX_SECONDS");
    }

    CHECK_PT(pthread_barrier_init(&phase_line.b, NULL, nthreads + 1));
    CHECK_PT(pthread_mutex_init(&ring.lock, NULL));
    for (unsigned i = 0; i < nthreads; i++) {
        CHECK_PT(pthread_cond_init(&ring.wake[i], NULL));
    }
    for (unsigned i = 0; i < nthreads; i++) {
        CHECK_PT(pthread_create(&th[i], NULL, worker, (void *)(uintptr_t)i));
    }

    t_counter = time_phase(PH_COUNTER, ops, &n_counter);
    CHECK(counter.v == n_counter, "counter: %u, want %u", counter.v, n_counter);
    t_cas = time_phase(PH_CAS, ops, &n_cas);
    CHECK(cas_word.v == n_cas, "CAS counter: %u, want %u", cas_word.v, n_cas);
    t_ring = time_phase(PH_RING, rounds, &n_ring);
    CHECK(ring.passes == n_ring, "hand-offs: %u, want %u", ring.passes, n_ring);
    t_private = time_phase(PH_PRIVATE, private_ops, &n_private);

    uint64_t cas_tries = 0;
    for (unsigned i = 0; i < nthreads; i++) {
        CHECK_PT(pthread_join(th[i], NULL));
        CHECK(slots[i].count == slots[i].done[PH_PRIVATE],
              "thread %u's private counter: %u, want %u", i, slots[i].count,
              slots[i].done[PH_PRIVATE]);
        cas_tries += slots[i].cas_tries;
    }

    printf("result threads %u\n", nthreads);
    printf("result counter_ops_per_s %.0f\n", n_counter / t_counter);
    printf("result cas_ops_per_s %.0f\n", n_cas / t_cas);
    printf("result cas_tries_per_op %.3f\n", (double)cas_tries / n_cas);
    printf("result handoff_us %.1f\n", t_ring * 1e6 / n_ring);
    printf("result private_ops_per_s %.0f\n", n_private / t_private);
    guest_pass("atomics-bench");
    return 0;
}
