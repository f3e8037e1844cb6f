/* Test that pthread synchronisation works: mutex, condvar, barrier, rwlock, semaphore, spinlock. */
#define _GNU_SOURCE
#include <pthread.h>
#include <semaphore.h>
#include <stdint.h>
#include <time.h>

#include "guest-check.h"

#define NWORKERS     4
#define MUTEX_ITERS  20000
#define QUEUE_ITEMS  5000
#define QUEUE_CAP    16
#define PHASES       40
#define RW_WRITES    2000

/* ---- mutex: a plain counter stays exact under contention ---- */

static pthread_mutex_t counter_lock = PTHREAD_MUTEX_INITIALIZER;
static volatile uint64_t counter;

static void *mutex_worker(void *arg)
{
    uint64_t step = (uint64_t)(uintptr_t)arg;

    for (int i = 0; i < MUTEX_ITERS; i++) {
        pthread_mutex_lock(&counter_lock);
        /* Read-modify-write in two steps, so a broken lock loses updates. */
        uint64_t v = counter;
        counter = v + step;
        pthread_mutex_unlock(&counter_lock);
    }
    return NULL;
}

static void test_mutex(void)
{
    pthread_t t[NWORKERS];
    uint64_t want = 0;

    for (int i = 0; i < NWORKERS; i++) {
        CHECK_PT(pthread_create(&t[i], NULL, mutex_worker, (void *)(uintptr_t)(i + 1)));
        want += (uint64_t)(i + 1) * MUTEX_ITERS;
    }
    for (int i = 0; i < NWORKERS; i++) {
        CHECK_PT(pthread_join(t[i], NULL));
    }
    CHECK(counter == want, "mutex counter %llu != %llu",
          (unsigned long long)counter, (unsigned long long)want);
    printf("mutex: counter %llu exact\n", (unsigned long long)counter);
}

/* ---- mutex types: trylock, recursive, error-checking ---- */

static pthread_mutex_t held;
static pthread_barrier_t held_barrier;

static void *try_other(void *arg)
{
    (void)arg;
    /* Main holds the lock until after the second barrier. */
    pthread_barrier_wait(&held_barrier);
    int rc = pthread_mutex_trylock(&held);
    pthread_barrier_wait(&held_barrier);
    return (void *)(intptr_t)rc;
}

static void test_mutex_types(void)
{
    pthread_mutexattr_t ma;
    pthread_mutex_t m;
    pthread_t t;
    void *ret;

    CHECK_PT(pthread_mutex_init(&held, NULL));
    CHECK_PT(pthread_barrier_init(&held_barrier, NULL, 2));
    CHECK_PT(pthread_mutex_lock(&held));
    CHECK_PT(pthread_create(&t, NULL, try_other, NULL));
    pthread_barrier_wait(&held_barrier);
    pthread_barrier_wait(&held_barrier);
    CHECK_PT(pthread_join(t, &ret));
    CHECK((intptr_t)ret == EBUSY, "trylock on held mutex returned %ld",
          (long)(intptr_t)ret);
    CHECK_PT(pthread_mutex_unlock(&held));
    CHECK_PT(pthread_mutex_trylock(&held));
    CHECK_PT(pthread_mutex_unlock(&held));
    CHECK_PT(pthread_barrier_destroy(&held_barrier));
    CHECK_PT(pthread_mutex_destroy(&held));

    CHECK_PT(pthread_mutexattr_init(&ma));
    CHECK_PT(pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_RECURSIVE));
    CHECK_PT(pthread_mutex_init(&m, &ma));
    for (int i = 0; i < 5; i++) {
        CHECK_PT(pthread_mutex_lock(&m));
    }
    for (int i = 0; i < 5; i++) {
        CHECK_PT(pthread_mutex_unlock(&m));
    }
    CHECK(pthread_mutex_unlock(&m) == EPERM, "unlock of unowned recursive mutex");
    CHECK_PT(pthread_mutex_destroy(&m));

    CHECK_PT(pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ERRORCHECK));
    CHECK_PT(pthread_mutex_init(&m, &ma));
    CHECK_PT(pthread_mutex_lock(&m));
    CHECK(pthread_mutex_lock(&m) == EDEADLK, "errorcheck relock did not EDEADLK");
    CHECK_PT(pthread_mutex_unlock(&m));
    CHECK(pthread_mutex_unlock(&m) == EPERM, "errorcheck double unlock");
    CHECK_PT(pthread_mutex_destroy(&m));
    CHECK_PT(pthread_mutexattr_destroy(&ma));
    printf("mutex types: trylock EBUSY, recursive, errorcheck ok\n");
}

/* ---- condvar: bounded queue, 2 producers, 2 consumers ---- */

static struct {
    pthread_mutex_t lock;
    pthread_cond_t not_empty, not_full;
    uint32_t items[QUEUE_CAP];
    int head, count, producers_left;
} q = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .not_empty = PTHREAD_COND_INITIALIZER,
    .not_full = PTHREAD_COND_INITIALIZER,
    .producers_left = 2,
};

struct consumer_result {
    uint64_t sum;
    uint32_t count;
};

static uint32_t item_value(int producer, int i)
{
    return (uint32_t)(producer * 1000003 + i * 7 + 1);
}

static void *producer(void *arg)
{
    int p = (int)(intptr_t)arg;

    for (int i = 0; i < QUEUE_ITEMS; i++) {
        pthread_mutex_lock(&q.lock);
        while (q.count == QUEUE_CAP) {
            pthread_cond_wait(&q.not_full, &q.lock);
        }
        q.items[(q.head + q.count) % QUEUE_CAP] = item_value(p, i);
        q.count++;
        pthread_cond_signal(&q.not_empty);
        pthread_mutex_unlock(&q.lock);
    }
    pthread_mutex_lock(&q.lock);
    q.producers_left--;
    /* Wake every consumer so they can notice the end of input. */
    pthread_cond_broadcast(&q.not_empty);
    pthread_mutex_unlock(&q.lock);
    return NULL;
}

static void *consumer(void *arg)
{
    struct consumer_result *r = arg;

    for (;;) {
        pthread_mutex_lock(&q.lock);
        while (q.count == 0 && q.producers_left > 0) {
            pthread_cond_wait(&q.not_empty, &q.lock);
        }
        if (q.count == 0) {
            pthread_mutex_unlock(&q.lock);
            return NULL;
        }
        uint32_t v = q.items[q.head];
        q.head = (q.head + 1) % QUEUE_CAP;
        q.count--;
        pthread_cond_signal(&q.not_full);
        pthread_mutex_unlock(&q.lock);
        r->sum += v;
        r->count++;
    }
}

static void test_condvar(void)
{
    pthread_t prod[2], cons[2];
    struct consumer_result res[2] = { { 0, 0 }, { 0, 0 } };
    uint64_t want = 0;

    for (int p = 0; p < 2; p++) {
        for (int i = 0; i < QUEUE_ITEMS; i++) {
            want += item_value(p, i);
        }
    }
    for (int i = 0; i < 2; i++) {
        CHECK_PT(pthread_create(&cons[i], NULL, consumer, &res[i]));
    }
    for (int i = 0; i < 2; i++) {
        CHECK_PT(pthread_create(&prod[i], NULL, producer, (void *)(intptr_t)i));
    }
    for (int i = 0; i < 2; i++) {
        CHECK_PT(pthread_join(prod[i], NULL));
        CHECK_PT(pthread_join(cons[i], NULL));
    }
    /* How the items split between consumers is scheduling; the totals are not. */
    CHECK(res[0].count + res[1].count == 2 * QUEUE_ITEMS, "consumed %u items",
          res[0].count + res[1].count);
    CHECK(res[0].sum + res[1].sum == want, "consumed sum %llu != %llu",
          (unsigned long long)(res[0].sum + res[1].sum), (unsigned long long)want);
    printf("condvar: %d items through a %d-slot queue, sum %llu\n",
           2 * QUEUE_ITEMS, QUEUE_CAP, (unsigned long long)want);
}

static void test_cond_timedwait(void)
{
    pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t c = PTHREAD_COND_INITIALIZER;
    struct timespec start, deadline, end;

    CHECK_SYS(clock_gettime(CLOCK_REALTIME, &start));
    deadline = start;
    deadline.tv_nsec += 50 * 1000000;
    if (deadline.tv_nsec >= 1000000000) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&m);
    int rc;
    do {
        rc = pthread_cond_timedwait(&c, &m, &deadline);
    } while (rc == 0); /* spurious wakeups are allowed */
    pthread_mutex_unlock(&m);
    CHECK(rc == ETIMEDOUT, "timedwait returned %d", rc);
    CHECK_SYS(clock_gettime(CLOCK_REALTIME, &end));
    CHECK(end.tv_sec > deadline.tv_sec ||
          (end.tv_sec == deadline.tv_sec && end.tv_nsec >= deadline.tv_nsec),
          "timedwait returned before its deadline");
    printf("cond_timedwait: ETIMEDOUT after the deadline\n");
}

/* ---- barrier: phases see every thread's writes from the phase before ---- */

static pthread_barrier_t barrier;
static uint64_t slots[2][NWORKERS];
static int serial_count[PHASES];
static pthread_mutex_t serial_lock = PTHREAD_MUTEX_INITIALIZER;

static void *barrier_worker(void *arg)
{
    int me = (int)(intptr_t)arg;

    for (int ph = 0; ph < PHASES; ph++) {
        slots[ph % 2][me] = (uint64_t)ph * 1000 + (uint64_t)me;
        int rc = pthread_barrier_wait(&barrier);
        CHECK(rc == 0 || rc == PTHREAD_BARRIER_SERIAL_THREAD, "barrier_wait %d", rc);
        if (rc == PTHREAD_BARRIER_SERIAL_THREAD) {
            pthread_mutex_lock(&serial_lock);
            serial_count[ph]++;
            pthread_mutex_unlock(&serial_lock);
        }
        for (int o = 0; o < NWORKERS; o++) {
            uint64_t v = slots[ph % 2][o];
            CHECK(v == (uint64_t)ph * 1000 + (uint64_t)o,
                  "phase %d: thread %d saw slot %d = %llu", ph, me, o,
                  (unsigned long long)v);
        }
        /* Nobody may overwrite this phase's slots before all have read them. */
        pthread_barrier_wait(&barrier);
    }
    return NULL;
}

static void test_barrier(void)
{
    pthread_t t[NWORKERS];

    CHECK_PT(pthread_barrier_init(&barrier, NULL, NWORKERS));
    for (int i = 0; i < NWORKERS; i++) {
        CHECK_PT(pthread_create(&t[i], NULL, barrier_worker, (void *)(intptr_t)i));
    }
    for (int i = 0; i < NWORKERS; i++) {
        CHECK_PT(pthread_join(t[i], NULL));
    }
    for (int ph = 0; ph < PHASES; ph++) {
        CHECK(serial_count[ph] == 1, "phase %d had %d serial threads", ph,
              serial_count[ph]);
    }
    CHECK_PT(pthread_barrier_destroy(&barrier));
    printf("barrier: %d threads x %d phases consistent\n", NWORKERS, PHASES);
}

/* ---- rwlock: readers never see a half-written pair ---- */

static pthread_rwlock_t rw;
static volatile uint64_t rw_a, rw_b;   /* invariant: rw_b == 3 * rw_a + 1 */
static volatile int rw_done;

static void *rw_reader(void *arg)
{
    uint64_t reads = 0;

    (void)arg;
    while (!__atomic_load_n(&rw_done, __ATOMIC_ACQUIRE)) {
        pthread_rwlock_rdlock(&rw);
        uint64_t a = rw_a;
        sched_yield();
        uint64_t b = rw_b;
        pthread_rwlock_unlock(&rw);
        CHECK(b == 3 * a + 1, "reader saw a=%llu b=%llu",
              (unsigned long long)a, (unsigned long long)b);
        reads++;
    }
    return (void *)(uintptr_t)reads;
}

static void *rw_writer(void *arg)
{
    (void)arg;
    for (int i = 0; i < RW_WRITES; i++) {
        pthread_rwlock_wrlock(&rw);
        rw_a = rw_a + 1;
        if (i % 64 == 0) {
            sched_yield();
        }
        rw_b = 3 * rw_a + 1;
        pthread_rwlock_unlock(&rw);
    }
    __atomic_store_n(&rw_done, 1, __ATOMIC_RELEASE);
    return NULL;
}

static void test_rwlock(void)
{
    pthread_t r[3], w;
    pthread_rwlockattr_t ra;

    /*
     * glibc's default rwlock prefers readers, and three readers that keep
     * overlapping could starve the writer for ever; ask for writer
     * preference so the test always finishes.
     */
    CHECK_PT(pthread_rwlockattr_init(&ra));
    CHECK_PT(pthread_rwlockattr_setkind_np(&ra,
                 PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP));
    CHECK_PT(pthread_rwlock_init(&rw, &ra));
    CHECK_PT(pthread_rwlockattr_destroy(&ra));
    rw_a = 0;
    rw_b = 1;
    for (int i = 0; i < 3; i++) {
        CHECK_PT(pthread_create(&r[i], NULL, rw_reader, NULL));
    }
    CHECK_PT(pthread_create(&w, NULL, rw_writer, NULL));
    CHECK_PT(pthread_join(w, NULL));
    for (int i = 0; i < 3; i++) {
        CHECK_PT(pthread_join(r[i], NULL));
    }
    CHECK(rw_a == RW_WRITES && rw_b == 3 * RW_WRITES + 1, "final a=%llu b=%llu",
          (unsigned long long)rw_a, (unsigned long long)rw_b);

    /* Shared holders coexist; an exclusive request is refused meanwhile. */
    CHECK_PT(pthread_rwlock_rdlock(&rw));
    CHECK_PT(pthread_rwlock_tryrdlock(&rw));
    CHECK(pthread_rwlock_trywrlock(&rw) == EBUSY, "trywrlock under readers");
    CHECK_PT(pthread_rwlock_unlock(&rw));
    CHECK_PT(pthread_rwlock_unlock(&rw));
    CHECK_PT(pthread_rwlock_trywrlock(&rw));
    CHECK(pthread_rwlock_tryrdlock(&rw) == EBUSY, "tryrdlock under writer");
    CHECK_PT(pthread_rwlock_unlock(&rw));
    CHECK_PT(pthread_rwlock_destroy(&rw));
    printf("rwlock: %d writes, invariant held for every read\n", RW_WRITES);
}

/* ---- counting semaphore as a token pool ---- */

static sem_t pool;
static int in_use, max_in_use;
static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;

static void *pool_user(void *arg)
{
    (void)arg;
    for (int i = 0; i < 200; i++) {
        while (sem_wait(&pool) != 0) {
            CHECK(errno == EINTR, "sem_wait: %s", strerror(errno));
        }
        pthread_mutex_lock(&pool_lock);
        in_use++;
        if (in_use > max_in_use) {
            max_in_use = in_use;
        }
        pthread_mutex_unlock(&pool_lock);
        sched_yield();
        pthread_mutex_lock(&pool_lock);
        in_use--;
        pthread_mutex_unlock(&pool_lock);
        CHECK_SYS(sem_post(&pool));
    }
    return NULL;
}

static void test_semaphore(void)
{
    pthread_t t[NWORKERS];
    int v;

    CHECK_SYS(sem_init(&pool, 0, 2));
    for (int i = 0; i < NWORKERS; i++) {
        CHECK_PT(pthread_create(&t[i], NULL, pool_user, NULL));
    }
    for (int i = 0; i < NWORKERS; i++) {
        CHECK_PT(pthread_join(t[i], NULL));
    }
    CHECK(max_in_use >= 1 && max_in_use <= 2, "%d tokens in use at once", max_in_use);
    CHECK_SYS(sem_getvalue(&pool, &v));
    CHECK(v == 2, "semaphore value %d after all returned", v);
    CHECK_SYS(sem_trywait(&pool));
    CHECK_SYS(sem_trywait(&pool));
    CHECK_ERRNO(sem_trywait(&pool), EAGAIN);
    CHECK_SYS(sem_destroy(&pool));
    printf("semaphore: never more than 2 of 2 tokens out\n");
}

/* ---- spinlock ---- */

static pthread_spinlock_t spin;
static uint64_t spin_counter;

static void *spin_worker(void *arg)
{
    (void)arg;
    for (int i = 0; i < MUTEX_ITERS / 4; i++) {
        pthread_spin_lock(&spin);
        spin_counter++;
        pthread_spin_unlock(&spin);
    }
    return NULL;
}

static void test_spinlock(void)
{
    pthread_t t[NWORKERS];

    CHECK_PT(pthread_spin_init(&spin, PTHREAD_PROCESS_PRIVATE));
    for (int i = 0; i < NWORKERS; i++) {
        CHECK_PT(pthread_create(&t[i], NULL, spin_worker, NULL));
    }
    for (int i = 0; i < NWORKERS; i++) {
        CHECK_PT(pthread_join(t[i], NULL));
    }
    CHECK(spin_counter == (uint64_t)NWORKERS * (MUTEX_ITERS / 4), "spin counter %llu",
          (unsigned long long)spin_counter);
    CHECK_PT(pthread_spin_destroy(&spin));
    printf("spinlock: counter %llu exact\n", (unsigned long long)spin_counter);
}

int main(void)
{
    test_mutex();
    test_mutex_types();
    test_condvar();
    test_cond_timedwait();
    test_barrier();
    test_rwlock();
    test_semaphore();
    test_spinlock();
    guest_pass("sync");
    return 0;
}
