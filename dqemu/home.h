/*
 * home.h - which node keeps a page's directory entry.
 *
 * Every guest page has a home (DESIGN.md §5).  A single home for all
 * pages is the first thing to fall over at scale, so "home" is a policy
 * behind one lookup: master-as-home, a hash that spreads pages over the
 * nodes, or first touch.  Lookups never claim a page and never allocate,
 * so the fault path may use them; only dq_home_claim() decides a
 * first-touch home.
 */
#ifndef DQEMU_HOME_H
#define DQEMU_HOME_H

#include "dqemu.h"

#define DQ_HOME_POLICY_LIST(X)                                             \
    X(MASTER,      "master")       /* node 0 is the home of every page */  \
    X(HASH,        "hash")         /* a fixed hash of the block index */   \
    X(FIRST_TOUCH, "first-touch")  /* the first node to claim it */

typedef enum DqHomePolicy {
#define DQ_HOME_POLICY_ENUM(name, text) DQ_HOME_##name,
    DQ_HOME_POLICY_LIST(DQ_HOME_POLICY_ENUM)
#undef DQ_HOME_POLICY_ENUM
    DQ_HOME__COUNT
} DqHomePolicy;

/*
 * The node that decides first-touch claims and homes the pages nobody has
 * claimed yet: the master, which sees every page from the start.
 */
#define DQ_HOME_ARBITER 0u

/* Claims are packed with the home in one 64-bit word; see home.c. */
#define DQ_HOME_MAX_BLOCK ((UINT64_C(1) << 55) - 2)

typedef struct DqHome {
    DqHomePolicy policy;
    unsigned nodes;             /* cluster size, master included */
    unsigned block_shift;       /* homes are per 2^block_shift pages */
    /* FIRST_TOUCH only: open-addressed claim table, one word per slot. */
    uint64_t *claims;
    size_t slots;               /* a power of two, or 0 */
    size_t used;                /* written by dq_home_claim() only */
} DqHome;

/*
 * Set up @h for @nodes nodes (1..DQ_MAX_NODES).  Pages are grouped in
 * blocks of 2^@block_shift (< 32) pages that share a home, so a node
 * faulting through memory sequentially keeps talking to one home and
 * forwarding (DESIGN.md §5) has a next page to send; 0 homes each page
 * on its own.  For FIRST_TOUCH, @claim_slots bounds how many blocks can
 * be claimed (the table is allocated here, once); it is ignored
 * otherwise.  DQ_ERR_RANGE for a bad argument, DQ_ERR_NOMEM.
 * Context: set-up, before any other thread uses @h.
 */
DqStatus dq_home_init(DqHome *h, DqHomePolicy policy, unsigned nodes,
                      unsigned block_shift, size_t claim_slots);

/* Context: tear-down, after every user of @h has stopped. */
void dq_home_destroy(DqHome *h);

/*
 * Is the home of @page decided?  If so, store it in *@home.  Always true
 * for MASTER and HASH; for FIRST_TOUCH true once the block is claimed.
 * Never claims.
 * Context: any thread, the fault path included: no lock, no allocation.
 */
bool dq_home_peek(const DqHome *h, uint64_t page, unsigned *home);

/*
 * Where requests for @page go: its home when decided, else the arbiter
 * (DQ_HOME_ARBITER), which claims the page for the first requester.
 * Never claims.
 * Context: any thread, the fault path included: no lock, no allocation.
 */
unsigned dq_home_of(const DqHome *h, uint64_t page);

/*
 * First touch: make @node the home of @page's block unless the block has
 * a home already; either way *@home is the home afterwards (first claim
 * wins).  A worker records a home it learned from the arbiter the same
 * way.  For MASTER and HASH nothing changes and *@home is the fixed home.
 * DQ_ERR_RANGE for a bad @node or @page, DQ_ERR_HOME_FULL when the claim
 * table has no room (the caller keeps the arbiter as home).
 * Context: one thread only (the node's service thread); lookups from
 * other threads may run concurrently and see the claim or not yet.
 */
DqStatus dq_home_claim(DqHome *h, uint64_t page, unsigned node,
                       unsigned *home);

/* "master", "hash", "first-touch"; DQ_ERR_USAGE for anything else. */
DqStatus dq_home_policy_parse(const char *name, DqHomePolicy *policy);
const char *dq_home_policy_str(DqHomePolicy policy);

#endif /* DQEMU_HOME_H */
