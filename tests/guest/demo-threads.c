/* Test that 8 worker threads counting primes in interleaved chunks agree with a single-threaded sieve. */
#include <pthread.h>
#include <stdint.h>

#include "guest-check.h"

#define NWORKERS 8
#define NCHUNKS  32

/*
 * Usage: demo-threads [LIMIT]
 * Counts the primes below LIMIT (default 1000000).  The range is cut into
 * NCHUNKS chunks; worker w takes chunks w, w + 8, w + 16, ... and tests
 * each number by trial division.  Each worker records what it did; after
 * all joins main prints the records in worker order (so the output never
 * depends on scheduling) and checks the total against a sieve.
 */

static uint32_t limit = 1000000;

struct chunk_result {
    uint32_t lo, hi;       /* numbers in [lo, hi) */
    uint32_t primes;
    uint32_t largest;      /* largest prime in the chunk, 0 if none */
};

struct worker {
    pthread_t thread;
    int id;
    int nchunks;
    int chunk_ids[NCHUNKS];
    struct chunk_result res[NCHUNKS];
    uint64_t prime_sum;
};

static int is_prime(uint32_t n)
{
    if (n < 2) {
        return 0;
    }
    if (n % 2 == 0) {
        return n == 2;
    }
    for (uint32_t d = 3; d <= n / d; d += 2) {
        if (n % d == 0) {
            return 0;
        }
    }
    return 1;
}

static void *work(void *arg)
{
    struct worker *w = arg;
    uint32_t chunk_len = (limit + NCHUNKS - 1) / NCHUNKS;

    for (int c = w->id; c < NCHUNKS; c += NWORKERS) {
        struct chunk_result *r = &w->res[w->nchunks];
        uint64_t lo = (uint64_t)c * chunk_len, hi = lo + chunk_len;

        r->lo = (uint32_t)(lo < limit ? lo : limit);
        r->hi = (uint32_t)(hi < limit ? hi : limit);
        r->primes = 0;
        r->largest = 0;
        for (uint32_t n = r->lo; n < r->hi; n++) {
            if (is_prime(n)) {
                r->primes++;
                r->largest = n;
                w->prime_sum += n;
            }
        }
        w->chunk_ids[w->nchunks++] = c;
    }
    return NULL;
}

/* Independent reference: sieve of Eratosthenes over [0, limit). */
static void sieve(uint32_t *count, uint64_t *sum, uint32_t *largest)
{
    unsigned char *composite = calloc(limit, 1);

    CHECK(composite != NULL, "calloc(%u)", limit);
    *count = 0;
    *sum = 0;
    *largest = 0;
    for (uint64_t i = 2; i < limit; i++) {
        if (composite[i]) {
            continue;
        }
        (*count)++;
        *sum += i;
        *largest = (uint32_t)i;
        for (uint64_t j = i * i; j < limit; j += i) {
            composite[j] = 1;
        }
    }
    free(composite);
}

int main(int argc, char **argv)
{
    static struct worker workers[NWORKERS];
    uint32_t total = 0, largest = 0;
    uint64_t sum = 0;
    int covered[NCHUNKS] = { 0 };

    if (argc > 1) {
        char *end;
        unsigned long v = strtoul(argv[1], &end, 10);
        CHECK(*end == '\0' && v >= 2 && v <= 100000000, "bad LIMIT '%s'", argv[1]);
        limit = (uint32_t)v;
    }
    printf("counting primes below %u with %d threads, %d chunks\n", limit, NWORKERS,
           NCHUNKS);

    for (int i = 0; i < NWORKERS; i++) {
        workers[i].id = i;
        CHECK_PT(pthread_create(&workers[i].thread, NULL, work, &workers[i]));
    }
    for (int i = 0; i < NWORKERS; i++) {
        CHECK_PT(pthread_join(workers[i].thread, NULL));
    }

    for (int i = 0; i < NWORKERS; i++) {
        struct worker *w = &workers[i];
        uint32_t wp = 0;

        for (int k = 0; k < w->nchunks; k++) {
            struct chunk_result *r = &w->res[k];
            int c = w->chunk_ids[k];

            CHECK(!covered[c], "chunk %d done twice", c);
            covered[c] = 1;
            printf("thread %d: chunk %2d [%8u, %8u) primes %6u largest %8u\n", i, c,
                   r->lo, r->hi, r->primes, r->largest);
            wp += r->primes;
            if (r->largest > largest) {
                largest = r->largest;
            }
        }
        printf("thread %d: %d chunks, %u primes\n", i, w->nchunks, wp);
        total += wp;
        sum += w->prime_sum;
    }
    for (int c = 0; c < NCHUNKS; c++) {
        CHECK(covered[c], "chunk %d never done", c);
    }

    uint32_t ref_count, ref_largest;
    uint64_t ref_sum;
    sieve(&ref_count, &ref_sum, &ref_largest);
    CHECK(total == ref_count, "threads counted %u primes, sieve %u", total, ref_count);
    CHECK(sum == ref_sum, "threads summed %llu, sieve %llu", (unsigned long long)sum,
          (unsigned long long)ref_sum);
    CHECK(largest == ref_largest, "largest %u, sieve %u", largest, ref_largest);
    printf("total: %u primes below %u, sum %llu, largest %u (sieve agrees)\n", total,
           limit, (unsigned long long)sum, largest);
    guest_pass("demo-threads");
    return 0;
}
