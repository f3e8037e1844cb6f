/*
 * lease.c - lease words and the queue of recalls they hold back (lease.h).
 *
 * Pure logic: no clock (callers pass "now"), no lock (the queue is under
 * the caller's; the lease words are atomics), no allocation.
 */
#include "lease.h"

uint64_t dq_lease_close(uint64_t *w, uint64_t now, uint64_t ns)
{
    uint64_t v = __atomic_load_n(w, __ATOMIC_SEQ_CST);
    uint64_t end = (now + ns) & ~DQ_LEASE_OPEN;

    /* 0 means "no lease": a deadline never is (the clock is past it). */
    if (end == 0) {
        end = 2;
    }
    while (v & DQ_LEASE_OPEN) {
        /*
         * Sequentially consistent, like every store to the word: a
         * deferring thread that reads the word after marking its
         * deferral sees this deadline, or we see its mark (dsm.c).
         */
        if (__atomic_compare_exchange_n(w, &v, end, false, __ATOMIC_SEQ_CST,
                                        __ATOMIC_SEQ_CST)) {
            return end;
        }
    }
    return 0;
}

uint64_t dq_lease_until(const uint64_t *w, uint64_t now)
{
    uint64_t v = __atomic_load_n(w, __ATOMIC_SEQ_CST);
    uint64_t end = v & ~DQ_LEASE_OPEN;

    return v != 0 && now < end ? end : 0;
}

void dq_lease_queue_init(DqLeaseQueue *q, DqLeaseDefer *rec,
                         const uint64_t *lease)
{
    q->rec = rec;
    q->lease = lease;
    q->head = q->tail = 0;
    q->len = 0;
}

DqStatus dq_lease_defer(DqLeaseQueue *q, size_t index, const DqLeaseDefer *r)
{
    DqLeaseDefer *e = &q->rec[index];

    if (e->kind != DQ_LEASE_DEFER_NONE ||
        (r->kind != DQ_LEASE_DEFER_REMOTE && r->kind != DQ_LEASE_DEFER_SELF)) {
        return DQ_ERR_USAGE;
    }
    e->id = r->id;
    e->since = r->since;
    e->src = r->src;
    e->keep = r->keep;
    e->next = 0;
    if (q->tail != 0) {
        q->rec[q->tail - 1].next = index + 1;
    } else {
        q->head = index + 1;
    }
    q->tail = index + 1;
    __atomic_store_n(&q->len, q->len + 1, __ATOMIC_SEQ_CST);
    /* Last: a reader that sees the kind sees a complete record. */
    __atomic_store_n(&e->kind, r->kind, __ATOMIC_SEQ_CST);
    return DQ_OK;
}

bool dq_lease_take(DqLeaseQueue *q, uint64_t now, bool all, size_t *index,
                   DqLeaseDefer *out, uint64_t *next)
{
    size_t prev = 0, cur = q->head, i;
    uint64_t until, soonest = DQ_LEASE_NONE;
    DqLeaseDefer *e;

    while (cur != 0) {
        i = cur - 1;
        e = &q->rec[i];
        until = all ? 0 : dq_lease_until(&q->lease[i], now);
        if (until == 0) {
            /* Unlink it: a deferral list of a few pages, scanned. */
            if (prev != 0) {
                q->rec[prev - 1].next = e->next;
            } else {
                q->head = e->next;
            }
            if (q->tail == cur) {
                q->tail = prev;
            }
            *index = i;
            *out = *e;
            out->next = 0;
            e->next = 0;
            __atomic_store_n(&e->kind, DQ_LEASE_DEFER_NONE, __ATOMIC_SEQ_CST);
            __atomic_store_n(&q->len, q->len - 1, __ATOMIC_SEQ_CST);
            return true;
        }
        if (until < soonest) {
            soonest = until;
        }
        prev = cur;
        cur = e->next;
    }
    *next = soonest;
    return false;
}
