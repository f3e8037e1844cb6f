/*
 * dist-cpus.c - the guest sees the cluster's CPUs, not one host's.
 *
 * A program sizes its thread pool from the CPU count; on a cluster that
 * count must be nodes x CPUs per node (--cpus-per-node, default this
 * host's), or the program never uses the other nodes.  glibc learns the
 * count from sched_getaffinity(), /sys/devices/system/cpu/online and
 * /proc/cpuinfo, so those three answer for the cluster.  On one node
 * without --cpus-per-node nothing changes.
 *
 * /proc/cpuinfo keeps whatever the guest would have read (QEMU's own text
 * for some targets, the host's for others): its first processor block is
 * repeated once per cluster CPU with the "processor" line renumbered.
 */
#include "qemu/osdep.h"
#include "qemu.h"
#include "user-internals.h"
#include "dist-hooks.h"
#include "dist-internal.h"

static bool dist_cpus_changed(void)
{
    return dist_node_count > 1 || dist_options.cpus_per_node != 0;
}

unsigned dist_cluster_cpus(void)
{
    long host = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned per = dist_options.cpus_per_node ? dist_options.cpus_per_node
                                              : (unsigned)MAX(host, 1);

    return per * MAX(dist_node_count, 1u);
}

/* An fd reading @text from the start (closed on exec like any open). */
static int dist_text_fd(const char *text, size_t len)
{
    int fd = memfd_create("dqemu-cpus", MFD_CLOEXEC);

    if (fd < 0) {
        return -errno;
    }
    if (write(fd, text, len) != (ssize_t)len || lseek(fd, 0, SEEK_SET) != 0) {
        int e = errno;

        close(fd);
        return -e;
    }
    return fd;
}

/* The cluster's /proc/cpuinfo made from the first block of @orig. */
static char *dist_cpuinfo_text(const char *orig, size_t *len)
{
    const char *end = strstr(orig, "\n\n");
    size_t block_len = end ? (size_t)(end - orig) + 1 : strlen(orig);
    g_autofree char *block = g_strndup(orig, block_len);
    GString *out = g_string_new(NULL);
    char **lines = g_strsplit(block, "\n", -1);
    unsigned n = dist_cluster_cpus(), i;

    for (i = 0; i < n; i++) {
        for (char **l = lines; *l; l++) {
            if (**l == '\0') {
                continue;
            }
            if (g_str_has_prefix(*l, "processor")) {
                g_string_append_printf(out, "processor\t: %u\n", i);
            } else {
                g_string_append_printf(out, "%s\n", *l);
            }
        }
        g_string_append_c(out, '\n');
    }
    g_strfreev(lines);
    *len = out->len;
    return g_string_free(out, false);
}

/* Read all of host fd @fd (closing it). */
static char *dist_slurp(int fd)
{
    GString *s = g_string_new(NULL);
    char buf[4096];
    ssize_t n;

    while ((n = read(fd, buf, sizeof(buf))) > 0) {
        g_string_append_len(s, buf, n);
    }
    close(fd);
    return g_string_free(s, false);
}

static abi_long dist_cpus_openat(CPUArchState *env, int num, abi_long *a,
                          bool *handled)
{
    char *p;
    abi_long ret = 0;
    const char *path;
    bool online, cpuinfo;

    *handled = false;
    if (!dist_cpus_changed()) {
        return 0;
    }
    p = lock_user_string(a[1]);
    if (p == NULL) {
        return 0;
    }
    path = p;
    online = !strcmp(path, "/sys/devices/system/cpu/online") ||
             !strcmp(path, "/sys/devices/system/cpu/present") ||
             !strcmp(path, "/sys/devices/system/cpu/possible");
    cpuinfo = !strcmp(path, "/proc/cpuinfo");
    unlock_user(p, a[1], 0);
    if (!online && !cpuinfo) {
        return 0;
    }
    *handled = true;
    if (online) {
        g_autofree char *text = g_strdup_printf("0-%u\n",
                                                dist_cluster_cpus() - 1);

        ret = dist_text_fd(text, strlen(text));
    } else {
        /* What the guest would have read, then widened. */
        abi_long fd = dist_syscall_fn(env, num, a[0], a[1], a[2], a[3],
                                      0, 0, 0, 0);
        g_autofree char *orig = NULL;
        g_autofree char *text = NULL;
        size_t len;

        if (fd < 0) {
            return fd;
        }
        orig = dist_slurp(fd);
        text = dist_cpuinfo_text(orig, &len);
        ret = dist_text_fd(text, len);
    }
    /* memfd or write failed: the host is out of memory or of fds. */
    return ret < 0 ? (ret == -EMFILE ? -TARGET_EMFILE : -TARGET_ENOMEM) : ret;
}

static abi_long dist_cpus_getaffinity(abi_long *a, bool *handled)
{
    abi_ulong len = a[1];
    unsigned n = dist_cluster_cpus();
    size_t want = ROUND_UP(DIV_ROUND_UP(n, 8), sizeof(abi_ulong));
    uint8_t *mask;
    unsigned i;

    *handled = false;
    if (!dist_cpus_changed() ||
        (a[0] != 0 && (uint32_t)a[0] != dist_master_pid &&
         (uint32_t)a[0] != dist_thread_tid())) {
        return 0;
    }
    *handled = true;
    if (len < want || (len & (sizeof(abi_ulong) - 1))) {
        return -TARGET_EINVAL;
    }
    mask = lock_user(VERIFY_WRITE, a[2], want, 0);
    if (mask == NULL) {
        return -TARGET_EFAULT;
    }
    memset(mask, 0, want);
    /* Bit i of the mask is CPU i, in the guest's word order. */
    for (i = 0; i < n; i++) {
        size_t word = i / (8 * sizeof(abi_ulong));
        unsigned bit = i % (8 * sizeof(abi_ulong));
        abi_ulong *w = (abi_ulong *)mask + word;

        *w = tswapal(tswapal(*w) | ((abi_ulong)1 << bit));
    }
    unlock_user(mask, a[2], want);
    return want;
}

abi_long dist_cpus_intercept(CPUArchState *env, int num, abi_long *a,
                             bool *handled)
{
    *handled = false;
#ifdef TARGET_NR_openat
    if (num == TARGET_NR_openat) {
        return dist_cpus_openat(env, num, a, handled);
    }
#endif
#ifdef TARGET_NR_sched_getaffinity
    if (num == TARGET_NR_sched_getaffinity) {
        return dist_cpus_getaffinity(a, handled);
    }
#endif
    return 0;
}
