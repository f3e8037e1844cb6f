/*
 * Test a bounded queue guarded by a mutex and two condvars with several
 * producers and several consumers (which a cluster spreads over nodes):
 * every item arrives exactly once, whoever consumes it.  Checked through
 * a count, a sum and an order-independent hash of the items, and a
 * per-producer bitmap of which sequence numbers were seen.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>

#include "guest-check.h"

#define PRODUCERS 3
#define CONSUMERS 3
#define ITEMS     600           /* per producer */
#define QUEUE_CAP 8

struct queue {
    pthread_mutex_t lock;
    pthread_cond_t not_empty, not_full;
    uint32_t items[QUEUE_CAP];
    int head, count, producers_left;
    long max_count;             /* high-water mark, must stay <= QUEUE_CAP */
};

static struct queue q = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .not_empty = PTHREAD_COND_INITIALIZER,
    .not_full = PTHREAD_COND_INITIALIZER,
    .producers_left = PRODUCERS,
};

struct tally {
    uint64_t sum, hash;
    long count;
    /* seen[p][i]: item i of producer p consumed (bytes, not bits: no RMW races) */
    unsigned char seen[PRODUCERS][ITEMS];
};

static struct tally tallies[CONSUMERS];

/* Producer p's item i: the producer and sequence number are recoverable. */
static uint32_t item(int p, int i)
{
    return (uint32_t)p << 24 | (uint32_t)i;
}

static uint64_t mix(uint32_t v)
{
    uint64_t x = (uint64_t)v * 0x9e3779b97f4a7c15ull;
    return x ^ (x >> 29);
}

static void *producer(void *arg)
{
    int p = (int)(intptr_t)arg;

    for (int i = 0; i < ITEMS; i++) {
        CHECK_PT(pthread_mutex_lock(&q.lock));
        while (q.count == QUEUE_CAP) {
            CHECK_PT(pthread_cond_wait(&q.not_full, &q.lock));
        }
        q.items[(q.head + q.count) % QUEUE_CAP] = item(p, i);
        q.count++;
        if (q.count > q.max_count) {
            q.max_count = q.count;
        }
        CHECK_PT(pthread_cond_signal(&q.not_empty));
        CHECK_PT(pthread_mutex_unlock(&q.lock));
    }
    CHECK_PT(pthread_mutex_lock(&q.lock));
    q.producers_left--;
    /* Every consumer must be able to notice the end of input. */
    CHECK_PT(pthread_cond_broadcast(&q.not_empty));
    CHECK_PT(pthread_mutex_unlock(&q.lock));
    return NULL;
}

static void *consumer(void *arg)
{
    struct tally *t = arg;

    for (;;) {
        CHECK_PT(pthread_mutex_lock(&q.lock));
        while (q.count == 0 && q.producers_left > 0) {
            CHECK_PT(pthread_cond_wait(&q.not_empty, &q.lock));
        }
        if (q.count == 0) {
            CHECK_PT(pthread_mutex_unlock(&q.lock));
            return NULL;
        }
        uint32_t v = q.items[q.head];
        q.head = (q.head + 1) % QUEUE_CAP;
        q.count--;
        CHECK_PT(pthread_cond_signal(&q.not_full));
        CHECK_PT(pthread_mutex_unlock(&q.lock));

        int p = (int)(v >> 24), i = (int)(v & 0xffffff);
        CHECK(p < PRODUCERS && i < ITEMS, "consumed a bogus item %#x", v);
        CHECK(!t->seen[p][i], "item %d of producer %d consumed twice", i, p);
        t->seen[p][i] = 1;
        t->sum += v;
        t->hash += mix(v);
        t->count++;
    }
}

int main(void)
{
    pthread_t prod[PRODUCERS], cons[CONSUMERS];
    uint64_t want_sum = 0, want_hash = 0, sum = 0, hash = 0;
    long count = 0;

    for (int p = 0; p < PRODUCERS; p++) {
        for (int i = 0; i < ITEMS; i++) {
            want_sum += item(p, i);
            want_hash += mix(item(p, i));
        }
    }
    /* Interleave creation so producers and consumers share no fixed node. */
    for (int k = 0; k < PRODUCERS || k < CONSUMERS; k++) {
        if (k < CONSUMERS) {
            CHECK_PT(pthread_create(&cons[k], NULL, consumer, &tallies[k]));
        }
        if (k < PRODUCERS) {
            CHECK_PT(pthread_create(&prod[k], NULL, producer, (void *)(intptr_t)k));
        }
    }
    for (int k = 0; k < PRODUCERS; k++) {
        CHECK_PT(pthread_join(prod[k], NULL));
    }
    for (int k = 0; k < CONSUMERS; k++) {
        CHECK_PT(pthread_join(cons[k], NULL));
    }

    /* How items split between consumers is scheduling; the union is not. */
    for (int p = 0; p < PRODUCERS; p++) {
        for (int i = 0; i < ITEMS; i++) {
            int n = 0;
            for (int k = 0; k < CONSUMERS; k++) {
                n += tallies[k].seen[p][i];
            }
            CHECK(n == 1, "item %d of producer %d consumed %d times", i, p, n);
        }
    }
    for (int k = 0; k < CONSUMERS; k++) {
        sum += tallies[k].sum;
        hash += tallies[k].hash;
        count += tallies[k].count;
    }
    CHECK(count == (long)PRODUCERS * ITEMS, "consumed %ld items", count);
    CHECK(sum == want_sum, "sum %llu, want %llu", (unsigned long long)sum,
          (unsigned long long)want_sum);
    CHECK(hash == want_hash, "hash %#llx, want %#llx", (unsigned long long)hash,
          (unsigned long long)want_hash);
    CHECK(q.count == 0 && q.producers_left == 0, "queue left with %d items", q.count);
    CHECK(q.max_count >= 1 && q.max_count <= QUEUE_CAP, "queue held %ld items",
          q.max_count);
    printf("%d producers, %d consumers: %ld items through a %d-slot queue\n",
           PRODUCERS, CONSUMERS, count, QUEUE_CAP);
    printf("sum %llu, hash %016llx\n", (unsigned long long)sum,
           (unsigned long long)hash);
    guest_pass("dist-prodcons");
    return 0;
}
