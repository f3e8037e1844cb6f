/* Test that memory management works: mmap/munmap/mprotect/mremap/brk, shared mappings, and a 256 MiB touch. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "guest-check.h"

#define BIG_SIZE ((size_t)256 << 20)

static size_t pagesz;

/* ---- probing whether an access faults ---- */

static sigjmp_buf probe_env;
static volatile sig_atomic_t probing;

static void segv_handler(int sig)
{
    (void)sig;
    if (probing) {
        siglongjmp(probe_env, 1);
    }
    /* A fault outside a probe is a real bug: die with the default action. */
    signal(SIGSEGV, SIG_DFL);
}

/* Returns 1 when reading (write == 0) or writing *p faults, 0 otherwise. */
static int faults(volatile unsigned char *p, int write)
{
    if (sigsetjmp(probe_env, 1)) {
        probing = 0;
        return 1;
    }
    probing = 1;
    if (write) {
        *p = *p;
    } else {
        (void)*p;
    }
    probing = 0;
    return 0;
}

static void install_probe_handler(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = segv_handler;
    sigemptyset(&sa.sa_mask);
    CHECK_SYS(sigaction(SIGSEGV, &sa, NULL));
    /* Some hosts report protection faults as SIGBUS; treat alike. */
    CHECK_SYS(sigaction(SIGBUS, &sa, NULL));
}

static unsigned char pat(size_t i, unsigned seed)
{
    return (unsigned char)((i * 131 + seed * 17 + (i >> 12)) & 0xff);
}

static void fill(unsigned char *p, size_t len, unsigned seed)
{
    for (size_t i = 0; i < len; i++) {
        p[i] = pat(i, seed);
    }
}

static void verify(const unsigned char *p, size_t len, unsigned seed, const char *what)
{
    for (size_t i = 0; i < len; i++) {
        CHECK(p[i] == pat(i, seed), "%s: byte %zu is %u, want %u", what, i, p[i],
              pat(i, seed));
    }
}

static void *map_anon(size_t len, int prot)
{
    void *p = mmap(NULL, len, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

    CHECK(p != MAP_FAILED, "mmap %zu bytes: %s", len, strerror(errno));
    CHECK(((uintptr_t)p & (pagesz - 1)) == 0, "mmap result not page aligned");
    return p;
}

static void test_mmap_munmap(void)
{
    size_t len = 16 * pagesz;
    unsigned char *p = map_anon(len, PROT_READ | PROT_WRITE);

    for (size_t i = 0; i < len; i++) {
        CHECK(p[i] == 0, "fresh anonymous memory not zero at %zu", i);
    }
    fill(p, len, 1);
    verify(p, len, 1, "anon mapping");

    /* Punch a hole in the middle: it faults, its neighbours keep their data. */
    CHECK_SYS(munmap(p + 5 * pagesz, pagesz));
    CHECK(faults(p + 5 * pagesz, 0), "read of unmapped page did not fault");
    CHECK(faults(p + 5 * pagesz + pagesz - 1, 1), "write of unmapped page did not fault");
    CHECK(!faults(p + 4 * pagesz + pagesz - 1, 1), "page before the hole faults");
    CHECK(!faults(p + 6 * pagesz, 1), "page after the hole faults");
    verify(p, 5 * pagesz, 1, "before hole");
    CHECK(p[6 * pagesz] == pat(6 * pagesz, 1), "after hole");

    /* MAP_FIXED into the hole brings back a zero page. */
    void *q = mmap(p + 5 * pagesz, pagesz, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    CHECK(q == p + 5 * pagesz, "MAP_FIXED landed elsewhere");
    CHECK(p[5 * pagesz] == 0 && p[6 * pagesz - 1] == 0, "MAP_FIXED page not zero");

    /* MAP_FIXED over live data replaces it. */
    q = mmap(p, pagesz, PROT_READ | PROT_WRITE,
             MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    CHECK(q == p, "MAP_FIXED over data landed elsewhere");
    CHECK(p[0] == 0 && p[pagesz - 1] == 0, "MAP_FIXED did not replace data");
    CHECK(p[pagesz] == pat(pagesz, 1), "MAP_FIXED clobbered the next page");

    CHECK_SYS(munmap(p, len));
    CHECK(faults(p, 0) && faults(p + len - 1, 0), "unmapped range still readable");
    CHECK_ERRNO(munmap(p + 1, pagesz), EINVAL);
    printf("mmap/munmap/MAP_FIXED ok\n");
}

static void test_mprotect(void)
{
    size_t len = 4 * pagesz;
    unsigned char *p = map_anon(len, PROT_READ | PROT_WRITE);

    fill(p, len, 2);
    CHECK_SYS(mprotect(p + pagesz, pagesz, PROT_READ));
    CHECK(!faults(p + pagesz, 0), "PROT_READ page not readable");
    CHECK(faults(p + pagesz, 1), "PROT_READ page writable");
    CHECK(!faults(p, 1) && !faults(p + 2 * pagesz, 1), "neighbours lost PROT_WRITE");

    CHECK_SYS(mprotect(p + 2 * pagesz, pagesz, PROT_NONE));
    CHECK(faults(p + 2 * pagesz, 0), "PROT_NONE page readable");
    CHECK(faults(p + 3 * pagesz - 1, 1), "PROT_NONE page writable");

    /* Restoring access must bring back the old contents untouched. */
    CHECK_SYS(mprotect(p, len, PROT_READ | PROT_WRITE));
    verify(p, len, 2, "after mprotect round trip");
    CHECK(!faults(p + 2 * pagesz, 1), "restored page still faults");
    CHECK_ERRNO(mprotect(p + 1, pagesz, PROT_READ), EINVAL);
    CHECK_SYS(munmap(p, len));
    printf("mprotect ok\n");
}

static void test_mremap(void)
{
    unsigned char *p = map_anon(4 * pagesz, PROT_READ | PROT_WRITE);

    fill(p, 4 * pagesz, 3);
    /* Block growth in place so MREMAP_MAYMOVE has a reason to move. */
    unsigned char *blocker = mmap(p + 4 * pagesz, pagesz, PROT_READ,
                                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
                                  -1, 0);
    int blocked = blocker == p + 4 * pagesz;

    if (blocker != MAP_FAILED && !blocked) {
        /* Old kernels treat MAP_FIXED_NOREPLACE as a hint. */
        CHECK_SYS(munmap(blocker, pagesz));
    }

    if (blocked) {
        CHECK(mremap(p, 4 * pagesz, 64 * pagesz, 0) == MAP_FAILED && errno == ENOMEM,
              "mremap grew in place through a mapping");
    }
    unsigned char *g = mremap(p, 4 * pagesz, 64 * pagesz, MREMAP_MAYMOVE);
    CHECK(g != MAP_FAILED, "mremap grow: %s", strerror(errno));
    verify(g, 4 * pagesz, 3, "after mremap grow");
    for (size_t i = 4 * pagesz; i < 64 * pagesz; i++) {
        CHECK(g[i] == 0, "grown part not zero at %zu", i);
    }
    fill(g, 64 * pagesz, 4);
    if (blocked) {
        CHECK(g != p, "grew in place despite the blocker");
        CHECK(faults(p, 0), "old location still mapped after move");
        CHECK_SYS(munmap(blocker, pagesz));
    }

    unsigned char *s = mremap(g, 64 * pagesz, 2 * pagesz, 0);
    CHECK(s == g, "shrink moved the mapping");
    verify(s, 2 * pagesz, 4, "after mremap shrink");
    CHECK(faults(g + 2 * pagesz, 0), "shrunk-away page still mapped");
    CHECK_SYS(munmap(s, 2 * pagesz));
    printf("mremap grow/move/shrink ok\n");
}

static void test_brk(void)
{
    const intptr_t step = 1 << 20;
    unsigned char *cur = sbrk(0);

    CHECK(cur != (void *)-1, "sbrk(0): %s", strerror(errno));
    errno = 0;
    unsigned char *old = sbrk(step);
    if (old == (void *)-1 && errno == ENOMEM && getauxval(AT_BASE) != 0) {
        /*
         * A dynamic (PIE) program under qemu-user can find another mapping
         * (e.g. the vdso) right after its break, at a randomised distance,
         * so growth may be refused.  The refusal must leave the break
         * alone.  Static programs have room and must not get here.
         */
        CHECK(sbrk(0) == cur, "refused sbrk moved the break");
        fprintf(stderr, "note: brk growth refused (ENOMEM) in a dynamic program\n");
        printf("brk/sbrk ok\n");
        return;
    }
    CHECK(old == cur, "sbrk(+1MiB) returned %p, break was %p: %s", (void *)old,
          (void *)cur, strerror(errno));
    CHECK(sbrk(0) == cur + step, "break did not move by 1 MiB");
    fill(cur, (size_t)step, 5);
    verify(cur, (size_t)step, 5, "brk area");
    CHECK(sbrk(-step) == cur + step, "sbrk(-1MiB)");
    CHECK(sbrk(0) == cur, "break not restored");
    /* The last page of the old area is gone again (break is page aligned here). */
    if (((uintptr_t)cur & (pagesz - 1)) == 0) {
        CHECK(faults(cur + step - 1, 0), "memory above the break still mapped");
    }
    printf("brk/sbrk ok\n");
}

static void test_big_touch(void)
{
    unsigned char *p = malloc(BIG_SIZE);
    uint64_t sum = 0, want = 0;
    size_t pages = BIG_SIZE / pagesz;

    CHECK(p != NULL, "malloc(256 MiB) failed");
    /* One write to the first and last byte of every page. */
    for (size_t i = 0; i < pages; i++) {
        uint32_t tag = (uint32_t)(i * 2654435761u);
        memcpy(p + i * pagesz, &tag, sizeof(tag));
        p[i * pagesz + pagesz - 1] = (unsigned char)i;
        want += tag + (unsigned char)i;
    }
    for (size_t i = 0; i < pages; i++) {
        uint32_t tag;
        memcpy(&tag, p + i * pagesz, sizeof(tag));
        CHECK(tag == (uint32_t)(i * 2654435761u), "page %zu lost its tag", i);
        sum += tag + p[i * pagesz + pagesz - 1];
    }
    CHECK(sum == want, "256 MiB checksum %llu != %llu", (unsigned long long)sum,
          (unsigned long long)want);
    free(p);
    printf("256 MiB: all %zu pages touched and verified\n", pages);
}

static void test_shared_fork(void)
{
    size_t len = 8 * pagesz;
    unsigned char *sh = mmap(NULL, len, PROT_READ | PROT_WRITE,
                             MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    unsigned char *pr = map_anon(len, PROT_READ | PROT_WRITE);
    int status;

    CHECK(sh != MAP_FAILED, "shared mmap: %s", strerror(errno));
    fill(sh, len, 6);
    fill(pr, len, 6);
    fflush(stdout);
    pid_t pid = fork();
    CHECK_SYS(pid);
    if (pid == 0) {
        /* Child: both mappings start as the parent left them. */
        for (size_t i = 0; i < len; i++) {
            if (sh[i] != pat(i, 6) || pr[i] != pat(i, 6)) {
                _exit(10);
            }
        }
        fill(sh, len, 7);
        fill(pr, len, 8);
        _exit(0);
    }
    CHECK(waitpid(pid, &status, 0) == pid, "waitpid: %s", strerror(errno));
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "child status %#x (10 = inherited data wrong)", status);
    verify(sh, len, 7, "MAP_SHARED after child wrote");
    verify(pr, len, 6, "MAP_PRIVATE after child wrote");
    CHECK_SYS(munmap(sh, len));
    CHECK_SYS(munmap(pr, len));
    printf("fork: shared mapping shared, private mapping copied\n");
}

static void test_file_mapping(void)
{
    const char *tmp = getenv("TMPDIR");
    char path[4096];
    size_t len = 3 * pagesz;
    unsigned char buf[64];

    CHECK(snprintf(path, sizeof(path), "%s/dqemu-mem-XXXXXX",
                   tmp && *tmp ? tmp : "/tmp") < (int)sizeof(path), "TMPDIR too long");
    int fd = mkstemp(path);

    CHECK_SYS(fd);
    CHECK_SYS(unlink(path));
    CHECK_SYS(ftruncate(fd, (off_t)len));

    unsigned char *sh = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    CHECK(sh != MAP_FAILED, "file MAP_SHARED: %s", strerror(errno));
    fill(sh, len, 9);
    CHECK_SYS(msync(sh, len, MS_SYNC));
    CHECK(pread(fd, buf, sizeof(buf), (off_t)pagesz) == (ssize_t)sizeof(buf), "pread");
    for (size_t i = 0; i < sizeof(buf); i++) {
        CHECK(buf[i] == pat(pagesz + i, 9), "file lacks mapped write at %zu", i);
    }
    CHECK(pwrite(fd, "written", 7, 100) == 7, "pwrite");
    CHECK(memcmp(sh + 100, "written", 7) == 0, "mapping lacks file write");

    /* A private mapping of the same file: copy-on-write, file unchanged. */
    unsigned char *pr = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    CHECK(pr != MAP_FAILED, "file MAP_PRIVATE: %s", strerror(errno));
    CHECK(memcmp(pr, sh, len) == 0, "private mapping differs from file");
    memset(pr, 0xee, 32);
    CHECK(pread(fd, buf, 32, 0) == 32, "pread");
    CHECK(memcmp(buf, sh, 32) == 0 && buf[0] != 0xee, "private write reached file");

    /* Mapping at an offset sees the right part of the file. */
    unsigned char *off = mmap(NULL, pagesz, PROT_READ, MAP_SHARED, fd, (off_t)(2 * pagesz));
    CHECK(off != MAP_FAILED, "offset mmap: %s", strerror(errno));
    CHECK(memcmp(off, sh + 2 * pagesz, pagesz) == 0, "offset mapping content");

    CHECK_SYS(munmap(off, pagesz));
    CHECK_SYS(munmap(pr, len));
    CHECK_SYS(munmap(sh, len));
    CHECK_SYS(close(fd));
    printf("file mappings: shared, private and offset ok\n");
}

int main(void)
{
    long ps = sysconf(_SC_PAGESIZE);

    CHECK(ps > 0 && (ps & (ps - 1)) == 0, "page size %ld", ps);
    pagesz = (size_t)ps;
    install_probe_handler();
    /* Make stdio allocate its buffer now, not between the sbrk calls. */
    printf("memory test\n");

    test_mmap_munmap();
    test_mprotect();
    test_mremap();
    test_brk();
    test_big_touch();
    test_shared_fork();
    test_file_mapping();
    guest_pass("memory");
    return 0;
}
