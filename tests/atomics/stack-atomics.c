/*
 * stack-atomics: THREADS threads hammer atomic counters that live on the
 * main thread's stack, while the main thread keeps making system calls
 * whose results QEMU stores onto that same stack page.
 *
 * Guests share stack objects with their threads all the time (a struct
 * passed by address to pthread_create, a latch in main's frame).  On
 * several nodes the page then travels to wherever the threads run, while
 * the main thread on the master writes it through QEMU: here
 * rt_sigprocmask's old mask (pthread_sigmask), which linux-user writes
 * back with unlock_user() while do_sigprocmask() has every host signal
 * blocked -- so the page must be there without a fault.  For ROUNDS
 * rounds the main thread blocks SIGUSR1 and restores the old mask, both
 * masks held in the shared frame, and checks what it got back; all the
 * while the threads add 1 to their own counters in the frame, until main
 * tells them to stop.
 *
 * Exact results: each thread's counter in the frame equals the number of
 * additions it counted privately, and every mask round trip matches.
 * (How many additions fit in main's rounds depends on timing and is not
 * printed.)
 */
#include "at-common.h"      /* first: it sets _GNU_SOURCE */

#include <signal.h>

/* Everything the threads and main share, in main's frame: 1 KiB, aligned
 * to 1 KiB, so on one 4 KiB page. */
struct frame {
    int count[AT_MAX_THREADS];      /* atomic: thread t adds to count[t] */
    int started;                    /* atomic */
    int stop;                       /* atomic */
    sigset_t before, blocked;       /* written by rt_sigprocmask */
} __attribute__((aligned(1024)));

struct arg {
    struct frame *f;
    int id;
};

/* What each thread added, by its own count (not on the shared page). */
static int made[AT_MAX_THREADS];

static void *hammer(void *p)
{
    struct arg *a = p;
    struct frame *f = a->f;
    int64_t start = at_now_ns();
    int mine = 0;

    __atomic_fetch_add(&f->started, 1, __ATOMIC_ACQ_REL);
    /* Bounded by main's stop, or by the time limit (checked every 1024). */
    while (!__atomic_load_n(&f->stop, __ATOMIC_ACQUIRE)) {
        __atomic_fetch_add(&f->count[a->id], 1, __ATOMIC_SEQ_CST);
        mine++;
        CHECK((mine & 1023) != 0 || at_now_ns() - start < AT_WAIT_LIMIT_NS,
              "thread %d: main did not say stop within the time limit", a->id);
    }
    made[a->id] = mine;
    return NULL;
}

int main(int argc, char **argv)
{
    struct at_args args = at_parse_args(argc, argv, 1);
    struct frame f = { .started = 0 };
    struct arg a[AT_MAX_THREADS];
    pthread_t tids[AT_MAX_THREADS];
    sigset_t usr1;
    struct at_spin spin = AT_SPIN_INIT;
    int bad = 0, mask_rounds = 0;

    printf("stack-atomics: threads=%d rounds=%d\n", args.threads, args.rounds);
    fflush(stdout);
    sigemptyset(&usr1);
    sigaddset(&usr1, SIGUSR1);
    for (int t = 0; t < args.threads; t++) {
        a[t].f = &f;
        a[t].id = t;
        CHECK_PT(pthread_create(&tids[t], NULL, hammer, &a[t]));
    }
    while (__atomic_load_n(&f.started, __ATOMIC_ACQUIRE) < args.threads) {
        at_spin(&spin, "the threads to start");
    }
    /* While they run, round trips of the mask through the shared frame. */
    for (int i = 0; i < args.rounds; i++) {
        CHECK_PT(pthread_sigmask(SIG_BLOCK, &usr1, &f.before));
        CHECK_PT(pthread_sigmask(SIG_SETMASK, &f.before, &f.blocked));
        CHECK(!sigismember(&f.before, SIGUSR1) && sigismember(&f.blocked, SIGUSR1),
              "round %d: signal masks read back wrong (SIGUSR1 %d before, %d blocked)",
              i, sigismember(&f.before, SIGUSR1), sigismember(&f.blocked, SIGUSR1));
        mask_rounds++;
    }
    __atomic_store_n(&f.stop, 1, __ATOMIC_RELEASE);
    for (int t = 0; t < args.threads; t++) {
        CHECK_PT(pthread_join(tids[t], NULL));
    }
    for (int t = 0; t < args.threads; t++) {
        if (f.count[t] != made[t] || made[t] < 1) {
            printf("FAIL counter %d: want %d (and at least 1), got %d\n", t, made[t],
                   f.count[t]);
            bad = 1;
        }
    }
    if (bad) {
        return 1;
    }
    printf("counters on main's stack: %d exact; %d signal mask round trips intact\n",
           args.threads, mask_rounds);
    guest_pass("stack-atomics");
    return 0;
}
