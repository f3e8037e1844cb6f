/*
 * Test that a thread blocked in read() on an empty pipe blocks only
 * itself: two reader threads block on two empty pipes, then worker
 * threads (on other nodes in a cluster) do a fixed amount of work and
 * report it through a counter that main waits on.  Only then does main
 * write: first to the second reader's pipe (the first reader must still
 * be blocked: its pipe is empty), then to the first's, in chunks.  Each
 * reader must get exactly the bytes written, then EOF once main closes
 * its end.  No step depends on timing: "while blocked" is the fact that
 * nothing was written before the workers were done.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>

#include "guest-check.h"

#define NWORKERS 6
#define WORK     100000

struct reader {
    int fd;
    const char *expect;
    char got[256];
    size_t len;
    int entered;                /* about to call read() for the first time */
    int returned;               /* the first read() has returned */
    int eof;                    /* read() returned 0 after the message */
};

static struct reader readers[2];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int workers_done;
static int go;
static uint64_t worker_results[NWORKERS];

static void *reader_main(void *arg)
{
    struct reader *r = arg;
    size_t want = strlen(r->expect);

    __atomic_store_n(&r->entered, 1, __ATOMIC_RELEASE);
    while (r->len < want) {
        ssize_t n = read(r->fd, r->got + r->len, sizeof(r->got) - 1 - r->len);
        CHECK(n > 0, "reader on fd %d: read returned %zd (%s)", r->fd, n,
              n < 0 ? strerror(errno) : "EOF");
        __atomic_store_n(&r->returned, 1, __ATOMIC_RELEASE);
        r->len += (size_t)n;
    }
    r->got[r->len] = '\0';
    ssize_t n = read(r->fd, r->got + r->len, 1);
    CHECK(n == 0, "reader on fd %d: read after the message returned %zd", r->fd, n);
    r->eof = 1;
    return NULL;
}

static uint64_t compute(int id)
{
    uint64_t x = (uint64_t)id + 1;

    for (int i = 0; i < WORK; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        x ^= x >> 33;
    }
    return x;
}

static void *worker_main(void *arg)
{
    int id = (int)(intptr_t)arg;

    CHECK_PT(pthread_mutex_lock(&lock));
    while (!go) {
        CHECK_PT(pthread_cond_wait(&cond, &lock));
    }
    CHECK_PT(pthread_mutex_unlock(&lock));

    uint64_t r = compute(id);

    CHECK_PT(pthread_mutex_lock(&lock));
    worker_results[id] = r;
    workers_done++;
    CHECK_PT(pthread_cond_broadcast(&cond));
    CHECK_PT(pthread_mutex_unlock(&lock));
    return NULL;
}

static void write_all(int fd, const char *s, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, s, len);
        CHECK(n > 0, "write: %s", n < 0 ? strerror(errno) : "0 bytes");
        s += n;
        len -= (size_t)n;
    }
}

int main(void)
{
    int fds[2][2];
    pthread_t rt[2], wt[NWORKERS];
    static const char *const msgs[2] = {
        "first reader's message, written in three chunks",
        "second reader: woken first",
    };

    /* Readers first: round-robin puts them on the first worker nodes. */
    for (int i = 0; i < 2; i++) {
        CHECK_SYS(pipe(fds[i]));
        readers[i].fd = fds[i][0];
        readers[i].expect = msgs[i];
        CHECK_PT(pthread_create(&rt[i], NULL, reader_main, &readers[i]));
    }
    for (int i = 0; i < 2; i++) {
        while (!__atomic_load_n(&readers[i].entered, __ATOMIC_ACQUIRE)) {
            sched_yield();
        }
    }
    for (int i = 0; i < NWORKERS; i++) {
        CHECK_PT(pthread_create(&wt[i], NULL, worker_main, (void *)(intptr_t)i));
    }

    CHECK_PT(pthread_mutex_lock(&lock));
    go = 1;
    CHECK_PT(pthread_cond_broadcast(&cond));
    while (workers_done < NWORKERS) {
        CHECK_PT(pthread_cond_wait(&cond, &lock));
    }
    CHECK_PT(pthread_mutex_unlock(&lock));
    for (int i = 0; i < NWORKERS; i++) {
        CHECK_PT(pthread_join(wt[i], NULL));
        CHECK(worker_results[i] == compute(i), "worker %d result", i);
    }
    for (int i = 0; i < 2; i++) {
        CHECK(!__atomic_load_n(&readers[i].returned, __ATOMIC_ACQUIRE),
              "reader %d returned from read() before anything was written", i);
    }
    printf("%d workers finished their work while both readers were blocked\n",
           NWORKERS);

    /* Wake the second reader only; the first must stay blocked. */
    write_all(fds[1][1], msgs[1], strlen(msgs[1]));
    CHECK_SYS(close(fds[1][1]));
    CHECK_PT(pthread_join(rt[1], NULL));
    CHECK(strcmp(readers[1].got, msgs[1]) == 0, "reader 1 got '%s'", readers[1].got);
    CHECK(readers[1].eof, "reader 1 saw no EOF");
    CHECK(!__atomic_load_n(&readers[0].returned, __ATOMIC_ACQUIRE),
          "reader 0 woke up although its pipe is empty");
    printf("reader 1 woke with '%s', reader 0 still blocked\n", readers[1].got);

    /* Three chunks: the reader may see them in one read or several. */
    size_t len = strlen(msgs[0]), a = len / 3, b = 2 * len / 3;
    write_all(fds[0][1], msgs[0], a);
    write_all(fds[0][1], msgs[0] + a, b - a);
    write_all(fds[0][1], msgs[0] + b, len - b);
    CHECK_SYS(close(fds[0][1]));
    CHECK_PT(pthread_join(rt[0], NULL));
    CHECK(strcmp(readers[0].got, msgs[0]) == 0, "reader 0 got '%s'", readers[0].got);
    CHECK(readers[0].eof, "reader 0 saw no EOF");
    printf("reader 0 woke with '%s', then EOF\n", readers[0].got);

    CHECK_SYS(close(fds[0][0]));
    CHECK_SYS(close(fds[1][0]));
    guest_pass("dist-pipe-block");
    return 0;
}
