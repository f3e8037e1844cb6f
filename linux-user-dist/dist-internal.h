/*
 * dist-internal.h - state shared between the linux-user-dist files.
 *
 * One process is one node.  Node 0, the master, loaded the program and
 * runs every global system call; workers (nodes 1..N-1) run guest threads
 * that the master placed there.  The files split the work as follows:
 *
 *   dist-main.c     options, start-up order, exit
 *   dist-node.c     the cluster: transport, joining, worker processes,
 *                   the service thread, failure and shutdown
 *   dist-mem.c      guest memory: the DSM region, layout replication, the
 *                   SIGSEGV, protection and syscall-buffer hooks
 *   dist-thread.c   remote threads and their proxies on the master
 *   dist-syscall.c  where each system call runs
 *   dist-stats.c    thread_ns, the --stats and --stats-json reports
 *   dist-wire.h     the little-endian encoding of our CALL payloads
 */
#ifndef LINUX_USER_DIST_INTERNAL_H
#define LINUX_USER_DIST_INTERNAL_H

#include "dqemu.h"
#include "xport.h"
#include "dist-hooks.h"

/* This node's options, final once dist_start() has run. */
extern DqOptions dist_options;

/* This node's counters (bumped with dq_stats_add from any thread). */
extern DqStats dist_stats;

/* ---- the cluster (dist-node.c) ---------------------------------------- */

/*
 * What travels in a CALL's op field (proto.h: CALL and CALL_REPLY carry
 * op, aux, arg and an opaque tail).  "req" ops are sent with
 * dq_xport_request() and answered with CALL_REPLY; "note" ops expect no
 * answer.  Values are wire codes: append only.
 */
typedef enum DistOp {
    DIST_OP_NONE = 0,
    /* req  worker -> master: tail = worker identity; reply = DistConfig */
    DIST_OP_CONFIG = 1,
    /* req  worker -> master: layout applied, DSM attached; empty reply */
    DIST_OP_READY = 2,
    /* req  master -> worker: tail = layout changes; reply once applied */
    DIST_OP_LAYOUT = 3,
    /* note master -> worker: arg = guest tid; tail = CPU state */
    DIST_OP_THREAD_START = 4,
    /* req  worker -> master: arg = guest tid, aux = syscall number;
     *      tail = 8 args, then the CPU state for CLONE-class calls;
     *      reply arg = the result */
    DIST_OP_SYSCALL = 5,
    /* note worker -> master: thread arg exits with status aux */
    DIST_OP_THREAD_EXIT = 6,
    /* req  master -> worker: aux = signal; tail = its new disposition */
    DIST_OP_SIGACTION = 7,
    /* req  master -> worker: arg = DIST_STATS_TEXT or DIST_STATS_JSON;
     *      reply tail = the worker's counters in that form */
    DIST_OP_STATS = 8,
    /* note worker -> master: the guest died of signal aux on this node */
    DIST_OP_FATAL_SIGNAL = 9,
    /* req  master -> worker: tail = ranges to drop (MADV_DONTNEED) */
    DIST_OP_DROP = 10,
    /* note master -> worker: signals (u32 each) for remote thread arg */
    DIST_OP_SIGNAL = 11,
    /* req  worker -> master: thread arg (its proxy) takes the step lock */
    DIST_OP_EXCL_ACQUIRE = 12,
    /* note worker -> master: thread arg (its proxy) gives it back */
    DIST_OP_EXCL_RELEASE = 13,
    /* note master -> worker: stop guest code for step arg */
    DIST_OP_EXCL_PAUSE = 14,
    /* note worker -> master: stopped for step arg */
    DIST_OP_EXCL_PAUSED = 15,
    /* note master -> worker: step arg is over, run again */
    DIST_OP_EXCL_RESUME = 16,
} DistOp;

/* DIST_OP_STATS's arg: the --stats lines, or {"stats": .., "dsm": ..}. */
#define DIST_STATS_TEXT 0
#define DIST_STATS_JSON 1

/* The master's main guest thread's CPU (for a fatal signal's core). */
extern CPUArchState *dist_master_env;

/* This node's id (0: master) and the cluster's size. */
extern unsigned dist_node_id;
extern unsigned dist_node_count;

/* Is more than one node running this program? */
static inline bool dist_active(void)
{
    return dist_node_count > 1;
}

/* The cluster's transport; NULL on one node. */
extern DqXport *dist_xport;

/* Master-side process ids, the same answer on every node. */
extern uint32_t dist_master_pid;
extern uint32_t dist_master_ppid;

/*
 * Worker start-up, right after QEMU parsed its command line: join the
 * master and take the settings that must equal the master's (CPU model,
 * guest space, signal trampolines).  Exits with a message on failure.
 */
void dist_node_worker_join(const char **cpu_model);

/* Master: start the transport and the workers, wait for all to join. */
void dist_node_master_start(CPUArchState *env);

/* Worker: apply the master's layout, attach the DSM, report ready. */
void dist_node_worker_ready(CPUArchState *env);

/* Worker: the main thread serves the master until the cluster ends. */
void G_NORETURN dist_node_worker_serve(CPUArchState *env);

/* Master: end the cluster with the guest's exit @code. */
void dist_node_shutdown(int code);

/* Master: the QEMU options before the program (workers get the same). */
void dist_node_note_args(int argc, char **argv, int prog_index,
                         const bool *ours);

/*
 * Master: the cluster cannot go on (a launched worker ended before it
 * joined, a launcher failed): the service thread reports and exits.
 * Context: any thread.
 */
void dist_node_fail(const char *fmt, ...) G_GNUC_PRINTF(1, 2);

/* ---- start-up and launching (dist-launch.c) ----------------------------- */

/*
 * A bad option, setting or key at start-up: print it naming dqemu, point
 * at --help and exit 1.  Context: start-up, before any node is started.
 */
void G_NORETURN dist_usage_error(const char *fmt, ...) G_GNUC_PRINTF(1, 2);

#include "clusterkey.h"

/* The cluster's key, when this node has one (file, stdin or fresh). */
extern DqClusterKey dist_cluster_key;
extern bool dist_have_cluster_key;

/*
 * Before the options are validated: --gen-cluster-key (writes, exits),
 * the --cluster-key check, an srun/mpirun rank's place, the host list.
 * Exits with a message on bad input.
 */
void dist_launch_settle(void);

/*
 * The address this machine reaches @host by, as an endpoint's host part
 * ("10.0.0.7", "[fd00::7]"); NULL when @host does not resolve.  g_free().
 */
char *dist_source_address(const char *host);

/* Is this master's cluster started from --hostfile/--hosts? */
bool dist_launch_from_host_list(void);

/*
 * Master, service thread: start nodes 1..N-1 of the host list, each
 * told to join @endpoint's port (tcp://ADDR:PORT); forward their output.
 */
void dist_launch_workers(const char *endpoint);

/*
 * Start @av (NULL-terminated; a path, or a name looked up in PATH) as a
 * process that is not the master's child, with stdin @in_fd and stdout
 * and stderr @out_fd (-1: ours), in a process group of its own if
 * @own_group.  Returns its pid, or -1 with errno set.
 */
pid_t dist_start_detached(char **av, int in_fd, int out_fd, bool own_group);

/*
 * Append what makes a dqemu process worker node @k of this master's
 * cluster at @endpoint to @av (strings to g_free): the master's QEMU
 * options, --worker, --master, --node-id, --nodes.
 */
void dist_node_worker_args(GPtrArray *av, const char *endpoint, unsigned k);

/* Master: every worker is in; a launched worker ending is no start-up
 * failure any more. */
void dist_launch_cluster_ready(void);

/* Master: end every launched worker (failure paths). */
void dist_launch_kill_all(void);

/* Worker started by a host-list launch: read the key first with
 * --cluster-key-stdin; with it or --stdin-lifeline, leave as soon as
 * stdin closes (the master is gone). */
void dist_launch_worker_stdin(void);

/* Wake the service thread (async-signal-safe). */
void dist_node_kick_service(void);

/* The -cpu model the master runs (main.c's choice, read at start). */
const char *dist_master_cpu_model(void);

/* When this node started (get_clock()), for wall_time_ns. */
extern int64_t dist_start_time_ns;

/*
 * The CALL messages of DistOp: a request to node @dst answered by a
 * CALL_REPLY into @reply/@buf (dq_xport_request), a note that expects no
 * answer, and the answer to request @req_id.  Context: any thread but
 * the transport's I/O thread for dist_call(); any for the others.
 */
DqStatus dist_call(unsigned dst, DistOp op, uint32_t aux, uint64_t arg,
                   const void *tail, size_t len, DqMsg *reply, uint8_t *buf,
                   size_t buflen, unsigned timeout_ms);
DqStatus dist_note(unsigned dst, DistOp op, uint32_t aux, uint64_t arg,
                   const void *tail, size_t len);
void dist_reply(unsigned dst, uint64_t req_id, uint64_t arg, uint32_t aux,
                const void *tail, size_t len);

/*
 * Send @op with @tail to every worker as a request and wait for every
 * answer.  Context: a guest thread (any lock may be held but the DSM's).
 */
void dist_node_broadcast(DistOp op, uint32_t aux, uint64_t arg,
                         const void *tail, size_t tail_len);

/*
 * Report a fatal cluster error naming what failed and exit non-zero.
 * Context: any thread but a signal handler.
 */
void G_NORETURN dist_fatal(const char *fmt, ...) G_GNUC_PRINTF(1, 2);

/* ---- simulated hosts (dist-simhost.c) ------------------------------------ */

/*
 * Under tests/cluster/simcluster.py with a service quota: move the
 * calling thread into the host's guest cgroup (it is about to run guest
 * code) or back into its service cgroup (it now serves another node's
 * thread).  No-ops anywhere else.  Context: the thread itself.
 */
void dist_simhost_enter_guest(void);
void dist_simhost_enter_service(void);

/* ---- statistics (dist-stats.c) ---------------------------------------- */

/* Once, at start, before any guest thread runs. */
void dist_stats_init(void);

/*
 * Master, start-up: --stats-json's file can be written (FILE.tmp is
 * created and removed), or exit with a usage error naming it and why.
 */
void dist_stats_check_json_file(void);

/* The calling thread starts running guest code on this node. */
void dist_stats_thread_begin(void);

/*
 * The calling thread makes system call @num: true for exit and
 * exit_group, whose end (a thread's time) and exit status they note.
 * Such a call returns only when a pending signal restarts it: then
 * call dist_stats_exit_call_restarted().
 */
bool dist_stats_exit_call_begin(int num);
void dist_stats_exit_call_restarted(void);

/*
 * Master, from dist_exit(): print --stats and write --stats-json for a
 * guest ending with @code.  Returns the status to exit with: @code, or
 * EXIT_FAILURE when a successful guest's --stats-json could not be
 * written (said on stderr).
 */
int dist_stats_at_exit(int code);

/* Worker, service thread: answer DIST_OP_STATS request @req_id of @src. */
void dist_stats_answer(unsigned src, uint64_t req_id, uint64_t format);

/* ---- guest memory (dist-mem.c) ---------------------------------------- */

/* Attach the DSM engine over the whole guest space (both roles). */
void dist_mem_attach(void);

/*
 * Master: the layout as changes a worker replays (dist_mem_apply_layout);
 * returns a g_malloc'ed buffer of *@len bytes.
 */
uint8_t *dist_mem_layout_snapshot(size_t *len);

/* Worker: replay a layout message.  Takes mmap_lock. */
void dist_mem_apply_layout(const uint8_t *buf, size_t len);

/* Worker: drop the ranges of a DROP message (their data is zero now). */
void dist_mem_apply_drop(const uint8_t *buf, size_t len);

/* This thread runs a guest system call (lock_user copies buffers). */
extern __thread bool dist_in_syscall;

/* Master: take every mapped page in M (start-up: the loaded program). */
void dist_mem_claim_all(void);

/*
 * Make the guest range present on this node (for writing if @write), so
 * that the host kernel can use it.  Returns false for a range the guest
 * has no right to; faults inside it are not ours then.
 */
bool dist_mem_acquire(abi_ulong addr, abi_ulong len, bool write);

/* Master: after MADV_DONTNEED of a range, every node drops it. */
void dist_mem_zeroed(abi_ulong addr, abi_ulong len);

/* Run the translated-code invalidations other nodes' writes asked for. */
void dist_mem_flush_code(void);

/*
 * Stop sharing: the hooks become no-ops and nothing touches the engine
 * or the transport again (a fork child, or before exec).  The caller
 * sets the host protections it needs.
 */
void dist_mem_detach(void);

/* ---- threads (dist-thread.c) ------------------------------------------ */

/* The guest tid of the calling thread as the guest sees it. */
uint32_t dist_thread_tid(void);

/* Worker: start a thread the master placed here (service thread). */
void dist_thread_start_remote(CPUArchState *template_env, uint32_t tid,
                              const uint8_t *state, size_t len);

/* Worker: raise the signals of a SIGNAL note on thread @tid here. */
void dist_thread_signal_remote(uint32_t tid, const uint8_t *data,
                               size_t len);

/* Master: a SYSCALL or THREAD_EXIT from a worker (I/O thread). */
void dist_thread_deliver(const DqMsg *msg);

/* Worker: run a global syscall on this thread's proxy. */
abi_long dist_thread_delegate(CPUArchState *env, int num, abi_long *args,
                              bool with_state);

/*
 * Worker: this thread exits; tell its proxy, then end it here.  Returns
 * only -QEMU_ERESTARTSYS (a signal is pending: handle it first).
 */
abi_long dist_thread_remote_exit(CPUArchState *env, abi_long status);

/* The syscall function do_syscall() passed in (do_syscall1). */
extern DistSyscallFn dist_syscall_fn;

/* Worker: set up before the first remote thread. */
void dist_thread_init_worker(void);

/* Master: set up placement once the cluster formed. */
void dist_thread_init_master(void);

/*
 * In the child of a fork a proxy made for its remote thread: that thread
 * continues here, in the new single-node process.  Never returns.
 */
void dist_thread_forked_child(CPUArchState *env);

/* Worker: the step lock for this thread, through its proxy. */
void dist_thread_excl_acquire(void);
void dist_thread_excl_release(void);

/* ---- the cluster-wide exclusive step (dist-excl.c) --------------------- */

/* Master, once the cluster formed. */
void dist_excl_init_master(void);

/* Worker: start the pause thread; it borrows @main_cpu for QEMU. */
void dist_excl_init_worker(CPUState *main_cpu);

/*
 * Master: take the step lock for a thread of node @node (every other
 * node paused; the master too when @node != 0) and give it back.
 * Context: a thread with current_cpu set, outside cpu_exec().
 */
uint64_t dist_excl_acquire(unsigned node);
void dist_excl_release(unsigned node, uint64_t ticket);

/* I/O thread: PAUSED (master), PAUSE or RESUME (worker) arrived. */
void dist_excl_note_paused(unsigned src, uint64_t ticket);
void dist_excl_note_pause(bool pause, uint64_t ticket);

/* ---- system calls (dist-syscall.c) and signals (dist-signal.c) --------- */

/* Nodes x CPUs per node: what the guest is told it has. */
unsigned dist_cluster_cpus(void);

/*
 * openat of the CPU list files and sched_getaffinity answered for the
 * cluster; *@handled false when the call is not one of those.
 */
abi_long dist_cpus_intercept(CPUArchState *env, int num, abi_long *a,
                             bool *handled);

/* Are we the child of a fork the guest made on a multi-node run? */
bool dist_in_fork_child(void);

/* Register the fork handler; once, at start. */
void dist_syscall_init(void);

/* A global call on the master (any thread, proxies included). */
abi_long dist_syscall_global(CPUArchState *env, int num, abi_long *a);

/* Master: send the current disposition of @target_sig to every worker. */
void dist_signal_broadcast_action(int target_sig);

/* Worker: install a disposition from the master. */
void dist_signal_apply_action(int target_sig, const uint8_t *data,
                              size_t len);

/* Worker: tell the master the guest dies of @target_sig here. */
void dist_signal_fatal_on_worker(int target_sig);

#endif /* LINUX_USER_DIST_INTERNAL_H */
