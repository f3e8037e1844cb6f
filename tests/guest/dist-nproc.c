/*
 * Test that the guest's three views of the CPU count agree: sysconf
 * (_SC_NPROCESSORS_ONLN), the "processor" lines of /proc/cpuinfo and
 * sched_getaffinity, seen from main and from a second thread (which may
 * run on another node).  With DQEMU_EXPECT_CPUS set (the dist harness
 * passes the cluster's CPU count) all of them must equal it.  Prints
 * nothing that depends on the host.
 *
 * Without DQEMU_EXPECT_CPUS the affinity mask may hold fewer CPUs than are
 * online (a host run under taskset or in a cpuset), never more.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdint.h>

#include "guest-check.h"

struct view {
    long sysconf_cpus;
    long cpuinfo_cpus;      /* -1: /proc/cpuinfo not readable */
    long affinity_cpus;
};

static long count_cpuinfo(void)
{
    char line[512];
    long n = 0;
    FILE *f = fopen("/proc/cpuinfo", "r");

    if (!f) {
        return -1;
    }
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, "processor", 9) == 0 &&
            (line[9] == '\t' || line[9] == ' ' || line[9] == ':')) {
            n++;
        }
    }
    CHECK(!ferror(f), "reading /proc/cpuinfo failed");
    fclose(f);
    return n;
}

static long count_affinity(void)
{
    /* Large enough for any cluster; the kernel wants a multiple of longs. */
    size_t size = CPU_ALLOC_SIZE(4096);
    cpu_set_t *set = CPU_ALLOC(4096);
    long n;

    CHECK(set != NULL, "CPU_ALLOC");
    CPU_ZERO_S(size, set);
    CHECK_SYS(sched_getaffinity(0, size, set));
    n = CPU_COUNT_S(size, set);
    CPU_FREE(set);
    return n;
}

static void take_view(struct view *v)
{
    v->sysconf_cpus = sysconf(_SC_NPROCESSORS_ONLN);
    v->cpuinfo_cpus = count_cpuinfo();
    v->affinity_cpus = count_affinity();
}

static void check_view(const struct view *v, const char *who, long expect)
{
    CHECK(v->sysconf_cpus >= 1, "%s: sysconf(_SC_NPROCESSORS_ONLN) = %ld", who,
          v->sysconf_cpus);
    CHECK(v->affinity_cpus >= 1, "%s: sched_getaffinity counts %ld CPUs", who,
          v->affinity_cpus);
    if (v->cpuinfo_cpus >= 0) {
        CHECK(v->cpuinfo_cpus == v->sysconf_cpus,
              "%s: /proc/cpuinfo lists %ld processors, sysconf says %ld", who,
              v->cpuinfo_cpus, v->sysconf_cpus);
    }
    if (expect > 0) {
        CHECK(v->sysconf_cpus == expect, "%s: sysconf says %ld CPUs, expected %ld",
              who, v->sysconf_cpus, expect);
        CHECK(v->affinity_cpus == expect,
              "%s: sched_getaffinity counts %ld CPUs, expected %ld", who,
              v->affinity_cpus, expect);
    } else {
        CHECK(v->affinity_cpus <= v->sysconf_cpus,
              "%s: sched_getaffinity counts %ld CPUs, more than the %ld online",
              who, v->affinity_cpus, v->sysconf_cpus);
    }
}

static void *thread_view(void *arg)
{
    take_view(arg);
    return NULL;
}

int main(void)
{
    const char *env = getenv("DQEMU_EXPECT_CPUS");
    long expect = 0;
    struct view main_view, thr_view;
    pthread_t t;

    if (env && *env) {
        char *end;
        expect = strtol(env, &end, 10);
        CHECK(*end == '\0' && expect >= 1, "bad DQEMU_EXPECT_CPUS '%s'", env);
    }

    take_view(&main_view);
    check_view(&main_view, "main", expect);
    printf("main: sysconf, /proc/cpuinfo and affinity agree\n");

    CHECK_PT(pthread_create(&t, NULL, thread_view, &thr_view));
    CHECK_PT(pthread_join(t, NULL));
    check_view(&thr_view, "thread", expect);
    CHECK(thr_view.sysconf_cpus == main_view.sysconf_cpus &&
          thr_view.cpuinfo_cpus == main_view.cpuinfo_cpus &&
          thr_view.affinity_cpus == main_view.affinity_cpus,
          "thread sees %ld/%ld/%ld CPUs, main %ld/%ld/%ld",
          thr_view.sysconf_cpus, thr_view.cpuinfo_cpus, thr_view.affinity_cpus,
          main_view.sysconf_cpus, main_view.cpuinfo_cpus, main_view.affinity_cpus);
    printf("thread: same CPU count as main\n");
    guest_pass("dist-nproc");
    return 0;
}
