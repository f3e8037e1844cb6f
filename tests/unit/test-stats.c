/*
 * Test that every status has a text, that the --stats report prints
 * every counter of DQ_STATS_LIST with its value and unit, and that the
 * --stats-json object and strings are well-formed JSON.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "dqemu.h"

static void every_status_has_a_distinct_text(void **state)
{
    int i, j;

    (void)state;
    for (i = 0; i < DQ_STATUS__COUNT; i++) {
        assert_non_null(dq_status_str(i));
        assert_string_not_equal(dq_status_str(i), "unknown status");
        for (j = 0; j < i; j++) {
            assert_string_not_equal(dq_status_str(i), dq_status_str(j));
        }
    }
    assert_string_equal(dq_status_str(DQ_STATUS__COUNT), "unknown status");
    assert_string_equal(dq_status_str(-1), "unknown status");
}

static void report_lists_each_counter_with_value_and_unit(void **state)
{
    DqStats st;
    char *buf = NULL;
    size_t len = 0;
    FILE *f;

    (void)state;
    memset(&st, 0, sizeof(st));
    dq_stats_add(&st, threads_created, 7);
    dq_stats_add(&st, syscalls, 40);
    dq_stats_add(&st, syscalls, 2);
    dq_stats_add(&st, wall_time_ns, 123456789);

    f = open_memstream(&buf, &len);
    assert_non_null(f);
    dq_stats_print(f, 3, &st);
    fclose(f);

    assert_non_null(strstr(buf, "dqemu: node 3: stats: threads_created"));
    assert_non_null(strstr(buf, " 7 threads\n"));
    assert_non_null(strstr(buf, " 42 calls\n"));
    assert_non_null(strstr(buf, " 123456789 ns\n"));
    free(buf);
}

static char *printed(void (*print)(FILE *, const void *), const void *arg)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    assert_non_null(f);
    print(f, arg);
    fclose(f);
    return buf;
}

static void print_stats_json(FILE *f, const void *arg)
{
    dq_stats_print_json(f, arg);
}

static void print_string(FILE *f, const void *arg)
{
    dq_json_print_string(f, arg);
}

static void json_object_lists_each_counter_in_order(void **state)
{
    DqStats st;
    char *buf, want[64];
    const char *at;

    (void)state;
    memset(&st, 0, sizeof(st));
    dq_stats_add(&st, threads_run, 3);
    dq_stats_add(&st, thread_ns, UINT64_MAX);
    buf = printed(print_stats_json, &st);

    assert_int_equal(buf[0], '{');
    assert_string_equal(buf + strlen(buf) - 1, "}");
    at = buf;
#define EXPECT_KEY(name, unit, help)                                       \
    snprintf(want, sizeof(want), "\"%s\": ", #name);                       \
    assert_non_null(strstr(at, want));                                     \
    at = strstr(at, want);
    DQ_STATS_LIST(EXPECT_KEY)
#undef EXPECT_KEY
    assert_non_null(strstr(buf, "{\"threads_run\": 3, "));
    assert_non_null(strstr(buf, "\"thread_ns\": 18446744073709551615}"));
    free(buf);
}

static void json_sum_adds_every_counter(void **state)
{
    DqStats a, b;

    (void)state;
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    a.threads_run = 1;
    a.thread_ns = 10;
    b.threads_run = 2;
    b.thread_ns = 5;
    b.wall_time_ns = 7;
    dq_stats_sum(&a, &b);
    assert_int_equal(a.threads_run, 3);
    assert_int_equal(a.thread_ns, 15);
    assert_int_equal(a.wall_time_ns, 7);
    assert_int_equal(b.threads_run, 2);
}

static void json_string_escapes_quotes_backslashes_and_controls(void **state)
{
    char *buf;

    (void)state;
    buf = printed(print_string, "node 2: \"x\\y\"\n\t\x01\x1f\x7f caf\xc3\xa9");
    assert_string_equal(buf, "\"node 2: \\\"x\\\\y\\\"\\n\\t\\u0001\\u001f"
                        "\\u007f caf\xc3\xa9\"");
    free(buf);
    buf = printed(print_string, "");
    assert_string_equal(buf, "\"\"");
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_status_has_a_distinct_text),
        cmocka_unit_test(report_lists_each_counter_with_value_and_unit),
        cmocka_unit_test(json_object_lists_each_counter_in_order),
        cmocka_unit_test(json_sum_adds_every_counter),
        cmocka_unit_test(json_string_escapes_quotes_backslashes_and_controls),
    };

    return cmocka_run_group_tests_name("stats", tests, NULL, NULL);
}
