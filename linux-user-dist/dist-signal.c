/*
 * dist-signal.c - signal dispositions and fatal signals across nodes.
 *
 * The master owns the dispositions (rt_sigaction is global); after each
 * change it hands the new disposition to every worker, which installs it
 * with QEMU's own do_sigaction(), so a synchronous signal taken on a
 * worker (SIGSEGV, SIGFPE, ...) finds the guest's handler there.  The
 * disposition travels as QEMU's struct target_sigaction bytes: both ends
 * are the same build (the master checked the worker's identity).
 *
 * A guest that dies of a signal on a worker dies there the way qemu-user
 * dies (message, then the signal); the master learns it first and ends
 * the cluster with the same signal, so the shell sees the status it would
 * see under qemu-user.
 */
#include "qemu/osdep.h"
#include "qemu.h"
#include "user-internals.h"
#include "signal-common.h"
#include "dist-hooks.h"
#include "dist-internal.h"
#include "dsm.h"

/*
 * do_sigaction() starts with block_signals(), which refuses (restart)
 * when signals are already marked pending -- as they are right after the
 * guest's own rt_sigaction on this thread, or after our previous call on
 * the service thread.  Nothing here runs a guest handler, so clearing the
 * mark is safe: block_signals() sets it again, and a real signal still
 * sits in the thread's table for process_pending_signals().
 */
static int dist_do_sigaction(int target_sig, const struct target_sigaction *act,
                             struct target_sigaction *oact)
{
    TaskState *ts = get_task_state(thread_cpu);

    qatomic_set(&ts->signal_pending, 0);
    return do_sigaction(target_sig, act, oact, 0);
}

void dist_signal_broadcast_action(int target_sig)
{
    struct target_sigaction cur;

    if (target_sig < 1 || target_sig > TARGET_NSIG) {
        return;
    }
    if (dist_do_sigaction(target_sig, NULL, &cur) != 0) {
        return;
    }
    dist_node_broadcast(DIST_OP_SIGACTION, target_sig, 0, &cur, sizeof(cur));
}

void dist_signal_apply_action(int target_sig, const uint8_t *data,
                              size_t len)
{
    struct target_sigaction act;

    if (len != sizeof(act) || target_sig < 1 || target_sig > TARGET_NSIG) {
        dist_fatal("malformed signal disposition from the master");
    }
    memcpy(&act, data, sizeof(act));
    if (dist_do_sigaction(target_sig, &act, NULL) != 0) {
        dist_fatal("cannot install the disposition of signal %d",
                   target_sig);
    }
}

void dist_signal_fatal_on_worker(int target_sig)
{
    DqMsg reply;
    uint8_t buf[64];

    /*
     * The master dumps the core (it may need this node's pages), prints
     * qemu-user's message and dies of the signal; its SHUTDOWN ends this
     * node, and so does its death.  No answer comes.
     */
    dist_call(0, DIST_OP_FATAL_SIGNAL, target_sig, 0, NULL, 0, &reply, buf,
              sizeof(buf), DQ_XPORT_WAIT_FOREVER);
    _exit(128 + target_sig);
}
