/*
 * cpu-state-selftest.c - DQEMU_SELFTEST_CPU_STATE: the CPU state format
 * tested inside the real emulator, with the real CPU model.
 *
 * The format's per-ISA field lists can only be exercised where QEMU's
 * CPU types exist, so this runs in dist_start(), after the guest is
 * loaded and before its first instruction (tests/cli runs it for each
 * ISA and several -cpu models).  The round trip works on scratch copies of
 * the ArchCPU and never changes the CPU the guest will run on; the copies
 * are never run, only read and written field by field.
 */
#include "qemu/osdep.h"
#include "qemu.h"
#include "hw/core/cpu.h"
#include "cpu-state.h"

#define DIST_SELFTEST_SEED  0x9e3779b97f4a7c15ull

/* Random states per run: enough to meet every SME mode (SM, ZA). */
#define DIST_SELFTEST_ROUNDS  16

typedef struct DistSelftestCpu {
    ArchCPU *cpu;
    TaskState *ts;
} DistSelftestCpu;

static unsigned dist_selftest_rejected;

static void G_NORETURN G_GNUC_PRINTF(1, 2) dist_selftest_fail(
    const char *fmt, ...)
{
    va_list ap;

    fflush(stdout);
    fprintf(stderr, "cpu-state selftest: FAIL: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    exit(EXIT_FAILURE);
}

static DistSelftestCpu dist_selftest_copy(CPUArchState *env, TaskState *ts)
{
    DistSelftestCpu c = {
        .cpu = g_memdup2(env_archcpu(env), sizeof(ArchCPU)),
        .ts = g_memdup2(ts, sizeof(TaskState)),
    };
    return c;
}

static void dist_selftest_free(DistSelftestCpu *c)
{
    g_free(c->cpu);
    g_free(c->ts);
}

static uint8_t *dist_selftest_save(CPUArchState *env, TaskState *ts,
                                   size_t *len)
{
    uint8_t *buf;

    *len = dist_cpu_state_size(env);
    buf = g_malloc(*len);
    if (dist_cpu_state_save(env, ts, buf, *len) != *len) {
        dist_selftest_fail("save did not write the %zu bytes it announced",
                           *len);
    }
    if (dist_cpu_state_save(env, ts, buf, *len - 1) != 0) {
        dist_selftest_fail("save into a buffer one byte short did not "
                           "refuse");
    }
    return buf;
}

/* A save of @c must be @buf, byte for byte. */
static void dist_selftest_expect_state(const char *what, const uint8_t *buf,
                                       size_t len, DistSelftestCpu *c)
{
    uint8_t *again;
    size_t again_len, i;
    char name[64];

    again = dist_selftest_save(&c->cpu->env, c->ts, &again_len);
    for (i = 0; i < MIN(len, again_len); i++) {
        if (buf[i] != again[i]) {
            break;
        }
    }
    if (i < len || i < again_len) {
        dist_cpu_state_describe(&c->cpu->env, i, name, sizeof(name));
        dist_selftest_fail("%s: field %s (byte %zu) differs after save, "
                           "load, save", what, name, i);
    }
    g_free(again);
}

/* Load @buf into @dst; saving @dst must give @buf again. */
static void dist_selftest_round_trip(const char *what, const uint8_t *buf,
                                     size_t len, DistSelftestCpu *dst)
{
    const char *bad_field = NULL;
    int ret;

    ret = dist_cpu_state_load_named(&dst->cpu->env, dst->ts, buf, len,
                                    &bad_field);
    if (ret) {
        dist_selftest_fail("%s: load refused a saved state at %s: %s",
                           what, bad_field, strerror(-ret));
    }
    dist_selftest_expect_state(what, buf, len, dst);
}

static void dist_selftest_expect_refused(const char *what,
                                         DistSelftestCpu *dst,
                                         const uint8_t *buf, size_t len,
                                         int expected)
{
    int ret = dist_cpu_state_load(&dst->cpu->env, dst->ts, buf, len);

    if (ret != expected) {
        dist_selftest_fail("%s: load returned %d (%s), expected %d (%s)",
                           what, ret, ret ? strerror(-ret) : "accepted",
                           expected, strerror(-expected));
    }
    dist_selftest_rejected++;
}

static void dist_selftest_put_le32(uint8_t *p, uint32_t value)
{
    p[0] = value;
    p[1] = value >> 8;
    p[2] = value >> 16;
    p[3] = value >> 24;
}

/*
 * Malformed variants of the valid state @buf must all be refused, and
 * leave @dst (which holds @buf's state) exactly as it was.
 */
static void dist_selftest_malformed(const uint8_t *buf, size_t len,
                                    DistSelftestCpu *dst)
{
    uint8_t *bad = g_malloc(len + 1);
    size_t cut, step = MAX(1, len / 1024), pos;
    unsigned size;
    char what[64];

    /* Truncated, as sent (header length too big) and re-labelled. */
    for (cut = 0; cut < len; cut += cut < 64 ? 1 : step) {
        memcpy(bad, buf, cut);
        snprintf(what, sizeof(what), "truncated to %zu bytes", cut);
        dist_selftest_expect_refused(what, dst, bad, cut, -EBADMSG);
        if (cut >= DIST_CPU_STATE_HEADER_SIZE) {
            dist_selftest_put_le32(bad + 8, cut);
            dist_selftest_expect_refused(what, dst, bad, cut, -EBADMSG);
        }
    }

    memcpy(bad, buf, len);
    bad[len] = 0;
    dist_selftest_put_le32(bad + 8, len + 1);
    dist_selftest_expect_refused("a trailing byte", dst, bad, len + 1,
                                 -EBADMSG);

    memcpy(bad, buf, len);
    bad[0] ^= 0x20;
    dist_selftest_expect_refused("bad magic", dst, bad, len, -EBADMSG);

    memcpy(bad, buf, len);
    bad[4]++;
    dist_selftest_expect_refused("another version", dst, bad, len,
                                 -EPROTONOSUPPORT);

    memcpy(bad, buf, len);
    bad[6] = bad[6] == DIST_CPU_STATE_ISA_ARM ? DIST_CPU_STATE_ISA_RISCV64
                                              : DIST_CPU_STATE_ISA_ARM;
    dist_selftest_expect_refused("another ISA", dst, bad, len, -ENOEXEC);

    /* The first body field is the ISA's optional register file flags. */
    memcpy(bad, buf, len);
    bad[DIST_CPU_STATE_HEADER_SIZE + 3] ^= 0x80;
    dist_selftest_expect_refused("other register files", dst, bad, len,
                                 -EINVAL);

    if (dist_cpu_state_first_narrow_field(&dst->cpu->env, &pos, &size)) {
        memcpy(bad, buf, len);
        memset(bad + pos, 0xff, size);
        dist_cpu_state_describe(&dst->cpu->env, pos, what, sizeof(what));
        dist_selftest_expect_refused(what, dst, bad, len, -EBADMSG);
    }
    g_free(bad);

    /* None of them may have changed the destination. */
    dist_selftest_expect_state("after refused loads", buf, len, dst);
}

static void G_NORETURN dist_selftest_round_trips(CPUArchState *env,
                                                 TaskState *ts)
{
    DistSelftestCpu a = dist_selftest_copy(env, ts);
    DistSelftestCpu b = dist_selftest_copy(env, ts);
    unsigned fields, most_fields = 0;
    size_t len, largest = 0;
    uint8_t *buf;
    int seed;

    /* The real state, as the guest is about to start. */
    buf = dist_selftest_save(env, ts, &len);
    dist_selftest_round_trip("initial state", buf, len, &b);
    g_free(buf);

    /*
     * Random states: B holds the complement of A in every field before
     * the load, so a field the load forgets shows up in B's next save.
     * Different seeds give different vector lengths and SME modes.
     */
    for (seed = 0; seed < DIST_SELFTEST_ROUNDS; seed++) {
        fields = dist_cpu_state_fill(&a.cpu->env, a.ts,
                                     DIST_SELFTEST_SEED * (seed + 1), false);
        dist_cpu_state_fill(&b.cpu->env, b.ts,
                            DIST_SELFTEST_SEED * (seed + 1), true);
        buf = dist_selftest_save(&a.cpu->env, a.ts, &len);
        dist_selftest_round_trip("random state", buf, len, &b);
        if (seed == 0) {
            dist_selftest_malformed(buf, len, &b);
        }
        g_free(buf);
        most_fields = MAX(most_fields, fields);
        largest = MAX(largest, len);
    }

    printf("cpu-state selftest: %u fields ok (largest state %zu bytes, "
           "%u malformed states refused)\n",
           most_fields, largest, dist_selftest_rejected);
    dist_selftest_free(&a);
    dist_selftest_free(&b);
    exit(EXIT_SUCCESS);
}

bool dist_cpu_state_selftest_every_syscall;

/*
 * At a syscall, the point where a thread can move: save, overwrite every
 * shipped field with garbage (other vector lengths, SME modes, signal
 * masks), load.  A field the load does not restore changes what the guest
 * does next.
 */
void dist_cpu_state_selftest_syscall(CPUArchState *env)
{
    static uint64_t count;
    TaskState *ts = get_task_state(env_cpu(env));
    const char *bad_field = NULL;
    uint8_t *buf;
    size_t len;
    int ret;

    buf = dist_selftest_save(env, ts, &len);
    dist_cpu_state_fill(env, ts,
                        DIST_SELFTEST_SEED * qatomic_fetch_inc(&count), false);
    ret = dist_cpu_state_load_named(env, ts, buf, len, &bad_field);
    if (ret) {
        dist_selftest_fail("reload at a syscall refused at %s: %s",
                           bad_field, strerror(-ret));
    }
    g_free(buf);
}

/* What a worker will do: a reset CPU of the same model, then the load. */
static void dist_selftest_reload(CPUArchState *env, TaskState *ts)
{
    const char *bad_field = NULL;
    uint8_t *buf;
    size_t len;
    int ret;

    buf = dist_selftest_save(env, ts, &len);
    cpu_reset(env_cpu(env));
    sigemptyset(&ts->signal_mask);
    memset(&ts->sigaltstack_used, 0, sizeof(ts->sigaltstack_used));
    ret = dist_cpu_state_load_named(env, ts, buf, len, &bad_field);
    if (ret) {
        dist_selftest_fail("reload refused at %s: %s", bad_field,
                           strerror(-ret));
    }
    g_free(buf);
    fprintf(stderr, "cpu-state selftest: reloaded %zu bytes\n", len);
}

void dist_cpu_state_selftest(CPUArchState *env, const char *mode)
{
    TaskState *ts = get_task_state(env_cpu(env));

    if (!strcmp(mode, "1")) {
        dist_selftest_round_trips(env, ts);
    } else if (!strcmp(mode, "reload")) {
        dist_selftest_reload(env, ts);
    } else if (!strcmp(mode, "syscalls")) {
        dist_selftest_reload(env, ts);
        dist_cpu_state_selftest_every_syscall = true;
    } else {
        dist_selftest_fail("DQEMU_SELFTEST_CPU_STATE: '%s' is not 1, "
                           "reload or syscalls", mode);
    }
}
