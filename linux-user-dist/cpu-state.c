/*
 * cpu-state.c - the ISA-independent half of the CPU state format.
 *
 * Owns the header, the field primitive every per-ISA visit goes through
 * (encode, bounds-checked decode, range check, self-test fill), and the
 * part of a thread's state that lives in TaskState rather than env: the
 * blocked-signal mask and the sigaltstack.  The wire format is described
 * in cpu-state.h.
 */
#include "qemu/osdep.h"
#include "qemu.h"
#include "user-internals.h"
#include "signal-common.h"
#include "cpu-state.h"

QEMU_BUILD_BUG_ON(TARGET_NSIG > 64);

static void dist_cpu_put_le(uint8_t *p, unsigned size, uint64_t value)
{
    unsigned i;

    for (i = 0; i < size; i++) {
        p[i] = value >> (8 * i);
    }
}

static uint64_t dist_cpu_get_le(const uint8_t *p, unsigned size)
{
    uint64_t value = 0;
    unsigned i;

    for (i = 0; i < size; i++) {
        value |= (uint64_t)p[i] << (8 * i);
    }
    return value;
}

/* xorshift64*: cheap, seedable, good enough to make every field differ. */
static uint64_t dist_cpu_visit_random(DistCpuVisitor *v)
{
    v->rng ^= v->rng >> 12;
    v->rng ^= v->rng << 25;
    v->rng ^= v->rng >> 27;
    return v->rng * 0x2545f4914f6cdd1dull;
}

void dist_cpu_visit_fail(DistCpuVisitor *v, int error, const char *name)
{
    if (!v->error) {
        v->error = error;
        v->error_field = name;
    }
}

void dist_cpu_visit_field(DistCpuVisitor *v, const char *name,
                          int index, int sub, unsigned size,
                          uint64_t valid, uint64_t *value)
{
    uint64_t all = size == 8 ? UINT64_MAX : (1ull << (8 * size)) - 1;
    uint64_t x;

    assert(size == 1 || size == 2 || size == 4 || size == 8);
    valid &= all;
    if (v->error) {
        return;
    }
    if (v->find_pos >= v->pos && v->find_pos < v->pos + size) {
        v->found_name = name;
        v->found_index = index;
        v->found_sub = sub;
    }
    if (valid != all && v->narrow_size == 0) {
        v->narrow_pos = v->pos;
        v->narrow_size = size;
    }

    switch (v->mode) {
    case DIST_CPU_VISIT_MEASURE:
        break;
    case DIST_CPU_VISIT_SAVE:
        assert(v->pos + size <= v->len);
        /* A save never invents bits: what it writes, a load accepts. */
        dist_cpu_put_le(v->out + v->pos, size, *value & valid);
        break;
    case DIST_CPU_VISIT_CHECK:
    case DIST_CPU_VISIT_LOAD:
        if (size > v->len - v->pos) {
            dist_cpu_visit_fail(v, -EBADMSG, name);
            return;
        }
        x = dist_cpu_get_le(v->in + v->pos, size);
        if (x & ~valid) {
            dist_cpu_visit_fail(v, -EBADMSG, name);
            return;
        }
        *value = x;
        break;
    case DIST_CPU_VISIT_FILL:
        x = dist_cpu_visit_random(v);
        *value = (v->fill_inverted ? ~x : x) & valid;
        break;
    }
    v->pos += size;
    v->fields++;
}

uint32_t dist_cpu_visit_shape(DistCpuVisitor *v, const char *name,
                              uint32_t here, uint32_t max)
{
    uint64_t x = here;

    if (v->mode == DIST_CPU_VISIT_FILL) {
        /* Shapes follow from other fields; they are not filled. */
        v->pos += 4;
        v->fields++;
        return here;
    }
    dist_cpu_visit_field(v, name, -1, -1, 4, UINT32_MAX, &x);
    if (dist_cpu_visit_decodes(v) && max && (x < 1 || x > max)) {
        dist_cpu_visit_fail(v, -EBADMSG, name);
    }
    if (!dist_cpu_visit_decodes(v) || v->error) {
        return here;
    }
    return x;
}

/*
 * The thread's signal state from TaskState.  The blocked mask is shipped
 * in guest numbering (bit N-1 for guest signal N): QEMU keeps it as a host
 * sigset_t, whose numbering is the host's.  Pending signals are not here:
 * a thread moves with none queued (a new thread has none; a later
 * migration must deliver them first).  sigsuspend_mask and in_sigsuspend
 * only matter inside a sigsuspend call, which never spans a move.
 */
static uint64_t dist_cpu_state_sigset_bits(const sigset_t *host)
{
    target_sigset_t guest;
    uint64_t bits = 0;
    int i;

    host_to_target_sigset_internal(&guest, host);
    for (i = 0; i < TARGET_NSIG_WORDS; i++) {
        bits |= (uint64_t)guest.sig[i] << (i * TARGET_NSIG_BPW);
    }
    return bits;
}

static void dist_cpu_state_sigset_from_bits(sigset_t *host, uint64_t bits)
{
    target_sigset_t guest;
    int i;

    for (i = 0; i < TARGET_NSIG_WORDS; i++) {
        guest.sig[i] = bits >> (i * TARGET_NSIG_BPW);
    }
    target_to_host_sigset_internal(host, &guest);
}

/* The guest signals this host can represent (and so a guest can block). */
static uint64_t dist_cpu_state_sigset_valid(void)
{
    sigset_t host;

    dist_cpu_state_sigset_from_bits(&host, UINT64_MAX);
    return dist_cpu_state_sigset_bits(&host);
}

static void dist_cpu_state_visit_thread(DistCpuVisitor *v, TaskState *ts)
{
    uint64_t abi_ulong_bits = (abi_ulong)-1;
    uint64_t mask = 0, sp = 0, size = 0, flags = 0;

    /* MEASURE has no TaskState to read; every field has a fixed size. */
    if (ts) {
        mask = dist_cpu_state_sigset_bits(&ts->signal_mask);
        sp = ts->sigaltstack_used.ss_sp;
        size = ts->sigaltstack_used.ss_size;
        flags = (uint32_t)ts->sigaltstack_used.ss_flags;
    }
    dist_cpu_visit_field(v, "signal_mask", -1, -1, 8,
                         dist_cpu_state_sigset_valid(), &mask);
    dist_cpu_visit_field(v, "sigaltstack.ss_sp", -1, -1, 8,
                         abi_ulong_bits, &sp);
    dist_cpu_visit_field(v, "sigaltstack.ss_size", -1, -1, 8,
                         abi_ulong_bits, &size);
    dist_cpu_visit_field(v, "sigaltstack.ss_flags", -1, -1, 4,
                         UINT32_MAX, &flags);
    if (ts && dist_cpu_visit_stores(v)) {
        dist_cpu_state_sigset_from_bits(&ts->signal_mask, mask);
        ts->sigaltstack_used.ss_sp = sp;
        ts->sigaltstack_used.ss_size = size;
        ts->sigaltstack_used.ss_flags = flags;
    }
}

static void dist_cpu_state_visit(DistCpuVisitor *v, CPUArchState *env,
                                 TaskState *ts)
{
    dist_cpu_state_visit_isa(v, env);
    dist_cpu_state_visit_thread(v, ts);
}

size_t dist_cpu_state_size(CPUArchState *env)
{
    DistCpuVisitor v = { .mode = DIST_CPU_VISIT_MEASURE,
                         .find_pos = SIZE_MAX };

    dist_cpu_state_visit(&v, env, NULL);
    assert(!v.error);
    return DIST_CPU_STATE_HEADER_SIZE + v.pos;
}

size_t dist_cpu_state_save(CPUArchState *env, const TaskState *ts,
                           uint8_t *buf, size_t len)
{
    size_t total = dist_cpu_state_size(env);
    DistCpuVisitor v = {
        .mode = DIST_CPU_VISIT_SAVE,
        .out = buf + DIST_CPU_STATE_HEADER_SIZE,
        .len = total - DIST_CPU_STATE_HEADER_SIZE,
        .find_pos = SIZE_MAX,
    };

    if (len < total || total > UINT32_MAX) {
        return 0;
    }
    /* SAVE never stores, so TaskState is only read. */
    dist_cpu_state_visit(&v, env, (TaskState *)ts);
    assert(!v.error && v.pos == v.len);
    dist_cpu_put_le(buf, 4, DIST_CPU_STATE_MAGIC);
    dist_cpu_put_le(buf + 4, 2, DIST_CPU_STATE_VERSION);
    dist_cpu_put_le(buf + 6, 2, dist_cpu_state_isa);
    dist_cpu_put_le(buf + 8, 4, total);
    return total;
}

int dist_cpu_state_load_named(CPUArchState *env, TaskState *ts,
                              const uint8_t *buf, size_t len,
                              const char **bad_field)
{
    DistCpuVisitor v = {
        .mode = DIST_CPU_VISIT_CHECK,
        .in = buf + DIST_CPU_STATE_HEADER_SIZE,
        .find_pos = SIZE_MAX,
    };

    if (len < DIST_CPU_STATE_HEADER_SIZE ||
        dist_cpu_get_le(buf, 4) != DIST_CPU_STATE_MAGIC ||
        dist_cpu_get_le(buf + 8, 4) != len) {
        v.error = -EBADMSG;
    } else if (dist_cpu_get_le(buf + 4, 2) != DIST_CPU_STATE_VERSION) {
        v.error = -EPROTONOSUPPORT;
    } else if (dist_cpu_get_le(buf + 6, 2) != dist_cpu_state_isa) {
        v.error = -ENOEXEC;
    }
    if (v.error) {
        if (bad_field) {
            *bad_field = "header";
        }
        return v.error;
    }
    v.len = len - DIST_CPU_STATE_HEADER_SIZE;

    /* Walk it all once without storing, so bad input leaves env alone. */
    dist_cpu_state_visit(&v, env, ts);
    if (!v.error && v.pos != v.len) {
        dist_cpu_visit_fail(&v, -EBADMSG, "end of state");
    }
    if (!v.error) {
        v.mode = DIST_CPU_VISIT_LOAD;
        v.pos = 0;
        v.fields = 0;
        dist_cpu_state_visit(&v, env, ts);
        /* CHECK saw the same bytes: only the CPU can refuse them now. */
        assert(!v.error || v.error == -EINVAL);
    }
    if (v.error && bad_field) {
        *bad_field = v.error_field;
    }
    return v.error;
}

int dist_cpu_state_load(CPUArchState *env, TaskState *ts,
                        const uint8_t *buf, size_t len)
{
    return dist_cpu_state_load_named(env, ts, buf, len, NULL);
}

unsigned dist_cpu_state_fill(CPUArchState *env, TaskState *ts,
                             uint64_t seed, bool inverted)
{
    DistCpuVisitor v = {
        .mode = DIST_CPU_VISIT_FILL,
        .rng = seed | 1,
        .fill_inverted = inverted,
        .find_pos = SIZE_MAX,
    };

    dist_cpu_state_visit(&v, env, ts);
    assert(!v.error);
    return v.fields;
}

void dist_cpu_state_describe(CPUArchState *env, size_t pos,
                             char *name, size_t size)
{
    DistCpuVisitor v = { .mode = DIST_CPU_VISIT_MEASURE };

    if (pos < DIST_CPU_STATE_HEADER_SIZE) {
        snprintf(name, size, "header");
        return;
    }
    v.find_pos = pos - DIST_CPU_STATE_HEADER_SIZE;
    dist_cpu_state_visit(&v, env, NULL);
    if (!v.found_name) {
        snprintf(name, size, "end of state");
    } else if (v.found_sub >= 0) {
        snprintf(name, size, "%s[%d][%d]", v.found_name, v.found_index,
                 v.found_sub);
    } else if (v.found_index >= 0) {
        snprintf(name, size, "%s[%d]", v.found_name, v.found_index);
    } else {
        snprintf(name, size, "%s", v.found_name);
    }
}

bool dist_cpu_state_first_narrow_field(CPUArchState *env, size_t *pos,
                                       unsigned *size)
{
    DistCpuVisitor v = { .mode = DIST_CPU_VISIT_MEASURE,
                         .find_pos = SIZE_MAX };

    dist_cpu_state_visit(&v, env, NULL);
    *pos = DIST_CPU_STATE_HEADER_SIZE + v.narrow_pos;
    *size = v.narrow_size;
    return v.narrow_size != 0;
}
