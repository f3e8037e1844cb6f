/*
 * Test that the home directory runs MSI correctly: every transition, the
 * races of a real cluster (requests during rounds, crossing upgrades,
 * evictions crossing recalls, requests from the owner itself, failures),
 * protocol errors that leave the entry as it was, and a randomized model
 * of a small cluster with reordered delivery that checks coherence and
 * "every read sees the last write" after every step.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "dir.h"

/* ---- fixture: one directory, one entry, a recorder for actions ---------- */

#define MAX_ACTS 64
#define PAGE     0x4242

typedef struct Fx {
    DqDir d;
    DqDirEntry e;
    DqDirAction act[MAX_ACTS];
    int n;
} Fx;

static void fx_record(void *opaque, const DqDirAction *a)
{
    Fx *f = opaque;

    assert_true(f->n < MAX_ACTS);
    assert_int_equal(a->page, PAGE);
    f->act[f->n++] = *a;
}

static void fx_init_slots(Fx *f, unsigned owner, uint32_t slots)
{
    DqDirOps ops = { .act = fx_record, .opaque = f };

    memset(f, 0, sizeof(*f));
    assert_int_equal(dq_dir_init(&f->d, 5, slots, &ops), DQ_OK);
    dq_dir_entry_init(&f->e, PAGE, owner);
    assert_int_equal(dq_dir_check(&f->d, &f->e), DQ_OK);
}

static void fx_init(Fx *f)
{
    fx_init_slots(f, DQ_DIR_NO_NODE, 16);
}

static void fx_fini(Fx *f)
{
    dq_dir_entry_release(&f->d, &f->e);
    assert_int_equal(f->d.pool_used, 0);
    dq_dir_destroy(&f->d);
}

static DqStatus fx_event(Fx *f, DqDirEventKind kind, unsigned node,
                         uint64_t id, DqDirMode kept, bool has_data)
{
    DqDirEvent ev = {
        .kind = kind, .node = node, .id = id, .flags = 0,
        .kept = kept, .has_data = has_data,
    };
    DqStatus st;

    f->n = 0;
    st = dq_dir_handle(&f->d, &f->e, &ev);
    /* Whatever happened, the entry must still make sense. */
    assert_int_equal(dq_dir_check(&f->d, &f->e), DQ_OK);
    return st;
}

/* Requests carry id 100 + node so grants can be matched to them. */
static DqStatus fx_req(Fx *f, DqDirEventKind kind, unsigned node)
{
    return fx_event(f, kind, node, 100 + node, DQ_DIR_MODE_I, false);
}

static DqStatus fx_ack(Fx *f, unsigned node, uint64_t txn)
{
    return fx_event(f, DQ_DIR_EV_INV_ACK, node, txn, DQ_DIR_MODE_I, false);
}

static DqStatus fx_reply(Fx *f, unsigned node, uint64_t txn, DqDirMode kept,
                         bool has_data)
{
    return fx_event(f, DQ_DIR_EV_RECALL_REPLY, node, txn, kept, has_data);
}

static DqStatus fx_wb(Fx *f, unsigned node)
{
    return fx_event(f, DQ_DIR_EV_WRITEBACK, node, 0, DQ_DIR_MODE_I, true);
}

static DqStatus fx_fail(Fx *f, unsigned node)
{
    return fx_event(f, DQ_DIR_EV_NODE_FAILED, node, 0, DQ_DIR_MODE_I, false);
}

static void fx_serve_next(Fx *f)
{
    f->n = 0;
    assert_int_equal(dq_dir_serve_next(&f->d, &f->e), DQ_OK);
    assert_int_equal(dq_dir_check(&f->d, &f->e), DQ_OK);
}

/* Action @i is @kind for @node in @mode. */
static void expect_act(const Fx *f, int i, DqDirActKind kind, unsigned node,
                       DqDirMode mode)
{
    assert_true(i < f->n);
    assert_string_equal(dq_dir_act_str(f->act[i].kind), dq_dir_act_str(kind));
    if (kind != DQ_DIR_ACT_SERVE_NEXT) {
        assert_int_equal(f->act[i].node, node);
    }
    if (kind == DQ_DIR_ACT_RECALL || kind == DQ_DIR_ACT_GRANT ||
        kind == DQ_DIR_ACT_GRANT_DATA) {
        assert_string_equal(dq_dir_mode_str(f->act[i].mode),
                            dq_dir_mode_str(mode));
    }
    if (kind == DQ_DIR_ACT_GRANT || kind == DQ_DIR_ACT_GRANT_DATA) {
        assert_int_equal(f->act[i].id, 100 + node);
    }
}

static void expect_grant_only(const Fx *f, DqDirActKind kind, unsigned node,
                              DqDirMode mode)
{
    assert_int_equal(f->n, 1);
    expect_act(f, 0, kind, node, mode);
}

static void expect_state(const Fx *f, DqDirState state)
{
    assert_string_equal(dq_dir_state_str(f->e.state), dq_dir_state_str(state));
}

static bool is_sharer(const Fx *f, unsigned n)
{
    return dq_dir_set_has(&f->e.sharers, n);
}

/* Build the common starting points. */
static void fx_share(Fx *f, unsigned a, unsigned b)
{
    assert_int_equal(fx_req(f, DQ_DIR_EV_READ, a), DQ_OK);
    assert_int_equal(fx_req(f, DQ_DIR_EV_READ, b), DQ_OK);
    expect_state(f, DQ_DIR_SHARED);
}

static void fx_own(Fx *f, unsigned owner)
{
    assert_int_equal(fx_req(f, DQ_DIR_EV_WRITE, owner), DQ_OK);
    expect_grant_only(f, DQ_DIR_ACT_GRANT_DATA, owner, DQ_DIR_MODE_M);
    expect_state(f, DQ_DIR_MODIFIED);
}

/* ---- plain transitions ------------------------------------------------ */

static void read_of_an_uncached_page_is_granted_shared_from_home(void **state)
{
    Fx f;

    (void)state;
    fx_init(&f);
    assert_int_equal(fx_req(&f, DQ_DIR_EV_READ, 1), DQ_OK);
    expect_grant_only(&f, DQ_DIR_ACT_GRANT_DATA, 1, DQ_DIR_MODE_S);
    expect_state(&f, DQ_DIR_SHARED);
    assert_true(is_sharer(&f, 1));
    assert_true(dq_dir_home_current(&f.e));
    fx_fini(&f);
}

static void write_of_an_uncached_page_is_granted_modified_from_home(void **s)
{
    Fx f;

    (void)s;
    fx_init(&f);
    fx_own(&f, 2);
    assert_int_equal(f.e.owner, 2);
    assert_false(dq_dir_home_current(&f.e));
    fx_fini(&f);
}

static void read_of_a_shared_page_adds_a_sharer(void **state)
{
    Fx f;

    (void)state;
    fx_init(&f);
    fx_share(&f, 1, 2);
    assert_int_equal(fx_req(&f, DQ_DIR_EV_READ, 3), DQ_OK);
    expect_grant_only(&f, DQ_DIR_ACT_GRANT_DATA, 3, DQ_DIR_MODE_S);
    assert_int_equal(dq_dir_set_count(&f.e.sharers), 3);
    fx_fini(&f);
}

static void upgrade_of_the_only_sharer_is_granted_without_data(void **state)
{
    Fx f;

    (void)state;
    fx_init(&f);
    assert_int_equal(fx_req(&f, DQ_DIR_EV_READ, 1), DQ_OK);
    assert_int_equal(fx_req(&f, DQ_DIR_EV_UPGRADE, 1), DQ_OK);
    expect_grant_only(&f, DQ_DIR_ACT_GRANT, 1, DQ_DIR_MODE_M);
    expect_state(&f, DQ_DIR_MODIFIED);
    assert_int_equal(f.e.owner, 1);
    assert_true(dq_dir_set_empty(&f.e.sharers));
    fx_fini(&f);
}

static void write_waits_for_all_invalidate_acks(void **state)
{
    Fx f;
    uint64_t txn;

    (void)state;
    fx_init(&f);
    fx_share(&f, 1, 2);
    assert_int_equal(fx_req(&f, DQ_DIR_EV_READ, 3), DQ_OK);
    assert_int_equal(fx_req(&f, DQ_DIR_EV_WRITE, 4), DQ_OK);
    assert_int_equal(f.n, 3);
    expect_act(&f, 0, DQ_DIR_ACT_INVAL, 1, DQ_DIR_MODE_I);
    expect_act(&f, 1, DQ_DIR_ACT_INVAL, 2, DQ_DIR_MODE_I);
    expect_act(&f, 2, DQ_DIR_ACT_INVAL, 3, DQ_DIR_MODE_I);
    txn = f.act[0].id;
    assert_int_equal(f.act[1].id, txn);
    assert_int_equal(f.act[2].id, txn);
    expect_state(&f, DQ_DIR_BUSY_INVAL);

    assert_int_equal(fx_ack(&f, 1, txn), DQ_OK);
    assert_int_equal(f.n, 0);
    assert_int_equal(fx_ack(&f, 3, txn), DQ_OK);
    assert_int_equal(f.n, 0);
    expect_state(&f, DQ_DIR_BUSY_INVAL);
    assert_false(is_sharer(&f, 1));
    assert_true(is_sharer(&f, 2));

    assert_int_equal(fx_ack(&f, 2, txn), DQ_OK);
    expect_grant_only(&f, DQ_DIR_ACT_GRANT_DATA, 4, DQ_DIR_MODE_M);
    expect_state(&f, DQ_DIR_MODIFIED);
    assert_int_equal(f.e.owner, 4);
    assert_true(dq_dir_set_empty(&f.e.sharers));
    fx_fini(&f);
}

static void upgrade_invalidates_the_others_then_grants_without_data(void **s)
{
    Fx f;

    (void)s;
    fx_init(&f);
    fx_share(&f, 1, 2);
    assert_int_equal(fx_req(&f, DQ_DIR_EV_UPGRADE, 1), DQ_OK);
    assert_int_equal(f.n, 1);
    expect_act(&f, 0, DQ_DIR_ACT_INVAL, 2, DQ_DIR_MODE_I);
    assert_int_equal(fx_ack(&f, 2, f.act[0].id), DQ_OK);
    expect_grant_only(&f, DQ_DIR_ACT_GRANT, 1, DQ_DIR_MODE_M);
    assert_int_equal(f.e.owner, 1);
    fx_fini(&f);
}

static void read_of_a_modified_page_recalls_the_owner_keeping_shared(void **s)
{
    Fx f;

    (void)s;
    fx_init(&f);
    fx_own(&f, 1);
    assert_int_equal(fx_req(&f, DQ_DIR_EV_READ, 2), DQ_OK);
    assert_int_equal(f.n, 1);
    expect_act(&f, 0, DQ_DIR_ACT_RECALL, 1, DQ_DIR_MODE_S);
    expect_state(&f, DQ_DIR_BUSY_RECALL);

    assert_int_equal(fx_reply(&f, 1, f.act[0].id, DQ_DIR_MODE_S, true), DQ_OK);
    /* The home copy is updated before the grant ships it. */
    assert_int_equal(f.n, 2);
    expect_act(&f, 0, DQ_DIR_ACT_STORE_HOME, 1, DQ_DIR_MODE_I);
    expect_act(&f, 1, DQ_DIR_ACT_GRANT_DATA, 2, DQ_DIR_MODE_S);
    expect_state(&f, DQ_DIR_SHARED);
    assert_true(is_sharer(&f, 1));
    assert_true(is_sharer(&f, 2));
    assert_int_equal(f.e.owner, DQ_DIR_NO_NODE);
    assert_true(dq_dir_home_current(&f.e));
    fx_fini(&f);
}

static void write_of_a_modified_page_recalls_the_owner_keeping_none(void **s)
{
    Fx f;

    (void)s;
    fx_init(&f);
    fx_own(&f, 1);
    assert_int_equal(fx_req(&f, DQ_DIR_EV_WRITE, 2), DQ_OK);
    expect_act(&f, 0, DQ_DIR_ACT_RECALL, 1, DQ_DIR_MODE_I);
    assert_int_equal(fx_reply(&f, 1, f.act[0].id, DQ_DIR_MODE_I, true), DQ_OK);
    assert_int_equal(f.n, 2);
    expect_act(&f, 0, DQ_DIR_ACT_STORE_HOME, 1, DQ_DIR_MODE_I);
    expect_act(&f, 1, DQ_DIR_ACT_GRANT_DATA, 2, DQ_DIR_MODE_M);
    expect_state(&f, DQ_DIR_MODIFIED);
    assert_int_equal(f.e.owner, 2);
    assert_true(dq_dir_set_empty(&f.e.sharers));
    fx_fini(&f);
}

static void upgrade_of_a_page_owned_elsewhere_becomes_a_write(void **state)
{
    Fx f;

    (void)state;
    fx_init(&f);
    fx_own(&f, 1);
    assert_int_equal(fx_req(&f, DQ_DIR_EV_UPGRADE, 2), DQ_OK);
    expect_act(&f, 0, DQ_DIR_ACT_RECALL, 1, DQ_DIR_MODE_I);
    assert_int_equal(fx_reply(&f, 1, f.act[0].id, DQ_DIR_MODE_I, true), DQ_OK);
    expect_act(&f, 1, DQ_DIR_ACT_GRANT_DATA, 2, DQ_DIR_MODE_M);
    fx_fini(&f);
}

static void upgrade_of_an_uncached_page_is_granted_with_data(void **state)
{
    Fx f;

    (void)state;
    fx_init(&f);
    assert_int_equal(fx_req(&f, DQ_DIR_EV_UPGRADE, 3), DQ_OK);
    expect_grant_only(&f, DQ_DIR_ACT_GRANT_DATA, 3, DQ_DIR_MODE_M);
    fx_fini(&f);
}

static void writeback_leaves_the_page_uncached_with_a_current_home(void **s)
{
    Fx f;

    (void)s;
    fx_init(&f);
    fx_own(&f, 1);
    assert_int_equal(fx_wb(&f, 1), DQ_OK);
    assert_int_equal(f.n, 1);
    expect_act(&f, 0, DQ_DIR_ACT_STORE_HOME, 1, DQ_DIR_MODE_I);
    expect_state(&f, DQ_DIR_UNCACHED);
    assert_true(dq_dir_home_current(&f.e));
    assert_int_equal(fx_req(&f, DQ_DIR_EV_READ, 2), DQ_OK);
    expect_grant_only(&f, DQ_DIR_ACT_GRANT_DATA, 2, DQ_DIR_MODE_S);
    fx_fini(&f);
}

static void page_loaded_by_the_master_starts_modified_there(void **state)
{
    Fx f;

    (void)state;
    fx_init_slots(&f, 0, 4);
    expect_state(&f, DQ_DIR_MODIFIED);
    assert_int_equal(f.e.owner, 0);
    assert_int_equal(fx_req(&f, DQ_DIR_EV_READ, 3), DQ_OK);
    expect_act(&f, 0, DQ_DIR_ACT_RECALL, 0, DQ_DIR_MODE_S);
    assert_int_equal(fx_reply(&f, 0, f.act[0].id, DQ_DIR_MODE_S, true), DQ_OK);
    expect_act(&f, 1, DQ_DIR_ACT_GRANT_DATA, 3, DQ_DIR_MODE_S);
    assert_true(is_sharer(&f, 0));
    fx_fini(&f);
}

static void grants_carry_the_request_flags(void **state)
{
    Fx f;
    DqDirEvent ev = {
        .kind = DQ_DIR_EV_WRITE, .node = 2, .id = 77, .flags = 0x1,
    };

    (void)state;
    fx_init(&f);
    assert_int_equal(dq_dir_handle(&f.d, &f.e, &ev), DQ_OK);
    assert_int_equal(f.n, 1);
    assert_int_equal(f.act[0].id, 77);
    /* e.g. DQ_MSG_F_ATOMIC: the grantee holds the page for a lease. */
    assert_int_equal(f.act[0].flags, 0x1);
    fx_fini(&f);
}

/* ---- one transaction at a time ------------------------------------------ */

static void requests_queue_fifo_while_the_page_is_busy(void **state)
{
    Fx f;
    uint64_t txn;

    (void)state;
    fx_init(&f);
    fx_share(&f, 1, 2);
    assert_int_equal(fx_req(&f, DQ_DIR_EV_WRITE, 3), DQ_OK);
    assert_int_equal(f.n, 2);
    txn = f.act[0].id;
    assert_int_equal(fx_req(&f, DQ_DIR_EV_READ, 4), DQ_OK);
    assert_int_equal(f.n, 0);
    assert_int_equal(fx_req(&f, DQ_DIR_EV_WRITE, 1), DQ_OK);
    assert_int_equal(f.n, 0);
    assert_int_equal(fx_req(&f, DQ_DIR_EV_READ, 2), DQ_OK);
    assert_int_equal(f.e.q_len, 3);

    assert_int_equal(fx_ack(&f, 1, txn), DQ_OK);
    assert_int_equal(fx_ack(&f, 2, txn), DQ_OK);
    assert_int_equal(f.n, 2);
    expect_act(&f, 0, DQ_DIR_ACT_GRANT_DATA, 3, DQ_DIR_MODE_M);
    expect_act(&f, 1, DQ_DIR_ACT_SERVE_NEXT, 0, DQ_DIR_MODE_I);

    /* First waiter: the read of node 4 recalls node 3. */
    fx_serve_next(&f);
    assert_int_equal(f.n, 1);
    expect_act(&f, 0, DQ_DIR_ACT_RECALL, 3, DQ_DIR_MODE_S);
    assert_int_equal(fx_reply(&f, 3, f.act[0].id, DQ_DIR_MODE_S, true), DQ_OK);
    assert_int_equal(f.n, 3);
    expect_act(&f, 1, DQ_DIR_ACT_GRANT_DATA, 4, DQ_DIR_MODE_S);
    expect_act(&f, 2, DQ_DIR_ACT_SERVE_NEXT, 0, DQ_DIR_MODE_I);

    /* Second: the write of node 1 invalidates 3 and 4. */
    fx_serve_next(&f);
    assert_int_equal(f.n, 2);
    expect_act(&f, 0, DQ_DIR_ACT_INVAL, 3, DQ_DIR_MODE_I);
    expect_act(&f, 1, DQ_DIR_ACT_INVAL, 4, DQ_DIR_MODE_I);
    txn = f.act[0].id;
    assert_int_equal(fx_ack(&f, 4, txn), DQ_OK);
    assert_int_equal(fx_ack(&f, 3, txn), DQ_OK);
    expect_act(&f, 0, DQ_DIR_ACT_GRANT_DATA, 1, DQ_DIR_MODE_M);
    expect_act(&f, 1, DQ_DIR_ACT_SERVE_NEXT, 0, DQ_DIR_MODE_I);

    /* Third: the read of node 2 recalls node 1. */
    fx_serve_next(&f);
    expect_act(&f, 0, DQ_DIR_ACT_RECALL, 1, DQ_DIR_MODE_S);
    assert_int_equal(fx_reply(&f, 1, f.act[0].id, DQ_DIR_MODE_S, true), DQ_OK);
    assert_int_equal(f.n, 2);
    expect_act(&f, 1, DQ_DIR_ACT_GRANT_DATA, 2, DQ_DIR_MODE_S);
    assert_int_equal(f.e.q_len, 0);
    fx_fini(&f);
}

static void new_request_does_not_overtake_waiting_ones(void **state)
{
    Fx f;
    uint64_t txn;

    (void)state;
    fx_init(&f);
    fx_own(&f, 1);
    assert_int_equal(fx_req(&f, DQ_DIR_EV_WRITE, 2), DQ_OK);
    txn = f.act[0].id;
    assert_int_equal(fx_req(&f, DQ_DIR_EV_WRITE, 3), DQ_OK);
    assert_int_equal(fx_reply(&f, 1, txn, DQ_DIR_MODE_I, true), DQ_OK);
    expect_act(&f, 2, DQ_DIR_ACT_SERVE_NEXT, 0, DQ_DIR_MODE_I);
    /* Idle, node 3 waiting, SERVE_NEXT not handled yet: 4 must queue. */
    assert_false(dq_dir_busy(&f.e));
    assert_int_equal(fx_req(&f, DQ_DIR_EV_READ, 4), DQ_OK);
    assert_int_equal(f.n, 0);
    assert_int_equal(f.e.q_len, 2);
    fx_serve_next(&f);
    expect_act(&f, 0, DQ_DIR_ACT_RECALL, 2, DQ_DIR_MODE_I);
    fx_fini(&f);
}

static void home_node_requests_take_the_same_path(void **state)
{
    Fx f;
    uint64_t txn;

    (void)state;
    fx_init(&f);
    fx_own(&f, 1);
    assert_int_equal(fx_req(&f, DQ_DIR_EV_READ, 2), DQ_OK);
    txn = f.act[0].id;
    /* Node 0 is the home; its own fault waits behind node 2. */
    assert_int_equal(fx_req(&f, DQ_DIR_EV_WRITE, 0), DQ_OK);
    assert_int_equal(f.n, 0);
    assert_int_equal(fx_reply(&f, 1, txn, DQ_DIR_MODE_S, true), DQ_OK);
    expect_act(&f, 1, DQ_DIR_ACT_GRANT_DATA, 2, DQ_DIR_MODE_S);
    fx_serve_next(&f);
    assert_int_equal(f.n, 2);
    expect_act(&f, 0, DQ_DIR_ACT_INVAL, 1, DQ_DIR_MODE_I);
    expect_act(&f, 1, DQ_DIR_ACT_INVAL, 2, DQ_DIR_MODE_I);
    txn = f.act[0].id;
    assert_int_equal(fx_ack(&f, 1, txn), DQ_OK);
    assert_int_equal(fx_ack(&f, 2, txn), DQ_OK);
    expect_grant_only(&f, DQ_DIR_ACT_GRANT_DATA, 0, DQ_DIR_MODE_M);
    assert_int_equal(f.e.owner, 0);
    fx_fini(&f);
}

static void full_wait_queue_is_reported_and_changes_nothing(void **state)
{
    Fx f;
    DqDirEntry before;
    uint64_t txn;

    (void)state;
    fx_init_slots(&f, DQ_DIR_NO_NODE, 2);
    fx_own(&f, 1);
    assert_int_equal(fx_req(&f, DQ_DIR_EV_READ, 2), DQ_OK);
    txn = f.act[0].id;
    assert_int_equal(fx_req(&f, DQ_DIR_EV_READ, 3), DQ_OK);
    assert_int_equal(fx_req(&f, DQ_DIR_EV_READ, 4), DQ_OK);
    memcpy(&before, &f.e, sizeof(before));
    assert_int_equal(fx_req(&f, DQ_DIR_EV_READ, 0), DQ_ERR_DIR_QUEUE_FULL);
    assert_int_equal(f.n, 0);
    assert_memory_equal(&before, &f.e, sizeof(before));

    /* Served waiters give their slots back. */
    assert_int_equal(fx_reply(&f, 1, txn, DQ_DIR_MODE_S, true), DQ_OK);
    fx_serve_next(&f);
    assert_int_equal(f.d.pool_used, 1);
    assert_int_equal(fx_req(&f, DQ_DIR_EV_READ, 0), DQ_OK);
    assert_int_equal(f.d.pool_used, 2);
    fx_fini(&f);
}

static void serve_next_without_waiters_does_nothing(void **state)
{
    Fx f;

    (void)state;
    fx_init(&f);
    fx_serve_next(&f);
    assert_int_equal(f.n, 0);
    fx_own(&f, 1);
    assert_int_equal(fx_req(&f, DQ_DIR_EV_READ, 2), DQ_OK);
    assert_int_equal(fx_req(&f, DQ_DIR_EV_READ, 3), DQ_OK);
    /* Busy: the waiter stays until the recall is answered. */
    fx_serve_next(&f);
    assert_int_equal(f.n, 0);
    assert_int_equal(f.e.q_len, 1);
    fx_fini(&f);
}

/* ---- races ------------------------------------------------------------ */

static void write_arriving_during_an_invalidation_round_waits(void **state)
{
    Fx f;
    uint64_t txn;

    (void)state;
    fx_init(&f);
    fx_share(&f, 1, 2);
    assert_int_equal(fx_req(&f, DQ_DIR_EV_WRITE, 3), DQ_OK);
    txn = f.act[0].id;
    assert_int_equal(fx_ack(&f, 1, txn), DQ_OK);
    assert_int_equal(fx_req(&f, DQ_DIR_EV_WRITE, 4), DQ_OK);
    assert_int_equal(f.n, 0);
    assert_int_equal(f.e.requester, 3);
    assert_int_equal(fx_ack(&f, 2, txn), DQ_OK);
    assert_int_equal(f.n, 2);
    expect_act(&f, 0, DQ_DIR_ACT_GRANT_DATA, 3, DQ_DIR_MODE_M);
    expect_act(&f, 1, DQ_DIR_ACT_SERVE_NEXT, 0, DQ_DIR_MODE_I);
    fx_serve_next(&f);
    expect_act(&f, 0, DQ_DIR_ACT_RECALL, 3, DQ_DIR_MODE_I);
    assert_int_equal(fx_reply(&f, 3, f.act[0].id, DQ_DIR_MODE_I, true), DQ_OK);
    expect_act(&f, 1, DQ_DIR_ACT_GRANT_DATA, 4, DQ_DIR_MODE_M);
    fx_fini(&f);
}

static void crossing_upgrades_turn_the_loser_into_a_write(void **state)
{
    Fx f;
    uint64_t txn;

    (void)state;
    fx_init(&f);
    fx_share(&f, 1, 2);
    /* Both S nodes write at once; node 1's upgrade gets there first. */
    assert_int_equal(fx_req(&f, DQ_DIR_EV_UPGRADE, 1), DQ_OK);
    expect_act(&f, 0, DQ_DIR_ACT_INVAL, 2, DQ_DIR_MODE_I);
    txn = f.act[0].id;
    assert_int_equal(fx_req(&f, DQ_DIR_EV_UPGRADE, 2), DQ_OK);
    assert_int_equal(f.n, 0);
    /* Node 2 drops its S copy (its upgrade still pending) and acks. */
    assert_int_equal(fx_ack(&f, 2, txn), DQ_OK);
    expect_act(&f, 0, DQ_DIR_ACT_GRANT, 1, DQ_DIR_MODE_M);
    expect_act(&f, 1, DQ_DIR_ACT_SERVE_NEXT, 0, DQ_DIR_MODE_I);

    /* The loser has no copy left: it must get the winner's data. */
    fx_serve_next(&f);
    expect_act(&f, 0, DQ_DIR_ACT_RECALL, 1, DQ_DIR_MODE_I);
    assert_int_equal(fx_reply(&f, 1, f.act[0].id, DQ_DIR_MODE_I, true), DQ_OK);
    assert_int_equal(f.n, 2);
    expect_act(&f, 0, DQ_DIR_ACT_STORE_HOME, 1, DQ_DIR_MODE_I);
    expect_act(&f, 1, DQ_DIR_ACT_GRANT_DATA, 2, DQ_DIR_MODE_M);
    assert_int_equal(f.e.owner, 2);
    fx_fini(&f);
}

static void upgrade_that_lost_to_a_write_gets_data(void **state)
{
    Fx f;
    uint64_t txn;

    (void)state;
    fx_init(&f);
    fx_share(&f, 1, 2);
    assert_int_equal(fx_req(&f, DQ_DIR_EV_READ, 3), DQ_OK);
    assert_int_equal(fx_req(&f, DQ_DIR_EV_WRITE, 3), DQ_OK);
    txn = f.act[0].id;
    assert_int_equal(fx_req(&f, DQ_DIR_EV_UPGRADE, 1), DQ_OK);
    assert_int_equal(fx_ack(&f, 1, txn), DQ_OK);
    assert_int_equal(fx_ack(&f, 2, txn), DQ_OK);
    expect_act(&f, 0, DQ_DIR_ACT_GRANT_DATA, 3, DQ_DIR_MODE_M);
    fx_serve_next(&f);
    expect_act(&f, 0, DQ_DIR_ACT_RECALL, 3, DQ_DIR_MODE_I);
    assert_int_equal(fx_reply(&f, 3, f.act[0].id, DQ_DIR_MODE_I, true), DQ_OK);
    expect_act(&f, 1, DQ_DIR_ACT_GRANT_DATA, 1, DQ_DIR_MODE_M);
    fx_fini(&f);
}

static void recall_racing_eviction_keeps_the_latest_data(void **state)
{
    Fx f;
    DqDirEntry before;
    uint64_t txn;

    (void)state;
    fx_init(&f);
    fx_own(&f, 1);
    assert_int_equal(fx_req(&f, DQ_DIR_EV_READ, 2), DQ_OK);
    expect_act(&f, 0, DQ_DIR_ACT_RECALL, 1, DQ_DIR_MODE_S);
    txn = f.act[0].id;
    /* Node 1 evicted before the RECALL reached it: the writeback first. */
    assert_int_equal(fx_wb(&f, 1), DQ_OK);
    assert_int_equal(f.n, 2);
    expect_act(&f, 0, DQ_DIR_ACT_STORE_HOME, 1, DQ_DIR_MODE_I);
    expect_act(&f, 1, DQ_DIR_ACT_GRANT_DATA, 2, DQ_DIR_MODE_S);
    expect_state(&f, DQ_DIR_SHARED);
    assert_false(is_sharer(&f, 1));
    assert_true(dq_dir_home_current(&f.e));

    /* Then its answer to the RECALL, from I: stale, dropped, harmless. */
    memcpy(&before, &f.e, sizeof(before));
    assert_int_equal(fx_reply(&f, 1, txn, DQ_DIR_MODE_I, false), DQ_OK);
    assert_int_equal(f.n, 0);
    assert_false(is_sharer(&f, 1));
    assert_true(dq_dir_set_empty(&f.e.stale));
    /* Only one late answer is expected. */
    assert_int_equal(fx_reply(&f, 1, txn, DQ_DIR_MODE_I, false),
                     DQ_ERR_DIR_RECALL_UNEXPECTED);
    fx_fini(&f);
}

static void writeback_instead_of_a_recall_reply_completes_it(void **state)
{
    Fx f;

    (void)state;
    fx_init(&f);
    fx_own(&f, 1);
    assert_int_equal(fx_req(&f, DQ_DIR_EV_WRITE, 2), DQ_OK);
    assert_int_equal(fx_wb(&f, 1), DQ_OK);
    expect_act(&f, 1, DQ_DIR_ACT_GRANT_DATA, 2, DQ_DIR_MODE_M);
    /* Node 1 ignores the RECALL; later it owns the page again. */
    assert_int_equal(fx_req(&f, DQ_DIR_EV_WRITE, 1), DQ_OK);
    expect_act(&f, 0, DQ_DIR_ACT_RECALL, 2, DQ_DIR_MODE_I);
    assert_int_equal(fx_reply(&f, 2, f.act[0].id, DQ_DIR_MODE_I, true), DQ_OK);
    expect_act(&f, 1, DQ_DIR_ACT_GRANT_DATA, 1, DQ_DIR_MODE_M);
    /* A genuine recall of node 1 is answered and served normally. */
    assert_int_equal(fx_req(&f, DQ_DIR_EV_READ, 3), DQ_OK);
    expect_act(&f, 0, DQ_DIR_ACT_RECALL, 1, DQ_DIR_MODE_S);
    assert_int_equal(fx_reply(&f, 1, f.act[0].id, DQ_DIR_MODE_S, true), DQ_OK);
    expect_act(&f, 1, DQ_DIR_ACT_GRANT_DATA, 3, DQ_DIR_MODE_S);
    assert_true(dq_dir_set_empty(&f.e.stale));
    fx_fini(&f);
}

static void late_stale_reply_during_a_new_recall_is_dropped(void **state)
{
    Fx f;
    uint64_t old, cur;

    (void)state;
    fx_init(&f);
    fx_own(&f, 1);
    assert_int_equal(fx_req(&f, DQ_DIR_EV_WRITE, 2), DQ_OK);
    old = f.act[0].id;
    assert_int_equal(fx_wb(&f, 1), DQ_OK);
    /* Node 2 evicts too, node 1 writes again and is recalled at once... */
    assert_int_equal(fx_wb(&f, 2), DQ_OK);
    assert_int_equal(fx_req(&f, DQ_DIR_EV_WRITE, 1), DQ_OK);
    assert_int_equal(fx_req(&f, DQ_DIR_EV_READ, 3), DQ_OK);
    expect_act(&f, 0, DQ_DIR_ACT_RECALL, 1, DQ_DIR_MODE_S);
    cur = f.act[0].id;
    /* ...while its late answer to the old RECALL is still on the way. */
    assert_int_equal(fx_reply(&f, 1, old, DQ_DIR_MODE_I, false), DQ_OK);
    assert_int_equal(f.n, 0);
    expect_state(&f, DQ_DIR_BUSY_RECALL);
    assert_int_equal(fx_reply(&f, 1, cur, DQ_DIR_MODE_S, true), DQ_OK);
    expect_act(&f, 1, DQ_DIR_ACT_GRANT_DATA, 3, DQ_DIR_MODE_S);
    fx_fini(&f);
}

static void read_request_from_the_owner_recalls_its_own_copy(void **state)
{
    Fx f;

    (void)state;
    fx_init(&f);
    fx_own(&f, 1);
    assert_int_equal(fx_req(&f, DQ_DIR_EV_READ, 1), DQ_OK);
    expect_act(&f, 0, DQ_DIR_ACT_RECALL, 1, DQ_DIR_MODE_I);
    assert_int_equal(fx_reply(&f, 1, f.act[0].id, DQ_DIR_MODE_I, true), DQ_OK);
    assert_int_equal(f.n, 2);
    expect_act(&f, 0, DQ_DIR_ACT_STORE_HOME, 1, DQ_DIR_MODE_I);
    expect_act(&f, 1, DQ_DIR_ACT_GRANT_DATA, 1, DQ_DIR_MODE_S);
    expect_state(&f, DQ_DIR_SHARED);
    assert_true(is_sharer(&f, 1));
    fx_fini(&f);
}

static void owner_reading_after_its_eviction_gets_the_written_data(void **s)
{
    Fx f;
    uint64_t txn;

    (void)s;
    fx_init(&f);
    fx_own(&f, 1);
    /* The read got here before the writeback the owner sent first. */
    assert_int_equal(fx_req(&f, DQ_DIR_EV_READ, 1), DQ_OK);
    txn = f.act[0].id;
    assert_int_equal(fx_wb(&f, 1), DQ_OK);
    expect_act(&f, 0, DQ_DIR_ACT_STORE_HOME, 1, DQ_DIR_MODE_I);
    expect_act(&f, 1, DQ_DIR_ACT_GRANT_DATA, 1, DQ_DIR_MODE_S);
    assert_int_equal(fx_reply(&f, 1, txn, DQ_DIR_MODE_I, false), DQ_OK);
    assert_int_equal(f.n, 0);
    expect_state(&f, DQ_DIR_SHARED);
    fx_fini(&f);
}

static void write_request_from_the_owner_recalls_then_grants_data(void **s)
{
    Fx f;

    (void)s;
    fx_init(&f);
    fx_own(&f, 1);
    assert_int_equal(fx_req(&f, DQ_DIR_EV_WRITE, 1), DQ_OK);
    expect_act(&f, 0, DQ_DIR_ACT_RECALL, 1, DQ_DIR_MODE_I);
    assert_int_equal(fx_reply(&f, 1, f.act[0].id, DQ_DIR_MODE_I, true), DQ_OK);
    expect_act(&f, 1, DQ_DIR_ACT_GRANT_DATA, 1, DQ_DIR_MODE_M);
    assert_int_equal(f.e.owner, 1);
    fx_fini(&f);
}

static void owner_that_lost_its_copy_reports_data_loss(void **state)
{
    Fx f;

    (void)state;
    fx_init(&f);
    fx_own(&f, 1);
    assert_int_equal(fx_req(&f, DQ_DIR_EV_READ, 2), DQ_OK);
    assert_int_equal(fx_reply(&f, 1, f.act[0].id, DQ_DIR_MODE_I, false),
                     DQ_ERR_DIR_DATA_LOST);
    /* Nobody is left waiting: the requester gets the stale home copy. */
    expect_grant_only(&f, DQ_DIR_ACT_GRANT_DATA, 2, DQ_DIR_MODE_S);
    expect_state(&f, DQ_DIR_SHARED);
    fx_fini(&f);
}

static void read_from_a_sharer_that_dropped_its_copy_gets_data(void **state)
{
    Fx f;

    (void)state;
    fx_init(&f);
    fx_share(&f, 1, 2);
    assert_int_equal(fx_req(&f, DQ_DIR_EV_READ, 1), DQ_OK);
    expect_grant_only(&f, DQ_DIR_ACT_GRANT_DATA, 1, DQ_DIR_MODE_S);
    assert_int_equal(dq_dir_set_count(&f.e.sharers), 2);
    fx_fini(&f);
}

static void upgrade_from_the_owner_is_confirmed_without_data(void **state)
{
    Fx f;
    DqDirEntry before;

    (void)state;
    fx_init(&f);
    fx_own(&f, 1);
    memcpy(&before, &f.e, sizeof(before));
    assert_int_equal(fx_req(&f, DQ_DIR_EV_UPGRADE, 1), DQ_OK);
    expect_grant_only(&f, DQ_DIR_ACT_GRANT, 1, DQ_DIR_MODE_M);
    assert_int_equal(f.e.owner, 1);
    expect_state(&f, DQ_DIR_MODIFIED);
    fx_fini(&f);
}

static void write_from_a_sharer_invalidates_only_the_others(void **state)
{
    Fx f;

    (void)state;
    fx_init(&f);
    fx_share(&f, 1, 2);
    assert_int_equal(fx_req(&f, DQ_DIR_EV_WRITE, 1), DQ_OK);
    assert_int_equal(f.n, 1);
    expect_act(&f, 0, DQ_DIR_ACT_INVAL, 2, DQ_DIR_MODE_I);
    assert_int_equal(fx_ack(&f, 2, f.act[0].id), DQ_OK);
    /* It asked as a node without a copy, so it gets the data. */
    expect_grant_only(&f, DQ_DIR_ACT_GRANT_DATA, 1, DQ_DIR_MODE_M);

    fx_fini(&f);
    fx_init(&f);
    assert_int_equal(fx_req(&f, DQ_DIR_EV_READ, 3), DQ_OK);
    assert_int_equal(fx_req(&f, DQ_DIR_EV_WRITE, 3), DQ_OK);
    expect_grant_only(&f, DQ_DIR_ACT_GRANT_DATA, 3, DQ_DIR_MODE_M);
    fx_fini(&f);
}

/* ---- node failure ----------------------------------------------------- */

static void failed_sharer_is_dropped_and_its_missing_ack_is_given(void **s)
{
    Fx f;

    (void)s;
    fx_init(&f);
    fx_share(&f, 1, 2);
    assert_int_equal(fx_req(&f, DQ_DIR_EV_WRITE, 3), DQ_OK);
    assert_int_equal(fx_ack(&f, 1, f.act[0].id), DQ_OK);
    assert_int_equal(fx_fail(&f, 2), DQ_OK);
    expect_grant_only(&f, DQ_DIR_ACT_GRANT_DATA, 3, DQ_DIR_MODE_M);
    expect_state(&f, DQ_DIR_MODIFIED);
    fx_fini(&f);
}

static void failed_sharers_leave_the_set(void **state)
{
    Fx f;

    (void)state;
    fx_init(&f);
    fx_share(&f, 1, 2);
    assert_int_equal(fx_fail(&f, 1), DQ_OK);
    assert_int_equal(f.n, 0);
    expect_state(&f, DQ_DIR_SHARED);
    assert_false(is_sharer(&f, 1));
    assert_int_equal(fx_fail(&f, 2), DQ_OK);
    expect_state(&f, DQ_DIR_UNCACHED);
    /* Failing again (another entry's notice) is harmless. */
    assert_int_equal(fx_fail(&f, 2), DQ_OK);
    fx_fini(&f);
}

static void failed_owner_reports_page_data_loss(void **state)
{
    Fx f;

    (void)state;
    fx_init(&f);
    fx_own(&f, 1);
    assert_int_equal(fx_fail(&f, 1), DQ_ERR_DIR_DATA_LOST);
    assert_int_equal(f.n, 0);
    expect_state(&f, DQ_DIR_UNCACHED);
    assert_int_equal(f.e.owner, DQ_DIR_NO_NODE);
    /* The page lives on from the home copy. */
    assert_int_equal(fx_req(&f, DQ_DIR_EV_READ, 2), DQ_OK);
    expect_grant_only(&f, DQ_DIR_ACT_GRANT_DATA, 2, DQ_DIR_MODE_S);
    fx_fini(&f);
}

static void failed_owner_during_a_recall_still_serves_the_requester(void **s)
{
    Fx f;

    (void)s;
    fx_init(&f);
    fx_own(&f, 1);
    assert_int_equal(fx_req(&f, DQ_DIR_EV_READ, 2), DQ_OK);
    assert_int_equal(fx_req(&f, DQ_DIR_EV_WRITE, 3), DQ_OK);
    assert_int_equal(fx_fail(&f, 1), DQ_ERR_DIR_DATA_LOST);
    assert_int_equal(f.n, 2);
    expect_act(&f, 0, DQ_DIR_ACT_GRANT_DATA, 2, DQ_DIR_MODE_S);
    expect_act(&f, 1, DQ_DIR_ACT_SERVE_NEXT, 0, DQ_DIR_MODE_I);
    expect_state(&f, DQ_DIR_SHARED);
    fx_fini(&f);
}

static void failed_former_owner_after_its_writeback_loses_nothing(void **s)
{
    Fx f;

    (void)s;
    fx_init(&f);
    fx_own(&f, 1);
    assert_int_equal(fx_wb(&f, 1), DQ_OK);
    assert_int_equal(fx_fail(&f, 1), DQ_OK);
    expect_state(&f, DQ_DIR_UNCACHED);

    /* Same when the writeback crossed a recall and the node dies after. */
    fx_fini(&f);
    fx_init(&f);
    fx_own(&f, 1);
    assert_int_equal(fx_req(&f, DQ_DIR_EV_READ, 2), DQ_OK);
    assert_int_equal(fx_wb(&f, 1), DQ_OK);
    assert_int_equal(fx_fail(&f, 1), DQ_OK);
    assert_true(dq_dir_set_empty(&f.e.stale));
    expect_state(&f, DQ_DIR_SHARED);
    fx_fini(&f);
}

static void failed_requester_gets_nothing_and_its_waiters_vanish(void **s)
{
    Fx f;
    uint64_t txn;

    (void)s;
    fx_init(&f);
    fx_share(&f, 1, 2);
    assert_int_equal(fx_req(&f, DQ_DIR_EV_WRITE, 3), DQ_OK);
    txn = f.act[0].id;
    assert_int_equal(fx_req(&f, DQ_DIR_EV_WRITE, 4), DQ_OK);
    assert_int_equal(fx_req(&f, DQ_DIR_EV_READ, 0), DQ_OK);
    assert_int_equal(fx_req(&f, DQ_DIR_EV_READ, 4), DQ_OK);
    assert_int_equal(fx_fail(&f, 4), DQ_OK);
    assert_int_equal(f.e.q_len, 1);
    assert_int_equal(fx_fail(&f, 3), DQ_OK);
    assert_int_equal(f.n, 0);
    assert_int_equal(fx_ack(&f, 1, txn), DQ_OK);
    assert_int_equal(fx_ack(&f, 2, txn), DQ_OK);
    /* Nobody to grant: all copies gone, the home copy is the page. */
    assert_int_equal(f.n, 1);
    expect_act(&f, 0, DQ_DIR_ACT_SERVE_NEXT, 0, DQ_DIR_MODE_I);
    expect_state(&f, DQ_DIR_UNCACHED);
    fx_serve_next(&f);
    expect_grant_only(&f, DQ_DIR_ACT_GRANT_DATA, 0, DQ_DIR_MODE_S);
    assert_int_equal(f.d.pool_used, 0);
    fx_fini(&f);
}

static void failed_requester_of_a_recall_leaves_the_data_home(void **state)
{
    Fx f;
    uint64_t txn;

    (void)state;
    fx_init(&f);
    fx_own(&f, 1);
    assert_int_equal(fx_req(&f, DQ_DIR_EV_WRITE, 2), DQ_OK);
    txn = f.act[0].id;
    assert_int_equal(fx_fail(&f, 2), DQ_OK);
    assert_int_equal(f.n, 0);
    assert_int_equal(fx_reply(&f, 1, txn, DQ_DIR_MODE_I, true), DQ_OK);
    assert_int_equal(f.n, 1);
    expect_act(&f, 0, DQ_DIR_ACT_STORE_HOME, 1, DQ_DIR_MODE_I);
    expect_state(&f, DQ_DIR_UNCACHED);
    fx_fini(&f);
}

static void owner_failing_while_recalled_by_itself_ends_uncached(void **s)
{
    Fx f;

    (void)s;
    fx_init(&f);
    fx_own(&f, 1);
    assert_int_equal(fx_req(&f, DQ_DIR_EV_READ, 1), DQ_OK);
    assert_int_equal(fx_fail(&f, 1), DQ_ERR_DIR_DATA_LOST);
    assert_int_equal(f.n, 0);
    expect_state(&f, DQ_DIR_UNCACHED);
    fx_fini(&f);
}

static void failed_upgrader_ends_the_round_without_an_owner(void **state)
{
    Fx f;
    uint64_t txn;

    (void)state;
    fx_init(&f);
    fx_share(&f, 1, 2);
    assert_int_equal(fx_req(&f, DQ_DIR_EV_UPGRADE, 1), DQ_OK);
    txn = f.act[0].id;
    assert_int_equal(fx_fail(&f, 1), DQ_OK);
    assert_false(is_sharer(&f, 1));
    assert_int_equal(fx_ack(&f, 2, txn), DQ_OK);
    assert_int_equal(f.n, 0);
    expect_state(&f, DQ_DIR_UNCACHED);
    fx_fini(&f);
}

static void messages_from_a_failed_node_are_refused(void **state)
{
    Fx f;

    (void)state;
    fx_init(&f);
    fx_share(&f, 1, 2);
    assert_int_equal(fx_fail(&f, 2), DQ_OK);
    assert_int_equal(fx_req(&f, DQ_DIR_EV_READ, 2), DQ_ERR_DIR_NODE_FAILED);
    assert_int_equal(fx_wb(&f, 2), DQ_ERR_DIR_NODE_FAILED);
    assert_int_equal(f.n, 0);
    assert_false(is_sharer(&f, 2));
    fx_fini(&f);
}

/* ---- protocol errors -------------------------------------------------- */

/* @st is returned, and neither the entry nor the actions moved. */
static void expect_refused(Fx *f, DqStatus want, DqDirEventKind kind,
                           unsigned node, uint64_t id, DqDirMode kept,
                           bool has_data)
{
    DqDirEntry before;
    uint32_t used = f->d.pool_used;

    memcpy(&before, &f->e, sizeof(before));
    assert_string_equal(dq_status_str(fx_event(f, kind, node, id, kept,
                                               has_data)),
                        dq_status_str(want));
    assert_int_equal(f->n, 0);
    assert_memory_equal(&before, &f->e, sizeof(before));
    assert_int_equal(f->d.pool_used, used);
}

static void unexpected_ack_is_a_protocol_error(void **state)
{
    Fx f;

    (void)state;
    fx_init(&f);
    expect_refused(&f, DQ_ERR_DIR_ACK_UNEXPECTED, DQ_DIR_EV_INV_ACK, 1, 1,
                   DQ_DIR_MODE_I, false);
    fx_share(&f, 1, 2);
    expect_refused(&f, DQ_ERR_DIR_ACK_UNEXPECTED, DQ_DIR_EV_INV_ACK, 1, 1,
                   DQ_DIR_MODE_I, false);
    assert_int_equal(fx_req(&f, DQ_DIR_EV_WRITE, 3), DQ_OK);
    assert_int_equal(fx_ack(&f, 1, f.act[0].id), DQ_OK);
    assert_int_equal(fx_ack(&f, 2, f.act[0].id), DQ_OK);
    expect_refused(&f, DQ_ERR_DIR_ACK_UNEXPECTED, DQ_DIR_EV_INV_ACK, 2,
                   f.e.txn, DQ_DIR_MODE_I, false);
    assert_int_equal(fx_req(&f, DQ_DIR_EV_READ, 4), DQ_OK);
    expect_refused(&f, DQ_ERR_DIR_ACK_UNEXPECTED, DQ_DIR_EV_INV_ACK, 3,
                   f.e.txn, DQ_DIR_MODE_I, false);
    fx_fini(&f);
}

static void ack_from_a_node_that_was_not_invalidated_is_an_error(void **s)
{
    Fx f;
    uint64_t txn;

    (void)s;
    fx_init(&f);
    fx_share(&f, 1, 2);
    assert_int_equal(fx_req(&f, DQ_DIR_EV_WRITE, 3), DQ_OK);
    txn = f.act[0].id;
    expect_refused(&f, DQ_ERR_DIR_ACK_NOT_INVALIDATED, DQ_DIR_EV_INV_ACK, 4,
                   txn, DQ_DIR_MODE_I, false);
    /* The requester itself is never invalidated. */
    expect_refused(&f, DQ_ERR_DIR_ACK_NOT_INVALIDATED, DQ_DIR_EV_INV_ACK, 3,
                   txn, DQ_DIR_MODE_I, false);
    /* A second ack from the same node. */
    assert_int_equal(fx_ack(&f, 1, txn), DQ_OK);
    expect_refused(&f, DQ_ERR_DIR_ACK_NOT_INVALIDATED, DQ_DIR_EV_INV_ACK, 1,
                   txn, DQ_DIR_MODE_I, false);
    /* An ack that answers another round. */
    expect_refused(&f, DQ_ERR_DIR_STALE_ID, DQ_DIR_EV_INV_ACK, 2, txn + 1,
                   DQ_DIR_MODE_I, false);
    assert_int_equal(fx_ack(&f, 2, txn), DQ_OK);
    expect_grant_only(&f, DQ_DIR_ACT_GRANT_DATA, 3, DQ_DIR_MODE_M);
    fx_fini(&f);
}

static void recall_reply_from_a_non_owner_is_a_protocol_error(void **state)
{
    Fx f;
    uint64_t txn;

    (void)state;
    fx_init(&f);
    fx_own(&f, 1);
    assert_int_equal(fx_req(&f, DQ_DIR_EV_READ, 2), DQ_OK);
    txn = f.act[0].id;
    expect_refused(&f, DQ_ERR_DIR_RECALL_NOT_OWNER, DQ_DIR_EV_RECALL_REPLY, 3,
                   txn, DQ_DIR_MODE_I, true);
    expect_refused(&f, DQ_ERR_DIR_RECALL_NOT_OWNER, DQ_DIR_EV_RECALL_REPLY, 2,
                   txn, DQ_DIR_MODE_I, true);
    expect_refused(&f, DQ_ERR_DIR_STALE_ID, DQ_DIR_EV_RECALL_REPLY, 1,
                   txn + 5, DQ_DIR_MODE_S, true);
    assert_int_equal(fx_reply(&f, 1, txn, DQ_DIR_MODE_S, true), DQ_OK);
    fx_fini(&f);
}

static void recall_reply_without_a_recall_is_a_protocol_error(void **state)
{
    Fx f;

    (void)state;
    fx_init(&f);
    expect_refused(&f, DQ_ERR_DIR_RECALL_UNEXPECTED, DQ_DIR_EV_RECALL_REPLY,
                   1, 1, DQ_DIR_MODE_I, true);
    fx_own(&f, 1);
    expect_refused(&f, DQ_ERR_DIR_RECALL_UNEXPECTED, DQ_DIR_EV_RECALL_REPLY,
                   1, 1, DQ_DIR_MODE_I, true);
    fx_fini(&f);
}

static void recall_reply_keeping_too_much_is_a_protocol_error(void **state)
{
    Fx f;
    uint64_t txn;

    (void)state;
    fx_init(&f);
    fx_own(&f, 1);
    assert_int_equal(fx_req(&f, DQ_DIR_EV_WRITE, 2), DQ_OK);
    txn = f.act[0].id;
    expect_refused(&f, DQ_ERR_DIR_RECALL_KEPT, DQ_DIR_EV_RECALL_REPLY, 1, txn,
                   DQ_DIR_MODE_S, true);
    expect_refused(&f, DQ_ERR_DIR_RECALL_KEPT, DQ_DIR_EV_RECALL_REPLY, 1, txn,
                   DQ_DIR_MODE_M, true);
    fx_fini(&f);

    /* Keeping S is allowed on a read recall, but not without the data. */
    fx_init(&f);
    fx_own(&f, 1);
    assert_int_equal(fx_req(&f, DQ_DIR_EV_READ, 2), DQ_OK);
    expect_refused(&f, DQ_ERR_DIR_RECALL_KEPT, DQ_DIR_EV_RECALL_REPLY, 1,
                   f.e.txn, DQ_DIR_MODE_S, false);
    fx_fini(&f);
}

static void writeback_from_a_non_owner_is_a_protocol_error(void **state)
{
    Fx f;

    (void)state;
    fx_init(&f);
    expect_refused(&f, DQ_ERR_DIR_WRITEBACK_NOT_OWNER, DQ_DIR_EV_WRITEBACK, 1,
                   0, DQ_DIR_MODE_I, true);
    fx_share(&f, 1, 2);
    expect_refused(&f, DQ_ERR_DIR_WRITEBACK_NOT_OWNER, DQ_DIR_EV_WRITEBACK, 1,
                   0, DQ_DIR_MODE_I, true);
    fx_fini(&f);
    fx_init(&f);
    fx_own(&f, 1);
    expect_refused(&f, DQ_ERR_DIR_WRITEBACK_NOT_OWNER, DQ_DIR_EV_WRITEBACK, 2,
                   0, DQ_DIR_MODE_I, true);
    fx_fini(&f);
}

static void out_of_range_nodes_and_events_are_rejected(void **state)
{
    Fx f;

    (void)state;
    fx_init(&f);
    expect_refused(&f, DQ_ERR_RANGE, DQ_DIR_EV_READ, 5, 1, DQ_DIR_MODE_I,
                   false);
    expect_refused(&f, DQ_ERR_RANGE, DQ_DIR_EV_NODE_FAILED, DQ_MAX_NODES, 1,
                   DQ_DIR_MODE_I, false);
    expect_refused(&f, DQ_ERR_RANGE, DQ_DIR_EV__COUNT, 1, 1, DQ_DIR_MODE_I,
                   false);
    fx_fini(&f);
}

static void explanation_names_the_event_the_node_and_the_state(void **s)
{
    Fx f;
    char buf[256];
    DqDirEvent ev = { .kind = DQ_DIR_EV_INV_ACK, .node = 3, .id = 9 };
    DqStatus st;

    (void)s;
    fx_init(&f);
    fx_share(&f, 1, 2);
    st = dq_dir_handle(&f.d, &f.e, &ev);
    dq_dir_explain(buf, sizeof(buf), st, &f.e, &ev);
    assert_string_equal(buf, "page 0x4242: INV_ACK from node 3 in state "
                        "SHARED: invalidate ack with no invalidation in "
                        "flight");
    fx_fini(&f);
}

static void every_state_event_and_action_has_a_name(void **state)
{
    int i;

    (void)state;
    for (i = 0; i < DQ_DIR_STATE__COUNT; i++) {
        assert_string_not_equal(dq_dir_state_str(i), "unknown");
    }
    for (i = 0; i < DQ_DIR_EV__COUNT; i++) {
        assert_string_not_equal(dq_dir_event_str(i), "unknown");
    }
    for (i = 0; i < DQ_DIR_ACT__COUNT; i++) {
        assert_string_not_equal(dq_dir_act_str(i), "unknown");
    }
    assert_string_equal(dq_dir_state_str(DQ_DIR_STATE__COUNT), "unknown");
    assert_string_equal(dq_dir_event_str(DQ_DIR_EV__COUNT), "unknown");
    assert_string_equal(dq_dir_act_str(DQ_DIR_ACT__COUNT), "unknown");
    assert_string_equal(dq_dir_mode_str(DQ_DIR_MODE_M), "M");
    assert_string_equal(dq_dir_mode_str(3), "unknown");
}

static void init_rejects_bad_arguments(void **state)
{
    DqDir d;
    DqDirOps ops = { .act = fx_record };
    DqDirOps no_act = { 0 };

    (void)state;
    assert_int_equal(dq_dir_init(&d, 0, 4, &ops), DQ_ERR_RANGE);
    assert_int_equal(dq_dir_init(&d, DQ_MAX_NODES + 1, 4, &ops),
                     DQ_ERR_RANGE);
    assert_int_equal(dq_dir_init(&d, 4, 0, &ops), DQ_ERR_RANGE);
    assert_int_equal(dq_dir_init(&d, 4, 4, &no_act), DQ_ERR_RANGE);
    assert_int_equal(dq_dir_init(&d, DQ_MAX_NODES, 4, &ops), DQ_OK);
    dq_dir_destroy(&d);
}

/*
 * Every (state, event) pair, from every node, with the right and a wrong
 * id: the answer is success or a named error, the entry stays valid, and
 * an error other than DATA_LOST changes nothing at all.
 */
static void build_state(Fx *f, DqDirState st)
{
    fx_init(f);
    switch (st) {
    case DQ_DIR_UNCACHED:
        break;
    case DQ_DIR_SHARED:
        fx_share(f, 1, 2);
        break;
    case DQ_DIR_MODIFIED:
        fx_own(f, 1);
        break;
    case DQ_DIR_BUSY_INVAL:
        fx_share(f, 1, 2);
        assert_int_equal(fx_req(f, DQ_DIR_EV_UPGRADE, 1), DQ_OK);
        assert_int_equal(fx_req(f, DQ_DIR_EV_READ, 3), DQ_OK);
        break;
    case DQ_DIR_BUSY_RECALL:
        fx_own(f, 1);
        assert_int_equal(fx_req(f, DQ_DIR_EV_READ, 2), DQ_OK);
        assert_int_equal(fx_req(f, DQ_DIR_EV_WRITE, 4), DQ_OK);
        break;
    default:
        fail();
    }
    expect_state(f, st);
}

static void every_state_event_pair_leaves_the_entry_consistent(void **s)
{
    int st, kind, variant;
    unsigned node;

    (void)s;
    for (st = 0; st < DQ_DIR_STATE__COUNT; st++) {
        for (kind = 0; kind < DQ_DIR_EV__COUNT; kind++) {
            for (node = 0; node < 5; node++) {
                for (variant = 0; variant < 6; variant++) {
                    Fx f;
                    DqDirEntry before;
                    DqStatus r;
                    uint64_t id;

                    build_state(&f, st);
                    id = (variant & 1) ? f.e.txn : f.e.txn + 1;
                    memcpy(&before, &f.e, sizeof(before));
                    r = fx_event(&f, kind, node, id, variant / 2 % 3 ==
                                 2 ? DQ_DIR_MODE_S : DQ_DIR_MODE_I,
                                 variant / 2 != 0);
                    if (r != DQ_OK && r != DQ_ERR_DIR_DATA_LOST) {
                        assert_int_equal(f.n, 0);
                        assert_memory_equal(&before, &f.e, sizeof(before));
                        assert_string_not_equal(dq_status_str(r),
                                                "unknown status");
                    }
                    /* Drain: whatever was started can still finish. */
                    while (f.e.q_len && !dq_dir_busy(&f.e)) {
                        fx_serve_next(&f);
                    }
                    fx_fini(&f);
                }
            }
        }
    }
}

/* ---- randomized model ----------------------------------------------------
 *
 * M_NODES simulated nodes (node 0 is also the home) share M_PAGES pages.
 * Page data is a version number: every write makes a new one, so "a read
 * sees the last write" is an equality.  Messages travel in per-pair FIFO
 * channels, but the next channel to deliver is random, so messages on
 * different pairs are reordered and delayed arbitrarily; SERVE_NEXT is
 * honoured at a random later step, and evictions happen at random.
 */

#define M_NODES   5
#define M_PAGES   3
#define M_CHAN    256
#define M_STEPS   20000
#define M_PAGE0   0x7000

typedef enum MsgKind {
    /* node -> home */
    MSG_READ, MSG_WRITE, MSG_UPGRADE, MSG_ACK, MSG_REPLY, MSG_WB,
    /* home -> node */
    MSG_INVAL, MSG_RECALL, MSG_GRANT_DATA, MSG_GRANT,
} MsgKind;

typedef struct Msg {
    MsgKind kind;
    unsigned page;
    uint64_t id;
    DqDirMode mode;
    bool has_data;
    uint64_t data;
} Msg;

typedef struct Chan {
    Msg m[M_CHAN];
    unsigned head;
    unsigned len;
} Chan;

typedef struct NodePage {
    DqDirMode mode;
    uint64_t data;
    int pending;            /* -1, or the DqDirEventKind asked for */
    bool want_write;
    uint64_t req_id;
} NodePage;

typedef struct Model {
    DqDir d;
    DqDirEntry e[M_PAGES];
    uint64_t home_copy[M_PAGES];
    bool serve[M_PAGES];
    NodePage np[M_NODES][M_PAGES];
    Chan to_home[M_NODES];
    Chan to_node[M_NODES];
    uint64_t last[M_PAGES];
    uint64_t next_version;
    uint64_t next_req;
    /* the data of the message being handed to the directory */
    unsigned cur_page;
    bool cur_has_data;
    uint64_t cur_data;
    uint64_t rng;
    bool drop_stale_recalls;
    /* coverage: the races the run must have hit */
    unsigned long reads, writes, queued, converted, stale_recalls,
                  wb_across_recall, invals, silent_drops;
} Model;

static uint64_t m_rand(Model *m)
{
    /* xorshift64*: deterministic for a seed, good enough to pick steps. */
    m->rng ^= m->rng >> 12;
    m->rng ^= m->rng << 25;
    m->rng ^= m->rng >> 27;
    return m->rng * UINT64_C(0x2545f4914f6cdd1d);
}

static unsigned m_pick(Model *m, unsigned n)
{
    return (unsigned)(m_rand(m) % n);
}

static void m_push(Chan *c, const Msg *msg)
{
    assert_true(c->len < M_CHAN);
    c->m[(c->head + c->len) % M_CHAN] = *msg;
    c->len++;
}

static Msg m_pop(Chan *c)
{
    Msg msg = c->m[c->head];

    c->head = (c->head + 1) % M_CHAN;
    c->len--;
    return msg;
}

static void m_act(void *opaque, const DqDirAction *a)
{
    Model *m = opaque;
    unsigned p = (unsigned)(a->page - M_PAGE0);
    Msg msg = { .page = p, .id = a->id, .mode = a->mode };

    assert_true(p < M_PAGES);
    switch (a->kind) {
    case DQ_DIR_ACT_INVAL:
        msg.kind = MSG_INVAL;
        m->invals++;
        m_push(&m->to_node[a->node], &msg);
        break;
    case DQ_DIR_ACT_RECALL:
        msg.kind = MSG_RECALL;
        m_push(&m->to_node[a->node], &msg);
        break;
    case DQ_DIR_ACT_STORE_HOME:
        assert_int_equal(m->cur_page, p);
        assert_true(m->cur_has_data);
        m->home_copy[p] = m->cur_data;
        break;
    case DQ_DIR_ACT_GRANT_DATA:
        msg.kind = MSG_GRANT_DATA;
        msg.has_data = true;
        msg.data = m->home_copy[p];
        m_push(&m->to_node[a->node], &msg);
        break;
    case DQ_DIR_ACT_GRANT:
        msg.kind = MSG_GRANT;
        m_push(&m->to_node[a->node], &msg);
        break;
    case DQ_DIR_ACT_SERVE_NEXT:
        m->serve[p] = true;
        break;
    default:
        fail();
    }
}

/* The access a node faulted on finally runs. */
static void m_access_done(Model *m, unsigned n, unsigned p)
{
    NodePage *np = &m->np[n][p];

    if (np->want_write) {
        assert_int_equal(np->mode, DQ_DIR_MODE_M);
        np->data = m->last[p] = ++m->next_version;
        m->writes++;
    } else {
        assert_true(np->mode != DQ_DIR_MODE_I);
        assert_int_equal(np->data, m->last[p]);
        m->reads++;
    }
    np->pending = -1;
}

/* A guest thread on node @n touches page @p. */
static void m_touch(Model *m, unsigned n, unsigned p, bool write)
{
    NodePage *np = &m->np[n][p];
    Msg msg = { .page = p };

    if (np->pending >= 0) {
        return;
    }
    np->want_write = write;
    if (!write && np->mode != DQ_DIR_MODE_I) {
        m_access_done(m, n, p);
        return;
    }
    if (write && np->mode == DQ_DIR_MODE_M) {
        m_access_done(m, n, p);
        return;
    }
    np->pending = !write ? DQ_DIR_EV_READ :
                  np->mode == DQ_DIR_MODE_S ? DQ_DIR_EV_UPGRADE
                                            : DQ_DIR_EV_WRITE;
    np->req_id = ++m->next_req;
    msg.kind = np->pending == DQ_DIR_EV_READ ? MSG_READ :
               np->pending == DQ_DIR_EV_WRITE ? MSG_WRITE : MSG_UPGRADE;
    msg.id = np->req_id;
    m_push(&m->to_home[n], &msg);
}

/* Node @n drops page @p on its own: M by writeback, S silently. */
static void m_evict(Model *m, unsigned n, unsigned p)
{
    NodePage *np = &m->np[n][p];
    Msg msg = { .kind = MSG_WB, .page = p, .has_data = true };

    if (np->pending >= 0 || np->mode == DQ_DIR_MODE_I) {
        return;
    }
    if (np->mode == DQ_DIR_MODE_M) {
        msg.data = np->data;
        m_push(&m->to_home[n], &msg);
    } else {
        m->silent_drops++;
    }
    np->mode = DQ_DIR_MODE_I;
}

static void m_node_receive(Model *m, unsigned n)
{
    Msg msg = m_pop(&m->to_node[n]);
    NodePage *np = &m->np[n][msg.page];
    Msg out = { .page = msg.page, .id = msg.id };

    switch (msg.kind) {
    case MSG_INVAL:
        /* The home invalidates sharers only, never the owner. */
        assert_true(np->mode != DQ_DIR_MODE_M);
        np->mode = DQ_DIR_MODE_I;
        out.kind = MSG_ACK;
        m_push(&m->to_home[n], &out);
        break;
    case MSG_RECALL:
        out.kind = MSG_REPLY;
        if (np->mode == DQ_DIR_MODE_M) {
            out.mode = msg.mode;
            out.has_data = true;
            out.data = np->data;
            np->mode = msg.mode;
            m_push(&m->to_home[n], &out);
            break;
        }
        /* Only a node that wrote the page back sees a RECALL without M. */
        assert_int_equal(np->mode, DQ_DIR_MODE_I);
        m->stale_recalls++;
        if (!m->drop_stale_recalls) {
            out.mode = DQ_DIR_MODE_I;
            m_push(&m->to_home[n], &out);
        }
        break;
    case MSG_GRANT_DATA:
        assert_true(np->pending >= 0);
        assert_int_equal(msg.id, np->req_id);
        assert_int_equal(msg.mode, np->want_write ? DQ_DIR_MODE_M
                                                  : DQ_DIR_MODE_S);
        if (np->pending == DQ_DIR_EV_UPGRADE) {
            m->converted++;
        }
        np->mode = msg.mode;
        np->data = msg.data;
        m_access_done(m, n, msg.page);
        break;
    case MSG_GRANT:
        /* Granted M without data: our S copy must still be there. */
        assert_int_equal(np->pending, DQ_DIR_EV_UPGRADE);
        assert_int_equal(msg.id, np->req_id);
        assert_int_equal(np->mode, DQ_DIR_MODE_S);
        np->mode = DQ_DIR_MODE_M;
        m_access_done(m, n, msg.page);
        break;
    default:
        fail();
    }
}

static void m_home_receive(Model *m, unsigned n)
{
    Msg msg = m_pop(&m->to_home[n]);
    DqDirEntry *e = &m->e[msg.page];
    DqDirEvent ev = { .node = n, .id = msg.id, .kept = msg.mode,
                      .has_data = msg.has_data };
    DqStatus st;
    char why[256];

    switch (msg.kind) {
    case MSG_READ:
        ev.kind = DQ_DIR_EV_READ;
        break;
    case MSG_WRITE:
        ev.kind = DQ_DIR_EV_WRITE;
        break;
    case MSG_UPGRADE:
        ev.kind = DQ_DIR_EV_UPGRADE;
        break;
    case MSG_ACK:
        ev.kind = DQ_DIR_EV_INV_ACK;
        break;
    case MSG_REPLY:
        ev.kind = DQ_DIR_EV_RECALL_REPLY;
        break;
    case MSG_WB:
        ev.kind = DQ_DIR_EV_WRITEBACK;
        if (e->state == DQ_DIR_BUSY_RECALL) {
            m->wb_across_recall++;
        }
        break;
    default:
        fail();
    }
    if (ev.kind <= DQ_DIR_EV_UPGRADE && (dq_dir_busy(e) || e->q_len)) {
        m->queued++;
    }
    m->cur_page = msg.page;
    m->cur_has_data = msg.has_data;
    m->cur_data = msg.data;
    st = dq_dir_handle(&m->d, e, &ev);
    if (st != DQ_OK) {
        dq_dir_explain(why, sizeof(why), st, e, &ev);
        fail_msg("%s", why);
    }
    m->cur_has_data = false;
}

static bool m_serve_one(Model *m, unsigned p)
{
    if (!m->serve[p]) {
        return false;
    }
    m->serve[p] = false;
    assert_int_equal(dq_dir_serve_next(&m->d, &m->e[p]), DQ_OK);
    return true;
}

static bool m_in_flight(const Model *m, unsigned p, uint64_t version)
{
    unsigned n, i;

    for (n = 0; n < M_NODES; n++) {
        const Chan *cs[2] = { &m->to_home[n], &m->to_node[n] };
        int k;

        for (k = 0; k < 2; k++) {
            for (i = 0; i < cs[k]->len; i++) {
                const Msg *msg = &cs[k]->m[(cs[k]->head + i) % M_CHAN];

                if (msg->page == p && msg->has_data && msg->data == version) {
                    return true;
                }
            }
        }
    }
    return false;
}

static void m_check(const Model *m)
{
    unsigned p, n;

    for (p = 0; p < M_PAGES; p++) {
        const DqDirEntry *e = &m->e[p];
        unsigned owners = 0, sharers = 0;
        bool survives = m->home_copy[p] == m->last[p] ||
                        m_in_flight(m, p, m->last[p]);

        assert_int_equal(dq_dir_check(&m->d, e), DQ_OK);
        for (n = 0; n < M_NODES; n++) {
            const NodePage *np = &m->np[n][p];

            if (np->mode == DQ_DIR_MODE_I) {
                continue;
            }
            /* Single writer, multiple readers, all on the last write. */
            assert_int_equal(np->data, m->last[p]);
            survives = true;
            if (np->mode == DQ_DIR_MODE_M) {
                owners++;
                assert_int_equal(e->owner, n);
            } else {
                /*
                 * A recorded sharer, or the owner on its way between S and
                 * M: its recall reply (keeping S) or its upgrade grant is
                 * still in flight.
                 */
                sharers++;
                assert_true(dq_dir_set_has(&e->sharers, n) || e->owner == n);
            }
        }
        assert_true(owners <= 1);
        assert_true(owners == 0 || sharers == 0);
        if (dq_dir_home_current(e)) {
            assert_int_equal(m->home_copy[p], m->last[p]);
        }
        /* No page is ever lost: the last write is somewhere. */
        assert_true(survives);
    }
}

/* One random step; with @quiesce only deliveries, no new accesses. */
static bool m_step(Model *m, bool quiesce)
{
    unsigned tries, i;

    for (tries = 0; tries < 64; tries++) {
        unsigned r = m_pick(m, 100);
        unsigned n = m_pick(m, M_NODES);
        unsigned p = m_pick(m, M_PAGES);

        if (r < 25) {
            if (!quiesce) {
                m_touch(m, n, p, m_pick(m, 2));
                return true;
            }
        } else if (r < 30) {
            if (!quiesce) {
                m_evict(m, n, p);
                return true;
            }
        } else if (r < 60) {
            if (m->to_home[n].len) {
                m_home_receive(m, n);
                return true;
            }
        } else if (r < 90) {
            if (m->to_node[n].len) {
                m_node_receive(m, n);
                return true;
            }
        } else if (m_serve_one(m, p)) {
            return true;
        }
    }
    /* Nothing picked: anything left at all? */
    for (i = 0; i < M_NODES; i++) {
        if (m->to_home[i].len) {
            m_home_receive(m, i);
            return true;
        }
        if (m->to_node[i].len) {
            m_node_receive(m, i);
            return true;
        }
    }
    for (i = 0; i < M_PAGES; i++) {
        if (m_serve_one(m, i)) {
            return true;
        }
    }
    return !quiesce;
}

static void model_run(uint64_t seed, bool drop_stale, Model *total)
{
    static Model m;         /* large; keep it off the test's stack */
    DqDirOps ops = { .act = m_act, .opaque = &m };
    unsigned n, p, step;

    memset(&m, 0, sizeof(m));
    m.rng = seed;
    m.drop_stale_recalls = drop_stale;
    assert_int_equal(dq_dir_init(&m.d, M_NODES, M_NODES * M_PAGES, &ops),
                     DQ_OK);
    for (p = 0; p < M_PAGES; p++) {
        /* Page 1 starts as the master's, as after loading the ELF. */
        dq_dir_entry_init(&m.e[p], M_PAGE0 + p, p == 1 ? 0 : DQ_DIR_NO_NODE);
        for (n = 0; n < M_NODES; n++) {
            m.np[n][p].pending = -1;
        }
    }
    m.np[0][1].mode = DQ_DIR_MODE_M;

    for (step = 0; step < M_STEPS; step++) {
        m_step(&m, false);
        m_check(&m);
    }
    /* Stop faulting and let everything settle: nobody may be left hanging. */
    for (step = 0; m_step(&m, true); step++) {
        assert_true(step < 100000);
        m_check(&m);
    }
    for (p = 0; p < M_PAGES; p++) {
        assert_false(dq_dir_busy(&m.e[p]));
        assert_int_equal(m.e[p].q_len, 0);
        for (n = 0; n < M_NODES; n++) {
            assert_int_equal(m.np[n][p].pending, -1);
        }
    }
    assert_int_equal(m.d.pool_used, 0);
    dq_dir_destroy(&m.d);

    total->reads += m.reads;
    total->writes += m.writes;
    total->queued += m.queued;
    total->converted += m.converted;
    total->stale_recalls += m.stale_recalls;
    total->wb_across_recall += m.wb_across_recall;
    total->invals += m.invals;
    total->silent_drops += m.silent_drops;
}

static void model_run_seeds(bool drop_stale)
{
    static const uint64_t seeds[] = {
        0x9e3779b97f4a7c15ull, 0x0123456789abcdefull, 0xdeadbeefcafef00dull,
    };
    static Model total;
    size_t i;

    memset(&total, 0, sizeof(total));
    for (i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
        model_run(seeds[i], drop_stale, &total);
    }
    /* The runs must have exercised the races, not just the easy paths. */
    assert_true(total.reads > 1000);
    assert_true(total.writes > 1000);
    assert_true(total.queued > 100);
    assert_true(total.converted > 10);
    assert_true(total.stale_recalls > 10);
    assert_true(total.wb_across_recall > 10);
    assert_true(total.invals > 100);
    assert_true(total.silent_drops > 100);
}

static void random_cluster_stays_coherent_when_stale_recalls_are_answered(
    void **state)
{
    (void)state;
    model_run_seeds(false);
}

static void random_cluster_stays_coherent_when_stale_recalls_are_dropped(
    void **state)
{
    (void)state;
    model_run_seeds(true);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(read_of_an_uncached_page_is_granted_shared_from_home),
        cmocka_unit_test(
            write_of_an_uncached_page_is_granted_modified_from_home),
        cmocka_unit_test(read_of_a_shared_page_adds_a_sharer),
        cmocka_unit_test(upgrade_of_the_only_sharer_is_granted_without_data),
        cmocka_unit_test(write_waits_for_all_invalidate_acks),
        cmocka_unit_test(
            upgrade_invalidates_the_others_then_grants_without_data),
        cmocka_unit_test(
            read_of_a_modified_page_recalls_the_owner_keeping_shared),
        cmocka_unit_test(
            write_of_a_modified_page_recalls_the_owner_keeping_none),
        cmocka_unit_test(upgrade_of_a_page_owned_elsewhere_becomes_a_write),
        cmocka_unit_test(upgrade_of_an_uncached_page_is_granted_with_data),
        cmocka_unit_test(
            writeback_leaves_the_page_uncached_with_a_current_home),
        cmocka_unit_test(page_loaded_by_the_master_starts_modified_there),
        cmocka_unit_test(grants_carry_the_request_flags),
        cmocka_unit_test(requests_queue_fifo_while_the_page_is_busy),
        cmocka_unit_test(new_request_does_not_overtake_waiting_ones),
        cmocka_unit_test(home_node_requests_take_the_same_path),
        cmocka_unit_test(full_wait_queue_is_reported_and_changes_nothing),
        cmocka_unit_test(serve_next_without_waiters_does_nothing),
        cmocka_unit_test(write_arriving_during_an_invalidation_round_waits),
        cmocka_unit_test(crossing_upgrades_turn_the_loser_into_a_write),
        cmocka_unit_test(upgrade_that_lost_to_a_write_gets_data),
        cmocka_unit_test(recall_racing_eviction_keeps_the_latest_data),
        cmocka_unit_test(writeback_instead_of_a_recall_reply_completes_it),
        cmocka_unit_test(late_stale_reply_during_a_new_recall_is_dropped),
        cmocka_unit_test(read_request_from_the_owner_recalls_its_own_copy),
        cmocka_unit_test(
            owner_reading_after_its_eviction_gets_the_written_data),
        cmocka_unit_test(
            write_request_from_the_owner_recalls_then_grants_data),
        cmocka_unit_test(owner_that_lost_its_copy_reports_data_loss),
        cmocka_unit_test(read_from_a_sharer_that_dropped_its_copy_gets_data),
        cmocka_unit_test(upgrade_from_the_owner_is_confirmed_without_data),
        cmocka_unit_test(write_from_a_sharer_invalidates_only_the_others),
        cmocka_unit_test(failed_sharer_is_dropped_and_its_missing_ack_is_given),
        cmocka_unit_test(failed_sharers_leave_the_set),
        cmocka_unit_test(failed_owner_reports_page_data_loss),
        cmocka_unit_test(
            failed_owner_during_a_recall_still_serves_the_requester),
        cmocka_unit_test(
            failed_former_owner_after_its_writeback_loses_nothing),
        cmocka_unit_test(failed_requester_gets_nothing_and_its_waiters_vanish),
        cmocka_unit_test(failed_requester_of_a_recall_leaves_the_data_home),
        cmocka_unit_test(owner_failing_while_recalled_by_itself_ends_uncached),
        cmocka_unit_test(failed_upgrader_ends_the_round_without_an_owner),
        cmocka_unit_test(messages_from_a_failed_node_are_refused),
        cmocka_unit_test(unexpected_ack_is_a_protocol_error),
        cmocka_unit_test(
            ack_from_a_node_that_was_not_invalidated_is_an_error),
        cmocka_unit_test(recall_reply_from_a_non_owner_is_a_protocol_error),
        cmocka_unit_test(recall_reply_without_a_recall_is_a_protocol_error),
        cmocka_unit_test(recall_reply_keeping_too_much_is_a_protocol_error),
        cmocka_unit_test(writeback_from_a_non_owner_is_a_protocol_error),
        cmocka_unit_test(out_of_range_nodes_and_events_are_rejected),
        cmocka_unit_test(explanation_names_the_event_the_node_and_the_state),
        cmocka_unit_test(every_state_event_and_action_has_a_name),
        cmocka_unit_test(init_rejects_bad_arguments),
        cmocka_unit_test(every_state_event_pair_leaves_the_entry_consistent),
        cmocka_unit_test(
            random_cluster_stays_coherent_when_stale_recalls_are_answered),
        cmocka_unit_test(
            random_cluster_stays_coherent_when_stale_recalls_are_dropped),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
