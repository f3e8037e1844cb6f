/*
 * guest-proc.h - fork, wait and exit-status checks shared by the guest
 * programs that start processes (forkexec.c, dist-forkexec-thread.c).
 */
#ifndef GUEST_PROC_H
#define GUEST_PROC_H

#include <sys/wait.h>

#include "guest-check.h"

static inline pid_t fork_checked(void)
{
    /* Unflushed stdio data would otherwise be written by both processes. */
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    CHECK_SYS(pid);
    return pid;
}

static inline int wait_for(pid_t pid)
{
    int status;
    pid_t r;

    do {
        r = waitpid(pid, &status, 0);
    } while (r == -1 && errno == EINTR);
    CHECK(r == pid, "waitpid(%d) returned %d: %s", (int)pid, (int)r, strerror(errno));
    return status;
}

static inline void expect_exit(int status, int code, const char *what)
{
    CHECK(WIFEXITED(status), "%s: not a normal exit (status %#x)", what, status);
    CHECK(WEXITSTATUS(status) == code, "%s: exit code %d, want %d", what,
          WEXITSTATUS(status), code);
}

static inline void expect_signal(int status, int sig, const char *what)
{
    CHECK(WIFSIGNALED(status), "%s: not killed by a signal (status %#x)", what, status);
    CHECK(WTERMSIG(status) == sig, "%s: killed by %d, want %d", what,
          WTERMSIG(status), sig);
}

#endif /* GUEST_PROC_H */
