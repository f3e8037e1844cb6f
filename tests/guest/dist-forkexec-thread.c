/*
 * Test fork + exec from a secondary thread (which a cluster places on a
 * worker), while main and another thread keep running: the child runs a
 * host program whose output and exit status come back through a pipe and
 * waitpid.  One child forked by the thread is reaped by main, to show the
 * child belongs to the process, not to the thread (or its node).
 *
 * As in forkexec.c: there is no binfmt_misc for guest binaries on the test
 * hosts, so every exec here runs a host program (/bin/echo, /bin/sh),
 * which qemu-user executes natively.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "guest-check.h"
#include "guest-proc.h"

extern char **environ;

/* Reads everything from @fd into @buf (NUL-terminated) and closes it. */
static void read_all(int fd, char *buf, size_t cap)
{
    size_t len = 0;
    ssize_t n;

    while ((n = read(fd, buf + len, cap - 1 - len)) > 0) {
        len += (size_t)n;
    }
    CHECK(n == 0, "read from child: %s", strerror(errno));
    buf[len] = '\0';
    CHECK_SYS(close(fd));
}

/* fork, exec @argv with stdout to a pipe; returns the pid, *out_fd the pipe. */
static pid_t spawn_fork(char *const argv[], int *out_fd)
{
    int fds[2];

    CHECK_SYS(pipe(fds));
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    CHECK_SYS(pid);
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execv(argv[0], argv);
        _exit(127);
    }
    CHECK_SYS(close(fds[1]));
    *out_fd = fds[0];
    return pid;
}

struct thread_result {
    pid_t tid;
    pid_t handoff_pid;          /* forked here, reaped by main */
    int handoff_fd;
};

static volatile int spinner_stop;

/* Keeps running (and touching memory) while the other thread forks. */
static volatile uint64_t spins;

static void *spinner(void *arg)
{
    (void)arg;
    while (!__atomic_load_n(&spinner_stop, __ATOMIC_ACQUIRE)) {
        spins++;
    }
    return NULL;
}

static void *forker(void *arg)
{
    struct thread_result *res = arg;
    char buf[256];
    int fd;

    res->tid = (pid_t)syscall(SYS_gettid);

    /* fork + exec /bin/echo, output through a pipe. */
    char *echo[] = { "/bin/echo", "hello", "from", "a", "thread", NULL };
    pid_t pid = spawn_fork(echo, &fd);
    read_all(fd, buf, sizeof(buf));
    expect_exit(wait_for(pid), 0, "/bin/echo");
    CHECK(strcmp(buf, "hello from a thread\n") == 0, "echo printed '%s'", buf);

    /* fork + exec /bin/sh -c with an exit status and arguments. */
    char *sh[] = { "/bin/sh", "-c", "echo $#:$1:$2; exit 7", "sh", "one two", "three",
                   NULL };
    pid = spawn_fork(sh, &fd);
    read_all(fd, buf, sizeof(buf));
    expect_exit(wait_for(pid), 7, "sh -c 'exit 7'");
    CHECK(strcmp(buf, "2:one two:three\n") == 0, "sh printed '%s'", buf);

    /* vfork + exec (the parent thread is suspended until the exec). */
    pid = vfork();
    CHECK_SYS(pid);
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", "exit 5", (char *)NULL);
        _exit(127);
    }
    expect_exit(wait_for(pid), 5, "vfork + exec");

    /* posix_spawn (clone(CLONE_VM|CLONE_VFORK) in glibc). */
    int fds[2];
    posix_spawn_file_actions_t fa;
    char *spawned[] = { "/bin/echo", "spawned", NULL };
    CHECK_SYS(pipe(fds));
    CHECK_PT(posix_spawn_file_actions_init(&fa));
    CHECK_PT(posix_spawn_file_actions_adddup2(&fa, fds[1], 1));
    CHECK_PT(posix_spawn_file_actions_addclose(&fa, fds[0]));
    CHECK_PT(posix_spawn(&pid, spawned[0], &fa, NULL, spawned, environ));
    CHECK_PT(posix_spawn_file_actions_destroy(&fa));
    CHECK_SYS(close(fds[1]));
    read_all(fds[0], buf, sizeof(buf));
    expect_exit(wait_for(pid), 0, "posix_spawn");
    CHECK(strcmp(buf, "spawned\n") == 0, "posix_spawn child printed '%s'", buf);

    /* A child main will reap. */
    char *handoff[] = { "/bin/sh", "-c", "echo handed over; exit 3", NULL };
    res->handoff_pid = spawn_fork(handoff, &res->handoff_fd);
    return NULL;
}

int main(void)
{
    struct thread_result res = { 0, 0, -1 };
    pthread_t ft, st;
    char buf[256];

    /* No SIGPIPE surprises if a child exits before reading. */
    signal(SIGPIPE, SIG_IGN);
    CHECK_PT(pthread_create(&ft, NULL, forker, &res));
    CHECK_PT(pthread_create(&st, NULL, spinner, NULL));
    CHECK_PT(pthread_join(ft, NULL));
    CHECK(res.tid != getpid(), "the forking thread is the main thread");
    printf("thread: fork+exec echo, sh (exit 7), vfork+exec, posix_spawn ok\n");

    read_all(res.handoff_fd, buf, sizeof(buf));
    CHECK(strcmp(buf, "handed over\n") == 0, "handed-over child printed '%s'", buf);
    expect_exit(wait_for(res.handoff_pid), 3, "child forked by the thread");
    CHECK_ERRNO(waitpid(-1, NULL, WNOHANG), ECHILD);
    printf("main: reaped the thread's child, exit 3\n");

    __atomic_store_n(&spinner_stop, 1, __ATOMIC_RELEASE);
    CHECK_PT(pthread_join(st, NULL));
    guest_pass("dist-forkexec-thread");
    return 0;
}
