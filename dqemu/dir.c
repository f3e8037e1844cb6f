/*
 * dir.c - the home directory state machine (MSI, one transaction per page).
 *
 * The home serves one request per page at a time: it invalidates sharers
 * or recalls the owner, collects the answers, grants, and only then lets
 * the next waiting request in (DESIGN.md §5).  The page's last written
 * value is always either in the home copy or with the recorded owner, and
 * the owner is only forgotten once its data is in the home copy, so no
 * write is lost unless the owner itself dies.
 *
 * Lock ordering and context:
 *
 *   dir.c takes no lock and must not be given one: a DqDir and its entries
 *   belong to the node's service thread, the one thread that receives
 *   coherence messages, and are touched by nothing else.
 *
 *   service thread
 *     dq_dir_handle()        every request, ack, reply, writeback and
 *                            failure notice for a page homed here,
 *                            the home node's own requests included: its
 *                            faulting threads hand them over like remote
 *                            requests and never call in here themselves
 *       ops->act()           synchronous; queues messages, copies data to
 *                            the home copy; never re-enters dq_dir_*
 *     dq_dir_serve_next()    after a SERVE_NEXT action, outside ops->act
 *     dq_dir_entry_init(), dq_dir_entry_release(), dq_dir_check()
 *   set-up / tear-down thread, while the service thread is not running
 *     dq_dir_init(), dq_dir_destroy()
 *
 *   Forbidden (DESIGN.md §4): the service thread never takes mmap_lock or
 *   clone_lock, so neither may ops->act; faults arrive while guest threads
 *   hold them.  Nothing here allocates after dq_dir_init().
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "dir.h"

#define Q_NONE UINT32_MAX

static const char *const dq_dir_state_names[DQ_DIR_STATE__COUNT] = {
#define DQ_DIR_STATE_NAME(name) [DQ_DIR_##name] = #name,
    DQ_DIR_STATE_LIST(DQ_DIR_STATE_NAME)
#undef DQ_DIR_STATE_NAME
};

static const char *const dq_dir_event_names[DQ_DIR_EV__COUNT] = {
#define DQ_DIR_EVENT_NAME(name) [DQ_DIR_EV_##name] = #name,
    DQ_DIR_EVENT_LIST(DQ_DIR_EVENT_NAME)
#undef DQ_DIR_EVENT_NAME
};

static const char *const dq_dir_act_names[DQ_DIR_ACT__COUNT] = {
#define DQ_DIR_ACT_NAME(name) [DQ_DIR_ACT_##name] = #name,
    DQ_DIR_ACT_LIST(DQ_DIR_ACT_NAME)
#undef DQ_DIR_ACT_NAME
};

/* ---- set-up -------------------------------------------------------------- */

DqStatus dq_dir_init(DqDir *d, unsigned nodes, uint32_t queue_slots,
                     const DqDirOps *ops)
{
    uint32_t i;

    memset(d, 0, sizeof(*d));
    if (nodes == 0 || nodes > DQ_MAX_NODES || queue_slots == 0 ||
        queue_slots == Q_NONE || !ops || !ops->act) {
        return DQ_ERR_RANGE;
    }
    d->pool = calloc(queue_slots, sizeof(*d->pool));
    if (!d->pool) {
        return DQ_ERR_NOMEM;
    }
    for (i = 0; i < queue_slots; i++) {
        d->pool[i].next = i + 1 < queue_slots ? i + 1 : Q_NONE;
    }
    d->pool_size = queue_slots;
    d->pool_free = 0;
    d->ops = *ops;
    d->nodes = nodes;
    /* 0 is never a transaction id, so a zeroed message cannot match one. */
    d->next_txn = 1;
    return DQ_OK;
}

void dq_dir_destroy(DqDir *d)
{
    free(d->pool);
    memset(d, 0, sizeof(*d));
}

void dq_dir_entry_init(DqDirEntry *e, uint64_t page, unsigned owner)
{
    memset(e, 0, sizeof(*e));
    e->page = page;
    e->q_head = e->q_tail = Q_NONE;
    e->requester = DQ_DIR_NO_NODE;
    if (owner == DQ_DIR_NO_NODE) {
        e->owner = DQ_DIR_NO_NODE;
        e->state = DQ_DIR_UNCACHED;
    } else {
        e->owner = owner;
        e->state = DQ_DIR_MODIFIED;
    }
}

/* ---- actions ------------------------------------------------------------- */

static void dq_dir_emit(DqDir *d, const DqDirEntry *e, DqDirActKind kind,
                        unsigned node, DqDirMode mode, uint64_t id,
                        uint32_t flags)
{
    DqDirAction a = {
        .kind = kind,
        .page = e->page,
        .node = node,
        .mode = mode,
        .id = id,
        .flags = flags,
    };

    d->ops.act(d->ops.opaque, &a);
}

static void dq_dir_grant(DqDir *d, const DqDirEntry *e, DqDirMode mode,
                         bool with_data)
{
    dq_dir_emit(d, e, with_data ? DQ_DIR_ACT_GRANT_DATA : DQ_DIR_ACT_GRANT,
                e->requester, mode, e->req_id, e->req_flags);
}

/* ---- the wait queue -------------------------------------------------------
 *
 * Waiting requests live in one pool per directory, linked by index: an
 * entry costs three words whether or not anybody waits, and the pool is
 * sized once for the whole cluster's outstanding requests.
 */

static DqStatus dq_dir_q_push(DqDir *d, DqDirEntry *e, const DqDirEvent *ev)
{
    uint32_t i = d->pool_free;
    DqDirWaiter *w;

    if (i == Q_NONE) {
        return DQ_ERR_DIR_QUEUE_FULL;
    }
    w = &d->pool[i];
    d->pool_free = w->next;
    d->pool_used++;
    w->next = Q_NONE;
    w->node = ev->node;
    w->kind = ev->kind;
    w->req_id = ev->id;
    w->flags = ev->flags;
    if (e->q_tail == Q_NONE) {
        e->q_head = i;
    } else {
        d->pool[e->q_tail].next = i;
    }
    e->q_tail = i;
    e->q_len++;
    return DQ_OK;
}

static void dq_dir_q_free(DqDir *d, uint32_t i)
{
    d->pool[i].next = d->pool_free;
    d->pool_free = i;
    d->pool_used--;
}

static DqDirWaiter dq_dir_q_pop(DqDir *d, DqDirEntry *e)
{
    uint32_t i = e->q_head;
    DqDirWaiter w = d->pool[i];

    e->q_head = w.next;
    if (e->q_head == Q_NONE) {
        e->q_tail = Q_NONE;
    }
    e->q_len--;
    dq_dir_q_free(d, i);
    return w;
}

/* Drop every waiting request of @node, keeping the others in order. */
static void dq_dir_q_remove_node(DqDir *d, DqDirEntry *e, unsigned node)
{
    uint32_t prev = Q_NONE;
    uint32_t i = e->q_head;

    while (i != Q_NONE) {
        uint32_t next = d->pool[i].next;

        if (d->pool[i].node == node) {
            if (prev == Q_NONE) {
                e->q_head = next;
            } else {
                d->pool[prev].next = next;
            }
            if (e->q_tail == i) {
                e->q_tail = prev;
            }
            e->q_len--;
            dq_dir_q_free(d, i);
        } else {
            prev = i;
        }
        i = next;
    }
}

void dq_dir_entry_release(DqDir *d, DqDirEntry *e)
{
    while (e->q_len) {
        dq_dir_q_pop(d, e);
    }
}

/* ---- completing a transaction ------------------------------------------ */

/*
 * Every other copy is gone: the requester gets M.  An upgrader kept its S
 * copy (it was a sharer when served and a node does not drop a page with
 * a request outstanding), so it gets no data; everyone else gets the home
 * copy, which is current because no node held M during the round.
 */
static void dq_dir_finish_exclusive(DqDir *d, DqDirEntry *e)
{
    memset(&e->sharers, 0, sizeof(e->sharers));
    memset(&e->acks, 0, sizeof(e->acks));
    if (e->requester_failed) {
        e->state = DQ_DIR_UNCACHED;
        return;
    }
    e->owner = e->requester;
    e->state = DQ_DIR_MODIFIED;
    dq_dir_grant(d, e, DQ_DIR_MODE_M, e->req_kind != DQ_DIR_EV_UPGRADE);
}

/*
 * The owner's data is in the home copy (or lost, which the caller
 * reports): forget the owner, keep it as a sharer if it kept S, and grant
 * the requester from the home copy.
 */
static void dq_dir_finish_recall(DqDir *d, DqDirEntry *e, bool owner_kept_s)
{
    unsigned old = e->owner;

    e->owner = DQ_DIR_NO_NODE;
    memset(&e->sharers, 0, sizeof(e->sharers));
    if (owner_kept_s) {
        dq_dir_set_add(&e->sharers, old);
    }
    if (e->requester_failed) {
        e->state = owner_kept_s ? DQ_DIR_SHARED : DQ_DIR_UNCACHED;
        return;
    }
    if (e->req_kind == DQ_DIR_EV_READ) {
        dq_dir_set_add(&e->sharers, e->requester);
        e->state = DQ_DIR_SHARED;
        dq_dir_grant(d, e, DQ_DIR_MODE_S, true);
    } else {
        /* A write recalls with keep I, so nobody else holds a copy. */
        e->owner = e->requester;
        e->state = DQ_DIR_MODIFIED;
        dq_dir_grant(d, e, DQ_DIR_MODE_M, true);
    }
}

/* A transaction just ended: let the next waiting request in, later. */
static void dq_dir_idle(DqDir *d, DqDirEntry *e)
{
    e->requester = DQ_DIR_NO_NODE;
    e->requester_failed = false;
    if (e->q_len) {
        dq_dir_emit(d, e, DQ_DIR_ACT_SERVE_NEXT, DQ_DIR_NO_NODE,
                    DQ_DIR_MODE_I, 0, 0);
    }
}

/* ---- serving a request -------------------------------------------------- */

/*
 * Serve a request on an idle entry: grant at once when no other copy is
 * in the way, else start an invalidation round or a recall.
 */
static void dq_dir_serve(DqDir *d, DqDirEntry *e, unsigned r,
                         DqDirEventKind kind, uint64_t req_id,
                         uint32_t flags)
{
    unsigned n;

    e->requester = r;
    e->requester_failed = false;
    e->req_id = req_id;
    e->req_flags = flags;
    /*
     * An upgrade from a node that is no longer a sharer lost its S copy
     * to an invalidation while it waited (crossing upgrades): it needs
     * the data, so it is served as a write.
     */
    if (kind == DQ_DIR_EV_UPGRADE && !dq_dir_set_has(&e->sharers, r) &&
        !(e->state == DQ_DIR_MODIFIED && e->owner == r)) {
        kind = DQ_DIR_EV_WRITE;
    }
    e->req_kind = kind;

    switch ((DqDirState)e->state) {
    case DQ_DIR_UNCACHED:
    case DQ_DIR_SHARED:
        if (kind == DQ_DIR_EV_READ) {
            /*
             * A recorded sharer asking again dropped its copy silently:
             * it gets the data again, the set already has it.
             */
            dq_dir_set_add(&e->sharers, r);
            e->state = DQ_DIR_SHARED;
            dq_dir_grant(d, e, DQ_DIR_MODE_S, true);
            break;
        }
        e->acks = e->sharers;
        dq_dir_set_del(&e->acks, r);
        if (dq_dir_set_empty(&e->acks)) {
            dq_dir_finish_exclusive(d, e);
            break;
        }
        e->txn = d->next_txn++;
        e->state = DQ_DIR_BUSY_INVAL;
        for (n = 0; n < d->nodes; n++) {
            if (dq_dir_set_has(&e->acks, n)) {
                dq_dir_emit(d, e, DQ_DIR_ACT_INVAL, n, DQ_DIR_MODE_I,
                            e->txn, 0);
            }
        }
        break;
    case DQ_DIR_MODIFIED:
        if (e->owner == r && kind == DQ_DIR_EV_UPGRADE) {
            /* It holds M already: confirm, nothing moves. */
            dq_dir_grant(d, e, DQ_DIR_MODE_M, false);
            break;
        }
        /*
         * Recall even from the requester itself: a read or write from the
         * owner means its copy is gone or going (a writeback may be on
         * its way), and the recall reply or that writeback brings back
         * whatever it still has before anyone is granted.
         */
        e->recall_keep = (kind == DQ_DIR_EV_READ && e->owner != r)
                         ? DQ_DIR_MODE_S : DQ_DIR_MODE_I;
        e->txn = d->next_txn++;
        e->state = DQ_DIR_BUSY_RECALL;
        dq_dir_emit(d, e, DQ_DIR_ACT_RECALL, e->owner, e->recall_keep,
                    e->txn, 0);
        break;
    default:
        /* Callers only serve idle entries. */
        abort();
    }
    if (!dq_dir_busy(e)) {
        dq_dir_idle(d, e);
    }
}

static DqStatus dq_dir_on_request(DqDir *d, DqDirEntry *e,
                                  const DqDirEvent *ev)
{
    /* Nobody overtakes a waiting request, not even on an idle page. */
    if (dq_dir_busy(e) || e->q_len) {
        return dq_dir_q_push(d, e, ev);
    }
    dq_dir_serve(d, e, ev->node, ev->kind, ev->id, ev->flags);
    return DQ_OK;
}

DqStatus dq_dir_serve_next(DqDir *d, DqDirEntry *e)
{
    DqDirWaiter w;

    assert(!d->in_call);
    if (dq_dir_busy(e) || e->q_len == 0) {
        return DQ_OK;
    }
    d->in_call = true;
    w = dq_dir_q_pop(d, e);
    dq_dir_serve(d, e, w.node, w.kind, w.req_id, w.flags);
    d->in_call = false;
    return DQ_OK;
}

/* ---- answers from nodes ------------------------------------------------- */

static DqStatus dq_dir_on_inv_ack(DqDir *d, DqDirEntry *e,
                                  const DqDirEvent *ev)
{
    if (e->state != DQ_DIR_BUSY_INVAL) {
        return DQ_ERR_DIR_ACK_UNEXPECTED;
    }
    if (!dq_dir_set_has(&e->acks, ev->node)) {
        return DQ_ERR_DIR_ACK_NOT_INVALIDATED;
    }
    if (ev->id != e->txn) {
        return DQ_ERR_DIR_STALE_ID;
    }
    dq_dir_set_del(&e->acks, ev->node);
    dq_dir_set_del(&e->sharers, ev->node);
    if (dq_dir_set_empty(&e->acks)) {
        dq_dir_finish_exclusive(d, e);
        dq_dir_idle(d, e);
    }
    return DQ_OK;
}

static DqStatus dq_dir_on_recall_reply(DqDir *d, DqDirEntry *e,
                                       const DqDirEvent *ev)
{
    bool genuine = e->state == DQ_DIR_BUSY_RECALL && ev->node == e->owner &&
                   ev->id == e->txn;

    if (!genuine) {
        /*
         * The owner wrote the page back while our RECALL was on its way;
         * the writeback answered the recall and this is the node's late
         * answer to it: nothing left to learn from it.
         */
        if (dq_dir_set_has(&e->stale, ev->node)) {
            dq_dir_set_del(&e->stale, ev->node);
            return DQ_OK;
        }
        if (e->state != DQ_DIR_BUSY_RECALL) {
            return DQ_ERR_DIR_RECALL_UNEXPECTED;
        }
        return ev->node == e->owner ? DQ_ERR_DIR_STALE_ID
                                    : DQ_ERR_DIR_RECALL_NOT_OWNER;
    }
    if ((unsigned)ev->kept > e->recall_keep ||
        (ev->kept != DQ_DIR_MODE_I && !ev->has_data)) {
        return DQ_ERR_DIR_RECALL_KEPT;
    }
    /*
     * By FIFO order any late answer of this node to an earlier RECALL
     * came before this one.
     */
    dq_dir_set_del(&e->stale, ev->node);
    if (ev->has_data) {
        dq_dir_emit(d, e, DQ_DIR_ACT_STORE_HOME, ev->node, DQ_DIR_MODE_I,
                    0, 0);
    }
    dq_dir_finish_recall(d, e, ev->kept == DQ_DIR_MODE_S);
    dq_dir_idle(d, e);
    /*
     * An owner in I without a writeback of ours on record has lost its
     * M data: the grant above shipped the stale home copy.
     */
    return ev->has_data ? DQ_OK : DQ_ERR_DIR_DATA_LOST;
}

static DqStatus dq_dir_on_writeback(DqDir *d, DqDirEntry *e,
                                    const DqDirEvent *ev)
{
    if ((e->state != DQ_DIR_MODIFIED && e->state != DQ_DIR_BUSY_RECALL) ||
        ev->node != e->owner) {
        return DQ_ERR_DIR_WRITEBACK_NOT_OWNER;
    }
    dq_dir_set_del(&e->stale, ev->node);
    dq_dir_emit(d, e, DQ_DIR_ACT_STORE_HOME, ev->node, DQ_DIR_MODE_I, 0, 0);
    if (e->state == DQ_DIR_MODIFIED) {
        e->owner = DQ_DIR_NO_NODE;
        e->state = DQ_DIR_UNCACHED;
        return DQ_OK;
    }
    /*
     * The writeback crossed our RECALL: it carries the latest data and
     * answers the recall.  The node will answer the RECALL too (without
     * data, from I) or ignore it; either way that answer is stale.
     */
    dq_dir_set_add(&e->stale, ev->node);
    dq_dir_finish_recall(d, e, false);
    dq_dir_idle(d, e);
    return DQ_OK;
}

/*
 * Forget @n everywhere in @e.  A sharer's missing ack counts as given (a
 * dead node reads nothing); an owner's data is lost unless the home copy
 * is current.  Whatever was in flight completes, so no request waits on
 * a dead node.
 */
static DqStatus dq_dir_on_node_failed(DqDir *d, DqDirEntry *e, unsigned n)
{
    bool was_busy = dq_dir_busy(e);
    bool lost = false;

    dq_dir_set_add(&d->failed, n);
    dq_dir_q_remove_node(d, e, n);
    dq_dir_set_del(&e->stale, n);
    if (was_busy && e->requester == n) {
        e->requester_failed = true;
    }
    switch ((DqDirState)e->state) {
    case DQ_DIR_UNCACHED:
        break;
    case DQ_DIR_SHARED:
        dq_dir_set_del(&e->sharers, n);
        if (dq_dir_set_empty(&e->sharers)) {
            e->state = DQ_DIR_UNCACHED;
        }
        break;
    case DQ_DIR_MODIFIED:
        if (e->owner == n) {
            lost = !dq_dir_home_current(e);
            e->owner = DQ_DIR_NO_NODE;
            e->state = DQ_DIR_UNCACHED;
        }
        break;
    case DQ_DIR_BUSY_INVAL:
        dq_dir_set_del(&e->sharers, n);
        if (dq_dir_set_has(&e->acks, n)) {
            dq_dir_set_del(&e->acks, n);
            if (dq_dir_set_empty(&e->acks)) {
                dq_dir_finish_exclusive(d, e);
            }
        }
        break;
    case DQ_DIR_BUSY_RECALL:
        if (e->owner == n) {
            lost = !dq_dir_home_current(e);
            dq_dir_finish_recall(d, e, false);
        }
        break;
    default:
        abort();
    }
    if (was_busy && !dq_dir_busy(e)) {
        dq_dir_idle(d, e);
    }
    return lost ? DQ_ERR_DIR_DATA_LOST : DQ_OK;
}

DqStatus dq_dir_handle(DqDir *d, DqDirEntry *e, const DqDirEvent *ev)
{
    DqStatus st;

    assert(!d->in_call);
    if ((unsigned)ev->kind >= DQ_DIR_EV__COUNT || ev->node >= d->nodes) {
        return DQ_ERR_RANGE;
    }
    if (ev->kind != DQ_DIR_EV_NODE_FAILED &&
        dq_dir_set_has(&d->failed, ev->node)) {
        return DQ_ERR_DIR_NODE_FAILED;
    }
    d->in_call = true;
    switch (ev->kind) {
    case DQ_DIR_EV_READ:
    case DQ_DIR_EV_WRITE:
    case DQ_DIR_EV_UPGRADE:
        st = dq_dir_on_request(d, e, ev);
        break;
    case DQ_DIR_EV_INV_ACK:
        st = dq_dir_on_inv_ack(d, e, ev);
        break;
    case DQ_DIR_EV_RECALL_REPLY:
        st = dq_dir_on_recall_reply(d, e, ev);
        break;
    case DQ_DIR_EV_WRITEBACK:
        st = dq_dir_on_writeback(d, e, ev);
        break;
    case DQ_DIR_EV_NODE_FAILED:
        st = dq_dir_on_node_failed(d, e, ev->node);
        break;
    default:
        st = DQ_ERR_RANGE;
        break;
    }
    d->in_call = false;
    return st;
}

/* ---- checks and names ------------------------------------------------- */

static bool dq_dir_set_within(const DqDir *d, const DqNodeSet *s)
{
    unsigned n;

    for (n = d->nodes; n < DQ_NODE_SET_WORDS * 64; n++) {
        if (dq_dir_set_has(s, n)) {
            return false;
        }
    }
    return true;
}

static bool dq_dir_check_queue(const DqDir *d, const DqDirEntry *e)
{
    uint32_t i = e->q_head;
    uint32_t last = Q_NONE;
    uint32_t len = 0;

    while (i != Q_NONE) {
        const DqDirWaiter *w;

        if (i >= d->pool_size || ++len > e->q_len) {
            return false;
        }
        w = &d->pool[i];
        if (w->node >= d->nodes ||
            (w->kind != DQ_DIR_EV_READ && w->kind != DQ_DIR_EV_WRITE &&
             w->kind != DQ_DIR_EV_UPGRADE)) {
            return false;
        }
        last = i;
        i = w->next;
    }
    return len == e->q_len && last == e->q_tail;
}

DqStatus dq_dir_check(const DqDir *d, const DqDirEntry *e)
{
    bool has_owner = e->owner != DQ_DIR_NO_NODE;
    DqNodeSet others;
    bool ok;

    if (!dq_dir_set_within(d, &e->sharers) || !dq_dir_set_within(d, &e->acks) ||
        !dq_dir_set_within(d, &e->stale) || !dq_dir_check_queue(d, e) ||
        (has_owner && e->owner >= d->nodes) ||
        (dq_dir_busy(e) && e->requester >= d->nodes)) {
        return DQ_ERR_DIR_CORRUPT;
    }
    if (e->state != DQ_DIR_BUSY_INVAL && !dq_dir_set_empty(&e->acks)) {
        return DQ_ERR_DIR_CORRUPT;
    }
    switch ((DqDirState)e->state) {
    case DQ_DIR_UNCACHED:
        ok = !has_owner && dq_dir_set_empty(&e->sharers);
        break;
    case DQ_DIR_SHARED:
        ok = !has_owner && !dq_dir_set_empty(&e->sharers);
        break;
    case DQ_DIR_MODIFIED:
        ok = has_owner && dq_dir_set_empty(&e->sharers);
        break;
    case DQ_DIR_BUSY_INVAL:
        /* The sharers left are the requester and those still to ack. */
        others = e->sharers;
        if (e->requester < d->nodes) {
            dq_dir_set_del(&others, e->requester);
        }
        ok = !has_owner && !dq_dir_set_empty(&e->acks) &&
             memcmp(&others, &e->acks, sizeof(others)) == 0 &&
             (e->req_kind == DQ_DIR_EV_WRITE ||
              e->req_kind == DQ_DIR_EV_UPGRADE);
        break;
    case DQ_DIR_BUSY_RECALL:
        ok = has_owner && dq_dir_set_empty(&e->sharers) &&
             (e->req_kind == DQ_DIR_EV_READ ||
              e->req_kind == DQ_DIR_EV_WRITE) &&
             e->recall_keep <= DQ_DIR_MODE_S;
        break;
    default:
        ok = false;
        break;
    }
    return ok ? DQ_OK : DQ_ERR_DIR_CORRUPT;
}

int dq_dir_explain(char *buf, size_t len, DqStatus status,
                   const DqDirEntry *e, const DqDirEvent *ev)
{
    return snprintf(buf, len, "page 0x%llx: %s from node %u in state %s: %s",
                    (unsigned long long)e->page, dq_dir_event_str(ev->kind),
                    ev->node, dq_dir_state_str(e->state),
                    dq_status_str(status));
}

const char *dq_dir_state_str(DqDirState state)
{
    if ((unsigned)state >= DQ_DIR_STATE__COUNT) {
        return "unknown";
    }
    return dq_dir_state_names[state];
}

const char *dq_dir_event_str(DqDirEventKind kind)
{
    if ((unsigned)kind >= DQ_DIR_EV__COUNT) {
        return "unknown";
    }
    return dq_dir_event_names[kind];
}

const char *dq_dir_act_str(DqDirActKind kind)
{
    if ((unsigned)kind >= DQ_DIR_ACT__COUNT) {
        return "unknown";
    }
    return dq_dir_act_names[kind];
}

const char *dq_dir_mode_str(DqDirMode mode)
{
    static const char *const names[] = { "I", "S", "M" };

    if ((unsigned)mode >= sizeof(names) / sizeof(names[0])) {
        return "unknown";
    }
    return names[mode];
}
