/*
 * proto.c - encoder and decoder of the dqemu wire protocol (proto.h).
 *
 * Every byte a peer sends passes through dq_proto_decode() before anything
 * else looks at it, so this file is where a corrupt, truncated or hostile
 * message must stop: it validates the header and the exact length for the
 * type before reading a body, never reads past the buffer, never
 * allocates, and returns one DqStatus per kind of defect.  The encoder
 * applies the same checks, so a node cannot send what its peer rejects.
 */
#include "proto.h"

#include <string.h>

/* ---- the table -------------------------------------------------------- */

typedef struct DqMsgDesc {
    const char *name;
    size_t body;
    DqTailKind tail;
} DqMsgDesc;

static const DqMsgDesc dq_msg_desc[DQ_MSG__COUNT] = {
#define DQ_MSG_DESC(name, body, tail) [DQ_MSG_##name] = { #name, body, tail },
    DQ_MSG_LIST(DQ_MSG_DESC)
#undef DQ_MSG_DESC
};

/* Every body must fit the fixed part the limits always leave room for. */
#define DQ_MSG_BODY_FITS(name, body, tail) \
    static_assert((body) <= DQ_BODY_MAX, #name " body exceeds DQ_BODY_MAX");
DQ_MSG_LIST(DQ_MSG_BODY_FITS)
#undef DQ_MSG_BODY_FITS

static const char *const dq_proto_state_names[DQ_PROTO_STATE__COUNT] = {
#define DQ_PROTO_STATE_NAME(name) [DQ_PROTO_STATE_##name] = #name,
    DQ_PROTO_STATE_LIST(DQ_PROTO_STATE_NAME)
#undef DQ_PROTO_STATE_NAME
};

static const char *const dq_join_refuse_text[DQ_JOIN_REFUSE__COUNT] = {
#define DQ_JOIN_REFUSE_TEXT(name, text) [DQ_JOIN_REFUSE_##name] = text,
    DQ_JOIN_REFUSE_LIST(DQ_JOIN_REFUSE_TEXT)
#undef DQ_JOIN_REFUSE_TEXT
};

static const char *const dq_nack_text[DQ_NACK__COUNT] = {
#define DQ_NACK_TEXT(name, text) [DQ_NACK_##name] = text,
    DQ_NACK_LIST(DQ_NACK_TEXT)
#undef DQ_NACK_TEXT
};

const char *dq_msg_type_name(DqMsgType type)
{
    if ((unsigned)type >= DQ_MSG__COUNT) {
        return "unknown";
    }
    return dq_msg_desc[type].name;
}

const char *dq_proto_state_name(DqProtoState state)
{
    if ((unsigned)state >= DQ_PROTO_STATE__COUNT) {
        return "unknown";
    }
    return dq_proto_state_names[state];
}

const char *dq_join_refuse_str(DqJoinRefuse reason)
{
    if ((unsigned)reason >= DQ_JOIN_REFUSE__COUNT) {
        return "unknown";
    }
    return dq_join_refuse_text[reason];
}

const char *dq_nack_str(DqNackCode code)
{
    if ((unsigned)code >= DQ_NACK__COUNT) {
        return "unknown";
    }
    return dq_nack_text[code];
}

size_t dq_proto_body_size(DqMsgType type)
{
    return (unsigned)type < DQ_MSG__COUNT ? dq_msg_desc[type].body : 0;
}

DqTailKind dq_proto_tail_kind(DqMsgType type)
{
    return (unsigned)type < DQ_MSG__COUNT ? dq_msg_desc[type].tail
                                          : DQ_TAIL_NONE;
}

size_t dq_proto_tail_offset(DqMsgType type)
{
    if ((unsigned)type >= DQ_MSG__COUNT) {
        return 0;
    }
    return DQ_PROTO_HDR_SIZE + dq_msg_desc[type].body;
}

/* ---- little-endian fields, byte by byte ------------------------------- */

static void put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static void put_u64(uint8_t *p, uint64_t v)
{
    put_u32(p, (uint32_t)v);
    put_u32(p + 4, (uint32_t)(v >> 32));
}

static uint16_t get_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (unsigned)p[1] << 8);
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 |
           (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_u64(const uint8_t *p)
{
    return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

/* ---- limits ----------------------------------------------------------- */

static bool is_pow2(uint32_t v)
{
    return v != 0 && (v & (v - 1)) == 0;
}

/*
 * The smallest payload limit we accept: a one-page FORWARD, which is also
 * larger than every fixed body and than a GRANT_DATA.
 */
static size_t min_payload(uint32_t page_size)
{
    return DQ_BODY_BATCH + dq_proto_batch_entry_size(page_size);
}

static bool limits_ok(const DqProtoLimits *lim)
{
    return lim != NULL && is_pow2(lim->page_size) &&
           lim->page_size >= DQ_PROTO_PAGE_SIZE_MIN &&
           lim->page_size <= DQ_PROTO_PAGE_SIZE_MAX &&
           lim->max_payload >= min_payload(lim->page_size) &&
           lim->max_payload <= DQ_PROTO_PAYLOAD_MAX;
}

static_assert(DQ_BODY_BATCH + DQ_BATCH_ENTRY_OFF_DATA + DQ_PROTO_PAGE_SIZE_MIN
              >= DQ_BODY_MAX, "min_payload() must cover every fixed body");
static_assert(DQ_BODY_BATCH + DQ_BATCH_ENTRY_OFF_DATA >= DQ_BODY_ADDR_STATE,
              "min_payload() must cover a GRANT_DATA");
static_assert((uint64_t)DQ_BODY_BATCH + DQ_PROTO_DEFAULT_BATCH *
              ((uint64_t)DQ_BATCH_ENTRY_OFF_DATA + DQ_PROTO_PAGE_SIZE_MAX)
              <= DQ_PROTO_PAYLOAD_MAX,
              "the default batch must fit any page size");

DqStatus dq_proto_limits_init(DqProtoLimits *lim, uint32_t page_size,
                              uint32_t max_payload)
{
    DqProtoLimits l;

    l.page_size = page_size;
    l.max_payload = max_payload;
    if (max_payload == 0 && is_pow2(page_size) &&
        page_size <= DQ_PROTO_PAGE_SIZE_MAX) {
        l.max_payload = DQ_BODY_BATCH + DQ_PROTO_DEFAULT_BATCH *
                        (uint32_t)dq_proto_batch_entry_size(page_size);
    }
    if (!limits_ok(&l)) {
        return DQ_ERR_RANGE;
    }
    *lim = l;
    return DQ_OK;
}

size_t dq_proto_max_msg_size(const DqProtoLimits *lim)
{
    return DQ_PROTO_HDR_SIZE + (size_t)lim->max_payload;
}

uint32_t dq_proto_batch_max(const DqProtoLimits *lim)
{
    return (uint32_t)((lim->max_payload - DQ_BODY_BATCH) /
                      dq_proto_batch_entry_size(lim->page_size));
}

/* ---- checks shared by encoder and decoder ----------------------------- */

static bool page_aligned(uint64_t addr, const DqProtoLimits *lim)
{
    return (addr & (lim->page_size - 1)) == 0;
}

/* Is @state one of the states in @mask (bit per DqProtoState)? */
static bool state_in(DqProtoState state, unsigned mask)
{
    return (unsigned)state < DQ_PROTO_STATE__COUNT &&
           (mask & (1u << state)) != 0;
}

#define STATE_BIT(s) (1u << DQ_PROTO_STATE_##s)

/*
 * Does @tail_len fit the type?  For a FORWARD the count must match exactly;
 * dividing instead of multiplying means no count can overflow the check.
 */
static DqStatus check_tail(const DqMsg *m, const DqProtoLimits *lim)
{
    size_t entry;

    switch (dq_msg_desc[m->type].tail) {
    case DQ_TAIL_NONE:
        return m->tail_len == 0 ? DQ_OK : DQ_ERR_PROTO_TAIL;
    case DQ_TAIL_PAGE:
        return m->tail_len == lim->page_size ? DQ_OK : DQ_ERR_PROTO_TAIL;
    case DQ_TAIL_BATCH:
        entry = dq_proto_batch_entry_size(lim->page_size);
        if (m->tail_len % entry != 0 ||
            m->tail_len / entry != m->u.batch.count) {
            return DQ_ERR_PROTO_TAIL;
        }
        return DQ_OK;
    case DQ_TAIL_BYTES:
        /* Any length: the payload limit is checked by the callers. */
        return DQ_OK;
    }
    return DQ_ERR_PROTO_TAIL;
}

/*
 * FORWARD entries: page-aligned addresses that strictly increase, so one
 * batch can never name a page twice.  Lengths were checked by check_tail().
 */
static DqStatus check_batch_entries(const DqMsg *m, const DqProtoLimits *lim)
{
    size_t entry = dq_proto_batch_entry_size(lim->page_size);
    uint64_t addr, prev = 0;
    uint32_t i;

    for (i = 0; i < m->u.batch.count; i++) {
        addr = get_u64(m->tail + i * entry + DQ_BATCH_ENTRY_OFF_ADDR);
        if (!page_aligned(addr, lim) || (i > 0 && addr <= prev)) {
            return DQ_ERR_PROTO_FIELD;
        }
        prev = addr;
    }
    return DQ_OK;
}

/*
 * Values the receiver will index with or switch on.  Join parameters are
 * not checked: the master answers bad ones with a JOIN_REFUSE reason,
 * which it could not do if the decoder had dropped the message.
 */
static DqStatus check_fields(const DqMsg *m, const DqProtoLimits *lim)
{
    switch (m->type) {
    case DQ_MSG_JOIN_REQ:
    case DQ_MSG_JOIN_ACCEPT:
    case DQ_MSG_HEARTBEAT:
    case DQ_MSG_SHUTDOWN:
    case DQ_MSG_SHUTDOWN_ACK:
        return DQ_OK;
    case DQ_MSG_JOIN_REFUSE:
        return (unsigned)m->u.join.reason < DQ_JOIN_REFUSE__COUNT
               ? DQ_OK : DQ_ERR_PROTO_FIELD;
    case DQ_MSG_READ_REQ:
    case DQ_MSG_WRITE_REQ:
    case DQ_MSG_UPGRADE_REQ:
    case DQ_MSG_GRANT:
    case DQ_MSG_INVAL:
    case DQ_MSG_INVAL_ACK:
        return page_aligned(m->u.page.addr, lim) ? DQ_OK : DQ_ERR_PROTO_FIELD;
    case DQ_MSG_GRANT_DATA:
        return page_aligned(m->u.page.addr, lim) &&
               state_in(m->u.page.state, STATE_BIT(S) | STATE_BIT(M))
               ? DQ_OK : DQ_ERR_PROTO_FIELD;
    case DQ_MSG_RECALL:
    case DQ_MSG_RECALL_DATA:
        return page_aligned(m->u.page.addr, lim) &&
               state_in(m->u.page.state, STATE_BIT(I) | STATE_BIT(S))
               ? DQ_OK : DQ_ERR_PROTO_FIELD;
    case DQ_MSG_FORWARD:
        if (m->u.batch.count == 0 ||
            !state_in(m->u.batch.state, STATE_BIT(S) | STATE_BIT(M))) {
            return DQ_ERR_PROTO_FIELD;
        }
        /* A reserved tail (encode with tail == NULL) is filled later. */
        return m->tail ? check_batch_entries(m, lim) : DQ_OK;
    case DQ_MSG_NACK:
        return page_aligned(m->u.nack.addr, lim) &&
               (unsigned)m->u.nack.code < DQ_NACK__COUNT
               ? DQ_OK : DQ_ERR_PROTO_FIELD;
    case DQ_MSG_CALL:
    case DQ_MSG_CALL_REPLY:
        /* Every value means something to the application, none to us. */
        return DQ_OK;
    case DQ_MSG__COUNT:
        break;
    }
    return DQ_ERR_PROTO_TYPE;
}

/* ---- bodies ----------------------------------------------------------- */

static void put_body(const DqMsg *m, uint8_t *b)
{
    switch (m->type) {
    case DQ_MSG_JOIN_REQ:
    case DQ_MSG_JOIN_ACCEPT:
    case DQ_MSG_JOIN_REFUSE:
        put_u64(b + DQ_JOIN_OFF_CLUSTER_ID, m->u.join.cluster_id);
        put_u32(b + DQ_JOIN_OFF_PAGE_SIZE, m->u.join.page_size);
        put_u16(b + DQ_JOIN_OFF_VERSION, m->u.join.version);
        put_u16(b + DQ_JOIN_OFF_NODE_COUNT, m->u.join.node_count);
        if (m->type == DQ_MSG_JOIN_REFUSE) {
            put_u32(b + DQ_JOIN_OFF_REASON, (uint32_t)m->u.join.reason);
        }
        break;
    case DQ_MSG_HEARTBEAT:
    case DQ_MSG_SHUTDOWN_ACK:
        break;
    case DQ_MSG_SHUTDOWN:
        put_u32(b + DQ_SHUTDOWN_OFF_CODE, m->u.shutdown.code);
        break;
    case DQ_MSG_READ_REQ:
    case DQ_MSG_WRITE_REQ:
    case DQ_MSG_UPGRADE_REQ:
    case DQ_MSG_GRANT:
    case DQ_MSG_INVAL:
    case DQ_MSG_INVAL_ACK:
        put_u64(b + DQ_PAGE_OFF_ADDR, m->u.page.addr);
        break;
    case DQ_MSG_GRANT_DATA:
    case DQ_MSG_RECALL:
    case DQ_MSG_RECALL_DATA:
        put_u64(b + DQ_PAGE_OFF_ADDR, m->u.page.addr);
        put_u32(b + DQ_PAGE_OFF_STATE, (uint32_t)m->u.page.state);
        break;
    case DQ_MSG_FORWARD:
        put_u32(b + DQ_BATCH_OFF_COUNT, m->u.batch.count);
        put_u32(b + DQ_BATCH_OFF_STATE, (uint32_t)m->u.batch.state);
        break;
    case DQ_MSG_NACK:
        put_u64(b + DQ_NACK_OFF_ADDR, m->u.nack.addr);
        put_u32(b + DQ_NACK_OFF_CODE, (uint32_t)m->u.nack.code);
        break;
    case DQ_MSG_CALL:
    case DQ_MSG_CALL_REPLY:
        put_u32(b + DQ_CALL_OFF_OP, m->u.call.op);
        put_u32(b + DQ_CALL_OFF_AUX, m->u.call.aux);
        put_u64(b + DQ_CALL_OFF_ARG, m->u.call.arg);
        break;
    case DQ_MSG__COUNT:
        break;
    }
}

/*
 * Read the body of @m->type from @b, which holds at least its body size.
 * Enum fields get the raw wire value; check_fields() judges them.
 */
static void get_body(DqMsg *m, const uint8_t *b)
{
    switch (m->type) {
    case DQ_MSG_JOIN_REQ:
    case DQ_MSG_JOIN_ACCEPT:
    case DQ_MSG_JOIN_REFUSE:
        m->u.join.cluster_id = get_u64(b + DQ_JOIN_OFF_CLUSTER_ID);
        m->u.join.page_size = get_u32(b + DQ_JOIN_OFF_PAGE_SIZE);
        m->u.join.version = get_u16(b + DQ_JOIN_OFF_VERSION);
        m->u.join.node_count = get_u16(b + DQ_JOIN_OFF_NODE_COUNT);
        if (m->type == DQ_MSG_JOIN_REFUSE) {
            m->u.join.reason = (DqJoinRefuse)get_u32(b + DQ_JOIN_OFF_REASON);
        }
        break;
    case DQ_MSG_HEARTBEAT:
    case DQ_MSG_SHUTDOWN_ACK:
        break;
    case DQ_MSG_SHUTDOWN:
        m->u.shutdown.code = get_u32(b + DQ_SHUTDOWN_OFF_CODE);
        break;
    case DQ_MSG_READ_REQ:
    case DQ_MSG_WRITE_REQ:
    case DQ_MSG_UPGRADE_REQ:
    case DQ_MSG_GRANT:
    case DQ_MSG_INVAL:
    case DQ_MSG_INVAL_ACK:
        m->u.page.addr = get_u64(b + DQ_PAGE_OFF_ADDR);
        break;
    case DQ_MSG_GRANT_DATA:
    case DQ_MSG_RECALL:
    case DQ_MSG_RECALL_DATA:
        m->u.page.addr = get_u64(b + DQ_PAGE_OFF_ADDR);
        m->u.page.state = (DqProtoState)get_u32(b + DQ_PAGE_OFF_STATE);
        break;
    case DQ_MSG_FORWARD:
        m->u.batch.count = get_u32(b + DQ_BATCH_OFF_COUNT);
        m->u.batch.state = (DqProtoState)get_u32(b + DQ_BATCH_OFF_STATE);
        break;
    case DQ_MSG_NACK:
        m->u.nack.addr = get_u64(b + DQ_NACK_OFF_ADDR);
        m->u.nack.code = (DqNackCode)get_u32(b + DQ_NACK_OFF_CODE);
        break;
    case DQ_MSG_CALL:
    case DQ_MSG_CALL_REPLY:
        m->u.call.op = get_u32(b + DQ_CALL_OFF_OP);
        m->u.call.aux = get_u32(b + DQ_CALL_OFF_AUX);
        m->u.call.arg = get_u64(b + DQ_CALL_OFF_ARG);
        break;
    case DQ_MSG__COUNT:
        break;
    }
}

/* ---- encode ----------------------------------------------------------- */

DqStatus dq_proto_encode(const DqMsg *msg, const DqProtoLimits *lim,
                         uint8_t *buf, size_t buflen, size_t *out_len)
{
    const DqMsgDesc *d;
    size_t payload;
    DqStatus st;

    if (!limits_ok(lim)) {
        return DQ_ERR_RANGE;
    }
    if ((unsigned)msg->type >= DQ_MSG__COUNT) {
        return DQ_ERR_PROTO_TYPE;
    }
    if (msg->flags & ~DQ_MSG_F_ALL) {
        return DQ_ERR_PROTO_FLAGS;
    }
    if (msg->src >= DQ_MAX_NODES || msg->dst >= DQ_MAX_NODES) {
        return DQ_ERR_PROTO_NODE;
    }
    st = check_tail(msg, lim);
    if (st != DQ_OK) {
        return st;
    }
    st = check_fields(msg, lim);
    if (st != DQ_OK) {
        return st;
    }
    d = &dq_msg_desc[msg->type];
    /* max_payload >= every body (limits_ok), so this cannot wrap. */
    if (msg->tail_len > lim->max_payload - d->body) {
        return DQ_ERR_PROTO_TOO_BIG;
    }
    payload = d->body + msg->tail_len;
    if (buflen < DQ_PROTO_HDR_SIZE || buflen - DQ_PROTO_HDR_SIZE < payload) {
        return DQ_ERR_NOSPACE;
    }

    put_u32(buf + DQ_HDR_OFF_MAGIC, DQ_PROTO_MAGIC);
    put_u16(buf + DQ_HDR_OFF_VERSION, DQ_PROTO_VERSION);
    put_u16(buf + DQ_HDR_OFF_TYPE, (uint16_t)msg->type);
    put_u32(buf + DQ_HDR_OFF_FLAGS, msg->flags);
    put_u16(buf + DQ_HDR_OFF_SRC, msg->src);
    put_u16(buf + DQ_HDR_OFF_DST, msg->dst);
    put_u64(buf + DQ_HDR_OFF_REQ_ID, msg->req_id);
    put_u32(buf + DQ_HDR_OFF_PAYLOAD_LEN, (uint32_t)payload);
    put_body(msg, buf + DQ_PROTO_HDR_SIZE);
    if (msg->tail != NULL && msg->tail_len != 0) {
        memcpy(buf + DQ_PROTO_HDR_SIZE + d->body, msg->tail, msg->tail_len);
    }
    *out_len = DQ_PROTO_HDR_SIZE + payload;
    return DQ_OK;
}

/* ---- decode ----------------------------------------------------------- */

DqStatus dq_proto_decode(const uint8_t *buf, size_t len,
                         const DqProtoLimits *lim, DqMsg *msg)
{
    const DqMsgDesc *d;
    uint32_t type, payload_len;
    size_t payload;
    DqStatus st;

    if (!limits_ok(lim)) {
        return DQ_ERR_RANGE;
    }
    memset(msg, 0, sizeof(*msg));
    if (len < DQ_PROTO_HDR_SIZE) {
        return DQ_ERR_PROTO_SHORT;
    }
    if (get_u32(buf + DQ_HDR_OFF_MAGIC) != DQ_PROTO_MAGIC) {
        return DQ_ERR_PROTO_MAGIC;
    }
    if (get_u16(buf + DQ_HDR_OFF_VERSION) != DQ_PROTO_VERSION) {
        return DQ_ERR_PROTO_VERSION;
    }
    type = get_u16(buf + DQ_HDR_OFF_TYPE);
    if (type >= DQ_MSG__COUNT) {
        return DQ_ERR_PROTO_TYPE;
    }
    msg->type = (DqMsgType)type;
    msg->flags = get_u32(buf + DQ_HDR_OFF_FLAGS);
    if (msg->flags & ~DQ_MSG_F_ALL) {
        return DQ_ERR_PROTO_FLAGS;
    }
    msg->src = get_u16(buf + DQ_HDR_OFF_SRC);
    msg->dst = get_u16(buf + DQ_HDR_OFF_DST);
    if (msg->src >= DQ_MAX_NODES || msg->dst >= DQ_MAX_NODES) {
        return DQ_ERR_PROTO_NODE;
    }
    msg->req_id = get_u64(buf + DQ_HDR_OFF_REQ_ID);

    /*
     * Size checks before any body byte is read: the declared length must
     * be within the limit and agree with what the transport delivered.
     */
    payload_len = get_u32(buf + DQ_HDR_OFF_PAYLOAD_LEN);
    payload = len - DQ_PROTO_HDR_SIZE;
    if (payload_len > lim->max_payload || payload > lim->max_payload) {
        return DQ_ERR_PROTO_TOO_BIG;
    }
    if (payload_len != payload) {
        return DQ_ERR_PROTO_LENGTH;
    }
    d = &dq_msg_desc[type];
    if (payload < d->body ||
        (d->tail == DQ_TAIL_NONE && payload != d->body)) {
        return DQ_ERR_PROTO_BODY;
    }

    get_body(msg, buf + DQ_PROTO_HDR_SIZE);
    msg->tail_len = payload - d->body;
    msg->tail = msg->tail_len ? buf + DQ_PROTO_HDR_SIZE + d->body : NULL;
    st = check_tail(msg, lim);
    if (st != DQ_OK) {
        return st;
    }
    return check_fields(msg, lim);
}

/* ---- batches ---------------------------------------------------------- */

void dq_proto_batch_put(uint8_t *tail, uint32_t page_size, uint32_t i,
                        uint64_t addr, const void *data)
{
    uint8_t *e = tail + (size_t)i * dq_proto_batch_entry_size(page_size);

    put_u64(e + DQ_BATCH_ENTRY_OFF_ADDR, addr);
    memcpy(e + DQ_BATCH_ENTRY_OFF_DATA, data, page_size);
}

DqStatus dq_proto_batch_get(const DqMsg *msg, uint32_t i, uint64_t *addr,
                            const uint8_t **data)
{
    size_t entry;
    const uint8_t *e;

    if (msg->type != DQ_MSG_FORWARD || msg->tail == NULL ||
        i >= msg->u.batch.count) {
        return DQ_ERR_RANGE;
    }
    /* The decoder made tail_len exactly count entries. */
    entry = msg->tail_len / msg->u.batch.count;
    if (entry <= DQ_BATCH_ENTRY_OFF_DATA) {
        return DQ_ERR_RANGE;
    }
    e = msg->tail + (size_t)i * entry;
    *addr = get_u64(e + DQ_BATCH_ENTRY_OFF_ADDR);
    *data = e + DQ_BATCH_ENTRY_OFF_DATA;
    return DQ_OK;
}

/* ---- comparison ------------------------------------------------------- */

bool dq_proto_msg_equal(const DqMsg *a, const DqMsg *b)
{
    if (a->type != b->type || a->flags != b->flags || a->src != b->src ||
        a->dst != b->dst || a->req_id != b->req_id ||
        a->tail_len != b->tail_len) {
        return false;
    }
    if (a->tail_len != 0 &&
        (a->tail == NULL || b->tail == NULL ||
         memcmp(a->tail, b->tail, a->tail_len) != 0)) {
        return false;
    }
    switch (a->type) {
    case DQ_MSG_JOIN_REQ:
    case DQ_MSG_JOIN_ACCEPT:
    case DQ_MSG_JOIN_REFUSE:
        return a->u.join.cluster_id == b->u.join.cluster_id &&
               a->u.join.page_size == b->u.join.page_size &&
               a->u.join.version == b->u.join.version &&
               a->u.join.node_count == b->u.join.node_count &&
               (a->type != DQ_MSG_JOIN_REFUSE ||
                a->u.join.reason == b->u.join.reason);
    case DQ_MSG_HEARTBEAT:
    case DQ_MSG_SHUTDOWN_ACK:
        return true;
    case DQ_MSG_SHUTDOWN:
        return a->u.shutdown.code == b->u.shutdown.code;
    case DQ_MSG_READ_REQ:
    case DQ_MSG_WRITE_REQ:
    case DQ_MSG_UPGRADE_REQ:
    case DQ_MSG_GRANT:
    case DQ_MSG_INVAL:
    case DQ_MSG_INVAL_ACK:
        return a->u.page.addr == b->u.page.addr;
    case DQ_MSG_GRANT_DATA:
    case DQ_MSG_RECALL:
    case DQ_MSG_RECALL_DATA:
        return a->u.page.addr == b->u.page.addr &&
               a->u.page.state == b->u.page.state;
    case DQ_MSG_FORWARD:
        return a->u.batch.count == b->u.batch.count &&
               a->u.batch.state == b->u.batch.state;
    case DQ_MSG_NACK:
        return a->u.nack.addr == b->u.nack.addr &&
               a->u.nack.code == b->u.nack.code;
    case DQ_MSG_CALL:
    case DQ_MSG_CALL_REPLY:
        return a->u.call.op == b->u.call.op &&
               a->u.call.aux == b->u.call.aux &&
               a->u.call.arg == b->u.call.arg;
    case DQ_MSG__COUNT:
        break;
    }
    return false;
}
