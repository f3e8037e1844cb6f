/*
 * Test code written by one thread and executed by another (on another
 * node in a cluster): a writer thread generates a tiny function, an
 * executor thread calls it, then the writer rewrites it at the same
 * address and the executor must run the new version, never a stale
 * translation.  Rounds alternate between an RWX page rewritten in place,
 * a strict W^X page (mprotect RW, write, mprotect RX) and a function with
 * arguments flipped between add and sub; a mutex and condvar hand each
 * round over.  Last, the executor keeps calling the function while the
 * writer rewrites it once: it must see only the old or the new value,
 * and eventually the new one.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <sys/mman.h>

#include "guest-check.h"
#include "guest-emit.h"

enum kind { RWX_CONST, WX_CONST, RWX_ARITH };

#define ROUNDS_RWX   30
#define ROUNDS_WX    15
#define ROUNDS_ARITH 15
#define ROUNDS       (ROUNDS_RWX + ROUNDS_WX + ROUNDS_ARITH)
#define CALLS        4          /* calls per round: the code gets hot */
#define SPIN_OLD     1111
#define SPIN_NEW     2222

static size_t pagesz;
static uint32_t *rwx_page, *wx_page;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int written = -1;        /* last round the writer finished */
static int executed = -1;       /* last round the executor finished */
static int spinning;            /* the executor has seen SPIN_OLD */
static int results[ROUNDS];

/* What round r does; both threads derive it from r alone. */
static enum kind kind_of(int r)
{
    /* Interleaved: each kind follows another kind's rewrite of its page. */
    if (r % 4 == 1 && r / 4 < ROUNDS_WX) {
        return WX_CONST;
    }
    if (r % 4 == 3 && r / 4 < ROUNDS_ARITH) {
        return RWX_ARITH;
    }
    return RWX_CONST;
}

static unsigned value_of(int r)
{
    return (unsigned)(r * 7919 + 13) & 0xffffu;
}

static int arg_a(int r)
{
    return 1000 + r * 37;
}

static int arg_b(int r)
{
    return r * 11 - 7;
}

static int expected(int r)
{
    switch (kind_of(r)) {
    case RWX_ARITH:
        return (r & 4) ? arg_a(r) - arg_b(r) : arg_a(r) + arg_b(r);
    default:
        return (int)value_of(r);
    }
}

static void flush(void *p, size_t len)
{
    __builtin___clear_cache((char *)p, (char *)p + len);
}

static void wait_until(int *var, int value)
{
    CHECK_PT(pthread_mutex_lock(&lock));
    while (*var != value) {
        CHECK_PT(pthread_cond_wait(&cond, &lock));
    }
    CHECK_PT(pthread_mutex_unlock(&lock));
}

static void publish(int *var, int value)
{
    CHECK_PT(pthread_mutex_lock(&lock));
    *var = value;
    CHECK_PT(pthread_cond_broadcast(&cond));
    CHECK_PT(pthread_mutex_unlock(&lock));
}

static void write_round(int r)
{
    size_t len;

    switch (kind_of(r)) {
    case WX_CONST:
        CHECK_SYS(mprotect(wx_page, pagesz, PROT_READ | PROT_WRITE));
        len = emit_const(wx_page, value_of(r));
        CHECK_SYS(mprotect(wx_page, pagesz, PROT_READ | PROT_EXEC));
        flush(wx_page, len);
        break;
    case RWX_ARITH:
        len = emit_arith(rwx_page, (r & 4) != 0);
        flush(rwx_page, len);
        break;
    default:
        len = emit_const(rwx_page, value_of(r));
        flush(rwx_page, len);
        break;
    }
}

static int execute_round(int r)
{
    int got = 0;

    for (int k = 0; k < CALLS; k++) {
        int v;
        switch (kind_of(r)) {
        case WX_CONST:
            v = ((fn0_t)(uintptr_t)wx_page)();
            break;
        case RWX_ARITH:
            v = ((fn2_t)(uintptr_t)rwx_page)(arg_a(r), arg_b(r));
            break;
        default:
            v = ((fn0_t)(uintptr_t)rwx_page)();
            break;
        }
        CHECK(k == 0 || v == got, "round %d: call %d returned %d, call 0 %d", r, k, v,
              got);
        got = v;
    }
    return got;
}

static void *writer(void *arg)
{
    (void)arg;
    for (int r = 0; r < ROUNDS; r++) {
        wait_until(&executed, r - 1);
        write_round(r);
        publish(&written, r);
    }

    /* The executor calls the old code in a loop; rewrite it under it. */
    wait_until(&executed, ROUNDS - 1);
    size_t len = emit_const(rwx_page, SPIN_OLD);
    flush(rwx_page, len);
    publish(&written, ROUNDS);
    wait_until(&spinning, 1);
    len = emit_const(rwx_page, SPIN_NEW);
    flush(rwx_page, len);
    return NULL;
}

static void *executor(void *arg)
{
    long *spin_calls = arg;

    for (int r = 0; r < ROUNDS; r++) {
        wait_until(&written, r);
        results[r] = execute_round(r);
        publish(&executed, r);
    }

    wait_until(&written, ROUNDS);
    fn0_t f = (fn0_t)(uintptr_t)rwx_page;
    int v = f();
    CHECK(v == SPIN_OLD, "before the last rewrite: got %d, want %d", v, SPIN_OLD);
    publish(&spinning, 1);
    for (*spin_calls = 1; v != SPIN_NEW; (*spin_calls)++) {
        /* A syscall between calls: a context synchronisation point. */
        sched_yield();
        v = f();
        CHECK(v == SPIN_OLD || v == SPIN_NEW, "while rewritten: got %d", v);
    }
    return NULL;
}

int main(void)
{
    long ps = sysconf(_SC_PAGESIZE);
    long spin_calls = 0;
    pthread_t w, x;

    CHECK(ps > 0, "page size");
    pagesz = (size_t)ps;
    rwx_page = mmap(NULL, pagesz, PROT_READ | PROT_WRITE | PROT_EXEC,
                    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(rwx_page != MAP_FAILED, "mmap RWX: %s", strerror(errno));
    wx_page = mmap(NULL, pagesz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                   -1, 0);
    CHECK(wx_page != MAP_FAILED, "mmap RW: %s", strerror(errno));

    /*
     * Writer first, executor second: round-robin placement starts at node
     * 1, so the two run on different nodes for any cluster of 2 or more.
     */
    CHECK_PT(pthread_create(&w, NULL, writer, NULL));
    CHECK_PT(pthread_create(&x, NULL, executor, &spin_calls));
    CHECK_PT(pthread_join(w, NULL));
    CHECK_PT(pthread_join(x, NULL));

    int counts[3] = { 0, 0, 0 };
    long sum = 0;
    for (int r = 0; r < ROUNDS; r++) {
        CHECK(results[r] == expected(r), "round %d (kind %d): executor got %d, want %d",
              r, (int)kind_of(r), results[r], expected(r));
        counts[kind_of(r)]++;
        sum += results[r];
    }
    CHECK(counts[WX_CONST] == ROUNDS_WX && counts[RWX_ARITH] == ROUNDS_ARITH,
          "round mix %d/%d/%d", counts[0], counts[1], counts[2]);
    CHECK(spin_calls >= 1, "spin loop did not run");
    printf("%d rounds written by one thread, run by another: %d RWX, %d W^X, "
           "%d add/sub; sum %ld\n", ROUNDS, counts[RWX_CONST], counts[WX_CONST],
           counts[RWX_ARITH], sum);
    printf("rewrite under a calling thread: new code seen\n");
    CHECK_SYS(munmap(rwx_page, pagesz));
    CHECK_SYS(munmap(wx_page, pagesz));
    guest_pass("dist-smc-remote");
    return 0;
}
