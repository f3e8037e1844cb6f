/*
 * Test more threads than nodes: 9 threads (by default) each run an
 * independent computation on private data and bump a shared atomic
 * counter now and then; main joins them and checks every result against
 * its own sequential computation, and the counter's total.
 *
 * usage: dist-oversub [threads [iterations [atomic-every]]]
 * The dist harness runs it with a huge iteration count to have a guest
 * that is still running when it kills a worker: "started" is printed and
 * flushed once every thread has been created; with atomic-every 1 every
 * iteration bumps the counter, so that its page is always wanted for an
 * atomic by some node when one is killed.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>

#include "guest-check.h"

#define MAX_THREADS   64
#define DEFAULT_THREADS 9
#define DEFAULT_ITERS 200000
#define PRIVATE_WORDS 1024      /* 4 KiB or 8 KiB of private state per thread */
#define ATOMIC_EVERY  512       /* iterations between two shared increments */
static long atomic_every = ATOMIC_EVERY;
#define STATE_ALIGN   65536     /* above any guest page size */

struct job {
    int id;
    long iters;
    uint64_t result;
    long increments;
    /* Private state the computation walks through, on the thread's own pages. */
    uint32_t *state;
};

static uint64_t shared_counter;  /* only touched with __atomic builtins */

/* One step of the per-thread computation: an xorshift walk over @state. */
static uint64_t work(int id, long iters, uint32_t *state, long *increments,
                     int bump)
{
    uint64_t x = 0x9e3779b97f4a7c15ull ^ ((uint64_t)id * 0x100000001b3ull);
    uint64_t acc = 0;

    for (int i = 0; i < PRIVATE_WORDS; i++) {
        state[i] = (uint32_t)(i * 2654435761u) ^ (uint32_t)id;
    }
    for (long i = 0; i < iters; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        uint32_t *w = &state[x % PRIVATE_WORDS];
        *w = *w * 33 + (uint32_t)(x >> 32);
        acc += *w ^ (uint32_t)i;
        if (i % atomic_every == 0) {
            if (bump) {
                __atomic_fetch_add(&shared_counter, (uint64_t)id + 1,
                                   __ATOMIC_RELAXED);
            }
            (*increments)++;
        }
    }
    for (int i = 0; i < PRIVATE_WORDS; i++) {
        acc = acc * 31 + state[i];
    }
    return acc;
}

static void *worker(void *arg)
{
    struct job *j = arg;

    j->result = work(j->id, j->iters, j->state, &j->increments, 1);
    return NULL;
}

int main(int argc, char **argv)
{
    int nthreads = argc > 1 ? atoi(argv[1]) : DEFAULT_THREADS;
    long iters = argc > 2 ? atol(argv[2]) : DEFAULT_ITERS;
    static struct job jobs[MAX_THREADS];
    pthread_t t[MAX_THREADS];
    uint64_t want_counter = 0;

    if (argc > 3) {
        atomic_every = atol(argv[3]);
    }
    CHECK(nthreads >= 1 && nthreads <= MAX_THREADS, "threads: 1..%d", MAX_THREADS);
    CHECK(atomic_every >= 1, "atomic-every must be positive");
    CHECK(iters >= 1, "iterations must be positive");
    for (int i = 0; i < nthreads; i++) {
        jobs[i].id = i;
        jobs[i].iters = iters;
        /* Page-aligned and padded: no two threads share a page of state. */
        void *p = NULL;
        CHECK_PT(posix_memalign(&p, STATE_ALIGN, STATE_ALIGN));
        jobs[i].state = p;
    }
    for (int i = 0; i < nthreads; i++) {
        CHECK_PT(pthread_create(&t[i], NULL, worker, &jobs[i]));
    }
    printf("started %d threads, %ld iterations each\n", nthreads, iters);
    fflush(stdout);
    for (int i = 0; i < nthreads; i++) {
        CHECK_PT(pthread_join(t[i], NULL));
    }

    /* Recompute every thread's result alone, without the shared counter. */
    uint32_t *scratch = calloc(PRIVATE_WORDS, sizeof(uint32_t));
    CHECK(scratch != NULL, "calloc");
    for (int i = 0; i < nthreads; i++) {
        long incs = 0;
        uint64_t want = work(i, iters, scratch, &incs, 0);
        CHECK(jobs[i].result == want, "thread %d: result %#llx, want %#llx", i,
              (unsigned long long)jobs[i].result, (unsigned long long)want);
        CHECK(jobs[i].increments == incs, "thread %d: %ld increments, want %ld", i,
              jobs[i].increments, incs);
        for (int k = 0; k < PRIVATE_WORDS; k++) {
            CHECK(jobs[i].state[k] == scratch[k], "thread %d: state word %d", i, k);
        }
        want_counter += (uint64_t)(i + 1) * (uint64_t)incs;
        printf("thread %d: result %016llx\n", i, (unsigned long long)jobs[i].result);
        free(jobs[i].state);
    }
    free(scratch);
    uint64_t got = __atomic_load_n(&shared_counter, __ATOMIC_RELAXED);
    CHECK(got == want_counter, "shared counter %llu, want %llu",
          (unsigned long long)got, (unsigned long long)want_counter);
    printf("shared counter: %llu\n", (unsigned long long)got);
    guest_pass("dist-oversub");
    return 0;
}
