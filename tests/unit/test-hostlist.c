/*
 * Test that hostfiles, --hosts lists and Slurm node lists parse as mpirun
 * and Slurm read them, that every malformed input is refused with a
 * message naming its line or item, and that nodes fill slots in order.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hostlist.h"

/* ---- helpers ----------------------------------------------------------- */

static void hostfile_ok(const char *text, DqHostList *l)
{
    char err[DQ_ERRBUF_SIZE] = "";

    assert_int_equal(dq_hostfile_parse(text, l, err, sizeof(err)), DQ_OK);
    assert_string_equal(err, "");
}

/* Parse @text, expect @status and exactly @msg, and an empty list. */
static void hostfile_fails(const char *text, DqStatus status, const char *msg)
{
    char err[DQ_ERRBUF_SIZE] = "";
    DqHostList l = { (DqHost *)&l, 99 };

    assert_int_equal(dq_hostfile_parse(text, &l, err, sizeof(err)), status);
    assert_string_equal(err, msg);
    assert_null(l.hosts);
    assert_int_equal(l.count, 0);
}

static void hosts_fails(const char *list, DqStatus status, const char *msg)
{
    char err[DQ_ERRBUF_SIZE] = "";
    DqHostList l;

    assert_int_equal(dq_hosts_parse(list, &l, err, sizeof(err)), status);
    assert_string_equal(err, msg);
    assert_null(l.hosts);
    assert_int_equal(l.count, 0);
}

static void host_is(const DqHostList *l, size_t i, const char *name,
                    unsigned slots)
{
    assert_true(i < l->count);
    assert_string_equal(l->hosts[i].name, name);
    assert_int_equal(l->hosts[i].slots, slots);
}

static void slurm_first_is(const char *list, const char *want)
{
    char out[DQ_HOST_NAME_MAX + 1];
    char err[DQ_ERRBUF_SIZE] = "";

    assert_int_equal(dq_slurm_nodelist_first(list, out, sizeof(out), err,
                                             sizeof(err)), DQ_OK);
    assert_string_equal(out, want);
    assert_string_equal(err, "");
}

static void slurm_fails(const char *list, DqStatus status, const char *msg)
{
    char out[DQ_HOST_NAME_MAX + 1] = "junk";
    char err[DQ_ERRBUF_SIZE] = "";

    assert_int_equal(dq_slurm_nodelist_first(list, out, sizeof(out), err,
                                             sizeof(err)), status);
    assert_string_equal(err, msg);
    assert_string_equal(out, "");
}

/* A file in a fresh directory under /tmp; cleaned up by rm_tmp(). */
static char tmp_dir[64];
static char tmp_path[128];

static const char *write_tmp(const char *text, size_t len)
{
    FILE *f;

    strcpy(tmp_dir, "/tmp/test-hostlist.XXXXXX");
    assert_non_null(mkdtemp(tmp_dir));
    snprintf(tmp_path, sizeof(tmp_path), "%s/hosts", tmp_dir);
    f = fopen(tmp_path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
    return tmp_path;
}

static void rm_tmp(void)
{
    unlink(tmp_path);
    assert_int_equal(rmdir(tmp_dir), 0);
}

/* ---- hostfiles --------------------------------------------------------- */

static void hostfile_reads_hosts_slots_and_comments(void **state)
{
    DqHostList l;

    (void)state;
    hostfile_ok("# cluster A\n"
                "\n"
                "node1 slots=4   # the big one\n"
                "  node2\n"
                "\tnode3\tslots=2\tmax_slots=8\n"
                "10.0.0.7 slots=1\n"
                "fe80::1 max_slots=2 slots=3\n"
                "   # indented comment\n"
                "node_4.example.com\n"
                "last-line-without-newline slots = 2", &l);
    assert_int_equal(l.count, 7);
    host_is(&l, 0, "node1", 4);
    host_is(&l, 1, "node2", 1);
    host_is(&l, 2, "node3", 2);
    host_is(&l, 3, "10.0.0.7", 1);
    host_is(&l, 4, "fe80::1", 3);
    host_is(&l, 5, "node_4.example.com", 1);
    host_is(&l, 6, "last-line-without-newline", 2);
    dq_hostlist_free(&l);
    assert_null(l.hosts);
    assert_int_equal(l.count, 0);
}

static void hostfile_comment_may_touch_the_text(void **state)
{
    DqHostList l;

    (void)state;
    hostfile_ok("a#comment\nb slots=2#x\r\nc\r\n", &l);
    assert_int_equal(l.count, 3);
    host_is(&l, 0, "a", 1);
    host_is(&l, 1, "b", 2);
    host_is(&l, 2, "c", 1);
    dq_hostlist_free(&l);
}

static void hostfile_duplicates_add_slots_to_the_first_line(void **state)
{
    DqHostList l;

    (void)state;
    hostfile_ok("a slots=2\nb\na\nc slots=3\nA slots=4\n", &l);
    assert_int_equal(l.count, 3);
    host_is(&l, 0, "a", 7);
    host_is(&l, 1, "b", 1);
    host_is(&l, 2, "c", 3);
    dq_hostlist_free(&l);
}

static void hostfile_merges_many_hosts_in_order(void **state)
{
    size_t n = 5000, i, len = 0;
    char *text = malloc(n * 2 * 16);
    DqHostList l;

    (void)state;
    assert_non_null(text);
    for (i = 0; i < 2 * n; i++) {
        len += (size_t)sprintf(text + len, "h%zu\n", i % n);
    }
    hostfile_ok(text, &l);
    assert_int_equal(l.count, n);
    for (i = 0; i < n; i++) {
        char name[16];

        snprintf(name, sizeof(name), "h%zu", i);
        host_is(&l, i, name, 2);
    }
    dq_hostlist_free(&l);
    free(text);
}

static void hostfile_errors_name_the_line(void **state)
{
    (void)state;
    hostfile_fails("a\nb\nc slots=0\n", DQ_ERR_RANGE,
                   "line 3: slots=0: a host needs at least one slot");
    hostfile_fails("a\n# x\n\nb\nc cpus=4\n", DQ_ERR_USAGE,
                   "line 5: unknown attribute 'cpus=4'");
    hostfile_fails("a slots=junk\n", DQ_ERR_RANGE,
                   "line 1: slots=junk: not a number");
    hostfile_fails("a slots=\n", DQ_ERR_RANGE,
                   "line 1: slots=: not a number");
    hostfile_fails("a slots=-1\n", DQ_ERR_RANGE,
                   "line 1: slots=-1: not a number");
    hostfile_fails("a slots=65\n", DQ_ERR_RANGE,
                   "line 1: slots=65: at most 64 slots on one host");
    hostfile_fails("a slots=99999999999999999999999\n", DQ_ERR_RANGE,
                   "line 1: slots=99999999999999999999999: at most 64 slots "
                   "on one host");
    hostfile_fails("a max_slots=x\n", DQ_ERR_RANGE,
                   "line 1: max_slots=x: not a number");
    hostfile_fails("a slots=2 slots=3\n", DQ_ERR_USAGE,
                   "line 1: slots given twice");
    hostfile_fails("a slots\n", DQ_ERR_USAGE,
                   "line 1: unknown attribute 'slots'");
    hostfile_fails("a b\n", DQ_ERR_USAGE, "line 1: unknown attribute 'b'");
    hostfile_fails("a\nnode1:4\n", DQ_ERR_USAGE,
                   "line 2: 'node1:4': a hostfile gives slots as "
                   "\"slots=K\", not \":K\"");
}

static void hostfile_refuses_what_is_not_a_host_name(void **state)
{
    char text[DQ_HOST_NAME_MAX + 8];

    (void)state;
    hostfile_fails("a\n\nno$pe\n", DQ_ERR_USAGE,
                   "line 3: 'no$pe' is not a host name (character '$')");
    hostfile_fails("x;rm\n", DQ_ERR_USAGE,
                   "line 1: 'x;rm' is not a host name (character ';')");
    hostfile_fails("slots=4\n", DQ_ERR_USAGE,
                   "line 1: 'slots=4' is not a host name (character '=')");
    hostfile_fails("-oProxyCommand\n", DQ_ERR_USAGE,
                   "line 1: '-oProxyCommand' is not a host name (it starts "
                   "with '-', like an option)");
    hostfile_fails("me@node1\n", DQ_ERR_USAGE,
                   "line 1: 'me@node1' is not a host name (a user name goes "
                   "in the launcher: \"ssh user@{host}\")");
    hostfile_fails("a\x1b[2J\n", DQ_ERR_USAGE,
                   "line 1: host name with a non-printing byte 0x1b");

    memset(text, 'n', DQ_HOST_NAME_MAX);
    strcpy(text + DQ_HOST_NAME_MAX, "\n");
    {
        DqHostList l;

        hostfile_ok(text, &l);
        assert_int_equal(strlen(l.hosts[0].name), DQ_HOST_NAME_MAX);
        dq_hostlist_free(&l);
    }
    strcpy(text + DQ_HOST_NAME_MAX, "n\n");
    hostfile_fails(text, DQ_ERR_USAGE,
                   "line 1: host name too long (256 characters, at most 255)");
}

static void hostfile_without_hosts_is_an_error(void **state)
{
    (void)state;
    hostfile_fails("", DQ_ERR_USAGE, "no hosts");
    hostfile_fails("# only\n\n   \t\n# comments\n", DQ_ERR_USAGE, "no hosts");
}

static void hostfile_load_reads_a_file(void **state)
{
    static const char text[] = "n1 slots=2\nn2\n";
    DqHostList l;
    char err[DQ_ERRBUF_SIZE] = "";
    const char *path = write_tmp(text, strlen(text));

    (void)state;
    assert_int_equal(dq_hostfile_load(path, &l, err, sizeof(err)), DQ_OK);
    assert_int_equal(l.count, 2);
    host_is(&l, 0, "n1", 2);
    host_is(&l, 1, "n2", 1);
    dq_hostlist_free(&l);
    rm_tmp();
}

static void hostfile_load_errors_start_with_the_path(void **state)
{
    char err[DQ_ERRBUF_SIZE], want[DQ_ERRBUF_SIZE];
    DqHostList l;
    const char *path;
    char *big;

    (void)state;
    assert_int_equal(dq_hostfile_load("/nonexistent/hosts", &l, err,
                                      sizeof(err)), DQ_ERR_USAGE);
    assert_string_equal(err, "/nonexistent/hosts: no such file");
    assert_null(l.hosts);

    path = write_tmp("a\nb slots=0\n", 12);
    assert_int_equal(dq_hostfile_load(path, &l, err, sizeof(err)),
                     DQ_ERR_RANGE);
    snprintf(want, sizeof(want),
             "%s: line 2: slots=0: a host needs at least one slot", path);
    assert_string_equal(err, want);
    assert_null(l.hosts);
    rm_tmp();

    path = write_tmp("# nothing\n", 10);
    assert_int_equal(dq_hostfile_load(path, &l, err, sizeof(err)),
                     DQ_ERR_USAGE);
    snprintf(want, sizeof(want), "%s: no hosts", path);
    assert_string_equal(err, want);
    rm_tmp();

    path = write_tmp("a\0b\n", 4);
    assert_int_equal(dq_hostfile_load(path, &l, err, sizeof(err)),
                     DQ_ERR_USAGE);
    snprintf(want, sizeof(want), "%s: not a text file (it holds a NUL byte)",
             path);
    assert_string_equal(err, want);
    rm_tmp();

    /* Exactly 1 MiB is read; one byte more is refused. */
    big = malloc(1024 * 1024 + 1);
    assert_non_null(big);
    memset(big, '#', 1024 * 1024 + 1);
    big[0] = 'h';
    big[1] = '\n';
    path = write_tmp(big, 1024 * 1024);
    assert_int_equal(dq_hostfile_load(path, &l, err, sizeof(err)), DQ_OK);
    assert_int_equal(l.count, 1);
    dq_hostlist_free(&l);
    rm_tmp();
    path = write_tmp(big, 1024 * 1024 + 1);
    assert_int_equal(dq_hostfile_load(path, &l, err, sizeof(err)),
                     DQ_ERR_USAGE);
    snprintf(want, sizeof(want),
             "%s: too large for a hostfile (over 1048576 bytes)", path);
    assert_string_equal(err, want);
    assert_null(l.hosts);
    rm_tmp();
    free(big);

    strcpy(tmp_dir, "/tmp/test-hostlist.XXXXXX");
    assert_non_null(mkdtemp(tmp_dir));
    assert_int_equal(dq_hostfile_load(tmp_dir, &l, err, sizeof(err)),
                     DQ_ERR_USAGE);
    snprintf(want, sizeof(want), "%s: Is a directory", tmp_dir);
    assert_string_equal(err, want);
    assert_int_equal(rmdir(tmp_dir), 0);
}

/*
 * Load @path as user nobody in a child (root reads any file, so as root
 * that is the only way to meet EACCES) and check the message is @want.
 */
static void load_as_nobody_fails_with(const char *path, const char *want)
{
    pid_t pid = fork();
    int status;

    assert_true(pid >= 0);
    if (pid == 0) {
        char err[DQ_ERRBUF_SIZE] = "";
        DqHostList l;

        if (setgid(65534) != 0 || setuid(65534) != 0) {
            _exit(2);
        }
        _exit(dq_hostfile_load(path, &l, err, sizeof(err)) == DQ_ERR_USAGE &&
              strcmp(err, want) == 0 ? 0 : 1);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

static void hostfile_load_refuses_an_unreadable_file(void **state)
{
    char err[DQ_ERRBUF_SIZE], want[DQ_ERRBUF_SIZE];
    DqHostList l;
    const char *path;

    (void)state;
    path = write_tmp("a\n", 2);
    assert_int_equal(chmod(path, 0), 0);
    snprintf(want, sizeof(want), "%s: permission denied", path);
    if (geteuid() == 0) {
        assert_int_equal(chmod(tmp_dir, 0755), 0);
        load_as_nobody_fails_with(path, want);
    } else {
        assert_int_equal(dq_hostfile_load(path, &l, err, sizeof(err)),
                         DQ_ERR_USAGE);
        assert_string_equal(err, want);
    }
    rm_tmp();
}

/* ---- --hosts ----------------------------------------------------------- */

static void hosts_list_takes_names_and_slot_counts(void **state)
{
    char err[DQ_ERRBUF_SIZE] = "";
    DqHostList l;

    (void)state;
    assert_int_equal(dq_hosts_parse("h1,h2:3,h3", &l, err, sizeof(err)),
                     DQ_OK);
    assert_int_equal(l.count, 3);
    host_is(&l, 0, "h1", 1);
    host_is(&l, 1, "h2", 3);
    host_is(&l, 2, "h3", 1);
    dq_hostlist_free(&l);

    /* As mpirun: "a,a" is two slots on a. */
    assert_int_equal(dq_hosts_parse("a, b ,a:2", &l, err, sizeof(err)),
                     DQ_OK);
    assert_int_equal(l.count, 2);
    host_is(&l, 0, "a", 3);
    host_is(&l, 1, "b", 1);
    dq_hostlist_free(&l);

    /* IPv6: bare literal is one slot; brackets allow a count. */
    assert_int_equal(dq_hosts_parse("fe80::1,[::1]:4,[10.0.0.1]", &l, err,
                                    sizeof(err)), DQ_OK);
    assert_int_equal(l.count, 3);
    host_is(&l, 0, "fe80::1", 1);
    host_is(&l, 1, "::1", 4);
    host_is(&l, 2, "10.0.0.1", 1);
    dq_hostlist_free(&l);
}

static void hosts_list_errors_name_the_item(void **state)
{
    (void)state;
    hosts_fails("", DQ_ERR_USAGE, "no hosts");
    hosts_fails(NULL, DQ_ERR_USAGE, "no hosts");
    hosts_fails("a,,b", DQ_ERR_USAGE, "item 2: empty host name");
    hosts_fails("a,", DQ_ERR_USAGE, "item 2: empty host name");
    hosts_fails(",a", DQ_ERR_USAGE, "item 1: empty host name");
    hosts_fails("a, ,b", DQ_ERR_USAGE, "item 2: empty host name");
    hosts_fails(":3", DQ_ERR_USAGE, "item 1: empty host name");
    hosts_fails("a,b:0", DQ_ERR_RANGE,
                "item 2: 'b:0': a host needs at least one slot");
    hosts_fails("a:x", DQ_ERR_RANGE,
                "item 1: 'a:x': slots 'x' is not a number");
    hosts_fails("a:", DQ_ERR_RANGE, "item 1: 'a:': slots '' is not a number");
    hosts_fails("a:65", DQ_ERR_RANGE,
                "item 1: 'a:65': at most 64 slots on one host");
    hosts_fails("a,b/c", DQ_ERR_USAGE,
                "item 2: 'b/c' is not a host name (character '/')");
    hosts_fails("-l,a", DQ_ERR_USAGE,
                "item 1: '-l' is not a host name (it starts with '-', like "
                "an option)");
    hosts_fails("[::1", DQ_ERR_USAGE,
                "item 1: '[::1': expected [ADDRESS] or [ADDRESS]:SLOTS");
    hosts_fails("[::1]2", DQ_ERR_USAGE,
                "item 1: '[::1]2': expected [ADDRESS] or [ADDRESS]:SLOTS");
    hosts_fails("[]:2", DQ_ERR_USAGE, "item 1: empty host name");
}

/* ---- Slurm node lists -------------------------------------------------- */

static void slurm_first_host_of_plain_and_bracketed_lists(void **state)
{
    (void)state;
    slurm_first_is("node1", "node1");
    slurm_first_is("a,b", "a");
    slurm_first_is("node[007-010],x", "node007");
    slurm_first_is("a[1-3,07],b,c[10-11]", "a1");
    slurm_first_is("a[07,1-3]", "a07");
    slurm_first_is("rack[2-3]-blade[04-05]", "rack2-blade04");
    slurm_first_is("[5-6]x", "5x");
    slurm_first_is("gpu3,node[01-04,07]", "gpu3");
    slurm_first_is("n[0]", "n0");
}

static void slurm_lists_are_checked_whole(void **state)
{
    (void)state;
    slurm_fails("", DQ_ERR_USAGE, "empty node list");
    slurm_fails(NULL, DQ_ERR_USAGE, "empty node list");
    slurm_fails("node[1-3", DQ_ERR_USAGE,
                "node list 'node[1-3': unterminated '['");
    slurm_fails("a,node[1-3", DQ_ERR_USAGE,
                "node list 'a,node[1-3': unterminated '['");
    slurm_fails("a[3-1]", DQ_ERR_RANGE,
                "node list 'a[3-1]': range 3-1 runs backwards");
    slurm_fails("a[]", DQ_ERR_USAGE,
                "node list 'a[]': expected a number or a range at ']' "
                "inside [...]");
    slurm_fails("a[1-]", DQ_ERR_USAGE,
                "node list 'a[1-]': expected a number or a range at ']' "
                "inside [...]");
    slurm_fails("a[x]", DQ_ERR_USAGE,
                "node list 'a[x]': expected a number or a range at 'x' "
                "inside [...]");
    slurm_fails("a[1[2]]", DQ_ERR_USAGE,
                "node list 'a[1[2]]': expected a number or a range at '[' "
                "inside [...]");
    slurm_fails("a]", DQ_ERR_USAGE, "node list 'a]': ']' without '['");
    slurm_fails("a,,b", DQ_ERR_USAGE, "node list 'a,,b': empty host name");
    slurm_fails("a,", DQ_ERR_USAGE, "node list 'a,': empty host name");
    slurm_fails("a b", DQ_ERR_USAGE,
                "node list 'a b': unexpected character ' '");
    slurm_fails("-x", DQ_ERR_USAGE,
                "node list: '-x' is not a host name (it starts with '-', "
                "like an option)");
    slurm_fails("a[1234567890123456789]", DQ_ERR_RANGE,
                "node list 'a[1234567890123456789]': number "
                "'1234567890123456789' too long");
}

static void slurm_first_host_must_fit(void **state)
{
    char out[4];
    char err[1024];
    char list[DQ_HOST_NAME_MAX + 8];

    (void)state;
    assert_int_equal(dq_slurm_nodelist_first("abc", out, sizeof(out), err,
                                             sizeof(err)), DQ_OK);
    assert_string_equal(out, "abc");
    assert_int_equal(dq_slurm_nodelist_first("node[1-2]", out, sizeof(out),
                                             err, sizeof(err)),
                     DQ_ERR_NOSPACE);
    assert_string_equal(err, "host name 'node1' does not fit in 4 bytes");
    assert_string_equal(out, "");

    memset(list, 'n', DQ_HOST_NAME_MAX);
    strcpy(list + DQ_HOST_NAME_MAX, "[1]");
    assert_int_equal(dq_slurm_nodelist_first(list, out, sizeof(out), err,
                                             sizeof(err)), DQ_ERR_USAGE);
    assert_non_null(strstr(err, "host name too long (at most 255 "
                                "characters)"));
}

/* ---- assigning nodes --------------------------------------------------- */

static void assign_fills_slots_in_order(void **state)
{
    const char *node_host[DQ_MAX_NODES];
    char err[DQ_ERRBUF_SIZE] = "";
    unsigned count = 99;
    DqHostList l;

    (void)state;
    hostfile_ok("a slots=2\nb\nc slots=3\n", &l);
    assert_int_equal(dq_hostlist_assign(&l, 4, node_host, &count, err,
                                        sizeof(err)), DQ_OK);
    assert_int_equal(count, 4);
    assert_string_equal(node_host[0], "a");
    assert_string_equal(node_host[1], "a");
    assert_string_equal(node_host[2], "b");
    assert_string_equal(node_host[3], "c");
    assert_ptr_equal(node_host[0], l.hosts[0].name);

    /* Exactly the slots. */
    assert_int_equal(dq_hostlist_assign(&l, 6, node_host, &count, err,
                                        sizeof(err)), DQ_OK);
    assert_int_equal(count, 6);
    assert_string_equal(node_host[5], "c");

    /* 0: one node a slot. */
    count = 99;
    assert_int_equal(dq_hostlist_assign(&l, 0, node_host, &count, err,
                                        sizeof(err)), DQ_OK);
    assert_int_equal(count, 6);
    assert_string_equal(node_host[4], "c");
    dq_hostlist_free(&l);
}

static void assign_refuses_more_nodes_than_slots(void **state)
{
    const char *node_host[DQ_MAX_NODES];
    char err[DQ_ERRBUF_SIZE] = "";
    unsigned count = 99;
    DqHostList l;

    (void)state;
    hostfile_ok("a slots=2\nb\n", &l);
    assert_int_equal(dq_hostlist_assign(&l, 4, node_host, &count, err,
                                        sizeof(err)), DQ_ERR_RANGE);
    assert_string_equal(err, "4 nodes but the hosts have only 3 slots");
    assert_int_equal(count, 0);
    assert_int_equal(dq_hostlist_assign(&l, DQ_MAX_NODES + 1, node_host,
                                        &count, err, sizeof(err)),
                     DQ_ERR_RANGE);
    assert_string_equal(err, "65 nodes: at most 64");
    dq_hostlist_free(&l);

    hostfile_ok("a\n", &l);
    assert_int_equal(dq_hostlist_assign(&l, 2, node_host, &count, err,
                                        sizeof(err)), DQ_ERR_RANGE);
    assert_string_equal(err, "2 nodes but the hosts have only 1 slot");
    dq_hostlist_free(&l);

    assert_int_equal(dq_hostlist_assign(&l, 1, node_host, &count, err,
                                        sizeof(err)), DQ_ERR_USAGE);
    assert_string_equal(err, "no hosts");
}

static void assign_of_every_slot_is_capped_at_max_nodes(void **state)
{
    const char *node_host[DQ_MAX_NODES];
    char err[DQ_ERRBUF_SIZE] = "";
    unsigned count = 99;
    DqHostList l;

    (void)state;
    hostfile_ok("a slots=64\nb slots=64\n", &l);
    assert_int_equal(dq_hostlist_assign(&l, 0, node_host, &count, err,
                                        sizeof(err)), DQ_ERR_RANGE);
    assert_string_equal(err, "the hosts have more than 64 slots, more nodes "
                             "than dqemu runs; give a node count");
    assert_int_equal(dq_hostlist_assign(&l, DQ_MAX_NODES, node_host, &count,
                                        err, sizeof(err)), DQ_OK);
    assert_int_equal(count, DQ_MAX_NODES);
    assert_string_equal(node_host[DQ_MAX_NODES - 1], "a");
    dq_hostlist_free(&l);

    hostfile_ok("a slots=64\n", &l);
    assert_int_equal(dq_hostlist_assign(&l, 0, node_host, &count, err,
                                        sizeof(err)), DQ_OK);
    assert_int_equal(count, DQ_MAX_NODES);
    dq_hostlist_free(&l);
}

static void free_of_an_empty_list_is_harmless(void **state)
{
    DqHostList l = { NULL, 0 };

    (void)state;
    dq_hostlist_free(&l);
    dq_hostlist_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(hostfile_reads_hosts_slots_and_comments),
        cmocka_unit_test(hostfile_comment_may_touch_the_text),
        cmocka_unit_test(hostfile_duplicates_add_slots_to_the_first_line),
        cmocka_unit_test(hostfile_merges_many_hosts_in_order),
        cmocka_unit_test(hostfile_errors_name_the_line),
        cmocka_unit_test(hostfile_refuses_what_is_not_a_host_name),
        cmocka_unit_test(hostfile_without_hosts_is_an_error),
        cmocka_unit_test(hostfile_load_reads_a_file),
        cmocka_unit_test(hostfile_load_errors_start_with_the_path),
        cmocka_unit_test(hostfile_load_refuses_an_unreadable_file),
        cmocka_unit_test(hosts_list_takes_names_and_slot_counts),
        cmocka_unit_test(hosts_list_errors_name_the_item),
        cmocka_unit_test(slurm_first_host_of_plain_and_bracketed_lists),
        cmocka_unit_test(slurm_lists_are_checked_whole),
        cmocka_unit_test(slurm_first_host_must_fit),
        cmocka_unit_test(assign_fills_slots_in_order),
        cmocka_unit_test(assign_refuses_more_nodes_than_slots),
        cmocka_unit_test(assign_of_every_slot_is_capped_at_max_nodes),
        cmocka_unit_test(free_of_an_empty_list_is_harmless),
    };

    return cmocka_run_group_tests_name("hostlist", tests, NULL, NULL);
}
