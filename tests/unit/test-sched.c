/*
 * Test that the placement policies put new threads where they promise
 * (round-robin, master, fill, spread), that exits lower the counts the
 * policies see, that hints steer placement and bad hints are error codes,
 * and that --placement values parse with an error listing the names.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "dq-sched.h"

static unsigned place(DqSched *s, DqSchedHint hint)
{
    unsigned node = 999;

    assert_int_equal(dq_sched_place(s, hint, &node), DQ_OK);
    assert_true(node < s->nodes);
    return node;
}

static unsigned place_any(DqSched *s)
{
    return place(s, dq_sched_hint_any());
}

static void init_rejects_bad_sizes_and_policies(void **state)
{
    DqSched s;

    (void)state;
    assert_int_equal(dq_sched_init(&s, DQ_SCHED_SPREAD, 0, 4), DQ_ERR_RANGE);
    assert_int_equal(dq_sched_init(&s, DQ_SCHED_SPREAD, DQ_MAX_NODES + 1, 4),
                     DQ_ERR_RANGE);
    assert_int_equal(dq_sched_init(&s, DQ_SCHED_FILL, 2, 0), DQ_ERR_RANGE);
    assert_int_equal(dq_sched_init(&s, DQ_SCHED__COUNT, 2, 1), DQ_ERR_RANGE);
    assert_int_equal(dq_sched_init(&s, DQ_SCHED_SPREAD, DQ_MAX_NODES, 1),
                     DQ_OK);
    dq_sched_destroy(&s);
}

static void main_thread_counts_on_the_master_from_the_start(void **state)
{
    DqSched s;
    unsigned i;

    (void)state;
    assert_int_equal(dq_sched_init(&s, DQ_SCHED_ROUND_ROBIN, 4, 2), DQ_OK);
    assert_int_equal(dq_sched_live(&s, 0), 1);
    for (i = 1; i < 4; i++) {
        assert_int_equal(dq_sched_live(&s, i), 0);
    }
    assert_int_equal(dq_sched_live(&s, 4), 0);
    dq_sched_destroy(&s);
}

static void round_robin_cycles_over_nodes_starting_after_the_master(
    void **state)
{
    static const unsigned want[] = { 1, 2, 3, 0, 1, 2, 3, 0, 1 };
    DqSched s;
    size_t i;

    (void)state;
    assert_int_equal(dq_sched_init(&s, DQ_SCHED_ROUND_ROBIN, 4, 1), DQ_OK);
    for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        assert_int_equal(place_any(&s), want[i]);
    }
    assert_int_equal(dq_sched_live(&s, 0), 3);
    assert_int_equal(dq_sched_live(&s, 1), 3);
    dq_sched_destroy(&s);
}

static void round_robin_on_one_node_always_picks_the_master(void **state)
{
    DqSched s;
    int i;

    (void)state;
    assert_int_equal(dq_sched_init(&s, DQ_SCHED_ROUND_ROBIN, 1, 8), DQ_OK);
    for (i = 0; i < 5; i++) {
        assert_int_equal(place_any(&s), 0);
    }
    assert_int_equal(dq_sched_live(&s, 0), 6);
    dq_sched_destroy(&s);
}

static void master_policy_places_everything_on_node_zero(void **state)
{
    DqSched s;
    int i;

    (void)state;
    assert_int_equal(dq_sched_init(&s, DQ_SCHED_MASTER, 8, 1), DQ_OK);
    for (i = 0; i < 20; i++) {
        assert_int_equal(place_any(&s), 0);
    }
    assert_int_equal(dq_sched_live(&s, 0), 21);
    dq_sched_destroy(&s);
}

static void fill_uses_each_nodes_cpus_before_the_next_node(void **state)
{
    /* Node 0 already runs the main thread: one free CPU of two. */
    static const unsigned want[] = { 0, 1, 1, 2, 2 };
    DqSched s;
    size_t i;

    (void)state;
    assert_int_equal(dq_sched_init(&s, DQ_SCHED_FILL, 3, 2), DQ_OK);
    for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        assert_int_equal(place_any(&s), want[i]);
    }
    dq_sched_destroy(&s);
}

static void fill_oversubscribes_evenly_once_every_cpu_is_taken(void **state)
{
    DqSched s;
    unsigned i;

    (void)state;
    assert_int_equal(dq_sched_init(&s, DQ_SCHED_FILL, 3, 2), DQ_OK);
    for (i = 0; i < 5; i++) {
        place_any(&s);          /* 2 + 2 + 2 with the main thread */
    }
    assert_int_equal(place_any(&s), 0);
    assert_int_equal(place_any(&s), 1);
    assert_int_equal(place_any(&s), 2);
    assert_int_equal(place_any(&s), 0);
    dq_sched_destroy(&s);
}

static void fill_reuses_a_cpu_freed_by_an_exit(void **state)
{
    DqSched s;
    unsigned i;

    (void)state;
    assert_int_equal(dq_sched_init(&s, DQ_SCHED_FILL, 3, 2), DQ_OK);
    for (i = 0; i < 4; i++) {
        place_any(&s);          /* nodes 0, 0, 1, 1, 2 */
    }
    assert_int_equal(dq_sched_exit(&s, 0), DQ_OK);
    assert_int_equal(place_any(&s), 0);
    assert_int_equal(place_any(&s), 2);
    dq_sched_destroy(&s);
}

static void spread_picks_the_least_loaded_node_lowest_id_on_ties(
    void **state)
{
    static const unsigned want[] = { 1, 2, 3, 0, 1, 2, 3 };
    DqSched s;
    size_t i;

    (void)state;
    assert_int_equal(dq_sched_init(&s, DQ_SCHED_SPREAD, 4, 1), DQ_OK);
    for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        assert_int_equal(place_any(&s), want[i]);
    }
    dq_sched_destroy(&s);
}

static void spread_follows_exits_back_to_the_emptied_node(void **state)
{
    DqSched s;
    unsigned i;

    (void)state;
    assert_int_equal(dq_sched_init(&s, DQ_SCHED_SPREAD, 3, 1), DQ_OK);
    for (i = 0; i < 5; i++) {
        place_any(&s);          /* 2 threads on each node */
    }
    assert_int_equal(dq_sched_exit(&s, 2), DQ_OK);
    assert_int_equal(dq_sched_exit(&s, 2), DQ_OK);
    assert_int_equal(dq_sched_live(&s, 2), 0);
    assert_int_equal(place_any(&s), 2);
    assert_int_equal(place_any(&s), 2);
    assert_int_equal(place_any(&s), 0);
    dq_sched_destroy(&s);
}

static void exit_of_an_unknown_node_or_empty_node_is_an_error(void **state)
{
    DqSched s;

    (void)state;
    assert_int_equal(dq_sched_init(&s, DQ_SCHED_SPREAD, 2, 1), DQ_OK);
    assert_int_equal(dq_sched_exit(&s, 2), DQ_ERR_SCHED_NO_NODE);
    assert_int_equal(dq_sched_exit(&s, UINT32_MAX), DQ_ERR_SCHED_NO_NODE);
    assert_int_equal(dq_sched_exit(&s, 1), DQ_ERR_SCHED_NO_THREAD);
    assert_int_equal(dq_sched_exit(&s, 0), DQ_OK);     /* the main thread */
    assert_int_equal(dq_sched_exit(&s, 0), DQ_ERR_SCHED_NO_THREAD);
    assert_int_equal(dq_sched_live(&s, 0), 0);
    dq_sched_destroy(&s);
}

static void node_hint_wins_and_leaves_round_robin_in_sequence(void **state)
{
    DqSched s;

    (void)state;
    assert_int_equal(dq_sched_init(&s, DQ_SCHED_ROUND_ROBIN, 4, 1), DQ_OK);
    assert_int_equal(place_any(&s), 1);
    assert_int_equal(place(&s, dq_sched_hint_node(3)), 3);
    assert_int_equal(place(&s, dq_sched_hint_node(3)), 3);
    assert_int_equal(place_any(&s), 2);
    assert_int_equal(dq_sched_live(&s, 3), 2);
    dq_sched_destroy(&s);
}

static void node_hint_beyond_the_cluster_is_an_error_not_a_placement(
    void **state)
{
    DqSched s;
    unsigned node = 77;

    (void)state;
    assert_int_equal(dq_sched_init(&s, DQ_SCHED_SPREAD, 2, 1), DQ_OK);
    assert_int_equal(dq_sched_place(&s, dq_sched_hint_node(2), &node),
                     DQ_ERR_SCHED_NO_NODE);
    assert_int_equal(dq_sched_place(&s, dq_sched_hint_node(UINT32_MAX),
                                    &node), DQ_ERR_SCHED_NO_NODE);
    assert_int_equal(node, 77);
    assert_int_equal(dq_sched_live(&s, 0), 1);
    assert_int_equal(dq_sched_live(&s, 1), 0);
    dq_sched_destroy(&s);
}

static void unknown_hint_kind_is_an_error(void **state)
{
    DqSched s;
    DqSchedHint h = { .kind = (DqSchedHintKind)42, .value = 0 };
    unsigned node = 77;

    (void)state;
    assert_int_equal(dq_sched_init(&s, DQ_SCHED_SPREAD, 2, 1), DQ_OK);
    assert_int_equal(dq_sched_place(&s, h, &node), DQ_ERR_RANGE);
    assert_int_equal(node, 77);
    dq_sched_destroy(&s);
}

static void group_members_follow_the_groups_first_thread(void **state)
{
    DqSched s;
    unsigned a, b;

    (void)state;
    assert_int_equal(dq_sched_init(&s, DQ_SCHED_ROUND_ROBIN, 4, 1), DQ_OK);
    a = place(&s, dq_sched_hint_group(7));
    b = place(&s, dq_sched_hint_group(9));
    assert_int_equal(a, 1);
    assert_int_equal(b, 2);
    assert_int_equal(place(&s, dq_sched_hint_group(7)), a);
    assert_int_equal(place(&s, dq_sched_hint_group(9)), b);
    assert_int_equal(place(&s, dq_sched_hint_group(7)), a);
    /* Later members did not move the round-robin sequence. */
    assert_int_equal(place_any(&s), 3);
    assert_int_equal(dq_sched_live(&s, a), 3);
    dq_sched_destroy(&s);
}

static void group_table_full_is_an_error_old_groups_still_work(void **state)
{
    DqSched s;
    unsigned node = 77;
    uint32_t g;

    (void)state;
    assert_int_equal(dq_sched_init(&s, DQ_SCHED_SPREAD, 2, 1), DQ_OK);
    for (g = 0; g < DQ_SCHED_MAX_GROUPS; g++) {
        place(&s, dq_sched_hint_group(g * 1000));
    }
    assert_int_equal(dq_sched_place(&s, dq_sched_hint_group(1), &node),
                     DQ_ERR_SCHED_GROUPS_FULL);
    assert_int_equal(node, 77);
    place(&s, dq_sched_hint_group(0));
    dq_sched_destroy(&s);
}

#define RACE_THREADS 4
#define RACE_ROUNDS 2000

static void *race_place_and_exit(void *arg)
{
    DqSched *s = arg;
    unsigned node;
    int i;

    for (i = 0; i < RACE_ROUNDS; i++) {
        if (dq_sched_place(s, dq_sched_hint_any(), &node) != DQ_OK ||
            dq_sched_exit(s, node) != DQ_OK) {
            return s;
        }
    }
    /* Keep one thread placed, so the final counts are not all zero. */
    return dq_sched_place(s, dq_sched_hint_any(), &node) == DQ_OK ? NULL : s;
}

static void concurrent_places_and_exits_keep_counts_exact(void **state)
{
    pthread_t t[RACE_THREADS];
    DqSched s;
    unsigned i, total = 0;

    (void)state;
    assert_int_equal(dq_sched_init(&s, DQ_SCHED_ROUND_ROBIN, 3, 1), DQ_OK);
    for (i = 0; i < RACE_THREADS; i++) {
        assert_int_equal(pthread_create(&t[i], NULL, race_place_and_exit, &s),
                         0);
    }
    for (i = 0; i < RACE_THREADS; i++) {
        void *ret;

        assert_int_equal(pthread_join(t[i], &ret), 0);
        assert_null(ret);
    }
    for (i = 0; i < 3; i++) {
        total += dq_sched_live(&s, i);
    }
    assert_int_equal(total, RACE_THREADS + 1);
    dq_sched_destroy(&s);
}

static void policy_names_and_aliases_parse(void **state)
{
    static const struct {
        const char *name;
        DqSchedPolicy policy;
    } ok[] = {
        { "round-robin", DQ_SCHED_ROUND_ROBIN }, { "rr", DQ_SCHED_ROUND_ROBIN },
        { "master", DQ_SCHED_MASTER },
        { "fill", DQ_SCHED_FILL }, { "packed", DQ_SCHED_FILL },
        { "spread", DQ_SCHED_SPREAD }, { "least-loaded", DQ_SCHED_SPREAD },
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        DqSchedPolicy p = DQ_SCHED__COUNT;
        char err[DQ_ERRBUF_SIZE] = "";

        assert_int_equal(dq_sched_policy_parse(ok[i].name, &p, err,
                                               sizeof(err)), DQ_OK);
        assert_int_equal(p, ok[i].policy);
        assert_string_equal(err, "");
    }
    assert_string_equal(dq_sched_policy_str(DQ_SCHED_ROUND_ROBIN),
                        "round-robin");
    assert_string_equal(dq_sched_policy_str(DQ_SCHED_SPREAD), "spread");
    assert_string_equal(dq_sched_policy_str(DQ_SCHED__COUNT), "?");
}

static void bad_policy_name_error_lists_the_valid_names(void **state)
{
    static const char *const bad[] = { "", "Round-Robin", "fill ", "random" };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        DqSchedPolicy p = DQ_SCHED__COUNT;
        char err[DQ_ERRBUF_SIZE] = "";
        char want[DQ_ERRBUF_SIZE];

        assert_int_equal(dq_sched_policy_parse(bad[i], &p, err, sizeof(err)),
                         DQ_ERR_USAGE);
        assert_int_equal(p, DQ_SCHED__COUNT);
        snprintf(want, sizeof(want),
                 "'%s' is not a placement policy (one of: round-robin (rr), "
                 "master, fill (packed), spread (least-loaded))", bad[i]);
        assert_string_equal(err, want);
    }
    assert_int_equal(dq_sched_policy_parse(NULL, NULL, NULL, 0),
                     DQ_ERR_USAGE);
}

static void policy_parse_error_truncates_safely(void **state)
{
    DqSchedPolicy p;
    char err[24];
    size_t n;

    (void)state;
    for (n = 1; n <= sizeof(err); n++) {
        memset(err, 'x', sizeof(err));
        assert_int_equal(dq_sched_policy_parse("nope", &p, err, n),
                         DQ_ERR_USAGE);
        assert_true(strlen(err) == n - 1);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(init_rejects_bad_sizes_and_policies),
        cmocka_unit_test(main_thread_counts_on_the_master_from_the_start),
        cmocka_unit_test(
            round_robin_cycles_over_nodes_starting_after_the_master),
        cmocka_unit_test(round_robin_on_one_node_always_picks_the_master),
        cmocka_unit_test(master_policy_places_everything_on_node_zero),
        cmocka_unit_test(fill_uses_each_nodes_cpus_before_the_next_node),
        cmocka_unit_test(fill_oversubscribes_evenly_once_every_cpu_is_taken),
        cmocka_unit_test(fill_reuses_a_cpu_freed_by_an_exit),
        cmocka_unit_test(
            spread_picks_the_least_loaded_node_lowest_id_on_ties),
        cmocka_unit_test(spread_follows_exits_back_to_the_emptied_node),
        cmocka_unit_test(exit_of_an_unknown_node_or_empty_node_is_an_error),
        cmocka_unit_test(node_hint_wins_and_leaves_round_robin_in_sequence),
        cmocka_unit_test(
            node_hint_beyond_the_cluster_is_an_error_not_a_placement),
        cmocka_unit_test(unknown_hint_kind_is_an_error),
        cmocka_unit_test(group_members_follow_the_groups_first_thread),
        cmocka_unit_test(group_table_full_is_an_error_old_groups_still_work),
        cmocka_unit_test(concurrent_places_and_exits_keep_counts_exact),
        cmocka_unit_test(policy_names_and_aliases_parse),
        cmocka_unit_test(bad_policy_name_error_lists_the_valid_names),
        cmocka_unit_test(policy_parse_error_truncates_safely),
    };

    return cmocka_run_group_tests_name("sched", tests, NULL, NULL);
}
