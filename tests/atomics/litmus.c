/*
 * litmus: C11 <stdatomic.h> litmus tests across threads, ROUNDS rounds
 * each, counting outcomes the memory model forbids (there must be none):
 *
 *   MP    message passing, release/acquire: W: data = 1 (relaxed);
 *         flag = 1 (release).  R: f = flag (acquire); d = data (relaxed).
 *         Forbidden: f == 1 && d == 0.
 *   SB    store buffering, seq_cst: T0: x = 1; r0 = y.  T1: y = 1; r1 = x.
 *         Forbidden: r0 == 0 && r1 == 0.
 *   SB-fence  the same with relaxed accesses and a seq_cst fence between
 *         each thread's store and load; same forbidden outcome.
 *   IRIW  independent reads of independent writes, seq_cst: W0: x = 1.
 *         W1: y = 1.  R0: a = x; b = y.  R1: c = y; d = x.  Forbidden:
 *         a == 1 && b == 0 && c == 1 && d == 0 (the readers disagree on
 *         the order of the writes).
 *
 * THREADS threads play THREADS/2 independent pairs (MP, SB) or THREADS/4
 * groups of four (IRIW) at once.  Every round uses fresh variables (zero,
 * never written before), and the members of a group meet at a spinning
 * barrier before each round so that their accesses overlap.  Even rounds
 * keep a round's variables on one page (next to each other); odd rounds
 * put them on two different pages, so that on several nodes they move
 * separately.  Each layout's forbidden count is printed; how often each
 * allowed outcome came up depends on timing and goes to stderr only.
 *
 * Usage: litmus THREADS ROUNDS [TESTS], TESTS a comma-separated subset of
 * MP,SB,SB-fence,IRIW (default: all).  Why choose: on aarch64, C11
 * seq_cst is STLR then LDAR, and QEMU's TCG (10.0.2) puts the host fence
 * before STLR's store and after LDAR's load, none between them, so an
 * x86-64 host's store buffer lets the load pass the store: SB shows its
 * forbidden outcome under stock qemu-aarch64 too, while SB-fence (DMB,
 * a full host fence) does not.
 */
#include "at-common.h"      /* first: it sets _GNU_SOURCE */

#include <stdatomic.h>
#include <stdlib.h>

static struct at_args args;

/* One round's variables, a cache line each so rounds do not interfere. */
struct cell {
    atomic_int v;
    char pad[64 - sizeof(atomic_int)];
};

/* Two variables of a round on one page: x and y in the same line. */
struct pair {
    atomic_int x, y;
    char pad[64 - 2 * sizeof(atomic_int)];
};

/* What a thread saw in one round. */
struct seen {
    int a, b;
};

/*
 * The per-round meeting of a group: round r's leader (member r % k)
 * waits until the k - 1 others have counted themselves in @arrived, then
 * sets @go to r + 1, which the others wait for.  Both only grow.  Across
 * nodes this moves pages about 3(k - 1) times a round, where k members
 * all adding to and all watching one counter move it about k * k times.
 * The leader changes every round so that no member always starts first.
 */
struct group {
    atomic_int arrived;
    char pad[4096 - sizeof(atomic_int)];
    atomic_int go;              /* on a page of its own */
    char pad2[4096 - sizeof(atomic_int)];
};

/* The variables of one group for one test: even rounds use same[r / 2],
 * odd rounds xs[r / 2].v and ys[r / 2].v (separate allocations, so on
 * separate pages). */
struct vars {
    struct pair *same;
    struct cell *xs, *ys;
};

enum test { MP, SB, SB_FENCE, IRIW, NTESTS };

static const char *const test_name[NTESTS] = { "MP", "SB", "SB-fence", "IRIW" };
static const int group_size[NTESTS] = { 2, 2, 2, 4 };

static enum test current;
static struct group *groups;                  /* one page each */
static struct vars *vars;                     /* per group */
static struct seen *seen[AT_MAX_THREADS];     /* per thread, per round */

static void *alloc_pages(size_t size)
{
    void *p = aligned_alloc(4096, (size + 4095) & ~(size_t)4095);

    CHECK(p != NULL, "out of memory for %zu bytes", size);
    memset(p, 0, size);
    return p;
}

static void round_vars(struct vars *v, int round, atomic_int **x, atomic_int **y)
{
    if (round % 2 == 0) {
        *x = &v->same[round / 2].x;
        *y = &v->same[round / 2].y;
    } else {
        *x = &v->xs[round / 2].v;
        *y = &v->ys[round / 2].v;
    }
}

/* Wait until all @members of the group (this one is @role) reach @round. */
static void group_meet(struct group *g, int members, int role, int round)
{
    struct at_spin s = AT_SPIN_INIT;

    if (role == round % members) {
        int want = (members - 1) * (round + 1);

        while (atomic_load_explicit(&g->arrived, memory_order_acquire) < want) {
            at_spin(&s, "the other members of a litmus group");
        }
        atomic_store_explicit(&g->go, round + 1, memory_order_release);
    } else {
        atomic_fetch_add_explicit(&g->arrived, 1, memory_order_acq_rel);
        while (atomic_load_explicit(&g->go, memory_order_acquire) < round + 1) {
            at_spin(&s, "the leader of a litmus group");
        }
    }
}

static void litmus_worker(int t)
{
    int k = group_size[current], gi = t / k, role = t % k;
    struct group *g = &groups[gi];
    struct vars *v = &vars[gi];

    if (gi >= args.threads / k) {
        return;                 /* no complete group for this thread */
    }
    for (int r = 0; r < args.rounds; r++) {
        atomic_int *x, *y;
        struct seen *out = &seen[t][r];

        round_vars(v, r, &x, &y);
        group_meet(g, k, role, r);
        switch (current) {
        case MP:
            /* x is the data, y the flag. */
            if (role == 0) {
                atomic_store_explicit(x, 1, memory_order_relaxed);
                atomic_store_explicit(y, 1, memory_order_release);
            } else {
                out->a = atomic_load_explicit(y, memory_order_acquire);
                out->b = atomic_load_explicit(x, memory_order_relaxed);
            }
            break;
        case SB:
            if (role == 0) {
                atomic_store(x, 1);
                out->a = atomic_load(y);
            } else {
                atomic_store(y, 1);
                out->a = atomic_load(x);
            }
            break;
        case SB_FENCE:
            if (role == 0) {
                atomic_store_explicit(x, 1, memory_order_relaxed);
                atomic_thread_fence(memory_order_seq_cst);
                out->a = atomic_load_explicit(y, memory_order_relaxed);
            } else {
                atomic_store_explicit(y, 1, memory_order_relaxed);
                atomic_thread_fence(memory_order_seq_cst);
                out->a = atomic_load_explicit(x, memory_order_relaxed);
            }
            break;
        case IRIW:
            if (role == 0) {
                atomic_store(x, 1);
            } else if (role == 1) {
                atomic_store(y, 1);
            } else if (role == 2) {
                out->a = atomic_load(x);
                out->b = atomic_load(y);
            } else {
                out->a = atomic_load(y);
                out->b = atomic_load(x);
            }
            break;
        case NTESTS:
            break;
        }
    }
}

/* Outcome of group @gi in round @r as a small integer, and whether the
 * model forbids it. */
static int outcome(int gi, int r, int *forbidden)
{
    int k = group_size[current], t0 = gi * k;

    switch (current) {
    case MP: {
        int f = seen[t0 + 1][r].a, d = seen[t0 + 1][r].b;

        *forbidden = f == 1 && d == 0;
        return f * 2 + d;
    }
    case SB:
    case SB_FENCE: {
        int r0 = seen[t0][r].a, r1 = seen[t0 + 1][r].a;

        *forbidden = r0 == 0 && r1 == 0;
        return r0 * 2 + r1;
    }
    case IRIW: {
        int a = seen[t0 + 2][r].a, b = seen[t0 + 2][r].b;
        int c = seen[t0 + 3][r].a, d = seen[t0 + 3][r].b;

        *forbidden = a == 1 && b == 0 && c == 1 && d == 0;
        return a * 8 + b * 4 + c * 2 + d;
    }
    case NTESTS:
        break;
    }
    *forbidden = 1;
    return 0;
}

static int run_test(enum test test)
{
    int k = group_size[test], ngroups = args.threads / k;
    int half[2] = { (args.rounds + 1) / 2, args.rounds / 2 };
    static const char *const layout[2] = { "one page", "two pages" };
    int bad = 0;

    current = test;
    groups = alloc_pages((size_t)ngroups * sizeof(struct group));
    vars = calloc((size_t)ngroups, sizeof(struct vars));
    CHECK(vars != NULL, "out of memory");
    for (int g = 0; g < ngroups; g++) {
        vars[g].same = alloc_pages((size_t)half[0] * sizeof(struct pair));
        vars[g].xs = alloc_pages((size_t)half[1] * sizeof(struct cell));
        vars[g].ys = alloc_pages((size_t)half[1] * sizeof(struct cell));
    }
    for (int t = 0; t < args.threads; t++) {
        memset(seen[t], 0, (size_t)args.rounds * sizeof(struct seen));
    }

    at_run_timed(test_name[test], args.threads, litmus_worker);

    for (int l = 0; l < 2; l++) {
        long forbidden = 0, hist[16] = { 0 };

        for (int g = 0; g < ngroups; g++) {
            for (int r = l; r < args.rounds; r += 2) {
                int f, o = outcome(g, r, &f);

                hist[o]++;
                forbidden += f;
            }
        }
        printf("%s %s: %d group%s x %d rounds, forbidden outcomes: %ld\n",
               test_name[test], layout[l], ngroups, ngroups == 1 ? "" : "s",
               half[l], forbidden);
        fprintf(stderr, "%s %s outcomes:", test_name[test], layout[l]);
        for (int o = 0; o < 16; o++) {
            if (hist[o] != 0) {
                fprintf(stderr, " %#x:%ld", o, hist[o]);
            }
        }
        fprintf(stderr, "\n");
        if (forbidden != 0) {
            printf("FAIL %s %s: want 0 forbidden outcomes, got %ld\n", test_name[test],
                   layout[l], forbidden);
            bad = 1;
        }
    }

    for (int g = 0; g < ngroups; g++) {
        free(vars[g].same);
        free(vars[g].xs);
        free(vars[g].ys);
    }
    free(vars);
    free(groups);
    return bad;
}

/* The tests named in @list (comma-separated), as a bit mask. */
static unsigned parse_tests(const char *list)
{
    unsigned mask = 0;
    char *copy = strdup(list), *save = NULL;

    CHECK(copy != NULL, "out of memory");
    for (char *name = strtok_r(copy, ",", &save); name != NULL;
         name = strtok_r(NULL, ",", &save)) {
        int found = -1;

        for (int t = 0; t < NTESTS; t++) {
            if (strcmp(name, test_name[t]) == 0) {
                found = t;
            }
        }
        if (found < 0) {
            fprintf(stderr, "unknown litmus test '%s': want MP, SB, SB-fence or IRIW\n",
                    name);
            exit(2);
        }
        mask |= 1u << found;
    }
    free(copy);
    return mask;
}

int main(int argc, char **argv)
{
    unsigned tests = (1u << NTESTS) - 1;
    int bad = 0;

    if (argc == 4) {
        tests = parse_tests(argv[3]);
        argc = 3;
    }
    /* Four threads at least: one IRIW group. */
    args = at_parse_args(argc, argv, 4);
    printf("litmus: threads=%d rounds=%d\n", args.threads, args.rounds);
    for (int t = 0; t < args.threads; t++) {
        /* Pages of its own: threads on different nodes record without
         * moving each other's pages. */
        seen[t] = alloc_pages((size_t)args.rounds * sizeof(struct seen));
    }
    for (int test = 0; test < NTESTS; test++) {
        if (tests & (1u << test)) {
            bad |= run_test((enum test)test);
        }
    }
    if (bad) {
        fflush(stdout);
        return 1;
    }
    guest_pass("litmus");
    return 0;
}
