/*
 * fuzz-proto.c - libFuzzer target for the wire-protocol decoder.
 *
 * Every byte a peer sends reaches dq_proto_decode() first, so it must
 * survive anything.  Each input is decoded as one whole transport message
 * under three limits (tiny pages, x86-64 pages, a payload limit of one
 * page); when it decodes, re-encoding must give back exactly the input
 * (decoding is canonical: nothing is ignored or normalised) and decode to
 * an equal message.  `make fuzz` links this with libFuzzer; `make
 * test-fuzz-corpus` links it with replay.c to run the seed corpus.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Big enough to re-encode anything the largest limit below accepts. */
#define FUZZ_OUT_MAX (DQ_PROTO_HDR_SIZE + DQ_BODY_BATCH + \
                      DQ_PROTO_DEFAULT_BATCH * (DQ_BATCH_ENTRY_OFF_DATA + 4096))

#define CHECK(cond)                                                        \
    do {                                                                   \
        if (!(cond)) {                                                     \
            fprintf(stderr, "fuzz-proto: %s:%d: check failed: %s\n",       \
                    __FILE__, __LINE__, #cond);                            \
            abort();                                                       \
        }                                                                  \
    } while (0)

static uint8_t out[FUZZ_OUT_MAX];

/* Walk a decoded FORWARD the way a receiver would. */
static void check_batch(const DqMsg *m, const uint8_t *data, size_t size,
                        const DqProtoLimits *lim)
{
    const uint8_t *page;
    uint64_t addr, prev = 0;
    uint32_t i;

    CHECK(m->u.batch.count >= 1);
    CHECK(m->u.batch.count <= dq_proto_batch_max(lim));
    for (i = 0; i < m->u.batch.count; i++) {
        CHECK(dq_proto_batch_get(m, i, &addr, &page) == DQ_OK);
        CHECK((addr & (lim->page_size - 1)) == 0);
        CHECK(i == 0 || addr > prev);
        CHECK(page >= data && page + lim->page_size <= data + size);
        prev = addr;
    }
    CHECK(dq_proto_batch_get(m, i, &addr, &page) == DQ_ERR_RANGE);
}

static void check_one(const uint8_t *data, size_t size,
                      const DqProtoLimits *lim)
{
    DqMsg m, again;
    DqStatus st;
    size_t len = 0;

    st = dq_proto_decode(data, size, lim, &m);
    CHECK((unsigned)st < DQ_STATUS__COUNT);
    if (st != DQ_OK) {
        return;
    }
    CHECK(size <= dq_proto_max_msg_size(lim) && size <= sizeof(out));
    CHECK((unsigned)m.type < DQ_MSG__COUNT);
    CHECK(m.src < DQ_MAX_NODES && m.dst < DQ_MAX_NODES);
    CHECK(strcmp(dq_msg_type_name(m.type), "unknown") != 0);
    /* Zero copy: the tail is the end of the input itself. */
    if (m.tail_len != 0) {
        CHECK(m.tail == data + dq_proto_tail_offset(m.type));
        CHECK(m.tail + m.tail_len == data + size);
    } else {
        CHECK(size == dq_proto_tail_offset(m.type));
    }
    if (m.type == DQ_MSG_FORWARD) {
        check_batch(&m, data, size, lim);
    }

    CHECK(dq_proto_encode(&m, lim, out, sizeof(out), &len) == DQ_OK);
    CHECK(len == size);
    CHECK(memcmp(out, data, size) == 0);
    CHECK(dq_proto_encode(&m, lim, out, size - 1, &len) == DQ_ERR_NOSPACE);
    CHECK(dq_proto_decode(out, size, lim, &again) == DQ_OK);
    CHECK(dq_proto_msg_equal(&m, &again));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static DqProtoLimits lims[3];
    static int ready;
    size_t i;

    if (!ready) {
        CHECK(dq_proto_limits_init(&lims[0], DQ_PROTO_PAGE_SIZE_MIN, 0) ==
              DQ_OK);
        CHECK(dq_proto_limits_init(&lims[1], 4096, 0) == DQ_OK);
        /* The smallest payload limit allowed: one page per FORWARD. */
        CHECK(dq_proto_limits_init(&lims[2], 256,
                                   DQ_BODY_BATCH + DQ_BATCH_ENTRY_OFF_DATA +
                                   256) == DQ_OK);
        CHECK(dq_proto_max_msg_size(&lims[1]) == sizeof(out));
        ready = 1;
    }
    for (i = 0; i < sizeof(lims) / sizeof(lims[0]); i++) {
        check_one(data, size, &lims[i]);
    }
    return 0;
}
