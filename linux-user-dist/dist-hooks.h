/*
 * dist-hooks.h - the functions QEMU's linux-user calls into dqemu.
 *
 * Every hunk of the tcg-ext/ patch series calls exactly one function
 * declared here (the include/user/syscall-trace.h pattern), so the patches
 * stay a few lines each and all logic lives in linux-user-dist/.
 */
#ifndef LINUX_USER_DIST_HOOKS_H
#define LINUX_USER_DIST_HOOKS_H

#include "user/abitypes.h"

struct target_pt_regs;
struct image_info;

/*
 * Option parsing, from parse_args() in linux-user/main.c.  @name is the
 * option with its dashes removed.  Returns true when the option is one of
 * dqemu's (having advanced *@optind past any value it took); exits with a
 * usage error naming the option when its value is bad.
 * Context: main thread, start-up.
 */
bool dist_parse_option(const char *name, int argc, char **argv, int *optind);

/* Did the command line say --worker?  Context: start-up, after parsing. */
bool dist_is_worker(void);

/*
 * Right after parse_args(): the master notes its QEMU options (workers it
 * starts get the same) and where the CPU model will be; a worker joins
 * the master and sets *@cpu_model, the guest space and guest_base from
 * the master's.  Context: main thread, start-up.
 */
void dist_after_args(int argc, char **argv, int prog_index,
                     const char **cpu_model);

/*
 * A worker's replacement for loader_exec(): no program is loaded here
 * (every guest page comes from the master); reserves the guest space at
 * the master's guest_base and fills @info.  Returns 0.
 */
int dist_node_worker_load(struct target_pt_regs *regs,
                          struct image_info *info);

/* Start of QEMU's usage(): dqemu's synopsis and options. */
void dist_usage(void);

/* Start of -version: the dqemu version line. */
void dist_print_version(void);

/*
 * The -cpu model to use when the user gave none, or NULL for QEMU's
 * default.  On riscv64 it is "rv64": QEMU's default "max" enables Ztso,
 * which makes threaded guests very slow under TCG.
 */
const char *dist_default_cpu_model(void);

/*
 * After the guest is loaded, just before the main thread enters cpu_loop():
 * applies DQEMU_* variables and checks the option combination.
 * Context: main thread, start-up.
 */
void dist_start(CPUArchState *env);

typedef abi_long (*DistSyscallFn)(CPUArchState *env, int num,
                                  abi_long arg1, abi_long arg2, abi_long arg3,
                                  abi_long arg4, abi_long arg5, abi_long arg6,
                                  abi_long arg7, abi_long arg8);

/*
 * do_syscall()'s call of do_syscall1 goes through here: the one place that
 * decides where a guest system call runs.  Context: any guest thread.
 */
abi_long dist_do_syscall(DistSyscallFn fn, CPUArchState *env, int num,
                         abi_long arg1, abi_long arg2, abi_long arg3,
                         abi_long arg4, abi_long arg5, abi_long arg6,
                         abi_long arg7, abi_long arg8);

/*
 * clone_func(), just before a new guest thread enters cpu_loop(): the
 * scheduler places it; on another node this host thread becomes its
 * proxy and never returns.  Context: the new thread.
 */
void dist_thread_begin(CPUArchState *env);

/*
 * host_sigsegv_handler(), before QEMU's own handling: true when the
 * coherence engine made the page accessible (retry the access).
 * @host_pc is the faulting host instruction: an atomic one gets the page
 * for a lease (dqemu/hostinsn.h).
 * Context: SIGSEGV handler.
 */
bool dist_sigsegv(uintptr_t host_addr, bool is_write, uintptr_t host_pc);

/*
 * block_signals() and process_pending_signals() block every host signal
 * while QEMU writes guest memory for the guest (a syscall's old signal
 * mask, a signal frame).  On several nodes that page may have moved to
 * another node meanwhile, and a blocked SIGSEGV would make the kernel
 * kill the process instead of fetching it: take SIGSEGV out of @set.
 * A SIGSEGV that is not the engine's still ends in QEMU's "internal
 * SIGSEGV" report.  Context: any vCPU thread.
 */
void dist_keep_page_faults(sigset_t *set);

/*
 * QEMU's mprotect() of guest pages (target_mprotect, page_protect,
 * page_unprotect): sets what QEMU wants; the host protection becomes that
 * ∩ the page's coherence state.  Same return convention as mprotect().
 */
int dist_mprotect(void *host, size_t len, int prot);

/* page_protect(): translated code is being made from the page at @addr. */
void dist_page_has_code(target_ulong addr);

/*
 * End of page_set_flags(): [@start, @last] now has @flags (0: unmapped);
 * @reset for a new mapping.  Context: mmap_lock held.
 */
void dist_page_set_flags(target_ulong start, target_ulong last, int flags,
                         bool reset);

/*
 * access_ok_untagged(), after QEMU's own checks passed: make the range
 * present here.  The kernel answers a PROT_NONE buffer with EFAULT, not
 * SIGSEGV, and QEMU writes guest memory with host signals blocked in
 * places (CLEARTID at thread exit, after block_signals()), where a fault
 * would kill the process.  @type is VERIFY_READ or VERIFY_WRITE.  False
 * only when the cluster is failing.
 */
bool dist_access_ok(int type, abi_ulong addr, abi_ulong size);

/*
 * lock_user() and unlock_user(): on several nodes the kernel works on a
 * private copy of a syscall buffer (QEMU's CONFIG_DEBUG_REMAP scheme), so
 * a page another node takes meanwhile cannot make it fail with EFAULT.
 * dist_lock_user() returns @host_addr itself on one node, outside
 * system calls and for VERIFY_NONE (an address range, not a buffer);
 * dist_unlock_user() copies the first @len bytes back and frees the copy,
 * or does nothing for a direct pointer (or NULL).
 */
void *dist_lock_user(int type, void *host_addr, ssize_t len, bool copy);
void dist_unlock_user(void *host_ptr, abi_ulong guest_addr, ssize_t len);

/*
 * cpu_exec_step_atomic(), around QEMU's start_exclusive() ...
 * end_exclusive(): no thread on any other node runs guest code between
 * the two (dist-excl.c).  On one node they only count the step.
 * Context: a vCPU thread outside cpu_exec(), no lock held.
 */
void dist_atomic_step_begin(void);
void dist_atomic_step_end(void);

/*
 * From preexit_cleanup(): the process is about to exit with @code
 * (exit_group, last thread's exit, or a fatal signal).
 */
void dist_exit(CPUArchState *env, int code);

#endif /* LINUX_USER_DIST_HOOKS_H */
