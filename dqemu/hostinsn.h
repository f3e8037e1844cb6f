/*
 * hostinsn.h - what kind of host access faulted: is it an atomic
 * read-modify-write?
 *
 * A guest atomic (ldrex/strex, ldxr/stxr, LSE, lr/sc, amo*) becomes a host
 * locked instruction on the guest page, in translated code or in a QEMU
 * helper.  When that instruction faults, the page it needs is wanted for
 * an atomic, and the coherence engine lets the node keep it for a short
 * lease (dsm.h) so that the retried instruction completes before another
 * node can take the page away.  Looking at the faulting instruction is
 * exact and costs nothing on the paths that do not fault; the alternative,
 * marking atomics in every translated block, would cost on every access.
 */
#ifndef DQEMU_HOSTINSN_H
#define DQEMU_HOSTINSN_H

#include <stdbool.h>
#include <stdint.h>

/* Longest x86 instruction: the decoder never reads further. */
#define DQ_HOST_INSN_MAX 15

/*
 * Is the x86-64 instruction at @insn an atomic read-modify-write of
 * memory: any instruction with a LOCK prefix (lock cmpxchg, lock xadd,
 * lock add/or/and/xor/inc/dec/neg/not/bts..., lock cmpxchg8b/16b), or
 * XCHG with a memory operand, which the processor locks by itself?
 * Reads at most DQ_HOST_INSN_MAX bytes, stopping at the opcode.
 * Context: any, signal handlers included (reads only @insn).
 */
bool dq_host_insn_is_atomic(const uint8_t *insn);

#endif /* DQEMU_HOSTINSN_H */
