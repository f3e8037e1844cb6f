/*
 * cpu-state-arm.c - the fields of a 32-bit Arm (AArch32, A profile) user
 * thread, in wire order.  See cpu-state.h for the format.
 *
 * Shipped: r0-r15, the CPSR (flags, Q, GE, IT, T, E, and the rest of its
 * user-visible bits; the mode stays USR), d0-d31 (the VFP/NEON file, as
 * vfp.zregs[0..15]), the FPSCR through vfp_get_fpscr/vfp_set_fpscr (so
 * QC, LEN/STRIDE and the cumulative flags that QEMU keeps in float_status
 * travel too), both user TLS registers (TPIDRURO, set by the set_tls
 * syscall, and TPIDRURW), SCTLR (the kernel's per-process bits, e.g.
 * SCTLR.B/E0E for BE8 images), the OABI/EABI flag of the last syscall,
 * ThumbEE's TEECR/TEEHBR, and iwMMXt's registers on CPUs that have it.
 *
 * Left out, and why that is safe:
 *  - banked registers (banked_r13/r14/spsr, usr_regs, fiq_regs, spsr,
 *    elr_el, sp_el): a user thread never leaves USR mode, so only regs[]
 *    is live.
 *  - exclusive_addr/val/high: the load clears the monitor
 *    (exclusive_addr = -1).  A thread moves only at a syscall or before
 *    its first instruction, and Linux clears the local monitor on every
 *    exception return, so a STREX after the move fails exactly as it
 *    would have on real hardware; the guest retries its LDREX loop.
 *  - hflags, fp_status[], vfp.qc, vec_len/stride: derived; rebuilt by
 *    arm_rebuild_hflags() and vfp_set_fpscr() on load.
 *  - FPEXC, FPSID, MVFRx, cp15 ID and control registers other than
 *    SCTLR, cpacr, features: set by the CPU model and cpu_reset() for user
 *    mode, and not writable from PL0; the destination CPU has the same.
 *  - generic timer and PMU counters: read from the host clock, not state.
 *  - cpu_breakpoint/cpu_watchpoint/tlb_fi, pmsav7/pmsav8/sau pointers:
 *    host pointers (debug state and M-profile MPU), meaningless elsewhere.
 *  - v7m, exception, serror, irq_line_state: M profile or system mode.
 *  - TaskState's FPA (nwfpe) registers: only pre-EABI binaries using FPA
 *    instructions have any; not supported across nodes.
 */
#include "qemu/osdep.h"
#include "qemu.h"
#include "cpu-state.h"

const DistCpuStateIsa dist_cpu_state_isa = DIST_CPU_STATE_ISA_ARM;

/* Optional register files, as the "features" shape field. */
#define DIST_ARM_HAS_IWMMXT  (1u << 0)

static uint32_t dist_arm_features(CPUARMState *env)
{
    return arm_feature(env, ARM_FEATURE_IWMMXT) ? DIST_ARM_HAS_IWMMXT : 0;
}

static void dist_arm_visit_iwmmxt(DistCpuVisitor *v, CPUARMState *env)
{
    dist_cpu_visit_u64_array(v, "iwmmxt.regs", env->iwmmxt.regs, 16);
    dist_cpu_visit_u64(v, "iwmmxt.val", -1, &env->iwmmxt.val);
    dist_cpu_visit_u32_array(v, "iwmmxt.cregs", env->iwmmxt.cregs, 16);
}

void dist_cpu_state_visit_isa(DistCpuVisitor *v, CPUArchState *env)
{
    uint32_t here = dist_arm_features(env);
    uint32_t features, cpsr, fpscr;
    int i;

    /* Flags, not a count: any value is well formed, it must match. */
    features = dist_cpu_visit_shape(v, "features", here, 0);
    if (dist_cpu_visit_decodes(v) && features != here) {
        dist_cpu_visit_fail(v, -EINVAL, "features");
    }

    dist_cpu_visit_u32_array(v, "r", env->regs, 16);

    /* The mode bits are not shipped: a user thread is always in USR. */
    cpsr = cpsr_read(env) & ~CPSR_M;
    dist_cpu_visit_u32_bits(v, "cpsr", -1, ~CPSR_M, &cpsr);
    if (dist_cpu_visit_stores(v)) {
        cpsr_write(env, cpsr, ~CPSR_M, CPSRWriteRaw);
    }

    for (i = 0; i < 32; i++) {
        dist_cpu_visit_u64(v, "d", i, aa32_vfp_dreg(env, i));
    }
    fpscr = vfp_get_fpscr(env);
    dist_cpu_visit_u32(v, "fpscr", -1, &fpscr);
    if (dist_cpu_visit_stores(v)) {
        vfp_set_fpscr(env, fpscr);
    }

    dist_cpu_visit_u64(v, "tpidruro", -1, &env->cp15.tpidrro_el[0]);
    dist_cpu_visit_u64(v, "tpidrurw", -1, &env->cp15.tpidr_el[0]);
    dist_cpu_visit_u64(v, "sctlr", -1, &env->cp15.sctlr_el[1]);
    dist_cpu_visit_bool(v, "eabi", &env->eabi);
    dist_cpu_visit_u32_bits(v, "teecr", -1, 1, &env->teecr);
    dist_cpu_visit_u32(v, "teehbr", -1, &env->teehbr);

    if (features & DIST_ARM_HAS_IWMMXT) {
        dist_arm_visit_iwmmxt(v, env);
    }

    if (dist_cpu_visit_stores(v)) {
        env->exclusive_addr = -1;
        arm_rebuild_hflags(env);
    }
}

void dist_cpu_set_syscall_return(CPUArchState *env, abi_long ret)
{
    env->regs[0] = ret;
}
