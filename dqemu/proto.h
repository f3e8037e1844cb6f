/*
 * proto.h - the dqemu wire protocol: every message nodes exchange.
 *
 * One table, DQ_MSG_LIST, names each message with its fixed body size and
 * the kind of variable tail that follows it; the encoder and the decoder
 * both work from it.  The decoder checks magic, version, type, flags, node
 * ids and exact lengths before it reads a body, and points into the
 * caller's buffer instead of allocating, so a peer can neither make us read
 * out of bounds nor make us allocate.  All integers are little-endian and
 * encoded byte by byte: the wire never depends on host endianness or on
 * how a compiler lays out a struct.
 */
#ifndef DQEMU_PROTO_H
#define DQEMU_PROTO_H

#include <assert.h>

#include "dqemu.h"

/* "DQMP" in wire order; a message from anything else fails at byte 0. */
#define DQ_PROTO_MAGIC   0x504d5144u
#define DQ_PROTO_VERSION 1

/* ---- header ------------------------------------------------------------
 *
 * Every message starts with this fixed 28-byte header:
 *
 *   off size field
 *     0   4  magic        DQ_PROTO_MAGIC
 *     4   2  version      DQ_PROTO_VERSION
 *     6   2  type         DqMsgType (position in DQ_MSG_LIST)
 *     8   4  flags        DQ_MSG_F_*; unknown bits are rejected
 *    12   2  src          sending node, < DQ_MAX_NODES
 *    14   2  dst          receiving node, < DQ_MAX_NODES
 *    16   8  req_id       a request's id; replies and acks echo it
 *    24   4  payload_len  bytes after the header (body + tail)
 */
#define DQ_HDR_OFF_MAGIC        0
#define DQ_HDR_OFF_VERSION      4
#define DQ_HDR_OFF_TYPE         6
#define DQ_HDR_OFF_FLAGS        8
#define DQ_HDR_OFF_SRC          12
#define DQ_HDR_OFF_DST          14
#define DQ_HDR_OFF_REQ_ID       16
#define DQ_HDR_OFF_PAYLOAD_LEN  24
#define DQ_PROTO_HDR_SIZE       28

static_assert(DQ_HDR_OFF_VERSION == DQ_HDR_OFF_MAGIC + 4, "magic is u32");
static_assert(DQ_HDR_OFF_TYPE == DQ_HDR_OFF_VERSION + 2, "version is u16");
static_assert(DQ_HDR_OFF_FLAGS == DQ_HDR_OFF_TYPE + 2, "type is u16");
static_assert(DQ_HDR_OFF_SRC == DQ_HDR_OFF_FLAGS + 4, "flags is u32");
static_assert(DQ_HDR_OFF_DST == DQ_HDR_OFF_SRC + 2, "src is u16");
static_assert(DQ_HDR_OFF_REQ_ID == DQ_HDR_OFF_DST + 2, "dst is u16");
static_assert(DQ_HDR_OFF_PAYLOAD_LEN == DQ_HDR_OFF_REQ_ID + 8, "req_id is u64");
static_assert(DQ_PROTO_HDR_SIZE == DQ_HDR_OFF_PAYLOAD_LEN + 4,
              "payload_len is u32 and ends the header");
static_assert(DQ_MAX_NODES <= 0xffff, "node ids travel as u16");

/*
 * The access behind a request is an atomic or exclusive (LL/SC, CAS): the
 * home grants M with a lease, and the holder keeps the page for a short
 * while before serving a recall, so an LL/SC loop cannot livelock under
 * ping-pong (DESIGN.md §5, forward progress).
 */
#define DQ_MSG_F_ATOMIC     (1u << 0)
#define DQ_MSG_F_ALL        (DQ_MSG_F_ATOMIC)

/* ---- bodies ------------------------------------------------------------
 *
 * Offsets are relative to the first byte after the header.  Several
 * message types share a body shape; the table below says which.
 */

/* JOIN: JOIN_REQ and JOIN_ACCEPT; JOIN_REFUSE appends a reason. */
#define DQ_JOIN_OFF_CLUSTER_ID  0   /* u64: cluster this node belongs to */
#define DQ_JOIN_OFF_PAGE_SIZE   8   /* u32: host page size of the sender */
#define DQ_JOIN_OFF_VERSION     12  /* u16: protocol version of the sender */
#define DQ_JOIN_OFF_NODE_COUNT  14  /* u16: cluster size, master included */
#define DQ_BODY_JOIN            16
#define DQ_JOIN_OFF_REASON      16  /* u32: DqJoinRefuse */
#define DQ_BODY_REFUSE          20

/* ADDR: one page address (page-aligned). */
#define DQ_PAGE_OFF_ADDR        0   /* u64 */
#define DQ_BODY_ADDR            8
/* ADDR_STATE: a page address and an MSI state (DqProtoState). */
#define DQ_PAGE_OFF_STATE       8   /* u32 */
#define DQ_BODY_ADDR_STATE      12

/*
 * BATCH: a count and one state for every page, then a tail of @count
 * entries, each the page address (u64) followed by page_size bytes of data.
 */
#define DQ_BATCH_OFF_COUNT      0   /* u32, >= 1 */
#define DQ_BATCH_OFF_STATE      4   /* u32: DqProtoState */
#define DQ_BODY_BATCH           8
#define DQ_BATCH_ENTRY_OFF_ADDR 0   /* u64 */
#define DQ_BATCH_ENTRY_OFF_DATA 8   /* page_size bytes */

/* NACK: the page concerned (0 when none) and a DqNackCode. */
#define DQ_NACK_OFF_ADDR        0   /* u64 */
#define DQ_NACK_OFF_CODE        8   /* u32 */
#define DQ_BODY_NACK            12

/* SHUTDOWN: the guest's exit code, so workers can exit the same way. */
#define DQ_SHUTDOWN_OFF_CODE    0   /* u32 */
#define DQ_BODY_SHUTDOWN        4

/*
 * CALL, CALL_REPLY: an application-level message libdqemu carries but does
 * not interpret (linux-user-dist: layout replication, thread start,
 * delegated syscalls, signals).  Three numbers whose meaning is the
 * application's, then any number of opaque tail bytes.
 */
#define DQ_CALL_OFF_OP          0   /* u32: what to do */
#define DQ_CALL_OFF_AUX         4   /* u32: a second small value */
#define DQ_CALL_OFF_ARG         8   /* u64: an argument, an address */
#define DQ_BODY_CALL            16

#define DQ_BODY_NONE            0
/* The largest fixed body of any message. */
#define DQ_BODY_MAX             DQ_BODY_REFUSE

static_assert(DQ_JOIN_OFF_PAGE_SIZE == DQ_JOIN_OFF_CLUSTER_ID + 8, "u64");
static_assert(DQ_JOIN_OFF_VERSION == DQ_JOIN_OFF_PAGE_SIZE + 4, "u32");
static_assert(DQ_JOIN_OFF_NODE_COUNT == DQ_JOIN_OFF_VERSION + 2, "u16");
static_assert(DQ_BODY_JOIN == DQ_JOIN_OFF_NODE_COUNT + 2, "u16");
static_assert(DQ_JOIN_OFF_REASON == DQ_BODY_JOIN, "refuse extends join");
static_assert(DQ_BODY_REFUSE == DQ_JOIN_OFF_REASON + 4, "u32");
static_assert(DQ_BODY_ADDR == DQ_PAGE_OFF_ADDR + 8, "u64");
static_assert(DQ_PAGE_OFF_STATE == DQ_BODY_ADDR, "state follows addr");
static_assert(DQ_BODY_ADDR_STATE == DQ_PAGE_OFF_STATE + 4, "u32");
static_assert(DQ_BATCH_OFF_STATE == DQ_BATCH_OFF_COUNT + 4, "u32");
static_assert(DQ_BODY_BATCH == DQ_BATCH_OFF_STATE + 4, "u32");
static_assert(DQ_BATCH_ENTRY_OFF_DATA == DQ_BATCH_ENTRY_OFF_ADDR + 8, "u64");
static_assert(DQ_NACK_OFF_CODE == DQ_NACK_OFF_ADDR + 8, "u64");
static_assert(DQ_BODY_NACK == DQ_NACK_OFF_CODE + 4, "u32");
static_assert(DQ_BODY_SHUTDOWN == DQ_SHUTDOWN_OFF_CODE + 4, "u32");
static_assert(DQ_CALL_OFF_AUX == DQ_CALL_OFF_OP + 4, "u32");
static_assert(DQ_CALL_OFF_ARG == DQ_CALL_OFF_AUX + 4, "u32");
static_assert(DQ_BODY_CALL == DQ_CALL_OFF_ARG + 8, "u64");

/* What follows the fixed body. */
typedef enum DqTailKind {
    DQ_TAIL_NONE,   /* nothing: payload_len == body size exactly */
    DQ_TAIL_PAGE,   /* exactly one page of data (the page size in use) */
    DQ_TAIL_BATCH,  /* count entries of (u64 address, one page of data) */
    DQ_TAIL_BYTES,  /* opaque bytes, 0 up to what max_payload leaves */
} DqTailKind;

/* ---- the message table -------------------------------------------------
 *
 * X(name, body size, tail kind).  The wire type code is the position in
 * this list, so the list is append-only: never reorder or delete an entry
 * without bumping DQ_PROTO_VERSION.
 *
 * Request ids: a node numbers its own requests (READ_REQ, WRITE_REQ,
 * UPGRADE_REQ, JOIN_REQ, CALL; the home's INVAL and RECALL); every reply
 * or ack (GRANT*, NACK, INVAL_ACK, RECALL_DATA, JOIN_ACCEPT/REFUSE,
 * CALL_REPLY) carries the id of the message it answers.  Unsolicited
 * messages (FORWARD, HEARTBEAT, SHUTDOWN, a CALL nobody waits an answer
 * to) carry 0 or the sender's own counter.
 */
#define DQ_MSG_LIST(X)                                                     \
    /* worker -> master: let me in; node id is the header's src */         \
    X(JOIN_REQ,     DQ_BODY_JOIN,       DQ_TAIL_NONE)                      \
    /* master -> worker: admitted; body echoes the cluster's parameters */ \
    X(JOIN_ACCEPT,  DQ_BODY_JOIN,       DQ_TAIL_NONE)                      \
    /* master -> worker: not admitted; master's parameters + reason */     \
    X(JOIN_REFUSE,  DQ_BODY_REFUSE,     DQ_TAIL_NONE)                      \
    /* any -> any: still alive; sent only when idle, all traffic counts */ \
    X(HEARTBEAT,    DQ_BODY_NONE,       DQ_TAIL_NONE)                      \
    /* master -> worker: the guest exited with this code; stop */          \
    X(SHUTDOWN,     DQ_BODY_SHUTDOWN,   DQ_TAIL_NONE)                      \
    /* worker -> master: stopped, nothing more will come from me */        \
    X(SHUTDOWN_ACK, DQ_BODY_NONE,       DQ_TAIL_NONE)                      \
    /* requester -> home: read fault, want the page in S with its data */  \
    X(READ_REQ,     DQ_BODY_ADDR,       DQ_TAIL_NONE)                      \
    /* requester -> home: write fault on an I page, want M with data */    \
    X(WRITE_REQ,    DQ_BODY_ADDR,       DQ_TAIL_NONE)                      \
    /* requester -> home: write fault on an S page, want M, have data */   \
    X(UPGRADE_REQ,  DQ_BODY_ADDR,       DQ_TAIL_NONE)                      \
    /* home -> requester: the page in state S or M, its data follows */    \
    X(GRANT_DATA,   DQ_BODY_ADDR_STATE, DQ_TAIL_PAGE)                      \
    /* home -> requester: upgrade granted, S -> M, keep your data */       \
    X(GRANT,        DQ_BODY_ADDR,       DQ_TAIL_NONE)                      \
    /* home -> sharer: drop your S copy (go to I), then ack */             \
    X(INVAL,        DQ_BODY_ADDR,       DQ_TAIL_NONE)                      \
    /* sharer -> home: the page is I here now */                           \
    X(INVAL_ACK,    DQ_BODY_ADDR,       DQ_TAIL_NONE)                      \
    /* home -> owner: give up M, keep state I or S, send the data back */  \
    X(RECALL,       DQ_BODY_ADDR_STATE, DQ_TAIL_NONE)                      \
    /* owner -> home: recalled data; state is what the owner kept */       \
    X(RECALL_DATA,  DQ_BODY_ADDR_STATE, DQ_TAIL_PAGE)                      \
    /* home -> node: pages sent before they are asked for (forwarding) */  \
    X(FORWARD,      DQ_BODY_BATCH,      DQ_TAIL_BATCH)                     \
    /* any -> requester: request req_id refused, with a DqNackCode */      \
    X(NACK,         DQ_BODY_NACK,       DQ_TAIL_NONE)                      \
    /* any -> any: application message, opaque to libdqemu */             \
    X(CALL,         DQ_BODY_CALL,       DQ_TAIL_BYTES)                     \
    /* any -> caller: the answer to CALL req_id (dq_xport_request) */      \
    X(CALL_REPLY,   DQ_BODY_CALL,       DQ_TAIL_BYTES)

typedef enum DqMsgType {
#define DQ_MSG_ENUM(name, body, tail) DQ_MSG_##name,
    DQ_MSG_LIST(DQ_MSG_ENUM)
#undef DQ_MSG_ENUM
    DQ_MSG__COUNT
} DqMsgType;

static_assert(DQ_MSG__COUNT <= 0xffff, "types travel as u16");

/* ---- enumerations carried in bodies ----------------------------------- */

/* MSI page states as they travel (DESIGN.md §1); values are wire codes. */
#define DQ_PROTO_STATE_LIST(X)                                             \
    X(I)    /* invalid: no copy, PROT_NONE */                              \
    X(S)    /* shared: read-only copy, PROT_READ */                        \
    X(M)    /* modified: the only copy, PROT_READ|PROT_WRITE */

typedef enum DqProtoState {
#define DQ_PROTO_STATE_ENUM(name) DQ_PROTO_STATE_##name,
    DQ_PROTO_STATE_LIST(DQ_PROTO_STATE_ENUM)
#undef DQ_PROTO_STATE_ENUM
    DQ_PROTO_STATE__COUNT
} DqProtoState;

/* Why the master turned a JOIN_REQ away; values are wire codes. */
#define DQ_JOIN_REFUSE_LIST(X)                                             \
    X(VERSION,    "protocol version differs")                              \
    X(CLUSTER,    "cluster id differs")                                    \
    X(NODE_COUNT, "node count differs")                                    \
    X(NODE_ID,    "node id out of range or already joined")                \
    X(PAGE_SIZE,  "host page size differs")

typedef enum DqJoinRefuse {
#define DQ_JOIN_REFUSE_ENUM(name, text) DQ_JOIN_REFUSE_##name,
    DQ_JOIN_REFUSE_LIST(DQ_JOIN_REFUSE_ENUM)
#undef DQ_JOIN_REFUSE_ENUM
    DQ_JOIN_REFUSE__COUNT
} DqJoinRefuse;

/* Why a request was refused; values are wire codes. */
#define DQ_NACK_LIST(X)                                                    \
    X(RETRY,      "busy, send the request again later")                    \
    X(UNMAPPED,   "address is not mapped in the guest")                    \
    X(UNEXPECTED, "message not expected in the receiver's state")          \
    X(MALFORMED,  "message did not decode")                                \
    X(LOST,       "the page's last data died with a failed node")

typedef enum DqNackCode {
#define DQ_NACK_ENUM(name, text) DQ_NACK_##name,
    DQ_NACK_LIST(DQ_NACK_ENUM)
#undef DQ_NACK_ENUM
    DQ_NACK__COUNT
} DqNackCode;

/* ---- decoded messages ------------------------------------------------- */

typedef struct DqMsgJoin {
    uint64_t cluster_id;
    uint32_t page_size;
    uint16_t version;
    uint16_t node_count;
    DqJoinRefuse reason;        /* JOIN_REFUSE only; 0 otherwise */
} DqMsgJoin;

typedef struct DqMsgPage {
    uint64_t addr;
    DqProtoState state;         /* ADDR_STATE bodies only; 0 otherwise */
} DqMsgPage;

typedef struct DqMsgBatch {
    uint32_t count;
    DqProtoState state;
} DqMsgBatch;

typedef struct DqMsgNack {
    uint64_t addr;
    DqNackCode code;
} DqMsgNack;

typedef struct DqMsgShutdown {
    uint32_t code;
} DqMsgShutdown;

typedef struct DqMsgCall {
    uint32_t op;
    uint32_t aux;
    uint64_t arg;
} DqMsgCall;

/*
 * One message, header fields first.  Which union member is valid follows
 * from @type: join (JOIN_*), page (READ_REQ .. RECALL_DATA), batch
 * (FORWARD), nack (NACK), shutdown (SHUTDOWN), call (CALL, CALL_REPLY);
 * HEARTBEAT and SHUTDOWN_ACK have none.
 *
 * @tail points into the buffer the message was decoded from (zero copy),
 * so it lives exactly as long as that buffer.  For GRANT_DATA and
 * RECALL_DATA it is the page data; for FORWARD it is count entries read
 * with dq_proto_batch_get(); for CALL and CALL_REPLY it is the caller's
 * bytes (NULL when there are none).
 */
typedef struct DqMsg {
    DqMsgType type;
    uint32_t flags;             /* DQ_MSG_F_* */
    uint16_t src;
    uint16_t dst;
    uint64_t req_id;
    union {
        DqMsgJoin join;
        DqMsgPage page;
        DqMsgBatch batch;
        DqMsgNack nack;
        DqMsgShutdown shutdown;
        DqMsgCall call;
    } u;
    const uint8_t *tail;
    size_t tail_len;
} DqMsg;

/* ---- limits --------------------------------------------------------------
 *
 * The page size is a property of the cluster (agreed at join), not a
 * compile-time constant: 4096 on x86-64, 16K or 64K on other hosts, and
 * small values in tests and fuzzing so batches are cheap to explore.
 */
#define DQ_PROTO_PAGE_SIZE_MIN  64u
#define DQ_PROTO_PAGE_SIZE_MAX  (1u << 20)
/* No payload is ever larger, whatever the caller asks for. */
#define DQ_PROTO_PAYLOAD_MAX    (64u << 20)
/* Pages per FORWARD when the caller does not choose a payload limit. */
#define DQ_PROTO_DEFAULT_BATCH  16u

typedef struct DqProtoLimits {
    uint32_t page_size;         /* exact tail of GRANT_DATA, RECALL_DATA */
    uint32_t max_payload;       /* largest payload accepted or produced */
} DqProtoLimits;

/*
 * Set up limits for @page_size (a power of two in [DQ_PROTO_PAGE_SIZE_MIN,
 * DQ_PROTO_PAGE_SIZE_MAX]) and @max_payload, which must leave room for a
 * one-page FORWARD and not exceed DQ_PROTO_PAYLOAD_MAX; 0 picks room for
 * DQ_PROTO_DEFAULT_BATCH pages.  DQ_ERR_RANGE otherwise.
 */
DqStatus dq_proto_limits_init(DqProtoLimits *lim, uint32_t page_size,
                              uint32_t max_payload);

/* Largest whole message under @lim: what ZMQ_MAXMSGSIZE should be. */
size_t dq_proto_max_msg_size(const DqProtoLimits *lim);

/* How many pages fit in one FORWARD under @lim. */
uint32_t dq_proto_batch_max(const DqProtoLimits *lim);

/* ---- encode / decode ---------------------------------------------------- */

/*
 * Encode @msg into @buf.  The message is checked exactly as the decoder
 * would check it (a node never sends what its peer must reject): known
 * type and flags, node ids < DQ_MAX_NODES, @tail_len right for the type,
 * states, codes and page alignment of addresses, size within
 * @lim->max_payload (a CALL's tail may be anything from 0 bytes up to
 * max_payload - DQ_BODY_CALL).  On success *@out_len is the encoded size.
 *
 * When @msg->tail is NULL and @msg->tail_len is not 0, the tail bytes are
 * left unwritten for the caller to fill in place at
 * buf + dq_proto_tail_offset(type) (a page copied straight from guest
 * memory, FORWARD entries written with dq_proto_batch_put(), a CALL's
 * bytes); the FORWARD addresses are then not checked here.
 *
 * Errors: DQ_ERR_RANGE (bad @lim), DQ_ERR_PROTO_TYPE, _FLAGS, _NODE,
 * _TAIL, _FIELD, _TOO_BIG, DQ_ERR_NOSPACE (@buflen too small).
 * Context: any context; allocates nothing.
 */
DqStatus dq_proto_encode(const DqMsg *msg, const DqProtoLimits *lim,
                         uint8_t *buf, size_t buflen, size_t *out_len);

/*
 * Decode the @len bytes at @buf (one whole transport message) into @msg.
 * Checks, in order, and each with its own status: header present
 * (DQ_ERR_PROTO_SHORT), magic (_MAGIC), version (_VERSION), type (_TYPE),
 * flags (_FLAGS), src/dst < DQ_MAX_NODES (_NODE), payload within
 * @lim->max_payload (_TOO_BIG), payload_len == len - header (_LENGTH),
 * body size for the type (_BODY), tail length against the page size or
 * the FORWARD count (_TAIL; a CALL's tail may have any length), field
 * values (_FIELD: states, reasons, codes,
 * page alignment, a FORWARD that is empty or whose addresses do not
 * strictly increase).  DQ_ERR_RANGE for bad @lim.
 *
 * On success @msg->tail points into @buf.  On error *@msg is unspecified.
 * Never reads outside [buf, buf + len).
 * Context: any context; allocates nothing.
 */
DqStatus dq_proto_decode(const uint8_t *buf, size_t len,
                         const DqProtoLimits *lim, DqMsg *msg);

/* Header + body size of @type: where its tail starts.  0 if unknown. */
size_t dq_proto_tail_offset(DqMsgType type);

/* Body size and tail kind of @type (from DQ_MSG_LIST); 0/NONE if unknown. */
size_t dq_proto_body_size(DqMsgType type);
DqTailKind dq_proto_tail_kind(DqMsgType type);

/* Bytes of one FORWARD entry: the address and one page. */
static inline size_t dq_proto_batch_entry_size(uint32_t page_size)
{
    return DQ_BATCH_ENTRY_OFF_DATA + (size_t)page_size;
}

/*
 * Write entry @i (page @addr and @page_size bytes of @data) into the
 * FORWARD tail at @tail.  The caller sized the tail for the count.
 */
void dq_proto_batch_put(uint8_t *tail, uint32_t page_size, uint32_t i,
                        uint64_t addr, const void *data);

/*
 * Entry @i of a decoded FORWARD: its page address and a pointer to its
 * data (into the decoded buffer).  DQ_ERR_RANGE if @msg is not a FORWARD
 * or @i >= count.
 */
DqStatus dq_proto_batch_get(const DqMsg *msg, uint32_t i, uint64_t *addr,
                            const uint8_t **data);

/*
 * Same type, header fields, body fields of that type, and tail bytes.
 * For tests and assertions: fields the type does not carry are ignored.
 */
bool dq_proto_msg_equal(const DqMsg *a, const DqMsg *b);

/*
 * Names for diagnostics: "READ_REQ", "S", and the texts of the refuse
 * reasons and nack codes; "unknown" when out of range.
 */
const char *dq_msg_type_name(DqMsgType type);
const char *dq_proto_state_name(DqProtoState state);
const char *dq_join_refuse_str(DqJoinRefuse reason);
const char *dq_nack_str(DqNackCode code);

#endif /* DQEMU_PROTO_H */
