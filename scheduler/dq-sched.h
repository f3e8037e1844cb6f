/*
 * dq-sched.h - which node runs a new guest thread.
 *
 * The master places every thread the guest creates (clone with CLONE_VM |
 * CLONE_THREAD) on a node (DESIGN.md §6).  Placement is a policy behind
 * one call, dq_sched_place(), which a guest hint can steer towards a node
 * or towards the other threads of a group.  The scheduler only keeps
 * counts of live threads per node; it never talks to a node.
 *
 * Not <sched.h>: this header is named so that an -I of this directory can
 * never shadow the C library's.
 */
#ifndef DQEMU_DQ_SCHED_H
#define DQEMU_DQ_SCHED_H

#include <pthread.h>

#include "dqemu.h"

/*
 * The policies, with the name --placement takes and an alias (or NULL).
 * Round-robin is the default (first); the order is the one error
 * messages list.
 */
#define DQ_SCHED_POLICY_LIST(X)                                            \
    /* each new thread on the node after the previous one's */             \
    X(ROUND_ROBIN, "round-robin", "rr")                                    \
    /* every thread on node 0: distribution off, for comparisons */        \
    X(MASTER,      "master",      NULL)                                    \
    /* node 0's CPUs first, then node 1's, ...: fewest nodes busy */       \
    X(FILL,        "fill",        "packed")                                \
    /* the node with the fewest live threads, ties to the lowest id */     \
    X(SPREAD,      "spread",      "least-loaded")

typedef enum DqSchedPolicy {
#define DQ_SCHED_POLICY_ENUM(name, text, alias) DQ_SCHED_##name,
    DQ_SCHED_POLICY_LIST(DQ_SCHED_POLICY_ENUM)
#undef DQ_SCHED_POLICY_ENUM
    DQ_SCHED__COUNT
} DqSchedPolicy;

/*
 * How many groups (dq_sched_hint_group) can be remembered.  Group ids
 * come from the guest, so the table is bounded and never grows.
 */
#define DQ_SCHED_MAX_GROUPS 64

typedef enum DqSchedHintKind {
    DQ_SCHED_HINT_ANY,      /* no wish: the policy decides */
    DQ_SCHED_HINT_NODE,     /* run on node @value */
    DQ_SCHED_HINT_GROUP,    /* run where the group @value runs */
} DqSchedHintKind;

typedef struct DqSchedHint {
    DqSchedHintKind kind;
    uint32_t value;         /* node id or group id; 0 for ANY */
} DqSchedHint;

static inline DqSchedHint dq_sched_hint_any(void)
{
    return (DqSchedHint){ .kind = DQ_SCHED_HINT_ANY, .value = 0 };
}

static inline DqSchedHint dq_sched_hint_node(uint32_t node)
{
    return (DqSchedHint){ .kind = DQ_SCHED_HINT_NODE, .value = node };
}

static inline DqSchedHint dq_sched_hint_group(uint32_t group)
{
    return (DqSchedHint){ .kind = DQ_SCHED_HINT_GROUP, .value = group };
}

typedef struct DqSchedGroup {
    uint32_t id;
    unsigned node;
} DqSchedGroup;

typedef struct DqSched {
    pthread_mutex_t lock;       /* guards everything below */
    DqSchedPolicy policy;
    unsigned nodes;             /* cluster size, master included */
    unsigned cpus_per_node;     /* FILL: threads a node takes before the next */
    unsigned next;              /* ROUND_ROBIN: the next node to use */
    unsigned live[DQ_MAX_NODES];    /* live guest threads per node */
    DqSchedGroup groups[DQ_SCHED_MAX_GROUPS];
    unsigned ngroups;
} DqSched;

/*
 * Set up @s for @nodes nodes (1..DQ_MAX_NODES) of @cpus_per_node (>= 1)
 * CPUs each.  The guest's main thread already runs on the master, so
 * node 0 starts with one live thread and round-robin starts at node 1.
 * DQ_ERR_RANGE for a bad argument.
 * Context: set-up, before any other thread uses @s.
 */
DqStatus dq_sched_init(DqSched *s, DqSchedPolicy policy, unsigned nodes,
                       unsigned cpus_per_node);

/* Context: tear-down, after every user of @s has stopped. */
void dq_sched_destroy(DqSched *s);

/*
 * Choose the node of a new thread and count it there (*@node).  A node
 * hint wins over the policy; a group hint sends the thread where the
 * group's first thread went (which the policy chose), for as long as @s
 * lives.  Only the policy's own choices (a group's first thread
 * included) move the round-robin sequence.
 * DQ_ERR_SCHED_NO_NODE for a hinted node that does not exist,
 * DQ_ERR_SCHED_GROUPS_FULL for a new group beyond DQ_SCHED_MAX_GROUPS,
 * DQ_ERR_RANGE for an unknown hint kind; *@node is untouched then.
 * Context: any thread; takes and releases s->lock.
 */
DqStatus dq_sched_place(DqSched *s, DqSchedHint hint, unsigned *node);

/*
 * A thread placed on @node (or the main thread) has exited.
 * DQ_ERR_SCHED_NO_NODE for a node that does not exist,
 * DQ_ERR_SCHED_NO_THREAD when @node has no live thread to remove.
 * Context: any thread; takes and releases s->lock.
 */
DqStatus dq_sched_exit(DqSched *s, unsigned node);

/* Live threads on @node (0 for a node that does not exist). */
unsigned dq_sched_live(DqSched *s, unsigned node);

/*
 * Parse a --placement value: a policy name or its alias.  On error
 * (DQ_ERR_USAGE) @err says which names are valid, e.g. "'x' is not a
 * placement policy (one of: round-robin (rr), master, ...)".
 */
DqStatus dq_sched_policy_parse(const char *name, DqSchedPolicy *policy,
                               char *err, size_t errlen);

/* "round-robin", "master", "fill", "spread"; "?" for a bad value. */
const char *dq_sched_policy_str(DqSchedPolicy policy);

#endif /* DQEMU_DQ_SCHED_H */
