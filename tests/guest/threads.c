/* Test that thread lifecycle works: create/join, exit values, detached threads, TLS, keys, once, cancel. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <sys/syscall.h>

#include "guest-check.h"

#define NTHREADS   8
#define NDETACHED  16
#define CHURN      64

/* ---- create/join and both ways of returning a value ---- */

static uint64_t expected_value(int i)
{
    return (uint64_t)i * i * 1000003u + 17;
}

static void *returner(void *arg)
{
    int i = (int)(intptr_t)arg;
    void *ret = (void *)(uintptr_t)(expected_value(i) & UINTPTR_MAX);

    /* Even threads return from the start routine, odd ones call pthread_exit. */
    if (i & 1) {
        pthread_exit(ret);
    }
    return ret;
}

static void test_join_values(void)
{
    pthread_t t[NTHREADS];

    for (int i = 0; i < NTHREADS; i++) {
        CHECK_PT(pthread_create(&t[i], NULL, returner, (void *)(intptr_t)i));
    }
    for (int i = 0; i < NTHREADS; i++) {
        CHECK(!pthread_equal(t[i], pthread_self()), "thread %d equals main", i);
        for (int j = 0; j < i; j++) {
            CHECK(!pthread_equal(t[i], t[j]), "threads %d and %d are equal", i, j);
        }
    }
    /* Join in reverse order: join must not depend on exit order. */
    for (int i = NTHREADS - 1; i >= 0; i--) {
        void *ret;
        CHECK_PT(pthread_join(t[i], &ret));
        CHECK((uintptr_t)ret == (uintptr_t)(expected_value(i) & UINTPTR_MAX),
              "thread %d returned %#lx", i, (unsigned long)(uintptr_t)ret);
    }
    printf("join: %d threads returned their values (return and pthread_exit)\n",
           NTHREADS);
}

/* ---- thread ids ---- */

static pid_t tids[NTHREADS];
static pthread_barrier_t tid_barrier;

static void *record_tid(void *arg)
{
    int i = (int)(intptr_t)arg;

    tids[i] = (pid_t)syscall(SYS_gettid);
    CHECK(getpid() != tids[i], "thread %d has tid == pid", i);
    /* Keep every thread alive until all have recorded their tid. */
    pthread_barrier_wait(&tid_barrier);
    return NULL;
}

static void test_tids(void)
{
    pthread_t t[NTHREADS];

    CHECK_PT(pthread_barrier_init(&tid_barrier, NULL, NTHREADS));
    for (int i = 0; i < NTHREADS; i++) {
        CHECK_PT(pthread_create(&t[i], NULL, record_tid, (void *)(intptr_t)i));
    }
    for (int i = 0; i < NTHREADS; i++) {
        CHECK_PT(pthread_join(t[i], NULL));
    }
    CHECK_PT(pthread_barrier_destroy(&tid_barrier));
    CHECK(syscall(SYS_gettid) == getpid(), "main thread tid != pid");
    for (int i = 0; i < NTHREADS; i++) {
        for (int j = 0; j < i; j++) {
            CHECK(tids[i] != tids[j], "threads %d and %d share a tid", i, j);
        }
    }
    printf("tids: %d distinct, none equal to pid\n", NTHREADS);
}

/* ---- __thread variables ---- */

/* Non-zero initialisers: each thread must get a copy of the TLS image. */
static __thread int tls_counter = 42;
static __thread char tls_name[16] = "initial";
static __thread uint64_t tls_big[64];
static void *tls_addr[NTHREADS];

static void *tls_worker(void *arg)
{
    int i = (int)(intptr_t)arg;
    int n = 1000 * (i + 1);

    CHECK(tls_counter == 42, "thread %d: tls_counter starts at %d", i, tls_counter);
    CHECK(strcmp(tls_name, "initial") == 0, "thread %d: tls_name '%s'", i, tls_name);
    for (int k = 0; k < 64; k++) {
        CHECK(tls_big[k] == 0, "thread %d: tls_big[%d] not zero", i, k);
    }
    snprintf(tls_name, sizeof(tls_name), "thread-%d", i);
    for (int k = 0; k < n; k++) {
        tls_counter++;
        tls_big[k % 64] += (uint64_t)i;
        /* Yield now and then so threads interleave while counting. */
        if (k % 256 == 0) {
            sched_yield();
        }
    }
    tls_addr[i] = &tls_counter;

    char want[16];
    snprintf(want, sizeof(want), "thread-%d", i);
    CHECK(strcmp(tls_name, want) == 0, "thread %d: tls_name became '%s'", i, tls_name);
    CHECK(tls_counter == 42 + n, "thread %d: tls_counter %d", i, tls_counter);
    uint64_t sum = 0;
    for (int k = 0; k < 64; k++) {
        sum += tls_big[k];
    }
    CHECK(sum == (uint64_t)i * (uint64_t)n, "thread %d: tls_big sum %llu", i,
          (unsigned long long)sum);
    return (void *)(intptr_t)tls_counter;
}

static void test_tls(void)
{
    pthread_t t[NTHREADS];

    tls_counter = -1;
    strcpy(tls_name, "main");
    for (int i = 0; i < NTHREADS; i++) {
        CHECK_PT(pthread_create(&t[i], NULL, tls_worker, (void *)(intptr_t)i));
    }
    for (int i = 0; i < NTHREADS; i++) {
        void *ret;
        CHECK_PT(pthread_join(t[i], &ret));
        CHECK((intptr_t)ret == 42 + 1000 * (i + 1), "thread %d tls result %ld", i,
              (long)(intptr_t)ret);
    }
    for (int i = 0; i < NTHREADS; i++) {
        CHECK(tls_addr[i] != &tls_counter, "thread %d shares main's TLS", i);
        for (int j = 0; j < i; j++) {
            CHECK(tls_addr[i] != tls_addr[j], "threads %d/%d share TLS", i, j);
        }
    }
    CHECK(tls_counter == -1 && strcmp(tls_name, "main") == 0,
          "main's TLS was clobbered: %d '%s'", tls_counter, tls_name);
    printf("tls: %d threads kept private copies\n", NTHREADS);
}

/* ---- pthread_key with destructors, pthread_once ---- */

static pthread_key_t key;
static int destructor_calls;
static pthread_mutex_t destructor_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static int once_calls;

static void key_destructor(void *p)
{
    int *v = p;

    pthread_mutex_lock(&destructor_lock);
    destructor_calls += *v;
    pthread_mutex_unlock(&destructor_lock);
    free(v);
}

static void once_init(void)
{
    /* Slow on purpose so late callers must wait for the first one. */
    usleep(10000);
    once_calls++;
}

static void *key_worker(void *arg)
{
    int i = (int)(intptr_t)arg;
    int *v = malloc(sizeof(*v));

    CHECK(v != NULL, "malloc");
    CHECK_PT(pthread_once(&once, once_init));
    CHECK(once_calls == 1, "thread %d saw once_calls=%d", i, once_calls);
    CHECK(pthread_getspecific(key) == NULL, "thread %d: key not NULL at start", i);
    *v = i + 1;
    CHECK_PT(pthread_setspecific(key, v));
    sched_yield();
    CHECK(pthread_getspecific(key) == v, "thread %d: key value changed", i);
    return NULL;
}

static void test_keys_once(void)
{
    pthread_t t[NTHREADS];

    CHECK_PT(pthread_key_create(&key, key_destructor));
    for (int i = 0; i < NTHREADS; i++) {
        CHECK_PT(pthread_create(&t[i], NULL, key_worker, (void *)(intptr_t)i));
    }
    for (int i = 0; i < NTHREADS; i++) {
        CHECK_PT(pthread_join(t[i], NULL));
    }
    /* Destructors run in each exiting thread, before join returns. */
    int want = NTHREADS * (NTHREADS + 1) / 2;
    CHECK(destructor_calls == want, "destructor sum %d, want %d", destructor_calls, want);
    CHECK(once_calls == 1, "once_init ran %d times", once_calls);
    CHECK_PT(pthread_key_delete(key));
    printf("keys: destructors summed to %d, once ran once\n", destructor_calls);
}

/* ---- detached threads ---- */

static pthread_mutex_t det_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t det_cond = PTHREAD_COND_INITIALIZER;
static int det_done;
static uint64_t det_sum;
static int det_go;

static void *detached_worker(void *arg)
{
    int i = (int)(intptr_t)arg;

    pthread_mutex_lock(&det_lock);
    /* Self-detached threads wait until main has called pthread_detach. */
    while (!det_go) {
        pthread_cond_wait(&det_cond, &det_lock);
    }
    det_sum += (uint64_t)1 << i;
    det_done++;
    pthread_cond_broadcast(&det_cond);
    pthread_mutex_unlock(&det_lock);
    return NULL;
}

static void test_detached(void)
{
    pthread_attr_t attr;
    pthread_t t;

    CHECK_PT(pthread_attr_init(&attr));
    CHECK_PT(pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED));
    for (int i = 0; i < NDETACHED; i++) {
        if (i % 2 == 0) {
            CHECK_PT(pthread_create(&t, &attr, detached_worker, (void *)(intptr_t)i));
        } else {
            /* Created joinable, detached afterwards. */
            CHECK_PT(pthread_create(&t, NULL, detached_worker, (void *)(intptr_t)i));
            CHECK_PT(pthread_detach(t));
        }
    }
    CHECK_PT(pthread_attr_destroy(&attr));

    pthread_mutex_lock(&det_lock);
    det_go = 1;
    pthread_cond_broadcast(&det_cond);
    while (det_done < NDETACHED) {
        pthread_cond_wait(&det_cond, &det_lock);
    }
    pthread_mutex_unlock(&det_lock);
    CHECK(det_sum == ((uint64_t)1 << NDETACHED) - 1, "detached sum %#llx",
          (unsigned long long)det_sum);
    printf("detached: %d threads all reported\n", NDETACHED);
}

/* ---- explicit stack size and a deep stack user ---- */

static void *stack_user(void *arg)
{
    size_t want = (size_t)(uintptr_t)arg;
    pthread_attr_t attr;
    size_t got;
    volatile unsigned char big[192 * 1024];
    unsigned sum = 0;

    CHECK_PT(pthread_getattr_np(pthread_self(), &attr));
    CHECK_PT(pthread_attr_getstacksize(&attr, &got));
    CHECK_PT(pthread_attr_destroy(&attr));
    CHECK(got >= want, "stack size %zu < requested %zu", got, want);

    for (size_t i = 0; i < sizeof(big); i++) {
        big[i] = (unsigned char)i;
    }
    for (size_t i = 0; i < sizeof(big); i++) {
        sum += big[i];
    }
    return (void *)(uintptr_t)sum;
}

static void test_stack_size(void)
{
    size_t want = 512 * 1024;
    pthread_attr_t attr;
    pthread_t t;
    void *ret;
    unsigned expect = 0;

    for (size_t i = 0; i < 192 * 1024; i++) {
        expect += (unsigned char)i;
    }
    CHECK_PT(pthread_attr_init(&attr));
    CHECK_PT(pthread_attr_setstacksize(&attr, want));
    CHECK_PT(pthread_create(&t, &attr, stack_user, (void *)(uintptr_t)want));
    CHECK_PT(pthread_attr_destroy(&attr));
    CHECK_PT(pthread_join(t, &ret));
    CHECK((unsigned)(uintptr_t)ret == expect, "stack sum %u != %u",
          (unsigned)(uintptr_t)ret, expect);
    printf("stack: 512 KiB thread stack usable\n");
}

/* ---- cancellation of a thread blocked in read() ---- */

static int cancel_pipe[2];
static int cleanup_ran;

static void cancel_cleanup(void *arg)
{
    (void)arg;
    cleanup_ran = 1;
}

static void *blocked_reader(void *arg)
{
    char c;

    (void)arg;
    pthread_cleanup_push(cancel_cleanup, NULL);
    /* read() is a cancellation point; nothing is ever written. */
    ssize_t n = read(cancel_pipe[0], &c, 1);
    (void)n;
    pthread_cleanup_pop(0);
    return (void *)1;
}

static void test_cancel(void)
{
    pthread_t t;
    void *ret;

    CHECK_SYS(pipe(cancel_pipe));
    CHECK_PT(pthread_create(&t, NULL, blocked_reader, NULL));
    usleep(20000);
    CHECK_PT(pthread_cancel(t));
    CHECK_PT(pthread_join(t, &ret));
    CHECK(ret == PTHREAD_CANCELED, "cancelled thread returned %p", ret);
    CHECK(cleanup_ran, "cleanup handler did not run");
    CHECK_SYS(close(cancel_pipe[0]));
    CHECK_SYS(close(cancel_pipe[1]));
    printf("cancel: blocked reader cancelled, cleanup ran\n");
}

/* ---- many short-lived threads ---- */

static void *tiny(void *arg)
{
    return (void *)((uintptr_t)arg * 3 + 1);
}

static void test_churn(void)
{
    uint64_t sum = 0, want = 0;

    /* Four at a time so thread slots and stacks are reused. */
    for (int i = 0; i < CHURN; i += 4) {
        pthread_t t[4];
        for (int j = 0; j < 4; j++) {
            CHECK_PT(pthread_create(&t[j], NULL, tiny, (void *)(uintptr_t)(i + j)));
        }
        for (int j = 0; j < 4; j++) {
            void *ret;
            CHECK_PT(pthread_join(t[j], &ret));
            sum += (uintptr_t)ret;
            want += (uint64_t)(i + j) * 3 + 1;
        }
    }
    CHECK(sum == want, "churn sum %llu != %llu", (unsigned long long)sum,
          (unsigned long long)want);
    printf("churn: %d threads created and joined, sum %llu\n", CHURN,
           (unsigned long long)sum);
}

int main(void)
{
    test_join_values();
    test_tids();
    test_tls();
    test_keys_once();
    test_detached();
    test_stack_size();
    test_cancel();
    test_churn();
    guest_pass("threads");
    return 0;
}
