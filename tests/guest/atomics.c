/* Test that __atomic operations on 8/16/32/64-bit data give exact results when several threads race. */
#include <pthread.h>
#include <stdint.h>

#include "guest-check.h"

#define NTHREADS 4
#define ITERS    20000

static pthread_barrier_t start_line;

/*
 * One set of shared variables per width.  Each thread:
 *   - fetch_add(t + 1) ITERS times on add
 *   - increments cas by 3 ITERS times through a compare-exchange loop
 *     (weak for odd threads, strong for even ones)
 *   - fetch_sub(1) ITERS times on sub
 *   - sets its bit in orbits, clears its bit in andbits
 *   - xors its bit into xorbits an even number of times
 *   - exchanges values into xchg, summing what it wrote and got back
 *   - increments its own lane of lanes[], which shares words with the
 *     other threads' lanes (tests that narrow atomics do not clobber
 *     neighbours, e.g. riscv's masked lr/sc sequences)
 * Every result is computable in advance; wrap-around of the narrow types
 * is part of what is checked.
 */
#define DEFINE_WIDTH(T, BITS)                                               \
    static struct {                                                         \
        T add, cas, sub, orbits, andbits, xorbits, xchg;                    \
        T lanes[NTHREADS];                                                  \
    } v##BITS;                                                              \
    static uint64_t xchg_in_##BITS[NTHREADS], xchg_out_##BITS[NTHREADS];    \
                                                                            \
    static void work_##BITS(int t)                                          \
    {                                                                       \
        T bit = (T)((T)1 << t);                                             \
        for (int i = 0; i < ITERS; i++) {                                   \
            __atomic_fetch_add(&v##BITS.add, (T)(t + 1), __ATOMIC_SEQ_CST); \
            T old = __atomic_load_n(&v##BITS.cas, __ATOMIC_RELAXED);        \
            while (!__atomic_compare_exchange_n(&v##BITS.cas, &old,         \
                                                (T)(old + 3), t & 1,        \
                                                __ATOMIC_ACQ_REL,           \
                                                __ATOMIC_RELAXED)) {        \
                /* old now holds the current value; retry with it. */       \
            }                                                               \
            __atomic_fetch_sub(&v##BITS.sub, (T)1, __ATOMIC_RELEASE);       \
            __atomic_fetch_xor(&v##BITS.xorbits, bit, __ATOMIC_RELAXED);    \
            __atomic_add_fetch(&v##BITS.lanes[t], (T)1, __ATOMIC_RELAXED);  \
            if (i == ITERS / 2) {                                           \
                __atomic_fetch_or(&v##BITS.orbits, bit, __ATOMIC_SEQ_CST);  \
                __atomic_fetch_and(&v##BITS.andbits, (T)~bit,               \
                                   __ATOMIC_SEQ_CST);                       \
            }                                                               \
            /* Exchange conserves values: each one written is returned */   \
            /* by exactly one later exchange or is left at the end.    */   \
            T w = (T)(t * 1000 + i * 7 + 1);                                \
            T prev = __atomic_exchange_n(&v##BITS.xchg, w, __ATOMIC_ACQ_REL); \
            xchg_out_##BITS[t] += prev;                                     \
            xchg_in_##BITS[t] += w;                                         \
        }                                                                   \
    }                                                                       \
                                                                            \
    static void check_##BITS(void)                                          \
    {                                                                       \
        T want_add = 0, want_cas = 0, want_sub = 0, all = 0;                \
        for (int t = 0; t < NTHREADS; t++) {                                \
            want_add = (T)(want_add + (T)((T)(t + 1) * (T)ITERS));          \
            want_cas = (T)(want_cas + (T)(3 * (T)ITERS));                   \
            want_sub = (T)(want_sub - (T)ITERS);                            \
            all |= (T)((T)1 << t);                                          \
        }                                                                   \
        CHECK(v##BITS.add == want_add, #BITS "-bit fetch_add %llu != %llu", \
              (unsigned long long)v##BITS.add,                              \
              (unsigned long long)want_add);                                \
        CHECK(v##BITS.cas == want_cas, #BITS "-bit cas loop %llu != %llu",  \
              (unsigned long long)v##BITS.cas,                              \
              (unsigned long long)want_cas);                                \
        CHECK(v##BITS.sub == want_sub, #BITS "-bit fetch_sub %llu != %llu", \
              (unsigned long long)v##BITS.sub,                              \
              (unsigned long long)want_sub);                                \
        CHECK(v##BITS.orbits == all, #BITS "-bit fetch_or %#llx",           \
              (unsigned long long)v##BITS.orbits);                          \
        T want_and = (T)~all;                                               \
        CHECK(v##BITS.andbits == want_and, #BITS "-bit fetch_and %#llx",    \
              (unsigned long long)v##BITS.andbits);                         \
        CHECK(v##BITS.xorbits == 0, #BITS "-bit fetch_xor %#llx",           \
              (unsigned long long)v##BITS.xorbits);                         \
        for (int t = 0; t < NTHREADS; t++) {                                \
            CHECK(v##BITS.lanes[t] == (T)ITERS, #BITS "-bit lane %d = %llu", \
                  t, (unsigned long long)v##BITS.lanes[t]);                 \
        }                                                                   \
        uint64_t in = 0x5a, out = v##BITS.xchg;                             \
        for (int t = 0; t < NTHREADS; t++) {                                \
            in += xchg_in_##BITS[t];                                        \
            out += xchg_out_##BITS[t];                                      \
        }                                                                   \
        CHECK(in == out, #BITS "-bit exchange lost or duplicated values: "  \
              "%llu in, %llu out", (unsigned long long)in,                  \
              (unsigned long long)out);                                     \
        printf("%2d-bit: add=%llu cas=%llu sub=%llu or=%#llx and=%#llx "    \
               "xor=%llu xchg-sum=%llu lanes ok\n", BITS,                   \
               (unsigned long long)v##BITS.add,                             \
               (unsigned long long)v##BITS.cas,                             \
               (unsigned long long)v##BITS.sub,                             \
               (unsigned long long)v##BITS.orbits,                          \
               (unsigned long long)v##BITS.andbits,                         \
               (unsigned long long)v##BITS.xorbits,                         \
               (unsigned long long)in);                                     \
    }                                                                       \
                                                                            \
    static void init_##BITS(void)                                           \
    {                                                                       \
        v##BITS.andbits = (T)~(T)0;                                         \
        v##BITS.xchg = (T)0x5a;                                             \
    }

DEFINE_WIDTH(uint8_t, 8)
DEFINE_WIDTH(uint16_t, 16)
DEFINE_WIDTH(uint32_t, 32)
DEFINE_WIDTH(uint64_t, 64)

/* ---- test-and-set spinlock guarding a non-atomic 64-bit counter ---- */

static volatile char tas_flag;
static uint64_t tas_counter;

static void tas_work(void)
{
    for (int i = 0; i < ITERS / 2; i++) {
        while (__atomic_test_and_set(&tas_flag, __ATOMIC_ACQUIRE)) {
            /* spin */
        }
        tas_counter = tas_counter + 1;
        __atomic_clear(&tas_flag, __ATOMIC_RELEASE);
    }
}

/* ---- release/acquire message passing ---- */

static uint64_t mp_data[256];
static uint32_t mp_flag;

static void mp_sender(void)
{
    for (int round = 1; round <= 200; round++) {
        /* Wait for the receiver to consume the previous message. */
        while (__atomic_load_n(&mp_flag, __ATOMIC_ACQUIRE) != (uint32_t)(2 * round - 2)) {
        }
        for (int k = 0; k < 256; k++) {
            mp_data[k] = (uint64_t)round * 0x9e3779b97f4a7c15ull + (uint64_t)k;
        }
        __atomic_store_n(&mp_flag, (uint32_t)(2 * round - 1), __ATOMIC_RELEASE);
    }
}

static void mp_receiver(void)
{
    for (int round = 1; round <= 200; round++) {
        while (__atomic_load_n(&mp_flag, __ATOMIC_ACQUIRE) != (uint32_t)(2 * round - 1)) {
        }
        /* The acquire above must make every data write visible. */
        for (int k = 0; k < 256; k++) {
            uint64_t want = (uint64_t)round * 0x9e3779b97f4a7c15ull + (uint64_t)k;
            CHECK(mp_data[k] == want, "round %d: data[%d] stale", round, k);
        }
        __atomic_store_n(&mp_flag, (uint32_t)(2 * round), __ATOMIC_RELEASE);
    }
}

static void *worker(void *arg)
{
    int t = (int)(intptr_t)arg;

    /* Start together so the operations really overlap. */
    pthread_barrier_wait(&start_line);
    work_8(t);
    work_16(t);
    work_32(t);
    work_64(t);
    tas_work();
    if (t == 0) {
        mp_sender();
    } else if (t == 1) {
        mp_receiver();
    }
    return NULL;
}

int main(void)
{
    pthread_t th[NTHREADS];

    CHECK(__atomic_always_lock_free(sizeof(uint32_t), 0), "32-bit not lock free");
    init_8();
    init_16();
    init_32();
    init_64();
    CHECK_PT(pthread_barrier_init(&start_line, NULL, NTHREADS));
    for (int t = 0; t < NTHREADS; t++) {
        CHECK_PT(pthread_create(&th[t], NULL, worker, (void *)(intptr_t)t));
    }
    for (int t = 0; t < NTHREADS; t++) {
        CHECK_PT(pthread_join(th[t], NULL));
    }
    CHECK_PT(pthread_barrier_destroy(&start_line));

    check_8();
    check_16();
    check_32();
    check_64();
    CHECK(tas_counter == (uint64_t)NTHREADS * (ITERS / 2), "tas counter %llu",
          (unsigned long long)tas_counter);
    printf("test_and_set lock: counter %llu exact\n", (unsigned long long)tas_counter);
    CHECK(mp_flag == 400, "message passing ended at flag %u", mp_flag);
    printf("release/acquire: 200 messages of 256 words intact\n");
    guest_pass("atomics");
    return 0;
}
