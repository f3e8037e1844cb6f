/*
 * dist-syscall.c - where a guest system call runs.
 *
 * Every guest syscall of every target passes through dist_do_syscall(),
 * after -strace has printed it.  On one node all of them run here, as
 * before.  On several nodes, a thread on a worker runs the LOCAL classes
 * (time, sleep, yield, sigreturn, its signal mask) itself, answers the ID
 * class with the master's ids, and sends everything else -- unknown
 * numbers included -- to its proxy on the master (dist-thread.c).  On the
 * master, global calls run through dist_syscall_global(), which adds what
 * a shared address space needs around QEMU's own implementation: futex
 * words present on the master, fork with every page at home, the layout
 * and dispositions copied to the workers.
 */
#include "qemu/osdep.h"
#include "qemu/path.h"
#include "qemu.h"
#include "user-internals.h"
#include "signal-common.h"
#include "qemu/log.h"
#include "user/page-protection.h"
#include <linux/futex.h>
#include "dist-hooks.h"
#include "dist-internal.h"
#include "dist-wire.h"
#include "cpu-state.h"
#include "syscall-class.h"

/* How often a futex call is retried after a page was taken away. */
#define DIST_FUTEX_EFAULT_RETRIES 1000

static abi_long call_fn(CPUArchState *env, int num, abi_long *a)
{
    return dist_syscall_fn(env, num, a[0], a[1], a[2], a[3], a[4], a[5],
                           a[6], a[7]);
}

/*
 * A futex call on the master: the kernel reads (WAKE_OP: writes) the
 * words through the master's mapping, so they must be present here.  A
 * page another node takes meanwhile makes the kernel say EFAULT before it
 * did anything: bring the page back and try again.
 */
static abi_long dist_futex(CPUArchState *env, int num, abi_long *a)
{
    int cmd = a[1] & FUTEX_CMD_MASK;
    bool second = cmd == FUTEX_REQUEUE || cmd == FUTEX_CMP_REQUEUE ||
                  cmd == FUTEX_WAKE_OP || cmd == FUTEX_CMP_REQUEUE_PI;
    /*
     * The kernel keys a shared (non-PRIVATE) futex on an anonymous page
     * only if the page is writable (get_futex_key refuses a read-only
     * anonymous page with EFAULT), and the PI ops write the word.
     */
    bool write1 = !(a[1] & FUTEX_PRIVATE_FLAG) ||
                  cmd == FUTEX_LOCK_PI || cmd == FUTEX_UNLOCK_PI ||
                  cmd == FUTEX_TRYLOCK_PI || cmd == FUTEX_WAIT_REQUEUE_PI ||
                  cmd == FUTEX_LOCK_PI2;
    abi_long ret;
    int tries;

    for (tries = 0; ; tries++) {
        if (!dist_mem_acquire(a[0], 4, write1) ||
            (second && !dist_mem_acquire(a[4], 4, cmd == FUTEX_WAKE_OP ||
                                         !(a[1] & FUTEX_PRIVATE_FLAG)))) {
            return -TARGET_EFAULT;
        }
        ret = call_fn(env, num, a);
        if (ret != -TARGET_EFAULT || tries >= DIST_FUTEX_EFAULT_RETRIES ||
            !page_check_range(a[0], 4, PAGE_READ)) {
            return ret;
        }
    }
}

/* Before fork: every page at home, so the child gets current contents. */
static int dist_acquire_region(void *opaque, target_ulong start,
                               target_ulong end, unsigned long flags)
{
    if (flags & PAGE_READ) {
        dist_mem_acquire(start, end - start, false);
    }
    return 0;
}

static bool dist_forked_child;

bool dist_in_fork_child(void)
{
    return dist_forked_child;
}
/* Set while this thread forks for the guest: other forks are not ours. */
static __thread bool dist_guest_forking;

/*
 * In a child of fork: one node again.  Runs before QEMU's own child code
 * (pthread_atfork), which may already write guest memory (SETTID).
 */
static void dist_atfork_child(void)
{
    if (!dist_active() || !dist_guest_forking) {
        return;
    }
    dist_forked_child = true;
    dist_mem_detach();
    dist_node_count = 1;
    dist_node_id = 0;
    dist_xport = NULL;
}

void dist_syscall_init(void)
{
    pthread_atfork(NULL, NULL, dist_atfork_child);
}

static bool dist_clone_is_fork(int num, abi_long flags)
{
#ifdef TARGET_NR_fork
    if (num == TARGET_NR_fork) {
        return true;
    }
#endif
#ifdef TARGET_NR_vfork
    if (num == TARGET_NR_vfork) {
        return true;
    }
#endif
#ifdef TARGET_NR_clone
    if (num == TARGET_NR_clone) {
        return !(flags & CLONE_VM) || (flags & CLONE_VFORK);
    }
#endif
    return false;
}

abi_long dist_syscall_global(CPUArchState *env, int num, abi_long *a)
{
    DistSyscallClass cls = dist_syscall_class(num);
    bool handled;
    abi_long ret;

    ret = dist_cpus_intercept(env, num, a, &handled);
    if (handled) {
        return ret;
    }
    if (!dist_active()) {
        return call_fn(env, num, a);
    }
    switch (cls) {
    case DIST_SYSCALL_FUTEX:
        return dist_futex(env, num, a);

    case DIST_SYSCALL_CLONE:
        if (!dist_clone_is_fork(num, a[0])) {
            return call_fn(env, num, a);
        }
        walk_memory_regions(NULL, dist_acquire_region);
        dist_guest_forking = true;
        ret = call_fn(env, num, a);
        dist_guest_forking = false;
        return ret;

    case DIST_SYSCALL_EXEC:
#ifdef TARGET_NR_execve
        /*
         * The new image replaces every thread: the workers end first, once
         * the call looks likely to succeed (the kernel may still refuse it;
         * threads on workers are then gone, see README "Limits").
         */
        if (num == TARGET_NR_execve) {
            char *p = lock_user_string(a[0]);
            bool runnable = p && access(path(p), X_OK) == 0;

            unlock_user(p, a[0], 0);
            if (runnable) {
                walk_memory_regions(NULL, dist_acquire_region);
                dist_node_shutdown(0);
                dist_mem_detach();
                dist_node_count = 1;
            }
        }
#endif
        return call_fn(env, num, a);

    case DIST_SYSCALL_SIGACTION:
        ret = call_fn(env, num, a);
        if (ret == 0 && a[1] != 0) {
            dist_signal_broadcast_action(a[0]);
        }
        return ret;

    case DIST_SYSCALL_MMAP:
#ifdef TARGET_NR_madvise
        if (num == TARGET_NR_madvise && a[2] == MADV_DONTNEED &&
            page_check_range(a[0], a[1], PAGE_PASSTHROUGH)) {
            ret = call_fn(env, num, a);
            if (ret == 0) {
                dist_mem_zeroed(a[0], a[1]);
            }
            return ret;
        }
#endif
#ifdef TARGET_NR_mremap
        if (num == TARGET_NR_mremap) {
            /* The host moves the master's copy of the pages. */
            dist_mem_acquire(a[0], a[1], false);
        }
#endif
        return call_fn(env, num, a);

    default:
        return call_fn(env, num, a);
    }
}

static void dist_strace_where(unsigned node)
{
    if (unlikely(qemu_loglevel_mask(LOG_STRACE))) {
        qemu_log(" [node %u%s]", node, node == dist_node_id ? "" : ", delegated");
    }
}

static abi_long dist_route_syscall(DistSyscallFn fn, CPUArchState *env,
                                   int num, abi_long arg1, abi_long arg2,
                                   abi_long arg3, abi_long arg4,
                                   abi_long arg5, abi_long arg6,
                                   abi_long arg7, abi_long arg8)
{
    abi_long a[8] = { arg1, arg2, arg3, arg4, arg5, arg6, arg7, arg8 };
    DistSyscallClass cls = dist_syscall_class(num);
    bool local = dist_syscall_class_is_local(cls);
    abi_long ret;

    if (unlikely(dist_syscall_fn == NULL)) {
        dist_syscall_fn = fn;
    }
    if (unlikely(dist_cpu_state_selftest_every_syscall)) {
        dist_cpu_state_selftest_syscall(env);
    }
    dq_stats_add(&dist_stats, syscalls, 1);
    if (local) {
        dq_stats_add(&dist_stats, syscalls_local, 1);
    } else {
        dq_stats_add(&dist_stats, syscalls_global, 1);
    }
#ifdef TARGET_NR_clone
    if (num == TARGET_NR_clone && (arg1 & CLONE_THREAD)) {
        dq_stats_add(&dist_stats, threads_created, 1);
    }
#endif

    if (!dist_active()) {
        if (unlikely(dist_options.cpus_per_node) && !local) {
            return dist_syscall_global(env, num, a);
        }
        return fn(env, num, arg1, arg2, arg3, arg4, arg5, arg6, arg7, arg8);
    }
    if (dist_node_id == 0) {
#ifdef TARGET_NR_exit
        if (num == TARGET_NR_exit && env == dist_master_env) {
            /* Its CPU goes away: a fatal signal needs another way out. */
            __atomic_store_n(&dist_master_env, NULL, __ATOMIC_RELEASE);
        }
#endif
        dist_in_syscall = true;
        ret = local ? fn(env, num, arg1, arg2, arg3, arg4, arg5, arg6,
                         arg7, arg8)
                    : dist_syscall_global(env, num, a);
        dist_in_syscall = false;
        return ret;
    }

    /* A thread on a worker. */
    switch (cls) {
    case DIST_SYSCALL_ID:
        dist_strace_where(dist_node_id);
#ifdef TARGET_NR_gettid
        if (num == TARGET_NR_gettid) {
            return dist_thread_tid();
        }
#endif
#ifdef TARGET_NR_getppid
        if (num == TARGET_NR_getppid) {
            return dist_master_ppid;
        }
#endif
        return dist_master_pid;
    case DIST_SYSCALL_EXIT:
        dist_strace_where(dist_node_id);
        return dist_thread_remote_exit(env, arg1);
    case DIST_SYSCALL_LOCAL:
    case DIST_SYSCALL_SIGMASK:
    case DIST_SYSCALL_PRCTL:
        dist_strace_where(dist_node_id);
        dist_in_syscall = true;
        ret = fn(env, num, arg1, arg2, arg3, arg4, arg5, arg6, arg7, arg8);
        dist_in_syscall = false;
        return ret;
    default:
        dist_strace_where(0);
        dq_stats_add(&dist_stats, syscalls_delegated, 1);
        ret = dist_thread_delegate(env, num, a, cls == DIST_SYSCALL_CLONE);
        return ret;
    }
}

abi_long dist_do_syscall(DistSyscallFn fn, CPUArchState *env, int num,
                         abi_long arg1, abi_long arg2, abi_long arg3,
                         abi_long arg4, abi_long arg5, abi_long arg6,
                         abi_long arg7, abi_long arg8)
{
    abi_long ret;

    /*
     * exit and exit_group end the thread's time here, or the process,
     * before they return -- which they do only to run a pending signal
     * first, the thread living on.
     */
    if (likely(!dist_stats_exit_call_begin(num))) {
        return dist_route_syscall(fn, env, num, arg1, arg2, arg3, arg4, arg5,
                                  arg6, arg7, arg8);
    }
    ret = dist_route_syscall(fn, env, num, arg1, arg2, arg3, arg4, arg5,
                             arg6, arg7, arg8);
    dist_stats_exit_call_restarted();
    return ret;
}
