/*
 * cpu-state-riscv64.c - the fields of an RV64 user thread, in wire order.
 * See cpu-state.h for the format.
 *
 * Shipped: x1-x31 (x4 is tp, the TLS pointer), pc, f0-f31 (64 bits each,
 * NaN-boxed singles included), frm and fflags (fcsr; fflags through
 * riscv_cpu_get_fflags/set_fflags, as QEMU keeps them in float_status),
 * the vector state when the CPU has V or a Zve* subset (v0-v31 at the
 * CPU's VLEN, vtype, vill, vl, vstart, vxrm, vxsat), Zicfilp's ELP,
 * Zicfiss's shadow stack pointer, Zcmt's JVT, the envcfg registers that
 * gate user features (the kernel's per-thread controls), and the ELF
 * header flags the loader recorded (RVE ABI).
 *
 * The default dqemu-riscv64 CPU (rv64) has no V: the vector section is
 * then absent.  With -cpu max (VLEN 256) or any Zve*, VLEN is a shape
 * field and must equal the destination's (-cpu ...,vlen=N on both).
 *
 * Left out, and why that is safe:
 *  - x0: hard-wired zero.
 *  - load_res/load_val (the LR reservation): cleared on load
 *    (load_res = -1).  A thread moves only at a syscall or before its
 *    first instruction, and the ISA lets any trap kill a reservation
 *    (Linux's trap return does), so an SC after the move fails and the
 *    guest's LR/SC loop retries.
 *  - fp_status: its rounding mode is re-derived from frm by every FP
 *    instruction, its flags are fflags (shipped).
 *  - priv (always U), misa, xl, mstatus-like and all S/M/H-mode CSRs,
 *    priv_ver, vext_ver: set by the CPU model and cpu_reset() for user mode
 *    and not writable from U mode; in user mode QEMU has no mstatus (FS
 *    and VS are always on).
 *  - gprh, retxh: RV128 only.  badaddr, bins, excp_uw2, sw_check_code:
 *    describe an exception in flight, and none is at a move.
 *  - timers, rdtime_fn, breakpoints/watchpoints: host pointers or system
 *    mode only.
 */
#include "qemu/osdep.h"
#include "qemu.h"
#include "cpu-state.h"

const DistCpuStateIsa dist_cpu_state_isa = DIST_CPU_STATE_ISA_RISCV64;

/* Optional register files, as the "features" shape field. */
#define DIST_RISCV_HAS_VECTOR  (1u << 0)

static uint32_t dist_riscv_features(CPURISCVState *env)
{
    const RISCVCPUConfig *cfg = riscv_cpu_cfg(env);

    if (riscv_has_ext(env, RVV) || cfg->ext_zve32x) {
        return DIST_RISCV_HAS_VECTOR;
    }
    return 0;
}

static void dist_riscv_visit_vector(DistCpuVisitor *v, CPURISCVState *env)
{
    uint32_t vlenb = riscv_cpu_cfg(env)->vlenb;
    uint32_t words;
    int i, j;

    vlenb = dist_cpu_visit_shape(v, "vlenb", vlenb, RV_VLEN_MAX / 8);
    if (dist_cpu_visit_decodes(v) && vlenb != riscv_cpu_cfg(env)->vlenb) {
        dist_cpu_visit_fail(v, -EINVAL, "vlenb");
    }
    if (vlenb % 8) {
        dist_cpu_visit_fail(v, -EBADMSG, "vlenb");
    }
    if (v->error) {
        return;
    }
    /* Register i is the vlenb bytes at vreg[i * vlenb / 8]. */
    words = vlenb / 8;
    for (i = 0; i < 32; i++) {
        for (j = 0; j < words; j++) {
            dist_cpu_visit_u64_bits(v, "v", i, j, UINT64_MAX,
                                    &env->vreg[i * words + j]);
        }
    }
    dist_cpu_visit_u64(v, "vtype", -1, &env->vtype);
    dist_cpu_visit_bool(v, "vill", &env->vill);
    dist_cpu_visit_u64(v, "vl", -1, &env->vl);
    dist_cpu_visit_u64(v, "vstart", -1, &env->vstart);
    dist_cpu_visit_u64_bits(v, "vxrm", -1, -1, 3, &env->vxrm);
    dist_cpu_visit_u64_bits(v, "vxsat", -1, -1, 1, &env->vxsat);
}

void dist_cpu_state_visit_isa(DistCpuVisitor *v, CPUArchState *env)
{
    uint32_t here = dist_riscv_features(env);
    uint32_t features;
    uint64_t fflags;
    int i;

    /* Flags, not a count: any value is well formed, it must match. */
    features = dist_cpu_visit_shape(v, "features", here, 0);
    if (dist_cpu_visit_decodes(v) && features != here) {
        dist_cpu_visit_fail(v, -EINVAL, "features");
    }

    for (i = 1; i < 32; i++) {
        dist_cpu_visit_u64(v, "x", i, &env->gpr[i]);
    }
    dist_cpu_visit_u64(v, "pc", -1, &env->pc);
    dist_cpu_visit_u64_array(v, "f", env->fpr, 32);
    dist_cpu_visit_u64_bits(v, "frm", -1, -1, 7, &env->frm);
    fflags = riscv_cpu_get_fflags(env);
    dist_cpu_visit_u64_bits(v, "fflags", -1, -1, 0x1f, &fflags);
    if (dist_cpu_visit_stores(v)) {
        riscv_cpu_set_fflags(env, fflags);
    }

    dist_cpu_visit_bool(v, "elp", &env->elp);
    dist_cpu_visit_u64(v, "ssp", -1, &env->ssp);
    dist_cpu_visit_u64(v, "jvt", -1, &env->jvt);
    dist_cpu_visit_u64(v, "senvcfg", -1, &env->senvcfg);
    dist_cpu_visit_u64(v, "menvcfg", -1, &env->menvcfg);
    dist_cpu_visit_u32(v, "elf_flags", -1, &env->elf_flags);

    if (features & DIST_RISCV_HAS_VECTOR) {
        dist_riscv_visit_vector(v, env);
    }

    if (dist_cpu_visit_stores(v)) {
        env->load_res = -1;
    }
}

void dist_cpu_set_syscall_return(CPUArchState *env, abi_long ret)
{
    env->gpr[xA0] = ret;
}
