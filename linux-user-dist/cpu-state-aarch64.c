/*
 * cpu-state-aarch64.c - the fields of an AArch64 user thread, in wire
 * order.  See cpu-state.h for the format.
 *
 * Shipped: x0-x30 and SP (xregs[31], SP_EL0 at EL0), PC, PSTATE through
 * pstate_read/pstate_write (NZCV, DAIF, BTYPE, SSBS, PAN, UAO, DIT, TCO,
 * SS, IL; the mode stays EL0t), FPCR and FPSR through vfp_get_fpcr and
 * friends (QC and the cumulative flags live in vfp.qc and float_status),
 * the vector registers at the current vector length, TPIDR_EL0 and
 * TPIDRRO_EL0 (TLS), and the per-thread controls the kernel sets on the
 * thread's behalf: SCTLR_EL1 (PAC key enables, MTE TCF0, BE), the PAC
 * keys, MTE's GCR_EL1, RGSR_EL1 and pending TFSRE0_EL1, the tagged
 * address ABI flag, SCXTNUM_EL0.
 *
 * Vector state.  Without SVE and SME the Z file is just V0-V31: 128 bits
 * each.  With SVE, Z0-Z31, P0-P15 and FFR are shipped at the current
 * vector length (sve_vq(): ZCR_EL1.LEN, or SMCR_EL1.LEN in streaming
 * mode, clamped to what the CPU supports), and ZCR_EL1 with it; the
 * destination must compute the same length from the same controls or the
 * load fails with -EINVAL (nodes started with different -cpu options).
 * Bits above the length are zeroed on load: the guest cannot see them, and
 * QEMU narrows the same way when the length shrinks.
 *
 * SME: SMCR_EL1, SVCR (PSTATE.SM and PSTATE.ZA) and TPIDR2_EL0 are
 * shipped, and the ZA array when PSTATE.ZA is set: SVL rows of SVL bytes,
 * the part the guest can see.  With PSTATE.ZA clear, ZA is not shipped:
 * turning it on zeroes it.  QEMU 10.0 has no SME2, so there is no ZT0.
 *
 * Left out, and why that is safe:
 *  - exclusive_addr/val/high: cleared on load (exclusive_addr = -1).  A
 *    thread moves only at a syscall or before its first instruction, and
 *    Linux clears the exclusive monitor on exception return, so an STXR
 *    after the move fails exactly as it could on hardware.
 *  - hflags, fp_status[], preg_tmp, vfp.scratch: derived or scratch.
 *  - AArch32 state (regs[], banked registers, uncached_cpsr, iwmmxt):
 *    aarch64-linux-user runs only A64 code.
 *  - elr_el, sp_el, spsr, EL1+ system registers other than those above,
 *    cpacr, tcr, mdscr, features and ID registers: set by the CPU model
 *    and cpu_reset() for user mode and not writable from EL0.
 *  - generic timer and PMU counters: read from the host clock.
 *  - cpu_breakpoint/cpu_watchpoint/tlb_fi and the MPU pointers: host
 *    pointers, meaningless in another process.
 */
#include "qemu/osdep.h"
#include "qemu.h"
#include "target/arm/cpu-features.h"
#include "cpu-state.h"

const DistCpuStateIsa dist_cpu_state_isa = DIST_CPU_STATE_ISA_AARCH64;

/* Optional register files, as the "features" shape field. */
#define DIST_AARCH64_HAS_SVE  (1u << 0)
#define DIST_AARCH64_HAS_SME  (1u << 1)

/* The PSTATE bits the format carries: all but the mode (M[4:0]). */
#define DIST_AARCH64_PSTATE_BITS  (~(uint32_t)(PSTATE_M | PSTATE_nRW))

/* ZCR_EL1 and SMCR_EL1 hold only these bits at EL1 (the rest is RES0). */
#define DIST_AARCH64_ZCR_BITS   0xfu
#define DIST_AARCH64_SMCR_BITS  0x8000000fu
#define DIST_AARCH64_SVCR_BITS  3u

static uint32_t dist_aarch64_features(CPUARMState *env)
{
    ARMCPU *cpu = env_archcpu(env);
    uint32_t features = 0;

    if (cpu_isar_feature(aa64_sve, cpu)) {
        features |= DIST_AARCH64_HAS_SVE;
    }
    if (cpu_isar_feature(aa64_sme, cpu)) {
        features |= DIST_AARCH64_HAS_SME;
    }
    return features;
}

/* Z0-Z31 (V0-V31 without SVE): @vq quadwords of each, zeros above. */
static void dist_aarch64_visit_zregs(DistCpuVisitor *v, CPUARMState *env,
                                     unsigned vq)
{
    int i, j;

    for (i = 0; i < 32; i++) {
        for (j = 0; j < vq * 2; j++) {
            dist_cpu_visit_u64_bits(v, "z", i, j, UINT64_MAX,
                                    &env->vfp.zregs[i].d[j]);
        }
        if (dist_cpu_visit_stores(v)) {
            memset(&env->vfp.zregs[i].d[vq * 2], 0,
                   (ARM_MAX_VQ - vq) * 16);
        }
    }
}

/* P0-P15 and FFR (pregs[16]): 16 bits per quadword of vector length. */
static void dist_aarch64_visit_pregs(DistCpuVisitor *v, CPUARMState *env,
                                     unsigned vq)
{
    unsigned words = DIV_ROUND_UP(vq, 4);
    uint64_t last_bits = vq % 4 ? (1ull << (vq % 4 * 16)) - 1 : UINT64_MAX;
    int i, j;

    for (i = 0; i < ARRAY_SIZE(env->vfp.pregs); i++) {
        for (j = 0; j < words; j++) {
            dist_cpu_visit_u64_bits(v, "p", i, j,
                                    j == words - 1 ? last_bits : UINT64_MAX,
                                    &env->vfp.pregs[i].p[j]);
        }
        if (dist_cpu_visit_stores(v)) {
            memset(&env->vfp.pregs[i].p[words], 0,
                   sizeof(env->vfp.pregs[i]) - words * 8);
        }
    }
}

/* The visible square of ZA: @svq * 16 rows of @svq * 16 bytes. */
static void dist_aarch64_visit_za(DistCpuVisitor *v, CPUARMState *env,
                                  unsigned svq)
{
    int i, j;

    for (i = 0; i < svq * 16; i++) {
        for (j = 0; j < svq * 2; j++) {
            dist_cpu_visit_u64_bits(v, "za", i, j, UINT64_MAX,
                                    &env->zarray[i].d[j]);
        }
    }
}

static void dist_aarch64_visit_pac_key(DistCpuVisitor *v, const char *name,
                                       ARMPACKey *key)
{
    dist_cpu_visit_u64_bits(v, name, 0, -1, UINT64_MAX, &key->lo);
    dist_cpu_visit_u64_bits(v, name, 1, -1, UINT64_MAX, &key->hi);
}

void dist_cpu_state_visit_isa(DistCpuVisitor *v, CPUArchState *env)
{
    uint32_t here = dist_aarch64_features(env);
    uint32_t features, pstate, fpcr, fpsr, vq, svq = 0;
    uint64_t svcr = env->svcr;

    /* Flags, not a count: any value is well formed, it must match. */
    features = dist_cpu_visit_shape(v, "features", here, 0);
    if (dist_cpu_visit_decodes(v) && features != here) {
        dist_cpu_visit_fail(v, -EINVAL, "features");
    }

    dist_cpu_visit_u64_array(v, "x", env->xregs, 32);
    dist_cpu_visit_u64(v, "pc", -1, &env->pc);

    pstate = pstate_read(env) & DIST_AARCH64_PSTATE_BITS;
    dist_cpu_visit_u32_bits(v, "pstate", -1, DIST_AARCH64_PSTATE_BITS,
                            &pstate);
    if (dist_cpu_visit_stores(v)) {
        pstate_write(env, pstate | (env->pstate & ~DIST_AARCH64_PSTATE_BITS));
    }

    fpcr = vfp_get_fpcr(env);
    dist_cpu_visit_u32(v, "fpcr", -1, &fpcr);
    fpsr = vfp_get_fpsr(env);
    dist_cpu_visit_u32(v, "fpsr", -1, &fpsr);
    if (dist_cpu_visit_stores(v)) {
        vfp_set_fpcr(env, fpcr);
        vfp_set_fpsr(env, fpsr);
    }

    dist_cpu_visit_u64(v, "tpidr_el0", -1, &env->cp15.tpidr_el[0]);
    dist_cpu_visit_u64(v, "tpidrro_el0", -1, &env->cp15.tpidrro_el[0]);
    dist_cpu_visit_u64(v, "sctlr_el1", -1, &env->cp15.sctlr_el[1]);
    dist_aarch64_visit_pac_key(v, "apia", &env->keys.apia);
    dist_aarch64_visit_pac_key(v, "apib", &env->keys.apib);
    dist_aarch64_visit_pac_key(v, "apda", &env->keys.apda);
    dist_aarch64_visit_pac_key(v, "apdb", &env->keys.apdb);
    dist_aarch64_visit_pac_key(v, "apga", &env->keys.apga);
    dist_cpu_visit_u64(v, "gcr_el1", -1, &env->cp15.gcr_el1);
    dist_cpu_visit_u64(v, "rgsr_el1", -1, &env->cp15.rgsr_el1);
    dist_cpu_visit_u64(v, "tfsre0_el1", -1, &env->cp15.tfsr_el[0]);
    dist_cpu_visit_bool(v, "tagged_addr_enable", &env->tagged_addr_enable);
    dist_cpu_visit_u64(v, "scxtnum_el0", -1, &env->scxtnum_el[0]);

    if (features & DIST_AARCH64_HAS_SVE) {
        dist_cpu_visit_u64_bits(v, "zcr_el1", -1, -1, DIST_AARCH64_ZCR_BITS,
                                &env->vfp.zcr_el[1]);
    }
    if (features & DIST_AARCH64_HAS_SME) {
        dist_cpu_visit_u64_bits(v, "smcr_el1", -1, -1,
                                DIST_AARCH64_SMCR_BITS, &env->vfp.smcr_el[1]);
        /* Decoded even by CHECK: PSTATE.ZA says whether ZA follows. */
        dist_cpu_visit_field(v, "svcr", -1, -1, 8, DIST_AARCH64_SVCR_BITS,
                             &svcr);
        dist_cpu_visit_u64(v, "tpidr2_el0", -1, &env->cp15.tpidr2_el0);
        if (dist_cpu_visit_stores(v)) {
            env->svcr = svcr;
        }
    }

    /* The vector lengths follow from ZCR/SMCR/SVCR through hflags. */
    if (dist_cpu_visit_stores(v)) {
        arm_rebuild_hflags(env);
    }
    vq = dist_cpu_visit_shape(v, "vq", sve_vq(env), ARM_MAX_VQ);
    if (v->mode == DIST_CPU_VISIT_LOAD && vq != sve_vq(env)) {
        dist_cpu_visit_fail(v, -EINVAL, "vq");
    }
    if (!(features & (DIST_AARCH64_HAS_SVE | DIST_AARCH64_HAS_SME)) &&
        vq != 1) {
        dist_cpu_visit_fail(v, -EBADMSG, "vq");
    }
    if ((features & DIST_AARCH64_HAS_SME) &&
        FIELD_EX64(svcr, SVCR, ZA)) {
        svq = dist_cpu_visit_shape(v, "svq", sme_vq(env), ARM_MAX_VQ);
        if (v->mode == DIST_CPU_VISIT_LOAD && svq != sme_vq(env)) {
            dist_cpu_visit_fail(v, -EINVAL, "svq");
        }
    }
    if (v->error) {
        return;
    }

    dist_aarch64_visit_zregs(v, env, vq);
    if (features & (DIST_AARCH64_HAS_SVE | DIST_AARCH64_HAS_SME)) {
        dist_aarch64_visit_pregs(v, env, vq);
    }
    if (svq) {
        dist_aarch64_visit_za(v, env, svq);
    }

    if (dist_cpu_visit_stores(v)) {
        env->exclusive_addr = -1;
    }
}

void dist_cpu_set_syscall_return(CPUArchState *env, abi_long ret)
{
    env->xregs[0] = ret;
}
