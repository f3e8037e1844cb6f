/* Test that fork, exec of host programs, and waitpid status reporting work. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "guest-check.h"
#include "guest-proc.h"

extern char **environ;

/*
 * There is no binfmt_misc for guest binaries on the test hosts, so every
 * exec here runs a host program (/bin/echo, /bin/sh), which qemu-user
 * executes natively.
 */

static int global_value = 1234;

/* Runs argv with stdout captured; returns the wait status, output in buf. */
static int run_capture(char *const argv[], char *const envp[], char *buf, size_t cap)
{
    int fds[2];
    size_t len = 0;
    ssize_t n;

    CHECK_SYS(pipe(fds));
    pid_t pid = fork_checked();
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        if (envp) {
            execve(argv[0], argv, envp);
        } else {
            execv(argv[0], argv);
        }
        _exit(127);
    }
    CHECK_SYS(close(fds[1]));
    while ((n = read(fds[0], buf + len, cap - 1 - len)) > 0) {
        len += (size_t)n;
    }
    CHECK(n == 0, "read from child: %s", strerror(errno));
    buf[len] = '\0';
    CHECK_SYS(close(fds[0]));
    return wait_for(pid);
}

static void test_fork_exit(void)
{
    global_value = 5678;
    pid_t parent = getpid();
    pid_t pid = fork_checked();
    if (pid == 0) {
        /* Child sees the parent's memory as of the fork, then its own copy. */
        if (global_value != 5678 || getppid() != parent || getpid() == parent) {
            _exit(99);
        }
        global_value = 1;
        _exit(42);
    }
    CHECK(pid != parent, "fork returned our own pid");
    expect_exit(wait_for(pid), 42, "fork/_exit(42)");
    CHECK(global_value == 5678, "child's write leaked into the parent");
    CHECK_ERRNO(waitpid(pid, NULL, 0), ECHILD);
    printf("fork: child exit code 42, memory copied not shared\n");
}

static void test_exec_echo(void)
{
    char buf[256];
    char *argv[] = { "/bin/echo", "hello", "from", "echo", NULL };

    expect_exit(run_capture(argv, NULL, buf, sizeof(buf)), 0, "/bin/echo");
    CHECK(strcmp(buf, "hello from echo\n") == 0, "echo printed '%s'", buf);
    printf("exec /bin/echo: output '%.*s'\n", (int)strlen(buf) - 1, buf);
}

static void test_exec_sh(void)
{
    char buf[256];
    char *exit7[] = { "/bin/sh", "-c", "exit 7", NULL };
    char *envtest[] = { "/bin/sh", "-c", "printf '%s|%s' \"$DQ_A\" \"$DQ_B\"", NULL };
    char *envp[] = { "DQ_A=first value", "DQ_B=second", "PATH=/usr/bin:/bin", NULL };
    char *args[] = { "/bin/sh", "-c", "echo $#:$1:$2", "sh", "one two", "three", NULL };

    expect_exit(run_capture(exit7, NULL, buf, sizeof(buf)), 7, "sh -c 'exit 7'");
    expect_exit(run_capture(envtest, envp, buf, sizeof(buf)), 0, "sh env");
    CHECK(strcmp(buf, "first value|second") == 0, "sh saw env '%s'", buf);
    expect_exit(run_capture(args, NULL, buf, sizeof(buf)), 0, "sh args");
    CHECK(strcmp(buf, "2:one two:three\n") == 0, "sh saw args '%s'", buf);
    printf("exec /bin/sh: exit 7, environment and arguments passed\n");
}

static void test_signal_deaths(void)
{
    pid_t pid = fork_checked();
    if (pid == 0) {
        signal(SIGTERM, SIG_DFL);
        kill(getpid(), SIGTERM);
        _exit(1);
    }
    expect_signal(wait_for(pid), SIGTERM, "self SIGTERM");

    pid = fork_checked();
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", "kill -9 $$", (char *)NULL);
        _exit(127);
    }
    expect_signal(wait_for(pid), SIGKILL, "sh kill -9 $$");

    /* A child blocked forever, killed by the parent. */
    pid = fork_checked();
    if (pid == 0) {
        for (;;) {
            pause();
        }
    }
    CHECK(waitpid(pid, NULL, WNOHANG) == 0, "WNOHANG reaped a live child");
    CHECK_SYS(kill(pid, SIGUSR1));
    expect_signal(wait_for(pid), SIGUSR1, "parent sent SIGUSR1");
    printf("signal deaths: SIGTERM, SIGKILL, SIGUSR1 reported\n");
}

static void test_exec_errors(void)
{
    char path[4096];
    const char *tmp = getenv("TMPDIR");
    int fds[2];

    CHECK(snprintf(path, sizeof(path), "%s/dqemu-noexec-XXXXXX",
                   tmp && *tmp ? tmp : "/tmp") < (int)sizeof(path), "TMPDIR too long");
    int fd = mkstemp(path);
    CHECK_SYS(fd);
    CHECK(write(fd, "#!/bin/sh\nexit 0\n", 17) == 17, "write script");
    CHECK_SYS(close(fd));
    CHECK_SYS(chmod(path, 0600));

    /* The child reports execve's errno through a close-on-exec pipe. */
    const char *targets[2] = { "/nonexistent/dqemu-no-such-program", path };
    int want[2] = { ENOENT, EACCES };
    for (int i = 0; i < 2; i++) {
        int err = 0;
        CHECK_SYS(pipe2(fds, O_CLOEXEC));
        pid_t pid = fork_checked();
        if (pid == 0) {
            char *argv[] = { (char *)targets[i], NULL };
            execv(targets[i], argv);
            err = errno;
            if (write(fds[1], &err, sizeof(err)) != (ssize_t)sizeof(err)) {
                _exit(2);
            }
            _exit(0);
        }
        CHECK_SYS(close(fds[1]));
        CHECK(read(fds[0], &err, sizeof(err)) == (ssize_t)sizeof(err), "no errno from child");
        CHECK_SYS(close(fds[0]));
        expect_exit(wait_for(pid), 0, "exec error child");
        CHECK(err == want[i], "exec of %s failed with %s, want %s", i ? "non-executable" :
              "missing file", strerror(err), strerror(want[i]));
    }

    /* Make it executable and the same file runs. */
    CHECK_SYS(chmod(path, 0700));
    pid_t pid = fork_checked();
    if (pid == 0) {
        execl(path, path, (char *)NULL);
        _exit(127);
    }
    expect_exit(wait_for(pid), 0, "script after chmod +x");
    CHECK_SYS(unlink(path));
    printf("exec errors: ENOENT, EACCES; script runs after chmod\n");
}

static void test_many_children(void)
{
    enum { N = 8 };
    pid_t pids[N];
    int seen[N] = { 0 };

    for (int i = 0; i < N; i++) {
        pids[i] = fork_checked();
        if (pids[i] == 0) {
            _exit(10 + i);
        }
    }
    /* Reap in whatever order they finish; match statuses by pid. */
    for (int k = 0; k < N; k++) {
        int status;
        pid_t r = wait(&status);
        CHECK_SYS(r);
        int idx = -1;
        for (int i = 0; i < N; i++) {
            if (pids[i] == r) {
                idx = i;
            }
        }
        CHECK(idx >= 0, "wait returned an unknown pid");
        CHECK(!seen[idx], "child %d reaped twice", idx);
        seen[idx] = 1;
        expect_exit(status, 10 + idx, "one of many children");
    }
    CHECK_ERRNO(wait(NULL), ECHILD);
    printf("many children: %d exit codes matched to their pids\n", N);
}

static void test_spawn_system_popen(void)
{
    char buf[256];
    pid_t pid;
    int fds[2];
    posix_spawn_file_actions_t fa;
    char *argv[] = { "/bin/echo", "spawned", NULL };

    CHECK_SYS(pipe(fds));
    CHECK_PT(posix_spawn_file_actions_init(&fa));
    CHECK_PT(posix_spawn_file_actions_adddup2(&fa, fds[1], 1));
    CHECK_PT(posix_spawn_file_actions_addclose(&fa, fds[0]));
    fflush(stdout);
    CHECK_PT(posix_spawn(&pid, argv[0], &fa, NULL, argv, environ));
    CHECK_PT(posix_spawn_file_actions_destroy(&fa));
    CHECK_SYS(close(fds[1]));
    ssize_t n = read(fds[0], buf, sizeof(buf) - 1);
    CHECK(n == 8, "posix_spawn child wrote %zd bytes", n);
    buf[n] = '\0';
    CHECK(strcmp(buf, "spawned\n") == 0, "posix_spawn output '%s'", buf);
    CHECK_SYS(close(fds[0]));
    expect_exit(wait_for(pid), 0, "posix_spawn");

    fflush(stdout);
    int st = system("exit 3");
    expect_exit(st, 3, "system(\"exit 3\")");

    FILE *p = popen("/bin/echo popen works", "r");
    CHECK(p != NULL, "popen: %s", strerror(errno));
    CHECK(fgets(buf, sizeof(buf), p) != NULL, "popen read");
    CHECK(strcmp(buf, "popen works\n") == 0, "popen output '%s'", buf);
    expect_exit(pclose(p), 0, "pclose");

    pid = vfork();
    CHECK_SYS(pid);
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", "exit 5", (char *)NULL);
        _exit(127);
    }
    expect_exit(wait_for(pid), 5, "vfork+exec");
    printf("posix_spawn, system, popen, vfork ok\n");
}

/* ---- fork while another thread is running ---- */

static volatile int spinner_stop;

static void *spinner(void *arg)
{
    uint64_t n = 0;

    (void)arg;
    while (!__atomic_load_n(&spinner_stop, __ATOMIC_ACQUIRE)) {
        n++;
    }
    return (void *)(uintptr_t)(n != 0);
}

static void test_fork_threaded(void)
{
    pthread_t t;
    void *ret;

    CHECK_PT(pthread_create(&t, NULL, spinner, NULL));
    pid_t pid = fork_checked();
    if (pid == 0) {
        /* Only the forking thread exists; malloc and stdio still work. */
        char *p = malloc(1000);
        if (!p) {
            _exit(3);
        }
        snprintf(p, 1000, "child %d", 1);
        free(p);
        execl("/bin/sh", "sh", "-c", "exit 9", (char *)NULL);
        _exit(127);
    }
    expect_exit(wait_for(pid), 9, "fork from threaded process");
    __atomic_store_n(&spinner_stop, 1, __ATOMIC_RELEASE);
    CHECK_PT(pthread_join(t, &ret));
    printf("fork with a running thread: child exec'd, exit 9\n");
}

/* ---- stdin of a child comes from our pipe ---- */

static void test_child_stdin(void)
{
    int fds[2];

    CHECK_SYS(pipe(fds));
    pid_t pid = fork_checked();
    if (pid == 0) {
        dup2(fds[0], 0);
        close(fds[0]);
        close(fds[1]);
        /* The exit code is the length of the line the shell read. */
        execl("/bin/sh", "sh", "-c", "read x; exit ${#x}", (char *)NULL);
        _exit(127);
    }
    CHECK_SYS(close(fds[0]));
    CHECK(write(fds[1], "eleven char\n", 12) == 12, "write to child");
    CHECK_SYS(close(fds[1]));
    expect_exit(wait_for(pid), 11, "sh read from pipe");
    printf("child stdin: shell read an 11-char line\n");
}

int main(void)
{
    /* No SIGPIPE surprises if a child exits before reading. */
    signal(SIGPIPE, SIG_IGN);
    test_fork_exit();
    test_exec_echo();
    test_exec_sh();
    test_signal_deaths();
    test_exec_errors();
    test_many_children();
    test_spawn_system_popen();
    test_fork_threaded();
    test_child_stdin();
    guest_pass("forkexec");
    return 0;
}
