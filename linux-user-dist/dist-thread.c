/*
 * dist-thread.c - guest threads on other nodes, and their proxies.
 *
 * A new guest thread is created on the master exactly as QEMU creates
 * any thread (do_fork: CPU copy, TLS, SETTID), so everything the kernel
 * and glibc see -- a real tid, CLONE_CHILD_CLEARTID, the thread in the
 * master's /proc -- is real.  Just before that host thread would enter
 * cpu_loop(), the scheduler picks a node.  For another node the thread
 * ships its CPU state there and stays behind as the thread's *proxy*: it
 * runs the remote thread's global system calls one by one (so a blocking
 * read() blocks only that thread, on a host thread of its own), and its
 * exit is the thread's exit (CLEARTID and the futex wake that
 * pthread_join waits for happen here, on the master).
 *
 * On the worker the service thread creates a CPU from its template,
 * loads the shipped state into it (cpu-state.h) and starts a host thread
 * in cpu_loop().  That thread answers getpid/gettid with the master-side
 * ids and sends every global call to its proxy.
 */
#include "qemu/osdep.h"
#include <sys/syscall.h>
#include <linux/futex.h>
#include "qemu/units.h"
#include "qemu/timer.h"
#include "user/cpu_loop.h"
#include "tcg/startup.h"
#include "qemu.h"
#include "user-internals.h"
#include "signal-common.h"
#include "user/signal.h"
#include "exec/translation-block.h"
#include "qemu/rcu.h"
#include "dist-hooks.h"
#include "dist-internal.h"
#include "dist-wire.h"
#include "cpu-state.h"
#include "dq-sched.h"

DistSyscallFn dist_syscall_fn;

/*
 * On a worker, CPUs come and go outside QEMU's do_fork() and exit paths,
 * which serialise on their private clone_lock; this lock does the same
 * for ours (creation in the service thread, removal at thread exit).
 */
static QemuMutex worker_cpu_lock;

/* Guest tid -> host tid of the threads running here (for signals). */
static QemuMutex remote_lock;
static GHashTable *remote_threads;

static void dist_cpu_list_lock(void)
{
    qemu_mutex_lock(&worker_cpu_lock);
}

static void dist_cpu_list_unlock(void)
{
    qemu_mutex_unlock(&worker_cpu_lock);
}

void dist_thread_init_worker(void)
{
    qemu_mutex_init(&worker_cpu_lock);
    qemu_mutex_init(&remote_lock);
    remote_threads = g_hash_table_new_full(g_direct_hash, g_direct_equal,
                                           NULL, g_free);
}

/* The guest tid of a thread running on a worker (0 on the master). */
static __thread uint32_t remote_tid;

uint32_t dist_thread_tid(void)
{
    return remote_tid ? remote_tid : (uint32_t)gettid();
}

/* ---- the master: placement and proxies ----------------------------------- */

typedef struct DistCall {
    struct DistCall *next;
    uint16_t src;
    uint32_t op, aux;
    uint64_t req_id;
    size_t len;
    uint8_t data[];
} DistCall;

typedef struct DistProxy {
    uint32_t tid;
    unsigned node;
    QemuMutex lock;
    DistCall *head, **tail;
    uint64_t excl_ticket;   /* the step lock it holds for its thread */
    /*
     * Bumped for every call queued; the proxy sleeps on it with FUTEX_WAIT
     * (not a condition variable) so that a host signal aimed at its
     * remote thread interrupts the sleep and can be passed on at once.
     */
    uint32_t seq;
} DistProxy;

static QemuMutex proxies_lock;
static GHashTable *proxies;         /* tid -> DistProxy */
static DqSched sched;
static bool sched_ready;

/* Master, once the cluster formed. */
void dist_thread_init_master(void)
{
    qemu_mutex_init(&proxies_lock);
    proxies = g_hash_table_new(g_direct_hash, g_direct_equal);
    if (dq_sched_init(&sched, dist_options.placement, dist_node_count,
                      dist_options.cpus_per_node ? dist_options.cpus_per_node
                      : MAX(1, sysconf(_SC_NPROCESSORS_ONLN))) != DQ_OK) {
        dist_fatal("cannot set up thread placement");
    }
    sched_ready = true;
}

/* I/O thread: a remote thread's call for its proxy. */
void dist_thread_deliver(const DqMsg *msg)
{
    DistProxy *p;
    DistCall *c;

    qemu_mutex_lock(&proxies_lock);
    p = g_hash_table_lookup(proxies, GUINT_TO_POINTER(msg->u.call.arg));
    if (p == NULL) {
        qemu_mutex_unlock(&proxies_lock);
        if (msg->u.call.op == DIST_OP_SYSCALL ||
            msg->u.call.op == DIST_OP_EXCL_ACQUIRE) {
            /* Cannot happen with a well-behaved worker; never leave it hanging. */
            dist_reply(msg->src, msg->req_id, (uint64_t)(int64_t)-TARGET_ESRCH,
                       0, NULL, 0);
        }
        return;
    }
    c = g_malloc(sizeof(*c) + msg->tail_len);
    c->next = NULL;
    c->src = msg->src;
    c->op = msg->u.call.op;
    c->aux = msg->u.call.aux;
    c->req_id = msg->req_id;
    c->len = msg->tail_len;
    if (c->len) {
        memcpy(c->data, msg->tail, c->len);
    }
    qemu_mutex_lock(&p->lock);
    *p->tail = c;
    p->tail = &c->next;
    __atomic_fetch_add(&p->seq, 1, __ATOMIC_RELEASE);
    qemu_mutex_unlock(&p->lock);
    syscall(SYS_futex, &p->seq, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
    qemu_mutex_unlock(&proxies_lock);
}

/*
 * Take the signals QEMU's host handler queued on this proxy: they are
 * meant for its remote thread.  The handler also left every host signal
 * blocked until the guest handler runs, which never happens here, so
 * unblock them again.  Returns how many were put in @sigs.
 */
static unsigned dist_proxy_take_signals(TaskState *ts, target_siginfo_t *infos)
{
    unsigned n = 0;
    sigset_t none;
    int sig;

    if (!qatomic_xchg(&ts->signal_pending, 0)) {
        return 0;
    }
    for (sig = 1; sig <= TARGET_NSIG; sig++) {
        if (ts->sigtab[sig - 1].pending) {
            ts->sigtab[sig - 1].pending = 0;
            infos[n] = ts->sigtab[sig - 1].info;
            infos[n].si_signo = sig;
            n++;
        }
    }
    sigemptyset(&none);
    pthread_sigmask(SIG_SETMASK, &none, NULL);
    return n;
}

/*
 * Signals travel as QEMU's own target_siginfo_t bytes (both ends are the
 * same build), so the receiving thread sees the sender's si_pid, si_code
 * and value exactly.
 */
static void dist_wr_signals(DistWr *w, const target_siginfo_t *infos,
                            unsigned n)
{
    dist_wr_bytes(w, infos, n * sizeof(*infos));
}

/* Pass signals that arrived while the proxy was idle to the thread. */
static void dist_proxy_forward_signals(DistProxy *p, TaskState *ts)
{
    target_siginfo_t infos[TARGET_NSIG];
    unsigned n = dist_proxy_take_signals(ts, infos);
    DistWr w;

    if (n == 0) {
        return;
    }
    dist_wr_init(&w);
    dist_wr_signals(&w, infos, n);
    /* A failure means the node is gone; the failure path reports it. */
    dist_note(p->node, DIST_OP_SIGNAL, 0, p->tid, dist_wr_data(&w),
              dist_wr_len(&w));
    dist_wr_free(&w);
}

static DistCall *dist_proxy_next(DistProxy *p, TaskState *ts)
{
    DistCall *c;

    for (;;) {
        uint32_t seen = __atomic_load_n(&p->seq, __ATOMIC_ACQUIRE);

        qemu_mutex_lock(&p->lock);
        c = p->head;
        if (c) {
            p->head = c->next;
            if (p->head == NULL) {
                p->tail = &p->head;
            }
        }
        qemu_mutex_unlock(&p->lock);
        if (c) {
            return c;
        }
        dist_proxy_forward_signals(p, ts);
        /* EINTR: a signal for the thread; EAGAIN: a call came meanwhile. */
        syscall(SYS_futex, &p->seq, FUTEX_WAIT_PRIVATE, seen, NULL, NULL, 0);
    }
}

/* Answer a call with its result and the signals that came for the thread. */
static void dist_proxy_reply(DistCall *c, TaskState *ts, abi_long ret)
{
    target_siginfo_t infos[TARGET_NSIG];
    unsigned n = dist_proxy_take_signals(ts, infos);
    DistWr w;

    dist_wr_init(&w);
    dist_wr_signals(&w, infos, n);
    dist_reply(c->src, c->req_id, (uint64_t)(int64_t)ret, 0, dist_wr_data(&w),
               dist_wr_len(&w));
    dist_wr_free(&w);
}

static void dist_proxy_forget(DistProxy *p)
{
    qemu_mutex_lock(&proxies_lock);
    g_hash_table_remove(proxies, GUINT_TO_POINTER(p->tid));
    qemu_mutex_unlock(&proxies_lock);
    dq_sched_exit(&sched, p->node);
}

/* The proxy's life: run its remote thread's calls until that thread exits. */
static void G_NORETURN dist_proxy_serve(CPUArchState *env, DistProxy *p)
{
    TaskState *ts = get_task_state(env_cpu(env));

    /* It answers its thread's node from now on: no guest code here. */
    dist_simhost_enter_service();
    /*
     * QEMU code the calls reach (fork's start_exclusive, for one) takes
     * the calling CPU from current_cpu, which only cpu_exec() sets.
     */
    current_cpu = env_cpu(env);
    /*
     * The creating thread's host mask came along (often all blocked by
     * QEMU's block_signals()); a guest thread unblocks in its first
     * process_pending_signals(), which a proxy never runs.
     */
    {
        sigset_t none;

        sigemptyset(&none);
        pthread_sigmask(SIG_SETMASK, &none, NULL);
    }

    for (;;) {
        DistCall *c = dist_proxy_next(p, ts);
        abi_long args[8];
        DistRd r;
        int i;

        if (c->op == DIST_OP_THREAD_EXIT) {
            abi_long status = (int32_t)c->aux;

            g_free(c);
            dist_proxy_forget(p);
            /* The thread is gone: signals still pending for it die with it. */
            qatomic_set(&ts->signal_pending, 0);
            dist_stats_exit_call_begin(TARGET_NR_exit);
            dist_syscall_fn(env, TARGET_NR_exit, status, 0, 0, 0, 0, 0, 0, 0);
            /* Only the last thread of the process returns: it never does. */
            g_assert_not_reached();
        }
        if (c->op == DIST_OP_EXCL_ACQUIRE) {
            /* The remote thread waits outside cpu_exec() meanwhile. */
            p->excl_ticket = dist_excl_acquire(p->node);
            dist_reply(c->src, c->req_id, 0, 0, NULL, 0);
            g_free(c);
            continue;
        }
        if (c->op == DIST_OP_EXCL_RELEASE) {
            dist_excl_release(p->node, p->excl_ticket);
            g_free(c);
            continue;
        }
        dist_rd_init(&r, c->data, c->len);
        for (i = 0; i < 8; i++) {
            args[i] = (abi_long)dist_rd_u64(&r);
        }
        if (r.bad) {
            dist_proxy_reply(c, ts, -TARGET_EINVAL);
            g_free(c);
            continue;
        }
        if (r.left > 0 &&
            dist_cpu_state_load(env, ts, r.p, r.left) != 0) {
            dist_proxy_reply(c, ts, -TARGET_EINVAL);
            g_free(c);
            continue;
        }
        dq_stats_add(&dist_stats, syscalls_served, 1);
        {
            /* Its exit_group ends the process here, on the proxy. */
            bool exiting = dist_stats_exit_call_begin(c->aux);
            abi_long ret;

            dist_in_syscall = true;
            ret = dist_syscall_global(env, c->aux, args);
            dist_in_syscall = false;
            if (exiting) {
                dist_stats_exit_call_restarted();
            }

            if (dist_in_fork_child()) {
                /* Not the master any more: no one to answer. */
                g_free(c);
                dist_thread_forked_child(env);
            }
            dist_proxy_reply(c, ts, ret);
        }
        g_free(c);
    }
}

void dist_thread_begin(CPUArchState *env)
{
    CPUState *cpu = env_cpu(env);
    TaskState *ts = get_task_state(cpu);
    DistProxy *p;
    unsigned node = 0;
    size_t len;
    uint8_t *state;

    if (!dist_active() || dist_node_id != 0 || !sched_ready) {
        dist_stats_thread_begin();
        return;
    }
    if (dq_sched_place(&sched, dq_sched_hint_any(), &node) != DQ_OK) {
        node = 0;
    }
    if (node == 0) {
        dist_stats_thread_begin();
        return;
    }

    p = g_new0(DistProxy, 1);
    p->tid = ts->ts_tid;
    p->node = node;
    qemu_mutex_init(&p->lock);
    p->tail = &p->head;
    qemu_mutex_lock(&proxies_lock);
    g_hash_table_insert(proxies, GUINT_TO_POINTER(p->tid), p);
    qemu_mutex_unlock(&proxies_lock);

    len = dist_cpu_state_size(env);
    state = g_malloc(len);
    if (dist_cpu_state_save(env, ts, state, len) != len) {
        dist_fatal("cannot save the state of thread %u", p->tid);
    }
    if (dist_note(node, DIST_OP_THREAD_START, 0, p->tid, state, len) !=
        DQ_OK) {
        dist_fatal("cannot start thread %u on node %u", p->tid, node);
    }
    g_free(state);
    dist_proxy_serve(env, p);
}

void dist_thread_forked_child(CPUArchState *env)
{
    /*
     * The thread that forked runs on a worker; here is only its proxy,
     * whose CPU holds that thread's state as of the fork (CLONE calls
     * ship it).  The child returns 0 from fork and runs on, alone.
     */
    dist_cpu_set_syscall_return(env, 0);
    dist_stats_thread_begin();
    dist_simhost_enter_guest();
    cpu_loop(env);
}

/* ---- a worker: threads the master placed here ---------------------------- */


typedef struct RemoteThread {
    pid_t host_tid;
    TaskState *ts;
} RemoteThread;

static void dist_remote_register(uint32_t tid, pid_t host_tid, TaskState *ts)
{
    qemu_mutex_lock(&remote_lock);
    if (host_tid) {
        RemoteThread *rt = g_new0(RemoteThread, 1);

        rt->host_tid = host_tid;
        rt->ts = ts;
        g_hash_table_insert(remote_threads, GUINT_TO_POINTER(tid), rt);
    } else {
        g_hash_table_remove(remote_threads, GUINT_TO_POINTER(tid));
    }
    qemu_mutex_unlock(&remote_lock);
}

/*
 * Queue the signals in @r (QEMU's target_siginfo_t bytes) on a thread's
 * TaskState exactly as QEMU's host handler would, so the thread's
 * cpu_loop delivers them with the sender's si_pid, si_code and value
 * intact (glibc's cancellation handler checks them).  Raising the host
 * signal instead would not do: the kernel lets only the target thread
 * itself queue SI_TKILL-like siginfo.
 */
static bool dist_queue_signals(TaskState *ts, DistRd *r)
{
    bool any = false;

    while (r->left >= sizeof(target_siginfo_t)) {
        target_siginfo_t t;

        memcpy(&t, dist_rd_bytes(r, sizeof(t)), sizeof(t));
        if (t.si_signo < 1 || t.si_signo > TARGET_NSIG) {
            continue;
        }
        ts->sigtab[t.si_signo - 1].info = t;
        smp_wmb();      /* the info before the mark process_pending reads */
        ts->sigtab[t.si_signo - 1].pending = t.si_signo;
        qatomic_set(&ts->signal_pending, 1);
        any = true;
    }
    return any;
}

void dist_thread_signal_remote(uint32_t tid, const uint8_t *data, size_t len)
{
    RemoteThread *rt;
    DistRd r;

    qemu_mutex_lock(&remote_lock);
    rt = g_hash_table_lookup(remote_threads, GUINT_TO_POINTER(tid));
    dist_rd_init(&r, data, len);
    if (rt && dist_queue_signals(rt->ts, &r)) {
        /*
         * QEMU's interrupt signal makes the thread leave translated code
         * (or a local blocking call) and run process_pending_signals().
         */
        syscall(SYS_tgkill, getpid(), rt->host_tid, host_interrupt_signal);
    }
    qemu_mutex_unlock(&remote_lock);
}

typedef struct RemoteStart {
    CPUArchState *env;
    uint32_t tid;
} RemoteStart;

static void *dist_remote_thread_main(void *arg)
{
    RemoteStart *rs = arg;
    CPUArchState *env = rs->env;
    CPUState *cpu = env_cpu(env);
    sigset_t none;

    remote_tid = rs->tid;
    g_free(rs);
    rcu_register_thread();
    tcg_register_thread();
    thread_cpu = cpu;
    dist_stats_thread_begin();
    dist_remote_register(remote_tid, gettid(), get_task_state(cpu));
    sigemptyset(&none);
    pthread_sigmask(SIG_SETMASK, &none, NULL);
    dist_simhost_enter_guest();
    cpu_loop(env);
    return NULL;
}

void dist_thread_start_remote(CPUArchState *template_env, uint32_t tid,
                              const uint8_t *state, size_t len)
{
    TaskState *template_ts = get_task_state(env_cpu(template_env));
    TaskState *ts = g_new0(TaskState, 1);
    CPUArchState *env;
    CPUState *cpu;
    RemoteStart *rs;
    pthread_attr_t attr;
    pthread_t th;
    sigset_t all, old;
    int err;

    init_task_state(ts);
    dist_cpu_list_lock();
    env = cpu_copy(template_env);
    dist_cpu_list_unlock();
    cpu = env_cpu(env);
    cpu->opaque = ts;
    ts->bprm = template_ts->bprm;
    ts->info = template_ts->info;
    err = dist_cpu_state_load(env, ts, state, len);
    if (err != 0) {
        dist_fatal("cannot load the state of thread %u: %s", tid,
                   strerror(-err));
    }
    ts->ts_tid = tid;
    tcg_cflags_set(cpu, CF_PARALLEL);

    rs = g_new0(RemoteStart, 1);
    rs->env = env;
    rs->tid = tid;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * KiB);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    /* No signal before the thread has its CPU (as in do_fork). */
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    err = pthread_create(&th, &attr, dist_remote_thread_main, rs);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    if (err != 0) {
        dist_fatal("cannot start thread %u: %s", tid, strerror(err));
    }
}

/*
 * A call to the master came back DQ_ERR_XPORT_SHUTDOWN: the guest exited
 * (exit_group on another node) and the shutdown ends this node; the
 * calling thread only waits for that.
 */
static void wait_if_cluster_ending(DqStatus st)
{
    if (st == DQ_ERR_XPORT_SHUTDOWN) {
        for (;;) {
            pause();
        }
    }
}

abi_long dist_thread_delegate(CPUArchState *env, int num, abi_long *args,
                              bool with_state)
{
    DqMsg reply;
    /* The answer carries up to one siginfo per signal number. */
    uint8_t buf[DQ_PROTO_HDR_SIZE + DQ_BODY_CALL +
                TARGET_NSIG * sizeof(target_siginfo_t)];
    /* The 8 arguments, and for CLONE calls the CPU state after them. */
    uint8_t small[8 * 8];
    uint8_t *tail = small;
    size_t tail_len = sizeof(small);
    DqStatus st;
    int64_t t0 = get_clock();
    int i, b;

    if (with_state) {
        TaskState *ts = get_task_state(env_cpu(env));
        size_t len = dist_cpu_state_size(env);

        tail_len = sizeof(small) + len;
        tail = g_malloc(tail_len);
        if (dist_cpu_state_save(env, ts, tail + sizeof(small), len) != len) {
            dist_fatal("cannot save the state of thread %u", remote_tid);
        }
    }
    for (i = 0; i < 8; i++) {
        for (b = 0; b < 8; b++) {
            tail[i * 8 + b] = (uint64_t)(int64_t)args[i] >> (8 * b);
        }
    }
    st = dist_call(0, DIST_OP_SYSCALL, num, remote_tid, tail, tail_len, &reply,
                   buf, sizeof(buf), DQ_XPORT_WAIT_FOREVER);
    if (tail != small) {
        g_free(tail);
    }
    dq_stats_add(&dist_stats, delegated_wait_ns, get_clock() - t0);
    wait_if_cluster_ending(st);
    if (st != DQ_OK) {
        dist_fatal("system call %d of thread %u could not run on the "
                   "master: %s", num, remote_tid, dq_status_str(st));
    }
    {
        DistRd r;

        /* Code another node wrote while the call ran must not run stale. */
        dist_mem_flush_code();
        /* Signals that came for this thread while its call ran. */
        dist_rd_init(&r, reply.tail, reply.tail_len);
        dist_queue_signals(get_task_state(env_cpu(env)), &r);
    }
    return (abi_long)(int64_t)reply.u.call.arg;
}

void dist_thread_excl_acquire(void)
{
    uint8_t buf[DQ_PROTO_HDR_SIZE + DQ_BODY_CALL];
    DqMsg reply;
    DqStatus st;

    st = dist_call(0, DIST_OP_EXCL_ACQUIRE, 0, remote_tid, NULL, 0, &reply,
                   buf, sizeof(buf), DQ_XPORT_WAIT_FOREVER);
    wait_if_cluster_ending(st);
    if (st != DQ_OK) {
        dist_fatal("thread %u cannot take the cluster's lock for an atomic "
                   "step: %s", remote_tid, dq_status_str(st));
    }
}

void dist_thread_excl_release(void)
{
    /* Behind the ACQUIRE in the proxy's queue: no answer needed. */
    dist_note(0, DIST_OP_EXCL_RELEASE, 0, remote_tid, NULL, 0);
}

abi_long dist_thread_remote_exit(CPUArchState *env, abi_long status)
{
    CPUState *cpu = env_cpu(env);
    TaskState *ts = get_task_state(cpu);

    /* A signal first: QEMU's exit would restart the call the same way. */
    if (block_signals()) {
        return -QEMU_ERESTARTSYS;
    }
    dist_note(0, DIST_OP_THREAD_EXIT, (uint32_t)status, remote_tid, NULL, 0);

    /* The proxy does CLEARTID; here the CPU just goes away. */
    dist_remote_register(remote_tid, 0, NULL);
    dist_cpu_list_lock();
    object_unparent(OBJECT(cpu));
    object_unref(OBJECT(cpu));
    dist_cpu_list_unlock();
    thread_cpu = NULL;
    g_free(ts);
    rcu_unregister_thread();
    pthread_exit(NULL);
}
