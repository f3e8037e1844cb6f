/*
 * dist-simhost.c - on a simulated host, guest threads get the host's CPU.
 *
 * tests/cluster/simcluster.py holds each simulated host to a CPU quota (a
 * cgroup).  A CFS quota is a fair model of a slow CPU for throughput but
 * not for answering: once the guest threads have used a period's quota,
 * everything in the cgroup sleeps to the end of the period (4 ms of 5 at
 * 1/5 CPU), so a page request waits that long at every node it crosses,
 * where a real slow host answers in tens of microseconds.  Measured on
 * PARSEC at 1/5 CPU: remote faults of 8-65 ms, against 0.2-1 ms without
 * quotas.  So when the simulator asks for it (DQEMU_SIM_GUEST_CGROUP, set
 * by nothing else), the process starts in a service cgroup of its own
 * quota (DQEMU_SIM_CGROUP, joined by the simulator's wrapper) and each
 * guest thread moves itself into the host's guest cgroup before it runs
 * guest code; a thread that turns into the proxy of a remote thread moves
 * back.  Threads started later inherit their creator's cgroup, which is
 * right for both kinds.  Outside the simulator this does nothing.
 */
#include "qemu/osdep.h"
#include "qemu.h"
#include "dist-internal.h"

/* Write this thread's id into the thread list of every directory in
 * @dirs (colon-separated; cgroup v1's "tasks" or v2's "cgroup.threads"). */
static void simhost_join(const char *var)
{
    const char *dirs = getenv(var);
    g_auto(GStrv) list = NULL;
    pid_t tid = gettid();
    unsigned i;

    if (dirs == NULL || *dirs == '\0') {
        return;
    }
    list = g_strsplit(dirs, ":", -1);
    for (i = 0; list[i] != NULL; i++) {
        g_autofree char *tasks = g_build_filename(list[i], "tasks", NULL);
        g_autofree char *line = g_strdup_printf("%d\n", (int)tid);
        FILE *f;

        if (access(tasks, F_OK) != 0) {
            g_free(tasks);
            tasks = g_build_filename(list[i], "cgroup.threads", NULL);
        }
        f = fopen(tasks, "w");
        if (f == NULL || fputs(line, f) < 0 || fclose(f) != 0) {
            dist_fatal("%s: cannot move thread %d into %s: %s", var, (int)tid,
                       tasks, strerror(errno));
        }
    }
}

void dist_simhost_enter_guest(void)
{
    if (getenv("DQEMU_SIM_GUEST_CGROUP") != NULL) {
        simhost_join("DQEMU_SIM_GUEST_CGROUP");
    }
}

void dist_simhost_enter_service(void)
{
    /* The service cgroup is the one the wrapper joined, but only when
     * guest threads have a cgroup of their own is there a move to undo. */
    if (getenv("DQEMU_SIM_GUEST_CGROUP") != NULL) {
        simhost_join("DQEMU_SIM_CGROUP");
    }
}
