/*
 * options.c - dqemu's own command-line options and DQEMU_* variables.
 *
 * QEMU's parse_args() hands every option it sees to us first (through
 * linux-user-dist), so one table here defines the long option, its
 * environment variable and its --help line.  Nothing here prints except
 * dq_options_usage(); errors come back as text for the caller to report.
 */
#include "dqemu.h"
#include "dq-sched.h"
#include "launch.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef DqStatus (*DqOptionSetter)(DqOptions *opts, const char *value,
                                   const char *what, char *err, size_t errlen);

typedef struct DqOptionDesc {
    const char *name;       /* long option without dashes */
    const char *env;        /* environment variable, or NULL for none */
    const char *metavar;    /* NULL for a flag */
    DqOptionSetter set;
    const char *help;
} DqOptionDesc;

/* Parse a decimal in [min, max]; anything else (sign, junk, overflow) fails. */
static bool parse_uint(const char *s, unsigned long min, unsigned long max,
                       unsigned long *out)
{
    char *end;
    unsigned long v;

    if (s == NULL || *s < '0' || *s > '9') {
        return false;
    }
    errno = 0;
    v = strtoul(s, &end, 10);
    if (errno || *end != '\0' || v < min || v > max) {
        return false;
    }
    *out = v;
    return true;
}

/* Flags accept an optional value for the environment form: 1/0, yes/no. */
static bool parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = { "1", "yes", "on", "true" };
    static const char *const no[] = { "0", "no", "off", "false" };
    size_t i;

    for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcmp(s, yes[i]) == 0) {
            *out = true;
            return true;
        }
        if (strcmp(s, no[i]) == 0) {
            *out = false;
            return true;
        }
    }
    return false;
}

static DqStatus set_nodes(DqOptions *opts, const char *value, const char *what,
                          char *err, size_t errlen)
{
    unsigned long v;

    if (!parse_uint(value, 1, DQ_MAX_NODES, &v)) {
        return dq_fail(err, errlen, DQ_ERR_RANGE,
                         "%s: '%s' is not a node count in 1..%d",
                         what, value, DQ_MAX_NODES);
    }
    opts->nodes = (unsigned)v;
    return DQ_OK;
}


static DqStatus set_placement(DqOptions *opts, const char *value,
                              const char *what, char *err, size_t errlen)
{
    char why[DQ_ERRBUF_SIZE];
    DqSchedPolicy p;

    if (dq_sched_policy_parse(value, &p, why, sizeof(why)) != DQ_OK) {
        return dq_fail(err, errlen, DQ_ERR_USAGE, "%s: %s", what, why);
    }
    opts->placement = (int)p;
    return DQ_OK;
}


/*
 * Endpoints are checked for shape here (ZeroMQ's tcp://HOST:PORT) so a
 * typo fails at once, naming the option, instead of as a join timeout.
 */
static bool endpoint_ok(const char *value)
{
    const char *colon;
    unsigned long port;

    /* A local cluster's private socket (what the master hands its own). */
    if (strncmp(value, "ipc:///", 7) == 0) {
        return strlen(value) < DQ_ENDPOINT_MAX;
    }
    if (strncmp(value, "tcp://", 6) != 0 || value[6] == '\0' ||
        strlen(value) >= DQ_ENDPOINT_MAX) {
        return false;
    }
    colon = strrchr(value + 6, ':');
    if (colon == NULL || colon == value + 6) {
        return false;
    }
    return strcmp(colon + 1, "*") == 0 || parse_uint(colon + 1, 0, 65535, &port);
}

static DqStatus set_endpoint(const char **slot, const char *value,
                             const char *what, char *err, size_t errlen)
{
    if (!endpoint_ok(value)) {
        return dq_fail(err, errlen, DQ_ERR_USAGE,
                         "%s: '%s' is not an endpoint of the form "
                         "tcp://HOST:PORT", what, value);
    }
    *slot = value;
    return DQ_OK;
}

static DqStatus set_master(DqOptions *opts, const char *value,
                           const char *what, char *err, size_t errlen)
{
    return set_endpoint(&opts->master, value, what, err, errlen);
}

static DqStatus set_listen(DqOptions *opts, const char *value,
                           const char *what, char *err, size_t errlen)
{
    return set_endpoint(&opts->listen, value, what, err, errlen);
}

static DqStatus set_node_id(DqOptions *opts, const char *value,
                            const char *what, char *err, size_t errlen)
{
    unsigned long v;

    if (!parse_uint(value, 1, DQ_MAX_NODES - 1, &v)) {
        return dq_fail(err, errlen, DQ_ERR_RANGE,
                         "%s: '%s' is not a worker node id in 1..%d",
                         what, value, DQ_MAX_NODES - 1);
    }
    opts->node_id = (unsigned)v;
    return DQ_OK;
}

static DqStatus set_cpus_per_node(DqOptions *opts, const char *value,
                                  const char *what, char *err, size_t errlen)
{
    unsigned long v;

    if (!parse_uint(value, 1, DQ_MAX_CPUS_PER_NODE, &v)) {
        return dq_fail(err, errlen, DQ_ERR_RANGE,
                         "%s: '%s' is not a CPU count in 1..%d",
                         what, value, DQ_MAX_CPUS_PER_NODE);
    }
    opts->cpus_per_node = (unsigned)v;
    return DQ_OK;
}

static DqStatus set_atomic_lease(DqOptions *opts, const char *value,
                                 const char *what, char *err, size_t errlen)
{
    unsigned long v;

    if (!parse_uint(value, 0, DQ_MAX_ATOMIC_LEASE_US, &v)) {
        return dq_fail(err, errlen, DQ_ERR_RANGE,
                         "%s: '%s' is not a time in microseconds in 0..%d",
                         what, value, DQ_MAX_ATOMIC_LEASE_US);
    }
    opts->atomic_lease_us = (long)v;
    return DQ_OK;
}

/* A path or command: anything but the empty string. */
static DqStatus set_text(const char **slot, const char *value,
                         const char *what, char *err, size_t errlen)
{
    if (value == NULL || *value == '\0') {
        return dq_fail(err, errlen, DQ_ERR_USAGE, "%s: empty value", what);
    }
    *slot = value;
    return DQ_OK;
}

static DqStatus set_flag(bool *slot, const char *value, const char *what,
                         char *err, size_t errlen)
{
    bool v = true;

    if (value && !parse_bool(value, &v)) {
        return dq_fail(err, errlen, DQ_ERR_USAGE,
                         "%s: '%s' is not one of 1/0, yes/no, on/off",
                         what, value);
    }
    *slot = v;
    return DQ_OK;
}

static DqStatus set_stats(DqOptions *opts, const char *value, const char *what,
                          char *err, size_t errlen)
{
    return set_flag(&opts->stats, value, what, err, errlen);
}

static DqStatus set_stats_json(DqOptions *opts, const char *value,
                               const char *what, char *err, size_t errlen)
{
    return set_text(&opts->stats_json, value, what, err, errlen);
}

static DqStatus set_worker(DqOptions *opts, const char *value,
                           const char *what, char *err, size_t errlen)
{
    return set_flag(&opts->worker, value, what, err, errlen);
}

static DqStatus set_hostfile(DqOptions *opts, const char *value,
                             const char *what, char *err, size_t errlen)
{
    return set_text(&opts->hostfile, value, what, err, errlen);
}

static DqStatus set_hosts(DqOptions *opts, const char *value,
                          const char *what, char *err, size_t errlen)
{
    return set_text(&opts->hosts, value, what, err, errlen);
}

static DqStatus set_launcher(DqOptions *opts, const char *value,
                             const char *what, char *err, size_t errlen)
{
    return set_text(&opts->launcher, value, what, err, errlen);
}

static DqStatus set_remote_dqemu(DqOptions *opts, const char *value,
                                 const char *what, char *err, size_t errlen)
{
    return set_text(&opts->remote_dqemu, value, what, err, errlen);
}

static DqStatus set_cluster_key(DqOptions *opts, const char *value,
                                const char *what, char *err, size_t errlen)
{
    return set_text(&opts->cluster_key, value, what, err, errlen);
}

static DqStatus set_gen_cluster_key(DqOptions *opts, const char *value,
                                    const char *what, char *err,
                                    size_t errlen)
{
    return set_text(&opts->gen_cluster_key, value, what, err, errlen);
}

static DqStatus set_cluster_key_stdin(DqOptions *opts, const char *value,
                                      const char *what, char *err,
                                      size_t errlen)
{
    return set_flag(&opts->cluster_key_stdin, value, what, err, errlen);
}

static DqStatus set_stdin_lifeline(DqOptions *opts, const char *value,
                                   const char *what, char *err, size_t errlen)
{
    return set_flag(&opts->stdin_lifeline, value, what, err, errlen);
}

static DqStatus set_insecure(DqOptions *opts, const char *value,
                             const char *what, char *err, size_t errlen)
{
    return set_flag(&opts->insecure, value, what, err, errlen);
}

static DqStatus set_sim_link_delay(DqOptions *opts, const char *value,
                                   const char *what, char *err,
                                   size_t errlen)
{
    unsigned long v;

    if (!parse_uint(value, 0, DQ_MAX_SIM_LINK_DELAY_US, &v)) {
        return dq_fail(err, errlen, DQ_ERR_RANGE,
                         "%s: '%s' is not a time in microseconds in 0..%d",
                         what, value, DQ_MAX_SIM_LINK_DELAY_US);
    }
    opts->sim_link_delay_us = v;
    return DQ_OK;
}

static const DqOptionDesc dq_option_table[] = {
    { "nodes", "DQEMU_NODES", "N", set_nodes,
      "run the program on N nodes, master included (default 1)" },
    { "stats", "DQEMU_STATS", NULL, set_stats,
      "print per-node statistics to stderr at exit" },
    { "stats-json", "DQEMU_STATS_JSON", "FILE", set_stats_json,
      "write every node's statistics to FILE as JSON at exit" },
    { "placement", "DQEMU_PLACEMENT", "POLICY", set_placement,
      "where new threads run: round-robin (default), master, fill, spread" },
    { "cpus-per-node", "DQEMU_CPUS_PER_NODE", "N", set_cpus_per_node,
      "CPUs the guest sees per node (default: this host's count)" },
    { "atomic-lease", "DQEMU_ATOMIC_LEASE", "USEC", set_atomic_lease,
      "keep a page fetched for an atomic this long (0: off)" },
    { "listen", "DQEMU_LISTEN", "ENDPOINT", set_listen,
      "master: bind here and wait for workers started by hand" },
    { "hostfile", "DQEMU_HOSTFILE", "FILE", set_hostfile,
      "run nodes on these hosts (Open MPI hostfile: host [slots=K])" },
    { "hosts", "DQEMU_HOSTS", "H1,H2:K,...", set_hosts,
      "the same as a list; the first host is this machine" },
    { "launcher", "DQEMU_LAUNCHER", "CMD", set_launcher,
      "starts a worker on {host} (default: " DQ_LAUNCHER_DEFAULT ")" },
    { "remote-dqemu", "DQEMU_REMOTE_DQEMU", "PATH", set_remote_dqemu,
      "dqemu's path on the other hosts (default: this binary's)" },
    { "cluster-key", "DQEMU_CLUSTER_KEY", "FILE", set_cluster_key,
      "the cluster's secret (mode 0600), for --listen, workers, ranks" },
    { "gen-cluster-key", NULL, "FILE", set_gen_cluster_key,
      "write a new cluster key to FILE (mode 0600) and exit" },
    { "insecure", "DQEMU_INSECURE", NULL, set_insecure,
      "no authentication or encryption (isolated networks only)" },
    { "worker", NULL, NULL, set_worker,
      "run as a worker node (with --master and --node-id)" },
    { "master", NULL, "ENDPOINT", set_master,
      "the master's endpoint, e.g. tcp://10.0.0.1:7000 (worker, mpirun)" },
    { "node-id", NULL, "K", set_node_id,
      "worker: this node's id, 1..nodes-1" },
    { "cluster-key-stdin", NULL, NULL, set_cluster_key_stdin,
      "worker: read the key from stdin (what --hostfile launches use)" },
    { "stdin-lifeline", NULL, NULL, set_stdin_lifeline,
      "worker: leave when stdin closes (implied by --cluster-key-stdin)" },
    { "sim-link-delay", "DQEMU_SIM_LINK_DELAY", "USEC", set_sim_link_delay,
      "simulation aid: hold every received message USEC" },
};

#define DQ_OPTION_COUNT (sizeof(dq_option_table) / sizeof(dq_option_table[0]))

void dq_options_init(DqOptions *opts)
{
    memset(opts, 0, sizeof(*opts));
    opts->nodes = 1;
    opts->placement = DQ_SCHED_ROUND_ROBIN;
    opts->atomic_lease_us = -1;
}

DqStatus dq_options_parse(DqOptions *opts, const char *name, const char *next,
                          int *consumed, char *err, size_t errlen)
{
    const char *eq = strchr(name, '=');
    size_t len = eq ? (size_t)(eq - name) : strlen(name);
    char what[64];
    size_t i;

    *consumed = 0;
    for (i = 0; i < DQ_OPTION_COUNT; i++) {
        const DqOptionDesc *d = &dq_option_table[i];
        const char *value;

        if (strlen(d->name) != len || strncmp(d->name, name, len) != 0) {
            continue;
        }
        snprintf(what, sizeof(what), "--%s", d->name);
        if (d->metavar == NULL) {
            /* A flag never takes the next argument, only "--flag=value". */
            *consumed = 1;
            return d->set(opts, eq ? eq + 1 : NULL, what, err, errlen);
        }
        if (eq) {
            value = eq + 1;
            *consumed = 1;
        } else if (next) {
            value = next;
            *consumed = 2;
        } else {
            return dq_fail(err, errlen, DQ_ERR_USAGE,
                             "%s needs a value (%s)", what, d->metavar);
        }
        return d->set(opts, value, what, err, errlen);
    }
    return DQ_OK;
}

DqStatus dq_options_from_env(DqOptions *opts,
                             const char *(*get_env)(const char *name),
                             char *err, size_t errlen)
{
    size_t i;

    for (i = 0; i < DQ_OPTION_COUNT; i++) {
        const DqOptionDesc *d = &dq_option_table[i];
        const char *value = d->env ? get_env(d->env) : NULL;
        DqStatus st;

        if (value == NULL) {
            continue;
        }
        st = d->set(opts, value, d->env, err, errlen);
        if (st != DQ_OK) {
            return st;
        }
    }
    return DQ_OK;
}

DqStatus dq_options_validate(const DqOptions *opts, char *err, size_t errlen)
{
    bool host_list = opts->hostfile != NULL || opts->hosts != NULL;
    bool keyed = opts->cluster_key != NULL || opts->cluster_key_stdin;

    if (opts->insecure && keyed) {
        return dq_fail(err, errlen, DQ_ERR_USAGE,
                         "--insecure turns authentication off: not with "
                         "--cluster-key");
    }
    if ((opts->cluster_key_stdin || opts->stdin_lifeline) && !opts->worker) {
        return dq_fail(err, errlen, DQ_ERR_USAGE, "%s is only for a --worker",
                       opts->cluster_key_stdin ? "--cluster-key-stdin" :
                       "--stdin-lifeline");
    }
    if (opts->hostfile != NULL && opts->hosts != NULL) {
        return dq_fail(err, errlen, DQ_ERR_USAGE,
                         "--hostfile and --hosts are alternatives: give one");
    }
    if ((opts->launcher != NULL || opts->remote_dqemu != NULL) && !host_list) {
        return dq_fail(err, errlen, DQ_ERR_USAGE,
                         "%s is only for --hostfile or --hosts",
                         opts->launcher ? "--launcher" : "--remote-dqemu");
    }
    if (opts->worker) {
        if (opts->master == NULL || opts->node_id == 0) {
            return dq_fail(err, errlen, DQ_ERR_USAGE,
                             "--worker needs --master ENDPOINT and "
                             "--node-id K");
        }
        if (opts->listen != NULL || host_list) {
            return dq_fail(err, errlen, DQ_ERR_USAGE,
                             "%s is for the master, not a --worker",
                             opts->listen ? "--listen" : "--hostfile");
        }
        /* A local master's ipc:// socket is guarded by the file system. */
        if (strncmp(opts->master, "tcp://", 6) == 0 && !keyed &&
            !opts->insecure) {
            return dq_fail(err, errlen, DQ_ERR_USAGE,
                             "--worker needs --cluster-key FILE, the key of "
                             "the master's cluster (or --insecure on an "
                             "isolated network)");
        }
        return DQ_OK;
    }
    if (opts->master != NULL || opts->node_id != 0) {
        return dq_fail(err, errlen, DQ_ERR_USAGE,
                         "%s is only for a --worker or a rank of srun or "
                         "mpirun",
                         opts->master != NULL ? "--master" : "--node-id");
    }
    if (opts->listen != NULL && host_list) {
        return dq_fail(err, errlen, DQ_ERR_USAGE,
                         "--listen waits for workers started by hand: not "
                         "with --hostfile or --hosts");
    }
    if (opts->listen != NULL && opts->nodes < 2) {
        return dq_fail(err, errlen, DQ_ERR_USAGE,
                         "--listen needs --nodes 2 or more");
    }
    if (opts->listen != NULL && !keyed && !opts->insecure) {
        return dq_fail(err, errlen, DQ_ERR_USAGE,
                         "--listen needs --cluster-key FILE (made with "
                         "--gen-cluster-key), or --insecure on an isolated "
                         "network");
    }
    return DQ_OK;
}

bool dq_options_describe(size_t index, DqOptionInfo *out)
{
    const DqOptionDesc *d;

    if (index >= DQ_OPTION_COUNT) {
        return false;
    }
    d = &dq_option_table[index];
    out->name = d->name;
    out->env = d->env;
    out->metavar = d->metavar;
    out->help = d->help;
    return true;
}

void dq_options_usage(FILE *out)
{
    size_t i;

    for (i = 0; i < DQ_OPTION_COUNT; i++) {
        const DqOptionDesc *d = &dq_option_table[i];
        char left[48];

        snprintf(left, sizeof(left), "--%s%s%s", d->name,
                 d->metavar ? " " : "", d->metavar ? d->metavar : "");
        fprintf(out, "  %-24s %-20s %s\n", left, d->env ? d->env : "-",
                d->help);
    }
}
