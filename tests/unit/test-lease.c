/*
 * Test the lease logic (dqemu/lease.c) with made-up clocks: a lease is
 * open from the grant until the thread is back (never past its cap),
 * then runs lease_ns; a lease a recall ended is not reopened; the queue
 * of held-back recalls gives back exactly those whose lease ended, in
 * the order they came, and says when to look again.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "lease.h"

#define PAGES 16

static void open_lease_lasts_until_the_thread_is_back_then_lease_ns(
    void **state)
{
    uint64_t w = 0;

    (void)state;
    assert_int_equal(dq_lease_until(&w, 1000), 0);
    dq_lease_open(&w, 1000, 4000);
    /* Open: bounded by the cap, whatever the thread does. */
    assert_int_equal(dq_lease_until(&w, 1000), 5000);
    assert_int_equal(dq_lease_until(&w, 4999), 5000);
    assert_int_equal(dq_lease_until(&w, 5000), 0);
    /* The thread is back at 2000: the lease now ends at 2000 + 300. */
    assert_int_equal(dq_lease_close(&w, 2000, 300), 2300);
    assert_int_equal(dq_lease_until(&w, 2000), 2300);
    assert_int_equal(dq_lease_until(&w, 2299), 2300);
    assert_int_equal(dq_lease_until(&w, 2300), 0);
    /* Closed already: a second thread coming back changes nothing. */
    assert_int_equal(dq_lease_close(&w, 2100, 300), 0);
    assert_int_equal(dq_lease_until(&w, 2200), 2300);
}

static void lease_ended_by_a_recall_is_not_reopened(void **state)
{
    uint64_t w = 0;

    (void)state;
    /* No lease at all: closing is a no-op. */
    assert_int_equal(dq_lease_close(&w, 100, 50), 0);
    assert_int_equal(w, 0);
    /* The cap passed, a recall took the page: the thread comes late. */
    dq_lease_open(&w, 1000, 4000);
    dq_lease_clear(&w);
    assert_int_equal(dq_lease_close(&w, 9000, 300), 0);
    assert_int_equal(dq_lease_until(&w, 9000), 0);
}

static void deadlines_are_even_and_never_zero(void **state)
{
    uint64_t w = 0;

    (void)state;
    /* Bit 0 is OPEN: an odd end is rounded down, still a deadline. */
    dq_lease_open(&w, 1001, 2000);
    assert_true(w & DQ_LEASE_OPEN);
    assert_int_equal(dq_lease_until(&w, 1001), 3000);
    assert_int_equal(dq_lease_close(&w, 1001, 100), 1100);
    assert_false(w & DQ_LEASE_OPEN);
    /* A zero lease ends at once but is not "no lease" in the word. */
    dq_lease_open(&w, 0, 10);
    assert_int_equal(dq_lease_close(&w, 0, 0), 2);
    assert_int_equal(w, 2);
    assert_int_equal(dq_lease_until(&w, 2), 0);
}

/* ---- the queue --------------------------------------------------------- */

typedef struct Q {
    uint64_t lease[PAGES];
    DqLeaseDefer rec[PAGES];
    DqLeaseQueue q;
} Q;

static void q_init(Q *q)
{
    memset(q, 0, sizeof(*q));
    dq_lease_queue_init(&q->q, q->rec, q->lease);
}

static void defer(Q *q, size_t page, DqLeaseDeferKind kind, uint64_t id)
{
    DqLeaseDefer r;

    memset(&r, 0, sizeof(r));
    r.kind = (uint8_t)kind;
    r.id = id;
    r.src = (uint16_t)(page + 100);
    r.keep = (uint8_t)(page & 1);
    r.since = id * 10;
    assert_int_equal(dq_lease_defer(&q->q, page, &r), DQ_OK);
    assert_true(dq_lease_deferred(&q->q, page));
}

/* Take one at @now: its page, or -1 (and *@next) when none is due. */
static long take(Q *q, uint64_t now, bool all, uint64_t *next,
                 DqLeaseDefer *out)
{
    DqLeaseDefer r;
    size_t index = PAGES;

    *next = 12345;
    if (!dq_lease_take(&q->q, now, all, &index, &r, next)) {
        return -1;
    }
    assert_int_equal(*next, 12345);     /* untouched when one is given */
    assert_false(dq_lease_deferred(&q->q, index));
    if (out != NULL) {
        *out = r;
    }
    return (long)index;
}

static void queue_gives_back_ended_leases_in_arrival_order(void **state)
{
    DqLeaseDefer r;
    uint64_t next;
    Q q;

    (void)state;
    q_init(&q);
    assert_int_equal(take(&q, 0, false, &next, NULL), -1);
    assert_int_equal(next, DQ_LEASE_NONE);
    /* Leases: page 3 until 500, page 7 until 300, page 5 open until 900. */
    q.lease[3] = 500;
    q.lease[7] = 300;
    dq_lease_open(&q.lease[5], 100, 800);
    defer(&q, 3, DQ_LEASE_DEFER_REMOTE, 1);
    defer(&q, 7, DQ_LEASE_DEFER_SELF, 2);
    defer(&q, 5, DQ_LEASE_DEFER_REMOTE, 3);
    assert_int_equal(q.q.len, 3);
    /* At 200 nothing is due; look again at 300. */
    assert_int_equal(take(&q, 200, false, &next, NULL), -1);
    assert_int_equal(next, 300);
    /* At 600: 3 and 7 ended, first come first served. */
    assert_int_equal(take(&q, 600, false, &next, &r), 3);
    assert_int_equal(r.kind, DQ_LEASE_DEFER_REMOTE);
    assert_int_equal(r.id, 1);
    assert_int_equal(r.src, 103);
    assert_int_equal(r.keep, 1);
    assert_int_equal(r.since, 10);
    assert_int_equal(take(&q, 600, false, &next, &r), 7);
    assert_int_equal(r.kind, DQ_LEASE_DEFER_SELF);
    assert_int_equal(r.id, 2);
    assert_int_equal(take(&q, 600, false, &next, NULL), -1);
    assert_int_equal(next, 900);
    assert_int_equal(q.q.len, 1);
    /* Page 5's thread is back at 650 with a lease of 100. */
    assert_int_equal(dq_lease_close(&q.lease[5], 650, 100), 750);
    assert_int_equal(take(&q, 700, false, &next, NULL), -1);
    assert_int_equal(next, 750);
    assert_int_equal(take(&q, 750, false, &next, NULL), 5);
    assert_int_equal(take(&q, 750, false, &next, NULL), -1);
    assert_int_equal(next, DQ_LEASE_NONE);
    assert_int_equal(q.q.len, 0);
}

static void queue_keeps_its_links_when_the_middle_goes_first(void **state)
{
    uint64_t next;
    Q q;

    (void)state;
    q_init(&q);
    q.lease[1] = 1000;
    q.lease[2] = 10;            /* ends first */
    q.lease[4] = 1000;
    defer(&q, 1, DQ_LEASE_DEFER_REMOTE, 1);
    defer(&q, 2, DQ_LEASE_DEFER_REMOTE, 2);
    defer(&q, 4, DQ_LEASE_DEFER_REMOTE, 3);
    assert_int_equal(take(&q, 20, false, &next, NULL), 2);
    /* Page 2 comes back behind 4: 1, 4, 2.  Take the middle, the tail. */
    defer(&q, 2, DQ_LEASE_DEFER_SELF, 4);
    q.lease[4] = 0;             /* a lease already cleared: due at once */
    assert_int_equal(take(&q, 20, false, &next, NULL), 4);
    assert_int_equal(take(&q, 20, false, &next, NULL), 2);
    assert_int_equal(take(&q, 20, false, &next, NULL), -1);
    assert_int_equal(next, 1000);
    defer(&q, 9, DQ_LEASE_DEFER_REMOTE, 5);
    q.lease[9] = 1;
    assert_int_equal(take(&q, 1000, false, &next, NULL), 1);
    assert_int_equal(take(&q, 1000, false, &next, NULL), 9);
    assert_int_equal(q.q.head, 0);
    assert_int_equal(q.q.tail, 0);
}

static void one_recall_per_page_and_all_ends_every_lease(void **state)
{
    DqLeaseDefer r;
    uint64_t next;
    long seen = 0;
    Q q;
    long p;

    (void)state;
    q_init(&q);
    q.lease[6] = 5000;
    q.lease[8] = 7000;
    defer(&q, 6, DQ_LEASE_DEFER_REMOTE, 1);
    memset(&r, 0, sizeof(r));
    r.kind = DQ_LEASE_DEFER_SELF;
    assert_int_equal(dq_lease_defer(&q.q, 6, &r), DQ_ERR_USAGE);
    r.kind = DQ_LEASE_DEFER_NONE;
    assert_int_equal(dq_lease_defer(&q.q, 8, &r), DQ_ERR_USAGE);
    assert_false(dq_lease_deferred(&q.q, 8));
    defer(&q, 8, DQ_LEASE_DEFER_SELF, 2);
    assert_int_equal(q.q.len, 2);
    /* Stopping: every lease is over, whatever the clock says. */
    while ((p = take(&q, 0, true, &next, NULL)) >= 0) {
        seen |= 1L << p;
    }
    assert_int_equal(seen, (1L << 6) | (1L << 8));
    assert_int_equal(next, DQ_LEASE_NONE);
    assert_int_equal(q.q.len, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(
            open_lease_lasts_until_the_thread_is_back_then_lease_ns),
        cmocka_unit_test(lease_ended_by_a_recall_is_not_reopened),
        cmocka_unit_test(deadlines_are_even_and_never_zero),
        cmocka_unit_test(queue_gives_back_ended_leases_in_arrival_order),
        cmocka_unit_test(queue_keeps_its_links_when_the_middle_goes_first),
        cmocka_unit_test(one_recall_per_page_and_all_ends_every_lease),
    };

    return cmocka_run_group_tests_name("lease", tests, NULL, NULL);
}
