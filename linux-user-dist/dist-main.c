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
#include "exec/translation-block.h"
#include "exec/tb-flush.h"
#include "dist-hooks.h"
#include "dist-internal.h"
#include "cpu-state.h"
#include "syscall-class.h"

/* Options seen on the command line, replayed over the environment's. */
typedef struct DistArgOption {
    const char *name;
    const char *value;
} DistArgOption;

/* The guest space of a 64-bit guest on several nodes (see -R). */
#define DIST_GUEST_SPACE (4ul << 30)

static DistArgOption *dist_arg_options;
static int dist_arg_option_count;
/* argv indices that held our options (workers get the others). */
static GArray *dist_arg_indices;
static bool dist_worker_flag;
static const char **dist_cpu_model_slot;

DqOptions dist_options;
DqStats dist_stats;
int64_t dist_start_time_ns;

void dist_usage_error(const char *fmt, ...)
{
    va_list ap;

    fflush(stdout);
    fprintf(stderr, "dqemu-" TARGET_NAME ": ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'dqemu-" TARGET_NAME " --help' for more "
            "information.\n");
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
        dist_usage_error("%s", err);
    }
    if (consumed == 0) {
        return false;
    }
    dist_arg_options = g_renew(DistArgOption, dist_arg_options,
                               dist_arg_option_count + 1);
    o = &dist_arg_options[dist_arg_option_count++];
    o->name = name;
    o->value = consumed == 2 ? next : NULL;
    if (dist_arg_indices == NULL) {
        dist_arg_indices = g_array_new(false, false, sizeof(int));
    }
    /* parse_args() has already stepped past the option itself. */
    for (int i = 0; i < consumed; i++) {
        int index = *optind - 1 + i;

        g_array_append_val(dist_arg_indices, index);
    }
    if (scratch.worker) {
        dist_worker_flag = true;
    }
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

static void dist_settle_options(void);

static const char *dist_getenv(const char *name)
{
    return getenv(name);
}

bool dist_is_worker(void)
{
    /* An srun/mpirun rank learns that it is a worker from its environment. */
    dist_settle_options();
    return dist_worker_flag || dist_options.worker;
}

const char *dist_master_cpu_model(void)
{
    return dist_cpu_model_slot ? *dist_cpu_model_slot : NULL;
}

/* Settle dqemu's options: environment first, then the command line. */
static void dist_settle_options(void)
{
    char err[DQ_ERRBUF_SIZE];
    int consumed;
    int i;

    static bool settled;

    if (settled) {
        return;
    }
    settled = true;
    dq_options_init(&dist_options);
    if (dq_options_from_env(&dist_options, dist_getenv, err, sizeof(err))
        != DQ_OK) {
        dist_usage_error("%s", err);
    }
    for (i = 0; i < dist_arg_option_count; i++) {
        DistArgOption *o = &dist_arg_options[i];

        /* Already checked in dist_parse_option(); cannot fail now. */
        if (dq_options_parse(&dist_options, o->name, o->value, &consumed,
                             err, sizeof(err)) != DQ_OK) {
            dist_usage_error("%s", err);
        }
        assert(consumed > 0);
    }
    g_free(dist_arg_options);
    dist_arg_options = NULL;
    dist_arg_option_count = 0;
    dist_launch_settle();
    if (dq_options_validate(&dist_options, err, sizeof(err)) != DQ_OK) {
        dist_usage_error("%s", err);
    }
    dist_stats_check_json_file();
}

void dist_after_args(int argc, char **argv, int prog_index,
                     const char **cpu_model)
{
    bool *ours = g_new0(bool, argc + 1);
    guint i;

    dist_settle_options();
    for (i = 0; dist_arg_indices && i < dist_arg_indices->len; i++) {
        int index = g_array_index(dist_arg_indices, int, i);

        if (index >= 0 && index < argc) {
            ours[index] = true;
        }
    }
    if (dist_options.worker) {
        dist_node_worker_join(cpu_model);
    } else if (dist_options.nodes > 1) {
        dist_cpu_model_slot = cpu_model;
        dist_node_note_args(argc, argv, prog_index, ours);
        /*
         * Every node must reserve the same guest space (DESIGN.md §4).
         * 32-bit guests get QEMU's 4 GiB anyway; a 64-bit guest gets
         * DIST_GUEST_SPACE unless -R asked for another size.
         */
        if (reserved_va == 0 && TARGET_VIRT_ADDR_SPACE_BITS > 32) {
            reserved_va = DIST_GUEST_SPACE - 1;
        }
    }
    g_free(ours);
}

void dist_start(CPUArchState *env)
{
    const char *selftest;

    /* A developer check, deliberately not in --help: see syscall-class.h. */
    dist_syscall_class_dump_if_asked();

    dist_settle_options();
    dist_start_time_ns = get_clock();
    dist_stats_init();

    /* A developer check, deliberately not in --help: see cpu-state.h. */
    selftest = dist_getenv("DQEMU_SELFTEST_CPU_STATE");
    if (selftest && *selftest) {
        dist_cpu_state_selftest(env, selftest);
    }

    if (dist_options.worker) {
        dist_thread_init_worker();
        dist_excl_init_worker(env_cpu(env));
        dist_node_worker_ready(env);
        dist_node_worker_serve(env);
    }
    /* The guest's main thread runs here, on the master. */
    dist_master_env = env;
    dist_stats_thread_begin();
    if (dist_options.nodes > 1) {
        dist_node_master_start(env);
        dist_thread_init_master();
        dist_excl_init_master();
        dist_syscall_init();
        /*
         * Level 1 of the atomics (docs/dist.md): parallel code from the
         * first instruction, so that exclusive pairs and read-modify-
         * writes are host atomics on the host page, which page ownership
         * makes atomic across nodes.  Nothing is translated yet; the flush
         * is for a caller that ever runs earlier code.
         */
        if (!tcg_cflags_has(env_cpu(env), CF_PARALLEL)) {
            tcg_cflags_set(env_cpu(env), CF_PARALLEL);
            tb_flush(env_cpu(env));
        }
    }
    /* Last: the threads started above stay in the service cgroup. */
    dist_simhost_enter_guest();
}

void dist_exit(CPUArchState *env, int code)
{
    int status;

    if (dist_active() && dist_node_id != 0) {
        /* Only a fatal signal ends a worker's guest: tell the master. */
        if (code > 128) {
            dist_signal_fatal_on_worker(code - 128);
        }
        return;
    }
    status = dist_stats_at_exit(code);
    dist_node_shutdown(status);
    if (status != code) {
        /* Only a lost --stats-json changes it; QEMU would exit with @code. */
        _exit(status);
    }
}
