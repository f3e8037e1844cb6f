/*
 * make-corpus.c - write the seed corpus of fuzz-proto.c.
 *
 * usage: make-corpus DIR
 *
 * One valid message of every type (64-byte pages, so the fuzzer can reach
 * FORWARD batches cheaply), the page-carrying types again with 4 KiB and
 * 256-byte pages, CALLs with no bytes and with a multi-page tail, and one
 * near miss per decoder check, each a copy of a valid message with one
 * field broken.  The output is deterministic, so
 * `make fuzz-seeds` regenerates the committed files byte for byte.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

#define MAX_PAGE    4096u
#define MAX_MSG     (DQ_PROTO_HDR_SIZE + DQ_BODY_BATCH + \
                     3 * (DQ_BATCH_ENTRY_OFF_DATA + MAX_PAGE))

static const char *out_dir;
static uint8_t tail[MAX_MSG];
static uint8_t buf[MAX_MSG];

static void die(const char *what)
{
    fprintf(stderr, "make-corpus: %s\n", what);
    exit(1);
}

static void write_seed(const char *name, const uint8_t *p, size_t len)
{
    char path[4096];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", out_dir, name);
    f = fopen(path, "wb");
    if (f == NULL || fwrite(p, 1, len, f) != len || fclose(f) != 0) {
        die(path);
    }
}

static void put_le(uint8_t *p, uint64_t v, int n)
{
    int i;

    for (i = 0; i < n; i++) {
        p[i] = (uint8_t)(v >> (8 * i));
    }
}

/*
 * A valid message of @type with non-trivial field values.  @pages is the
 * FORWARD's count; for a CALL, the tail is @pages * 37 + 3 bytes (any
 * length is valid; these are no multiple of a page).
 */
static void make_msg(DqMsgType type, uint32_t ps, uint32_t pages, DqMsg *m)
{
    uint8_t page[MAX_PAGE];
    uint64_t base = 0x40000000ull;
    uint32_t i;

    memset(m, 0, sizeof(*m));
    m->type = type;
    m->src = 1;
    m->dst = 0;
    m->req_id = 0x100 + type;
    switch (type) {
    case DQ_MSG_JOIN_REQ:
    case DQ_MSG_JOIN_ACCEPT:
    case DQ_MSG_JOIN_REFUSE:
        m->u.join.cluster_id = 0x5eed5eed5eed5eedull;
        m->u.join.page_size = ps;
        m->u.join.version = DQ_PROTO_VERSION;
        m->u.join.node_count = 4;
        m->u.join.reason = type == DQ_MSG_JOIN_REFUSE ? DQ_JOIN_REFUSE_CLUSTER
                                                      : 0;
        break;
    case DQ_MSG_HEARTBEAT:
    case DQ_MSG_SHUTDOWN_ACK:
        break;
    case DQ_MSG_SHUTDOWN:
        m->u.shutdown.code = 3;
        break;
    case DQ_MSG_WRITE_REQ:
    case DQ_MSG_UPGRADE_REQ:
        m->flags = DQ_MSG_F_ATOMIC;
        m->u.page.addr = base;
        break;
    case DQ_MSG_READ_REQ:
    case DQ_MSG_GRANT:
    case DQ_MSG_INVAL:
    case DQ_MSG_INVAL_ACK:
        m->u.page.addr = base;
        break;
    case DQ_MSG_RECALL:
        m->u.page.addr = base;
        m->u.page.state = DQ_PROTO_STATE_I;
        break;
    case DQ_MSG_GRANT_DATA:
    case DQ_MSG_RECALL_DATA:
        m->u.page.addr = base;
        m->u.page.state = DQ_PROTO_STATE_S;
        for (i = 0; i < ps; i++) {
            tail[i] = (uint8_t)i;
        }
        m->tail = tail;
        m->tail_len = ps;
        break;
    case DQ_MSG_FORWARD:
        m->u.batch.count = pages;
        m->u.batch.state = DQ_PROTO_STATE_S;
        for (i = 0; i < pages; i++) {
            memset(page, 0xa0 + i, ps);
            dq_proto_batch_put(tail, ps, i, base + (uint64_t)i * ps, page);
        }
        m->tail = tail;
        m->tail_len = pages * dq_proto_batch_entry_size(ps);
        break;
    case DQ_MSG_NACK:
        m->u.nack.addr = base;
        m->u.nack.code = DQ_NACK_RETRY;
        break;
    case DQ_MSG_CALL:
    case DQ_MSG_CALL_REPLY:
        m->u.call.op = 0x20 + type;
        m->u.call.aux = 0xfffffffeu;
        m->u.call.arg = base + 0x123;
        m->tail_len = (size_t)pages * 37 + 3;
        for (i = 0; i < m->tail_len; i++) {
            tail[i] = (uint8_t)(i * 7 + 1);
        }
        m->tail = tail;
        break;
    case DQ_MSG__COUNT:
        die("no such type");
    }
}

static size_t encode(DqMsgType type, uint32_t ps, uint32_t pages)
{
    DqProtoLimits lim;
    DqMsg m;
    size_t len;

    if (dq_proto_limits_init(&lim, ps, 0) != DQ_OK) {
        die("bad limits");
    }
    make_msg(type, ps, pages, &m);
    if (dq_proto_encode(&m, &lim, buf, sizeof(buf), &len) != DQ_OK) {
        die(dq_msg_type_name(type));
    }
    return len;
}

/* A CALL or CALL_REPLY of @type with no tail bytes, at 64-byte pages. */
static size_t encode_empty_call(DqMsgType type)
{
    DqProtoLimits lim;
    DqMsg m;
    size_t len;

    if (dq_proto_limits_init(&lim, 64, 0) != DQ_OK) {
        die("bad limits");
    }
    make_msg(type, 64, 0, &m);
    m.tail = NULL;
    m.tail_len = 0;
    if (dq_proto_encode(&m, &lim, buf, sizeof(buf), &len) != DQ_OK) {
        die(dq_msg_type_name(type));
    }
    return len;
}

static void valid(DqMsgType type, uint32_t ps, uint32_t pages)
{
    char name[64];
    size_t len = encode(type, ps, pages);

    snprintf(name, sizeof(name), "p%u-%s", ps, dq_msg_type_name(type));
    write_seed(name, buf, len);
}

/* A @type message at 64-byte pages with @n bytes at @off set to @v. */
static void near_miss(const char *name, DqMsgType type, size_t off, int n,
                      uint64_t v)
{
    size_t len = encode(type, 64, 2);

    put_le(buf + off, v, n);
    write_seed(name, buf, len);
}

int main(int argc, char **argv)
{
    const size_t body = DQ_PROTO_HDR_SIZE;
    size_t len;
    int t;

    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    out_dir = argv[1];

    for (t = 0; t < DQ_MSG__COUNT; t++) {
        valid(t, 64, 2);
    }
    valid(DQ_MSG_GRANT_DATA, 256, 1);
    valid(DQ_MSG_FORWARD, 256, 1);
    valid(DQ_MSG_GRANT_DATA, 4096, 1);
    valid(DQ_MSG_RECALL_DATA, 4096, 1);
    valid(DQ_MSG_FORWARD, 4096, 2);
    /* A CALL of 100 * 37 + 3 bytes, no page multiple, at 4 KiB pages. */
    valid(DQ_MSG_CALL, 4096, 100);
    len = encode_empty_call(DQ_MSG_CALL_REPLY);
    write_seed("p64-CALL_REPLY-empty", buf, len);

    len = encode(DQ_MSG_HEARTBEAT, 64, 1);
    write_seed("bad-short", buf, len - 1);
    near_miss("bad-magic", DQ_MSG_READ_REQ, DQ_HDR_OFF_MAGIC, 4, 0x504d5145);
    near_miss("bad-version", DQ_MSG_READ_REQ, DQ_HDR_OFF_VERSION, 2, 2);
    near_miss("bad-type", DQ_MSG_READ_REQ, DQ_HDR_OFF_TYPE, 2, DQ_MSG__COUNT);
    near_miss("bad-flags", DQ_MSG_WRITE_REQ, DQ_HDR_OFF_FLAGS, 4, 2);
    near_miss("bad-node", DQ_MSG_INVAL, DQ_HDR_OFF_DST, 2, DQ_MAX_NODES);
    near_miss("bad-too-big", DQ_MSG_INVAL, DQ_HDR_OFF_PAYLOAD_LEN, 4,
              0xffffffffu);
    near_miss("bad-length", DQ_MSG_INVAL, DQ_HDR_OFF_PAYLOAD_LEN, 4, 9);
    near_miss("bad-grant-state", DQ_MSG_GRANT_DATA, body + DQ_PAGE_OFF_STATE,
              4, DQ_PROTO_STATE_I);
    near_miss("bad-unaligned", DQ_MSG_GRANT, body + DQ_PAGE_OFF_ADDR, 8,
              0x40000020);
    near_miss("bad-nack-code", DQ_MSG_NACK, body + DQ_NACK_OFF_CODE, 4,
              DQ_NACK__COUNT);
    near_miss("bad-refuse-reason", DQ_MSG_JOIN_REFUSE,
              body + DQ_JOIN_OFF_REASON, 4, DQ_JOIN_REFUSE__COUNT);
    /* 2^29 + 2 entries of 72 bytes are 144 bytes (two entries) mod 2^32. */
    near_miss("bad-forward-count-wraps", DQ_MSG_FORWARD,
              body + DQ_BATCH_OFF_COUNT, 4, (1u << 29) + 2);
    near_miss("bad-forward-empty", DQ_MSG_FORWARD, body + DQ_BATCH_OFF_COUNT,
              4, 0);
    near_miss("bad-forward-unsorted", DQ_MSG_FORWARD,
              body + DQ_BODY_BATCH + dq_proto_batch_entry_size(64), 8,
              0x40000000);
    /* A CALL whose payload ends inside its 16-byte body. */
    len = encode_empty_call(DQ_MSG_CALL);
    put_le(buf + DQ_HDR_OFF_PAYLOAD_LEN, DQ_BODY_CALL - 1, 4);
    write_seed("bad-call-short-body", buf, len - 1);
    return 0;
}
