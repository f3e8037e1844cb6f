/*
 * sched.c - thread placement policies: round-robin, master, fill, spread.
 *
 * Each policy is a small function of the live-thread counts behind
 * dq_sched_place(), which also applies guest hints.  Placement happens
 * once per thread creation on the master, far from any hot path, so one
 * mutex guards the whole state and the policies may scan every node.
 */
#include <stdio.h>
#include <string.h>

#include "dq-sched.h"

static const char *const dq_sched_policy_names[DQ_SCHED__COUNT] = {
#define DQ_SCHED_POLICY_NAME(name, text, alias) [DQ_SCHED_##name] = text,
    DQ_SCHED_POLICY_LIST(DQ_SCHED_POLICY_NAME)
#undef DQ_SCHED_POLICY_NAME
};

static const char *const dq_sched_policy_aliases[DQ_SCHED__COUNT] = {
#define DQ_SCHED_POLICY_ALIAS(name, text, alias) [DQ_SCHED_##name] = alias,
    DQ_SCHED_POLICY_LIST(DQ_SCHED_POLICY_ALIAS)
#undef DQ_SCHED_POLICY_ALIAS
};

DqStatus dq_sched_init(DqSched *s, DqSchedPolicy policy, unsigned nodes,
                       unsigned cpus_per_node)
{
    memset(s, 0, sizeof(*s));
    if ((unsigned)policy >= DQ_SCHED__COUNT || nodes == 0 ||
        nodes > DQ_MAX_NODES || cpus_per_node == 0) {
        return DQ_ERR_RANGE;
    }
    pthread_mutex_init(&s->lock, NULL);
    s->policy = policy;
    s->nodes = nodes;
    s->cpus_per_node = cpus_per_node;
    s->live[0] = 1;             /* the guest's main thread */
    s->next = 1 % nodes;
    return DQ_OK;
}

void dq_sched_destroy(DqSched *s)
{
    pthread_mutex_destroy(&s->lock);
    memset(s, 0, sizeof(*s));
}

/* The node with the fewest live threads, the lowest id on a tie. */
static unsigned dq_sched_least_loaded(const DqSched *s)
{
    unsigned best = 0;
    unsigned i;

    for (i = 1; i < s->nodes; i++) {
        if (s->live[i] < s->live[best]) {
            best = i;
        }
    }
    return best;
}

/*
 * The lowest node with a free CPU.  When every CPU of the cluster is
 * taken, oversubscribe evenly (least loaded) rather than piling the
 * excess on node 0.
 */
static unsigned dq_sched_fill(const DqSched *s)
{
    unsigned i;

    for (i = 0; i < s->nodes; i++) {
        if (s->live[i] < s->cpus_per_node) {
            return i;
        }
    }
    return dq_sched_least_loaded(s);
}

/* A subroutine of dq_sched_place: the policy's choice.  Context: s->lock. */
static unsigned dq_sched_choose_locked(DqSched *s)
{
    unsigned node;

    switch (s->policy) {
    case DQ_SCHED_ROUND_ROBIN:
        node = s->next;
        s->next = (s->next + 1) % s->nodes;
        return node;
    case DQ_SCHED_MASTER:
        return 0;
    case DQ_SCHED_FILL:
        return dq_sched_fill(s);
    case DQ_SCHED_SPREAD:
        return dq_sched_least_loaded(s);
    case DQ_SCHED__COUNT:
        break;
    }
    return 0;       /* not reached: dq_sched_init checked the policy */
}

/* A group's node, choosing and remembering it for a new group. */
static DqStatus dq_sched_group_locked(DqSched *s, uint32_t id,
                                      unsigned *node)
{
    unsigned i;

    for (i = 0; i < s->ngroups; i++) {
        if (s->groups[i].id == id) {
            *node = s->groups[i].node;
            return DQ_OK;
        }
    }
    if (s->ngroups == DQ_SCHED_MAX_GROUPS) {
        return DQ_ERR_SCHED_GROUPS_FULL;
    }
    *node = dq_sched_choose_locked(s);
    s->groups[s->ngroups].id = id;
    s->groups[s->ngroups].node = *node;
    s->ngroups++;
    return DQ_OK;
}

DqStatus dq_sched_place(DqSched *s, DqSchedHint hint, unsigned *node)
{
    DqStatus st = DQ_OK;
    unsigned n = 0;

    pthread_mutex_lock(&s->lock);
    switch (hint.kind) {
    case DQ_SCHED_HINT_ANY:
        n = dq_sched_choose_locked(s);
        break;
    case DQ_SCHED_HINT_NODE:
        if (hint.value >= s->nodes) {
            st = DQ_ERR_SCHED_NO_NODE;
        }
        n = hint.value;
        break;
    case DQ_SCHED_HINT_GROUP:
        st = dq_sched_group_locked(s, hint.value, &n);
        break;
    default:
        st = DQ_ERR_RANGE;
        break;
    }
    if (st == DQ_OK) {
        s->live[n]++;
        *node = n;
    }
    pthread_mutex_unlock(&s->lock);
    return st;
}

DqStatus dq_sched_exit(DqSched *s, unsigned node)
{
    DqStatus st = DQ_OK;

    if (node >= s->nodes) {
        return DQ_ERR_SCHED_NO_NODE;
    }
    pthread_mutex_lock(&s->lock);
    if (s->live[node] == 0) {
        st = DQ_ERR_SCHED_NO_THREAD;
    } else {
        s->live[node]--;
    }
    pthread_mutex_unlock(&s->lock);
    return st;
}

unsigned dq_sched_live(DqSched *s, unsigned node)
{
    unsigned n;

    if (node >= s->nodes) {
        return 0;
    }
    pthread_mutex_lock(&s->lock);
    n = s->live[node];
    pthread_mutex_unlock(&s->lock);
    return n;
}

DqStatus dq_sched_policy_parse(const char *name, DqSchedPolicy *policy,
                               char *err, size_t errlen)
{
    size_t used;
    unsigned i;

    if (name == NULL) {
        name = "";
    }
    for (i = 0; i < DQ_SCHED__COUNT; i++) {
        const char *alias = dq_sched_policy_aliases[i];

        if (strcmp(name, dq_sched_policy_names[i]) == 0 ||
            (alias && strcmp(name, alias) == 0)) {
            *policy = (DqSchedPolicy)i;
            return DQ_OK;
        }
    }
    if (err == NULL || errlen == 0) {
        return DQ_ERR_USAGE;
    }
    /* snprintf truncates safely; stop appending once the buffer is full. */
    used = (size_t)snprintf(err, errlen,
                            "'%s' is not a placement policy (one of:", name);
    for (i = 0; i < DQ_SCHED__COUNT && used < errlen; i++) {
        const char *alias = dq_sched_policy_aliases[i];

        used += (size_t)snprintf(err + used, errlen - used, "%s %s%s%s%s",
                                 i ? "," : "", dq_sched_policy_names[i],
                                 alias ? " (" : "", alias ? alias : "",
                                 alias ? ")" : "");
    }
    if (used < errlen) {
        snprintf(err + used, errlen - used, ")");
    }
    return DQ_ERR_USAGE;
}

const char *dq_sched_policy_str(DqSchedPolicy policy)
{
    if ((unsigned)policy >= DQ_SCHED__COUNT) {
        return "?";
    }
    return dq_sched_policy_names[policy];
}
