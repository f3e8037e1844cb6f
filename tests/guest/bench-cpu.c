/* Test that a CPU-bound threaded workload (Collatz step counting) gives a thread-count-independent checksum; also a benchmark. */
#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include "guest-check.h"

/*
 * Usage: bench-cpu [THREADS [SIZE]]
 *   THREADS  worker threads (default 4, 1..64)
 *   SIZE     numbers to process (default 3000000)
 *
 * Work is cut into NCHUNKS fixed chunks handed out through an atomic
 * counter, so which thread does which chunk varies, but the per-chunk
 * results and therefore the checksum depend only on SIZE.  The checksum
 * goes to stdout, the elapsed time to stderr (timings are not
 * deterministic and must not be compared).
 */

#define NCHUNKS 256

struct chunk {
    uint64_t steps;      /* total Collatz steps over the chunk */
    uint32_t max_steps;  /* longest trajectory in the chunk */
    uint32_t argmax;     /* the number that has it */
    uint32_t done;       /* times the chunk was processed (must be 1) */
};

static uint32_t size = 3000000;
static struct chunk chunks[NCHUNKS];
static uint32_t next_chunk;

/* Steps for n to reach 1 under n -> n/2 (even), 3n+1 (odd). */
static uint32_t collatz_steps(uint64_t n)
{
    uint32_t steps = 0;

    while (n != 1) {
        n = (n & 1) ? 3 * n + 1 : n >> 1;
        steps++;
    }
    return steps;
}

static void chunk_bounds(uint32_t c, uint32_t *lo, uint32_t *hi)
{
    uint64_t per = ((uint64_t)size + NCHUNKS - 1) / NCHUNKS;
    uint64_t l = c * per, h = l + per;

    /* Numbers processed are 1..size, i.e. index i handles i + 1. */
    *lo = (uint32_t)(l < size ? l : size);
    *hi = (uint32_t)(h < size ? h : size);
}

static void compute_chunk(uint32_t c, struct chunk *out)
{
    uint32_t lo, hi;

    chunk_bounds(c, &lo, &hi);
    out->steps = 0;
    out->max_steps = 0;
    out->argmax = 0;
    for (uint32_t i = lo; i < hi; i++) {
        uint32_t s = collatz_steps((uint64_t)i + 1);
        out->steps += s;
        if (s > out->max_steps) {
            out->max_steps = s;
            out->argmax = i + 1;
        }
    }
}

static void *worker(void *arg)
{
    uint64_t *mine = arg;

    for (;;) {
        uint32_t c = __atomic_fetch_add(&next_chunk, 1, __ATOMIC_RELAXED);
        if (c >= NCHUNKS) {
            return NULL;
        }
        struct chunk tmp;
        compute_chunk(c, &tmp);
        tmp.done = chunks[c].done + 1;
        chunks[c] = tmp;
        (*mine)++;
    }
}

static unsigned long parse(const char *s, unsigned long lo, unsigned long hi,
                           const char *what)
{
    char *end;
    unsigned long v = strtoul(s, &end, 10);

    CHECK(*s != '\0' && *end == '\0' && v >= lo && v <= hi, "bad %s '%s' (%lu..%lu)",
          what, s, lo, hi);
    return v;
}

int main(int argc, char **argv)
{
    int nthreads = 4;
    pthread_t th[64];
    uint64_t per_thread[64] = { 0 };
    struct timespec t0, t1;

    if (argc > 1) {
        nthreads = (int)parse(argv[1], 1, 64, "THREADS");
    }
    if (argc > 2) {
        size = (uint32_t)parse(argv[2], 1, 1000000000, "SIZE");
    }

    CHECK_SYS(clock_gettime(CLOCK_MONOTONIC, &t0));
    for (int i = 0; i < nthreads; i++) {
        CHECK_PT(pthread_create(&th[i], NULL, worker, &per_thread[i]));
    }
    uint64_t handed_out = 0;
    for (int i = 0; i < nthreads; i++) {
        CHECK_PT(pthread_join(th[i], NULL));
        handed_out += per_thread[i];
    }
    CHECK_SYS(clock_gettime(CLOCK_MONOTONIC, &t1));

    /* Fold per-chunk results in chunk order: independent of scheduling. */
    uint64_t checksum = 0xcbf29ce484222325ull, total_steps = 0;
    uint32_t best = 0, best_n = 0;
    CHECK(handed_out == NCHUNKS, "threads processed %llu chunks, want %d",
          (unsigned long long)handed_out, NCHUNKS);
    for (int c = 0; c < NCHUNKS; c++) {
        CHECK(chunks[c].done == 1, "chunk %d processed %u times", c, chunks[c].done);
        checksum = (checksum ^ chunks[c].steps) * 0x100000001b3ull;
        checksum = (checksum ^ chunks[c].argmax) * 0x100000001b3ull;
        total_steps += chunks[c].steps;
        if (chunks[c].max_steps > best) {
            best = chunks[c].max_steps;
            best_n = chunks[c].argmax;
        }
    }

    /* Recompute a few chunks on this thread and compare. */
    const uint32_t spot[] = { 0, 1, NCHUNKS / 2, NCHUNKS - 1 };
    for (size_t k = 0; k < sizeof(spot) / sizeof(spot[0]); k++) {
        struct chunk ref;
        compute_chunk(spot[k], &ref);
        CHECK(ref.steps == chunks[spot[k]].steps && ref.argmax == chunks[spot[k]].argmax,
              "chunk %u differs when recomputed", spot[k]);
    }
    /* Known values: 27 takes 111 steps, and 1 takes none. */
    CHECK(collatz_steps(27) == 111 && collatz_steps(1) == 0, "collatz_steps is broken");
    CHECK(best == collatz_steps(best_n), "reported maximum is inconsistent");

    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("bench-cpu: threads=%d size=%u total_steps=%llu longest=%u (n=%u) "
           "checksum=%016llx\n", nthreads, size, (unsigned long long)total_steps, best,
           best_n, (unsigned long long)checksum);
    fprintf(stderr, "bench-cpu: %.3f s, %.1f Mnumbers/s\n", secs,
            secs > 0 ? (double)size / secs / 1e6 : 0.0);
    guest_pass("bench-cpu");
    return 0;
}
