/*
 * Test that the wire protocol round-trips every message type, puts the
 * same bytes on the wire on any host, and rejects every kind of malformed
 * input with its own status, without reading outside the buffer (the ASan
 * build of this test copies each truncated message into a buffer of
 * exactly that size, so an over-read is a crash, not a silent pass).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "proto.h"

#define BATCH_PAGES 3
#define BIG_PAGE    65536u
/* The sample CALL's tail: opaque bytes, not a page multiple. */
#define CALL_TAIL   37u

/* Room for any sample message, up to a 3-page FORWARD of 64 KiB pages. */
#define SAMPLE_MAX  (DQ_PROTO_HDR_SIZE + DQ_BODY_BATCH + \
                     BATCH_PAGES * (DQ_BATCH_ENTRY_OFF_DATA + BIG_PAGE))

static uint8_t tail_buf[SAMPLE_MAX];
static uint8_t wire[SAMPLE_MAX];
static uint8_t wire2[SAMPLE_MAX];

static DqProtoLimits lim_for(uint32_t page_size)
{
    DqProtoLimits lim;

    assert_int_equal(dq_proto_limits_init(&lim, page_size, 0), DQ_OK);
    return lim;
}

/* A page-aligned guest address with every byte distinct above the page. */
static uint64_t sample_addr(uint32_t page_size, unsigned k)
{
    return (0x0000123456789000ull & ~(uint64_t)(page_size - 1)) +
           (uint64_t)k * page_size;
}

static void fill_pattern(uint8_t *p, size_t n, unsigned seed)
{
    size_t i;

    for (i = 0; i < n; i++) {
        p[i] = (uint8_t)(i * 31 + seed * 7 + (i >> 8));
    }
}

/*
 * A valid message of @type whose every field has a distinctive non-zero
 * value, so a round trip that dropped or swapped a field shows.
 */
static void make_msg(DqMsgType type, const DqProtoLimits *lim, DqMsg *m)
{
    uint32_t ps = lim->page_size;
    size_t entry = dq_proto_batch_entry_size(ps);
    static uint8_t page[BIG_PAGE];
    unsigned i;

    memset(m, 0, sizeof(*m));
    m->type = type;
    m->flags = DQ_MSG_F_ATOMIC;
    m->src = 5;
    m->dst = DQ_MAX_NODES - 1;
    m->req_id = 0x8102030405060708ull + type;

    switch (type) {
    case DQ_MSG_JOIN_REQ:
    case DQ_MSG_JOIN_ACCEPT:
    case DQ_MSG_JOIN_REFUSE:
        m->u.join.cluster_id = 0xfedcba9876543210ull;
        m->u.join.page_size = ps;
        m->u.join.version = DQ_PROTO_VERSION;
        m->u.join.node_count = 0x0203;
        if (type == DQ_MSG_JOIN_REFUSE) {
            m->u.join.reason = DQ_JOIN_REFUSE__COUNT - 1;
        }
        break;
    case DQ_MSG_HEARTBEAT:
    case DQ_MSG_SHUTDOWN_ACK:
        break;
    case DQ_MSG_SHUTDOWN:
        m->u.shutdown.code = 0x80000102u;
        break;
    case DQ_MSG_READ_REQ:
    case DQ_MSG_WRITE_REQ:
    case DQ_MSG_UPGRADE_REQ:
    case DQ_MSG_GRANT:
    case DQ_MSG_INVAL:
    case DQ_MSG_INVAL_ACK:
        m->u.page.addr = sample_addr(ps, type);
        break;
    case DQ_MSG_RECALL:
        m->u.page.addr = sample_addr(ps, type);
        m->u.page.state = DQ_PROTO_STATE_S;
        break;
    case DQ_MSG_GRANT_DATA:
    case DQ_MSG_RECALL_DATA:
        m->u.page.addr = sample_addr(ps, type);
        m->u.page.state = type == DQ_MSG_GRANT_DATA ? DQ_PROTO_STATE_M
                                                    : DQ_PROTO_STATE_S;
        fill_pattern(tail_buf, ps, type);
        m->tail = tail_buf;
        m->tail_len = ps;
        break;
    case DQ_MSG_FORWARD:
        m->u.batch.count = BATCH_PAGES;
        m->u.batch.state = DQ_PROTO_STATE_S;
        for (i = 0; i < BATCH_PAGES; i++) {
            fill_pattern(page, ps, i);
            dq_proto_batch_put(tail_buf, ps, i, sample_addr(ps, i * i), page);
        }
        m->tail = tail_buf;
        m->tail_len = BATCH_PAGES * entry;
        break;
    case DQ_MSG_NACK:
        m->u.nack.addr = sample_addr(ps, 9);
        m->u.nack.code = DQ_NACK_UNMAPPED;
        break;
    case DQ_MSG_CALL:
    case DQ_MSG_CALL_REPLY:
        /* Every byte distinct, and no length a page size would explain. */
        m->u.call.op = 0x81828384u + type;
        m->u.call.aux = 0x91929394u;
        m->u.call.arg = 0xa1a2a3a4a5a6a7a8ull;
        fill_pattern(tail_buf, CALL_TAIL, type);
        m->tail = tail_buf;
        m->tail_len = type == DQ_MSG_CALL ? CALL_TAIL : 1;
        break;
    case DQ_MSG__COUNT:
        fail();
    }
}

/* Encode a sample of @type into wire[]; return its length. */
static size_t encode_sample(DqMsgType type, const DqProtoLimits *lim,
                            DqMsg *m)
{
    size_t len = 0;

    make_msg(type, lim, m);
    assert_int_equal(dq_proto_encode(m, lim, wire, sizeof(wire), &len),
                     DQ_OK);
    return len;
}

/* Decode @len bytes from a heap copy of exactly that size. */
static DqStatus decode_exact(const uint8_t *bytes, size_t len,
                             const DqProtoLimits *lim, DqMsg *out)
{
    uint8_t *copy = malloc(len ? len : 1);
    DqStatus st;

    assert_non_null(copy);
    memcpy(copy, bytes, len);
    st = dq_proto_decode(copy, len, lim, out);
    free(copy);
    return st;
}

static void set_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void set_u32(uint8_t *p, uint32_t v)
{
    set_u16(p, (uint16_t)v);
    set_u16(p + 2, (uint16_t)(v >> 16));
}

static void set_u64(uint8_t *p, uint64_t v)
{
    set_u32(p, (uint32_t)v);
    set_u32(p + 4, (uint32_t)(v >> 32));
}

/* Make the header's payload_len agree with a buffer of @len bytes. */
static void fix_payload_len(uint8_t *buf, size_t len)
{
    set_u32(buf + DQ_HDR_OFF_PAYLOAD_LEN, (uint32_t)(len - DQ_PROTO_HDR_SIZE));
}

/* ---- round trips -------------------------------------------------------- */

static void roundtrip_preserves_every_field_of_every_type(void **state)
{
    DqProtoLimits lim = lim_for(4096);
    DqMsg in, out;
    size_t len;
    int t;

    (void)state;
    for (t = 0; t < DQ_MSG__COUNT; t++) {
        len = encode_sample(t, &lim, &in);
        assert_int_equal(len, dq_proto_tail_offset(t) + in.tail_len);
        assert_int_equal(dq_proto_decode(wire, len, &lim, &out), DQ_OK);
        assert_true(dq_proto_msg_equal(&in, &out));
        assert_int_equal(out.type, t);
        assert_int_equal(out.flags, DQ_MSG_F_ATOMIC);
        assert_int_equal(out.src, 5);
        assert_int_equal(out.dst, DQ_MAX_NODES - 1);
        assert_true(out.req_id == 0x8102030405060708ull + (unsigned)t);
    }
}

static void roundtrip_works_for_every_supported_page_size(void **state)
{
    static const uint32_t sizes[] = { DQ_PROTO_PAGE_SIZE_MIN, 4096, 16384,
                                      BIG_PAGE };
    DqMsg in, out;
    size_t i, len;
    int t;

    (void)state;
    for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        DqProtoLimits lim = lim_for(sizes[i]);

        for (t = 0; t < DQ_MSG__COUNT; t++) {
            len = encode_sample(t, &lim, &in);
            assert_int_equal(dq_proto_decode(wire, len, &lim, &out), DQ_OK);
            assert_true(dq_proto_msg_equal(&in, &out));
        }
    }
}

static void decode_points_the_tail_into_the_buffer(void **state)
{
    DqProtoLimits lim = lim_for(4096);
    DqMsg in, out;
    size_t len;

    (void)state;
    len = encode_sample(DQ_MSG_GRANT_DATA, &lim, &in);
    assert_int_equal(dq_proto_decode(wire, len, &lim, &out), DQ_OK);
    assert_ptr_equal(out.tail, wire + dq_proto_tail_offset(DQ_MSG_GRANT_DATA));
    assert_int_equal(out.tail_len, 4096);

    len = encode_sample(DQ_MSG_READ_REQ, &lim, &in);
    assert_int_equal(dq_proto_decode(wire, len, &lim, &out), DQ_OK);
    assert_null(out.tail);
    assert_int_equal(out.tail_len, 0);
}

static void forward_entries_read_back_in_order(void **state)
{
    DqProtoLimits lim = lim_for(256);
    uint8_t page[256];
    const uint8_t *data;
    uint64_t addr;
    DqMsg in, out;
    size_t len;
    uint32_t i;

    (void)state;
    len = encode_sample(DQ_MSG_FORWARD, &lim, &in);
    assert_int_equal(dq_proto_decode(wire, len, &lim, &out), DQ_OK);
    assert_int_equal(out.u.batch.count, BATCH_PAGES);
    for (i = 0; i < BATCH_PAGES; i++) {
        assert_int_equal(dq_proto_batch_get(&out, i, &addr, &data), DQ_OK);
        assert_true(addr == sample_addr(256, i * i));
        fill_pattern(page, sizeof(page), i);
        assert_memory_equal(data, page, sizeof(page));
        assert_true(data > wire && data < wire + len);
    }
    assert_int_equal(dq_proto_batch_get(&out, BATCH_PAGES, &addr, &data),
                     DQ_ERR_RANGE);
    len = encode_sample(DQ_MSG_GRANT_DATA, &lim, &in);
    assert_int_equal(dq_proto_decode(wire, len, &lim, &out), DQ_OK);
    assert_int_equal(dq_proto_batch_get(&out, 0, &addr, &data), DQ_ERR_RANGE);
}

/*
 * A sender may encode with tail == NULL and fill the tail in place, so
 * pages go from guest memory to the wire with a single copy.
 */
static void encode_leaves_a_null_tail_for_the_caller_to_fill(void **state)
{
    DqProtoLimits lim = lim_for(64);
    uint8_t page[64];
    DqMsg in, out;
    uint64_t addr;
    const uint8_t *data;
    size_t len;
    uint8_t *tail;

    (void)state;
    memset(&in, 0, sizeof(in));
    in.type = DQ_MSG_FORWARD;
    in.src = 0;
    in.dst = 1;
    in.u.batch.count = 2;
    in.u.batch.state = DQ_PROTO_STATE_S;
    in.tail_len = 2 * dq_proto_batch_entry_size(64);
    memset(wire, 0xee, sizeof(wire));
    assert_int_equal(dq_proto_encode(&in, &lim, wire, sizeof(wire), &len),
                     DQ_OK);
    assert_int_equal(len, dq_proto_tail_offset(DQ_MSG_FORWARD) + in.tail_len);
    /* Nothing written past the body yet. */
    tail = wire + dq_proto_tail_offset(DQ_MSG_FORWARD);
    assert_int_equal(tail[0], 0xee);
    assert_int_equal(tail[in.tail_len - 1], 0xee);

    fill_pattern(page, sizeof(page), 1);
    dq_proto_batch_put(tail, 64, 0, 0x1000, page);
    dq_proto_batch_put(tail, 64, 1, 0x1040, page);
    assert_int_equal(dq_proto_decode(wire, len, &lim, &out), DQ_OK);
    assert_int_equal(dq_proto_batch_get(&out, 1, &addr, &data), DQ_OK);
    assert_true(addr == 0x1040);
    assert_memory_equal(data, page, sizeof(page));
}

/* ---- the bytes on the wire ---------------------------------------------- */

static void encoding_is_little_endian_regardless_of_host(void **state)
{
    static const uint8_t golden[] = {
        /* header */
        0x44, 0x51, 0x4d, 0x50,                         /* "DQMP" */
        0x01, 0x00,                                     /* version 1 */
        0x02, 0x00,                                     /* JOIN_REFUSE */
        0x00, 0x00, 0x00, 0x00,                         /* flags */
        0x00, 0x00,                                     /* src 0 */
        0x07, 0x00,                                     /* dst 7 */
        0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, /* req_id */
        0x14, 0x00, 0x00, 0x00,                         /* payload 20 */
        /* body */
        0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, /* cluster_id */
        0x00, 0x10, 0x00, 0x00,                         /* page_size */
        0x01, 0x00,                                     /* version */
        0x04, 0x00,                                     /* node_count */
        0x04, 0x00, 0x00, 0x00,                         /* PAGE_SIZE */
    };
    DqProtoLimits lim = lim_for(4096);
    DqMsg m, out;
    size_t len = 0, i;

    (void)state;
    memset(&m, 0, sizeof(m));
    m.type = DQ_MSG_JOIN_REFUSE;
    m.src = 0;
    m.dst = 7;
    m.req_id = 0x1122334455667788ull;
    m.u.join.cluster_id = 0x0102030405060708ull;
    m.u.join.page_size = 4096;
    m.u.join.version = 1;
    m.u.join.node_count = 4;
    m.u.join.reason = DQ_JOIN_REFUSE_PAGE_SIZE;
    assert_int_equal(dq_proto_encode(&m, &lim, wire, sizeof(wire), &len),
                     DQ_OK);
    assert_int_equal(len, sizeof(golden));
    for (i = 0; i < sizeof(golden); i++) {
        if (wire[i] != golden[i]) {
            fail_msg("byte %zu: got 0x%02x, want 0x%02x", i, wire[i],
                     golden[i]);
        }
    }
    assert_int_equal(dq_proto_decode(golden, sizeof(golden), &lim, &out),
                     DQ_OK);
    assert_true(dq_proto_msg_equal(&m, &out));
}

static void grant_data_has_its_page_right_after_the_body(void **state)
{
    static const uint8_t golden_head[] = {
        0x44, 0x51, 0x4d, 0x50, 0x01, 0x00,
        0x09, 0x00,                                     /* GRANT_DATA */
        0x01, 0x00, 0x00, 0x00,                         /* ATOMIC */
        0x03, 0x00, 0x3f, 0x00,                         /* 3 -> 63 */
        0xef, 0xcd, 0xab, 0x89, 0x67, 0x45, 0x23, 0x01,
        0x4c, 0x00, 0x00, 0x00,                         /* 12 + 64 */
        0x40, 0x9a, 0x78, 0x56, 0x34, 0x12, 0x00, 0x00, /* addr */
        0x02, 0x00, 0x00, 0x00,                         /* M */
    };
    DqProtoLimits lim = lim_for(64);
    uint8_t page[64];
    DqMsg m;
    size_t len = 0;

    (void)state;
    fill_pattern(page, sizeof(page), 3);
    memset(&m, 0, sizeof(m));
    m.type = DQ_MSG_GRANT_DATA;
    m.flags = DQ_MSG_F_ATOMIC;
    m.src = 3;
    m.dst = 63;
    m.req_id = 0x0123456789abcdefull;
    m.u.page.addr = 0x123456789a40ull;
    m.u.page.state = DQ_PROTO_STATE_M;
    m.tail = page;
    m.tail_len = sizeof(page);
    assert_int_equal(dq_proto_encode(&m, &lim, wire, sizeof(wire), &len),
                     DQ_OK);
    assert_int_equal(len, sizeof(golden_head) + sizeof(page));
    assert_memory_equal(wire, golden_head, sizeof(golden_head));
    assert_memory_equal(wire + sizeof(golden_head), page, sizeof(page));
}

/* The type code is the list position: pin it so nobody reorders the list. */
static void wire_type_codes_never_change(void **state)
{
    static const struct {
        DqMsgType type;
        unsigned code;
        const char *name;
        size_t body;
        DqTailKind tail;
    } pinned[] = {
        { DQ_MSG_JOIN_REQ, 0, "JOIN_REQ", 16, DQ_TAIL_NONE },
        { DQ_MSG_JOIN_ACCEPT, 1, "JOIN_ACCEPT", 16, DQ_TAIL_NONE },
        { DQ_MSG_JOIN_REFUSE, 2, "JOIN_REFUSE", 20, DQ_TAIL_NONE },
        { DQ_MSG_HEARTBEAT, 3, "HEARTBEAT", 0, DQ_TAIL_NONE },
        { DQ_MSG_SHUTDOWN, 4, "SHUTDOWN", 4, DQ_TAIL_NONE },
        { DQ_MSG_SHUTDOWN_ACK, 5, "SHUTDOWN_ACK", 0, DQ_TAIL_NONE },
        { DQ_MSG_READ_REQ, 6, "READ_REQ", 8, DQ_TAIL_NONE },
        { DQ_MSG_WRITE_REQ, 7, "WRITE_REQ", 8, DQ_TAIL_NONE },
        { DQ_MSG_UPGRADE_REQ, 8, "UPGRADE_REQ", 8, DQ_TAIL_NONE },
        { DQ_MSG_GRANT_DATA, 9, "GRANT_DATA", 12, DQ_TAIL_PAGE },
        { DQ_MSG_GRANT, 10, "GRANT", 8, DQ_TAIL_NONE },
        { DQ_MSG_INVAL, 11, "INVAL", 8, DQ_TAIL_NONE },
        { DQ_MSG_INVAL_ACK, 12, "INVAL_ACK", 8, DQ_TAIL_NONE },
        { DQ_MSG_RECALL, 13, "RECALL", 12, DQ_TAIL_NONE },
        { DQ_MSG_RECALL_DATA, 14, "RECALL_DATA", 12, DQ_TAIL_PAGE },
        { DQ_MSG_FORWARD, 15, "FORWARD", 8, DQ_TAIL_BATCH },
        { DQ_MSG_NACK, 16, "NACK", 12, DQ_TAIL_NONE },
        { DQ_MSG_CALL, 17, "CALL", 16, DQ_TAIL_BYTES },
        { DQ_MSG_CALL_REPLY, 18, "CALL_REPLY", 16, DQ_TAIL_BYTES },
    };
    size_t i;

    (void)state;
    assert_int_equal(sizeof(pinned) / sizeof(pinned[0]), DQ_MSG__COUNT);
    for (i = 0; i < sizeof(pinned) / sizeof(pinned[0]); i++) {
        assert_int_equal(pinned[i].type, pinned[i].code);
        assert_string_equal(dq_msg_type_name(pinned[i].type), pinned[i].name);
        assert_int_equal(dq_proto_body_size(pinned[i].type), pinned[i].body);
        assert_int_equal(dq_proto_tail_kind(pinned[i].type), pinned[i].tail);
        assert_int_equal(dq_proto_tail_offset(pinned[i].type),
                         DQ_PROTO_HDR_SIZE + pinned[i].body);
    }
    assert_int_equal(DQ_PROTO_STATE_I, 0);
    assert_int_equal(DQ_PROTO_STATE_S, 1);
    assert_int_equal(DQ_PROTO_STATE_M, 2);
}

static void every_name_is_distinct_and_out_of_range_is_unknown(void **state)
{
    int i, j;

    (void)state;
    for (i = 0; i < DQ_MSG__COUNT; i++) {
        for (j = 0; j < i; j++) {
            assert_string_not_equal(dq_msg_type_name(i), dq_msg_type_name(j));
        }
    }
    assert_string_equal(dq_msg_type_name(DQ_MSG__COUNT), "unknown");
    assert_string_equal(dq_msg_type_name(-1), "unknown");
    assert_string_equal(dq_proto_state_name(DQ_PROTO_STATE_S), "S");
    assert_string_equal(dq_proto_state_name(DQ_PROTO_STATE__COUNT), "unknown");
    for (i = 0; i < DQ_JOIN_REFUSE__COUNT; i++) {
        assert_string_not_equal(dq_join_refuse_str(i), "unknown");
    }
    assert_string_equal(dq_join_refuse_str(DQ_JOIN_REFUSE__COUNT), "unknown");
    for (i = 0; i < DQ_NACK__COUNT; i++) {
        assert_string_not_equal(dq_nack_str(i), "unknown");
    }
    assert_string_equal(dq_nack_str(DQ_NACK__COUNT), "unknown");
    assert_int_equal(dq_proto_body_size(DQ_MSG__COUNT), 0);
    assert_int_equal(dq_proto_tail_offset(DQ_MSG__COUNT), 0);
}

/* ---- rejections --------------------------------------------------------- */

static void decode_rejects_a_buffer_shorter_than_the_header(void **state)
{
    DqProtoLimits lim = lim_for(4096);
    DqMsg in, out;
    size_t n;

    (void)state;
    encode_sample(DQ_MSG_HEARTBEAT, &lim, &in);
    for (n = 0; n < DQ_PROTO_HDR_SIZE; n++) {
        assert_int_equal(decode_exact(wire, n, &lim, &out),
                         DQ_ERR_PROTO_SHORT);
    }
    assert_int_equal(decode_exact(wire, DQ_PROTO_HDR_SIZE, &lim, &out), DQ_OK);
}

static void decode_rejects_wrong_magic(void **state)
{
    DqProtoLimits lim = lim_for(4096);
    DqMsg in, out;
    size_t len, i;

    (void)state;
    len = encode_sample(DQ_MSG_READ_REQ, &lim, &in);
    for (i = 0; i < 4; i++) {
        wire[DQ_HDR_OFF_MAGIC + i] ^= 0x20;
        assert_int_equal(dq_proto_decode(wire, len, &lim, &out),
                         DQ_ERR_PROTO_MAGIC);
        wire[DQ_HDR_OFF_MAGIC + i] ^= 0x20;
    }
    /* Big-endian magic is wrong magic, not a different dialect. */
    wire[0] = 'P';
    wire[1] = 'M';
    wire[2] = 'Q';
    wire[3] = 'D';
    assert_int_equal(dq_proto_decode(wire, len, &lim, &out),
                     DQ_ERR_PROTO_MAGIC);
}

static void decode_rejects_wrong_version(void **state)
{
    static const uint16_t bad[] = { 0, DQ_PROTO_VERSION + 1, 0x0100, 0xffff };
    DqProtoLimits lim = lim_for(4096);
    DqMsg in, out;
    size_t len, i;

    (void)state;
    len = encode_sample(DQ_MSG_JOIN_REQ, &lim, &in);
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        set_u16(wire + DQ_HDR_OFF_VERSION, bad[i]);
        assert_int_equal(dq_proto_decode(wire, len, &lim, &out),
                         DQ_ERR_PROTO_VERSION);
    }
}

static void decode_rejects_unknown_type(void **state)
{
    static const uint16_t bad[] = { DQ_MSG__COUNT, DQ_MSG__COUNT + 1, 0x0100,
                                    0xffff };
    DqProtoLimits lim = lim_for(4096);
    DqMsg in, out;
    size_t len, i;

    (void)state;
    len = encode_sample(DQ_MSG_HEARTBEAT, &lim, &in);
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        set_u16(wire + DQ_HDR_OFF_TYPE, bad[i]);
        assert_int_equal(dq_proto_decode(wire, len, &lim, &out),
                         DQ_ERR_PROTO_TYPE);
    }
}

static void decode_rejects_unknown_flags(void **state)
{
    DqProtoLimits lim = lim_for(4096);
    DqMsg in, out;
    size_t len;
    unsigned bit;

    (void)state;
    len = encode_sample(DQ_MSG_WRITE_REQ, &lim, &in);
    for (bit = 0; bit < 32; bit++) {
        if (DQ_MSG_F_ALL & (1u << bit)) {
            continue;
        }
        set_u32(wire + DQ_HDR_OFF_FLAGS, DQ_MSG_F_ATOMIC | 1u << bit);
        assert_int_equal(dq_proto_decode(wire, len, &lim, &out),
                         DQ_ERR_PROTO_FLAGS);
    }
}

static void decode_rejects_node_ids_beyond_max_nodes(void **state)
{
    static const uint16_t bad[] = { DQ_MAX_NODES, DQ_MAX_NODES + 1, 0x0100,
                                    0xffff };
    DqProtoLimits lim = lim_for(4096);
    DqMsg in, out;
    size_t len, i;

    (void)state;
    len = encode_sample(DQ_MSG_INVAL, &lim, &in);
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        set_u16(wire + DQ_HDR_OFF_SRC, bad[i]);
        assert_int_equal(dq_proto_decode(wire, len, &lim, &out),
                         DQ_ERR_PROTO_NODE);
        set_u16(wire + DQ_HDR_OFF_SRC, DQ_MAX_NODES - 1);
        set_u16(wire + DQ_HDR_OFF_DST, bad[i]);
        assert_int_equal(dq_proto_decode(wire, len, &lim, &out),
                         DQ_ERR_PROTO_NODE);
        set_u16(wire + DQ_HDR_OFF_DST, 0);
        assert_int_equal(dq_proto_decode(wire, len, &lim, &out), DQ_OK);
    }
}

static void decode_rejects_oversized_message(void **state)
{
    DqProtoLimits lim;
    DqMsg in, out;
    size_t len;
    uint8_t *big;

    (void)state;
    /* Room for exactly one page per FORWARD. */
    assert_int_equal(dq_proto_limits_init(&lim, 64, DQ_BODY_BATCH + 72),
                     DQ_OK);
    assert_int_equal(dq_proto_batch_max(&lim), 1);

    /* A 3-page FORWARD is fine for a peer that allows it ... */
    {
        DqProtoLimits roomy = lim_for(64);

        len = encode_sample(DQ_MSG_FORWARD, &roomy, &in);
        assert_int_equal(dq_proto_decode(wire, len, &roomy, &out), DQ_OK);
    }
    /* ... but too big for us, whatever the declared length says. */
    assert_int_equal(dq_proto_decode(wire, len, &lim, &out),
                     DQ_ERR_PROTO_TOO_BIG);
    set_u32(wire + DQ_HDR_OFF_PAYLOAD_LEN, 8);
    assert_int_equal(dq_proto_decode(wire, len, &lim, &out),
                     DQ_ERR_PROTO_TOO_BIG);

    /* A small buffer that claims a huge payload is too big, not short. */
    encode_sample(DQ_MSG_HEARTBEAT, &lim, &in);
    set_u32(wire + DQ_HDR_OFF_PAYLOAD_LEN, 0xffffffffu);
    assert_int_equal(decode_exact(wire, DQ_PROTO_HDR_SIZE, &lim, &out),
                     DQ_ERR_PROTO_TOO_BIG);
    set_u32(wire + DQ_HDR_OFF_PAYLOAD_LEN, lim.max_payload + 1);
    assert_int_equal(decode_exact(wire, DQ_PROTO_HDR_SIZE, &lim, &out),
                     DQ_ERR_PROTO_TOO_BIG);

    /* The exact limit is allowed through to the length checks. */
    big = calloc(1, dq_proto_max_msg_size(&lim) + 1);
    assert_non_null(big);
    memcpy(big, wire, DQ_PROTO_HDR_SIZE);
    set_u32(big + DQ_HDR_OFF_PAYLOAD_LEN, lim.max_payload);
    assert_int_equal(dq_proto_decode(big, dq_proto_max_msg_size(&lim), &lim,
                                     &out), DQ_ERR_PROTO_BODY);
    assert_int_equal(dq_proto_decode(big, dq_proto_max_msg_size(&lim) + 1,
                                     &lim, &out), DQ_ERR_PROTO_TOO_BIG);
    free(big);
}

static void decode_rejects_length_mismatch(void **state)
{
    DqProtoLimits lim = lim_for(4096);
    DqMsg in, out;
    size_t len;
    int t;

    (void)state;
    for (t = 0; t < DQ_MSG__COUNT; t++) {
        len = encode_sample(t, &lim, &in);
        /* One trailing byte the header does not account for. */
        wire[len] = 0;
        assert_int_equal(dq_proto_decode(wire, len + 1, &lim, &out),
                         DQ_ERR_PROTO_LENGTH);
        set_u32(wire + DQ_HDR_OFF_PAYLOAD_LEN,
                (uint32_t)(len - DQ_PROTO_HDR_SIZE + 1));
        assert_int_equal(dq_proto_decode(wire, len, &lim, &out),
                         DQ_ERR_PROTO_LENGTH);
        if (len > DQ_PROTO_HDR_SIZE) {
            set_u32(wire + DQ_HDR_OFF_PAYLOAD_LEN,
                    (uint32_t)(len - DQ_PROTO_HDR_SIZE - 1));
            assert_int_equal(dq_proto_decode(wire, len, &lim, &out),
                             DQ_ERR_PROTO_LENGTH);
        }
    }
}

static void decode_rejects_body_shorter_or_longer_than_the_type_requires(
    void **state)
{
    DqProtoLimits lim = lim_for(4096);
    DqMsg in, out;
    size_t body, n;
    int t;

    (void)state;
    for (t = 0; t < DQ_MSG__COUNT; t++) {
        encode_sample(t, &lim, &in);
        body = dq_proto_body_size(t);
        for (n = 0; n < body; n++) {
            fix_payload_len(wire, DQ_PROTO_HDR_SIZE + n);
            assert_int_equal(decode_exact(wire, DQ_PROTO_HDR_SIZE + n, &lim,
                                          &out), DQ_ERR_PROTO_BODY);
        }
        if (dq_proto_tail_kind(t) == DQ_TAIL_NONE) {
            /* Types without a tail take not one byte more. */
            for (n = body + 1; n < body + 9; n++) {
                fix_payload_len(wire, DQ_PROTO_HDR_SIZE + n);
                assert_int_equal(decode_exact(wire, DQ_PROTO_HDR_SIZE + n,
                                              &lim, &out), DQ_ERR_PROTO_BODY);
            }
        }
    }
}

static void decode_rejects_a_page_tail_other_than_the_page_size(void **state)
{
    DqProtoLimits lim = lim_for(4096);
    DqProtoLimits small = lim_for(2048);
    DqMsg in, out;
    size_t len;

    (void)state;
    len = encode_sample(DQ_MSG_RECALL_DATA, &lim, &in);
    /* Sent by a node with 4 KiB pages, received by one with 2 KiB pages. */
    assert_int_equal(dq_proto_decode(wire, len, &small, &out),
                     DQ_ERR_PROTO_TAIL);
    fix_payload_len(wire, len - 1);
    assert_int_equal(dq_proto_decode(wire, len - 1, &lim, &out),
                     DQ_ERR_PROTO_TAIL);
    wire[len] = 0;
    fix_payload_len(wire, len + 1);
    assert_int_equal(dq_proto_decode(wire, len + 1, &lim, &out),
                     DQ_ERR_PROTO_TAIL);
    /* The body alone, with no page at all. */
    fix_payload_len(wire, dq_proto_tail_offset(DQ_MSG_RECALL_DATA));
    assert_int_equal(dq_proto_decode(wire,
                                     dq_proto_tail_offset(DQ_MSG_RECALL_DATA),
                                     &lim, &out), DQ_ERR_PROTO_TAIL);
}

static void decode_rejects_a_batch_tail_inconsistent_with_its_count(
    void **state)
{
    DqProtoLimits lim = lim_for(64);
    uint8_t *count = wire + DQ_PROTO_HDR_SIZE + DQ_BATCH_OFF_COUNT;
    size_t entry = dq_proto_batch_entry_size(64);
    DqMsg in, out;
    size_t len;

    (void)state;
    len = encode_sample(DQ_MSG_FORWARD, &lim, &in);
    set_u32(count, BATCH_PAGES + 1);
    assert_int_equal(dq_proto_decode(wire, len, &lim, &out),
                     DQ_ERR_PROTO_TAIL);
    set_u32(count, BATCH_PAGES - 1);
    assert_int_equal(dq_proto_decode(wire, len, &lim, &out),
                     DQ_ERR_PROTO_TAIL);
    set_u32(count, 0xffffffffu);
    assert_int_equal(dq_proto_decode(wire, len, &lim, &out),
                     DQ_ERR_PROTO_TAIL);
    /* Not a whole number of entries. */
    set_u32(count, BATCH_PAGES);
    fix_payload_len(wire, len - 1);
    assert_int_equal(dq_proto_decode(wire, len - 1, &lim, &out),
                     DQ_ERR_PROTO_TAIL);
    fix_payload_len(wire, len - entry + 8);
    assert_int_equal(dq_proto_decode(wire, len - entry + 8, &lim, &out),
                     DQ_ERR_PROTO_TAIL);
}

/*
 * 72-byte entries (64-byte pages): count = 2^29 + 1 times 72 is 72 modulo
 * 2^32, so a 32-bit "count * entry == tail" would take this one-entry tail
 * as a 536870913-entry batch.
 */
static void decode_rejects_a_batch_count_whose_product_would_overflow(
    void **state)
{
    DqProtoLimits lim = lim_for(64);
    uint8_t *count = wire + DQ_PROTO_HDR_SIZE + DQ_BATCH_OFF_COUNT;
    uint8_t page[64];
    size_t len;
    DqMsg out;

    (void)state;
    assert_int_equal((uint32_t)((((uint64_t)1 << 29) + 1) * 72), 72);
    memset(&out, 0, sizeof(out));
    out.type = DQ_MSG_FORWARD;
    out.u.batch.count = 1;
    out.u.batch.state = DQ_PROTO_STATE_S;
    out.tail_len = dq_proto_batch_entry_size(64);
    assert_int_equal(dq_proto_encode(&out, &lim, wire, sizeof(wire), &len),
                     DQ_OK);
    memset(page, 0, sizeof(page));
    dq_proto_batch_put(wire + dq_proto_tail_offset(DQ_MSG_FORWARD), 64, 0,
                       0, page);
    assert_int_equal(dq_proto_decode(wire, len, &lim, &out), DQ_OK);
    set_u32(count, (1u << 29) + 1);
    assert_int_equal(dq_proto_decode(wire, len, &lim, &out),
                     DQ_ERR_PROTO_TAIL);
}

/* Patch the u32 at body offset @off of a sample of @type; expect FIELD. */
static void expect_field_error(DqMsgType type, size_t off, uint32_t v,
                               const DqProtoLimits *lim)
{
    DqMsg in, out;
    size_t len;

    len = encode_sample(type, lim, &in);
    set_u32(wire + DQ_PROTO_HDR_SIZE + off, v);
    assert_int_equal(dq_proto_decode(wire, len, lim, &out),
                     DQ_ERR_PROTO_FIELD);
}

static void decode_rejects_out_of_range_field_values(void **state)
{
    DqProtoLimits lim = lim_for(4096);

    (void)state;
    expect_field_error(DQ_MSG_JOIN_REFUSE, DQ_JOIN_OFF_REASON,
                       DQ_JOIN_REFUSE__COUNT, &lim);
    expect_field_error(DQ_MSG_NACK, DQ_NACK_OFF_CODE, DQ_NACK__COUNT, &lim);
    expect_field_error(DQ_MSG_NACK, DQ_NACK_OFF_CODE, 0xffffffffu, &lim);
    /* A grant hands out S or M, never I. */
    expect_field_error(DQ_MSG_GRANT_DATA, DQ_PAGE_OFF_STATE,
                       DQ_PROTO_STATE_I, &lim);
    expect_field_error(DQ_MSG_GRANT_DATA, DQ_PAGE_OFF_STATE,
                       DQ_PROTO_STATE__COUNT, &lim);
    /* A recalled owner keeps S or I, never M. */
    expect_field_error(DQ_MSG_RECALL, DQ_PAGE_OFF_STATE,
                       DQ_PROTO_STATE_M, &lim);
    expect_field_error(DQ_MSG_RECALL_DATA, DQ_PAGE_OFF_STATE,
                       DQ_PROTO_STATE_M, &lim);
    expect_field_error(DQ_MSG_RECALL_DATA, DQ_PAGE_OFF_STATE,
                       0x80000000u, &lim);
    expect_field_error(DQ_MSG_FORWARD, DQ_BATCH_OFF_STATE,
                       DQ_PROTO_STATE_I, &lim);
    expect_field_error(DQ_MSG_FORWARD, DQ_BATCH_OFF_STATE, 7, &lim);
}

static void decode_rejects_an_empty_batch(void **state)
{
    DqProtoLimits lim = lim_for(4096);
    DqMsg in, out;
    size_t len;

    (void)state;
    len = encode_sample(DQ_MSG_FORWARD, &lim, &in);
    (void)len;
    set_u32(wire + DQ_PROTO_HDR_SIZE + DQ_BATCH_OFF_COUNT, 0);
    fix_payload_len(wire, dq_proto_tail_offset(DQ_MSG_FORWARD));
    assert_int_equal(dq_proto_decode(wire,
                                     dq_proto_tail_offset(DQ_MSG_FORWARD),
                                     &lim, &out), DQ_ERR_PROTO_FIELD);
}

static void decode_rejects_addresses_that_are_not_page_aligned(void **state)
{
    DqProtoLimits lim = lim_for(4096);
    DqMsg in, out;
    size_t len, off;
    int t;

    (void)state;
    for (t = 0; t < DQ_MSG__COUNT; t++) {
        switch (t) {
        case DQ_MSG_READ_REQ:
        case DQ_MSG_WRITE_REQ:
        case DQ_MSG_UPGRADE_REQ:
        case DQ_MSG_GRANT_DATA:
        case DQ_MSG_GRANT:
        case DQ_MSG_INVAL:
        case DQ_MSG_INVAL_ACK:
        case DQ_MSG_RECALL:
        case DQ_MSG_RECALL_DATA:
            off = DQ_PAGE_OFF_ADDR;
            break;
        case DQ_MSG_NACK:
            off = DQ_NACK_OFF_ADDR;
            break;
        case DQ_MSG_FORWARD:
            /* The second entry's address. */
            off = DQ_BODY_BATCH + dq_proto_batch_entry_size(4096);
            break;
        default:
            continue;
        }
        len = encode_sample(t, &lim, &in);
        set_u64(wire + DQ_PROTO_HDR_SIZE + off, sample_addr(4096, 40) + 0x800);
        assert_int_equal(dq_proto_decode(wire, len, &lim, &out),
                         DQ_ERR_PROTO_FIELD);
        set_u64(wire + DQ_PROTO_HDR_SIZE + off, sample_addr(4096, 40) + 1);
        assert_int_equal(dq_proto_decode(wire, len, &lim, &out),
                         DQ_ERR_PROTO_FIELD);
    }
}

static void decode_rejects_a_batch_that_names_a_page_twice(void **state)
{
    DqProtoLimits lim = lim_for(64);
    size_t entry = dq_proto_batch_entry_size(64);
    uint8_t *e0 = wire + dq_proto_tail_offset(DQ_MSG_FORWARD);
    DqMsg in, out;
    size_t len;

    (void)state;
    len = encode_sample(DQ_MSG_FORWARD, &lim, &in);
    /* Entry 1 repeats entry 0. */
    memcpy(e0 + entry, e0, 8);
    assert_int_equal(dq_proto_decode(wire, len, &lim, &out),
                     DQ_ERR_PROTO_FIELD);
    /* Entry 2 goes backwards. */
    len = encode_sample(DQ_MSG_FORWARD, &lim, &in);
    set_u64(e0 + 2 * entry, 0);
    assert_int_equal(dq_proto_decode(wire, len, &lim, &out),
                     DQ_ERR_PROTO_FIELD);
}

/*
 * Cut every sample message at every length.  Each cut is rejected, both
 * as delivered (header still claims the full length) and with the length
 * field patched to agree with the cut, from a buffer of exactly that size
 * -- except a CALL cut inside its tail with the length patched: that is
 * a valid CALL with fewer opaque bytes, and must decode as exactly that.
 */
static void decode_rejects_every_truncation_of_every_type(void **state)
{
    DqProtoLimits lim = lim_for(64);
    DqMsg in, out;
    size_t len, n;
    int t;
    DqStatus st;

    (void)state;
    for (t = 0; t < DQ_MSG__COUNT; t++) {
        len = encode_sample(t, &lim, &in);
        memcpy(wire2, wire, len);
        for (n = 0; n < len; n++) {
            st = decode_exact(wire2, n, &lim, &out);
            assert_int_equal(st, n < DQ_PROTO_HDR_SIZE ? DQ_ERR_PROTO_SHORT
                                                       : DQ_ERR_PROTO_LENGTH);
            if (n >= DQ_PROTO_HDR_SIZE) {
                fix_payload_len(wire2, n);
                st = decode_exact(wire2, n, &lim, &out);
                if (dq_proto_tail_kind(t) == DQ_TAIL_BYTES &&
                    n >= dq_proto_tail_offset(t)) {
                    assert_int_equal(st, DQ_OK);
                    assert_int_equal(out.tail_len,
                                     n - dq_proto_tail_offset(t));
                } else {
                    assert_true(st == DQ_ERR_PROTO_BODY ||
                                st == DQ_ERR_PROTO_TAIL);
                }
                fix_payload_len(wire2, len);
            }
        }
        assert_int_equal(decode_exact(wire2, len, &lim, &out), DQ_OK);
    }
}

/*
 * Decoding is canonical: whenever a corrupted message still decodes, its
 * re-encoding reproduces the corrupted bytes exactly (no field is ignored
 * or normalised, so nothing can hide in a message).
 */
static void any_message_that_decodes_reencodes_to_the_same_bytes(void **state)
{
    static const uint8_t flips[] = { 0x01, 0x02, 0x10, 0x80, 0xff };
    DqProtoLimits lim = lim_for(64);
    DqMsg in, out, again;
    size_t len, len2, i, f;
    unsigned decoded = 0;
    int t;

    (void)state;
    for (t = 0; t < DQ_MSG__COUNT; t++) {
        len = encode_sample(t, &lim, &in);
        for (i = 0; i < len; i++) {
            for (f = 0; f < sizeof(flips); f++) {
                wire[i] ^= flips[f];
                if (dq_proto_decode(wire, len, &lim, &out) == DQ_OK) {
                    decoded++;
                    assert_int_equal(dq_proto_encode(&out, &lim, wire2,
                                                     sizeof(wire2), &len2),
                                     DQ_OK);
                    assert_int_equal(len2, len);
                    assert_memory_equal(wire2, wire, len);
                    assert_int_equal(dq_proto_decode(wire2, len2, &lim,
                                                     &again), DQ_OK);
                    assert_true(dq_proto_msg_equal(&out, &again));
                }
                wire[i] ^= flips[f];
            }
        }
    }
    /* Flips in req_id and page data at least must survive. */
    assert_true(decoded > 0);
}

/* ---- encoder ------------------------------------------------------------ */

static void encode_refuses_what_the_decoder_would_reject(void **state)
{
    DqProtoLimits lim = lim_for(4096);
    DqMsg m;
    size_t len;
    uint8_t byte = 0;

    (void)state;
    make_msg(DQ_MSG_READ_REQ, &lim, &m);
    m.type = DQ_MSG__COUNT;
    assert_int_equal(dq_proto_encode(&m, &lim, wire, sizeof(wire), &len),
                     DQ_ERR_PROTO_TYPE);
    make_msg(DQ_MSG_READ_REQ, &lim, &m);
    m.flags = 0x80;
    assert_int_equal(dq_proto_encode(&m, &lim, wire, sizeof(wire), &len),
                     DQ_ERR_PROTO_FLAGS);
    make_msg(DQ_MSG_READ_REQ, &lim, &m);
    m.src = DQ_MAX_NODES;
    assert_int_equal(dq_proto_encode(&m, &lim, wire, sizeof(wire), &len),
                     DQ_ERR_PROTO_NODE);
    make_msg(DQ_MSG_READ_REQ, &lim, &m);
    m.dst = DQ_MAX_NODES;
    assert_int_equal(dq_proto_encode(&m, &lim, wire, sizeof(wire), &len),
                     DQ_ERR_PROTO_NODE);
    make_msg(DQ_MSG_READ_REQ, &lim, &m);
    m.tail = &byte;
    m.tail_len = 1;
    assert_int_equal(dq_proto_encode(&m, &lim, wire, sizeof(wire), &len),
                     DQ_ERR_PROTO_TAIL);
    make_msg(DQ_MSG_GRANT_DATA, &lim, &m);
    m.tail_len = 4095;
    assert_int_equal(dq_proto_encode(&m, &lim, wire, sizeof(wire), &len),
                     DQ_ERR_PROTO_TAIL);
    make_msg(DQ_MSG_FORWARD, &lim, &m);
    m.u.batch.count = 2;
    assert_int_equal(dq_proto_encode(&m, &lim, wire, sizeof(wire), &len),
                     DQ_ERR_PROTO_TAIL);
    make_msg(DQ_MSG_GRANT_DATA, &lim, &m);
    m.u.page.state = DQ_PROTO_STATE_I;
    assert_int_equal(dq_proto_encode(&m, &lim, wire, sizeof(wire), &len),
                     DQ_ERR_PROTO_FIELD);
    make_msg(DQ_MSG_INVAL, &lim, &m);
    m.u.page.addr += 8;
    assert_int_equal(dq_proto_encode(&m, &lim, wire, sizeof(wire), &len),
                     DQ_ERR_PROTO_FIELD);
    make_msg(DQ_MSG_FORWARD, &lim, &m);
    m.u.batch.count = 0;
    m.tail_len = 0;
    assert_int_equal(dq_proto_encode(&m, &lim, wire, sizeof(wire), &len),
                     DQ_ERR_PROTO_FIELD);
}

static void encode_refuses_a_batch_over_the_payload_limit(void **state)
{
    DqProtoLimits lim;
    DqMsg m;
    size_t len;

    (void)state;
    assert_int_equal(dq_proto_limits_init(&lim, 4096, 2 * 4104 + 8), DQ_OK);
    assert_int_equal(dq_proto_batch_max(&lim), 2);
    make_msg(DQ_MSG_FORWARD, &lim, &m);
    assert_int_equal(dq_proto_encode(&m, &lim, wire, sizeof(wire), &len),
                     DQ_ERR_PROTO_TOO_BIG);
}

static void encode_reports_a_buffer_too_small_at_every_size(void **state)
{
    DqProtoLimits lim = lim_for(64);
    DqMsg m;
    size_t len, full, n;
    int t;

    (void)state;
    for (t = 0; t < DQ_MSG__COUNT; t++) {
        full = encode_sample(t, &lim, &m);
        for (n = 0; n < full; n++) {
            uint8_t *buf = malloc(n ? n : 1);

            assert_non_null(buf);
            assert_int_equal(dq_proto_encode(&m, &lim, buf, n, &len),
                             DQ_ERR_NOSPACE);
            free(buf);
        }
    }
}

/* ---- limits ------------------------------------------------------------- */

static void limits_accept_only_sane_page_sizes_and_payloads(void **state)
{
    DqProtoLimits lim;
    DqMsg m;
    size_t len;

    (void)state;
    assert_int_equal(dq_proto_limits_init(&lim, 0, 0), DQ_ERR_RANGE);
    assert_int_equal(dq_proto_limits_init(&lim, 4095, 0), DQ_ERR_RANGE);
    assert_int_equal(dq_proto_limits_init(&lim, 32, 0), DQ_ERR_RANGE);
    assert_int_equal(dq_proto_limits_init(&lim, DQ_PROTO_PAGE_SIZE_MAX * 2, 0),
                     DQ_ERR_RANGE);
    assert_int_equal(dq_proto_limits_init(&lim, 0x80000000u, 0), DQ_ERR_RANGE);
    /* A one-page FORWARD must fit. */
    assert_int_equal(dq_proto_limits_init(&lim, 4096, 4096), DQ_ERR_RANGE);
    assert_int_equal(dq_proto_limits_init(&lim, 4096, 8 + 4104), DQ_OK);
    assert_int_equal(dq_proto_limits_init(&lim, 4096,
                                          DQ_PROTO_PAYLOAD_MAX + 1),
                     DQ_ERR_RANGE);

    assert_int_equal(dq_proto_limits_init(&lim, 4096, 0), DQ_OK);
    assert_int_equal(lim.page_size, 4096);
    assert_int_equal(dq_proto_batch_max(&lim), DQ_PROTO_DEFAULT_BATCH);
    assert_int_equal(dq_proto_max_msg_size(&lim),
                     DQ_PROTO_HDR_SIZE + lim.max_payload);
    assert_int_equal(dq_proto_limits_init(&lim, DQ_PROTO_PAGE_SIZE_MAX, 0),
                     DQ_OK);
    assert_int_equal(dq_proto_batch_max(&lim), DQ_PROTO_DEFAULT_BATCH);

    /* Encoder and decoder refuse to work under broken limits. */
    lim.page_size = 1000;
    make_msg(DQ_MSG_HEARTBEAT, &lim, &m);
    assert_int_equal(dq_proto_encode(&m, &lim, wire, sizeof(wire), &len),
                     DQ_ERR_RANGE);
    assert_int_equal(dq_proto_decode(wire, sizeof(wire), &lim, &m),
                     DQ_ERR_RANGE);
    assert_int_equal(dq_proto_decode(wire, sizeof(wire), NULL, &m),
                     DQ_ERR_RANGE);
}

static void msg_equal_notices_a_change_in_any_carried_field(void **state)
{
    DqProtoLimits lim = lim_for(64);
    DqMsg a, b;
    uint8_t other[64];
    int t;

    (void)state;
    for (t = 0; t < DQ_MSG__COUNT; t++) {
        make_msg(t, &lim, &a);
        b = a;
        assert_true(dq_proto_msg_equal(&a, &b));
        b.req_id++;
        assert_false(dq_proto_msg_equal(&a, &b));
        b = a;
        b.flags ^= 1;
        assert_false(dq_proto_msg_equal(&a, &b));
        b = a;
        b.src ^= 1;
        assert_false(dq_proto_msg_equal(&a, &b));
    }
    make_msg(DQ_MSG_JOIN_REFUSE, &lim, &a);
    b = a;
    b.u.join.reason = 0;
    assert_false(dq_proto_msg_equal(&a, &b));
    make_msg(DQ_MSG_RECALL, &lim, &a);
    b = a;
    b.u.page.state = DQ_PROTO_STATE_I;
    assert_false(dq_proto_msg_equal(&a, &b));
    make_msg(DQ_MSG_NACK, &lim, &a);
    b = a;
    b.u.nack.code = DQ_NACK_RETRY;
    assert_false(dq_proto_msg_equal(&a, &b));
    make_msg(DQ_MSG_GRANT_DATA, &lim, &a);
    b = a;
    memcpy(other, a.tail, sizeof(other));
    other[63] ^= 1;
    b.tail = other;
    assert_false(dq_proto_msg_equal(&a, &b));
    /* A field the type does not carry does not count. */
    make_msg(DQ_MSG_READ_REQ, &lim, &a);
    b = a;
    b.u.page.state = DQ_PROTO_STATE_M;
    assert_true(dq_proto_msg_equal(&a, &b));
}

/* ---- CALL and CALL_REPLY: opaque application messages -------------------- */

static void call_carries_op_aux_arg_and_its_bytes_zero_copy(void **state)
{
    DqProtoLimits lim = lim_for(4096);
    DqMsg in, out;
    size_t len;
    int t;

    (void)state;
    for (t = DQ_MSG_CALL; t <= DQ_MSG_CALL_REPLY; t++) {
        len = encode_sample(t, &lim, &in);
        assert_int_equal(len, DQ_PROTO_HDR_SIZE + DQ_BODY_CALL + in.tail_len);
        assert_int_equal(decode_exact(wire, len, &lim, &out), DQ_OK);
        assert_int_equal(dq_proto_decode(wire, len, &lim, &out), DQ_OK);
        assert_true(dq_proto_msg_equal(&in, &out));
        assert_int_equal(out.u.call.op, 0x81828384u + (unsigned)t);
        assert_int_equal(out.u.call.aux, 0x91929394u);
        assert_true(out.u.call.arg == 0xa1a2a3a4a5a6a7a8ull);
        assert_ptr_equal(out.tail, wire + DQ_PROTO_HDR_SIZE + DQ_BODY_CALL);
        assert_int_equal(out.tail_len, in.tail_len);
        assert_memory_equal(out.tail, in.tail, in.tail_len);
    }
}

static void call_with_no_bytes_has_a_null_tail(void **state)
{
    DqProtoLimits lim = lim_for(64);
    DqMsg in, out;
    size_t len;

    (void)state;
    make_msg(DQ_MSG_CALL_REPLY, &lim, &in);
    in.tail = NULL;
    in.tail_len = 0;
    assert_int_equal(dq_proto_encode(&in, &lim, wire, sizeof(wire), &len),
                     DQ_OK);
    assert_int_equal(len, DQ_PROTO_HDR_SIZE + DQ_BODY_CALL);
    assert_int_equal(decode_exact(wire, len, &lim, &out), DQ_OK);
    assert_int_equal(dq_proto_decode(wire, len, &lim, &out), DQ_OK);
    assert_null(out.tail);
    assert_int_equal(out.tail_len, 0);
    assert_true(dq_proto_msg_equal(&in, &out));
}

/* The body is exact: a CALL shorter than its 16 bytes is not a CALL. */
static void call_body_cut_short_is_rejected(void **state)
{
    DqProtoLimits lim = lim_for(64);
    DqMsg in, out;
    size_t n;

    (void)state;
    encode_sample(DQ_MSG_CALL, &lim, &in);
    for (n = 0; n < DQ_BODY_CALL; n++) {
        fix_payload_len(wire, DQ_PROTO_HDR_SIZE + n);
        assert_int_equal(decode_exact(wire, DQ_PROTO_HDR_SIZE + n, &lim,
                                      &out), DQ_ERR_PROTO_BODY);
    }
}

/*
 * The largest CALL is exactly what max_payload leaves after the body,
 * whatever the page size; one byte more is refused by the encoder and,
 * when a peer sends it anyway, by the decoder.
 */
static void call_tail_up_to_the_payload_limit_and_not_one_byte_more(
    void **state)
{
    static const uint32_t payloads[] = { 0, 8 + 4104, 256 * 1024 };
    uint8_t *big, *buf;
    DqProtoLimits lim;
    DqMsg in, out;
    size_t max, len, i;

    (void)state;
    for (i = 0; i < sizeof(payloads) / sizeof(payloads[0]); i++) {
        assert_int_equal(dq_proto_limits_init(&lim, 4096, payloads[i]),
                         DQ_OK);
        max = lim.max_payload - DQ_BODY_CALL;
        big = malloc(max + 1);
        buf = malloc(dq_proto_max_msg_size(&lim) + 1);
        assert_non_null(big);
        assert_non_null(buf);
        fill_pattern(big, max + 1, (unsigned)i);

        make_msg(DQ_MSG_CALL, &lim, &in);
        in.tail = big;
        in.tail_len = max;
        assert_int_equal(dq_proto_encode(&in, &lim, buf,
                                         dq_proto_max_msg_size(&lim), &len),
                         DQ_OK);
        assert_int_equal(len, dq_proto_max_msg_size(&lim));
        assert_int_equal(decode_exact(buf, len, &lim, &out), DQ_OK);
        assert_int_equal(dq_proto_decode(buf, len, &lim, &out), DQ_OK);
        assert_int_equal(out.tail_len, max);
        assert_memory_equal(out.tail, big, max);

        in.tail_len = max + 1;
        assert_int_equal(dq_proto_encode(&in, &lim, buf,
                                         dq_proto_max_msg_size(&lim) + 1,
                                         &len), DQ_ERR_PROTO_TOO_BIG);
        /*
         * Built by hand from the largest one (still in buf: a refused
         * encode writes nothing), as a peer with a larger limit sends it.
         */
        buf[len] = 0x5a;
        fix_payload_len(buf, len + 1);
        assert_int_equal(decode_exact(buf, len + 1, &lim, &out),
                         DQ_ERR_PROTO_TOO_BIG);
        free(big);
        free(buf);
    }
}

/* A sender may reserve the CALL's bytes and write them in place. */
static void call_bytes_can_be_filled_in_place(void **state)
{
    DqProtoLimits lim = lim_for(4096);
    DqMsg in, out;
    size_t len;

    (void)state;
    make_msg(DQ_MSG_CALL, &lim, &in);
    in.tail = NULL;
    in.tail_len = 5000;
    memset(wire, 0xee, sizeof(wire));
    assert_int_equal(dq_proto_encode(&in, &lim, wire, sizeof(wire), &len),
                     DQ_OK);
    assert_int_equal(len, dq_proto_tail_offset(DQ_MSG_CALL) + 5000);
    assert_int_equal(wire[dq_proto_tail_offset(DQ_MSG_CALL)], 0xee);
    memset(wire + dq_proto_tail_offset(DQ_MSG_CALL), 0x42, 5000);
    assert_int_equal(dq_proto_decode(wire, len, &lim, &out), DQ_OK);
    assert_int_equal(out.tail_len, 5000);
    assert_int_equal(out.tail[4999], 0x42);
}

static void call_is_little_endian_regardless_of_host(void **state)
{
    static const uint8_t golden[] = {
        0x44, 0x51, 0x4d, 0x50, 0x01, 0x00,
        0x12, 0x00,                                     /* CALL_REPLY */
        0x00, 0x00, 0x00, 0x00,                         /* flags */
        0x02, 0x00, 0x01, 0x00,                         /* 2 -> 1 */
        0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* req_id 7 */
        0x13, 0x00, 0x00, 0x00,                         /* 16 + 3 */
        0x04, 0x03, 0x02, 0x01,                         /* op */
        0xfe, 0xff, 0xff, 0xff,                         /* aux: -2 */
        0x18, 0x17, 0x16, 0x15, 0x14, 0x13, 0x12, 0x11, /* arg */
        'a', 'b', 'c',                                  /* bytes */
    };
    DqProtoLimits lim = lim_for(4096);
    DqMsg m, out;
    size_t len = 0;

    (void)state;
    memset(&m, 0, sizeof(m));
    m.type = DQ_MSG_CALL_REPLY;
    m.src = 2;
    m.dst = 1;
    m.req_id = 7;
    m.u.call.op = 0x01020304u;
    m.u.call.aux = (uint32_t)-2;
    m.u.call.arg = 0x1112131415161718ull;
    m.tail = (const uint8_t *)"abc";
    m.tail_len = 3;
    assert_int_equal(dq_proto_encode(&m, &lim, wire, sizeof(wire), &len),
                     DQ_OK);
    assert_int_equal(len, sizeof(golden));
    assert_memory_equal(wire, golden, sizeof(golden));
    assert_int_equal(dq_proto_decode(golden, sizeof(golden), &lim, &out),
                     DQ_OK);
    assert_true(dq_proto_msg_equal(&m, &out));
}

static void msg_equal_notices_a_change_in_a_call(void **state)
{
    DqProtoLimits lim = lim_for(64);
    uint8_t other[CALL_TAIL];
    DqMsg a, b;

    (void)state;
    make_msg(DQ_MSG_CALL, &lim, &a);
    b = a;
    b.u.call.op ^= 1;
    assert_false(dq_proto_msg_equal(&a, &b));
    b = a;
    b.u.call.aux ^= 0x80000000u;
    assert_false(dq_proto_msg_equal(&a, &b));
    b = a;
    b.u.call.arg ^= 1ull << 63;
    assert_false(dq_proto_msg_equal(&a, &b));
    b = a;
    b.tail_len--;
    assert_false(dq_proto_msg_equal(&a, &b));
    b = a;
    memcpy(other, a.tail, sizeof(other));
    other[0] ^= 1;
    b.tail = other;
    assert_false(dq_proto_msg_equal(&a, &b));
    b = a;
    b.type = DQ_MSG_CALL_REPLY;
    assert_false(dq_proto_msg_equal(&a, &b));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(roundtrip_preserves_every_field_of_every_type),
        cmocka_unit_test(roundtrip_works_for_every_supported_page_size),
        cmocka_unit_test(decode_points_the_tail_into_the_buffer),
        cmocka_unit_test(forward_entries_read_back_in_order),
        cmocka_unit_test(encode_leaves_a_null_tail_for_the_caller_to_fill),
        cmocka_unit_test(encoding_is_little_endian_regardless_of_host),
        cmocka_unit_test(grant_data_has_its_page_right_after_the_body),
        cmocka_unit_test(wire_type_codes_never_change),
        cmocka_unit_test(every_name_is_distinct_and_out_of_range_is_unknown),
        cmocka_unit_test(decode_rejects_a_buffer_shorter_than_the_header),
        cmocka_unit_test(decode_rejects_wrong_magic),
        cmocka_unit_test(decode_rejects_wrong_version),
        cmocka_unit_test(decode_rejects_unknown_type),
        cmocka_unit_test(decode_rejects_unknown_flags),
        cmocka_unit_test(decode_rejects_node_ids_beyond_max_nodes),
        cmocka_unit_test(decode_rejects_oversized_message),
        cmocka_unit_test(decode_rejects_length_mismatch),
        cmocka_unit_test(
            decode_rejects_body_shorter_or_longer_than_the_type_requires),
        cmocka_unit_test(decode_rejects_a_page_tail_other_than_the_page_size),
        cmocka_unit_test(
            decode_rejects_a_batch_tail_inconsistent_with_its_count),
        cmocka_unit_test(
            decode_rejects_a_batch_count_whose_product_would_overflow),
        cmocka_unit_test(decode_rejects_out_of_range_field_values),
        cmocka_unit_test(decode_rejects_an_empty_batch),
        cmocka_unit_test(decode_rejects_addresses_that_are_not_page_aligned),
        cmocka_unit_test(decode_rejects_a_batch_that_names_a_page_twice),
        cmocka_unit_test(decode_rejects_every_truncation_of_every_type),
        cmocka_unit_test(any_message_that_decodes_reencodes_to_the_same_bytes),
        cmocka_unit_test(encode_refuses_what_the_decoder_would_reject),
        cmocka_unit_test(encode_refuses_a_batch_over_the_payload_limit),
        cmocka_unit_test(encode_reports_a_buffer_too_small_at_every_size),
        cmocka_unit_test(limits_accept_only_sane_page_sizes_and_payloads),
        cmocka_unit_test(msg_equal_notices_a_change_in_any_carried_field),
        cmocka_unit_test(call_carries_op_aux_arg_and_its_bytes_zero_copy),
        cmocka_unit_test(call_with_no_bytes_has_a_null_tail),
        cmocka_unit_test(call_body_cut_short_is_rejected),
        cmocka_unit_test(
            call_tail_up_to_the_payload_limit_and_not_one_byte_more),
        cmocka_unit_test(call_bytes_can_be_filled_in_place),
        cmocka_unit_test(call_is_little_endian_regardless_of_host),
        cmocka_unit_test(msg_equal_notices_a_change_in_a_call),
    };

    return cmocka_run_group_tests_name("proto", tests, NULL, NULL);
}
