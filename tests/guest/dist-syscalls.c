/*
 * Test that system calls made from a secondary thread behave as in one
 * process: an unknown syscall number fails with ENOSYS, getpid() is the
 * process's pid in every thread, gettid() differs per thread and matches
 * what the thread reports, and memory MADV_DONTNEED'ed by one thread reads
 * back as zeros in another (on several nodes, the thread is on a worker).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include "guest-check.h"

#define PAGES 4

struct shared {
    pid_t pid;
    pid_t tid;
    long enosys_ret;
    int enosys_errno;
    unsigned char *mem;
    long page;
    int phase;                  /* 0 -> 1: written; 2: zeroed by main */
    unsigned long zero_sum;
};

static void wait_phase(struct shared *s, int want)
{
    while (__atomic_load_n(&s->phase, __ATOMIC_ACQUIRE) != want) {
        sched_yield();
    }
}

static void *worker(void *arg)
{
    struct shared *s = arg;

    s->pid = getpid();
    s->tid = (pid_t)syscall(SYS_gettid);
    /* A number no kernel (and no qemu-user) implements. */
    s->enosys_ret = syscall(0x3fff);
    s->enosys_errno = errno;

    for (long i = 0; i < PAGES * s->page; i++) {
        s->mem[i] = (unsigned char)(i * 7 + 1);
    }
    __atomic_store_n(&s->phase, 1, __ATOMIC_RELEASE);
    wait_phase(s, 2);
    s->zero_sum = 0;
    for (long i = 0; i < PAGES * s->page; i++) {
        s->zero_sum += s->mem[i];
    }
    return NULL;
}

int main(void)
{
    struct shared s;
    pthread_t t;
    unsigned long sum = 0;

    memset(&s, 0, sizeof(s));
    s.page = sysconf(_SC_PAGESIZE);
    s.mem = mmap(NULL, PAGES * s.page, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(s.mem != MAP_FAILED, "mmap: %s", strerror(errno));

    CHECK_PT(pthread_create(&t, NULL, worker, &s));
    wait_phase(&s, 1);
    for (long i = 0; i < PAGES * s.page; i++) {
        sum += s.mem[i];
    }
    CHECK_SYS(madvise(s.mem, PAGES * s.page, MADV_DONTNEED));
    __atomic_store_n(&s.phase, 2, __ATOMIC_RELEASE);
    CHECK_PT(pthread_join(t, NULL));

    CHECK(s.enosys_ret == -1 && s.enosys_errno == ENOSYS,
          "syscall(0x3fff) in a thread: ret %ld errno %d", s.enosys_ret,
          s.enosys_errno);
    CHECK(s.pid == getpid(), "getpid() %d in a thread, %d in main",
          (int)s.pid, (int)getpid());
    CHECK(s.tid != getpid() && s.tid > 0, "thread tid %d", (int)s.tid);
    CHECK(s.zero_sum == 0, "MADV_DONTNEED'ed memory read back nonzero (%lu)",
          s.zero_sum);
    printf("unknown syscall: ENOSYS in a thread\n");
    printf("ids: one pid in every thread, the thread has its own tid\n");
    printf("madvise: %d pages written in a thread (sum %lu), zero after "
           "MADV_DONTNEED\n", PAGES, sum);
    printf("PASS dist-syscalls\n");
    return 0;
}
