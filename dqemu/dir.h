/*
 * dir.h - the home's directory: one MSI state machine per homed page.
 *
 * The home of a page (home.h) keeps its directory entry: state, owner,
 * sharers, the one transaction in flight and a FIFO of waiting requests.
 * This is pure logic: events go in through dq_dir_handle(), actions come
 * out through a callback the engine supplies, and the engine maps both to
 * wire messages.  No I/O, no threads, no allocation after dq_dir_init(),
 * so every transition and race is unit-tested without a cluster.
 */
#ifndef DQEMU_DIR_H
#define DQEMU_DIR_H

#include "dqemu.h"

/*
 * Assumptions the engine must keep (the directory is only correct under
 * them; tests/unit/test-dir.c's model drives a cluster that keeps them):
 *
 * - Delivery is FIFO per (sender, receiver) pair, as one ZeroMQ connection
 *   per peer gives; the home node's messages to itself keep their order
 *   too.  Grants are not acknowledged: FIFO is what makes a node see its
 *   grant before any later INVAL or RECALL for the same page.
 * - A node has at most one request per page outstanding, and does not
 *   evict a page while that request is outstanding.
 * - On INVAL a node drops the page (S or I) to I and acks, echoing the id.
 * - On RECALL a node in M sends its data back and keeps what the recall
 *   allows (S or I).  A node in I (it has written the page back) answers
 *   with a reply without data, or ignores the recall; both are accepted.
 * - A node drops an S copy silently whenever it likes (the sharer set is a
 *   superset); it gives up M only by a WRITEBACK carrying the data.
 */

/* ---- node sets -------------------------------------------------------- */

#define DQ_NODE_SET_WORDS ((DQ_MAX_NODES + 63) / 64)
#define DQ_DIR_NO_NODE    0xffffu

/* A set of node ids < DQ_MAX_NODES: sharers, acks still missing, ... */
typedef struct DqNodeSet {
    uint64_t w[DQ_NODE_SET_WORDS];
} DqNodeSet;

static inline void dq_dir_set_add(DqNodeSet *s, unsigned n)
{
    s->w[n / 64] |= UINT64_C(1) << (n % 64);
}

static inline void dq_dir_set_del(DqNodeSet *s, unsigned n)
{
    s->w[n / 64] &= ~(UINT64_C(1) << (n % 64));
}

static inline bool dq_dir_set_has(const DqNodeSet *s, unsigned n)
{
    return (s->w[n / 64] >> (n % 64)) & 1;
}

static inline bool dq_dir_set_empty(const DqNodeSet *s)
{
    int i;

    for (i = 0; i < DQ_NODE_SET_WORDS; i++) {
        if (s->w[i]) {
            return false;
        }
    }
    return true;
}

static inline unsigned dq_dir_set_count(const DqNodeSet *s)
{
    unsigned c = 0;
    int i;

    for (i = 0; i < DQ_NODE_SET_WORDS; i++) {
        c += (unsigned)__builtin_popcountll(s->w[i]);
    }
    return c;
}

/* ---- states, events, actions -------------------------------------------- */

/* What a node holds, as the directory grants and recalls it. */
typedef enum DqDirMode {
    DQ_DIR_MODE_I,              /* nothing: PROT_NONE */
    DQ_DIR_MODE_S,              /* a read-only copy: PROT_READ */
    DQ_DIR_MODE_M,              /* the only copy, writable */
} DqDirMode;

/*
 * Directory states.  The home copy is the page data the home keeps for
 * the page, apart from its own guest mapping (the home node is a requester
 * like any other); it is current exactly in the states marked so.
 * The busy states, last, are those with a transaction in flight.
 */
#define DQ_DIR_STATE_LIST(X)                                               \
    /* no node holds a copy; the home copy is current */                   \
    X(UNCACHED)                                                            \
    /* the sharers hold read-only copies; the home copy is current */      \
    X(SHARED)                                                              \
    /* the owner holds the only copy and may have written it */            \
    X(MODIFIED)                                                            \
    /* busy: INVALs sent to the other sharers, M granted when all acked */ \
    X(BUSY_INVAL)                                                          \
    /* busy: RECALL sent to the owner, grant once its data is back */      \
    X(BUSY_RECALL)

typedef enum DqDirState {
#define DQ_DIR_STATE_ENUM(name) DQ_DIR_##name,
    DQ_DIR_STATE_LIST(DQ_DIR_STATE_ENUM)
#undef DQ_DIR_STATE_ENUM
    DQ_DIR_STATE__COUNT
} DqDirState;

#define DQ_DIR_EVENT_LIST(X)                                               \
    /* request: read fault, wants S with data */                           \
    X(READ)                                                                \
    /* request: write fault without a copy, wants M with data */           \
    X(WRITE)                                                               \
    /* request: write fault on an S copy, wants M without data */          \
    X(UPGRADE)                                                             \
    /* a sharer dropped its copy after our INVAL (id: the INVAL's) */      \
    X(INV_ACK)                                                             \
    /* the owner answers our RECALL (id: the RECALL's), maybe with data */ \
    X(RECALL_REPLY)                                                        \
    /* the owner gave up M on its own; the data comes with it */           \
    X(WRITEBACK)                                                           \
    /* the cluster declared the node dead; nothing more comes from it */   \
    X(NODE_FAILED)

typedef enum DqDirEventKind {
#define DQ_DIR_EVENT_ENUM(name) DQ_DIR_EV_##name,
    DQ_DIR_EVENT_LIST(DQ_DIR_EVENT_ENUM)
#undef DQ_DIR_EVENT_ENUM
    DQ_DIR_EV__COUNT
} DqDirEventKind;

typedef struct DqDirEvent {
    DqDirEventKind kind;
    unsigned node;          /* sender, or the failed node */
    uint64_t id;            /* requests: the requester's request id;
                             * INV_ACK, RECALL_REPLY: the home's id echoed */
    uint32_t flags;         /* requests: passed through to the grant */
    DqDirMode kept;         /* RECALL_REPLY: what the owner kept (I or S) */
    bool has_data;          /* RECALL_REPLY: page data came with it */
} DqDirEvent;

#define DQ_DIR_ACT_LIST(X)                                                 \
    /* send INVAL (id) to node */                                          \
    X(INVAL)                                                               \
    /* send RECALL (id) to the owner; mode: what it may keep, I or S */    \
    X(RECALL)                                                              \
    /* the event's data (from node) is the page now: copy it into */       \
    /* the home copy at once, the grants that follow ship that copy */     \
    X(STORE_HOME)                                                          \
    /* send the home copy to node in mode S or M (id: its request's) */    \
    X(GRANT_DATA)                                                          \
    /* tell node it holds mode M; it keeps its data (id: its request's) */ \
    X(GRANT)                                                               \
    /* idle with requests waiting: call dq_dir_serve_next() for the */     \
    /* page once the current dq_dir_* call has returned */                 \
    X(SERVE_NEXT)

typedef enum DqDirActKind {
#define DQ_DIR_ACT_ENUM(name) DQ_DIR_ACT_##name,
    DQ_DIR_ACT_LIST(DQ_DIR_ACT_ENUM)
#undef DQ_DIR_ACT_ENUM
    DQ_DIR_ACT__COUNT
} DqDirActKind;

typedef struct DqDirAction {
    DqDirActKind kind;
    uint64_t page;
    unsigned node;          /* destination; STORE_HOME: whose data */
    DqDirMode mode;         /* RECALL: may keep; GRANT*: granted */
    uint64_t id;            /* INVAL, RECALL: home's id; GRANT*: request's */
    uint32_t flags;         /* GRANT*: the request's flags (lease hint) */
} DqDirAction;

/*
 * The engine's side.  @act runs synchronously, in order, inside the
 * dq_dir_* call that decided it, on the service thread; it must not call
 * back into the directory (SERVE_NEXT is deferred for that reason).
 */
typedef struct DqDirOps {
    void (*act)(void *opaque, const DqDirAction *a);
    void *opaque;
} DqDirOps;

/* ---- entries and the directory --------------------------------------- */

/*
 * One homed page.  The engine stores entries (a flat array or a hash by
 * page, its choice) and passes them in; fields are read-only outside
 * dir.c, tests and diagnostics included.
 */
typedef struct DqDirEntry {
    uint64_t page;
    DqNodeSet sharers;      /* SHARED, BUSY_INVAL: nodes with S copies */
    DqNodeSet acks;         /* BUSY_INVAL: invalidated, ack still missing */
    DqNodeSet stale;        /* wrote back across our RECALL: one late
                             * RECALL_REPLY from each is dropped */
    uint64_t txn;           /* busy: id of this round's INVALs/RECALL */
    uint64_t req_id;        /* busy: the request being served */
    uint32_t req_flags;
    uint32_t q_head;        /* waiting requests, FIFO, in DqDir's pool */
    uint32_t q_tail;
    uint32_t q_len;
    uint16_t owner;         /* MODIFIED, BUSY_RECALL; else DQ_DIR_NO_NODE */
    uint16_t requester;     /* busy: who is served */
    uint8_t state;          /* DqDirState */
    uint8_t req_kind;       /* busy: READ or WRITE, or UPGRADE (keeps data) */
    uint8_t recall_keep;    /* BUSY_RECALL: DqDirMode the owner may keep */
    bool requester_failed;  /* busy: the requester died; grant nobody */
} DqDirEntry;

/* A waiting request: one slot of the pool, linked by index. */
typedef struct DqDirWaiter {
    uint64_t req_id;
    uint32_t next;
    uint32_t flags;
    uint16_t node;
    uint8_t kind;           /* DqDirEventKind: READ, WRITE or UPGRADE */
} DqDirWaiter;

/*
 * The directory of one home node: the engine's callback, the pool every
 * entry's wait queue draws from, the transaction counter and the nodes
 * known dead.
 */
typedef struct DqDir {
    DqDirOps ops;
    DqDirWaiter *pool;
    uint32_t pool_size;
    uint32_t pool_free;     /* head of the free list */
    uint32_t pool_used;
    unsigned nodes;
    uint64_t next_txn;
    DqNodeSet failed;
    bool in_call;           /* catches an ops->act that re-enters */
} DqDir;

/*
 * Set up @d for a cluster of @nodes nodes with room for @queue_slots
 * waiting requests over all its entries, allocated here once: a request
 * that finds the pool empty gets DQ_ERR_DIR_QUEUE_FULL (the engine NACKs
 * it with RETRY) instead of an allocation on the request path.  Each
 * faulting guest thread has at most one request outstanding, so the
 * number of guest threads in the cluster is a sufficient size.
 * DQ_ERR_RANGE, DQ_ERR_NOMEM.
 * Context: set-up, before the service thread runs.
 */
DqStatus dq_dir_init(DqDir *d, unsigned nodes, uint32_t queue_slots,
                     const DqDirOps *ops);

/* Context: tear-down, after the service thread has stopped. */
void dq_dir_destroy(DqDir *d);

/*
 * Start the entry of @page.  @owner is DQ_DIR_NO_NODE for a page whose
 * current data is the home copy (UNCACHED: e.g. zeros, or contents the
 * home loaded), or the node that holds its only copy in M (MODIFIED:
 * e.g. the master after loading the ELF image).
 * Context: service thread.
 */
void dq_dir_entry_init(DqDirEntry *e, uint64_t page, unsigned owner);

/*
 * Give @e's waiting requests back to the pool (the page is going away).
 * Context: service thread.
 */
void dq_dir_entry_release(DqDir *d, DqDirEntry *e);

/*
 * Feed one event for @e's page.  Requests are served at once when the
 * page is idle with nobody waiting, else queued.  Returns DQ_OK, or:
 *  - DQ_ERR_RANGE: node id or event kind out of range;
 *  - DQ_ERR_DIR_NODE_FAILED: the sender was declared dead (drop it);
 *  - DQ_ERR_DIR_QUEUE_FULL: no room to queue the request;
 *  - DQ_ERR_DIR_ACK_*, _RECALL_*, _STALE_ID, _WRITEBACK_NOT_OWNER: a
 *    protocol error, the event does not fit the state (dq_dir_explain()
 *    names both);
 *  - DQ_ERR_DIR_DATA_LOST: the owner failed, or answered a recall without
 *    data, before its M data reached the home: the entry carries on with
 *    the stale home copy, the engine decides the guest's fate.
 * On every error but DATA_LOST, @e and the actions are untouched.
 * Context: service thread; calls ops->act.
 */
DqStatus dq_dir_handle(DqDir *d, DqDirEntry *e, const DqDirEvent *ev);

/*
 * Serve the oldest waiting request of @e, in answer to SERVE_NEXT.  One
 * request per call, so the work per call is bounded by one invalidation
 * round; a no-op when @e is busy or nobody waits.
 * Context: service thread, not from inside ops->act; calls ops->act.
 */
DqStatus dq_dir_serve_next(DqDir *d, DqDirEntry *e);

/* A transaction is in flight: new requests wait. */
static inline bool dq_dir_busy(const DqDirEntry *e)
{
    return e->state == DQ_DIR_BUSY_INVAL || e->state == DQ_DIR_BUSY_RECALL;
}

/* The home copy holds the last written value (no owner may have newer). */
static inline bool dq_dir_home_current(const DqDirEntry *e)
{
    return e->state != DQ_DIR_MODIFIED && e->state != DQ_DIR_BUSY_RECALL;
}

/*
 * Check @e's invariants (one M owner excluding sharers, the busy fields,
 * node ids in range, the queue links); DQ_ERR_DIR_CORRUPT if broken.
 * Context: service thread (or a test).
 */
DqStatus dq_dir_check(const DqDir *d, const DqDirEntry *e);

/*
 * Describe a status returned for @ev on @e into @buf, naming the page,
 * the event, the node and the state: "page 0x12: INV_ACK from node 3 in
 * state SHARED: invalidate ack with no invalidation in flight".  A refused
 * event left @e as it was, so the state named is the one it met.  Returns
 * what snprintf returns.
 */
int dq_dir_explain(char *buf, size_t len, DqStatus status,
                   const DqDirEntry *e, const DqDirEvent *ev);

/* Names for diagnostics and traces; "unknown" when out of range. */
const char *dq_dir_state_str(DqDirState state);
const char *dq_dir_event_str(DqDirEventKind kind);
const char *dq_dir_act_str(DqDirActKind kind);
const char *dq_dir_mode_str(DqDirMode mode);

#endif /* DQEMU_DIR_H */
