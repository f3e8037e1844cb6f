/*
 * guest-emit.h - tiny per-ISA machine code for the self-modifying-code
 * guest programs (smc.c, dist-smc-remote.c): ISA_NAME, the function
 * pointer types, and encoders that write a function into a buffer.
 */
#ifndef GUEST_EMIT_H
#define GUEST_EMIT_H

#include <stddef.h>
#include <stdint.h>

typedef int (*fn0_t)(void);
typedef int (*fn2_t)(int, int);

/*
 * Per-ISA encoders.  Each writes a tiny function into buf and returns its
 * size in bytes.  emit_const: int f(void) { return value; } for
 * 0 <= value <= 0xffff.  emit_arith: int f(int a, int b) { return a + b; }
 * (or a - b when sub is set).
 */
#if defined(__aarch64__)

#define ISA_NAME "aarch64"

static inline size_t emit_const(uint32_t *buf, unsigned value)
{
    buf[0] = 0x52800000u | ((value & 0xffffu) << 5);  /* movz w0, #value */
    buf[1] = 0xd65f03c0u;                             /* ret */
    return 8;
}

static inline size_t emit_arith(uint32_t *buf, int sub)
{
    buf[0] = sub ? 0x4b010000u : 0x0b010000u;         /* sub/add w0, w0, w1 */
    buf[1] = 0xd65f03c0u;                             /* ret */
    return 8;
}

#elif defined(__arm__)

#define ISA_NAME "arm"

/*
 * ARM (A32) encodings.  The compiler emits Thumb-2 by default; calling
 * through a function pointer with bit 0 clear uses BLX and switches to
 * ARM state, and "bx lr" switches back.
 */
static inline size_t emit_const(uint32_t *buf, unsigned value)
{
    /* movw r0, #value */
    buf[0] = 0xe3000000u | ((value & 0xf000u) << 4) | (value & 0x0fffu);
    buf[1] = 0xe12fff1eu;                             /* bx lr */
    return 8;
}

static inline size_t emit_arith(uint32_t *buf, int sub)
{
    buf[0] = sub ? 0xe0400001u : 0xe0800001u;         /* sub/add r0, r0, r1 */
    buf[1] = 0xe12fff1eu;                             /* bx lr */
    return 8;
}

/* Thumb: movs r0, #value (0..255); bx lr.  Called with bit 0 set. */
static inline size_t emit_const_thumb(uint16_t *buf, unsigned value)
{
    buf[0] = (uint16_t)(0x2000u | (value & 0xffu));
    buf[1] = 0x4770u;
    return 4;
}

#elif defined(__riscv) && __riscv_xlen == 64

#define ISA_NAME "riscv64"

static inline size_t emit_const(uint32_t *buf, unsigned value)
{
    /* lui a0, hi; addiw a0, a0, lo  with value = (hi << 12) + sext(lo) */
    int32_t v = (int32_t)(value & 0xffffu);
    int32_t hi = (v + 0x800) >> 12;
    int32_t lo = v - (hi << 12);

    buf[0] = ((uint32_t)hi & 0xfffffu) << 12 | (10u << 7) | 0x37u;
    buf[1] = ((uint32_t)lo & 0xfffu) << 20 | (10u << 15) | (10u << 7) | 0x1bu;
    buf[2] = 0x00008067u;                             /* ret */
    return 12;
}

static inline size_t emit_arith(uint32_t *buf, int sub)
{
    buf[0] = sub ? 0x40b5053bu : 0x00b5053bu;         /* subw/addw a0, a0, a1 */
    buf[1] = 0x00008067u;                             /* ret */
    return 8;
}

#else
#error "guest-emit.h: no instruction encoder for this ISA"
#endif

#endif /* GUEST_EMIT_H */
