/*
 * hostinsn.c - recognise a faulting host atomic (hostinsn.h).
 *
 * Only the prefix bytes and the first opcode byte matter: LOCK (F0) may
 * sit anywhere among the legacy prefixes, a REX byte (40-4F) comes last
 * before the opcode, and XCHG (86, 87) is locked whenever its ModRM byte
 * names memory (mod != 3).  VEX and EVEX encodings (C4, C5, 62) have no
 * locked forms.
 */
#include "hostinsn.h"

static bool is_legacy_prefix(uint8_t b)
{
    switch (b) {
    case 0xf0:                  /* LOCK */
    case 0xf2: case 0xf3:       /* REPNE, REP */
    case 0x2e: case 0x36: case 0x3e: case 0x26: case 0x64: case 0x65:
    case 0x66: case 0x67:       /* operand and address size */
        return true;
    default:
        return false;
    }
}

bool dq_host_insn_is_atomic(const uint8_t *insn)
{
    bool lock = false;
    int i = 0;

    while (i < DQ_HOST_INSN_MAX - 1 && is_legacy_prefix(insn[i])) {
        lock |= insn[i] == 0xf0;
        i++;
    }
    if (lock) {
        return true;
    }
    if ((insn[i] & 0xf0) == 0x40 && i < DQ_HOST_INSN_MAX - 2) {
        i++;                    /* REX */
    }
    if (insn[i] == 0x86 || insn[i] == 0x87) {
        return (insn[i + 1] >> 6) != 3;
    }
    return false;
}
