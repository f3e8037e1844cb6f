/*
 * exclusive: every hand-written exclusive and atomic sequence of at-seq.h
 * for this ISA, raced by THREADS threads for ROUNDS rounds on naturally
 * aligned counters, with exact results (at-ops.h runs and checks them).
 *
 * The compiler's builtins (counters.c) pick one sequence per operation;
 * these are the others a guest may use: byte, halfword, word, doubleword
 * and pair exclusives, acquire/release forms, LSE atomics, riscv64 AMOs
 * and the masked byte sequence, arm's kernel user helpers.  The pairs
 * (ldrexd, ldxp, caspal) add with a shift so that the carry crosses
 * halves.  Each thread also keeps its own byte of a shared array with the
 * ISA's narrowest exclusive sequence.
 */
#include "at-ops.h"
#include "at-seq.h"

static const struct at_op ops[] = {
#if defined(__arm__)
    { "ldrexb/strexb u8", 8, 0, 0, seq_ldrexb },
    { "ldrexh/strexh u16", 16, 0, 0, seq_ldrexh },
    { "ldrex/strex u32", 32, 0, 0, seq_ldrex },
    { "ldrexd/strexd u64", 64, 30, 0, seq_ldrexd },
    { "kuser_cmpxchg u32", 32, 0, 0, seq_kuser_cmpxchg },
    { "kuser_cmpxchg64 u64", 64, 30, 0, seq_kuser_cmpxchg64 },
#elif defined(__aarch64__)
    { "ldxrb/stxrb u8", 8, 0, 0, seq_ldxrb },
    { "ldxrh/stxrh u16", 16, 0, 0, seq_ldxrh },
    { "ldxr/stxr u32", 32, 0, 0, seq_ldxr_w },
    { "ldaxr/stlxr u32", 32, 0, 0, seq_ldaxr_w },
    { "ldxr/stxr u64", 64, 0, 0, seq_ldxr_x },
    { "ldxp/stxp w u64", 64, 25, 0, seq_ldxp_w },
    { "ldxp/stxp x u128", 128, 56, 0, seq_ldxp_x },
    { "ldaddb u8", 8, 0, 0, seq_ldaddb },
    { "ldaddh u16", 16, 0, 0, seq_ldaddh },
    { "ldadd u32", 32, 0, 0, seq_ldadd_w },
    { "ldaddal u64", 64, 0, 0, seq_ldaddal_x },
    { "cas u32", 32, 0, 0, seq_cas_w },
    { "casal u64", 64, 0, 0, seq_casal_x },
    { "caspal u128", 128, 56, 0, seq_caspal_x },
#else
    { "lr.w/sc.w u32", 32, 0, 0, seq_lr_w },
    { "lr.w.aq/sc.w.rl u32", 32, 0, 0, seq_lr_w_aqrl },
    { "lr.d/sc.d u64", 64, 0, 0, seq_lr_d },
    { "masked lr.w/sc.w u8", 8, 0, 0, seq_lr_w_byte },
    { "amoadd.w u32", 32, 0, 0, seq_amoadd_w },
    { "amoadd.w.aqrl u32", 32, 0, 0, seq_amoadd_w_aqrl },
    { "amoadd.d u64", 64, 0, 0, seq_amoadd_d },
    { "amoadd.d.aqrl u64", 64, 0, 0, seq_amoadd_d_aqrl },
#endif
};

int main(int argc, char **argv)
{
#if defined(__arm__)
    /* __kuser_cmpxchg64 exists from version 5 of the helpers on. */
    CHECK(KUSER_HELPER_VERSION >= 5, "kuser helper version %d, want >= 5",
          (int)KUSER_HELPER_VERSION);
#endif
    return at_ops_main(argc, argv, "exclusive", AT_ISA, ops,
                       (int)(sizeof(ops) / sizeof(ops[0])), seq_lane_add);
}
