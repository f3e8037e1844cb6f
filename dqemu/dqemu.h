/*
 * dqemu.h - public interface of libdqemu, the QEMU-free runtime.
 *
 * libdqemu knows nothing about QEMU or any ISA: it owns the option table,
 * status codes and statistics today, and the wire protocol, transport and
 * coherence engine as they arrive.  QEMU-side glue (linux-user-dist/) and
 * plain host programs (tests/) both link it, so everything here can be
 * unit-tested without building QEMU.
 */
#ifndef DQEMU_H
#define DQEMU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define DQEMU_VERSION "0.1.0"

/* ---- status codes ---------------------------------------------------- */

/*
 * One status type for the whole library.  Library functions return a
 * DqStatus and never print; the caller reports once (STYLE.md, "For dqemu" 6).
 */
#define DQ_STATUS_LIST(X)                                              \
    X(DQ_OK,            "success")                                     \
    X(DQ_ERR_USAGE,     "invalid command-line usage")                  \
    X(DQ_ERR_RANGE,     "value out of range")                          \
    X(DQ_ERR_NOSYS,     "not supported by this version of dqemu")      \
    X(DQ_ERR_NOMEM,     "out of memory")                               \
    X(DQ_ERR_NOSPACE,       "buffer too small")                        \
    X(DQ_ERR_PROTO_SHORT,   "message shorter than the header")         \
    X(DQ_ERR_PROTO_MAGIC,   "bad protocol magic")                      \
    X(DQ_ERR_PROTO_VERSION, "unsupported protocol version")            \
    X(DQ_ERR_PROTO_TYPE,    "unknown message type")                    \
    X(DQ_ERR_PROTO_FLAGS,   "unknown message flags")                   \
    X(DQ_ERR_PROTO_NODE,    "node id out of range")                    \
    X(DQ_ERR_PROTO_TOO_BIG, "message over the size limit")             \
    X(DQ_ERR_PROTO_LENGTH,  "payload length does not match size")      \
    X(DQ_ERR_PROTO_BODY,    "body size wrong for the type")            \
    X(DQ_ERR_PROTO_TAIL,    "tail length does not match message")      \
    X(DQ_ERR_PROTO_FIELD,   "field value out of range")                \
    X(DQ_ERR_DIR_QUEUE_FULL,                                           \
      "directory wait queue full, retry later")                        \
    X(DQ_ERR_DIR_NODE_FAILED, "message from a node declared failed")   \
    X(DQ_ERR_DIR_DATA_LOST,   "page data lost with its owner")         \
    X(DQ_ERR_DIR_ACK_UNEXPECTED,                                       \
      "invalidate ack with no invalidation in flight")                 \
    X(DQ_ERR_DIR_ACK_NOT_INVALIDATED,                                  \
      "invalidate ack from a node that was not invalidated")           \
    X(DQ_ERR_DIR_STALE_ID,                                             \
      "ack or recall reply for another transaction")                   \
    X(DQ_ERR_DIR_RECALL_UNEXPECTED,                                    \
      "recall reply with no recall in flight")                         \
    X(DQ_ERR_DIR_RECALL_NOT_OWNER,                                     \
      "recall reply from a node that is not the recalled owner")       \
    X(DQ_ERR_DIR_RECALL_KEPT,                                          \
      "recall reply keeps more than the recall allows")                \
    X(DQ_ERR_DIR_WRITEBACK_NOT_OWNER,                                  \
      "writeback from a node that is not the owner")                   \
    X(DQ_ERR_DIR_CORRUPT,     "directory entry breaks its invariants") \
    X(DQ_ERR_HOME_FULL,       "first-touch claim table full")          \
    X(DQ_ERR_XPORT_ZMQ,       "ZeroMQ call failed")                    \
    X(DQ_ERR_XPORT_TIMEOUT,   "no answer within the time limit")       \
    X(DQ_ERR_XPORT_PEER_FAILED, "peer node failed or unreachable")     \
    X(DQ_ERR_XPORT_REFUSED,   "join refused by the master")            \
    X(DQ_ERR_XPORT_SHUTDOWN,  "transport shut down")                   \
    X(DQ_ERR_PAGE_MEM,        "cannot access /proc/self/mem")        \
    X(DQ_ERR_PAGE_PROTECT,    "mprotect of a DSM page failed")      \
    X(DQ_ERR_DSM_REFUSED,     "page request refused by its home")   \
    X(DQ_ERR_DSM_BAD_REPLY,   "unexpected answer to a page request") \
    X(DQ_ERR_DSM_PAGE_LOST,   "page lost: its only copy died with a node") \
    X(DQ_ERR_SCHED_NO_NODE,   "no such node in the cluster")        \
    X(DQ_ERR_SCHED_NO_THREAD, "no live thread on that node")        \
    X(DQ_ERR_SCHED_GROUPS_FULL, "too many placement groups")

typedef enum DqStatus {
#define DQ_STATUS_ENUM(name, text) name,
    DQ_STATUS_LIST(DQ_STATUS_ENUM)
#undef DQ_STATUS_ENUM
    DQ_STATUS__COUNT
} DqStatus;

const char *dq_status_str(DqStatus status);

/*
 * Put the message (printf-style) in @err, if any room, and return
 * @status: the one way libdqemu functions say what went wrong.
 */
DqStatus dq_fail(char *err, size_t errlen, DqStatus status,
                 const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* ---- options ---------------------------------------------------------- */

#define DQ_MAX_NODES 64

/*
 * dqemu's own settings.  Each has a long option and a DQEMU_* environment
 * variable (the option wins); see DQ_OPTION_LIST in options.c.
 */
typedef struct DqOptions {
    unsigned nodes;         /* --nodes N: cluster size, master included */
    bool stats;             /* --stats: print statistics at exit */
    const char *stats_json; /* --stats-json FILE: write them as JSON too */
    int placement;          /* --placement: a DqSchedPolicy (dq-sched.h) */
    unsigned cpus_per_node; /* --cpus-per-node N; 0: the host's count */
    const char *listen;     /* --listen: master endpoint for hand-started
                             * workers; NULL: spawn local workers */
    bool worker;            /* --worker: this process is a worker node */
    const char *master;     /* --master: the master's endpoint (worker) */
    unsigned node_id;       /* --node-id: this worker's id (worker) */
    /*
     * --atomic-lease USEC: how long a node keeps a page it fetched for an
     * atomic before it gives it up (dsm.h); -1: the engine's default.
     */
    long atomic_lease_us;
    /* Clusters over several hosts (README "Across real hosts"). */
    const char *hostfile;   /* --hostfile: Open MPI hostfile */
    const char *hosts;      /* --hosts h1,h2:K,... */
    const char *launcher;   /* --launcher CMD; NULL: DQ_LAUNCHER_DEFAULT */
    const char *remote_dqemu; /* --remote-dqemu PATH; NULL: this binary */
    const char *cluster_key; /* --cluster-key FILE */
    const char *gen_cluster_key; /* --gen-cluster-key FILE: write, exit */
    bool cluster_key_stdin; /* --cluster-key-stdin: launched worker */
    bool stdin_lifeline;    /* --stdin-lifeline: leave when stdin closes */
    bool insecure;          /* --insecure: no CURVE (isolated networks) */
    /* --sim-link-delay USEC: hold each received message (simulation). */
    unsigned long sim_link_delay_us;
} DqOptions;

/* Longest --sim-link-delay accepted. */
#define DQ_MAX_SIM_LINK_DELAY_US 1000000

/* Longest --atomic-lease accepted: a second would stall other nodes. */
#define DQ_MAX_ATOMIC_LEASE_US 1000000

/* Longest endpoint accepted on the command line (tcp://HOST:PORT). */
#define DQ_ENDPOINT_MAX 128
#define DQ_MAX_CPUS_PER_NODE 1024

/* Room for one option diagnostic, e.g. "--nodes: 'x' is not a number". */
#define DQ_ERRBUF_SIZE 256

void dq_options_init(DqOptions *opts);

/*
 * Try to parse one command-line option.  @name is the option with its
 * leading dashes removed ("nodes", "nodes=4", "stats"); @next is the
 * following argv element or NULL.  On return *@consumed is 0 when the
 * option is not one of ours, 1 when it used @name only and 2 when it also
 * used @next.  On error a message naming the option is put in @err.
 */
DqStatus dq_options_parse(DqOptions *opts, const char *name, const char *next,
                          int *consumed, char *err, size_t errlen);

/*
 * Apply DQEMU_* variables, read through @get_env (getenv in production, a
 * table in tests).  On error @err names the variable.
 */
DqStatus dq_options_from_env(DqOptions *opts,
                             const char *(*get_env)(const char *name),
                             char *err, size_t errlen);

/* Check combinations that single options cannot (e.g. features not yet built). */
DqStatus dq_options_validate(const DqOptions *opts, char *err, size_t errlen);

/* The option table as --help shows it. */
void dq_options_usage(FILE *out);

/*
 * One row of the option table, for whoever renders it another way (the
 * man page generator): false past the last row.
 */
typedef struct DqOptionInfo {
    const char *name;       /* long option without dashes */
    const char *env;        /* DQEMU_* variable, or NULL */
    const char *metavar;    /* NULL for a flag */
    const char *help;
} DqOptionInfo;

bool dq_options_describe(size_t index, DqOptionInfo *out);

/* ---- statistics ------------------------------------------------------- */

/*
 * One X-macro names every counter with its unit and help text, so the
 * printed report (and later the trace header) cannot drift from counting.
 */
#define DQ_STATS_LIST(X)                                                   \
    X(threads_run,     "threads", "guest threads that ran on this node")   \
    X(threads_created, "threads", "guest threads created on this node")    \
    X(syscalls,        "calls",   "guest system calls made on this node")  \
    X(syscalls_local,  "calls",   "of those, in a class run locally")      \
    X(syscalls_global, "calls",   "of those, in a class the master runs")  \
    X(syscalls_delegated, "calls", "of those, sent to the master to run")  \
    X(syscalls_served, "calls",   "run here for threads of other nodes")   \
    X(delegated_wait_ns, "ns",    "time threads waited for delegated calls") \
    X(atomic_steps,    "steps",   "exclusive atomic steps run on this node") \
    X(atomic_step_ns,  "ns",      "their time, cluster-wide lock included") \
    X(atomic_pauses,   "pauses",  "times stopped for another node's step") \
    X(atomic_pause_ns, "ns",      "time stopped for other nodes' steps")  \
    X(wall_time_ns,    "ns",      "time from start to exit")            \
    X(thread_ns,       "ns",                                               \
      "guest threads' lifetime on this node, summed")

typedef struct DqStats {
#define DQ_STATS_FIELD(name, unit, help) uint64_t name;
    DQ_STATS_LIST(DQ_STATS_FIELD)
#undef DQ_STATS_FIELD
} DqStats;

/* Counters are bumped from any thread; relaxed atomics are enough for sums. */
#define dq_stats_add(stats, field, n) \
    __atomic_fetch_add(&(stats)->field, (uint64_t)(n), __ATOMIC_RELAXED)

/* Print @stats of node @node, one "name value unit" line per counter. */
void dq_stats_print(FILE *out, unsigned node, const DqStats *stats);

/* Print @stats as one JSON object, {"threads_run": N, ...}, list order. */
void dq_stats_print_json(FILE *out, const DqStats *stats);

/* Add every counter of @add to @sum (neither may change meanwhile). */
void dq_stats_sum(DqStats *sum, const DqStats *add);

/*
 * Print @s as a JSON string, quotes included: '"', '\\' and control
 * characters escaped, other bytes as they are (dqemu's own text is UTF-8
 * or ASCII).
 */
void dq_json_print_string(FILE *out, const char *s);

#endif /* DQEMU_H */
