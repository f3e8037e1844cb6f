/* Test helpers shared by the guest programs: fail loudly, pass with one line. */
#ifndef DQEMU_GUEST_CHECK_H
#define DQEMU_GUEST_CHECK_H

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/*
 * Every failure goes to stderr with file:line and exits 1, so the harness
 * sees a non-zero status plus a message that says which check broke.
 * stdout is flushed first so the partial transcript is not lost.
 */
static inline void guest_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 3, 4)));

static inline void guest_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;

    fflush(stdout);
    fprintf(stderr, "FAIL %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
    exit(1);
}

/* CHECK(cond, fmt, ...): fail with the message when cond is false. */
#define CHECK(cond, ...)                                    \
    do {                                                    \
        if (!(cond)) {                                      \
            guest_fail(__FILE__, __LINE__, __VA_ARGS__);    \
        }                                                   \
    } while (0)

/* CHECK_SYS(expr): expr is a syscall wrapper returning -1 on error. */
#define CHECK_SYS(expr)                                                     \
    do {                                                                    \
        if ((expr) == -1) {                                                 \
            guest_fail(__FILE__, __LINE__, "%s failed: %s", #expr,          \
                       strerror(errno));                                    \
        }                                                                   \
    } while (0)

/* CHECK_PT(expr): expr returns 0 or an error number (pthread style). */
#define CHECK_PT(expr)                                                      \
    do {                                                                    \
        int guest_rc_ = (expr);                                             \
        if (guest_rc_ != 0) {                                               \
            guest_fail(__FILE__, __LINE__, "%s failed: %s", #expr,          \
                       strerror(guest_rc_));                                \
        }                                                                   \
    } while (0)

/* CHECK_ERRNO(expr, err): expr must fail with -1 and errno == err. */
#define CHECK_ERRNO(expr, err)                                              \
    do {                                                                    \
        errno = 0;                                                          \
        long guest_r_ = (long)(expr);                                       \
        if (guest_r_ != -1 || errno != (err)) {                             \
            guest_fail(__FILE__, __LINE__,                                  \
                       "%s: expected -1/%s, got %ld/%s", #expr,             \
                       strerror(err), guest_r_, strerror(errno));           \
        }                                                                   \
    } while (0)

/* The last stdout line of a successful run; the harness looks for it. */
static inline void guest_pass(const char *name)
{
    printf("PASS %s\n", name);
    fflush(stdout);
}

#endif
