/*
 * dist-excl.c - the cluster-wide exclusive step (DESIGN.md §4 "atomic
 * step").
 *
 * Most guest atomics are host atomics on the host page, which the DSM
 * makes exclusive by page ownership.  The few QEMU cannot do that way
 * (a misaligned or 128-bit one: EXCP_ATOMIC) run in cpu_exec_step_atomic():
 * one guest instruction with plain loads and stores while no other vCPU
 * runs.  QEMU's start_exclusive() stops only this node's vCPUs; another
 * node could store between our load and store.  So the step is wrapped in
 * a lock of the whole cluster, taken *before* start_exclusive():
 *
 *   level 2 (this file): one step at a time in the cluster, in ticket
 *     order, kept by the master; while a node steps, every other node is
 *     paused: it holds its own start_exclusive(), so none of its vCPUs runs
 *     guest code;
 *   level 1 (QEMU): the stepping node's start_exclusive() stops its own
 *     other vCPUs.
 *
 * Taking them in that order is what keeps it deadlock-free: a vCPU waiting
 * for the cluster lock is outside cpu_exec(), so a pause never waits for
 * it.  What a pause does wait for -- vCPUs leaving cpu_exec() -- needs only
 * the DSM (I/O threads, homes) and mmap_lock, whose holders never wait for
 * a pause.  That is why a worker pauses on a thread of its own and not on
 * its service thread: the service thread replays the layout changes that
 * a master thread holding mmap_lock waits for.
 *
 * Who does what:
 *   a stepper on the master      takes a ticket and pauses every worker;
 *   a stepper on a worker        asks its proxy on the master (EXCL_ACQUIRE),
 *                                which takes the ticket, pauses the other
 *                                workers and pauses the master itself with
 *                                its own start_exclusive(); EXCL_RELEASE
 *                                (a note, behind the ACQUIRE in the
 *                                proxy's queue) undoes it;
 *   a worker's pause thread      start_exclusive() on PAUSE, answers
 *                                PAUSED, end_exclusive() on RESUME.
 */
#include "qemu/osdep.h"
#include "qemu/timer.h"
#include "qemu/thread.h"
#include "qemu/error-report.h"
#include "qemu/rcu.h"
#include "hw/core/cpu.h"
#include "qemu.h"
#include "dist-hooks.h"
#include "dist-internal.h"

/* How often a waiting master looks for failed nodes. */
#define EXCL_POLL_MS 100

/* ---- the master: tickets and pauses ------------------------------------ */

static QemuMutex excl_lock;
static QemuCond excl_cond;
static uint64_t next_ticket = 1;    /* the next one handed out */
static uint64_t now_serving = 1;    /* the one that may step */
static unsigned paused_count;       /* PAUSED answers for now_serving */
static bool excl_ready;
/* When the master stopped for a remote step (one at a time: the ticket). */
static int64_t master_paused_at;

void dist_excl_init_master(void)
{
    qemu_mutex_init(&excl_lock);
    qemu_cond_init(&excl_cond);
    excl_ready = true;
}

/* This node was stopped from @since for another node's step. */
static void excl_count_pause(int64_t since)
{
    dq_stats_add(&dist_stats, atomic_pauses, 1);
    dq_stats_add(&dist_stats, atomic_pause_ns, get_clock() - since);
}

/* I/O thread: worker @src is paused for @ticket. */
void dist_excl_note_paused(unsigned src, uint64_t ticket)
{
    qemu_mutex_lock(&excl_lock);
    if (ticket == now_serving) {
        paused_count++;
        qemu_cond_broadcast(&excl_cond);
    } else {
        /* Cannot happen: a worker answers only the pause it was sent. */
        warn_report("dqemu: node %u paused for step %" PRIu64 ", expected %"
                    PRIu64, src, ticket, now_serving);
    }
    qemu_mutex_unlock(&excl_lock);
}

/*
 * Take the cluster's step lock for a thread of node @node and return once
 * every other node is paused.  @node != 0: the caller is that thread's
 * proxy, and this also stops the master's vCPUs (its start_exclusive()).
 * Context: a master thread with current_cpu set, outside cpu_exec().
 */
uint64_t dist_excl_acquire(unsigned node)
{
    unsigned k, want = 0;
    uint64_t ticket;

    qemu_mutex_lock(&excl_lock);
    ticket = next_ticket++;
    while (now_serving != ticket) {
        qemu_cond_wait(&excl_cond, &excl_lock);
    }
    paused_count = 0;
    qemu_mutex_unlock(&excl_lock);

    /* The workers stop in parallel with the master. */
    for (k = 1; k < dist_node_count; k++) {
        if (k != node) {
            if (dist_note(k, DIST_OP_EXCL_PAUSE, 0, ticket, NULL, 0) !=
                DQ_OK) {
                /* It failed: the failure path ends the cluster. */
                dist_fatal("cannot pause node %u for an atomic step", k);
            }
            want++;
        }
    }
    if (node != 0) {
        master_paused_at = get_clock();
        start_exclusive();
    }

    qemu_mutex_lock(&excl_lock);
    while (paused_count < want) {
        qemu_cond_timedwait(&excl_cond, &excl_lock, EXCL_POLL_MS);
        for (k = 1; k < dist_node_count; k++) {
            if (k != node && dq_xport_peer_failed(dist_xport, k)) {
                qemu_mutex_unlock(&excl_lock);
                dist_fatal("node %u failed while pausing for an atomic "
                           "step of node %u", k, node);
            }
        }
    }
    qemu_mutex_unlock(&excl_lock);
    return ticket;
}

/* Undo dist_excl_acquire(@node, giving @ticket).  Same context. */
void dist_excl_release(unsigned node, uint64_t ticket)
{
    unsigned k;

    if (node != 0) {
        excl_count_pause(master_paused_at);
        end_exclusive();
    }
    for (k = 1; k < dist_node_count; k++) {
        if (k != node) {
            /* A failed node is the failure path's business. */
            dist_note(k, DIST_OP_EXCL_RESUME, 0, ticket, NULL, 0);
        }
    }
    qemu_mutex_lock(&excl_lock);
    assert(now_serving == ticket);
    now_serving++;
    qemu_cond_broadcast(&excl_cond);
    qemu_mutex_unlock(&excl_lock);
}

/* ---- a worker: the pause thread --------------------------------------- */

static QemuMutex pause_lock;
static QemuCond pause_cond;
static uint64_t pause_asked;        /* latest PAUSE ticket */
static uint64_t resume_asked;       /* latest RESUME ticket */
static QemuThread pause_thread;

/* I/O thread: PAUSE or RESUME from the master. */
void dist_excl_note_pause(bool pause, uint64_t ticket)
{
    qemu_mutex_lock(&pause_lock);
    if (pause) {
        pause_asked = MAX(pause_asked, ticket);
    } else {
        resume_asked = MAX(resume_asked, ticket);
    }
    qemu_cond_broadcast(&pause_cond);
    qemu_mutex_unlock(&pause_lock);
}

static void *dist_excl_pause_main(void *arg)
{
    uint64_t done = 0;

    rcu_register_thread();
    /*
     * start_exclusive() counts nesting on current_cpu: this thread borrows
     * the worker's main CPU, which never runs guest code and never takes
     * the exclusive section itself.
     */
    current_cpu = arg;
    for (;;) {
        uint64_t ticket;
        int64_t t0;

        qemu_mutex_lock(&pause_lock);
        while (pause_asked <= done) {
            qemu_cond_wait(&pause_cond, &pause_lock);
        }
        ticket = pause_asked;
        qemu_mutex_unlock(&pause_lock);

        t0 = get_clock();
        start_exclusive();
        dist_note(0, DIST_OP_EXCL_PAUSED, 0, ticket, NULL, 0);
        qemu_mutex_lock(&pause_lock);
        while (resume_asked < ticket) {
            qemu_cond_wait(&pause_cond, &pause_lock);
        }
        qemu_mutex_unlock(&pause_lock);
        end_exclusive();
        excl_count_pause(t0);
        done = ticket;
    }
    return NULL;
}

void dist_excl_init_worker(CPUState *main_cpu)
{
    qemu_mutex_init(&pause_lock);
    qemu_cond_init(&pause_cond);
    qemu_thread_create(&pause_thread, "dqemu-pause", dist_excl_pause_main,
                       main_cpu, QEMU_THREAD_DETACHED);
}

/* ---- the stepping thread (hooks in cpu_exec_step_atomic) --------------- */

static __thread uint64_t step_ticket;
static __thread int64_t step_start;

void dist_atomic_step_begin(void)
{
    /* Counted on one node too: its cost there is the baseline. */
    step_start = get_clock();
    if (!dist_active()) {
        return;
    }
    if (dist_node_id == 0) {
        assert(excl_ready);
        step_ticket = dist_excl_acquire(0);
    } else {
        dist_thread_excl_acquire();
    }
}

void dist_atomic_step_end(void)
{
    if (dist_active()) {
        if (dist_node_id == 0) {
            dist_excl_release(0, step_ticket);
        } else {
            dist_thread_excl_release();
        }
    }
    dq_stats_add(&dist_stats, atomic_steps, 1);
    dq_stats_add(&dist_stats, atomic_step_ns, get_clock() - step_start);
}
