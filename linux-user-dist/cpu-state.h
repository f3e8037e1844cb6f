/*
 * cpu-state.h - a guest thread's CPU state as a portable byte string.
 *
 * A guest thread placed on another node must continue there exactly where
 * it stopped here.  CPUArchState cannot simply be copied: its layout is
 * QEMU's private business (and differs between builds), most of it is
 * configuration the other node already has (same binary, same -cpu), some
 * of it is cached or derived (hflags, float_status), and some of it is
 * host pointers (breakpoints, watchpoints, tlb_fi) that mean nothing in
 * another process.  So each ISA names, one by one, the fields a user-mode
 * thread can observe or change, and this format encodes them explicitly,
 * little-endian, at fixed widths.  The per-ISA files say why every field
 * they leave out is safe to leave out.
 *
 * Format (all integers little-endian):
 *
 *   offset  size  field
 *        0     4  magic, the bytes "DQCS"
 *        4     2  version (DIST_CPU_STATE_VERSION)
 *        6     2  ISA (DistCpuStateIsa)
 *        8     4  total length in bytes, this header included
 *       12     .  the ISA's fields in its visit order, then the thread's
 *                 signal state (blocked mask, sigaltstack)
 *
 * There are no per-field tags: the order is the contract, and any change
 * to a visit function's order or widths bumps DIST_CPU_STATE_VERSION.
 * The body starts with "shape" fields (which optional register files are
 * present, vector lengths) that say how long the rest is.
 *
 * The decoder is strict: a wrong magic, version or ISA, a length that is
 * not exactly the buffer's, a field value with bits its register cannot
 * hold, a missing or extra byte are all refused before env is touched.
 * A state the destination CPU cannot take (another vector length,
 * another set of register files: the nodes run different -cpu models) is
 * refused with -EINVAL; that check may come after env was partly written.
 */
#ifndef LINUX_USER_DIST_CPU_STATE_H
#define LINUX_USER_DIST_CPU_STATE_H

#define DIST_CPU_STATE_MAGIC        0x53435144u     /* "DQCS" */
#define DIST_CPU_STATE_VERSION      1
#define DIST_CPU_STATE_HEADER_SIZE  12

typedef enum DistCpuStateIsa {
    DIST_CPU_STATE_ISA_ARM = 1,
    DIST_CPU_STATE_ISA_AARCH64 = 2,
    DIST_CPU_STATE_ISA_RISCV64 = 3,
} DistCpuStateIsa;

/*
 * The exact number of bytes dist_cpu_state_save() writes for @env now
 * (it depends on the current vector lengths and on whether SME's ZA is
 * live, so ask again after the thread ran).
 */
size_t dist_cpu_state_size(CPUArchState *env);

/*
 * Put @ret where the ISA returns a system call's result (arm r0, aarch64
 * x0, riscv a0), as cpu_loop() does after do_syscall().  The pc already
 * points past the call.
 */
void dist_cpu_set_syscall_return(CPUArchState *env, abi_long ret);

/*
 * Encode @env and the signal state of @ts into @buf.  Returns the number
 * of bytes written, or 0 (writing nothing) when @len is too small.
 * Reads only.  Context: the thread that owns @env, stopped outside
 * cpu_exec (at a syscall or before its first instruction), or any thread
 * while that one cannot run.
 */
size_t dist_cpu_state_save(CPUArchState *env, const TaskState *ts,
                           uint8_t *buf, size_t len);

/*
 * Decode @buf into @env and @ts.  @env must belong to a CPU of the same
 * model as the saving one, reset for user mode (what cpu_create() plus
 * cpu_reset() give): fields this format leaves out are taken from it.
 * Returns 0, or
 *   -EBADMSG         malformed: magic, length, truncated, trailing bytes,
 *                    a field value out of its register's range
 *   -EPROTONOSUPPORT another format version
 *   -ENOEXEC         another ISA's state
 *   -EINVAL          well formed, but this CPU cannot hold it
 * Never reads outside @buf[0..@len).  On any error but -EINVAL, @env and
 * @ts are untouched; after -EINVAL they are partly written and must not
 * run.  The exclusive monitor is left clear (see the per-ISA files).
 */
int dist_cpu_state_load(CPUArchState *env, TaskState *ts,
                        const uint8_t *buf, size_t len);

/*
 * dist_cpu_state_load(), and on error names what it refused in
 * *@bad_field ("header", or a field name such as "vq") for the message.
 */
int dist_cpu_state_load_named(CPUArchState *env, TaskState *ts,
                              const uint8_t *buf, size_t len,
                              const char **bad_field);

/*
 * The developer self-tests behind DQEMU_SELFTEST_CPU_STATE, run from
 * dist_start() with the guest loaded and not yet started:
 *   "1"       round trips of pseudo-random states through scratch copies
 *             of the CPU plus malformed inputs; prints
 *             "cpu-state selftest: N fields ok ..." and exits 0, or names
 *             the first field that did not survive and exits 1.
 *   "reload"  saves the real CPU, resets it, loads it back and lets the
 *             guest run: its behaviour must not change.
 *   "syscalls" "reload", then at every syscall of every thread: save,
 *             overwrite every shipped field with garbage, load.  Again the
 *             guest's behaviour must not change.
 */
void dist_cpu_state_selftest(CPUArchState *env, const char *mode);

/* Set by "syscalls": dist_do_syscall() calls the function below. */
extern bool dist_cpu_state_selftest_every_syscall;
void dist_cpu_state_selftest_syscall(CPUArchState *env);

/* ---- for the self-test (cpu-state-selftest.c) --------------------- */

/*
 * Store pseudo-random values from @seed in every field of @env and @ts
 * (their complement when @inverted) through the same setters a load uses.
 * Returns the number of fields.
 */
unsigned dist_cpu_state_fill(CPUArchState *env, TaskState *ts,
                             uint64_t seed, bool inverted);

/* Name the field at byte @pos of what a save of @env writes now. */
void dist_cpu_state_describe(CPUArchState *env, size_t pos,
                             char *name, size_t size);

/*
 * The offset and size in a save of @env of the first field that cannot
 * hold every bit pattern of its size; false if there is none.
 */
bool dist_cpu_state_first_narrow_field(CPUArchState *env, size_t *pos,
                                       unsigned *size);

/* ---- the visitor, for the per-ISA files ---------------------------- */

/*
 * One visit function per ISA lists the fields in wire order; the same
 * function measures, saves, checks, loads and (for the self-test) fills
 * them, so the encoder and the decoder cannot drift apart.
 */

typedef enum DistCpuVisitMode {
    DIST_CPU_VISIT_MEASURE,     /* count the bytes a save would write */
    DIST_CPU_VISIT_SAVE,        /* encode env into the buffer */
    DIST_CPU_VISIT_CHECK,       /* decode the buffer, store nothing */
    DIST_CPU_VISIT_LOAD,        /* decode the buffer into env */
    DIST_CPU_VISIT_FILL,        /* store pseudo-random values (self-test) */
} DistCpuVisitMode;

typedef struct DistCpuVisitor {
    DistCpuVisitMode mode;
    uint8_t *out;               /* SAVE: the body */
    const uint8_t *in;          /* CHECK, LOAD: the body */
    size_t len;                 /* SAVE, CHECK, LOAD: bytes at out/in */
    size_t pos;                 /* bytes visited so far */
    unsigned fields;            /* fields visited so far */
    int error;                  /* 0, or the first negative errno */
    const char *error_field;    /* the field that set it */
    uint64_t rng;               /* FILL: xorshift state */
    bool fill_inverted;         /* FILL: store the complement */
    /* Self-test: the field covering body byte find_pos. */
    size_t find_pos;
    const char *found_name;
    int found_index, found_sub;
    /* Self-test: the first field whose valid bits are not all its bits. */
    size_t narrow_pos;
    unsigned narrow_size;
} DistCpuVisitor;

/* This target's ISA tag and field list (cpu-state-<isa>.c). */
extern const DistCpuStateIsa dist_cpu_state_isa;
void dist_cpu_state_visit_isa(DistCpuVisitor *v, CPUArchState *env);

/*
 * The one primitive: a @size-byte field (1, 2, 4 or 8) named @name, with
 * array indexes @index and @sub (-1 when unused), whose register can hold
 * only the bits in @valid.  SAVE/MEASURE encode *@value; LOAD/CHECK
 * decode into *@value (refusing bits outside @valid); FILL stores a
 * pseudo-random value within @valid.  After an error it does nothing.
 */
void dist_cpu_visit_field(DistCpuVisitor *v, const char *name,
                          int index, int sub, unsigned size,
                          uint64_t valid, uint64_t *value);

/* Record a failure (the first one wins); later visits do nothing. */
void dist_cpu_visit_fail(DistCpuVisitor *v, int error, const char *name);

/*
 * A shape field: how many or which registers follow.  Encodes @here
 * (SAVE, MEASURE, FILL) or returns the decoded value (LOAD, CHECK), which
 * must lie in [1, @max] (@max 0: any value), so the caller can size the
 * rest of its visit by the return value in every mode.
 */
uint32_t dist_cpu_visit_shape(DistCpuVisitor *v, const char *name,
                              uint32_t here, uint32_t max);

/* True when the visit writes into env (LOAD, FILL). */
static inline bool dist_cpu_visit_stores(const DistCpuVisitor *v)
{
    return v->mode == DIST_CPU_VISIT_LOAD || v->mode == DIST_CPU_VISIT_FILL;
}

/* True when the visit reads a buffer (LOAD, CHECK). */
static inline bool dist_cpu_visit_decodes(const DistCpuVisitor *v)
{
    return v->mode == DIST_CPU_VISIT_LOAD || v->mode == DIST_CPU_VISIT_CHECK;
}

/*
 * Typed fields stored straight in env: *p changes only when the visit
 * stores.  The _bits variants name the bits the register can hold.
 */
static inline void dist_cpu_visit_u64_bits(DistCpuVisitor *v,
                                           const char *name, int index,
                                           int sub, uint64_t valid,
                                           uint64_t *p)
{
    uint64_t x = *p;

    dist_cpu_visit_field(v, name, index, sub, 8, valid, &x);
    if (dist_cpu_visit_stores(v)) {
        *p = x;
    }
}

static inline void dist_cpu_visit_u64(DistCpuVisitor *v, const char *name,
                                      int index, uint64_t *p)
{
    dist_cpu_visit_u64_bits(v, name, index, -1, UINT64_MAX, p);
}

static inline void dist_cpu_visit_u32_bits(DistCpuVisitor *v,
                                           const char *name, int index,
                                           uint32_t valid, uint32_t *p)
{
    uint64_t x = *p;

    dist_cpu_visit_field(v, name, index, -1, 4, valid, &x);
    if (dist_cpu_visit_stores(v)) {
        *p = x;
    }
}

static inline void dist_cpu_visit_u32(DistCpuVisitor *v, const char *name,
                                      int index, uint32_t *p)
{
    dist_cpu_visit_u32_bits(v, name, index, UINT32_MAX, p);
}

static inline void dist_cpu_visit_bool(DistCpuVisitor *v, const char *name,
                                       bool *p)
{
    uint64_t x = *p;

    dist_cpu_visit_field(v, name, -1, -1, 1, 1, &x);
    if (dist_cpu_visit_stores(v)) {
        *p = x;
    }
}

static inline void dist_cpu_visit_u64_array(DistCpuVisitor *v,
                                            const char *name,
                                            uint64_t *p, int n)
{
    int i;

    for (i = 0; i < n; i++) {
        dist_cpu_visit_u64(v, name, i, &p[i]);
    }
}

static inline void dist_cpu_visit_u32_array(DistCpuVisitor *v,
                                            const char *name,
                                            uint32_t *p, int n)
{
    int i;

    for (i = 0; i < n; i++) {
        dist_cpu_visit_u32(v, name, i, &p[i]);
    }
}

#endif /* LINUX_USER_DIST_CPU_STATE_H */
