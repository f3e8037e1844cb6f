/*
 * syscall-class.c - the syscall classification table.
 *
 * One designated initializer per classified TARGET_NR_*, each under its
 * own #ifdef because arm (with its legacy calls), aarch64 and riscv64
 * (the generic table) know different sets.  Every number the table does
 * not name is GLOBAL: a call we have not thought about runs on the
 * master, where the process state is, which is slow but never wrong.
 * LOCAL entries say why running on the thread's node is safe.
 */
#include "qemu/osdep.h"
#include "qemu.h"
#include "syscall-class.h"

typedef struct DistSyscallEntry {
    const char *name;           /* NULL: not in the table, i.e. GLOBAL */
    DistSyscallClass cls;
} DistSyscallEntry;

/*
 * Every syscall number of the three targets is below 512 (mseal is 462);
 * naming a larger one below is a compile error, not a silent overflow.
 */
#define DIST_SYSCALL_TABLE_SIZE 512

/* The self-check prints every number below this, known or not. */
#define DIST_SYSCALL_DUMP_LIMIT 4096

#define SC(nr, cls) [TARGET_NR_##nr] = { #nr, DIST_SYSCALL_##cls }

/* Naming a number twice would silently keep the last: make it an error. */
#pragma GCC diagnostic push
#pragma GCC diagnostic error "-Woverride-init"

static const DistSyscallEntry dist_syscall_table[DIST_SYSCALL_TABLE_SIZE] = {
    /* ---- LOCAL ---------------------------------------------------- */

    /*
     * Clocks: read the host's clock, which is the same one on a loopback
     * cluster and NTP-disciplined across hosts.  Known limitation:
     * CLOCK_PROCESS_CPUTIME_ID then counts this node's CPU time only.
     */
#ifdef TARGET_NR_clock_gettime
    SC(clock_gettime, LOCAL),
#endif
#ifdef TARGET_NR_clock_gettime64
    SC(clock_gettime64, LOCAL),
#endif
#ifdef TARGET_NR_clock_getres
    SC(clock_getres, LOCAL),
#endif
#ifdef TARGET_NR_clock_getres_time64
    SC(clock_getres_time64, LOCAL),
#endif
#ifdef TARGET_NR_gettimeofday
    SC(gettimeofday, LOCAL),
#endif
#ifdef TARGET_NR_time
    SC(time, LOCAL),
#endif
    /*
     * Sleeping blocks only the calling thread, which is here; a signal
     * that interrupts the sleep is sent on to this node (KILL).
     */
#ifdef TARGET_NR_nanosleep
    SC(nanosleep, LOCAL),
#endif
#ifdef TARGET_NR_clock_nanosleep
    SC(clock_nanosleep, LOCAL),
#endif
#ifdef TARGET_NR_clock_nanosleep_time64
    SC(clock_nanosleep_time64, LOCAL),
#endif
    /* Gives up this node's host CPU: yielding on the master helps nobody. */
#ifdef TARGET_NR_sched_yield
    SC(sched_yield, LOCAL),
#endif
    /* The CPU the thread runs on is one of this node's. */
#ifdef TARGET_NR_getcpu
    SC(getcpu, LOCAL),
#endif
    /* Any host's entropy pool will do; no process state. */
#ifdef TARGET_NR_getrandom
    SC(getrandom, LOCAL),
#endif
    /*
     * The alternate signal stack is per-thread state, used by this node
     * when it builds a signal frame for the thread.
     */
#ifdef TARGET_NR_sigaltstack
    SC(sigaltstack, LOCAL),
#endif
    /*
     * QEMU restarts an interrupted call by rewinding the guest PC and
     * never issues restart_syscall itself; an explicit call gets
     * do_syscall1's ENOSYS, which needs no state.
     */
#ifdef TARGET_NR_restart_syscall
    SC(restart_syscall, LOCAL),
#endif
    /*
     * QEMU answers ENOSYS (it cannot walk a guest robust list at thread
     * death); glibc asks in every new thread, so answer without a round
     * trip.
     */
#ifdef TARGET_NR_set_robust_list
    SC(set_robust_list, LOCAL),
#endif
#ifdef TARGET_NR_get_robust_list
    SC(get_robust_list, LOCAL),
#endif
    /*
     * Not implemented by QEMU 10.0.2 (ENOSYS), asked by glibc in every new
     * thread; were it implemented, the registration is per-thread.
     */
#ifdef TARGET_NR_rseq
    SC(rseq, LOCAL),
#endif
    /* The TLS register is CPU state of the calling thread. */
#ifdef TARGET_NR_set_thread_area
    SC(set_thread_area, LOCAL),
#endif
#ifdef TARGET_NR_get_thread_area
    SC(get_thread_area, LOCAL),
#endif
    /* QEMU returns 0: stale translations are dropped by page writes. */
#ifdef TARGET_NR_cacheflush
    SC(cacheflush, LOCAL),
#endif
    /*
     * riscv: flush_icache is answered by cpu_loop and never reaches
     * do_syscall (as above); hwprobe describes the emulated CPU model,
     * the same on every node.
     */
#ifdef TARGET_NR_riscv_flush_icache
    SC(riscv_flush_icache, LOCAL),
#endif
#ifdef TARGET_NR_riscv_hwprobe
    SC(riscv_hwprobe, LOCAL),
#endif

    /* ---- ID: the master's ids, so every node gives the same answer --- */
#ifdef TARGET_NR_getpid
    SC(getpid, ID),
#endif
#ifdef TARGET_NR_getppid
    SC(getppid, ID),
#endif
#ifdef TARGET_NR_gettid
    SC(gettid, ID),
#endif

    /*
     * ---- SIGMASK: the mask decides delivery here (synchronous signals,
     * forwarded ones), and the proxy needs it to pick a thread for a
     * process-wide signal.  sigreturn restores the mask saved in the frame.
     */
#ifdef TARGET_NR_rt_sigprocmask
    SC(rt_sigprocmask, SIGMASK),
#endif
#ifdef TARGET_NR_sigprocmask
    SC(sigprocmask, SIGMASK),
#endif
#ifdef TARGET_NR_sgetmask
    SC(sgetmask, SIGMASK),
#endif
#ifdef TARGET_NR_ssetmask
    SC(ssetmask, SIGMASK),
#endif
#ifdef TARGET_NR_rt_sigreturn
    SC(rt_sigreturn, SIGMASK),
#endif
#ifdef TARGET_NR_sigreturn
    SC(sigreturn, SIGMASK),
#endif

    /*
     * ---- PRCTL: PR_SVE/SME_SET_VL, PR_PAC_RESET_KEYS, the tagged-address
     * and unaligned-access controls change the calling CPU's state; names,
     * dumpability, the death signal and the rest are the master's.
     */
#ifdef TARGET_NR_prctl
    SC(prctl, PRCTL),
#endif

    /* ---- CLONE: new threads and processes start at the master ------- */
#ifdef TARGET_NR_clone
    SC(clone, CLONE),
#endif
#ifdef TARGET_NR_clone3
    SC(clone3, CLONE),                      /* ENOSYS in QEMU 10.0.2 */
#endif
#ifdef TARGET_NR_fork
    SC(fork, CLONE),
#endif
#ifdef TARGET_NR_vfork
    SC(vfork, CLONE),
#endif

    /* ---- EXIT, EXIT_GROUP, EXEC ------------------------------------ */
#ifdef TARGET_NR_exit
    SC(exit, EXIT),
#endif
#ifdef TARGET_NR_exit_group
    SC(exit_group, EXIT_GROUP),
#endif
#ifdef TARGET_NR_execve
    SC(execve, EXEC),
#endif
#ifdef TARGET_NR_execveat
    SC(execveat, EXEC),
#endif

    /*
     * ---- FUTEX.  futex_waitv is ENOSYS in QEMU 10.0.2 and stays GLOBAL
     * (like any unimplemented call) until QEMU implements it.
     */
#ifdef TARGET_NR_futex
    SC(futex, FUTEX),
#endif
#ifdef TARGET_NR_futex_time64
    SC(futex_time64, FUTEX),
#endif

    /*
     * ---- MMAP: every call that changes the layout or the protection of
     * guest memory (page_set_flags), plus madvise, whose MADV_DONTNEED
     * must zero the range on every node.  arm's ipc multiplexes shmat and
     * shmdt.  pkey_mprotect, remap_file_pages, map_shadow_stack and mseal
     * are ENOSYS in QEMU 10.0.2 but would change the layout.
     */
#ifdef TARGET_NR_mmap
    SC(mmap, MMAP),
#endif
#ifdef TARGET_NR_mmap2
    SC(mmap2, MMAP),
#endif
#ifdef TARGET_NR_munmap
    SC(munmap, MMAP),
#endif
#ifdef TARGET_NR_mremap
    SC(mremap, MMAP),
#endif
#ifdef TARGET_NR_mprotect
    SC(mprotect, MMAP),
#endif
#ifdef TARGET_NR_pkey_mprotect
    SC(pkey_mprotect, MMAP),
#endif
#ifdef TARGET_NR_brk
    SC(brk, MMAP),
#endif
#ifdef TARGET_NR_madvise
    SC(madvise, MMAP),
#endif
#ifdef TARGET_NR_shmat
    SC(shmat, MMAP),
#endif
#ifdef TARGET_NR_shmdt
    SC(shmdt, MMAP),
#endif
#ifdef TARGET_NR_ipc
    SC(ipc, MMAP),
#endif
#ifdef TARGET_NR_remap_file_pages
    SC(remap_file_pages, MMAP),
#endif
#ifdef TARGET_NR_map_shadow_stack
    SC(map_shadow_stack, MMAP),
#endif
#ifdef TARGET_NR_mseal
    SC(mseal, MMAP),
#endif

    /* ---- SIGACTION: dispositions are process-wide ------------------ */
#ifdef TARGET_NR_rt_sigaction
    SC(rt_sigaction, SIGACTION),
#endif
#ifdef TARGET_NR_sigaction
    SC(sigaction, SIGACTION),
#endif
#ifdef TARGET_NR_signal
    SC(signal, SIGACTION),
#endif

    /* ---- KILL: the target may run on any node ---------------------- */
#ifdef TARGET_NR_kill
    SC(kill, KILL),
#endif
#ifdef TARGET_NR_tkill
    SC(tkill, KILL),
#endif
#ifdef TARGET_NR_tgkill
    SC(tgkill, KILL),
#endif
#ifdef TARGET_NR_rt_sigqueueinfo
    SC(rt_sigqueueinfo, KILL),
#endif
#ifdef TARGET_NR_rt_tgsigqueueinfo
    SC(rt_tgsigqueueinfo, KILL),
#endif
#ifdef TARGET_NR_pidfd_send_signal
    SC(pidfd_send_signal, KILL),
#endif

    /*
     * ---- GLOBAL by default, named here because they look local.
     */
    /*
     * QEMU keeps the clear-child-tid pointer in the TaskState; the proxy
     * implements CLEARTID at thread exit, so the proxy must hold it.
     */
#ifdef TARGET_NR_set_tid_address
    SC(set_tid_address, GLOBAL),
#endif
    /*
     * Registration is per host process: run every command on the master,
     * once.  Threads on other nodes need no barrier of their own: a page
     * only changes hands through mprotect, which serialises their CPUs.
     */
#ifdef TARGET_NR_membarrier
    SC(membarrier, GLOBAL),
#endif
    /* Must report the cluster's CPUs (issue 5 item 7): the master knows. */
#ifdef TARGET_NR_sched_getaffinity
    SC(sched_getaffinity, GLOBAL),
#endif
    /*
     * They wait for or look at the thread's pending signals, and signals
     * aimed at a remote thread arrive at its proxy.
     */
#ifdef TARGET_NR_pause
    SC(pause, GLOBAL),
#endif
#ifdef TARGET_NR_rt_sigsuspend
    SC(rt_sigsuspend, GLOBAL),
#endif
#ifdef TARGET_NR_sigsuspend
    SC(sigsuspend, GLOBAL),
#endif
#ifdef TARGET_NR_rt_sigpending
    SC(rt_sigpending, GLOBAL),
#endif
#ifdef TARGET_NR_sigpending
    SC(sigpending, GLOBAL),
#endif
#ifdef TARGET_NR_rt_sigtimedwait
    SC(rt_sigtimedwait, GLOBAL),
#endif
#ifdef TARGET_NR_rt_sigtimedwait_time64
    SC(rt_sigtimedwait_time64, GLOBAL),
#endif
};

#pragma GCC diagnostic pop

#undef SC

static const char *const dist_syscall_class_names[DIST_SYSCALL__COUNT] = {
#define DIST_SYSCALL_CLASS_NAME(name, text) [DIST_SYSCALL_##name] = text,
    DIST_SYSCALL_CLASS_LIST(DIST_SYSCALL_CLASS_NAME)
#undef DIST_SYSCALL_CLASS_NAME
};

#ifdef ARM_NR_BASE
/*
 * arm's private calls (0xf0000 + n) are answered by cpu_loop and never
 * reach do_syscall: cacheflush is a no-op, set_tls/get_tls touch the TLS
 * register, breakpoint raises SIGTRAP on this CPU.  Classified for
 * completeness, so a future caller gets the truth.
 */
static const struct {
    int num;
    const char *name;
} dist_syscall_arm_private[] = {
    { ARM_NR_breakpoint, "ARM_breakpoint" },
    { ARM_NR_cacheflush, "ARM_cacheflush" },
    { ARM_NR_set_tls, "ARM_set_tls" },
    { ARM_NR_get_tls, "ARM_get_tls" },
};
#endif

/* A subroutine of dist_syscall_class: also gives the table's name. */
static DistSyscallClass dist_syscall_lookup(int num, const char **name)
{
#ifdef ARM_NR_BASE
    size_t i;

    for (i = 0; i < ARRAY_SIZE(dist_syscall_arm_private); i++) {
        if (num == dist_syscall_arm_private[i].num) {
            *name = dist_syscall_arm_private[i].name;
            return DIST_SYSCALL_LOCAL;
        }
    }
#endif
    if (num < 0 || num >= DIST_SYSCALL_TABLE_SIZE) {
        *name = NULL;
        return DIST_SYSCALL_GLOBAL;
    }
    *name = dist_syscall_table[num].name;
    return dist_syscall_table[num].cls;
}

DistSyscallClass dist_syscall_class(int num)
{
    const char *name;

    return dist_syscall_lookup(num, &name);
}

const char *dist_syscall_class_str(DistSyscallClass cls)
{
    if ((unsigned)cls >= DIST_SYSCALL__COUNT) {
        return "?";
    }
    return dist_syscall_class_names[cls];
}

bool dist_syscall_class_is_local(DistSyscallClass cls)
{
    return cls == DIST_SYSCALL_LOCAL || cls == DIST_SYSCALL_ID ||
           cls == DIST_SYSCALL_SIGMASK;
}

static void dist_syscall_class_print(int num)
{
    const char *name;
    DistSyscallClass cls = dist_syscall_lookup(num, &name);

    printf("%d %s %s\n", num, name ? name : "-", dist_syscall_class_str(cls));
}

void dist_syscall_class_dump_if_asked(void)
{
    const char *v = getenv("DQEMU_DUMP_SYSCALL_CLASSES");
    int num;

    if (v == NULL || strcmp(v, "1") != 0) {
        return;
    }
    for (num = 0; num < DIST_SYSCALL_DUMP_LIMIT; num++) {
        dist_syscall_class_print(num);
    }
#ifdef ARM_NR_BASE
    for (size_t i = 0; i < ARRAY_SIZE(dist_syscall_arm_private); i++) {
        dist_syscall_class_print(dist_syscall_arm_private[i].num);
    }
#endif
    exit(fflush(stdout) == 0 ? EXIT_SUCCESS : EXIT_FAILURE);
}
