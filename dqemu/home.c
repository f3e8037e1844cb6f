/*
 * home.c - home policies: master-as-home, hash and first touch.
 *
 * Three small functions behind dq_home_of() (STYLE.md, "For dqemu" 11).
 * The first-touch claim table is written by one thread and read by any,
 * without locks: each slot is one 64-bit word holding both the block and
 * its home, published with one atomic store and never changed or removed
 * afterwards, so a reader sees either nothing or the whole claim.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "home.h"

/* A slot: ((block + 1) << 8) | home; 0 is an empty slot. */
#define SLOT_HOME_BITS  8
#define SLOT_HOME_MASK  ((UINT64_C(1) << SLOT_HOME_BITS) - 1)

static_assert(DQ_MAX_NODES <= (1u << SLOT_HOME_BITS),
              "a home must fit in the low bits of a claim slot");

static const char *const dq_home_policy_names[DQ_HOME__COUNT] = {
#define DQ_HOME_POLICY_NAME(name, text) [DQ_HOME_##name] = text,
    DQ_HOME_POLICY_LIST(DQ_HOME_POLICY_NAME)
#undef DQ_HOME_POLICY_NAME
};

/*
 * splitmix64's finalizer: every input bit flips about half the output
 * bits, so neighbouring blocks land on unrelated nodes.  It depends on
 * nothing but its input, which keeps homes stable across runs and nodes.
 */
static uint64_t dq_home_mix(uint64_t x)
{
    x ^= x >> 30;
    x *= UINT64_C(0xbf58476d1ce4e5b9);
    x ^= x >> 27;
    x *= UINT64_C(0x94d049bb133111eb);
    x ^= x >> 31;
    return x;
}

/* Scale a 64-bit hash to [0, n) without the bias of a plain modulo. */
static unsigned dq_home_scale(uint64_t hash, unsigned n)
{
    return (unsigned)(((unsigned __int128)hash * n) >> 64);
}

static unsigned dq_home_hashed(const DqHome *h, uint64_t block)
{
    return dq_home_scale(dq_home_mix(block), h->nodes);
}

/*
 * A subroutine of the first-touch lookups: the slot holding @block, or the
 * empty slot where its probe sequence ends.  The table never fills (claim
 * keeps a quarter free), so the probe terminates.
 */
static size_t dq_home_probe(const DqHome *h, uint64_t block, uint64_t *word)
{
    size_t mask = h->slots - 1;
    size_t i = dq_home_mix(block) & mask;

    for (;;) {
        uint64_t w = __atomic_load_n(&h->claims[i], __ATOMIC_ACQUIRE);

        if (w == 0 || (w >> SLOT_HOME_BITS) == block + 1) {
            *word = w;
            return i;
        }
        i = (i + 1) & mask;
    }
}

DqStatus dq_home_init(DqHome *h, DqHomePolicy policy, unsigned nodes,
                      unsigned block_shift, size_t claim_slots)
{
    size_t slots = 8;

    memset(h, 0, sizeof(*h));
    if ((unsigned)policy >= DQ_HOME__COUNT || nodes == 0 ||
        nodes > DQ_MAX_NODES || block_shift >= 32) {
        return DQ_ERR_RANGE;
    }
    h->policy = policy;
    h->nodes = nodes;
    h->block_shift = block_shift;
    if (policy != DQ_HOME_FIRST_TOUCH) {
        return DQ_OK;
    }
    if (claim_slots == 0 || claim_slots > (SIZE_MAX / 2) / sizeof(uint64_t)) {
        return DQ_ERR_RANGE;
    }
    /* Room for @claim_slots claims at the 3/4 load limit, as a power of 2. */
    while (slots / 4 * 3 < claim_slots) {
        slots *= 2;
    }
    h->claims = calloc(slots, sizeof(*h->claims));
    if (!h->claims) {
        return DQ_ERR_NOMEM;
    }
    h->slots = slots;
    return DQ_OK;
}

void dq_home_destroy(DqHome *h)
{
    free(h->claims);
    memset(h, 0, sizeof(*h));
}

bool dq_home_peek(const DqHome *h, uint64_t page, unsigned *home)
{
    uint64_t block = page >> h->block_shift;
    uint64_t w;

    switch (h->policy) {
    case DQ_HOME_MASTER:
        *home = 0;
        return true;
    case DQ_HOME_HASH:
        *home = dq_home_hashed(h, block);
        return true;
    case DQ_HOME_FIRST_TOUCH:
        if (block > DQ_HOME_MAX_BLOCK || h->slots == 0) {
            return false;
        }
        dq_home_probe(h, block, &w);
        if (w == 0) {
            return false;
        }
        *home = (unsigned)(w & SLOT_HOME_MASK);
        return true;
    default:
        return false;
    }
}

unsigned dq_home_of(const DqHome *h, uint64_t page)
{
    unsigned home;

    if (dq_home_peek(h, page, &home)) {
        return home;
    }
    return DQ_HOME_ARBITER;
}

DqStatus dq_home_claim(DqHome *h, uint64_t page, unsigned node,
                       unsigned *home)
{
    uint64_t block = page >> h->block_shift;
    uint64_t w;
    size_t i;

    if (node >= h->nodes) {
        return DQ_ERR_RANGE;
    }
    if (h->policy != DQ_HOME_FIRST_TOUCH) {
        return dq_home_peek(h, page, home) ? DQ_OK : DQ_ERR_RANGE;
    }
    if (block > DQ_HOME_MAX_BLOCK) {
        return DQ_ERR_RANGE;
    }
    i = dq_home_probe(h, block, &w);
    if (w != 0) {
        *home = (unsigned)(w & SLOT_HOME_MASK);
        return DQ_OK;
    }
    /* Keep a quarter of the slots empty so every probe ends quickly. */
    if (h->used + 1 > h->slots / 4 * 3) {
        return DQ_ERR_HOME_FULL;
    }
    __atomic_store_n(&h->claims[i], ((block + 1) << SLOT_HOME_BITS) | node,
                     __ATOMIC_RELEASE);
    h->used++;
    *home = node;
    return DQ_OK;
}

DqStatus dq_home_policy_parse(const char *name, DqHomePolicy *policy)
{
    int i;

    for (i = 0; i < DQ_HOME__COUNT; i++) {
        if (strcmp(name, dq_home_policy_names[i]) == 0) {
            *policy = (DqHomePolicy)i;
            return DQ_OK;
        }
    }
    return DQ_ERR_USAGE;
}

const char *dq_home_policy_str(DqHomePolicy policy)
{
    if ((unsigned)policy >= DQ_HOME__COUNT) {
        return "unknown";
    }
    return dq_home_policy_names[policy];
}
