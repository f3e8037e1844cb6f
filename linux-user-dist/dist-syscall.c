/*
 * dist-syscall.c - where a guest system call runs.
 *
 * Every guest syscall of every target passes through dist_do_syscall(),
 * after -strace has printed it.  On a single node all of them run here;
 * the local/global split and delegation to the master hang off this point.
 */
#include "qemu/osdep.h"
#include "qemu.h"
#include "dist-hooks.h"
#include "dist-internal.h"
#include "cpu-state.h"
#include "syscall-class.h"

abi_long dist_do_syscall(DistSyscallFn fn, CPUArchState *env, int num,
                         abi_long arg1, abi_long arg2, abi_long arg3,
                         abi_long arg4, abi_long arg5, abi_long arg6,
                         abi_long arg7, abi_long arg8)
{
    abi_long ret;

    if (unlikely(dist_cpu_state_selftest_every_syscall)) {
        dist_cpu_state_selftest_syscall(env);
    }
    ret = fn(env, num, arg1, arg2, arg3, arg4, arg5, arg6, arg7, arg8);

    dq_stats_add(&dist_stats, syscalls, 1);
    /* By class only, for now: every call still runs on this node. */
    if (dist_syscall_class_is_local(dist_syscall_class(num))) {
        dq_stats_add(&dist_stats, syscalls_local, 1);
    } else {
        dq_stats_add(&dist_stats, syscalls_global, 1);
    }
    /* The parent sees the new tid; the child never returns through here. */
#ifdef TARGET_NR_clone
    if (num == TARGET_NR_clone && (arg1 & CLONE_THREAD) && ret > 0) {
        dq_stats_add(&dist_stats, threads_created, 1);
    }
#endif
    return ret;
}
