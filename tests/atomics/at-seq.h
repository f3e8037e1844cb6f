/*
 * at-seq.h - hand-written exclusive and atomic instruction sequences, one
 * "add d at p" function each, per ISA (exclusive.c runs them all on
 * aligned counters, excp-atomic.c some of them off alignment).
 *
 *   arm      ldrexb/strexb, ldrexh/strexh, ldrex/strex, ldrexd/strexd,
 *            and the kernel's user helpers __kuser_cmpxchg and
 *            __kuser_cmpxchg64 (QEMU runs those in its cpu loop with a
 *            host compare-and-swap, not in translated code)
 *   aarch64  ldxrb/stxrb, ldxrh/stxrh, ldxr/stxr (w, x), ldaxr/stlxr,
 *            ldxp/stxp (w pair, x pair), and LSE ldaddb, ldaddh, ldadd
 *            (w), ldaddal (x), cas (w) and casal (x) loops, caspal (x pair)
 *   riscv64  lr.w/sc.w, lr.w.aq/sc.w.rl, lr.d/sc.d, a masked lr.w/sc.w on
 *            one byte (the sequence compilers emit for 8-bit atomics),
 *            amoadd.w, amoadd.w.aqrl, amoadd.d, amoadd.d.aqrl
 *
 * Every exclusive sequence is one asm statement (load-exclusive to
 * store-exclusive with no compiler-generated memory access between, as
 * the architectures require) that reports whether the store failed; the
 * retry loop is in C, bounded by at_spin().  Compare-and-swap loops
 * retry with the value the failed swap returned.
 */
#ifndef DQEMU_AT_SEQ_H
#define DQEMU_AT_SEQ_H

#include "at-common.h"

/* Retry @attempt (non-zero when the store-exclusive failed) until done. */
#define AT_RETRY(attempt, what)                     \
    do {                                            \
        struct at_spin spin_ = AT_SPIN_INIT;        \
        while (attempt) {                           \
            at_spin(&spin_, what);                  \
        }                                           \
    } while (0)

/* ---- arm ------------------------------------------------------------- */
#if defined(__arm__)

#define AT_ISA "arm"

static inline int ldrexb_try(void *p, uint32_t d)
{
    uint32_t v, fail;

    __asm__ volatile("ldrexb %[v], [%[p]]\n\t"
                     "add    %[v], %[v], %[d]\n\t"
                     "strexb %[fail], %[v], [%[p]]"
                     : [v] "=&r"(v), [fail] "=&r"(fail)
                     : [p] "r"(p), [d] "r"(d)
                     : "memory", "cc");
    return fail != 0;
}

static inline void seq_ldrexb(void *p, uint64_t d)
{
    AT_RETRY(ldrexb_try(p, (uint32_t)d), "ldrexb/strexb");
}

static inline int ldrexh_try(void *p, uint32_t d)
{
    uint32_t v, fail;

    __asm__ volatile("ldrexh %[v], [%[p]]\n\t"
                     "add    %[v], %[v], %[d]\n\t"
                     "strexh %[fail], %[v], [%[p]]"
                     : [v] "=&r"(v), [fail] "=&r"(fail)
                     : [p] "r"(p), [d] "r"(d)
                     : "memory", "cc");
    return fail != 0;
}

static inline void seq_ldrexh(void *p, uint64_t d)
{
    AT_RETRY(ldrexh_try(p, (uint32_t)d), "ldrexh/strexh");
}

static inline int ldrex_try(void *p, uint32_t d)
{
    uint32_t v, fail;

    __asm__ volatile("ldrex %[v], [%[p]]\n\t"
                     "add   %[v], %[v], %[d]\n\t"
                     "strex %[fail], %[v], [%[p]]"
                     : [v] "=&r"(v), [fail] "=&r"(fail)
                     : [p] "r"(p), [d] "r"(d)
                     : "memory", "cc");
    return fail != 0;
}

static inline void seq_ldrex(void *p, uint64_t d)
{
    AT_RETRY(ldrex_try(p, (uint32_t)d), "ldrex/strex");
}

/* %H names the second register of a 64-bit operand's pair (the pair
 * ldrexd/strexd need), %Q and %R its low and high words. */
static inline int ldrexd_try(void *p, uint64_t d)
{
    uint64_t v;
    uint32_t fail;

    __asm__ volatile("ldrexd %[v], %H[v], [%[p]]\n\t"
                     "adds   %Q[v], %Q[v], %Q[d]\n\t"
                     "adc    %R[v], %R[v], %R[d]\n\t"
                     "strexd %[fail], %[v], %H[v], [%[p]]"
                     : [v] "=&r"(v), [fail] "=&r"(fail)
                     : [p] "r"(p), [d] "r"(d)
                     : "memory", "cc");
    return fail != 0;
}

static inline void seq_ldrexd(void *p, uint64_t d)
{
    AT_RETRY(ldrexd_try(p, d), "ldrexd/strexd");
}

/*
 * The kernel user helpers (Linux's Documentation/arch/arm/
 * kernel_user_helpers.rst): both return 0 when *ptr held the old value
 * and now holds the new one.
 */
typedef int (*kuser_cmpxchg_t)(int32_t oldval, int32_t newval, volatile int32_t *ptr);
typedef int (*kuser_cmpxchg64_t)(const int64_t *oldval, const int64_t *newval,
                                 volatile int64_t *ptr);
#define KUSER_HELPER_VERSION (*(volatile int32_t *)0xffff0ffc)
#define KUSER_CMPXCHG   ((kuser_cmpxchg_t)0xffff0fc0)
#define KUSER_CMPXCHG64 ((kuser_cmpxchg64_t)0xffff0f60)

static inline void seq_kuser_cmpxchg(void *p, uint64_t d)
{
    volatile int32_t *w = p;
    struct at_spin spin = AT_SPIN_INIT;
    int32_t old = *w;

    while (KUSER_CMPXCHG(old, (int32_t)((uint32_t)old + (uint32_t)d), w) != 0) {
        at_spin(&spin, "__kuser_cmpxchg");
        old = *w;
    }
}

static inline void seq_kuser_cmpxchg64(void *p, uint64_t d)
{
    volatile int64_t *w = p;
    struct at_spin spin = AT_SPIN_INIT;

    for (;;) {
        /* A plain 64-bit load may tear; a torn value only makes the
         * helper fail and the loop retry. */
        int64_t old = *w, new = (int64_t)((uint64_t)old + d);

        if (KUSER_CMPXCHG64(&old, &new, w) == 0) {
            return;
        }
        at_spin(&spin, "__kuser_cmpxchg64");
    }
}

/* The narrowest exclusive sequence, for the byte lanes. */
static inline void seq_lane_add(uint8_t *p)
{
    AT_RETRY(ldrexb_try(p, 1), "ldrexb/strexb lane");
}

/* ---- aarch64 --------------------------------------------------------- */
#elif defined(__aarch64__)

#define AT_ISA "aarch64"

/* LSE instructions without building the whole file for ARMv8.1. */
#define LSE ".arch_extension lse\n\t"

static inline int ldxrb_try(void *p, uint32_t d)
{
    uint32_t v, fail;

    __asm__ volatile("ldxrb %w[v], [%[p]]\n\t"
                     "add   %w[v], %w[v], %w[d]\n\t"
                     "stxrb %w[fail], %w[v], [%[p]]"
                     : [v] "=&r"(v), [fail] "=&r"(fail)
                     : [p] "r"(p), [d] "r"(d)
                     : "memory");
    return fail != 0;
}

static inline void seq_ldxrb(void *p, uint64_t d)
{
    AT_RETRY(ldxrb_try(p, (uint32_t)d), "ldxrb/stxrb");
}

static inline int ldxrh_try(void *p, uint32_t d)
{
    uint32_t v, fail;

    __asm__ volatile("ldxrh %w[v], [%[p]]\n\t"
                     "add   %w[v], %w[v], %w[d]\n\t"
                     "stxrh %w[fail], %w[v], [%[p]]"
                     : [v] "=&r"(v), [fail] "=&r"(fail)
                     : [p] "r"(p), [d] "r"(d)
                     : "memory");
    return fail != 0;
}

static inline void seq_ldxrh(void *p, uint64_t d)
{
    AT_RETRY(ldxrh_try(p, (uint32_t)d), "ldxrh/stxrh");
}

static inline int ldxr_w_try(void *p, uint32_t d)
{
    uint32_t v, fail;

    __asm__ volatile("ldxr %w[v], [%[p]]\n\t"
                     "add  %w[v], %w[v], %w[d]\n\t"
                     "stxr %w[fail], %w[v], [%[p]]"
                     : [v] "=&r"(v), [fail] "=&r"(fail)
                     : [p] "r"(p), [d] "r"(d)
                     : "memory");
    return fail != 0;
}

static inline void seq_ldxr_w(void *p, uint64_t d)
{
    AT_RETRY(ldxr_w_try(p, (uint32_t)d), "ldxr/stxr w");
}

static inline int ldaxr_w_try(void *p, uint32_t d)
{
    uint32_t v, fail;

    __asm__ volatile("ldaxr %w[v], [%[p]]\n\t"
                     "add   %w[v], %w[v], %w[d]\n\t"
                     "stlxr %w[fail], %w[v], [%[p]]"
                     : [v] "=&r"(v), [fail] "=&r"(fail)
                     : [p] "r"(p), [d] "r"(d)
                     : "memory");
    return fail != 0;
}

static inline void seq_ldaxr_w(void *p, uint64_t d)
{
    AT_RETRY(ldaxr_w_try(p, (uint32_t)d), "ldaxr/stlxr w");
}

static inline int ldxr_x_try(void *p, uint64_t d)
{
    uint64_t v;
    uint32_t fail;

    __asm__ volatile("ldxr %[v], [%[p]]\n\t"
                     "add  %[v], %[v], %[d]\n\t"
                     "stxr %w[fail], %[v], [%[p]]"
                     : [v] "=&r"(v), [fail] "=&r"(fail)
                     : [p] "r"(p), [d] "r"(d)
                     : "memory");
    return fail != 0;
}

static inline void seq_ldxr_x(void *p, uint64_t d)
{
    AT_RETRY(ldxr_x_try(p, d), "ldxr/stxr x");
}

/* A 64-bit counter as a pair of words: the carry crosses the pair. */
static inline int ldxp_w_try(void *p, uint32_t d)
{
    uint32_t lo, hi, fail;

    __asm__ volatile("ldxp %w[lo], %w[hi], [%[p]]\n\t"
                     "adds %w[lo], %w[lo], %w[d]\n\t"
                     "adc  %w[hi], %w[hi], wzr\n\t"
                     "stxp %w[fail], %w[lo], %w[hi], [%[p]]"
                     : [lo] "=&r"(lo), [hi] "=&r"(hi), [fail] "=&r"(fail)
                     : [p] "r"(p), [d] "r"(d)
                     : "memory", "cc");
    return fail != 0;
}

/* Only the low word is added to: @d must fit 32 bits (64 << 25 does). */
static inline void seq_ldxp_w(void *p, uint64_t d)
{
    AT_RETRY(ldxp_w_try(p, (uint32_t)d), "ldxp/stxp w");
}

/* A 128-bit counter as a pair of doublewords. */
static inline int ldxp_x_try(void *p, uint64_t d)
{
    uint64_t lo, hi;
    uint32_t fail;

    __asm__ volatile("ldxp %[lo], %[hi], [%[p]]\n\t"
                     "adds %[lo], %[lo], %[d]\n\t"
                     "adc  %[hi], %[hi], xzr\n\t"
                     "stxp %w[fail], %[lo], %[hi], [%[p]]"
                     : [lo] "=&r"(lo), [hi] "=&r"(hi), [fail] "=&r"(fail)
                     : [p] "r"(p), [d] "r"(d)
                     : "memory", "cc");
    return fail != 0;
}

static inline void seq_ldxp_x(void *p, uint64_t d)
{
    AT_RETRY(ldxp_x_try(p, d), "ldxp/stxp x");
}

static inline void seq_ldaddb(void *p, uint64_t d)
{
    uint32_t old;

    __asm__ volatile(LSE "ldaddb %w[d], %w[old], [%[p]]"
                     : [old] "=r"(old) : [p] "r"(p), [d] "r"((uint32_t)d)
                     : "memory");
}

static inline void seq_ldaddh(void *p, uint64_t d)
{
    uint32_t old;

    __asm__ volatile(LSE "ldaddh %w[d], %w[old], [%[p]]"
                     : [old] "=r"(old) : [p] "r"(p), [d] "r"((uint32_t)d)
                     : "memory");
}

static inline void seq_ldadd_w(void *p, uint64_t d)
{
    uint32_t old;

    __asm__ volatile(LSE "ldadd %w[d], %w[old], [%[p]]"
                     : [old] "=r"(old) : [p] "r"(p), [d] "r"((uint32_t)d)
                     : "memory");
}

static inline void seq_ldaddal_x(void *p, uint64_t d)
{
    uint64_t old;

    __asm__ volatile(LSE "ldaddal %[d], %[old], [%[p]]"
                     : [old] "=r"(old) : [p] "r"(p), [d] "r"(d)
                     : "memory");
}

/* cas compares with, and returns the old value into, its first register.
 * The first guess is a plain load: off alignment it may tear, which only
 * costs a retry. */
static inline void seq_cas_w(void *p, uint64_t d)
{
    struct at_spin spin = AT_SPIN_INIT;
    uint32_t want;

    memcpy(&want, p, sizeof(want));
    for (;;) {
        uint32_t seen = want;

        __asm__ volatile(LSE "cas %w[seen], %w[new], [%[p]]"
                         : [seen] "+r"(seen)
                         : [p] "r"(p), [new] "r"(want + (uint32_t)d)
                         : "memory");
        if (seen == want) {
            return;
        }
        want = seen;
        at_spin(&spin, "cas w loop");
    }
}

static inline void seq_casal_x(void *p, uint64_t d)
{
    struct at_spin spin = AT_SPIN_INIT;
    uint64_t want;

    memcpy(&want, p, sizeof(want));
    for (;;) {
        uint64_t seen = want;

        __asm__ volatile(LSE "casal %[seen], %[new], [%[p]]"
                         : [seen] "+r"(seen)
                         : [p] "r"(p), [new] "r"(want + d)
                         : "memory");
        if (seen == want) {
            return;
        }
        want = seen;
        at_spin(&spin, "casal x loop");
    }
}

/* caspal wants even-numbered consecutive register pairs: pin them. */
static inline void seq_caspal_x(void *p, uint64_t d)
{
    struct at_spin spin = AT_SPIN_INIT;
    uint64_t want[2];

    memcpy(want, p, sizeof(want));
    for (;;) {
        uint64_t new_lo = want[0] + d, new_hi = want[1] + (new_lo < want[0]);
        register uint64_t c0 __asm__("x4") = want[0];
        register uint64_t c1 __asm__("x5") = want[1];
        register uint64_t n0 __asm__("x6") = new_lo;
        register uint64_t n1 __asm__("x7") = new_hi;

        __asm__ volatile(LSE "caspal %[c0], %[c1], %[n0], %[n1], [%[p]]"
                         : [c0] "+r"(c0), [c1] "+r"(c1)
                         : [n0] "r"(n0), [n1] "r"(n1), [p] "r"(p)
                         : "memory");
        if (c0 == want[0] && c1 == want[1]) {
            return;
        }
        want[0] = c0;
        want[1] = c1;
        at_spin(&spin, "caspal loop");
    }
}

static inline void seq_lane_add(uint8_t *p)
{
    AT_RETRY(ldxrb_try(p, 1), "ldxrb/stxrb lane");
}

/* ---- riscv64 --------------------------------------------------------- */
#elif defined(__riscv) && __riscv_xlen == 64

#define AT_ISA "riscv64"

static inline int lr_w_try(void *p, uint32_t d)
{
    uint64_t v, fail;

    __asm__ volatile("lr.w %[v], (%[p])\n\t"
                     "addw %[v], %[v], %[d]\n\t"
                     "sc.w %[fail], %[v], (%[p])"
                     : [v] "=&r"(v), [fail] "=&r"(fail)
                     : [p] "r"(p), [d] "r"((uint64_t)d)
                     : "memory");
    return fail != 0;
}

static inline void seq_lr_w(void *p, uint64_t d)
{
    AT_RETRY(lr_w_try(p, (uint32_t)d), "lr.w/sc.w");
}

static inline int lr_w_aqrl_try(void *p, uint32_t d)
{
    uint64_t v, fail;

    __asm__ volatile("lr.w.aq %[v], (%[p])\n\t"
                     "addw    %[v], %[v], %[d]\n\t"
                     "sc.w.rl %[fail], %[v], (%[p])"
                     : [v] "=&r"(v), [fail] "=&r"(fail)
                     : [p] "r"(p), [d] "r"((uint64_t)d)
                     : "memory");
    return fail != 0;
}

static inline void seq_lr_w_aqrl(void *p, uint64_t d)
{
    AT_RETRY(lr_w_aqrl_try(p, (uint32_t)d), "lr.w.aq/sc.w.rl");
}

static inline int lr_d_try(void *p, uint64_t d)
{
    uint64_t v, fail;

    __asm__ volatile("lr.d %[v], (%[p])\n\t"
                     "add  %[v], %[v], %[d]\n\t"
                     "sc.d %[fail], %[v], (%[p])"
                     : [v] "=&r"(v), [fail] "=&r"(fail)
                     : [p] "r"(p), [d] "r"(d)
                     : "memory");
    return fail != 0;
}

static inline void seq_lr_d(void *p, uint64_t d)
{
    AT_RETRY(lr_d_try(p, d), "lr.d/sc.d");
}

/*
 * Add @d to the byte at @p with lr.w/sc.w on its aligned word, leaving the
 * other three bytes as they are: (old + inc) is merged into old under the
 * byte's mask with two xors and an and.
 */
static inline int lr_w_byte_try(uint8_t *p, uint32_t d)
{
    uintptr_t a = (uintptr_t)p;
    uint32_t *word = (uint32_t *)(a & ~(uintptr_t)3);
    unsigned shift = (unsigned)(a & 3) * 8;
    uint64_t mask = (uint64_t)0xff << shift, inc = (uint64_t)(d & 0xff) << shift;
    uint64_t v, t, fail;

    __asm__ volatile("lr.w %[v], (%[w])\n\t"
                     "add  %[t], %[v], %[inc]\n\t"
                     "xor  %[t], %[t], %[v]\n\t"
                     "and  %[t], %[t], %[mask]\n\t"
                     "xor  %[t], %[t], %[v]\n\t"
                     "sc.w %[fail], %[t], (%[w])"
                     : [v] "=&r"(v), [t] "=&r"(t), [fail] "=&r"(fail)
                     : [w] "r"(word), [inc] "r"(inc), [mask] "r"(mask)
                     : "memory");
    return fail != 0;
}

static inline void seq_lr_w_byte(void *p, uint64_t d)
{
    AT_RETRY(lr_w_byte_try(p, (uint32_t)d), "masked lr.w/sc.w");
}

static inline void seq_amoadd_w(void *p, uint64_t d)
{
    uint64_t old;

    __asm__ volatile("amoadd.w %[old], %[d], (%[p])"
                     : [old] "=r"(old) : [p] "r"(p), [d] "r"(d) : "memory");
}

static inline void seq_amoadd_w_aqrl(void *p, uint64_t d)
{
    uint64_t old;

    __asm__ volatile("amoadd.w.aqrl %[old], %[d], (%[p])"
                     : [old] "=r"(old) : [p] "r"(p), [d] "r"(d) : "memory");
}

static inline void seq_amoadd_d(void *p, uint64_t d)
{
    uint64_t old;

    __asm__ volatile("amoadd.d %[old], %[d], (%[p])"
                     : [old] "=r"(old) : [p] "r"(p), [d] "r"(d) : "memory");
}

static inline void seq_amoadd_d_aqrl(void *p, uint64_t d)
{
    uint64_t old;

    __asm__ volatile("amoadd.d.aqrl %[old], %[d], (%[p])"
                     : [old] "=r"(old) : [p] "r"(p), [d] "r"(d) : "memory");
}

/* Most lanes sit off a word boundary: the mask must pick the right byte. */
static inline void seq_lane_add(uint8_t *p)
{
    AT_RETRY(lr_w_byte_try(p, 1), "masked lr.w/sc.w lane");
}

#else
#error "at-seq.h: no sequences for this ISA"
#endif

#endif
