/*
 * sync: glibc's synchronisation objects under THREADS threads for ROUNDS
 * rounds, each with an exact result:
 *
 *   mutex      every thread, every round: lock, check a == b, a += 1,
 *              b = a, unlock; ends with a = b = T*R
 *   spinlock   the same under a pthread spinlock (taken with trylock in a
 *              bounded, yielding loop: a holder preempted on a 2-core
 *              machine would leave pthread_spin_lock spinning)
 *   rwlock     every round each thread reads under the read lock: all
 *              RW_WORDS words (spread over two pages) must hold the same
 *              value, and their checksum word must match; even-numbered
 *              threads then write under the write lock: value + 1 to every
 *              word, checksum last.  Ends at value = writers * R
 *   semaphore  a semaphore of SEM_PERMITS: at most that many threads are
 *              ever inside; every entry is counted, T*R in all
 *   barrier    every round each thread writes its slot, a barrier, each
 *              thread checks every slot and adds them up; every thread's
 *              sum must be the same exact total.  Rounds alternate between
 *              two slot arrays, so one barrier per round is enough: a
 *              thread writes round r + 2's slot only after the barrier of
 *              round r + 1, which everyone reaches after reading round r
 *   condvar    T/2 producers put R items each through a bounded queue
 *              (mutex, two condition variables) to T/2 consumers; each
 *              item arrives once (count, sum and sum of squares exact),
 *              each producer's items in the order it put them
 *
 * Waits that could block for ever use the timed variants (or at_spin),
 * so a lost wake-up ends in a FAIL line, not a hang; only
 * pthread_barrier_wait has no timed form.
 */
#include "at-common.h"      /* first: it sets _GNU_SOURCE */

#include <semaphore.h>

#define RW_WORDS     16
#define SEM_PERMITS  2
/*
 * Deep enough that the two sides do not sleep at every item (across nodes
 * each sleep and wake-up is a delegated futex call), shallow enough that
 * producers still fill it and consumers drain it.
 */
#define QUEUE_SLOTS  32

static struct at_args args;

/* A deadline AT_WAIT_LIMIT_NS from now, for the timed waits. */
static struct timespec deadline(void)
{
    struct timespec ts;

    CHECK_SYS(clock_gettime(CLOCK_REALTIME, &ts));
    ts.tv_sec += (time_t)(AT_WAIT_LIMIT_NS / 1000000000ll);
    return ts;
}

/* Each section's shared state on pages of its own. */
#define PAGE_ALIGNED __attribute__((aligned(4096)))

/* ---- mutex ------------------------------------------------------------ */

static struct {
    pthread_mutex_t lock;
    uint64_t a, b;
} mx PAGE_ALIGNED = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void mutex_worker(int t)
{
    (void)t;
    for (int i = 0; i < args.rounds; i++) {
        struct timespec until = deadline();

        CHECK_PT(pthread_mutex_timedlock(&mx.lock, &until));
        CHECK(mx.a == mx.b, "mutex: inside the lock a=%llu b=%llu, want equal",
              (unsigned long long)mx.a, (unsigned long long)mx.b);
        mx.a = mx.a + 1;
        mx.b = mx.a;
        CHECK_PT(pthread_mutex_unlock(&mx.lock));
    }
}

/* ---- spinlock --------------------------------------------------------- */

static struct {
    pthread_spinlock_t lock;
    uint64_t a, b;
} sp PAGE_ALIGNED;

static void spin_worker(int t)
{
    (void)t;
    for (int i = 0; i < args.rounds; i++) {
        struct at_spin s = AT_SPIN_INIT;
        int rc;

        while ((rc = pthread_spin_trylock(&sp.lock)) == EBUSY) {
            at_spin(&s, "pthread spinlock");
        }
        CHECK(rc == 0, "pthread_spin_trylock: %s", strerror(rc));
        CHECK(sp.a == sp.b, "spinlock: inside the lock a=%llu b=%llu, want equal",
              (unsigned long long)sp.a, (unsigned long long)sp.b);
        sp.a = sp.a + 1;
        sp.b = sp.a;
        CHECK_PT(pthread_spin_unlock(&sp.lock));
    }
}

/* ---- rwlock ----------------------------------------------------------- */

/*
 * The words straddle a page boundary: half at the end of one page, half
 * at the start of the next, so a reader may find them on two pages that
 * came from different nodes.
 */
static struct {
    pthread_rwlock_t lock;
    uint8_t pad[4096 - sizeof(pthread_rwlock_t) - RW_WORDS / 2 * sizeof(uint64_t)];
    uint64_t word[RW_WORDS];
    uint64_t check;
    uint64_t reads;             /* under the write lock only: see below */
} rw PAGE_ALIGNED = { .lock = PTHREAD_RWLOCK_INITIALIZER };

static uint64_t rw_checksum(uint64_t v)
{
    return v * 0x9e3779b97f4a7c15ull ^ (v >> 7);
}

static int rw_is_writer(int t)
{
    return t % 2 == 0;
}

static void rw_worker(int t)
{
    uint64_t my_reads = 0;

    for (int i = 0; i < args.rounds; i++) {
        struct timespec until = deadline();
        uint64_t v;

        CHECK_PT(pthread_rwlock_timedrdlock(&rw.lock, &until));
        v = rw.word[0];
        for (int k = 1; k < RW_WORDS; k++) {
            CHECK(rw.word[k] == v, "rwlock: reader saw word[%d]=%llu, want word[0]=%llu",
                  k, (unsigned long long)rw.word[k], (unsigned long long)v);
        }
        CHECK(rw.check == rw_checksum(v), "rwlock: reader saw checksum %#llx for "
              "value %llu, want %#llx", (unsigned long long)rw.check,
              (unsigned long long)v, (unsigned long long)rw_checksum(v));
        CHECK_PT(pthread_rwlock_unlock(&rw.lock));
        my_reads++;

        if (rw_is_writer(t)) {
            until = deadline();
            CHECK_PT(pthread_rwlock_timedwrlock(&rw.lock, &until));
            v = rw.word[0] + 1;
            for (int k = 0; k < RW_WORDS; k++) {
                rw.word[k] = v;
            }
            rw.check = rw_checksum(v);
            CHECK_PT(pthread_rwlock_unlock(&rw.lock));
        }
    }
    /* The read count is summed under the write lock: a plain shared
     * counter that the lock must keep exact too. */
    struct timespec until = deadline();

    CHECK_PT(pthread_rwlock_timedwrlock(&rw.lock, &until));
    rw.reads += my_reads;
    CHECK_PT(pthread_rwlock_unlock(&rw.lock));
}

/* ---- semaphore -------------------------------------------------------- */

static struct {
    sem_t sem;
    int inside;                 /* atomic */
    int most_inside;            /* atomic: the largest value seen */
    uint64_t entries;           /* atomic */
} sm PAGE_ALIGNED;

static void sem_worker(int t)
{
    (void)t;
    for (int i = 0; i < args.rounds; i++) {
        struct timespec until = deadline();
        int now, most;

        CHECK_SYS(sem_timedwait(&sm.sem, &until));
        now = __atomic_add_fetch(&sm.inside, 1, __ATOMIC_ACQ_REL);
        most = __atomic_load_n(&sm.most_inside, __ATOMIC_RELAXED);
        /* A strong exchange fails only when the maximum grew meanwhile
         * (most then holds it), which can happen at most T times. */
        while (now > most &&
               !__atomic_compare_exchange_n(&sm.most_inside, &most, now, 0,
                                            __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
        }
        __atomic_fetch_add(&sm.entries, 1, __ATOMIC_RELAXED);
        __atomic_fetch_sub(&sm.inside, 1, __ATOMIC_ACQ_REL);
        CHECK_SYS(sem_post(&sm.sem));
    }
}

/* ---- barrier ---------------------------------------------------------- */

static struct {
    pthread_barrier_t barrier;
    uint8_t pad[4096 - sizeof(pthread_barrier_t)];
    uint64_t slot[2][AT_MAX_THREADS];   /* on the next page */
    uint64_t sum[AT_MAX_THREADS];
} br PAGE_ALIGNED;

static uint64_t br_value(int round, int t)
{
    return (uint64_t)round * 1000003u + (uint64_t)t * 7919u + 1;
}

static void barrier_wait_checked(void)
{
    int rc = pthread_barrier_wait(&br.barrier);

    CHECK(rc == 0 || rc == PTHREAD_BARRIER_SERIAL_THREAD, "pthread_barrier_wait: %s",
          strerror(rc));
}

static void barrier_worker(int t)
{
    uint64_t sum = 0;

    for (int i = 0; i < args.rounds; i++) {
        uint64_t *slot = br.slot[i % 2];

        slot[t] = br_value(i, t);
        barrier_wait_checked();
        for (int k = 0; k < args.threads; k++) {
            CHECK(slot[k] == br_value(i, k), "barrier round %d: thread %d saw "
                  "slot %d = %llu, want %llu", i, t, k, (unsigned long long)slot[k],
                  (unsigned long long)br_value(i, k));
            sum += slot[k];
        }
    }
    br.sum[t] = sum;
}

/* ---- condvar: producers and consumers --------------------------------- */

static struct {
    pthread_mutex_t lock;
    pthread_cond_t not_full, not_empty;
    uint32_t item[QUEUE_SLOTS];
    unsigned head, count;
    uint64_t got, sum, sumsq;           /* under lock */
} pc PAGE_ALIGNED = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .not_full = PTHREAD_COND_INITIALIZER,
    .not_empty = PTHREAD_COND_INITIALIZER,
};

/* Item i (1..R) of producer p: the producer in the high bits. */
static uint32_t pc_item(int p, int i)
{
    return (uint32_t)p << 20 | (uint32_t)i;
}

/* One wait for @cv, ending by @until at the latest. */
static void cond_wait_checked(pthread_cond_t *cv, const struct timespec *until,
                              const char *what)
{
    int rc = pthread_cond_timedwait(cv, &pc.lock, until);

    CHECK(rc == 0, "condvar: waiting for %s: %s", what, strerror(rc));
}

static void pc_worker(int t)
{
    int producers = args.threads / 2;

    if (t < producers) {
        for (int i = 1; i <= args.rounds; i++) {
            struct timespec until = deadline();

            CHECK_PT(pthread_mutex_timedlock(&pc.lock, &until));
            /* One deadline for all the wake-ups (spurious ones included)
             * this item may need. */
            while (pc.count == QUEUE_SLOTS) {
                cond_wait_checked(&pc.not_full, &until, "room in the queue");
            }
            pc.item[(pc.head + pc.count) % QUEUE_SLOTS] = pc_item(t, i);
            pc.count++;
            CHECK_PT(pthread_cond_signal(&pc.not_empty));
            CHECK_PT(pthread_mutex_unlock(&pc.lock));
        }
    } else if (t < 2 * producers) {
        /* Consumers take R items each: P*R in all, as produced. */
        uint32_t last[AT_MAX_THREADS] = { 0 };

        for (int i = 0; i < args.rounds; i++) {
            struct timespec until = deadline();
            uint32_t v;
            int p;

            CHECK_PT(pthread_mutex_timedlock(&pc.lock, &until));
            while (pc.count == 0) {
                cond_wait_checked(&pc.not_empty, &until, "an item");
            }
            v = pc.item[pc.head];
            pc.head = (pc.head + 1) % QUEUE_SLOTS;
            pc.count--;
            pc.got++;
            pc.sum += v;
            pc.sumsq += (uint64_t)v * v;
            CHECK_PT(pthread_cond_signal(&pc.not_full));
            CHECK_PT(pthread_mutex_unlock(&pc.lock));

            p = (int)(v >> 20);
            CHECK(p < producers && (v & 0xfffff) >= 1 && (v & 0xfffff) <= (uint32_t)args.rounds,
                  "condvar: consumer %d got item %#x, produced by nobody", t, v);
            CHECK(v > last[p], "condvar: consumer %d got item %#x after %#x from "
                  "producer %d: out of order", t, v, last[p], p);
            last[p] = v;
        }
    }
}

/* ---- main ------------------------------------------------------------- */

int main(int argc, char **argv)
{
    uint64_t T, R, writers = 0, want;

    args = at_parse_args(argc, argv, 2);
    T = (uint64_t)args.threads;
    R = (uint64_t)args.rounds;
    printf("sync: threads=%d rounds=%d\n", args.threads, args.rounds);

    at_run_timed("mutex", args.threads, mutex_worker);
    CHECK(mx.a == T * R && mx.b == T * R, "mutex: a=%llu b=%llu, want %llu",
          (unsigned long long)mx.a, (unsigned long long)mx.b,
          (unsigned long long)(T * R));
    printf("mutex: counter=%llu\n", (unsigned long long)mx.a);

    CHECK_PT(pthread_spin_init(&sp.lock, PTHREAD_PROCESS_PRIVATE));
    at_run_timed("spinlock", args.threads, spin_worker);
    CHECK(sp.a == T * R && sp.b == T * R, "spinlock: a=%llu b=%llu, want %llu",
          (unsigned long long)sp.a, (unsigned long long)sp.b,
          (unsigned long long)(T * R));
    printf("spinlock: counter=%llu\n", (unsigned long long)sp.a);
    CHECK_PT(pthread_spin_destroy(&sp.lock));

    rw.check = rw_checksum(0);
    at_run_timed("rwlock", args.threads, rw_worker);
    for (int t = 0; t < args.threads; t++) {
        writers += rw_is_writer(t);
    }
    CHECK(rw.word[0] == writers * R, "rwlock: value %llu, want %llu writes",
          (unsigned long long)rw.word[0], (unsigned long long)(writers * R));
    CHECK(rw.reads == T * R, "rwlock: %llu reads counted, want %llu",
          (unsigned long long)rw.reads, (unsigned long long)(T * R));
    printf("rwlock: writes=%llu reads=%llu consistent\n",
           (unsigned long long)rw.word[0], (unsigned long long)rw.reads);

    CHECK_SYS(sem_init(&sm.sem, 0, SEM_PERMITS));
    at_run_timed("semaphore", args.threads, sem_worker);
    CHECK(sm.entries == T * R, "semaphore: %llu entries, want %llu",
          (unsigned long long)sm.entries, (unsigned long long)(T * R));
    CHECK(sm.most_inside >= 1 && sm.most_inside <= SEM_PERMITS,
          "semaphore: %d threads inside at once, want at most %d", sm.most_inside,
          SEM_PERMITS);
    CHECK(sm.inside == 0, "semaphore: %d still inside", sm.inside);
    printf("semaphore: entries=%llu never more than %d inside\n",
           (unsigned long long)sm.entries, SEM_PERMITS);
    CHECK_SYS(sem_destroy(&sm.sem));

    CHECK_PT(pthread_barrier_init(&br.barrier, NULL, (unsigned)args.threads));
    at_run_timed("barrier", args.threads, barrier_worker);
    want = 0;
    for (int i = 0; i < args.rounds; i++) {
        for (int k = 0; k < args.threads; k++) {
            want += br_value(i, k);
        }
    }
    for (int t = 0; t < args.threads; t++) {
        CHECK(br.sum[t] == want, "barrier: thread %d summed %llu, want %llu", t,
              (unsigned long long)br.sum[t], (unsigned long long)want);
    }
    printf("barrier: rounds=%d sum=%llu in every thread\n", args.rounds,
           (unsigned long long)want);
    CHECK_PT(pthread_barrier_destroy(&br.barrier));

    at_run_timed("condvar", args.threads, pc_worker);
    {
        uint64_t P = T / 2, n = 0, sum = 0, sumsq = 0;

        for (int p = 0; p < (int)P; p++) {
            for (int i = 1; i <= args.rounds; i++) {
                uint64_t v = pc_item(p, i);

                n++;
                sum += v;
                sumsq += v * v;
            }
        }
        CHECK(pc.got == n && pc.sum == sum && pc.sumsq == sumsq,
              "condvar: got %llu items sum %llu sumsq %llu, want %llu, %llu, %llu",
              (unsigned long long)pc.got, (unsigned long long)pc.sum,
              (unsigned long long)pc.sumsq, (unsigned long long)n,
              (unsigned long long)sum, (unsigned long long)sumsq);
        CHECK(pc.count == 0, "condvar: %u items left in the queue", pc.count);
        printf("condvar: producers=%llu items=%llu sum=%llu in order\n",
               (unsigned long long)P, (unsigned long long)pc.got,
               (unsigned long long)pc.sum);
    }

    guest_pass("sync");
    return 0;
}
