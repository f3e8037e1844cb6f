/* Test that argv, the environment, the aux vector and exit statuses reach the guest intact. */
#include <pthread.h>
#include <stdint.h>
#include <sys/auxv.h>

#include "guest-check.h"

extern char **environ;

/*
 * Directive arguments (all other arguments are plain data):
 *   --env=NAME=VALUE     getenv(NAME) must equal VALUE, and NAME=VALUE must
 *                        appear exactly once in environ
 *   --unset=NAME         NAME must not be in the environment
 *   --exit-from-thread   call exit() from a second thread while main is
 *                        blocked in pthread_join
 *
 * The exit status is a hash of every argument after argv[0] (directives
 * included), so a dropped, reordered or mangled argument changes it.  The
 * harness computes the same hash independently:
 *   h = 0; for each arg: for each byte b: h = (h * 31 + b) % 65521;
 *          then h = (h * 31 + 1) % 65521     (argument separator)
 *   status = 3 + h % 200
 */
static int compute_status(int argc, char **argv)
{
    uint32_t h = 0;

    for (int i = 1; i < argc; i++) {
        for (const unsigned char *p = (const unsigned char *)argv[i]; *p; p++) {
            h = (h * 31 + *p) % 65521;
        }
        h = (h * 31 + 1) % 65521;
    }
    return 3 + (int)(h % 200);
}

/* FNV-1a, used to print long arguments compactly. */
static uint32_t fnv1a(const char *s)
{
    uint32_t h = 2166136261u;

    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        h = (h ^ *p) * 16777619u;
    }
    return h;
}

static void check_env(const char *spec)
{
    const char *eq = strchr(spec, '=');
    char name[256];
    int count = 0;

    CHECK(eq != NULL && (size_t)(eq - spec) < sizeof(name),
          "bad --env directive '%s'", spec);
    memcpy(name, spec, (size_t)(eq - spec));
    name[eq - spec] = '\0';

    const char *val = getenv(name);
    CHECK(val != NULL, "environment variable %s is missing", name);
    CHECK(strcmp(val, eq + 1) == 0, "%s='%s', expected '%s'", name, val, eq + 1);

    /* getenv stops at the first match; make sure there is only one. */
    for (char **e = environ; *e; e++) {
        if (strncmp(*e, name, strlen(name)) == 0 && (*e)[strlen(name)] == '=') {
            count++;
            CHECK(strcmp(*e, spec) == 0, "environ entry '%s' != '%s'", *e, spec);
        }
    }
    CHECK(count == 1, "%s appears %d times in environ", name, count);
    printf("env %s ok (%zu bytes)\n", name, strlen(val));
}

static void check_unset(const char *name)
{
    CHECK(getenv(name) == NULL, "%s should not be set", name);
    printf("env %s absent ok\n", name);
}

static int atexit_order;

/*
 * Registered first, so it runs last (atexit handlers are LIFO).  It prints
 * the PASS line, which therefore proves the handlers ran, in order, on the
 * exit path (also when exit() is called from a second thread).
 */
static void atexit_first(void)
{
    if (atexit_order != 2) {
        fflush(stdout);
        fprintf(stderr, "FAIL: atexit handlers ran out of order (%d)\n",
                atexit_order);
        _exit(1);
    }
    printf("atexit handler 1\n");
    guest_pass("args");
}

static void atexit_second(void)
{
    atexit_order = 2;
    printf("atexit handler 2\n");
}

static void *exit_thread(void *arg)
{
    int status = (int)(intptr_t)arg;

    printf("exiting with status %d from a second thread\n", status);
    exit(status);
}

int main(int argc, char **argv)
{
    int exit_from_thread = 0;

    CHECK(argc >= 1, "argc=%d", argc);
    CHECK(argv[argc] == NULL, "argv[argc] is not NULL");
    CHECK(argv[0] != NULL && argv[0][0] != '\0', "argv[0] is empty");

    printf("argc=%d\n", argc);
    for (int i = 1; i < argc; i++) {
        size_t len = strlen(argv[i]);

        if (len <= 64) {
            printf("argv[%d]=<%s> len=%zu\n", i, argv[i], len);
        } else {
            printf("argv[%d]=<long> len=%zu fnv=%08x\n", i, len, fnv1a(argv[i]));
        }
    }

    for (int i = 1; i < argc; i++) {
        if (strncmp(argv[i], "--env=", 6) == 0) {
            check_env(argv[i] + 6);
        } else if (strncmp(argv[i], "--unset=", 8) == 0) {
            check_unset(argv[i] + 8);
        } else if (strcmp(argv[i], "--exit-from-thread") == 0) {
            exit_from_thread = 1;
        }
    }

    /* The aux vector is built by the loader (qemu here); sanity-check it. */
    long pagesz = sysconf(_SC_PAGESIZE);
    CHECK(pagesz > 0 && (pagesz & (pagesz - 1)) == 0, "bad page size %ld", pagesz);
    CHECK(getauxval(AT_PAGESZ) == (unsigned long)pagesz,
          "AT_PAGESZ %lu != sysconf %ld", getauxval(AT_PAGESZ), pagesz);
    CHECK(getauxval(AT_RANDOM) != 0, "AT_RANDOM missing");
    CHECK(getauxval(AT_PHDR) != 0, "AT_PHDR missing");
    CHECK(getauxval(AT_ENTRY) != 0, "AT_ENTRY missing");
    CHECK(getauxval(AT_UID) == (unsigned long)getuid(), "AT_UID != getuid()");
    CHECK(getauxval(AT_GID) == (unsigned long)getgid(), "AT_GID != getgid()");
    printf("auxv ok\n");

    CHECK(atexit(atexit_first) == 0, "atexit failed");
    CHECK(atexit(atexit_second) == 0, "atexit failed");

    int status = compute_status(argc, argv);
    printf("exit status %d\n", status);

    if (exit_from_thread) {
        pthread_t t;

        CHECK_PT(pthread_create(&t, NULL, exit_thread, (void *)(intptr_t)status));
        pthread_join(t, NULL);
        /* exit() in the other thread must end the process before this. */
        fprintf(stderr, "FAIL: pthread_join returned after exit() in thread\n");
        _exit(1);
    }
    return status;
}
