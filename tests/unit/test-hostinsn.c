/*
 * Test that dq_host_insn_is_atomic() tells host atomics from plain
 * accesses: on encodings the assembler produced, and on the instruction
 * a real write fault stops at (as dqemu's SIGSEGV hook sees it).
 */
#define _GNU_SOURCE     /* REG_RIP */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>
#include <cmocka.h>

#include "hostinsn.h"

/*
 * Each label names one instruction, encoded by the assembler, followed
 * by padding so the decoder may look ahead without reading past the
 * object.
 */
#define INSN(name, text) \
    ".globl " #name "\n" #name ":\n" text "\n.fill 16, 1, 0x90\n"

__asm__(".pushsection .rodata\n"
        INSN(i_lock_cmpxchg32, "lock cmpxchg %ecx, (%rdx)")
        INSN(i_lock_cmpxchg64, "lock cmpxchg %rcx, 8(%rdx,%rax,4)")
        INSN(i_lock_cmpxchg8,  "lock cmpxchg %cl, (%rdx)")
        INSN(i_lock_cmpxchg16, "lock cmpxchg %cx, (%rdx)")
        INSN(i_lock_cmpxchg16b, "lock cmpxchg16b (%rdi)")
        INSN(i_lock_xadd,      "lock xadd %eax, (%rdi)")
        INSN(i_lock_add,       "lock addq $1, 16(%rsp)")
        INSN(i_lock_or_fs,     "lock orl $4, %fs:(%rax)")
        INSN(i_fs_lock_inc,    "fs lock incl (%rax)")
        INSN(i_lock_bts,       "lock btsq %rax, (%rdi)")
        INSN(i_xchg_mem,       "xchg %eax, (%rdi)")
        INSN(i_xchg_mem_r9,    "xchg %r9, (%r10)")
        INSN(i_xchg_byte_mem,  "xchg %al, (%rdi)")
        INSN(i_xchg_regs,      "xchg %rax, %rbx")
        INSN(i_xchg_regs_b,    "xchg %al, %bl")
        INSN(i_mov_store,      "movl %eax, (%rdi)")
        INSN(i_mov_store16,    "movw %ax, (%rdi)")
        INSN(i_rep_movsb,      "rep movsb")
        INSN(i_cmpxchg_nolock, "cmpxchg %ecx, (%rdx)")
        INSN(i_add_mem,        "addq $1, (%rdi)")
        INSN(i_vmovdqu,        "vmovdqu %ymm0, (%rdi)")
        INSN(i_movdqa,         "movdqa %xmm0, (%rdi)")
        ".popsection\n");

extern const uint8_t i_lock_cmpxchg32[], i_lock_cmpxchg64[], i_lock_cmpxchg8[],
    i_lock_cmpxchg16[], i_lock_cmpxchg16b[], i_lock_xadd[], i_lock_add[],
    i_lock_or_fs[], i_fs_lock_inc[], i_lock_bts[], i_xchg_mem[],
    i_xchg_mem_r9[], i_xchg_byte_mem[], i_xchg_regs[], i_xchg_regs_b[],
    i_mov_store[], i_mov_store16[], i_rep_movsb[], i_cmpxchg_nolock[],
    i_add_mem[], i_vmovdqu[], i_movdqa[];

static void locked_forms_are_atomic(void **state)
{
    (void)state;
    assert_true(dq_host_insn_is_atomic(i_lock_cmpxchg32));
    assert_true(dq_host_insn_is_atomic(i_lock_cmpxchg64));
    assert_true(dq_host_insn_is_atomic(i_lock_cmpxchg8));
    assert_true(dq_host_insn_is_atomic(i_lock_cmpxchg16));
    assert_true(dq_host_insn_is_atomic(i_lock_cmpxchg16b));
    assert_true(dq_host_insn_is_atomic(i_lock_xadd));
    assert_true(dq_host_insn_is_atomic(i_lock_add));
    assert_true(dq_host_insn_is_atomic(i_lock_or_fs));
    assert_true(dq_host_insn_is_atomic(i_fs_lock_inc));
    assert_true(dq_host_insn_is_atomic(i_lock_bts));
}

static void xchg_with_memory_is_atomic_between_registers_not(void **state)
{
    (void)state;
    assert_true(dq_host_insn_is_atomic(i_xchg_mem));
    assert_true(dq_host_insn_is_atomic(i_xchg_mem_r9));
    assert_true(dq_host_insn_is_atomic(i_xchg_byte_mem));
    assert_false(dq_host_insn_is_atomic(i_xchg_regs));
    assert_false(dq_host_insn_is_atomic(i_xchg_regs_b));
}

static void plain_accesses_are_not_atomic(void **state)
{
    (void)state;
    assert_false(dq_host_insn_is_atomic(i_mov_store));
    assert_false(dq_host_insn_is_atomic(i_mov_store16));
    assert_false(dq_host_insn_is_atomic(i_rep_movsb));
    assert_false(dq_host_insn_is_atomic(i_cmpxchg_nolock));
    assert_false(dq_host_insn_is_atomic(i_add_mem));
    assert_false(dq_host_insn_is_atomic(i_vmovdqu));
    assert_false(dq_host_insn_is_atomic(i_movdqa));
}

static void endless_prefixes_stop_at_the_longest_instruction(void **state)
{
    uint8_t junk[DQ_HOST_INSN_MAX + 2];

    (void)state;
    /* 66 repeated: never an opcode, and nothing past 15 bytes is read. */
    memset(junk, 0x66, sizeof(junk));
    junk[DQ_HOST_INSN_MAX] = 0xf0;
    assert_false(dq_host_insn_is_atomic(junk));
}

/* ---- a real fault: what the SIGSEGV hook sees ------------------------- */

static uint8_t *ro_page;
static long page_size;
static volatile int faults;
static volatile bool fault_was_atomic;

static void on_segv(int sig, siginfo_t *si, void *ctx)
{
    ucontext_t *uc = ctx;

    (void)sig;
    (void)si;
    fault_was_atomic =
        dq_host_insn_is_atomic((const uint8_t *)uc->uc_mcontext.gregs[REG_RIP]);
    faults++;
    mprotect(ro_page, page_size, PROT_READ | PROT_WRITE);
}

static void fault_once(void (*access)(uint32_t *))
{
    faults = 0;
    assert_int_equal(mprotect(ro_page, page_size, PROT_READ), 0);
    access((uint32_t *)ro_page);
    assert_int_equal(faults, 1);
}

static void do_cas(uint32_t *p)
{
    uint32_t expected = 0;

    __atomic_compare_exchange_n(p, &expected, 7, false, __ATOMIC_SEQ_CST,
                                __ATOMIC_SEQ_CST);
}

static void do_fetch_add(uint32_t *p)
{
    __atomic_fetch_add(p, 1, __ATOMIC_SEQ_CST);
}

static void do_exchange(uint32_t *p)
{
    __atomic_exchange_n(p, 5, __ATOMIC_SEQ_CST);
}

static void do_store(uint32_t *p)
{
    *(volatile uint32_t *)p = 9;
}

static void faulting_atomics_are_recognised(void **state)
{
    struct sigaction sa, old;

    (void)state;
    page_size = sysconf(_SC_PAGESIZE);
    ro_page = mmap(NULL, page_size, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(ro_page != MAP_FAILED);
    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    assert_int_equal(sigaction(SIGSEGV, &sa, &old), 0);

    fault_once(do_cas);
    assert_true(fault_was_atomic);
    fault_once(do_fetch_add);
    assert_true(fault_was_atomic);
    fault_once(do_exchange);
    assert_true(fault_was_atomic);
    fault_once(do_store);
    assert_false(fault_was_atomic);
    /* The retried instructions completed after the handler. */
    assert_int_equal(*(uint32_t *)ro_page, 9);

    sigaction(SIGSEGV, &old, NULL);
    munmap(ro_page, page_size);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(locked_forms_are_atomic),
        cmocka_unit_test(xchg_with_memory_is_atomic_between_registers_not),
        cmocka_unit_test(plain_accesses_are_not_atomic),
        cmocka_unit_test(endless_prefixes_stop_at_the_longest_instruction),
        cmocka_unit_test(faulting_atomics_are_recognised),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
