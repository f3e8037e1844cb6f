/*
 * dist-hooks.h - the functions QEMU's linux-user calls into dqemu.
 *
 * Every hunk of the tcg-ext/ patch series calls exactly one function
 * declared here (the include/user/syscall-trace.h pattern), so the patches
 * stay a few lines each and all logic lives in linux-user-dist/.
 */
#ifndef LINUX_USER_DIST_HOOKS_H
#define LINUX_USER_DIST_HOOKS_H

/*
 * Option parsing, from parse_args() in linux-user/main.c.  @name is the
 * option with its dashes removed.  Returns true when the option is one of
 * dqemu's (having advanced *@optind past any value it took); exits with a
 * usage error naming the option when its value is bad.
 * Context: main thread, start-up.
 */
bool dist_parse_option(const char *name, int argc, char **argv, int *optind);

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
 * From preexit_cleanup(): the process is about to exit with @code
 * (exit_group, last thread's exit, or a fatal signal).
 */
void dist_exit(CPUArchState *env, int code);

#endif /* LINUX_USER_DIST_HOOKS_H */
