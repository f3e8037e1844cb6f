/*
 * counters: THREADS threads race on shared 8, 16, 32 and 64-bit counters
 * for ROUNDS rounds with the compiler's atomic builtins, and every final
 * value must be exact.
 *
 * Per round, thread t (0-based) does on each width:
 *   add      fetch_add(t + 1)                     -> R * T(T+1)/2
 *   sub      fetch_sub(1)                         -> -R * T
 *   strong   a strong compare-exchange loop, +3   -> 3 * R * T
 *   weak     a weak compare-exchange loop, +5     -> 5 * R * T
 *   lane[t]  fetch_add(1) on its own element of   -> R each
 *            an array the threads share words of
 * all modulo 2^width: the narrow counters wrap, which is part of what is
 * checked.  The lanes catch a narrow atomic implemented as a wider
 * read-modify-write that writes a neighbour's stale value back (e.g.
 * riscv64's masked lr.w/sc.w sequences for 8/16-bit operations).
 *
 * All the counters of all widths live on one page, so on several nodes
 * every operation fights for the same page.
 */
#include "at-common.h"

static struct at_args args;

#define DEFINE_WIDTH(T, BITS)                                                   \
    static struct {                                                             \
        T add, sub, strong, weak;                                               \
        T lane[AT_MAX_THREADS];                                                 \
    } c##BITS;                                                                  \
                                                                                \
    static void cas_add_##BITS(T *p, T delta, int weak, const char *what)      \
    {                                                                           \
        struct at_spin s = AT_SPIN_INIT;                                        \
        T old = __atomic_load_n(p, __ATOMIC_RELAXED);                           \
        /* A failed exchange stores the current value into old. */              \
        while (!__atomic_compare_exchange_n(p, &old, (T)(old + delta), weak,   \
                                            __ATOMIC_ACQ_REL,                   \
                                            __ATOMIC_RELAXED)) {                \
            at_spin(&s, what);                                                  \
        }                                                                       \
    }                                                                           \
                                                                                \
    static void round_##BITS(int t)                                             \
    {                                                                           \
        __atomic_fetch_add(&c##BITS.add, (T)(t + 1), __ATOMIC_SEQ_CST);         \
        __atomic_fetch_sub(&c##BITS.sub, (T)1, __ATOMIC_RELAXED);               \
        cas_add_##BITS(&c##BITS.strong, 3, 0, #BITS "-bit strong CAS loop");    \
        cas_add_##BITS(&c##BITS.weak, 5, 1, #BITS "-bit weak CAS loop");        \
        __atomic_fetch_add(&c##BITS.lane[t], (T)1, __ATOMIC_RELAXED);           \
    }                                                                           \
                                                                                \
    static int check_##BITS(void)                                               \
    {                                                                           \
        uint64_t r = (uint64_t)args.rounds, n = (uint64_t)args.threads;         \
        struct { const char *name; uint64_t got, want; } v[] = {                \
            { "add", c##BITS.add, (T)(r * n * (n + 1) / 2) },                   \
            { "sub", c##BITS.sub, (T)(0 - r * n) },                             \
            { "strong", c##BITS.strong, (T)(3 * r * n) },                       \
            { "weak", c##BITS.weak, (T)(5 * r * n) },                           \
        };                                                                      \
        int bad = 0, lanes_bad = 0;                                             \
                                                                                \
        printf("u%d:", BITS);                                                   \
        for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {                 \
            printf(" %s=%llu", v[i].name, (unsigned long long)v[i].got);        \
        }                                                                       \
        for (int t = 0; t < args.threads; t++) {                                \
            if (c##BITS.lane[t] != (T)r) {                                      \
                printf(" lane%d=%llu", t, (unsigned long long)c##BITS.lane[t]); \
                lanes_bad = 1;                                                  \
            }                                                                   \
        }                                                                       \
        printf("%s\n", lanes_bad ? "" : " lanes=ok");                           \
        for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {                 \
            if (v[i].got != v[i].want) {                                        \
                printf("FAIL u%d %s: want %llu, got %llu\n", BITS, v[i].name,   \
                       (unsigned long long)v[i].want,                           \
                       (unsigned long long)v[i].got);                           \
                bad = 1;                                                        \
            }                                                                   \
        }                                                                       \
        if (lanes_bad) {                                                        \
            printf("FAIL u%d lanes: want %llu in each of %d\n", BITS,          \
                   (unsigned long long)(T)r, args.threads);                     \
        }                                                                       \
        return bad | lanes_bad;                                                 \
    }

DEFINE_WIDTH(uint8_t, 8)
DEFINE_WIDTH(uint16_t, 16)
DEFINE_WIDTH(uint32_t, 32)
DEFINE_WIDTH(uint64_t, 64)

static void worker(int t)
{
    for (int i = 0; i < args.rounds; i++) {
        round_8(t);
        round_16(t);
        round_32(t);
        round_64(t);
    }
}

int main(int argc, char **argv)
{
    int bad;

    args = at_parse_args(argc, argv, 1);
    printf("counters: threads=%d rounds=%d\n", args.threads, args.rounds);
    at_run_threads(args.threads, worker);
    bad = check_8() | check_16() | check_32() | check_64();
    if (bad) {
        fflush(stdout);
        return 1;
    }
    guest_pass("counters");
    return 0;
}
