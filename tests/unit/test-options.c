/*
 * Test that dqemu's option table parses long options, their "=value" form
 * and DQEMU_* variables, and rejects bad values with a message naming the
 * option.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "dqemu.h"
#include "dq-sched.h"

static void parse_ok(DqOptions *o, const char *name, const char *next,
                     int want_consumed)
{
    char err[DQ_ERRBUF_SIZE] = "";
    int consumed = -1;

    assert_int_equal(dq_options_parse(o, name, next, &consumed, err,
                                      sizeof(err)), DQ_OK);
    assert_int_equal(consumed, want_consumed);
    assert_string_equal(err, "");
}

static void defaults_are_one_node_without_stats(void **state)
{
    DqOptions o;

    (void)state;
    memset(&o, 0xa5, sizeof(o));
    dq_options_init(&o);
    assert_int_equal(o.nodes, 1);
    assert_false(o.stats);
    assert_int_equal(o.placement, DQ_SCHED_ROUND_ROBIN);
}

static void placement_takes_a_policy_or_its_alias(void **state)
{
    DqOptions o;

    (void)state;
    dq_options_init(&o);
    parse_ok(&o, "placement", "spread", 2);
    assert_int_equal(o.placement, DQ_SCHED_SPREAD);
    parse_ok(&o, "placement=packed", "prog", 1);
    assert_int_equal(o.placement, DQ_SCHED_FILL);
}

static void bad_placement_names_the_option_and_the_choices(void **state)
{
    DqOptions o;
    char err[DQ_ERRBUF_SIZE] = "";
    int consumed;

    (void)state;
    dq_options_init(&o);
    assert_int_equal(dq_options_parse(&o, "placement", "nearest", &consumed,
                                      err, sizeof(err)), DQ_ERR_USAGE);
    assert_non_null(strstr(err, "--placement"));
    assert_non_null(strstr(err, "nearest"));
    assert_non_null(strstr(err, "round-robin"));
    assert_int_equal(o.placement, DQ_SCHED_ROUND_ROBIN);
}

static void nodes_takes_the_next_argument(void **state)
{
    DqOptions o;

    (void)state;
    dq_options_init(&o);
    parse_ok(&o, "nodes", "4", 2);
    assert_int_equal(o.nodes, 4);
}

static void nodes_accepts_equals_form(void **state)
{
    DqOptions o;

    (void)state;
    dq_options_init(&o);
    parse_ok(&o, "nodes=64", "prog", 1);
    assert_int_equal(o.nodes, 64);
}

static void nodes_rejects_bad_counts_naming_the_option(void **state)
{
    static const char *const bad[] = {
        "0", "65", "-1", "+2", "4x", "", "x", "99999999999999999999999",
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        DqOptions o;
        char err[DQ_ERRBUF_SIZE] = "";
        int consumed;

        dq_options_init(&o);
        assert_int_equal(dq_options_parse(&o, "nodes", bad[i], &consumed,
                                          err, sizeof(err)), DQ_ERR_RANGE);
        assert_non_null(strstr(err, "--nodes"));
        assert_int_equal(o.nodes, 1);
    }
}

static void nodes_without_value_is_a_usage_error(void **state)
{
    DqOptions o;
    char err[DQ_ERRBUF_SIZE] = "";
    int consumed;

    (void)state;
    dq_options_init(&o);
    assert_int_equal(dq_options_parse(&o, "nodes", NULL, &consumed, err,
                                      sizeof(err)), DQ_ERR_USAGE);
    assert_non_null(strstr(err, "--nodes needs a value"));
}

static void stats_is_a_flag_that_never_eats_the_program(void **state)
{
    DqOptions o;

    (void)state;
    dq_options_init(&o);
    parse_ok(&o, "stats", "./prog", 1);
    assert_true(o.stats);
    parse_ok(&o, "stats=off", NULL, 1);
    assert_false(o.stats);
}

static void stats_json_takes_a_file_apart_from_stats(void **state)
{
    DqOptions o;
    char err[DQ_ERRBUF_SIZE] = "";
    int consumed;

    (void)state;
    dq_options_init(&o);
    assert_null(o.stats_json);
    parse_ok(&o, "stats-json", "out.json", 2);
    assert_string_equal(o.stats_json, "out.json");
    assert_false(o.stats);
    parse_ok(&o, "stats-json=/tmp/s.json", "./prog", 1);
    assert_string_equal(o.stats_json, "/tmp/s.json");
    assert_int_equal(dq_options_parse(&o, "stats-json=", NULL, &consumed,
                                      err, sizeof(err)), DQ_ERR_USAGE);
    assert_non_null(strstr(err, "--stats-json: empty value"));
}

static void unknown_options_are_left_to_qemu(void **state)
{
    static const char *const theirs[] = {
        "L", "strace", "cpu", "node", "nodesx", "statsx", "d", "",
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(theirs) / sizeof(theirs[0]); i++) {
        DqOptions o;
        int consumed = -1;

        dq_options_init(&o);
        assert_int_equal(dq_options_parse(&o, theirs[i], "x", &consumed,
                                          NULL, 0), DQ_OK);
        assert_int_equal(consumed, 0);
    }
}

static const char *fake_env_nodes;
static const char *fake_env_stats;

static const char *fake_getenv(const char *name)
{
    if (strcmp(name, "DQEMU_NODES") == 0) {
        return fake_env_nodes;
    }
    if (strcmp(name, "DQEMU_STATS") == 0) {
        return fake_env_stats;
    }
    return NULL;
}

static void environment_sets_options(void **state)
{
    DqOptions o;
    char err[DQ_ERRBUF_SIZE] = "";

    (void)state;
    dq_options_init(&o);
    fake_env_nodes = "3";
    fake_env_stats = "yes";
    assert_int_equal(dq_options_from_env(&o, fake_getenv, err, sizeof(err)),
                     DQ_OK);
    assert_int_equal(o.nodes, 3);
    assert_true(o.stats);
}

static void bad_environment_value_names_the_variable(void **state)
{
    DqOptions o;
    char err[DQ_ERRBUF_SIZE] = "";

    (void)state;
    dq_options_init(&o);
    fake_env_nodes = NULL;
    fake_env_stats = "maybe";
    assert_int_equal(dq_options_from_env(&o, fake_getenv, err, sizeof(err)),
                     DQ_ERR_USAGE);
    assert_non_null(strstr(err, "DQEMU_STATS"));
    assert_non_null(strstr(err, "maybe"));
}

static void worker_options_go_together(void **state)
{
    DqOptions o;
    char err[DQ_ERRBUF_SIZE] = "";

    (void)state;
    dq_options_init(&o);
    o.nodes = 4;
    assert_int_equal(dq_options_validate(&o, err, sizeof(err)), DQ_OK);

    parse_ok(&o, "worker", "--master", 1);
    assert_true(o.worker);
    assert_int_equal(dq_options_validate(&o, err, sizeof(err)), DQ_ERR_USAGE);
    assert_non_null(strstr(err, "--worker needs --master"));
    parse_ok(&o, "master", "tcp://127.0.0.1:7000", 2);
    parse_ok(&o, "node-id=3", NULL, 1);
    assert_int_equal(o.node_id, 3);
    assert_string_equal(o.master, "tcp://127.0.0.1:7000");
    /* Over TCP a worker must prove membership, or say it will not. */
    assert_int_equal(dq_options_validate(&o, err, sizeof(err)), DQ_ERR_USAGE);
    assert_non_null(strstr(err, "--worker needs --cluster-key"));
    parse_ok(&o, "insecure", NULL, 1);
    assert_int_equal(dq_options_validate(&o, err, sizeof(err)), DQ_OK);

    /* The master's own options are not for a worker, and vice versa. */
    o.listen = "tcp://127.0.0.1:7001";
    assert_int_equal(dq_options_validate(&o, err, sizeof(err)), DQ_ERR_USAGE);
    assert_non_null(strstr(err, "--listen"));
    dq_options_init(&o);
    parse_ok(&o, "node-id", "2", 2);
    assert_int_equal(dq_options_validate(&o, err, sizeof(err)), DQ_ERR_USAGE);
    assert_non_null(strstr(err, "--node-id is only for a --worker"));
    dq_options_init(&o);
    parse_ok(&o, "listen", "tcp://0.0.0.0:7000", 2);
    assert_int_equal(dq_options_validate(&o, err, sizeof(err)), DQ_ERR_USAGE);
    assert_non_null(strstr(err, "--listen needs --nodes"));
    o.nodes = 2;
    assert_int_equal(dq_options_validate(&o, err, sizeof(err)), DQ_ERR_USAGE);
    assert_non_null(strstr(err, "--listen needs --cluster-key"));
    parse_ok(&o, "cluster-key", "/k", 2);
    assert_int_equal(dq_options_validate(&o, err, sizeof(err)), DQ_OK);
}

/* The cluster options that exclude each other say which and why. */
static void cluster_option_conflicts_are_named(void **state)
{
    static const struct {
        const char *a, *av, *b, *bv, *text;
    } cases[] = {
        { "insecure", NULL, "cluster-key", "/k", "not with --cluster-key" },
        { "hostfile", "/h", "hosts", "a,b", "alternatives" },
        { "launcher", "rsh", "nodes", "2", "--launcher is only for" },
        { "remote-dqemu", "/x", "nodes", "2", "--remote-dqemu is only for" },
        { "hostfile", "/h", "listen", "tcp://*:7000", "--listen waits" },
        { "cluster-key-stdin", NULL, "nodes", "2", "only for a --worker" },
        { "stdin-lifeline", NULL, "nodes", "2", "only for a --worker" },
    };
    DqOptions o;
    char err[DQ_ERRBUF_SIZE];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        dq_options_init(&o);
        parse_ok(&o, cases[i].a, cases[i].av, cases[i].av ? 2 : 1);
        parse_ok(&o, cases[i].b, cases[i].bv, cases[i].bv ? 2 : 1);
        assert_int_equal(dq_options_validate(&o, err, sizeof(err)),
                         DQ_ERR_USAGE);
        assert_non_null(strstr(err, cases[i].text));
    }
    /* A local master's ipc:// endpoint needs no key: the file system guards it. */
    dq_options_init(&o);
    parse_ok(&o, "worker", NULL, 1);
    parse_ok(&o, "master", "ipc:///tmp/dqemu-x/0", 2);
    parse_ok(&o, "node-id", "1", 2);
    assert_int_equal(dq_options_validate(&o, err, sizeof(err)), DQ_OK);
    assert_int_equal(dq_options_parse(&o, "sim-link-delay", "1000001", &(int){0},
                                      err, sizeof(err)), DQ_ERR_RANGE);
}

static void endpoints_and_ids_are_checked_naming_the_option(void **state)
{
    static const char *const bad_endpoints[] = {
        "127.0.0.1:7000", "tcp://", "tcp://host", "tcp://:7000",
        "tcp://host:70000", "tcp://host:x", "udp://host:1",
    };
    DqOptions o;
    char err[DQ_ERRBUF_SIZE];
    int consumed;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(bad_endpoints) / sizeof(bad_endpoints[0]); i++) {
        dq_options_init(&o);
        assert_int_equal(dq_options_parse(&o, "master", bad_endpoints[i],
                                          &consumed, err, sizeof(err)),
                         DQ_ERR_USAGE);
        assert_non_null(strstr(err, "--master"));
        assert_non_null(strstr(err, bad_endpoints[i]));
        assert_null(o.master);
    }
    dq_options_init(&o);
    parse_ok(&o, "listen", "tcp://*:*", 2);
    assert_int_equal(dq_options_parse(&o, "node-id", "0", &consumed, err,
                                      sizeof(err)), DQ_ERR_RANGE);
    assert_non_null(strstr(err, "--node-id: '0'"));
    assert_int_equal(dq_options_parse(&o, "cpus-per-node", "0", &consumed,
                                      err, sizeof(err)), DQ_ERR_RANGE);
    assert_non_null(strstr(err, "--cpus-per-node"));
    parse_ok(&o, "cpus-per-node", "8", 2);
    assert_int_equal(o.cpus_per_node, 8);
}

static void atomic_lease_is_microseconds_default_left_to_the_engine(void **state)
{
    static const char *const bad[] = { "-1", "20us", "", "1000001" };
    DqOptions o;
    char err[DQ_ERRBUF_SIZE];
    int consumed;
    size_t i;

    (void)state;
    dq_options_init(&o);
    assert_int_equal(o.atomic_lease_us, -1);
    parse_ok(&o, "atomic-lease", "0", 2);
    assert_int_equal(o.atomic_lease_us, 0);
    parse_ok(&o, "atomic-lease=250", "prog", 1);
    assert_int_equal(o.atomic_lease_us, 250);
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        dq_options_init(&o);
        assert_int_equal(dq_options_parse(&o, "atomic-lease", bad[i],
                                          &consumed, err, sizeof(err)),
                         DQ_ERR_RANGE);
        assert_non_null(strstr(err, "--atomic-lease"));
        assert_int_equal(o.atomic_lease_us, -1);
    }
}

static void error_text_is_truncated_not_overflowed(void **state)
{
    DqOptions o;
    char err[8];
    int consumed;

    (void)state;
    memset(err, 'z', sizeof(err));
    dq_options_init(&o);
    assert_int_equal(dq_options_parse(&o, "nodes", "nonsense", &consumed,
                                      err, sizeof(err)), DQ_ERR_RANGE);
    assert_int_equal(err[sizeof(err) - 1], '\0');
    assert_int_equal(strlen(err), sizeof(err) - 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults_are_one_node_without_stats),
        cmocka_unit_test(nodes_takes_the_next_argument),
        cmocka_unit_test(placement_takes_a_policy_or_its_alias),
        cmocka_unit_test(bad_placement_names_the_option_and_the_choices),
        cmocka_unit_test(nodes_accepts_equals_form),
        cmocka_unit_test(nodes_rejects_bad_counts_naming_the_option),
        cmocka_unit_test(nodes_without_value_is_a_usage_error),
        cmocka_unit_test(stats_is_a_flag_that_never_eats_the_program),
        cmocka_unit_test(stats_json_takes_a_file_apart_from_stats),
        cmocka_unit_test(unknown_options_are_left_to_qemu),
        cmocka_unit_test(environment_sets_options),
        cmocka_unit_test(bad_environment_value_names_the_variable),
        cmocka_unit_test(worker_options_go_together),
        cmocka_unit_test(cluster_option_conflicts_are_named),
        cmocka_unit_test(endpoints_and_ids_are_checked_naming_the_option),
        cmocka_unit_test(atomic_lease_is_microseconds_default_left_to_the_engine),
        cmocka_unit_test(error_text_is_truncated_not_overflowed),
    };

    return cmocka_run_group_tests_name("options", tests, NULL, NULL);
}
