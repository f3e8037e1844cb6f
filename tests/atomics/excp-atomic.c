/*
 * excp-atomic: atomic operations that QEMU cannot do with a host atomic
 * instruction, raced by THREADS threads for ROUNDS rounds, with exact
 * results (at-ops.h runs and checks them).
 *
 * Once a guest has a second thread, QEMU translates atomics into host
 * atomics on the guest's memory.  The host helpers refuse an address that
 * is not a multiple of the access size (accel/tcg/user-exec.c,
 * atomic_mmu_lookup: "Enforce qemu required alignment" ->
 * cpu_loop_exit_atomic), and the vCPU raises EXCP_ATOMIC: the cpu loop
 * re-runs that one instruction through cpu_exec_step_atomic(), translated
 * without CF_PARALLEL (a plain load and store) while start_exclusive()
 * keeps every other vCPU of the process out of guest code.  Guests may
 * issue such accesses where the architecture allows a misaligned atomic:
 *
 *   aarch64  FEAT_LSE2 (in QEMU's default "max" CPU) lets an atomic or
 *            exclusive access sit anywhere inside a 16-byte granule
 *            (target/arm/tcg/translate-a64.c, check_atomic_align ->
 *            check_lse2_align, no MO_ALIGN), so LDADD, CAS and the
 *            store half of LDXR/STXR and LDXP/STXP off their alignment
 *            (but inside the granule) take the exclusive step;
 *   riscv64  Zama16b does the same for AMOs of 32 and 64 bits
 *            (target/riscv/translate.c, gen_amo: MO_ATOM_WITHIN16
 *            instead of MO_ALIGN); it is off by default, so this program
 *            needs -cpu rv64,zama16b=true.  LR/SC always want alignment.
 *
 * arm has none on an x86-64 host: LDREX and STREX (every size) and SWP carry
 * MO_ALIGN (target/arm/tcg/translate.c, gen_load_exclusive,
 * gen_store_exclusive, trans_SWP; SWPB is one byte), LDREXD/STREXD are a
 * host 64-bit cmpxchg (CONFIG_ATOMIC64), and the kernel helpers at
 * 0xffff0fc0/0xffff0f60 are host cmpxchg in linux-user/arm/cpu_loop.c.
 * Nor do aligned 128-bit operations (LDXP/STXP, CASP, riscv64 amocas.q)
 * anywhere: this QEMU is built with CONFIG_CMPXCHG128 (-mcx16), and
 * misaligned ones fault (MO_ALIGN, check_atomic_align).
 *
 * Every counter sits off its natural alignment inside its own 16-byte
 * granule; a CPU without LSE2 or Zama16b raises SIGBUS instead, which a
 * one-thread probe before the race turns into a FAIL line saying so.
 */
#include "at-ops.h"         /* first: at-common.h sets _GNU_SOURCE */
#include "at-seq.h"

#include <signal.h>

static const struct at_op ops[] = {
#if defined(__aarch64__)
    { "ldaddh u16 @1", 16, 0, 1, seq_ldaddh },
    { "ldadd u32 @1", 32, 0, 1, seq_ldadd_w },
    { "ldaddal u64 @4", 64, 0, 4, seq_ldaddal_x },
    { "cas u32 @6", 32, 0, 6, seq_cas_w },
    { "casal u64 @3", 64, 0, 3, seq_casal_x },
    { "ldxrh/stxrh u16 @7", 16, 0, 7, seq_ldxrh },
    { "ldxr/stxr u32 @2", 32, 0, 2, seq_ldxr_w },
    { "ldxr/stxr u64 @5", 64, 0, 5, seq_ldxr_x },
    { "ldxp/stxp w u64 @4", 64, 25, 4, seq_ldxp_w },
#define NEEDS "FEAT_LSE2 (QEMU's default -cpu max has it)"
#elif defined(__riscv)
    { "amoadd.w u32 @1", 32, 0, 1, seq_amoadd_w },
    { "amoadd.w.aqrl u32 @6", 32, 0, 6, seq_amoadd_w_aqrl },
    { "amoadd.d u64 @4", 64, 0, 4, seq_amoadd_d },
    { "amoadd.d.aqrl u64 @7", 64, 0, 7, seq_amoadd_d_aqrl },
#define NEEDS "Zama16b (run with -cpu rv64,zama16b=true)"
#else
#error "excp-atomic.c: no misaligned atomics reach EXCP_ATOMIC on this ISA"
#endif
};

#define NOPS ((int)(sizeof(ops) / sizeof(ops[0])))

static void on_sigbus(int sig)
{
    static const char msg[] =
        "FAIL: a misaligned atomic raised SIGBUS: this CPU lacks " NEEDS "\n";

    (void)sig;
    if (write(1, msg, sizeof(msg) - 1) < 0) {
        /* Nothing left to report it with. */
    }
    _exit(1);
}

int main(int argc, char **argv)
{
    static uint8_t probe[16] __attribute__((aligned(16)));
    struct sigaction sa = { .sa_handler = on_sigbus };

    /* One thread: QEMU runs these inline (no EXCP_ATOMIC yet), but checks
     * the guest's alignment rules just the same. */
    CHECK_SYS(sigaction(SIGBUS, &sa, NULL));
    for (int k = 0; k < NOPS; k++) {
        ops[k].add(&probe[ops[k].offset], 1);
        memset(probe, 0, sizeof(probe));
    }
    sa.sa_handler = SIG_DFL;
    CHECK_SYS(sigaction(SIGBUS, &sa, NULL));

    return at_ops_main(argc, argv, "excp-atomic", AT_ISA, ops, NOPS, NULL);
}
