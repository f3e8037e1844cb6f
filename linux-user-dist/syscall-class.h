/*
 * syscall-class.h - where each guest system call has to run.
 *
 * The dispatcher in dist_do_syscall() needs one answer per syscall
 * number before it runs a call: here, on the node that runs the thread,
 * or on the master (on the thread's proxy), and whether the call needs
 * handling of its own there (DESIGN.md §6, issue 5 item 4).  Numbers are
 * the target's TARGET_NR_*, so the answer differs per ISA.
 */
#ifndef LINUX_USER_DIST_SYSCALL_CLASS_H
#define LINUX_USER_DIST_SYSCALL_CLASS_H

/*
 * The classes, with the name the self-check prints.  GLOBAL is first, so
 * a number nobody classified is global: unknown means "ask the master".
 */
#define DIST_SYSCALL_CLASS_LIST(X)                                         \
    /* runs on the thread's proxy on the master, buffers made coherent */  \
    X(GLOBAL,     "global")                                                \
    /* runs where the thread is; touches no process-wide state */          \
    X(LOCAL,      "local")                                                 \
    /* runs here, answered with the master-side pid/tid */                 \
    X(ID,         "id")                                                    \
    /* runs here (the mask is CPU state), then mirrored to the proxy */    \
    X(SIGMASK,    "sigmask")                                               \
    /* by option: per-CPU ones (SVE/SME length, PAC, tags) here, else */   \
    /* on the master */                                                    \
    X(PRCTL,      "prctl")                                                 \
    /* the master's scheduler places the new thread (or process) */        \
    X(CLONE,      "clone")                                                 \
    /* thread exit through the proxy: CLEARTID, futex wake, counts */      \
    X(EXIT,       "exit")                                                  \
    /* ends every node with the guest's status */                          \
    X(EXIT_GROUP, "exit_group")                                            \
    /* replaces the process image: workers end, the proxy execs */         \
    X(EXEC,       "exec")                                                  \
    /* on the master, after the futex word's page is present there */      \
    X(FUTEX,      "futex")                                                 \
    /* on the master, then the layout change reaches every node */         \
    X(MMAP,       "mmap")                                                  \
    /* on the master, then the disposition reaches every node */           \
    X(SIGACTION,  "sigaction")                                             \
    /* on the master, delivered on the node running the target thread */   \
    X(KILL,       "kill")

typedef enum DistSyscallClass {
#define DIST_SYSCALL_CLASS_ENUM(name, text) DIST_SYSCALL_##name,
    DIST_SYSCALL_CLASS_LIST(DIST_SYSCALL_CLASS_ENUM)
#undef DIST_SYSCALL_CLASS_ENUM
    DIST_SYSCALL__COUNT
} DistSyscallClass;

/*
 * The class of target syscall @num; DIST_SYSCALL_GLOBAL for any number
 * the table does not name, negative and out-of-range ones included.
 * Context: any thread; a table lookup, no lock.
 */
DistSyscallClass dist_syscall_class(int num);

/* "global", "local", ...; "?" for a value outside the enum. */
const char *dist_syscall_class_str(DistSyscallClass cls);

/* Does a call of class @cls run on the calling node (LOCAL, ID, SIGMASK)? */
bool dist_syscall_class_is_local(DistSyscallClass cls);

/*
 * With DQEMU_DUMP_SYSCALL_CLASSES=1, print "NR name class" for every
 * number below 4096 and the target's private calls, then exit(0): the
 * check tests/cli/test_syscall_class.py runs on each binary.  The name
 * is "-" where the table has none (the default, global, numbers).
 * Context: main thread, start-up (dist_start).
 */
void dist_syscall_class_dump_if_asked(void);

#endif /* LINUX_USER_DIST_SYSCALL_CLASS_H */
