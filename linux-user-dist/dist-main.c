/*
 * dist-main.c - dqemu's start-up and exit inside linux-user.
 *
 * Owns the process-wide dqemu state of this node: the parsed options and
 * the statistics.  Options are collected while QEMU parses its command
 * line and applied in dist_start() after the DQEMU_* variables, so the
 * command line wins exactly as it does for QEMU_* variables.
 */
#include "qemu/osdep.h"
#include "qemu-version.h"
#include "qemu/timer.h"
#include "qemu.h"
#include "dist-hooks.h"
#include "dist-internal.h"
#include "cpu-state.h"
#include "syscall-class.h"

/* Options seen on the command line, replayed over the environment's. */
typedef struct DistArgOption {
    const char *name;
    const char *value;
} DistArgOption;

static DistArgOption *dist_arg_options;
static int dist_arg_option_count;

DqOptions dist_options;
DqStats dist_stats;
static int64_t dist_start_ns;

static void G_NORETURN dist_usage_error(const char *msg)
{
    fprintf(stderr, "dqemu-" TARGET_NAME ": %s\n"
            "Try 'dqemu-" TARGET_NAME " --help' for more information.\n",
            msg);
    exit(EXIT_FAILURE);
}

bool dist_parse_option(const char *name, int argc, char **argv, int *optind)
{
    const char *next = *optind < argc ? argv[*optind] : NULL;
    char err[DQ_ERRBUF_SIZE];
    DqOptions scratch;
    int consumed;
    DistArgOption *o;

    /* Parse now so a bad value is reported at once, naming the option. */
    dq_options_init(&scratch);
    if (dq_options_parse(&scratch, name, next, &consumed, err, sizeof(err))
        != DQ_OK) {
        dist_usage_error(err);
    }
    if (consumed == 0) {
        return false;
    }
    dist_arg_options = g_renew(DistArgOption, dist_arg_options,
                               dist_arg_option_count + 1);
    o = &dist_arg_options[dist_arg_option_count++];
    o->name = name;
    o->value = consumed == 2 ? next : NULL;
    *optind += consumed - 1;
    return true;
}

void dist_usage(void)
{
    printf("dqemu-" TARGET_NAME " " DQEMU_VERSION
           ": run a Linux " TARGET_NAME " program with its threads spread"
           " over several nodes\n"
           "usage: dqemu-" TARGET_NAME
           " [dqemu options] [qemu-" TARGET_NAME " options] program"
           " [arguments...]\n"
           "\n"
           "dqemu options (long options; environment variable):\n"
           "\n");
    dq_options_usage(stdout);
    printf("\n"
           "All qemu-" TARGET_NAME " options and QEMU_* variables work"
           " unchanged:\n\n");
}

void dist_print_version(void)
{
    printf("dqemu-" TARGET_NAME " version " DQEMU_VERSION
           " (based on QEMU " QEMU_FULL_VERSION ")\n");
}

const char *dist_default_cpu_model(void)
{
#ifdef TARGET_RISCV64
    return "rv64";
#else
    return NULL;
#endif
}

static const char *dist_getenv(const char *name)
{
    return getenv(name);
}

void dist_start(CPUArchState *env)
{
    const char *selftest;
    char err[DQ_ERRBUF_SIZE];
    int consumed;
    int i;

    /* A developer check, deliberately not in --help: see syscall-class.h. */
    dist_syscall_class_dump_if_asked();

    dq_options_init(&dist_options);
    if (dq_options_from_env(&dist_options, dist_getenv, err, sizeof(err))
        != DQ_OK) {
        dist_usage_error(err);
    }
    for (i = 0; i < dist_arg_option_count; i++) {
        DistArgOption *o = &dist_arg_options[i];

        /* Already checked in dist_parse_option(); cannot fail now. */
        if (dq_options_parse(&dist_options, o->name, o->value, &consumed,
                             err, sizeof(err)) != DQ_OK) {
            dist_usage_error(err);
        }
        assert(consumed > 0);
    }
    g_free(dist_arg_options);
    dist_arg_options = NULL;
    dist_arg_option_count = 0;

    if (dq_options_validate(&dist_options, err, sizeof(err)) != DQ_OK) {
        dist_usage_error(err);
    }
    dist_start_ns = get_clock();

    /* A developer check, deliberately not in --help: see cpu-state.h. */
    selftest = dist_getenv("DQEMU_SELFTEST_CPU_STATE");
    if (selftest && *selftest) {
        dist_cpu_state_selftest(env, selftest);
    }
}

void dist_exit(CPUArchState *env, int code)
{
    if (!dist_options.stats) {
        return;
    }
    dist_stats.wall_time_ns = get_clock() - dist_start_ns;
    fflush(stdout);
    dq_stats_print(stderr, 0, &dist_stats);
}
