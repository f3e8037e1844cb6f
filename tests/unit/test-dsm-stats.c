/*
 * Test the coherence engine's statistics outside a cluster: the fault
 * latency histogram's bucket edges, the report and the --stats-json
 * object listing every counter of DQ_DSM_COUNTER_LIST, sums of them, and
 * the engine refusing what it cannot do before anything starts.  The
 * engine itself runs in tests/dsm/ (real processes).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "dsm.h"

static void histogram_buckets_double_from_two_microseconds(void **state)
{
    (void)state;
    assert_int_equal(dq_dsm_hist_bucket(0), 0);
    assert_int_equal(dq_dsm_hist_bucket(1999), 0);
    assert_int_equal(dq_dsm_hist_bucket(2000), 1);
    assert_int_equal(dq_dsm_hist_bucket(3999), 1);
    assert_int_equal(dq_dsm_hist_bucket(4000), 2);
    assert_int_equal(dq_dsm_hist_bucket(64000), 6);
    assert_int_equal(dq_dsm_hist_bucket(127999), 6);
    assert_int_equal(dq_dsm_hist_bucket(128000), 7);
    /* Everything past the last edge lands in the open last bucket. */
    assert_int_equal(dq_dsm_hist_bucket(UINT64_MAX), DQ_DSM_HIST_BUCKETS - 1);
    assert_int_equal(dq_dsm_hist_bucket(3600ull * 1000000000ull),
                     DQ_DSM_HIST_BUCKETS - 1);
}

static char *report(unsigned node, const DqDsmCounters *c)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    assert_non_null(f);
    dq_dsm_counters_print(f, node, c);
    fclose(f);
    return buf;
}

static void report_lists_every_counter_and_the_histogram(void **state)
{
    DqDsmCounters c;
    char *buf, want[160];

    (void)state;
    memset(&c, 0, sizeof(c));
    c.read_faults = 11;
    c.upgrade_faults = 3;
    c.bytes_sent = 123456;
    c.fault_hist[0] = 2;
    c.fault_hist[6] = 9;
    c.fault_hist[DQ_DSM_HIST_BUCKETS - 1] = 1;
    buf = report(5, &c);

#define EXPECT_LINE(name, unit, help)                                      \
    snprintf(want, sizeof(want), "dqemu: node 5: dsm: %-15s", #name);      \
    assert_non_null(strstr(buf, want));
    DQ_DSM_COUNTER_LIST(EXPECT_LINE)
#undef EXPECT_LINE
    assert_non_null(strstr(buf, "read_faults               11 faults\n"));
    assert_non_null(strstr(buf, "upgrade_faults             3 faults\n"));
    assert_non_null(strstr(buf, "bytes_sent            123456 bytes\n"));
    assert_non_null(strstr(buf, "(bucket:count): <2:2 64-128:9 >=8388608:1\n"));
    free(buf);
}

static void empty_histogram_says_none(void **state)
{
    DqDsmCounters c;
    char *buf;

    (void)state;
    memset(&c, 0, sizeof(c));
    buf = report(0, &c);
    assert_non_null(strstr(buf, "(bucket:count): none\n"));
    free(buf);
}

static void json_lists_every_counter_and_bucket_edges(void **state)
{
    DqDsmCounters c;
    char *buf = NULL, want[64];
    size_t len = 0;
    FILE *f;

    (void)state;
    memset(&c, 0, sizeof(c));
    c.read_faults = 11;
    c.fault_hist[0] = 2;
    c.fault_hist[6] = 9;
    c.fault_hist[DQ_DSM_HIST_BUCKETS - 1] = 1;
    f = open_memstream(&buf, &len);
    assert_non_null(f);
    dq_dsm_counters_print_json(f, &c);
    fclose(f);

#define EXPECT_KEY(name, unit, help)                                       \
    snprintf(want, sizeof(want), "\"%s\": ", #name);                       \
    assert_non_null(strstr(buf, want));
    DQ_DSM_COUNTER_LIST(EXPECT_KEY)
#undef EXPECT_KEY
    assert_non_null(strstr(buf, "{\"read_faults\": 11, "));
    assert_non_null(strstr(buf, "\"fault_hist_us\": [[0, 2, 2], [64, 128, 9], "
                            "[8388608, null, 1]]}"));
    free(buf);
}

static void json_of_no_faults_has_an_empty_histogram(void **state)
{
    DqDsmCounters c;
    char *buf = NULL;
    size_t len = 0;
    FILE *f;

    (void)state;
    memset(&c, 0, sizeof(c));
    f = open_memstream(&buf, &len);
    assert_non_null(f);
    dq_dsm_counters_print_json(f, &c);
    fclose(f);
    assert_non_null(strstr(buf, "\"fault_hist_us\": []}"));
    free(buf);
}

static void sum_adds_counters_and_buckets(void **state)
{
    DqDsmCounters a, b;

    (void)state;
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    a.fault_ns = 5;
    a.fault_hist[3] = 1;
    b.fault_ns = 7;
    b.bytes_received = 9;
    b.fault_hist[3] = 2;
    b.fault_hist[DQ_DSM_HIST_BUCKETS - 1] = 4;
    dq_dsm_counters_sum(&a, &b);
    assert_int_equal(a.fault_ns, 12);
    assert_int_equal(a.bytes_received, 9);
    assert_int_equal(a.fault_hist[3], 3);
    assert_int_equal(a.fault_hist[DQ_DSM_HIST_BUCKETS - 1], 4);
}

static void counters_read_zero_before_the_engine_starts(void **state)
{
    DqDsmCounters c;
    size_t i;

    (void)state;
    memset(&c, 0xff, sizeof(c));
    dq_dsm_counters(&c);
    for (i = 0; i < sizeof(c); i++) {
        assert_int_equal(((uint8_t *)&c)[i], 0);
    }
    assert_int_equal(dq_dsm_fault(0x1000, false, NULL), DQ_FAULT_NOT_OURS);
    assert_int_equal(dq_dsm_fault_ex(0x1000, true, true, NULL),
                     DQ_FAULT_NOT_OURS);
    /* Nothing to change yet: a no-op, and still nothing counted. */
    dq_dsm_set_lease_ns(DQ_DSM_LEASE_DEFAULT_NS);
    dq_dsm_counters(&c);
    assert_int_equal(c.lease_grants + c.lease_deferrals + c.lease_wait_ns, 0);
    assert_int_equal(dq_dsm_acquire_range(0x1000, 1, false), DQ_ERR_USAGE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(histogram_buckets_double_from_two_microseconds),
        cmocka_unit_test(report_lists_every_counter_and_the_histogram),
        cmocka_unit_test(empty_histogram_says_none),
        cmocka_unit_test(json_lists_every_counter_and_bucket_edges),
        cmocka_unit_test(json_of_no_faults_has_an_empty_histogram),
        cmocka_unit_test(sum_adds_counters_and_buckets),
        cmocka_unit_test(counters_read_zero_before_the_engine_starts),
    };

    return cmocka_run_group_tests_name("dsm-stats", tests, NULL, NULL);
}
