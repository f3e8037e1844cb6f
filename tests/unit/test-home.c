/*
 * Test that the home policies place pages as promised: master-as-home on
 * node 0, hash stable and evenly spread (per block), first touch decided
 * by the first claim only, with lookups that never claim.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "home.h"

static void master_policy_homes_every_page_on_node_zero(void **state)
{
    DqHome h;
    unsigned home = 99;
    uint64_t p;

    (void)state;
    assert_int_equal(dq_home_init(&h, DQ_HOME_MASTER, 8, 0, 0), DQ_OK);
    for (p = 0; p < 1000; p++) {
        assert_int_equal(dq_home_of(&h, p * 7919), 0);
    }
    assert_true(dq_home_peek(&h, UINT64_MAX, &home));
    assert_int_equal(home, 0);
    /* A claim changes nothing under a fixed policy. */
    assert_int_equal(dq_home_claim(&h, 5, 3, &home), DQ_OK);
    assert_int_equal(home, 0);
    dq_home_destroy(&h);
}

static void hash_policy_is_stable_and_spreads_pages_evenly(void **state)
{
    static const unsigned sizes[] = { 2, 3, 4, 7, 64 };
    const uint64_t pages = 1 << 16;
    unsigned count[DQ_MAX_NODES];
    size_t k;

    (void)state;
    for (k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        unsigned n = sizes[k];
        double mean = (double)pages / n;
        DqHome a, b;
        uint64_t p;
        unsigned i;

        assert_int_equal(dq_home_init(&a, DQ_HOME_HASH, n, 0, 0), DQ_OK);
        assert_int_equal(dq_home_init(&b, DQ_HOME_HASH, n, 0, 0), DQ_OK);
        memset(count, 0, sizeof(count));
        for (p = 0; p < pages; p++) {
            unsigned home = dq_home_of(&a, p);

            assert_true(home < n);
            /* Stable: another instance (another node) agrees. */
            assert_int_equal(home, dq_home_of(&b, p));
            count[home]++;
        }
        for (i = 0; i < n; i++) {
            assert_true(count[i] > mean * 0.9 && count[i] < mean * 1.1);
        }
        dq_home_destroy(&a);
        dq_home_destroy(&b);
    }
}

static void hash_policy_does_not_follow_the_page_order(void **state)
{
    DqHome h;
    unsigned same = 0;
    uint64_t p;

    (void)state;
    assert_int_equal(dq_home_init(&h, DQ_HOME_HASH, 4, 0, 0), DQ_OK);
    for (p = 0; p < 4096; p++) {
        same += dq_home_of(&h, p) == dq_home_of(&h, p + 1);
    }
    /* Neighbours share a home about a quarter of the time, not always. */
    assert_true(same > 4096 / 8 && same < 4096 / 2);
    dq_home_destroy(&h);
}

static void hash_blocks_keep_neighbouring_pages_on_one_home(void **state)
{
    DqHome h;
    uint64_t p;
    unsigned spread[4] = { 0 };

    (void)state;
    assert_int_equal(dq_home_init(&h, DQ_HOME_HASH, 4, 4, 0), DQ_OK);
    for (p = 0; p < 16 * 1024; p++) {
        assert_int_equal(dq_home_of(&h, p), dq_home_of(&h, p & ~15ull));
        spread[dq_home_of(&h, p)]++;
    }
    for (p = 0; p < 4; p++) {
        assert_true(spread[p] > 0);
    }
    dq_home_destroy(&h);
}

static void hash_policy_with_one_node_is_node_zero(void **state)
{
    DqHome h;
    uint64_t p;

    (void)state;
    assert_int_equal(dq_home_init(&h, DQ_HOME_HASH, 1, 0, 0), DQ_OK);
    for (p = 0; p < 1000; p++) {
        assert_int_equal(dq_home_of(&h, p), 0);
    }
    dq_home_destroy(&h);
}

static void first_touch_peek_never_claims(void **state)
{
    DqHome h;
    unsigned home = 77;
    int i;

    (void)state;
    assert_int_equal(dq_home_init(&h, DQ_HOME_FIRST_TOUCH, 4, 0, 16), DQ_OK);
    for (i = 0; i < 3; i++) {
        assert_false(dq_home_peek(&h, 42, &home));
        /* Unclaimed pages go to the arbiter, which decides the claim. */
        assert_int_equal(dq_home_of(&h, 42), DQ_HOME_ARBITER);
    }
    assert_int_equal(home, 77);
    assert_int_equal(h.used, 0);
    dq_home_destroy(&h);
}

static void first_touch_first_claim_wins(void **state)
{
    DqHome h;
    unsigned home = 0;

    (void)state;
    assert_int_equal(dq_home_init(&h, DQ_HOME_FIRST_TOUCH, 4, 0, 16), DQ_OK);
    assert_int_equal(dq_home_claim(&h, 42, 3, &home), DQ_OK);
    assert_int_equal(home, 3);
    assert_int_equal(dq_home_claim(&h, 42, 1, &home), DQ_OK);
    assert_int_equal(home, 3);
    assert_true(dq_home_peek(&h, 42, &home));
    assert_int_equal(home, 3);
    assert_int_equal(dq_home_of(&h, 42), 3);
    /* Other pages are untouched. */
    assert_false(dq_home_peek(&h, 43, &home));
    assert_int_equal(dq_home_of(&h, 43), DQ_HOME_ARBITER);
    dq_home_destroy(&h);
}

static void first_touch_claims_whole_blocks(void **state)
{
    DqHome h;
    unsigned home = 0;

    (void)state;
    assert_int_equal(dq_home_init(&h, DQ_HOME_FIRST_TOUCH, 4, 3, 16), DQ_OK);
    assert_int_equal(dq_home_claim(&h, 17, 2, &home), DQ_OK);
    assert_int_equal(dq_home_of(&h, 16), 2);
    assert_int_equal(dq_home_of(&h, 23), 2);
    assert_false(dq_home_peek(&h, 24, &home));
    assert_false(dq_home_peek(&h, 15, &home));
    dq_home_destroy(&h);
}

static void first_touch_keeps_many_claims_apart(void **state)
{
    DqHome h;
    unsigned home = 0;
    uint64_t p;

    (void)state;
    assert_int_equal(dq_home_init(&h, DQ_HOME_FIRST_TOUCH, 5, 0, 3000),
                     DQ_OK);
    for (p = 0; p < 3000; p++) {
        /* Spread keys widely so probing sees collisions and wrap-around. */
        assert_int_equal(dq_home_claim(&h, p * 0x10001, p % 5, &home), DQ_OK);
        assert_int_equal(home, p % 5);
    }
    for (p = 0; p < 3000; p++) {
        assert_true(dq_home_peek(&h, p * 0x10001, &home));
        assert_int_equal(home, p % 5);
        assert_false(dq_home_peek(&h, p * 0x10001 + 1, &home));
    }
    dq_home_destroy(&h);
}

static void first_touch_full_table_is_reported(void **state)
{
    DqHome h;
    unsigned home = 0;
    uint64_t p;
    DqStatus st = DQ_OK;

    (void)state;
    assert_int_equal(dq_home_init(&h, DQ_HOME_FIRST_TOUCH, 2, 0, 6), DQ_OK);
    for (p = 0; p < 6; p++) {
        assert_int_equal(dq_home_claim(&h, p, 1, &home), DQ_OK);
    }
    /* The table holds at least what was asked for, then says so. */
    for (p = 6; p < 100 && st == DQ_OK; p++) {
        st = dq_home_claim(&h, p, 1, &home);
    }
    assert_int_equal(st, DQ_ERR_HOME_FULL);
    /* Existing claims still answer, lookups of the rest still terminate. */
    assert_int_equal(dq_home_claim(&h, 0, 0, &home), DQ_OK);
    assert_int_equal(home, 1);
    assert_int_equal(dq_home_of(&h, 1000), DQ_HOME_ARBITER);
    dq_home_destroy(&h);
}

static void claim_rejects_bad_nodes_and_pages(void **state)
{
    DqHome h;
    unsigned home = 0;

    (void)state;
    assert_int_equal(dq_home_init(&h, DQ_HOME_FIRST_TOUCH, 4, 0, 16), DQ_OK);
    assert_int_equal(dq_home_claim(&h, 1, 4, &home), DQ_ERR_RANGE);
    assert_int_equal(dq_home_claim(&h, UINT64_MAX, 1, &home), DQ_ERR_RANGE);
    assert_false(dq_home_peek(&h, UINT64_MAX, &home));
    assert_int_equal(h.used, 0);
    dq_home_destroy(&h);
}

static void init_rejects_bad_arguments(void **state)
{
    DqHome h;

    (void)state;
    assert_int_equal(dq_home_init(&h, DQ_HOME_HASH, 0, 0, 0), DQ_ERR_RANGE);
    assert_int_equal(dq_home_init(&h, DQ_HOME_HASH, DQ_MAX_NODES + 1, 0, 0),
                     DQ_ERR_RANGE);
    assert_int_equal(dq_home_init(&h, DQ_HOME__COUNT, 2, 0, 0), DQ_ERR_RANGE);
    assert_int_equal(dq_home_init(&h, DQ_HOME_HASH, 2, 32, 0), DQ_ERR_RANGE);
    assert_int_equal(dq_home_init(&h, DQ_HOME_FIRST_TOUCH, 2, 0, 0),
                     DQ_ERR_RANGE);
    assert_int_equal(dq_home_init(&h, DQ_HOME_HASH, DQ_MAX_NODES, 0, 0),
                     DQ_OK);
    dq_home_destroy(&h);
}

static void policy_names_round_trip(void **state)
{
    DqHomePolicy p = DQ_HOME__COUNT;
    int i;

    (void)state;
    for (i = 0; i < DQ_HOME__COUNT; i++) {
        assert_int_equal(dq_home_policy_parse(dq_home_policy_str(i), &p),
                         DQ_OK);
        assert_int_equal(p, i);
    }
    assert_string_equal(dq_home_policy_str(DQ_HOME_FIRST_TOUCH),
                        "first-touch");
    assert_int_equal(dq_home_policy_parse("nearest", &p), DQ_ERR_USAGE);
    assert_string_equal(dq_home_policy_str(DQ_HOME__COUNT), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(master_policy_homes_every_page_on_node_zero),
        cmocka_unit_test(hash_policy_is_stable_and_spreads_pages_evenly),
        cmocka_unit_test(hash_policy_does_not_follow_the_page_order),
        cmocka_unit_test(hash_blocks_keep_neighbouring_pages_on_one_home),
        cmocka_unit_test(hash_policy_with_one_node_is_node_zero),
        cmocka_unit_test(first_touch_peek_never_claims),
        cmocka_unit_test(first_touch_first_claim_wins),
        cmocka_unit_test(first_touch_claims_whole_blocks),
        cmocka_unit_test(first_touch_keeps_many_claims_apart),
        cmocka_unit_test(first_touch_full_table_is_reported),
        cmocka_unit_test(claim_rejects_bad_nodes_and_pages),
        cmocka_unit_test(init_rejects_bad_arguments),
        cmocka_unit_test(policy_names_round_trip),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
