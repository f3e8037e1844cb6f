/*
 * Test that launcher templates split into words as a POSIX shell splits
 * them, that "{host}" lands wherever the template puts it, that a rank is
 * read from Slurm's, Open MPI's or PMI's variables in that order with
 * every bad value named, and that Slurm steps get distinct ports.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "launch.h"

/* ---- helpers ----------------------------------------------------------- */

/* Split @cmd and compare with the NULL-terminated @want. */
static void split_is(const char *cmd, const char *const *want)
{
    char err[DQ_ERRBUF_SIZE] = "";
    char **words = NULL;
    size_t count = 99, i;

    assert_int_equal(dq_split_words(cmd, &words, &count, err, sizeof(err)),
                     DQ_OK);
    assert_string_equal(err, "");
    for (i = 0; want[i] != NULL; i++) {
        assert_non_null(words[i]);
        assert_string_equal(words[i], want[i]);
    }
    assert_null(words[i]);
    assert_int_equal(count, i);
    dq_words_free(words);
}

static void split_fails(const char *cmd, const char *msg)
{
    char err[DQ_ERRBUF_SIZE] = "";
    char **words = (char **)&err;
    size_t count = 99;

    assert_int_equal(dq_split_words(cmd, &words, &count, err, sizeof(err)),
                     DQ_ERR_USAGE);
    assert_string_equal(err, msg);
    assert_null(words);
    assert_int_equal(count, 0);
}

static void argv_is(const char *launcher, const char *host, const char *bin,
                    const char *const *args, const char *const *want)
{
    char err[DQ_ERRBUF_SIZE] = "";
    char **argv = NULL;
    size_t i;

    assert_int_equal(dq_launcher_argv(launcher, host, bin, args, &argv, err,
                                      sizeof(err)), DQ_OK);
    for (i = 0; want[i] != NULL; i++) {
        assert_non_null(argv[i]);
        assert_string_equal(argv[i], want[i]);
    }
    assert_null(argv[i]);
    dq_words_free(argv);
}

/* A fake environment: NULL-terminated "NAME=value" strings. */
static const char *const *fake_env;

static const char *get_fake_env(const char *name)
{
    size_t len = strlen(name), i;

    for (i = 0; fake_env[i] != NULL; i++) {
        if (strncmp(fake_env[i], name, len) == 0 && fake_env[i][len] == '=') {
            return fake_env[i] + len + 1;
        }
    }
    return NULL;
}

static void rank_ok(const char *const *env, DqRank *r)
{
    char err[DQ_ERRBUF_SIZE] = "";

    fake_env = env;
    memset(r, 0xa5, sizeof(*r));
    assert_int_equal(dq_rank_from_env(get_fake_env, r, err, sizeof(err)),
                     DQ_OK);
    assert_string_equal(err, "");
}

static void rank_fails(const char *const *env, DqStatus status,
                       const char *msg)
{
    char err[DQ_ERRBUF_SIZE] = "";
    DqRank r;

    fake_env = env;
    assert_int_equal(dq_rank_from_env(get_fake_env, &r, err, sizeof(err)),
                     status);
    assert_string_equal(err, msg);
}

#define WORDS(...) ((const char *const[]){ __VA_ARGS__, NULL })
#define ENV(...) ((const char *const[]){ __VA_ARGS__, NULL })
#define NO_ENV ((const char *const[]){ NULL })

/* ---- word splitting ---------------------------------------------------- */

static void split_separates_words_at_blanks(void **state)
{
    (void)state;
    split_is("ssh -o BatchMode=yes", WORDS("ssh", "-o", "BatchMode=yes"));
    split_is("  \t ssh\t\t-x   \n host  ", WORDS("ssh", "-x", "host"));
    split_is("one", WORDS("one"));
}

static void split_keeps_single_quotes_literal(void **state)
{
    (void)state;
    split_is("ssh -o 'ProxyCommand ssh -W %h:%p gw'",
             WORDS("ssh", "-o", "ProxyCommand ssh -W %h:%p gw"));
    split_is("'a\\b' '$HOME' '\"' 'x\ny'",
             WORDS("a\\b", "$HOME", "\"", "x\ny"));
    split_is("''", WORDS(""));
    split_is("a '' b", WORDS("a", "", "b"));
}

static void split_double_quotes_keep_all_but_some_backslashes(void **state)
{
    (void)state;
    split_is("\"a b\" \"c'd\"", WORDS("a b", "c'd"));
    split_is("\"\\\" \\\\ \\$ \\`\"", WORDS("\" \\ $ `"));
    /* Before any other character the backslash stays. */
    split_is("\"\\n\\a\\'\"", WORDS("\\n\\a\\'"));
    /* Backslash-newline inside double quotes vanishes. */
    split_is("\"ab\\\ncd\"", WORDS("abcd"));
    split_is("\"\"", WORDS(""));
    split_is("\"$HOME\"", WORDS("$HOME"));
}

static void split_unquoted_backslash_keeps_the_next_character(void **state)
{
    (void)state;
    split_is("a\\ b c", WORDS("a b", "c"));
    split_is("\\'x \\\"y \\\\z", WORDS("'x", "\"y", "\\z"));
    /* Backslash-newline is a line continuation, between words or in one. */
    split_is("ssh \\\n -x", WORDS("ssh", "-x"));
    split_is("ab\\\ncd", WORDS("abcd"));
    split_is("a \\\n", WORDS("a"));
}

static void split_joins_adjacent_quoted_parts(void **state)
{
    (void)state;
    split_is("user@'my host'\"!\"x", WORDS("user@my host!x"));
    split_is("-o\"Batch\"'Mode'=yes", WORDS("-oBatchMode=yes"));
    /* No expansion of any kind. */
    split_is("$HOME ~ * `id` $(id) # not a comment",
             WORDS("$HOME", "~", "*", "`id`", "$(id)", "#", "not", "a",
                   "comment"));
}

static void split_errors_say_what_is_wrong(void **state)
{
    (void)state;
    split_fails("ssh 'oops", "'ssh 'oops': unterminated single quote");
    split_fails("ssh \"oops", "'ssh \"oops': unterminated double quote");
    split_fails("ssh \"oops\\\"", "'ssh \"oops\\\"': unterminated double "
                "quote");
    split_fails("ssh \\", "'ssh \\': backslash at the end");
    split_fails("", "no words in ''");
    split_fails(" \t\n ", "no words in ' \t\n '");
    split_fails("\\\n", "no words in '\\\n'");
    split_fails(NULL, "no words in ''");
}

static void split_count_is_optional(void **state)
{
    char err[DQ_ERRBUF_SIZE];
    char **words;

    (void)state;
    assert_int_equal(dq_split_words("a b", &words, NULL, err, sizeof(err)),
                     DQ_OK);
    assert_string_equal(words[1], "b");
    dq_words_free(words);
    dq_words_free(NULL);
}

/* ---- launcher argv ----------------------------------------------------- */

static void launcher_appends_the_host_when_no_word_names_it(void **state)
{
    (void)state;
    argv_is("ssh -o BatchMode=yes", "node7", "/opt/dqemu/bin/dqemu",
            WORDS("--worker", "--node-id", "3"),
            WORDS("ssh", "-o", "BatchMode=yes", "node7",
                  "/opt/dqemu/bin/dqemu", "--worker", "--node-id", "3"));
    argv_is(NULL, "n1", "dqemu", NULL,
            WORDS("ssh", "-o", "BatchMode=yes", "n1", "dqemu"));
}

static void launcher_puts_the_host_inside_words(void **state)
{
    (void)state;
    argv_is("ssh user@{host}", "n1", "dqemu", WORDS("--worker"),
            WORDS("ssh", "user@n1", "dqemu", "--worker"));
    argv_is("srun -w {host} -N1 --label={host}:{host}", "gpu3", "dqemu",
            NULL, WORDS("srun", "-w", "gpu3", "-N1", "--label=gpu3:gpu3",
                        "dqemu"));
    /* Quoted templates: the host goes into the quoted word too. */
    argv_is("ssh -o 'ProxyJump gw' '{host}'", "fe80::1", "dqemu", NULL,
            WORDS("ssh", "-o", "ProxyJump gw", "fe80::1", "dqemu"));
    /* Only the exact "{host}" is a placeholder. */
    argv_is("ssh {hosts} {HOST} {host", "n2", "dqemu", NULL,
            WORDS("ssh", "{hosts}", "{HOST}", "{host", "n2", "dqemu"));
    argv_is("ssh {host}{host}", "x", "dqemu", NULL,
            WORDS("ssh", "xx", "dqemu"));
    /* What replaced a placeholder is not searched again. */
    argv_is("ssh {host}", "{host}", "dqemu", NULL,
            WORDS("ssh", "{host}", "dqemu"));
    /* A NULL binary is left out (the template may name it). */
    argv_is("ssh {host} /usr/bin/dqemu", "n3", NULL, WORDS("--worker"),
            WORDS("ssh", "n3", "/usr/bin/dqemu", "--worker"));
}

static void launcher_errors(void **state)
{
    char err[DQ_ERRBUF_SIZE] = "";
    char **argv = (char **)&err;

    (void)state;
    assert_int_equal(dq_launcher_argv("ssh 'x", "n1", "dqemu", NULL, &argv,
                                      err, sizeof(err)), DQ_ERR_USAGE);
    assert_string_equal(err, "'ssh 'x': unterminated single quote");
    assert_null(argv);
    assert_int_equal(dq_launcher_argv("   ", "n1", "dqemu", NULL, &argv, err,
                                      sizeof(err)), DQ_ERR_USAGE);
    assert_string_equal(err, "no words in '   '");
    assert_int_equal(dq_launcher_argv("ssh", "-oProxyCommand=x", "dqemu",
                                      NULL, &argv, err, sizeof(err)),
                     DQ_ERR_USAGE);
    assert_string_equal(err, "'-oProxyCommand=x' is not a host for a "
                             "launcher");
    assert_int_equal(dq_launcher_argv("ssh", "", "dqemu", NULL, &argv, err,
                                      sizeof(err)), DQ_ERR_USAGE);
    assert_string_equal(err, "'' is not a host for a launcher");
    assert_null(argv);
}

/* ---- ranks ------------------------------------------------------------- */

static void no_launcher_variables_is_not_a_rank(void **state)
{
    DqRank r;

    (void)state;
    rank_ok(NO_ENV, &r);
    assert_int_equal(r.source, DQ_RANK_NONE);
    assert_int_equal(r.rank, 0);
    assert_int_equal(r.size, 0);
    assert_null(r.slurm_nodelist);
    assert_false(r.slurm_ids);
    rank_ok(ENV("PATH=/bin", "SLURM_JOB_ID=5"), &r);
    assert_int_equal(r.source, DQ_RANK_NONE);
}

static void slurm_rank_with_its_node_list_and_ids(void **state)
{
    DqRank r;

    (void)state;
    rank_ok(ENV("SLURM_PROCID=2", "SLURM_NTASKS=4", "SLURM_JOB_ID=123456",
                "SLURM_STEP_ID=3", "SLURM_NODELIST=n[1-8]",
                "SLURM_STEP_NODELIST=n[1-4]"), &r);
    assert_int_equal(r.source, DQ_RANK_SLURM);
    assert_int_equal(r.rank, 2);
    assert_int_equal(r.size, 4);
    assert_string_equal(r.slurm_nodelist, "n[1-4]");
    assert_true(r.slurm_ids);
    assert_int_equal(r.slurm_job_id, 123456);
    assert_int_equal(r.slurm_step_id, 3);

    /* The job's list when the step's is missing. */
    rank_ok(ENV("SLURM_PROCID=0", "SLURM_NTASKS=2", "SLURM_STEP_ID=0",
                "SLURM_NODELIST=a,b"), &r);
    assert_int_equal(r.source, DQ_RANK_SLURM);
    assert_string_equal(r.slurm_nodelist, "a,b");
    assert_false(r.slurm_ids);
    assert_int_equal(r.slurm_job_id, 0);
    assert_int_equal(r.slurm_step_id, 0);

    /* Both ids or neither. */
    rank_ok(ENV("SLURM_PROCID=0", "SLURM_NTASKS=2", "SLURM_STEP_ID=1"), &r);
    assert_int_equal(r.source, DQ_RANK_SLURM);
    assert_false(r.slurm_ids);
    assert_int_equal(r.slurm_job_id, 0);
    assert_null(r.slurm_nodelist);
}

/*
 * A batch script and an salloc shell have Slurm's task variables but no
 * step of their own (or a pseudo step): dqemu is one plain process there.
 */
static void slurm_outside_a_step_is_not_a_rank(void **state)
{
    DqRank r;

    (void)state;
    rank_ok(ENV("SLURM_PROCID=0", "SLURM_NTASKS=8", "SLURM_JOB_ID=9"), &r);
    assert_int_equal(r.source, DQ_RANK_NONE);
    rank_ok(ENV("SLURM_NTASKS=8", "SLURM_JOB_ID=9"), &r);
    assert_int_equal(r.source, DQ_RANK_NONE);
    rank_ok(ENV("SLURM_PROCID=0", "SLURM_NTASKS=8", "SLURM_JOB_ID=9",
                "SLURM_STEP_ID=4294967294"), &r);
    assert_int_equal(r.source, DQ_RANK_NONE);
    rank_ok(ENV("SLURM_PROCID=0", "SLURM_NTASKS=8", "SLURM_JOB_ID=9",
                "SLURM_STEP_ID=batch"), &r);
    assert_int_equal(r.source, DQ_RANK_NONE);
}

static void open_mpi_and_pmi_ranks(void **state)
{
    DqRank r;

    (void)state;
    rank_ok(ENV("OMPI_COMM_WORLD_RANK=5", "OMPI_COMM_WORLD_SIZE=8",
                "SLURM_JOB_ID=1", "SLURM_STEP_ID=1"), &r);
    assert_int_equal(r.source, DQ_RANK_OMPI);
    assert_int_equal(r.rank, 5);
    assert_int_equal(r.size, 8);
    /* Slurm fields belong to a Slurm rank only. */
    assert_null(r.slurm_nodelist);
    assert_false(r.slurm_ids);

    rank_ok(ENV("PMI_RANK=63", "PMI_SIZE=64"), &r);
    assert_int_equal(r.source, DQ_RANK_PMI);
    assert_int_equal(r.rank, 63);
    assert_int_equal(r.size, 64);
}

static void open_mpi_wins_then_pmi_then_slurm(void **state)
{
    DqRank r;

    (void)state;
    rank_ok(ENV("PMI_RANK=1", "PMI_SIZE=3", "OMPI_COMM_WORLD_RANK=2",
                "OMPI_COMM_WORLD_SIZE=4", "SLURM_PROCID=3",
                "SLURM_NTASKS=5", "SLURM_STEP_ID=0"), &r);
    assert_int_equal(r.source, DQ_RANK_OMPI);
    assert_int_equal(r.rank, 2);
    rank_ok(ENV("PMI_RANK=1", "PMI_SIZE=3", "SLURM_PROCID=3",
                "SLURM_NTASKS=5", "SLURM_STEP_ID=0"), &r);
    assert_int_equal(r.source, DQ_RANK_PMI);
    assert_int_equal(r.rank, 1);
    /* The winner's errors are not hidden by a later family. */
    rank_fails(ENV("PMI_RANK=x", "PMI_SIZE=2", "SLURM_PROCID=0",
                   "SLURM_NTASKS=2", "SLURM_STEP_ID=0"), DQ_ERR_USAGE,
               "PMI_RANK: 'x' is not a number");
}

static void a_job_of_one_task_is_not_a_cluster(void **state)
{
    DqRank r;

    (void)state;
    rank_ok(ENV("SLURM_PROCID=0", "SLURM_NTASKS=1", "SLURM_JOB_ID=7",
                "SLURM_STEP_ID=0", "SLURM_NODELIST=a"), &r);
    assert_int_equal(r.source, DQ_RANK_NONE);
    assert_null(r.slurm_nodelist);
    assert_false(r.slurm_ids);
    /* The first family's size 1 decides: later ones are not consulted. */
    rank_ok(ENV("OMPI_COMM_WORLD_RANK=0", "OMPI_COMM_WORLD_SIZE=1",
                "SLURM_PROCID=1", "SLURM_NTASKS=2", "SLURM_STEP_ID=0"), &r);
    assert_int_equal(r.source, DQ_RANK_NONE);
    rank_ok(ENV("OMPI_COMM_WORLD_RANK=0", "OMPI_COMM_WORLD_SIZE=1"), &r);
    assert_int_equal(r.source, DQ_RANK_NONE);
    rank_ok(ENV("PMI_RANK=0", "PMI_SIZE=1"), &r);
    assert_int_equal(r.source, DQ_RANK_NONE);
}

static void rank_errors_name_the_variable(void **state)
{
    (void)state;
    rank_fails(ENV("SLURM_PROCID=1", "SLURM_STEP_ID=0"), DQ_ERR_USAGE,
               "SLURM_PROCID is set but SLURM_NTASKS is not");
    rank_fails(ENV("SLURM_NTASKS=4", "SLURM_STEP_ID=0"), DQ_ERR_USAGE,
               "SLURM_NTASKS is set but SLURM_PROCID is not");
    rank_fails(ENV("OMPI_COMM_WORLD_SIZE=4"), DQ_ERR_USAGE,
               "OMPI_COMM_WORLD_SIZE is set but OMPI_COMM_WORLD_RANK is "
               "not");
    rank_fails(ENV("PMI_RANK=0"), DQ_ERR_USAGE,
               "PMI_RANK is set but PMI_SIZE is not");
    rank_fails(ENV("SLURM_PROCID=1", "SLURM_NTASKS=four", "SLURM_STEP_ID=0"), DQ_ERR_USAGE,
               "SLURM_NTASKS: 'four' is not a number");
    rank_fails(ENV("OMPI_COMM_WORLD_RANK=-1", "OMPI_COMM_WORLD_SIZE=4"),
               DQ_ERR_USAGE, "OMPI_COMM_WORLD_RANK: '-1' is not a number");
    rank_fails(ENV("PMI_RANK=", "PMI_SIZE=4"), DQ_ERR_USAGE,
               "PMI_RANK: '' is not a number");
    rank_fails(ENV("PMI_RANK=1 ", "PMI_SIZE=4"), DQ_ERR_USAGE,
               "PMI_RANK: '1 ' is not a number");
    rank_fails(ENV("PMI_RANK=0", "PMI_SIZE=99999999999999999999999"),
               DQ_ERR_USAGE,
               "PMI_SIZE: '99999999999999999999999' is not a number");
    rank_fails(ENV("SLURM_PROCID=4", "SLURM_NTASKS=4", "SLURM_STEP_ID=0"), DQ_ERR_RANGE,
               "SLURM_PROCID=4 is not below SLURM_NTASKS=4");
    rank_fails(ENV("PMI_RANK=1", "PMI_SIZE=1"), DQ_ERR_RANGE,
               "PMI_RANK=1 is not below PMI_SIZE=1");
    rank_fails(ENV("OMPI_COMM_WORLD_RANK=0", "OMPI_COMM_WORLD_SIZE=65"),
               DQ_ERR_RANGE,
               "OMPI_COMM_WORLD_SIZE=65: more than the 64 nodes dqemu runs");
    rank_fails(ENV("SLURM_PROCID=0", "SLURM_NTASKS=0", "SLURM_STEP_ID=0"), DQ_ERR_RANGE,
               "SLURM_NTASKS=0: a job has at least one task");
}

static void rank_sources_have_names(void **state)
{
    (void)state;
    assert_string_equal(dq_rank_source_str(DQ_RANK_SLURM), "Slurm");
    assert_string_equal(dq_rank_source_str(DQ_RANK_OMPI), "Open MPI");
    assert_string_equal(dq_rank_source_str(DQ_RANK_PMI), "PMI");
    assert_string_equal(dq_rank_source_str(DQ_RANK_NONE), "none");
    assert_string_equal(dq_rank_source_str((DqRankSource)42), "unknown");
}

/* ---- Slurm master port ------------------------------------------------- */

static void slurm_port_is_in_range_and_deterministic(void **state)
{
    unsigned long job, step;

    (void)state;
    for (job = 0; job < 2000; job += 7) {
        for (step = 0; step < 5; step++) {
            unsigned p = dq_slurm_master_port(job, step);

            assert_in_range(p, 20000, 59999);
            assert_int_equal(p, dq_slurm_master_port(job, step));
        }
    }
    assert_in_range(dq_slurm_master_port(~0ul, ~0ul), 20000, 59999);
}

static void slurm_steps_of_one_job_get_different_ports(void **state)
{
    static unsigned char seen[60000];
    unsigned long jobs[] = { 0, 1, 4242, 123456789, ~0ul };
    size_t j;
    unsigned long step;

    (void)state;
    for (j = 0; j < sizeof(jobs) / sizeof(jobs[0]); j++) {
        memset(seen, 0, sizeof(seen));
        for (step = 0; step < 1000; step++) {
            unsigned p = dq_slurm_master_port(jobs[j], step);

            assert_int_equal(seen[p], 0);
            seen[p] = 1;
        }
    }
}

static void slurm_ports_of_different_jobs_spread(void **state)
{
    static unsigned char seen[60000];
    unsigned long job;
    unsigned same = 0;

    (void)state;
    /* Consecutive job ids (the usual case) must not land together. */
    memset(seen, 0, sizeof(seen));
    for (job = 1000; job < 1200; job++) {
        unsigned p = dq_slurm_master_port(job, 0);

        same += seen[p];
        seen[p] = 1;
    }
    assert_true(same <= 3);
    assert_int_not_equal(dq_slurm_master_port(1000, 0),
                         dq_slurm_master_port(1001, 0) - 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(split_separates_words_at_blanks),
        cmocka_unit_test(split_keeps_single_quotes_literal),
        cmocka_unit_test(split_double_quotes_keep_all_but_some_backslashes),
        cmocka_unit_test(split_unquoted_backslash_keeps_the_next_character),
        cmocka_unit_test(split_joins_adjacent_quoted_parts),
        cmocka_unit_test(split_errors_say_what_is_wrong),
        cmocka_unit_test(split_count_is_optional),
        cmocka_unit_test(launcher_appends_the_host_when_no_word_names_it),
        cmocka_unit_test(launcher_puts_the_host_inside_words),
        cmocka_unit_test(launcher_errors),
        cmocka_unit_test(no_launcher_variables_is_not_a_rank),
        cmocka_unit_test(slurm_rank_with_its_node_list_and_ids),
        cmocka_unit_test(open_mpi_and_pmi_ranks),
        cmocka_unit_test(open_mpi_wins_then_pmi_then_slurm),
        cmocka_unit_test(slurm_outside_a_step_is_not_a_rank),
        cmocka_unit_test(a_job_of_one_task_is_not_a_cluster),
        cmocka_unit_test(rank_errors_name_the_variable),
        cmocka_unit_test(rank_sources_have_names),
        cmocka_unit_test(slurm_port_is_in_range_and_deterministic),
        cmocka_unit_test(slurm_steps_of_one_job_get_different_ports),
        cmocka_unit_test(slurm_ports_of_different_jobs_spread),
    };

    return cmocka_run_group_tests_name("launch", tests, NULL, NULL);
}
