/*
 * at-ops.h - run a table of atomic "add" operations, each on its own
 * shared counter, from THREADS threads for ROUNDS rounds, and check every
 * total exactly (exclusive.c, excp-atomic.c).
 *
 * Per round, thread t adds (t + 1) << shift to each counter, so counter k
 * ends at ROUNDS * T(T+1)/2 << shift modulo 2^bits.  Shifts make
 * double-word operations carry from the low half into the high one, so a
 * pair not updated as one unit loses carries.
 *
 * Counter k lives in the 16-byte granule k of one page-aligned area, at
 * byte @offset of it: 0 for naturally aligned operations, something else
 * to place an operation off its natural alignment (but inside its
 * granule).  All counters share one page, so on several nodes every
 * operation fights for that page.
 *
 * Optionally each thread also adds 1 per round to its own byte of a
 * shared array (@lane_add): a byte operation done as a wider
 * read-modify-write would overwrite a neighbour's byte.
 *
 * Output, one line per counter: "<name>: <value>" (decimal, or 32 hex
 * digits for 128 bits), then "byte lanes: ok" when lanes are used; a
 * wrong value adds "FAIL <name>: want W, got G" and the exit status is 1.
 */
#ifndef DQEMU_AT_OPS_H
#define DQEMU_AT_OPS_H

#include "at-common.h"

struct at_op {
    const char *name;
    int bits;                   /* 8, 16, 32, 64 or 128 */
    int shift;                  /* thread t adds (t + 1) << shift per round;
                                   64 << shift must still fit 64 bits */
    unsigned offset;            /* byte offset of the counter in its granule */
    /* One atomic addition of @d at @p (the low half, carried, for 128). */
    void (*add)(void *p, uint64_t d);
};

#define AT_GRANULE   16
#define AT_MAX_OPS   32

static struct {
    uint8_t granule[AT_MAX_OPS][AT_GRANULE];
    uint8_t lane[AT_MAX_THREADS];
} at_ops_area __attribute__((aligned(4096)));

static const struct at_op *at_ops_table;
static int at_ops_count;
static void (*at_ops_lane_add)(uint8_t *p);
static int at_ops_rounds;

static inline void *at_op_addr(int k)
{
    return &at_ops_area.granule[k][at_ops_table[k].offset];
}

static void at_ops_worker(int t)
{
    for (int i = 0; i < at_ops_rounds; i++) {
        for (int k = 0; k < at_ops_count; k++) {
            at_ops_table[k].add(at_op_addr(k),
                                (uint64_t)(t + 1) << at_ops_table[k].shift);
        }
        if (at_ops_lane_add != NULL) {
            at_ops_lane_add(&at_ops_area.lane[t]);
        }
    }
}

/* A counter's value as "%llu", or as 32 hex digits for 128 bits. */
static void at_format(char *buf, size_t size, int bits, uint64_t lo, uint64_t hi)
{
    if (bits == 128) {
        snprintf(buf, size, "0x%016llx%016llx", (unsigned long long)hi,
                 (unsigned long long)lo);
    } else {
        uint64_t mask = bits == 64 ? ~0ull : (1ull << bits) - 1;

        snprintf(buf, size, "%llu", (unsigned long long)(lo & mask));
    }
}

/*
 * Parse the command line, print "<prog> (<isa>): threads=T rounds=R",
 * run the operations, print and check the results; main's return value.
 */
static inline int at_ops_main(int argc, char **argv, const char *prog, const char *isa,
                              const struct at_op *ops, int nops,
                              void (*lane_add)(uint8_t *p))
{
    struct at_args args = at_parse_args(argc, argv, 1);
    /* Sum over threads of (t + 1), times ROUNDS: below 2^32 for the limits. */
    uint64_t units = (uint64_t)args.rounds * (uint64_t)args.threads *
                     (uint64_t)(args.threads + 1) / 2;
    int bad = 0;

    CHECK(nops <= AT_MAX_OPS, "%d operations, room for %d", nops, AT_MAX_OPS);
    for (int k = 0; k < nops; k++) {
        CHECK(ops[k].offset + (unsigned)ops[k].bits / 8 <= AT_GRANULE,
              "%s: offset %u leaves its granule", ops[k].name, ops[k].offset);
    }
    at_ops_table = ops;
    at_ops_count = nops;
    at_ops_lane_add = lane_add;
    at_ops_rounds = args.rounds;

    printf("%s (%s): threads=%d rounds=%d\n", prog, isa, args.threads, args.rounds);
    at_run_threads(args.threads, at_ops_worker);

    for (int k = 0; k < nops; k++) {
        const struct at_op *op = &ops[k];
        /* units << shift as a 128-bit number, then cut to the width. */
        uint64_t want_lo = units << op->shift;
        uint64_t want_hi = op->shift ? units >> (64 - op->shift) : 0;
        uint64_t got_lo = 0, got_hi = 0;
        char want[40], got[40];

        /* Every ISA here is little-endian. */
        memcpy(&got_lo, at_op_addr(k), op->bits >= 64 ? 8 : (size_t)op->bits / 8);
        if (op->bits == 128) {
            memcpy(&got_hi, (uint8_t *)at_op_addr(k) + 8, 8);
        } else {
            want_hi = 0;
        }
        at_format(want, sizeof(want), op->bits, want_lo, want_hi);
        at_format(got, sizeof(got), op->bits, got_lo, got_hi);
        printf("%s: %s\n", op->name, got);
        if (strcmp(want, got) != 0) {
            printf("FAIL %s: want %s, got %s\n", op->name, want, got);
            bad = 1;
        }
    }
    if (lane_add != NULL) {
        int lanes_bad = 0;

        for (int t = 0; t < args.threads; t++) {
            if (at_ops_area.lane[t] != (uint8_t)args.rounds) {
                printf("FAIL byte lane %d: want %u, got %u\n", t,
                       (unsigned)(uint8_t)args.rounds, (unsigned)at_ops_area.lane[t]);
                lanes_bad = 1;
            }
        }
        printf("byte lanes: %s\n", lanes_bad ? "wrong" : "ok");
        bad |= lanes_bad;
    }
    if (bad) {
        fflush(stdout);
        return 1;
    }
    guest_pass(prog);
    return 0;
}

#endif
