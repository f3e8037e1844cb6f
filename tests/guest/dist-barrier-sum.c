/*
 * Test a parallel array sum in phases separated by pthread_barrier_wait:
 * in each phase every thread rewrites and sums its slice of a shared
 * array, a barrier, thread 0 combines the partial sums (and checks a
 * sample of the other threads' slices), a barrier.  The next phase's
 * values depend on the previous total, so a stale view of any slice or
 * partial sum changes every later total.  Main checks each phase's total
 * against a sequential computation.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>

#include "guest-check.h"

#define NTHREADS 5
#define PHASES   8
#define ELEMS    (NTHREADS * 4096)  /* 16 KiB per thread: several pages each */

static uint32_t array[ELEMS] __attribute__((aligned(65536)));
static uint64_t partial[NTHREADS];
static uint64_t totals[PHASES];
static int serial_seen[PHASES];
static pthread_barrier_t barrier;

static uint32_t value(int phase, uint64_t seed, int i)
{
    uint32_t x = (uint32_t)i * 2654435761u ^ (uint32_t)seed ^ (uint32_t)(seed >> 32);

    x ^= x >> 15;
    x *= 0x2c1b3c6du;
    x ^= x >> 12;
    return x + (uint32_t)phase;
}

/* The seed of phase p: the total of phase p - 1 (a constant for phase 0). */
static uint64_t seed_for(int phase)
{
    return phase == 0 ? 12345 : totals[phase - 1];
}

static void *summer(void *arg)
{
    int me = (int)(intptr_t)arg;
    int lo = me * (ELEMS / NTHREADS), hi = lo + ELEMS / NTHREADS;

    for (int ph = 0; ph < PHASES; ph++) {
        uint64_t seed = seed_for(ph), s = 0;

        for (int i = lo; i < hi; i++) {
            array[i] = value(ph, seed, i);
        }
        for (int i = lo; i < hi; i++) {
            s += array[i];
        }
        partial[me] = s;

        int rc = pthread_barrier_wait(&barrier);
        CHECK(rc == 0 || rc == PTHREAD_BARRIER_SERIAL_THREAD, "barrier_wait: %d", rc);
        if (rc == PTHREAD_BARRIER_SERIAL_THREAD) {
            __atomic_fetch_add(&serial_seen[ph], 1, __ATOMIC_RELAXED);
        }
        if (me == 0) {
            uint64_t total = 0;
            for (int k = 0; k < NTHREADS; k++) {
                total += partial[k];
            }
            /* Spot-check the other threads' slices as written this phase. */
            for (int i = 7; i < ELEMS; i += 997) {
                CHECK(array[i] == value(ph, seed, i),
                      "phase %d: element %d is %#x, want %#x", ph, i, array[i],
                      value(ph, seed, i));
            }
            totals[ph] = total;
        }
        /* Nobody starts the next phase before thread 0 has combined. */
        rc = pthread_barrier_wait(&barrier);
        CHECK(rc == 0 || rc == PTHREAD_BARRIER_SERIAL_THREAD, "barrier_wait: %d", rc);
        if (rc == PTHREAD_BARRIER_SERIAL_THREAD) {
            __atomic_fetch_add(&serial_seen[ph], 1, __ATOMIC_RELAXED);
        }
    }
    return NULL;
}

int main(void)
{
    pthread_t t[NTHREADS];

    CHECK_PT(pthread_barrier_init(&barrier, NULL, NTHREADS));
    for (int i = 0; i < NTHREADS; i++) {
        CHECK_PT(pthread_create(&t[i], NULL, summer, (void *)(intptr_t)i));
    }
    for (int i = 0; i < NTHREADS; i++) {
        CHECK_PT(pthread_join(t[i], NULL));
    }
    CHECK_PT(pthread_barrier_destroy(&barrier));

    uint64_t seed = 12345;
    for (int ph = 0; ph < PHASES; ph++) {
        uint64_t want = 0;
        for (int i = 0; i < ELEMS; i++) {
            want += value(ph, seed, i);
        }
        CHECK(totals[ph] == want, "phase %d: total %llu, want %llu", ph,
              (unsigned long long)totals[ph], (unsigned long long)want);
        CHECK(serial_seen[ph] == 2, "phase %d: %d serial threads over 2 barriers",
              ph, serial_seen[ph]);
        printf("phase %d: total %llu\n", ph, (unsigned long long)want);
        seed = want;
    }
    for (int i = 0; i < ELEMS; i++) {
        CHECK(array[i] == value(PHASES - 1, totals[PHASES - 2], i),
              "final element %d", i);
    }
    printf("%d threads, %d phases, %d elements: all totals exact\n", NTHREADS,
           PHASES, ELEMS);
    guest_pass("dist-barrier-sum");
    return 0;
}
