/* Test that generated and then rewritten machine code runs its newest version (W^X flips, RWX, threads, remaps). */
#define _GNU_SOURCE
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <sys/mman.h>

#include "guest-check.h"
#include "guest-emit.h"

static size_t pagesz;

static void flush(void *p, size_t len)
{
    __builtin___clear_cache((char *)p, (char *)p + len);
}

static fn0_t as_fn0(void *p)
{
    return (fn0_t)(uintptr_t)p;
}

static fn2_t as_fn2(void *p)
{
    return (fn2_t)(uintptr_t)p;
}

/* Values that change in every bit position over the iterations. */
static unsigned value_for(int i)
{
    return (unsigned)(i * 7919 + 13) & 0xffffu;
}

static void *map_code(int prot)
{
    void *p = mmap(NULL, pagesz, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    CHECK(p != MAP_FAILED, "mmap: %s", strerror(errno));
    return p;
}

/* Strict W^X: every rewrite goes RW -> write -> RX -> call. */
static void test_wx_flip(void)
{
    uint32_t *code = map_code(PROT_READ | PROT_WRITE);
    uint64_t sum = 0, want = 0;

    for (int i = 0; i < 100; i++) {
        unsigned v = value_for(i);
        CHECK_SYS(mprotect(code, pagesz, PROT_READ | PROT_WRITE));
        size_t len = emit_const(code, v);
        CHECK_SYS(mprotect(code, pagesz, PROT_READ | PROT_EXEC));
        flush(code, len);
        int got = as_fn0(code)();
        CHECK(got == (int)v, "W^X round %d: got %d, want %u", i, got, v);
        /* Call it again so the translation is reused before the rewrite. */
        CHECK(as_fn0(code)() == (int)v, "W^X round %d: second call", i);
        sum += (unsigned)got;
        want += v;
    }
    CHECK(sum == want, "W^X sum");
    CHECK_SYS(munmap(code, pagesz));
    printf("W^X: 100 rewrites, each call returned the new value (sum %llu)\n",
           (unsigned long long)sum);
}

/* RWX page rewritten in place without any mprotect, after hot use. */
static void test_rwx_inplace(void)
{
    uint32_t *code = map_code(PROT_READ | PROT_WRITE | PROT_EXEC);
    uint32_t *other = code + 32;   /* second function, same page */
    size_t olen = emit_const(other, 4242);

    flush(other, olen);
    for (int i = 0; i < 200; i++) {
        unsigned v = value_for(i + 1000);
        size_t len = emit_const(code, v);
        flush(code, len);
        /* Many calls make the code hot (and chained) before the next rewrite. */
        for (int k = 0; k < 20; k++) {
            int got = as_fn0(code)();
            CHECK(got == (int)v, "RWX round %d call %d: got %d, want %u", i, k, got, v);
        }
        CHECK(as_fn0(other)() == 4242, "neighbour function changed");
    }
    CHECK_SYS(munmap(code, pagesz));
    printf("RWX: 200 in-place rewrites, neighbour on the same page intact\n");
}

/* Arguments flow through generated code; flipping add to sub takes effect. */
static void test_arith_patch(void)
{
    uint32_t *code = map_code(PROT_READ | PROT_WRITE | PROT_EXEC);

    for (int i = 0; i < 50; i++) {
        int sub = i & 1;
        size_t len = emit_arith(code, sub);
        flush(code, len);
        int a = 1000 + i * 37, b = i * 11 - 7;
        int got = as_fn2(code)(a, b);
        int want = sub ? a - b : a + b;
        CHECK(got == want, "%s(%d, %d) = %d, want %d", sub ? "sub" : "add", a, b, got,
              want);
    }
    CHECK_SYS(munmap(code, pagesz));
    printf("arith: add/sub patched 50 times with arguments\n");
}

/* Another thread rewrites code main has already executed. */
struct patch_job {
    uint32_t *code;
    unsigned value;
};

static void *patch_thread(void *arg)
{
    struct patch_job *job = arg;
    size_t len = emit_const(job->code, job->value);

    flush(job->code, len);
    return NULL;
}

static void test_cross_thread(void)
{
    uint32_t *code = map_code(PROT_READ | PROT_WRITE | PROT_EXEC);

    for (int i = 0; i < 20; i++) {
        unsigned before = value_for(i + 2000), after = value_for(i + 3000);
        size_t len = emit_const(code, before);
        flush(code, len);
        CHECK(as_fn0(code)() == (int)before, "before patch round %d", i);

        struct patch_job job = { code, after };
        pthread_t t;
        CHECK_PT(pthread_create(&t, NULL, patch_thread, &job));
        CHECK_PT(pthread_join(t, NULL));
        int got = as_fn0(code)();
        CHECK(got == (int)after, "round %d: after thread patch got %d, want %u", i, got,
              after);
    }
    CHECK_SYS(munmap(code, pagesz));
    printf("cross-thread: 20 patches by a second thread seen by main\n");
}

/* The same address unmapped and mapped again with different code. */
static void test_remap(void)
{
    uint32_t *code = map_code(PROT_READ | PROT_WRITE);

    for (int i = 0; i < 30; i++) {
        unsigned v = value_for(i + 4000);
        size_t len = emit_const(code, v);
        CHECK_SYS(mprotect(code, pagesz, PROT_READ | PROT_EXEC));
        flush(code, len);
        CHECK(as_fn0(code)() == (int)v, "remap round %d: stale code", i);
        CHECK_SYS(munmap(code, pagesz));
        void *again = mmap(code, pagesz, PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
        CHECK(again == code, "MAP_FIXED remap moved");
    }
    CHECK_SYS(munmap(code, pagesz));
    printf("remap: 30 unmap/map cycles at one address ran fresh code\n");
}

/* Executing from a page without PROT_EXEC faults. */
static sigjmp_buf nx_env;

static void nx_handler(int sig)
{
    siglongjmp(nx_env, sig);
}

static void test_noexec(void)
{
    uint32_t *code = map_code(PROT_READ | PROT_WRITE | PROT_EXEC);
    size_t len = emit_const(code, 77);
    struct sigaction sa, old;

    flush(code, len);
    CHECK(as_fn0(code)() == 77, "code before dropping PROT_EXEC");
    CHECK_SYS(mprotect(code, pagesz, PROT_READ | PROT_WRITE));

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = nx_handler;
    sigemptyset(&sa.sa_mask);
    CHECK_SYS(sigaction(SIGSEGV, &sa, &old));
    volatile int sig = sigsetjmp(nx_env, 1);
    if (sig == 0) {
        as_fn0(code)();
        CHECK(0, "executed a page without PROT_EXEC");
    }
    CHECK(sig == SIGSEGV, "executing a non-exec page raised signal %d", sig);
    CHECK_SYS(sigaction(SIGSEGV, &old, NULL));
    CHECK_SYS(munmap(code, pagesz));
    printf("no-exec: calling into a RW page raised SIGSEGV\n");
}

#if defined(__arm__)
static void test_thumb(void)
{
    uint16_t *code = map_code(PROT_READ | PROT_WRITE | PROT_EXEC);

    for (int i = 0; i < 50; i++) {
        unsigned v = (unsigned)(i * 5 + 3) & 0xffu;
        size_t len = emit_const_thumb(code, v);
        flush(code, len);
        /* Bit 0 set: BLX enters Thumb state. */
        int got = as_fn0((char *)code + 1)();
        CHECK(got == (int)v, "thumb round %d: got %d, want %u", i, got, v);
    }
    /* Switch the same buffer back to ARM code. */
    size_t len = emit_const((uint32_t *)code, 31337);
    flush(code, len);
    CHECK(as_fn0(code)() == 31337, "ARM code after Thumb code");
    CHECK_SYS(munmap(code, pagesz));
    printf("thumb: 50 Thumb rewrites, then ARM again\n");
}
#endif

int main(void)
{
    long ps = sysconf(_SC_PAGESIZE);

    CHECK(ps > 0, "page size");
    pagesz = (size_t)ps;
    printf("isa %s\n", ISA_NAME);
    test_wx_flip();
    test_rwx_inplace();
    test_arith_patch();
    test_cross_thread();
    test_remap();
    test_noexec();
#if defined(__arm__)
    test_thumb();
#endif
    guest_pass("smc");
    return 0;
}
