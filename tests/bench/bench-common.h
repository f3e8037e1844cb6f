/*
 * What the guest benchmark programs of tests/bench share: a monotonic
 * clock in seconds and a checked reading of numeric arguments.  Guest
 * code, built with the cross compilers; include after guest-check.h.
 */
#ifndef DQEMU_BENCH_COMMON_H
#define DQEMU_BENCH_COMMON_H

#include <stdlib.h>
#include <time.h>

static inline double bench_now_s(void)
{
    struct timespec ts;

    CHECK_SYS(clock_gettime(CLOCK_MONOTONIC, &ts));
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* @s as a decimal in lo..hi, or the program fails naming @what. */
static inline unsigned bench_parse_uint(const char *s, unsigned long lo,
                                        unsigned long hi, const char *what)
{
    char *end;
    unsigned long v = strtoul(s, &end, 10);

    CHECK(*s != '\0' && *end == '\0' && v >= lo && v <= hi,
          "bad %s '%s' (%lu..%lu)", what, s, lo, hi);
    return (unsigned)v;
}

#endif
