/*
 * Test that every status has a text and that the --stats report prints
 * every counter of DQ_STATS_LIST with its value and unit.
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_status_has_a_distinct_text),
        cmocka_unit_test(report_lists_each_counter_with_value_and_unit),
    };

    return cmocka_run_group_tests_name("stats", tests, NULL, NULL);
}
