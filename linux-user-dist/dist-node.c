/*
 * dist-node.c - this process as one node of the cluster.
 *
 * Owns the transport and everything about membership: the master starts
 * the workers (or waits for workers started by hand), hands each the
 * settings that must equal its own, and waits until all of them rebuilt
 * its memory layout; a worker joins, takes those settings before QEMU
 * creates its CPU, and then parks its main thread as the node's service
 * thread.  Failures end the cluster: whichever node notices names the
 * node that failed and exits non-zero, and the master kills the workers
 * it started, so no process outlives the run.
 *
 * Threads: the transport's I/O thread delivers messages (dist_on_message)
 * and must never block or take a QEMU lock; work that needs QEMU's locks
 * (replaying a layout change takes mmap_lock, starting a thread creates a
 * CPU) goes to the service thread through a small queue.  On the master
 * the service thread also starts the local workers.
 */
#include "qemu/osdep.h"
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/socket.h>
#include <netdb.h>
#include <arpa/inet.h>
#include "qemu/cutils.h"
#include "qemu/timer.h"
#include "user/signal.h"
#include "qemu-version.h"
#include <sys/prctl.h>
#include <sys/wait.h>
#include <sys/eventfd.h>
#include <poll.h>
#include "qemu.h"
#include "user-internals.h"
#include "signal-common.h"
#include "user/page-protection.h"
#include "dist-internal.h"
#include "dist-wire.h"
#include "cpu-state.h"
#include "dsm.h"

unsigned dist_node_id;
CPUArchState *dist_master_env;
unsigned dist_node_count = 1;
DqXport *dist_xport;
uint32_t dist_master_pid;
uint32_t dist_master_ppid;

/* Largest message we exchange: a layout or an aarch64 state with ZA. */
#define DIST_MAX_PAYLOAD        (8u << 20)
/* How long the master waits for workers to be ready after joining. */
#define DIST_READY_TIMEOUT_MS   30000
/* How long a master started with --listen waits for its workers. */
#define DIST_LISTEN_TIMEOUT_MS  120000
/* How long a master waits for workers it launched over ssh and the like. */
#define DIST_LAUNCH_TIMEOUT_MS  30000

/* ---- errors ------------------------------------------------------------ */

void dist_fatal(const char *fmt, ...)
{
    va_list ap;

    fflush(stdout);
    fprintf(stderr, "dqemu-" TARGET_NAME ": node %u: ", dist_node_id);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    _exit(EXIT_FAILURE);
}

/*
 * Identifies a build: a worker of another ISA, dqemu version or QEMU
 * version has another cluster id, so the master refuses its JOIN with
 * "cluster id differs" before any state is exchanged.
 */
static uint64_t dist_cluster_id(void)
{
    const char *s = "dqemu-" TARGET_NAME " " DQEMU_VERSION " " QEMU_FULL_VERSION;
    uint64_t h = 0xcbf29ce484222325ull;

    for (; *s; s++) {
        h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
    }
    return h;
}

/* ---- the service thread's queue ------------------------------------------ */

typedef struct DistWork {
    struct DistWork *next;
    uint16_t src;
    uint32_t op, aux;
    uint64_t arg, req_id;
    size_t len;
    uint8_t data[];
} DistWork;

static QemuMutex work_lock;
static DistWork *work_head, **work_tail = &work_head;
static int work_efd = -1;

/* Wake the service thread.  Async-signal-safe. */
static void dist_service_kick(void)
{
    uint64_t one = 1;

    if (work_efd >= 0 && write(work_efd, &one, sizeof(one)) < 0) {
        /* The counter is only full when the thread is awake anyway. */
    }
}

static void dist_work_push(const DqMsg *msg)
{
    DistWork *w = g_malloc(sizeof(*w) + msg->tail_len);

    w->next = NULL;
    w->src = msg->src;
    w->op = msg->u.call.op;
    w->aux = msg->u.call.aux;
    w->arg = msg->u.call.arg;
    w->req_id = msg->req_id;
    w->len = msg->tail_len;
    if (msg->tail_len) {
        memcpy(w->data, msg->tail, msg->tail_len);
    }
    qemu_mutex_lock(&work_lock);
    *work_tail = w;
    work_tail = &w->next;
    qemu_mutex_unlock(&work_lock);
    dist_service_kick();
}

static DistWork *dist_work_pop(void)
{
    DistWork *w;

    qemu_mutex_lock(&work_lock);
    w = work_head;
    if (w) {
        work_head = w->next;
        if (work_head == NULL) {
            work_tail = &work_head;
        }
    }
    qemu_mutex_unlock(&work_lock);
    return w;
}

/* Sleep until kicked (or @timeout_ms passed; -1: no limit). */
static void dist_service_wait(int timeout_ms)
{
    struct pollfd pfd = { .fd = work_efd, .events = POLLIN };
    uint64_t n;

    if (poll(&pfd, 1, timeout_ms) > 0 && read(work_efd, &n, sizeof(n)) < 0) {
        /* EAGAIN: someone else drained it; nothing to do. */
    }
}

/* A CALL or CALL_REPLY message with these fields. */
static void dist_msg(DqMsg *m, DqMsgType type, unsigned dst, uint32_t op,
                     uint32_t aux, uint64_t arg, const void *tail, size_t len)
{
    memset(m, 0, sizeof(*m));
    m->type = type;
    m->dst = dst;
    m->u.call.op = op;
    m->u.call.aux = aux;
    m->u.call.arg = arg;
    m->tail = tail;
    m->tail_len = len;
}

DqStatus dist_call(unsigned dst, DistOp op, uint32_t aux, uint64_t arg,
                   const void *tail, size_t len, DqMsg *reply, uint8_t *buf,
                   size_t buflen, unsigned timeout_ms)
{
    DqMsg req;

    dist_msg(&req, DQ_MSG_CALL, dst, op, aux, arg, tail, len);
    return dq_xport_request(dist_xport, &req, reply, buf, buflen, timeout_ms);
}

DqStatus dist_note(unsigned dst, DistOp op, uint32_t aux, uint64_t arg,
                   const void *tail, size_t len)
{
    DqMsg m;

    dist_msg(&m, DQ_MSG_CALL, dst, op, aux, arg, tail, len);
    return dq_xport_send(dist_xport, &m);
}

void dist_reply(unsigned dst, uint64_t req_id, uint64_t arg, uint32_t aux,
                const void *tail, size_t len)
{
    DqMsg m;

    dist_msg(&m, DQ_MSG_CALL_REPLY, dst, DIST_OP_NONE, aux, arg, tail, len);
    m.req_id = req_id;
    dq_xport_send(dist_xport, &m);
}

/* ---- the master's view of the workers ------------------------------------ */

static pid_t worker_pids[DQ_MAX_NODES];
static unsigned workers_ready;
static QemuMutex ready_lock;
static QemuCond ready_cond;
static uint8_t *config_blob;
static size_t config_len;
static bool cluster_failed;
static char cluster_failure[256];

/*
 * The identity a worker sends with CONFIG: what makes the CPU state
 * format and the guest layout mean the same on both sides.
 */
static void dist_write_identity(DistWr *w, CPUArchState *env)
{
    dist_wr_str(w, "dqemu-" TARGET_NAME);
    dist_wr_str(w, DQEMU_VERSION " / QEMU " QEMU_FULL_VERSION);
    dist_wr_u64(w, env ? dist_cpu_state_size(env) : 0);
}

/* Everything a worker must take from the master before it creates its CPU. */
static void dist_master_build_config(CPUArchState *env, const char *cpu_model)
{
    TaskState *ts = get_task_state(env_cpu(env));
    struct image_info *info = ts->info;
    DistWr w;
    uint8_t *layout;
    size_t layout_len;

    dist_wr_init(&w);
    dist_write_identity(&w, env);
    dist_wr_u32(&w, dist_node_count);
    dist_wr_str(&w, cpu_model);
    dist_wr_u64(&w, reserved_va);
    dist_wr_u64(&w, guest_base);
    dist_wr_u32(&w, dist_master_pid);
    dist_wr_u32(&w, dist_master_ppid);
    dist_wr_u64(&w, default_sigreturn);
    dist_wr_u64(&w, default_rt_sigreturn);
    dist_wr_u64(&w, info->start_stack);
    dist_wr_u64(&w, info->stack_limit);
    dist_wr_u64(&w, info->brk);
    dist_wr_u64(&w, info->start_code);
    dist_wr_u64(&w, info->end_code);
    dist_wr_u64(&w, info->start_data);
    dist_wr_u64(&w, info->end_data);
    dist_wr_u64(&w, info->entry);
    dist_wr_u64(&w, info->vdso);
    dist_wr_u64(&w, info->saved_auxv);
    dist_wr_u64(&w, info->auxv_len);
    dist_wr_u32(&w, info->elf_flags);
    dist_wr_u32(&w, info->personality);
    dist_wr_u32(&w, dist_options.cpus_per_node);
    dist_wr_u64(&w, (uint64_t)dist_options.atomic_lease_us);
    layout = dist_mem_layout_snapshot(&layout_len);
    dist_wr_u64(&w, layout_len);
    dist_wr_bytes(&w, layout, layout_len);
    g_free(layout);
    config_len = dist_wr_len(&w);
    config_blob = g_byte_array_free(w.buf, false);
}

/* I/O thread: a worker asks for the settings. */
static void dist_master_answer_config(const DqMsg *msg)
{
    DistWr mine;
    char why[256];

    /* The identity is the config's prefix: compare the worker's with it. */
    dist_wr_init(&mine);
    dist_write_identity(&mine, NULL);
    if (msg->tail_len < dist_wr_len(&mine) - 8 ||
        memcmp(msg->tail, dist_wr_data(&mine), dist_wr_len(&mine) - 8) != 0) {
        snprintf(why, sizeof(why), "node %u runs another dqemu build than "
                 "the master (dqemu-" TARGET_NAME " " DQEMU_VERSION ")",
                 msg->src);
        dist_reply(msg->src, msg->req_id, 0, 1, why, strlen(why));
    } else {
        dist_reply(msg->src, msg->req_id, 0, 0, config_blob, config_len);
    }
    dist_wr_free(&mine);
}

/* Any thread: record the first cluster failure and wake the service thread. */
void dist_node_fail(const char *fmt, ...)
{
    va_list ap;

    qemu_mutex_lock(&ready_lock);
    if (!cluster_failed) {
        va_start(ap, fmt);
        vsnprintf(cluster_failure, sizeof(cluster_failure), fmt, ap);
        va_end(ap);
        cluster_failed = true;
    }
    qemu_cond_broadcast(&ready_cond);
    qemu_mutex_unlock(&ready_lock);
    dist_service_kick();
}

/* ---- transport callbacks (I/O thread) ----------------------------------- */

static void dist_on_message(void *opaque, const DqMsg *msg)
{
    if (dq_dsm_handle_message(msg) || msg->type != DQ_MSG_CALL) {
        return;
    }
    switch (msg->u.call.op) {
    case DIST_OP_CONFIG:
        if (dist_node_id == 0) {
            dist_master_answer_config(msg);
        }
        break;
    case DIST_OP_READY:
        if (dist_node_id == 0) {
            qemu_mutex_lock(&ready_lock);
            workers_ready++;
            qemu_cond_broadcast(&ready_cond);
            qemu_mutex_unlock(&ready_lock);
            dist_reply(msg->src, msg->req_id, 0, 0, NULL, 0);
        }
        break;
    case DIST_OP_SYSCALL:
    case DIST_OP_THREAD_EXIT:
    case DIST_OP_EXCL_ACQUIRE:
    case DIST_OP_EXCL_RELEASE:
        if (dist_node_id == 0) {
            dist_thread_deliver(msg);
        }
        break;
    case DIST_OP_EXCL_PAUSED:
        if (dist_node_id == 0) {
            dist_excl_note_paused(msg->src, msg->u.call.arg);
        }
        break;
    case DIST_OP_EXCL_PAUSE:
    case DIST_OP_EXCL_RESUME:
        /* Not the service thread's: it may be what a paused node awaits. */
        if (dist_node_id != 0) {
            dist_excl_note_pause(msg->u.call.op == DIST_OP_EXCL_PAUSE,
                                 msg->u.call.arg);
        }
        break;
    case DIST_OP_FATAL_SIGNAL:
        /* Not answered: the worker waits until the cluster ends. */
        if (dist_node_id == 0) {
            dist_work_push(msg);
        }
        break;
    default:
        if (dist_node_id != 0) {
            dist_work_push(msg);
        }
        break;
    }
}

static bool cluster_ending;

static void dist_on_peer_failed(void *opaque, unsigned node, const char *why)
{
    dq_dsm_handle_peer_failed(node, why);
    if (__atomic_load_n(&cluster_ending, __ATOMIC_ACQUIRE)) {
        return;     /* workers leave as we asked them to */
    }
    if (dist_node_id == 0) {
        dist_node_fail("node %u failed (%s)", node, why);
    } else if (node == 0) {
        fflush(stdout);
        fprintf(stderr, "dqemu-" TARGET_NAME ": node %u: lost contact with "
                "the master (%s)\n", dist_node_id, why);
        _exit(EXIT_FAILURE);
    }
    /* Another worker: the master notices too and ends the cluster. */
}

static void dist_on_refused(void *opaque, const char *addr, const char *why)
{
    fprintf(stderr, "dqemu-" TARGET_NAME ": node %u: refused a connection "
            "from %s: %s\n", dist_node_id, addr, why);
}

static void dist_on_shutdown(void *opaque, uint32_t code)
{
    /* The master has printed and decided everything; the ack is sent. */
    fflush(stdout);
    fflush(stderr);
    _exit(0);
}

/*
 * The endpoint a worker binds: on the address its host uses to reach the
 * master (found by connecting a UDP socket, which sends nothing), so that
 * other nodes on other hosts can reach it too; loopback for a master on
 * this host.  NULL (the transport's loopback default) when in doubt.
 */
static char *dist_worker_bind_endpoint(const char *master_ep)
{
    const char *h = master_ep + strlen("tcp://");
    const char *colon = strrchr(h, ':');
    g_autofree char *host = NULL, *src = NULL;

    /* A local cluster's private directory holds every node's socket. */
    if (g_str_has_prefix(master_ep, "ipc://")) {
        g_autofree char *dir = g_path_get_dirname(master_ep + 6);

        return g_strdup_printf("ipc://%s/%u", dir, dist_node_id);
    }
    if (!g_str_has_prefix(master_ep, "tcp://") || colon == NULL) {
        return NULL;
    }
    host = g_strndup(h, colon - h);
    src = dist_source_address(host);
    return src ? g_strdup_printf("tcp://%s:*", src) : NULL;
}

static DqXport *dist_start_xport(const char *master_ep, char *err,
                                 size_t errlen)
{
    g_autofree char *bind_ep = NULL;

    DqXportConfig xc;
    DqXport *x = NULL;

    memset(&xc, 0, sizeof(xc));
    xc.node_id = dist_node_id;
    xc.node_count = dist_node_count;
    xc.master_endpoint = master_ep;
    if (dist_node_id != 0) {
        bind_ep = dist_worker_bind_endpoint(master_ep);
        xc.bind_endpoint = bind_ep;
    }
    xc.cluster_id = dist_cluster_id();
    xc.page_size = qemu_real_host_page_size();
    xc.max_payload = DIST_MAX_PAYLOAD;
    if (dist_node_id == 0 && dist_options.listen) {
        xc.join_timeout_ms = DIST_LISTEN_TIMEOUT_MS;
    }
    xc.ops.on_message = dist_on_message;
    xc.ops.on_peer_failed = dist_on_peer_failed;
    xc.ops.on_shutdown = dist_on_shutdown;
    xc.ops.on_refused = dist_on_refused;
    xc.rx_delay_us = dist_options.sim_link_delay_us;
    /* TCP is CURVE unless --insecure; ipc:// is guarded by its directory. */
    if (dist_have_cluster_key && g_str_has_prefix(master_ep, "tcp://")) {
        xc.curve_secret = dist_cluster_key.secret;
        xc.curve_public = dist_cluster_key.public_;
    }
    if (dist_node_id == 0 && dist_launch_from_host_list()) {
        xc.join_timeout_ms = DIST_LAUNCH_TIMEOUT_MS;
    }
    if (dist_options.insecure && g_str_has_prefix(master_ep, "tcp://")) {
        fprintf(stderr, "dqemu-" TARGET_NAME ": node %u: --insecure: "
                "traffic between nodes is neither authenticated nor "
                "encrypted\n", dist_node_id);
    }
    {
        sigset_t all, old;
        DqStatus st;

        /*
         * The transport's threads (ours and libzmq's) inherit this mask:
         * a guest signal must land on a guest thread or a proxy, never on
         * a thread QEMU's handler knows nothing about.
         */
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &old);
        st = dq_xport_start(&xc, &x, err, errlen);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (st != DQ_OK) {
            return NULL;
        }
    }
    return x;
}

/* ---- the master --------------------------------------------------------- */

/* A local cluster's private directory of ipc:// sockets (0700). */
static char *socket_dir;

/*
 * Remove the socket directory: once every node is connected the files
 * are not needed (connections outlive them), and no run leaves one.
 */
static void dist_forget_socket_dir(void)
{
    g_autofree char *dir = __atomic_exchange_n(&socket_dir, NULL,
                                               __ATOMIC_ACQ_REL);
    unsigned k;

    if (dir == NULL) {
        return;
    }
    for (k = 0; k < DQ_MAX_NODES; k++) {
        g_autofree char *f = g_strdup_printf("%s/%u", dir, k);

        unlink(f);
    }
    rmdir(dir);
}

static char **worker_argv_template;
static int worker_argc_template;
static QemuThread service_thread;
static bool spawn_done;

/*
 * The QEMU options the master was given (not dqemu's own, not the
 * program): -strace, -d, -L, ... mean the same on a worker.
 */
void dist_node_note_args(int argc, char **argv, int prog_index,
                         const bool *ours)
{
    int i;

    worker_argv_template = g_new0(char *, argc + 1);
    worker_argc_template = 0;
    for (i = 1; i < prog_index && i < argc; i++) {
        if (!ours[i]) {
            worker_argv_template[worker_argc_template++] = argv[i];
        }
    }
}

void dist_node_worker_args(GPtrArray *av, const char *endpoint, unsigned k)
{
    int i;

    for (i = 0; i < worker_argc_template; i++) {
        g_ptr_array_add(av, g_strdup(worker_argv_template[i]));
    }
    g_ptr_array_add(av, g_strdup("--worker"));
    g_ptr_array_add(av, g_strdup("--master"));
    g_ptr_array_add(av, g_strdup(endpoint));
    g_ptr_array_add(av, g_strdup("--node-id"));
    g_ptr_array_add(av, g_strdup_printf("%u", k));
    g_ptr_array_add(av, g_strdup("--nodes"));
    g_ptr_array_add(av, g_strdup_printf("%u", dist_node_count));
}

static void dist_spawn_workers(const char *endpoint)
{
    int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    unsigned k;

    for (k = 1; k < dist_node_count; k++) {
        g_autoptr(GPtrArray) av = g_ptr_array_new_with_free_func(g_free);
        pid_t pid;

        g_ptr_array_add(av, g_strdup("/proc/self/exe"));
        dist_node_worker_args(av, endpoint, k);
        g_ptr_array_add(av, NULL);
        /* The guest's stdin is the master's; a worker reads nothing. */
        pid = devnull < 0 ? -1 :
              dist_start_detached((char **)av->pdata, devnull, -1, false);
        if (pid < 0) {
            dist_node_fail("cannot start worker node %u: %s", k,
                           strerror(errno));
            break;
        }
        worker_pids[k] = pid;
    }
    if (devnull >= 0) {
        close(devnull);
    }
}

/*
 * Make sure the workers this master started (never others) are gone.
 * They are init's children, not ours: after a clean shutdown they exit
 * by themselves once acked; on failure they are killed by pid.
 */
static void dist_reap_workers(bool kill_them)
{
    unsigned k;

    if (kill_them) {
        dist_launch_kill_all();
    }
    dist_forget_socket_dir();
    for (k = 1; k < dist_node_count; k++) {
        if (worker_pids[k] > 0 && kill_them) {
            kill(worker_pids[k], SIGKILL);
        }
        worker_pids[k] = 0;
    }
}

static void dist_master_die_of_failure(void)
{
    char msg[sizeof(cluster_failure)];

    qemu_mutex_lock(&ready_lock);
    pstrcpy(msg, sizeof(msg), cluster_failure);
    qemu_mutex_unlock(&ready_lock);
    fflush(stdout);
    fprintf(stderr, "dqemu-" TARGET_NAME ": %s; stopping the cluster\n", msg);
    /* Tell the live workers (bounded), then make sure of ours. */
    dq_xport_shutdown(dist_xport, EXIT_FAILURE);
    dist_reap_workers(true);
    _exit(EXIT_FAILURE);
}

/*
 * A worker reported that the guest died of a signal there.  The master
 * must die of it the way qemu-user does: QEMU's dump_core_and_abort()
 * writes the core, prints "qemu: uncaught target signal ..." and raises
 * the signal, and its preexit_cleanup() ends the cluster -- with the
 * worker still up, so the core can read its pages.  That function is
 * private to signal.c, so the signal goes to the main guest thread as a
 * synchronous one (which no mask or disposition can stop; the
 * disposition is the default everywhere, or the worker would not have
 * died), and QEMU's interrupt signal makes that thread take it.  Without
 * a main thread left, or if it does not go down in time, the master dies
 * of the signal itself.
 */
static void G_NORETURN dist_master_die_by_signal_only(int target_sig);

static void G_NORETURN dist_master_die_of_signal(int target_sig)
{
    CPUArchState *env = __atomic_load_n(&dist_master_env, __ATOMIC_ACQUIRE);

    if (env != NULL) {
        TaskState *ts = get_task_state(env_cpu(env));
        target_siginfo_t info;
        int i;

        memset(&info, 0, sizeof(info));
        info.si_signo = target_sig;
        info.si_code = TARGET_SI_KERNEL;
        ts->sync_signal.info = info;
        smp_wmb();
        ts->sync_signal.pending = target_sig;
        qatomic_set(&ts->signal_pending, 1);
        syscall(SYS_tgkill, getpid(), dist_master_pid, host_interrupt_signal);
        for (i = 0; i < 50; i++) {
            g_usleep(100 * 1000);
        }
    }
    dist_master_die_by_signal_only(target_sig);
}

static void G_NORETURN dist_master_die_by_signal_only(int target_sig)
{
    int host_sig = target_to_host_signal(target_sig);
    struct sigaction act;

    fflush(stdout);
    fflush(stderr);
    dq_xport_shutdown(dist_xport, 128 + target_sig);
    dist_reap_workers(true);
    /* Die the way qemu-user does (dump_core_and_abort): by the signal. */
    sigfillset(&act.sa_mask);
    act.sa_handler = SIG_DFL;
    act.sa_flags = 0;
    sigaction(host_sig, &act, NULL);
    {
        struct rlimit nodump = { 0, 0 };

        setrlimit(RLIMIT_CORE, &nodump);
    }
    {
        sigset_t set;

        sigemptyset(&set);
        sigaddset(&set, host_sig);
        sigprocmask(SIG_UNBLOCK, &set, NULL);
    }
    kill(getpid(), host_sig);
    {
        sigset_t none;

        sigemptyset(&none);
        sigsuspend(&none);      /* the signal ends us here */
    }
    _exit(128 + target_sig);
}

static void *dist_master_service(void *arg)
{
    const char *endpoint = arg;

    rcu_register_thread();
    if (dist_launch_from_host_list()) {
        dist_launch_workers(endpoint);
    } else if (!dist_options.listen) {
        dist_spawn_workers(endpoint);
    }
    qemu_mutex_lock(&ready_lock);
    spawn_done = true;
    qemu_cond_broadcast(&ready_cond);
    qemu_mutex_unlock(&ready_lock);

    for (;;) {
        DistWork *w;
        bool failed;

        dist_service_wait(-1);
        qemu_mutex_lock(&ready_lock);
        failed = cluster_failed;
        qemu_mutex_unlock(&ready_lock);
        if (failed) {
            dist_master_die_of_failure();
        }
        dist_mem_flush_code();
        while ((w = dist_work_pop()) != NULL) {
            if (w->op == DIST_OP_FATAL_SIGNAL) {
                dist_master_die_of_signal(w->aux);
            }
            g_free(w);
        }
    }
    return NULL;
}

void dist_node_master_start(CPUArchState *env)
{
    char err[DQ_ERRBUF_SIZE + 128];
    g_autofree char *bind_ep = NULL;
    const char *ep;
    int64_t deadline;

    dist_node_id = 0;
    dist_node_count = dist_options.nodes;
    dist_master_pid = getpid();
    dist_master_ppid = getppid();
    qemu_mutex_init(&work_lock);
    qemu_mutex_init(&ready_lock);
    qemu_cond_init(&ready_cond);
    work_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (work_efd < 0) {
        dist_fatal("eventfd: %s", strerror(errno));
    }

    if (dist_launch_from_host_list()) {
        /* Workers on other hosts connect: every interface, CURVE. */
        bind_ep = g_strdup("tcp://0.0.0.0:*");
        if (!dist_have_cluster_key && !dist_options.insecure) {
            if (dq_cluster_key_generate(&dist_cluster_key, err,
                                        sizeof(err)) != DQ_OK) {
                dist_fatal("cannot make a cluster key: %s", err);
            }
            dist_have_cluster_key = true;
        }
    } else if (dist_options.listen) {
        bind_ep = g_strdup(dist_options.listen);
    } else {
        /* Local workers: sockets in a directory only we can enter. */
        g_autofree char *tmpl = g_build_filename(g_get_tmp_dir(),
                                                 "dqemu-XXXXXX", NULL);

        if (g_mkdtemp_full(tmpl, 0700) == NULL) {
            dist_fatal("cannot make a private socket directory in %s: %s",
                       g_get_tmp_dir(), strerror(errno));
        }
        socket_dir = g_strdup(tmpl);
        bind_ep = g_strdup_printf("ipc://%s/0", tmpl);
    }
    dist_xport = dist_start_xport(bind_ep, err, sizeof(err));
    if (dist_xport == NULL) {
        dist_forget_socket_dir();
        dist_fatal("cannot start the master at %s: %s", bind_ep, err);
    }
    ep = dq_xport_endpoint(dist_xport);
    if (dist_options.listen) {
        fprintf(stderr, "dqemu-" TARGET_NAME ": master listening at %s; "
                "waiting for %u workers (dqemu-" TARGET_NAME " --worker "
                "--master %s --node-id K)\n", ep, dist_node_count - 1, ep);
    }

    /* The DSM first: the workers' first faults may follow their READY. */
    dist_mem_attach();
    dist_mem_claim_all();
    dist_master_build_config(env, dist_master_cpu_model());

    qemu_thread_create(&service_thread, "dqemu-service", dist_master_service,
                       (void *)ep, QEMU_THREAD_DETACHED);

    if (dq_xport_wait_ready(dist_xport, err, sizeof(err)) != DQ_OK) {
        qemu_mutex_lock(&ready_lock);
        while (!spawn_done) {
            qemu_cond_wait(&ready_cond, &ready_lock);
        }
        qemu_mutex_unlock(&ready_lock);
        fflush(stdout);
        fprintf(stderr, "dqemu-" TARGET_NAME ": the cluster did not form: "
                "%s\n", err);
        dq_xport_shutdown(dist_xport, EXIT_FAILURE);
        dist_reap_workers(true);
        /* Closing with linger lets a refused worker's answer leave. */
        dq_xport_free(dist_xport);
        _exit(EXIT_FAILURE);
    }

    /* Every worker rebuilds the layout, then says READY. */
    deadline = get_clock() + (int64_t)DIST_READY_TIMEOUT_MS * 1000000;
    qemu_mutex_lock(&ready_lock);
    while (workers_ready < dist_node_count - 1 && !cluster_failed) {
        if (get_clock() > deadline) {
            qemu_mutex_unlock(&ready_lock);
            dist_node_fail("workers joined but %u of %u never became "
                           "ready within %u ms",
                           dist_node_count - 1 - workers_ready,
                           dist_node_count - 1, DIST_READY_TIMEOUT_MS);
            qemu_mutex_lock(&ready_lock);
            break;
        }
        qemu_cond_timedwait(&ready_cond, &ready_lock, 100);
    }
    /* A failure is the service thread's to report; it exits the process. */
    if (!cluster_failed) {
        dist_launch_cluster_ready();
        dist_forget_socket_dir();
    }
    while (cluster_failed) {
        qemu_cond_wait(&ready_cond, &ready_lock);
    }
    qemu_mutex_unlock(&ready_lock);
}

void dist_node_broadcast(DistOp op, uint32_t aux, uint64_t arg,
                         const void *tail, size_t tail_len)
{
    unsigned k;

    for (k = 1; k < dist_node_count; k++) {
        DqMsg reply;
        uint8_t buf[64];
        DqStatus st;

        st = dist_call(k, op, aux, arg, tail, tail_len, &reply, buf,
                       sizeof(buf), DQ_XPORT_WAIT_FOREVER);
        if (st != DQ_OK && st != DQ_ERR_XPORT_SHUTDOWN) {
            /* The node failed: the failure path ends the cluster. */
            dist_node_fail("node %u did not take a change: %s", k,
                           dq_status_str(st));
        }
    }
}

void dist_node_shutdown(int code)
{
    if (!dist_active() || dist_node_id != 0 || dist_xport == NULL) {
        return;
    }
    __atomic_store_n(&cluster_ending, true, __ATOMIC_RELEASE);
    dq_xport_shutdown(dist_xport, code);
    dist_reap_workers(false);
}

/* ---- a worker ---------------------------------------------------------- */

static uint8_t *worker_layout;
static size_t worker_layout_len;
static struct image_info worker_info;

void dist_node_worker_join(const char **cpu_model)
{
    char err[DQ_ERRBUF_SIZE + 256], what[DQ_ERRBUF_SIZE + 512];
    DqMsg reply;
    uint8_t *buf;
    DistWr id;
    DistRd r;
    DqStatus st;
    char *s;

    dist_node_id = dist_options.node_id;
    /* --nodes is optional on a worker: the master's JOIN_ACCEPT says. */
    dist_node_count = dist_options.nodes > 1 ? dist_options.nodes : 0;
    if (dist_node_count != 0 && dist_node_id >= dist_node_count) {
        snprintf(what, sizeof(what), "--node-id %u is not below --nodes %u",
                 dist_node_id, dist_node_count);
        dist_fatal("%s", what);
    }
    qemu_mutex_init(&work_lock);
    work_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (work_efd < 0) {
        dist_fatal("eventfd: %s", strerror(errno));
    }
    dist_launch_worker_stdin();
    dist_xport = dist_start_xport(dist_options.master, err, sizeof(err));
    if (dist_xport == NULL) {
        snprintf(what, sizeof(what), "cannot join the master at %s: %s",
                 dist_options.master, err);
        dist_fatal("%s", what);
    }
    st = dq_xport_wait_ready(dist_xport, err, sizeof(err));
    if (st != DQ_OK) {
        snprintf(what, sizeof(what), "cannot join the master at %s: %s%s",
                 dist_options.master, err,
                 st == DQ_ERR_XPORT_REFUSED ?
                 " (is this the same dqemu-" TARGET_NAME " build as the "
                 "master's, with a --node-id below its --nodes?)" : "");
        dist_fatal("%s", what);
    }
    dist_node_count = dq_xport_config(dist_xport)->node_count;

    dist_wr_init(&id);
    dist_write_identity(&id, NULL);
    buf = g_malloc(DIST_MAX_PAYLOAD + 4096);
    st = dist_call(0, DIST_OP_CONFIG, 0, 0, dist_wr_data(&id),
                   dist_wr_len(&id), &reply, buf, DIST_MAX_PAYLOAD + 4096, 0);
    dist_wr_free(&id);
    if (st != DQ_OK) {
        snprintf(what, sizeof(what), "no settings from the master at %s: %s",
                 dist_options.master, dq_status_str(st));
        dist_fatal("%s", what);
    }
    if (reply.u.call.aux != 0) {
        snprintf(what, sizeof(what), "the master refused this worker: %.*s",
                 (int)reply.tail_len, (const char *)reply.tail);
        dist_fatal("%s", what);
    }

    dist_rd_init(&r, reply.tail, reply.tail_len);
    g_free(dist_rd_str(&r));            /* identity: checked by the master */
    g_free(dist_rd_str(&r));
    dist_rd_u64(&r);
    if (dist_rd_u32(&r) != dist_node_count) {
        dist_fatal("the master's --nodes differs from ours");
    }
    s = dist_rd_str(&r);
    *cpu_model = s;
    reserved_va = dist_rd_u64(&r);
    guest_base = dist_rd_u64(&r);
    have_guest_base = true;
    dist_master_pid = dist_rd_u32(&r);
    dist_master_ppid = dist_rd_u32(&r);
    default_sigreturn = dist_rd_u64(&r);
    default_rt_sigreturn = dist_rd_u64(&r);
    worker_info.start_stack = dist_rd_u64(&r);
    worker_info.stack_limit = dist_rd_u64(&r);
    worker_info.brk = dist_rd_u64(&r);
    worker_info.start_code = dist_rd_u64(&r);
    worker_info.end_code = dist_rd_u64(&r);
    worker_info.start_data = dist_rd_u64(&r);
    worker_info.end_data = dist_rd_u64(&r);
    worker_info.entry = dist_rd_u64(&r);
    worker_info.vdso = dist_rd_u64(&r);
    worker_info.saved_auxv = dist_rd_u64(&r);
    worker_info.auxv_len = dist_rd_u64(&r);
    worker_info.elf_flags = dist_rd_u32(&r);
    worker_info.personality = dist_rd_u32(&r);
    dist_options.cpus_per_node = dist_rd_u32(&r);
    dist_options.atomic_lease_us = (long)(int64_t)dist_rd_u64(&r);
    worker_layout_len = dist_rd_u64(&r);
    {
        const uint8_t *p = dist_rd_bytes(&r, worker_layout_len);

        if (p) {
            worker_layout = g_memdup2(p, worker_layout_len);
        }
    }
    if (!dist_rd_done(&r) || s == NULL) {
        dist_fatal("the master's settings did not decode");
    }
    g_free(buf);
}

int dist_node_worker_load(struct target_pt_regs *regs,
                          struct image_info *info)
{
    *info = worker_info;
    /* Reserve the guest space at the master's address (pgb_fixed). */
    probe_guest_base("dqemu worker", 0, reserved_va);
    return 0;
}

void dist_node_worker_ready(CPUArchState *env)
{
    DqMsg reply;
    uint8_t buf[64];
    DqStatus st;

    dist_mem_attach();
    dist_mem_apply_layout(worker_layout, worker_layout_len);
    g_free(worker_layout);
    worker_layout = NULL;

    /* Threads of this node run in parallel from the start. */
    tcg_cflags_set(env_cpu(env), CF_PARALLEL);

    st = dist_call(0, DIST_OP_READY, 0, 0, NULL, 0, &reply, buf, sizeof(buf),
                   0);
    if (st != DQ_OK) {
        dist_fatal("the master did not take our READY: %s",
                   dq_status_str(st));
    }
}

static void dist_worker_do(CPUArchState *env, DistWork *w)
{
    switch (w->op) {
    case DIST_OP_THREAD_START:
        dist_thread_start_remote(env, w->arg, w->data, w->len);
        break;
    case DIST_OP_SIGNAL:
        dist_thread_signal_remote(w->arg, w->data, w->len);
        break;
    case DIST_OP_LAYOUT:
        dist_mem_apply_layout(w->data, w->len);
        dist_reply(w->src, w->req_id, 0, 0, NULL, 0);
        break;
    case DIST_OP_DROP:
        dist_mem_apply_drop(w->data, w->len);
        dist_reply(w->src, w->req_id, 0, 0, NULL, 0);
        break;
    case DIST_OP_SIGACTION:
        dist_signal_apply_action(w->aux, w->data, w->len);
        dist_reply(w->src, w->req_id, 0, 0, NULL, 0);
        break;
    case DIST_OP_STATS:
        dist_stats_answer(w->src, w->req_id, w->arg);
        break;
    default:
        /* A newer master's request: say we did not understand it. */
        if (w->req_id) {
            dist_reply(w->src, w->req_id, 0, 1, NULL, 0);
        }
        break;
    }
}

void dist_node_worker_serve(CPUArchState *env)
{
    for (;;) {
        DistWork *w;

        dist_service_wait(-1);
        dist_mem_flush_code();
        while ((w = dist_work_pop()) != NULL) {
            dist_worker_do(env, w);
            g_free(w);
        }
    }
}

void dist_node_kick_service(void)
{
    dist_service_kick();
}
