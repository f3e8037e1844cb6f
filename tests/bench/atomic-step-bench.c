/* Benchmark the exclusive atomic step: misaligned LSE ldadds (EXCP_ATOMIC) by one thread and by several, against aligned ones, each checked exactly. */
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdint.h>
#include <time.h>

#include "../guest/guest-check.h"
#include "bench-common.h"

#ifndef __aarch64__
#error "atomic-step-bench.c is an aarch64 guest: it needs LSE2's misaligned ldadd"
#endif

/*
 * Usage: atomic-step-bench [THREADS [STEPS [ALIGNED_OPS [MAX_SECONDS]]]]
 *   THREADS      worker threads, 2..MAX_THREADS (default 4)
 *   STEPS        misaligned ldadds per taking-part thread in the two step
 *                phases (default 100000)
 *   ALIGNED_OPS  aligned ldadds per taking-part thread in the two
 *                reference phases (default 1000000)
 *   MAX_SECONDS  a phase still running after this long stops early
 *                (default 2)
 *
 * The defaults make every phase last tens of milliseconds on one node,
 * where a step costs a fraction of a microsecond, and let MAX_SECONDS bound
 * the step phases on several, where a step costs hundreds of microseconds
 * to milliseconds on a 2-core host: there the cut is the normal end of a
 * step phase, not a sign of trouble, and still leaves hundreds of steps.
 *
 * What it measures is dqemu's cluster-wide exclusive step
 * (linux-user-dist/dist-excl.c).  A 32-bit LDADD one byte past a 16-byte
 * boundary is legal under FEAT_LSE2 (in QEMU's default "max" CPU), but
 * QEMU's host-atomic helpers want natural alignment, so once the guest has
 * a second thread each such LDADD raises EXCP_ATOMIC and runs in
 * cpu_exec_step_atomic() -- which under dqemu first pauses every other
 * node.  tests/atomics/excp-atomic.c explains the path and tests it for
 * correctness; this program only times it.  Four phases:
 *
 *   step            worker 0 alone does STEPS misaligned ldadds while every
 *                   other thread sleeps (the workers in the phase barrier,
 *                   the main thread in a timed semaphore wait): the cost
 *                   of one step when the other nodes host a thread but are
 *                   idle (result step_us);
 *   aligned         the same with an aligned ldadd, a host atomic with no
 *                   step, for reference (aligned_ns);
 *   shared-step     every worker does STEPS misaligned ldadds on one word:
 *                   steps queue for the cluster lock (shared_steps_per_s);
 *   shared-aligned  the same with an aligned ldadd, for reference
 *                   (shared_aligned_ops_per_s).
 *
 * Under round-robin placement worker 0 is the first thread created, so it
 * runs on node 1 whenever there is one: the lone stepper of the first
 * phase asks its proxy on the master for the lock, which pauses the master
 * and the other workers -- dist-excl.c's path with the extra round trip,
 * the one most steps take once threads are spread.
 *
 * The frame is atomics-bench.c's: workers created once, stepping through
 * the phases with the main thread at one barrier; a phase runs from the
 * first taking-part worker's start to the last one's end, each read by the
 * worker itself.  The cut differs: here the main thread, asleep in a
 * semaphore wait with a MAX_SECONDS timeout while the workers run, raises
 * a stop flag that they test before every ldadd.  Checking a clock every
 * so many ldadds instead would either slow the one-node steps (a clock
 * read costs as much as a step there) or overshoot by seconds on four
 * nodes (64 contended steps can take that long); the flag costs a load
 * from a page every node keeps a copy of, until the one write that stops
 * them.  Each worker counts what it completed, so the final value of every
 * word is still checked exactly (exit 1 on a miscount) and the cut is
 * reported on a `note` line.  Results go to stdout as `result KEY VALUE`
 * lines for tests/bench/atomics-bench.sh, then the usual PASS line.
 */

#define MAX_THREADS 16
#define PAGE 4096

/*
 * The target of every misaligned ldadd: one byte into a 16-byte granule,
 * so the 4 bytes are off their alignment yet inside the granule, which is
 * what LSE2 allows and QEMU's host atomics refuse.
 */
#define MISALIGN 1

/*
 * Past MAX_SECONDS the workers get this much longer to notice the stop
 * flag; a phase that still has not ended is stuck (a lost wake-up, a step
 * that never finishes), not slow: fail rather than wait forever.
 */
#define STOP_GRACE_S 60

/*
 * Each word and each worker's slot gets a page of its own: the DSM moves
 * whole pages, so a neighbour would add traffic (or, for a step word, page
 * faults inside the paused step) that the phase does not mean to measure.
 * Aligning the type pads it to a page, so nothing else can share it.
 */
#define PAGE_SIZED struct __attribute__((aligned(PAGE)))

enum { PH_STEP, PH_ALIGNED, PH_SHARED_STEP, PH_SHARED_ALIGNED, NPHASES };

static const struct phase {
    const char *name;
    int misaligned;         /* target the word off its alignment: a step */
    int shared;             /* every worker takes part, not worker 0 alone */
} phases[NPHASES] = {
    [PH_STEP] = { "step", 1, 0 },
    [PH_ALIGNED] = { "aligned", 0, 0 },
    [PH_SHARED_STEP] = { "shared-step", 1, 1 },
    [PH_SHARED_ALIGNED] = { "shared-aligned", 0, 1 },
};

/* One counter per phase, so each phase's final value is its own check. */
static PAGE_SIZED { uint8_t granule[16] __attribute__((aligned(16))); } words[NPHASES];
static PAGE_SIZED { pthread_barrier_t b; } phase_line;

/* Posted by each taking-part worker as it ends the phase. */
static PAGE_SIZED { sem_t s; } phase_done;

/* Raised by the main thread at MAX_SECONDS, lowered by it between phases. */
static PAGE_SIZED { int v; } stop;

/* One page per worker: what it did in each phase and when. */
static PAGE_SIZED slot {
    uint32_t done[NPHASES];
    double start[NPHASES], end[NPHASES];
} slots[MAX_THREADS];
_Static_assert(sizeof(struct slot) == PAGE, "one slot per page");

static unsigned nthreads = 4, steps = 100000, aligned_ops = 1000000;
static unsigned max_seconds = 2;

/* Every thread, the main one included, meets here between phases. */
static void line_up(void)
{
    int rc = pthread_barrier_wait(&phase_line.b);

    CHECK(rc == 0 || rc == PTHREAD_BARRIER_SERIAL_THREAD,
          "pthread_barrier_wait failed: %s", strerror(rc));
}

/*
 * One LSE LDADD of 32 bits at @p, in asm so that the compiler can neither
 * pick another instruction nor (at -O2, with outline atomics or not) route
 * it through a helper; ".arch_extension lse" lets the assembler take it
 * whatever -march the toolchain defaults to.
 */
static inline uint32_t ldadd32(uint8_t *p, uint32_t d)
{
    uint32_t old;

    __asm__ volatile(".arch_extension lse\n\t"
                     "ldadd %w[d], %w[old], [%[p]]"
                     : [old] "=r"(old)
                     : [p] "r"(p), [d] "r"(d)
                     : "memory");
    return old;
}

/* The value of a phase's word, read where that phase's ldadds went. */
static uint32_t word_value(int phase)
{
    uint32_t v;

    memcpy(&v, &words[phase].granule[phases[phase].misaligned ? MISALIGN : 0], sizeof(v));
    return v;
}

/* How many ldadds each taking-part worker of @phase is to do. */
static unsigned planned(int phase)
{
    return phases[phase].misaligned ? steps : aligned_ops;
}

/* This worker's ldadds of one phase; returns how many it completed. */
static uint32_t hammer(int phase)
{
    uint8_t *p = &words[phase].granule[phases[phase].misaligned ? MISALIGN : 0];
    unsigned n = planned(phase), k;

    for (k = 0; k < n && !__atomic_load_n(&stop.v, __ATOMIC_RELAXED); k++) {
        ldadd32(p, 1);
    }
    return k;
}

static void *worker(void *arg)
{
    unsigned id = (unsigned)(uintptr_t)arg;
    struct slot *me = &slots[id];

    for (int phase = 0; phase < NPHASES; phase++) {
        line_up();
        /* In a lone phase the others go straight on to sleep in the barrier. */
        if (id == 0 || phases[phase].shared) {
            me->start[phase] = bench_now_s();
            me->done[phase] = hammer(phase);
            me->end[phase] = bench_now_s();
            CHECK_SYS(sem_post(&phase_done.s));
        }
        line_up();
    }
    return NULL;
}

/*
 * Sleep until @takers workers have posted phase_done, raising the stop
 * flag if that takes more than MAX_SECONDS.
 */
static void await_takers(unsigned takers, const char *name)
{
    struct timespec deadline;
    int stopped = 0;

    CHECK_SYS(clock_gettime(CLOCK_REALTIME, &deadline));
    deadline.tv_sec += max_seconds;
    while (takers > 0) {
        if (sem_timedwait(&phase_done.s, &deadline) == 0) {
            takers--;
            continue;
        }
        CHECK(errno == EINTR || errno == ETIMEDOUT, "sem_timedwait: %s", strerror(errno));
        if (errno == ETIMEDOUT) {
            CHECK(!stopped, "%s phase: %u workers still running %d s after the stop",
                  name, takers, STOP_GRACE_S);
            __atomic_store_n(&stop.v, 1, __ATOMIC_RELAXED);
            stopped = 1;
            deadline.tv_sec += STOP_GRACE_S;
        }
    }
}

/*
 * Let the workers run a phase, then check its word against what they say
 * they did.  Returns its span from the first start to the last end, and in
 * *done the ldadds completed, saying so on a `note` line when that is
 * fewer than planned.
 */
static double run_phase(int phase, uint32_t *done)
{
    unsigned takers = phases[phase].shared ? nthreads : 1;
    double first, last;

    /* Lowered before the barrier that starts the phase: no worker can see it late. */
    __atomic_store_n(&stop.v, 0, __ATOMIC_RELAXED);
    line_up();
    await_takers(takers, phases[phase].name);
    line_up();
    first = slots[0].start[phase];
    last = slots[0].end[phase];
    *done = 0;
    for (unsigned i = 0; i < takers; i++) {
        first = slots[i].start[phase] < first ? slots[i].start[phase] : first;
        last = slots[i].end[phase] > last ? slots[i].end[phase] : last;
        *done += slots[i].done[phase];
    }
    CHECK(*done > 0, "%s phase: nothing done", phases[phase].name);
    CHECK(word_value(phase) == *done, "%s phase: the word holds %u, want %u",
          phases[phase].name, word_value(phase), *done);
    if (*done < takers * planned(phase)) {
        printf("note %s phase cut at %u s: %u of %u done\n", phases[phase].name,
               max_seconds, *done, takers * planned(phase));
    }
    return last - first;
}

/*
 * A CPU without LSE2 raises SIGBUS on the first misaligned ldadd; say so
 * plainly instead of dying of a signal mid-benchmark.
 */
static void no_lse2(int sig)
{
    static const char msg[] = "FAIL: misaligned ldadd raised SIGBUS: the CPU "
                              "lacks FEAT_LSE2 (QEMU's default -cpu max has it)\n";

    (void)sig;
    if (write(2, msg, sizeof(msg) - 1) < 0) {
        /* Nothing left to report it with. */
    }
    _exit(1);
}

static void probe_lse2(void)
{
    static uint8_t g[16] __attribute__((aligned(16)));
    struct sigaction sa = { .sa_handler = no_lse2 };

    /*
     * One thread yet: plain QEMU runs it inline, but with the guest's
     * alignment rules.  dqemu on several nodes runs every vCPU as if
     * threaded, so there this is already a step, the one --stats counts
     * beyond the phases' own.
     */
    CHECK_SYS(sigaction(SIGBUS, &sa, NULL));
    ldadd32(&g[MISALIGN], 1);
    sa.sa_handler = SIG_DFL;
    CHECK_SYS(sigaction(SIGBUS, &sa, NULL));
}

int main(int argc, char **argv)
{
    pthread_t th[MAX_THREADS];
    double t[NPHASES];
    uint32_t n[NPHASES];

    CHECK(argc <= 5, "usage: %s [THREADS [STEPS [ALIGNED_OPS [MAX_SECONDS]]]]", argv[0]);
    if (argc > 1) {
        nthreads = bench_parse_uint(argv[1], 2, MAX_THREADS, "THREADS");
    }
    /* Upper bounds keep every total (MAX_THREADS of them) below 2^32. */
    if (argc > 2) {
        steps = bench_parse_uint(argv[2], 1, 10000000, "STEPS");
    }
    if (argc > 3) {
        aligned_ops = bench_parse_uint(argv[3], 1, 100000000, "ALIGNED_OPS");
    }
    if (argc > 4) {
        max_seconds = bench_parse_uint(argv[4], 1, 3600, "MAX_SECONDS");
    }

    probe_lse2();
    CHECK_PT(pthread_barrier_init(&phase_line.b, NULL, nthreads + 1));
    CHECK_SYS(sem_init(&phase_done.s, 0, 0));
    for (unsigned i = 0; i < nthreads; i++) {
        CHECK_PT(pthread_create(&th[i], NULL, worker, (void *)(uintptr_t)i));
    }
    for (int phase = 0; phase < NPHASES; phase++) {
        t[phase] = run_phase(phase, &n[phase]);
    }
    for (unsigned i = 0; i < nthreads; i++) {
        CHECK_PT(pthread_join(th[i], NULL));
    }

    printf("result threads %u\n", nthreads);
    printf("result step_us %.2f\n", t[PH_STEP] * 1e6 / n[PH_STEP]);
    printf("result aligned_ns %.1f\n", t[PH_ALIGNED] * 1e9 / n[PH_ALIGNED]);
    printf("result shared_steps_per_s %.0f\n", n[PH_SHARED_STEP] / t[PH_SHARED_STEP]);
    printf("result shared_aligned_ops_per_s %.0f\n",
           n[PH_SHARED_ALIGNED] / t[PH_SHARED_ALIGNED]);
    guest_pass("atomic-step-bench");
    return 0;
}
