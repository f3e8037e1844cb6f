/*
 * test-xport.c - the ZeroMQ node transport and membership (dqemu/xport.c),
 * with every node of a cluster as a DqXport in this one process, talking
 * over 127.0.0.1 ephemeral ports exactly as separate processes would.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <zmq.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "xport.h"

#define PAGE        4096u
#define MAX_TNODES  8

/* CALL ops the test nodes understand (the application's numbers). */
#define OP_ECHO     1       /* answer at once with the same bytes */
#define OP_HOLD     2       /* remember the caller; the test answers */
#define OP_NOTE     3       /* unsolicited: just count it */

/* The big CALLs: 200 KB each way under a 256 KiB payload limit. */
#define BIG_TAIL    (200u * 1000u)
#define BIG_PAYLOAD (256u * 1024u)

/* How a test node's service side answers a READ_REQ. */
typedef enum TMode {
    T_SERVE,        /* GRANT_DATA with the page's pattern */
    T_BLACKHOLE,    /* never answer */
    T_DECOY,        /* first a reply with another req_id, then the real one */
} TMode;

typedef struct TNode {
    DqXport *x;
    unsigned id;
    TMode mode;
    uint8_t page[PAGE];             /* I/O thread only */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    unsigned unsolicited;           /* on_message calls, under lock */
    unsigned inval_acks;
    uint64_t failed_mask;           /* on_peer_failed, under lock */
    uint32_t shutdown_code;
    bool got_shutdown;
    DqStatus nested_request;        /* request tried inside a callback */
    /* CALLs seen, under lock. */
    unsigned calls;
    unsigned call_replies;          /* unsolicited (late) CALL_REPLYs */
    unsigned held;                  /* OP_HOLD calls */
    uint16_t held_src;              /* ... the last one's caller */
    uint64_t held_req_id;
    size_t note_len;                /* the last OP_NOTE: its length */
    uint32_t note_sum;              /* ... and checksum */
    unsigned refusals;              /* on_refused calls, under lock */
    char refused_addr[64];          /* ... the last one's */
    char refused_why[DQ_ERRBUF_SIZE];
} TNode;

static TNode tnodes[MAX_TNODES];

static uint8_t pattern(uint64_t addr, unsigned node, size_t i)
{
    return (uint8_t)((addr >> 12) * 31 + node * 7 + i);
}

static uint32_t checksum(const uint8_t *p, size_t n)
{
    uint32_t h = 2166136261u;
    size_t i;

    for (i = 0; i < n; i++) {
        h = (h ^ p[i]) * 16777619u;
    }
    return h;
}

static void fill_bytes(uint8_t *p, size_t n, unsigned seed)
{
    size_t i;

    for (i = 0; i < n; i++) {
        p[i] = (uint8_t)(i * 131 + seed + (i >> 9));
    }
}

/* A CALL reached on_message.  Context: I/O thread. */
static void t_on_call(TNode *t, DqXport *x, const DqMsg *msg)
{
    DqMsg r;

    pthread_mutex_lock(&t->lock);
    t->calls++;
    if (msg->u.call.op == OP_HOLD) {
        t->held++;
        t->held_src = msg->src;
        t->held_req_id = msg->req_id;
    } else if (msg->u.call.op == OP_NOTE) {
        t->note_len = msg->tail_len;
        t->note_sum = checksum(msg->tail, msg->tail_len);
    }
    pthread_cond_broadcast(&t->cond);
    pthread_mutex_unlock(&t->lock);
    if (msg->u.call.op != OP_ECHO) {
        return;
    }
    /* Straight from the I/O thread, big tail and all. */
    memset(&r, 0, sizeof(r));
    r.type = DQ_MSG_CALL_REPLY;
    r.dst = msg->src;
    r.req_id = msg->req_id;
    r.u.call.op = msg->u.call.op + 1000;
    r.u.call.aux = (uint32_t)msg->tail_len;
    r.u.call.arg = msg->u.call.arg + 1;
    r.tail = msg->tail;
    r.tail_len = msg->tail_len;
    assert_int_equal(dq_xport_send(x, &r), DQ_OK);
}

static void t_on_message(void *opaque, const DqMsg *msg)
{
    TNode *t = opaque;
    DqXport *x = __atomic_load_n(&t->x, __ATOMIC_ACQUIRE);
    DqMsg r;
    size_t i;

    pthread_mutex_lock(&t->lock);
    t->unsolicited++;
    if (msg->type == DQ_MSG_INVAL_ACK) {
        t->inval_acks++;
    }
    if (msg->type == DQ_MSG_CALL_REPLY) {
        t->call_replies++;
    }
    pthread_cond_broadcast(&t->cond);
    pthread_mutex_unlock(&t->lock);

    if (msg->type == DQ_MSG_CALL) {
        t_on_call(t, x, msg);
        return;
    }

    if (msg->type == DQ_MSG_INVAL) {
        memset(&r, 0, sizeof(r));
        r.type = DQ_MSG_INVAL_ACK;
        r.dst = msg->src;
        r.req_id = msg->req_id;
        r.u.page.addr = msg->u.page.addr;
        dq_xport_send(x, &r);
        return;
    }
    if (msg->type != DQ_MSG_READ_REQ || t->mode == T_BLACKHOLE) {
        return;
    }
    if (msg->u.page.addr == 0xdead000) {
        uint8_t b[64];
        DqMsg q, rep;

        memset(&q, 0, sizeof(q));
        q.type = DQ_MSG_READ_REQ;
        q.dst = msg->src;
        t->nested_request = dq_xport_request(x, &q, &rep, b, sizeof(b), 10);
    }
    for (i = 0; i < PAGE; i++) {
        t->page[i] = pattern(msg->u.page.addr, t->id, i);
    }
    memset(&r, 0, sizeof(r));
    r.type = DQ_MSG_GRANT_DATA;
    r.dst = msg->src;
    r.req_id = msg->req_id;
    r.u.page.addr = msg->u.page.addr;
    r.u.page.state = DQ_PROTO_STATE_S;
    r.tail = t->page;
    r.tail_len = PAGE;
    if (t->mode == T_DECOY) {
        /* Same peer, same type, wrong id: must not wake the requester. */
        r.req_id = msg->req_id + 1000000;
        r.u.page.addr = msg->u.page.addr + PAGE;
        assert_int_equal(dq_xport_send(x, &r), DQ_OK);
        r.req_id = msg->req_id;
        r.u.page.addr = msg->u.page.addr;
    }
    assert_int_equal(dq_xport_send(x, &r), DQ_OK);
}

static void t_on_peer_failed(void *opaque, unsigned node, const char *why)
{
    TNode *t = opaque;

    assert_non_null(why);
    pthread_mutex_lock(&t->lock);
    t->failed_mask |= 1ull << node;
    pthread_cond_broadcast(&t->cond);
    pthread_mutex_unlock(&t->lock);
}

static void t_on_shutdown(void *opaque, uint32_t code)
{
    TNode *t = opaque;

    pthread_mutex_lock(&t->lock);
    t->got_shutdown = true;
    t->shutdown_code = code;
    pthread_mutex_unlock(&t->lock);
}

static void t_on_refused(void *opaque, const char *addr, const char *why)
{
    TNode *t = opaque;

    pthread_mutex_lock(&t->lock);
    t->refusals++;
    snprintf(t->refused_addr, sizeof(t->refused_addr), "%s", addr);
    snprintf(t->refused_why, sizeof(t->refused_why), "%s", why);
    pthread_cond_broadcast(&t->cond);
    pthread_mutex_unlock(&t->lock);
}

/* Wait (bounded) until node @id turned someone away; check why. */
static void expect_refused(unsigned id, const char *why)
{
    TNode *t = &tnodes[id];
    uint64_t i;

    for (i = 0; i < 500; i++) {
        pthread_mutex_lock(&t->lock);
        if (t->refusals > 0) {
            if (strstr(t->refused_why, why) == NULL) {
                fail_msg("node %u refused for '%s', not '%s'", id,
                         t->refused_why, why);
            }
            pthread_mutex_unlock(&t->lock);
            return;
        }
        pthread_mutex_unlock(&t->lock);
        usleep(10000);
    }
    fail_msg("node %u never turned anyone away (wanted '%s')", id, why);
}

static void base_cfg(DqXportConfig *c, unsigned id, unsigned n,
                     const char *master)
{
    memset(c, 0, sizeof(*c));
    c->node_id = id;
    c->node_count = n;
    c->master_endpoint = master;
    c->cluster_id = 0xd5e0c1u;
    c->page_size = PAGE;
    c->heartbeat_ms = 100;
    c->failure_timeout_ms = 600;
    c->join_timeout_ms = 3000;
    c->ops.on_message = t_on_message;
    c->ops.on_peer_failed = t_on_peer_failed;
    c->ops.on_shutdown = t_on_shutdown;
    c->ops.on_refused = t_on_refused;
    c->opaque = &tnodes[id];
}

static void tnode_reset(void)
{
    unsigned i;

    for (i = 0; i < MAX_TNODES; i++) {
        memset(&tnodes[i], 0, sizeof(tnodes[i]));
        tnodes[i].id = i;
        pthread_mutex_init(&tnodes[i].lock, NULL);
        pthread_cond_init(&tnodes[i].cond, NULL);
    }
}

static DqXport *start_node(DqXportConfig *c)
{
    char err[DQ_ERRBUF_SIZE];
    DqXport *x = NULL;

    assert_int_equal(dq_xport_start(c, &x, err, sizeof(err)), DQ_OK);
    __atomic_store_n(&tnodes[c->node_id].x, x, __ATOMIC_RELEASE);
    return x;
}

/* Start an @n-node cluster and wait until it is formed. */
static void start_cluster(unsigned n, DqXportConfig *tmpl)
{
    DqXportConfig c;
    char err[DQ_ERRBUF_SIZE];
    char master[DQ_XPORT_ENDPOINT_MAX];
    unsigned i;

    tnode_reset();
    base_cfg(&c, 0, n, "tcp://127.0.0.1:*");
    if (tmpl != NULL) {
        c.heartbeat_ms = tmpl->heartbeat_ms;
        c.failure_timeout_ms = tmpl->failure_timeout_ms;
        c.max_payload = tmpl->max_payload;
        c.curve_secret = tmpl->curve_secret;
        c.curve_public = tmpl->curve_public;
        c.rx_delay_us = tmpl->rx_delay_us;
    }
    start_node(&c);
    snprintf(master, sizeof(master), "%s", dq_xport_endpoint(tnodes[0].x));
    for (i = 1; i < n; i++) {
        base_cfg(&c, i, n, master);
        if (tmpl != NULL) {
            c.heartbeat_ms = tmpl->heartbeat_ms;
            c.failure_timeout_ms = tmpl->failure_timeout_ms;
            c.max_payload = tmpl->max_payload;
            c.curve_secret = tmpl->curve_secret;
            c.curve_public = tmpl->curve_public;
        }
        start_node(&c);
    }
    for (i = 0; i < n; i++) {
        DqStatus st = dq_xport_wait_ready(tnodes[i].x, err, sizeof(err));

        if (st != DQ_OK) {
            fail_msg("node %u: %s: %s", i, dq_status_str(st), err);
        }
    }
}

static void stop_cluster(unsigned n)
{
    unsigned i;

    for (i = 0; i < n; i++) {
        dq_xport_free(tnodes[i].x);
        tnodes[i].x = NULL;
    }
}

static uint64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Read page @addr from @dst through node @from; check every byte. */
static DqStatus read_page(unsigned from, unsigned dst, uint64_t addr,
                          unsigned timeout_ms)
{
    static __thread uint8_t buf[DQ_PROTO_HDR_SIZE + 64 + PAGE];
    DqMsg q, r;
    DqStatus st;
    size_t i;

    memset(&q, 0, sizeof(q));
    q.type = DQ_MSG_READ_REQ;
    q.dst = (uint16_t)dst;
    q.u.page.addr = addr;
    st = dq_xport_request(tnodes[from].x, &q, &r, buf, sizeof(buf),
                          timeout_ms);
    if (st != DQ_OK) {
        return st;
    }
    assert_int_equal(r.type, DQ_MSG_GRANT_DATA);
    assert_int_equal(r.src, dst);
    assert_int_equal(r.req_id, q.req_id);
    assert_true(r.u.page.addr == addr);
    assert_int_equal(r.tail_len, PAGE);
    for (i = 0; i < PAGE; i++) {
        if (r.tail[i] != pattern(addr, dst, i)) {
            fail_msg("byte %zu of page %#llx from node %u", i,
                     (unsigned long long)addr, dst);
        }
    }
    return DQ_OK;
}

/* ---- round trips ------------------------------------------------------ */

static void every_node_reads_from_every_other_node(void **state)
{
    unsigned n = 4, a, b;

    (void)state;
    start_cluster(n, NULL);
    for (a = 0; a < n; a++) {
        for (b = 0; b < n; b++) {
            if (a != b) {
                assert_int_equal(read_page(a, b, 0x10000 + 0x1000 * b, 0),
                                 DQ_OK);
            }
        }
    }
    stop_cluster(n);
}

typedef struct Hammer {
    unsigned from;
    unsigned n;
    unsigned rounds;
    unsigned seed;
    unsigned errors;
} Hammer;

static void *hammer(void *opaque)
{
    Hammer *h = opaque;
    unsigned i, dst;

    for (i = 0; i < h->rounds; i++) {
        h->seed = h->seed * 1103515245u + 12345u;
        dst = (h->seed >> 16) % h->n;
        if (dst == h->from) {
            dst = (dst + 1) % h->n;
        }
        if (read_page(h->from, dst, (uint64_t)(h->seed & 0xfffff) << 12,
                      5000) != DQ_OK) {
            h->errors++;
        }
    }
    return NULL;
}

static void concurrent_requesters_get_their_own_replies(void **state)
{
    enum { THREADS = 8, ROUNDS = 300 };
    unsigned n = 3, i;
    pthread_t th[THREADS];
    Hammer h[THREADS];

    (void)state;
    start_cluster(n, NULL);
    for (i = 0; i < THREADS; i++) {
        h[i] = (Hammer){ .from = i % n, .n = n, .rounds = ROUNDS,
                         .seed = i * 7919 + 1 };
        assert_int_equal(pthread_create(&th[i], NULL, hammer, &h[i]), 0);
    }
    for (i = 0; i < THREADS; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(h[i].errors, 0);
    }
    stop_cluster(n);
}

static void reply_with_another_req_id_does_not_wake_the_requester(void **s)
{
    (void)s;
    start_cluster(2, NULL);
    tnodes[1].mode = T_DECOY;
    assert_int_equal(read_page(0, 1, 0x40000, 0), DQ_OK);
    /* The decoy arrived unsolicited; allow it its trip. */
    pthread_mutex_lock(&tnodes[0].lock);
    while (tnodes[0].unsolicited == 0) {
        pthread_mutex_unlock(&tnodes[0].lock);
        usleep(1000);
        pthread_mutex_lock(&tnodes[0].lock);
    }
    pthread_mutex_unlock(&tnodes[0].lock);
    stop_cluster(2);
}

static void async_send_reaches_on_message_and_acks_come_back(void **state)
{
    DqMsg m;
    unsigned i;

    (void)state;
    start_cluster(3, NULL);
    for (i = 0; i < 10; i++) {
        memset(&m, 0, sizeof(m));
        m.type = DQ_MSG_INVAL;
        m.dst = (uint16_t)(i % 2 == 0 ? 0 : 2);
        m.req_id = dq_xport_next_req_id(tnodes[1].x);
        m.u.page.addr = 0x1000 * i;
        assert_int_equal(dq_xport_send(tnodes[1].x, &m), DQ_OK);
    }
    pthread_mutex_lock(&tnodes[1].lock);
    for (i = 0; i < 300 && tnodes[1].inval_acks < 10; i++) {
        pthread_mutex_unlock(&tnodes[1].lock);
        usleep(10000);
        pthread_mutex_lock(&tnodes[1].lock);
    }
    assert_int_equal(tnodes[1].inval_acks, 10);
    pthread_mutex_unlock(&tnodes[1].lock);
    stop_cluster(3);
}

static void request_from_a_callback_is_refused(void **state)
{
    (void)state;
    start_cluster(2, NULL);
    assert_int_equal(read_page(0, 1, 0xdead000, 0), DQ_OK);
    assert_int_equal(tnodes[1].nested_request, DQ_ERR_USAGE);
    stop_cluster(2);
}

static void request_to_itself_is_a_usage_error(void **state)
{
    (void)state;
    start_cluster(2, NULL);
    assert_int_equal(read_page(1, 1, 0x1000, 0), DQ_ERR_USAGE);
    stop_cluster(2);
}

static void reply_larger_than_the_buffer_is_refused_not_copied(void **s)
{
    uint8_t buf[128 + 16];
    DqMsg q, r;

    (void)s;
    start_cluster(2, NULL);
    memset(buf, 0xee, sizeof(buf));
    memset(&q, 0, sizeof(q));
    q.type = DQ_MSG_READ_REQ;
    q.dst = 1;
    q.u.page.addr = 0x3000;
    assert_int_equal(dq_xport_request(tnodes[0].x, &q, &r, buf, 128, 0),
                     DQ_ERR_NOSPACE);
    assert_int_equal(buf[0], 0xee);
    assert_int_equal(buf[127], 0xee);
    /* The transport is still fine for the next request. */
    assert_int_equal(read_page(0, 1, 0x3000, 0), DQ_OK);
    stop_cluster(2);
}

static void unanswered_request_times_out(void **state)
{
    uint64_t t0;

    (void)state;
    start_cluster(2, NULL);
    tnodes[1].mode = T_BLACKHOLE;
    t0 = mono_ms();
    assert_int_equal(read_page(0, 1, 0x1000, 200), DQ_ERR_XPORT_TIMEOUT);
    assert_true(mono_ms() - t0 >= 190);
    assert_true(mono_ms() - t0 < 1500);
    stop_cluster(2);
}

/* ---- membership ------------------------------------------------------- */

/*
 * A 2-node cluster where a first worker's config is changed by @tweak:
 * it is refused and told why, the master notes it and goes on forming,
 * and a right worker then completes the cluster.
 */
static void expect_refusal(void (*tweak)(DqXportConfig *), const char *why)
{
    DqXportConfig c;
    char err[DQ_ERRBUF_SIZE], master[DQ_XPORT_ENDPOINT_MAX];
    DqXport *m, *w, *good;

    tnode_reset();
    base_cfg(&c, 0, 2, "tcp://127.0.0.1:*");
    m = start_node(&c);
    snprintf(master, sizeof(master), "%s", dq_xport_endpoint(m));
    base_cfg(&c, 1, 2, master);
    tweak(&c);
    w = start_node(&c);

    assert_int_equal(dq_xport_wait_ready(w, err, sizeof(err)),
                     DQ_ERR_XPORT_REFUSED);
    assert_non_null(strstr(err, "join refused by node 0"));
    assert_non_null(strstr(err, why));
    expect_refused(0, "not a member of this cluster (refused node 1");
    expect_refused(0, why);
    assert_string_equal(tnodes[0].refused_addr, "127.0.0.1");
    dq_xport_free(w);

    base_cfg(&c, 1, 2, master);
    c.opaque = &tnodes[2];
    assert_int_equal(dq_xport_start(&c, &good, err, sizeof(err)), DQ_OK);
    assert_int_equal(dq_xport_wait_ready(m, err, sizeof(err)), DQ_OK);
    assert_int_equal(dq_xport_wait_ready(good, err, sizeof(err)), DQ_OK);
    dq_xport_free(good);
    dq_xport_free(m);
}

static void wrong_cluster(DqXportConfig *c) { c->cluster_id ^= 1; }
static void wrong_version(DqXportConfig *c) { c->join_version = 99; }
static void wrong_page(DqXportConfig *c) { c->page_size = 2 * PAGE; }
static void wrong_count(DqXportConfig *c) { c->node_count = 3; }

static void join_with_wrong_cluster_id_is_refused(void **state)
{
    (void)state;
    expect_refusal(wrong_cluster, "cluster id differs");
}

static void join_with_wrong_version_is_refused(void **state)
{
    (void)state;
    expect_refusal(wrong_version, "protocol version differs");
}

static void join_with_wrong_page_size_is_refused(void **state)
{
    (void)state;
    expect_refusal(wrong_page, "host page size differs");
}

static void join_with_wrong_node_count_is_refused(void **state)
{
    (void)state;
    expect_refusal(wrong_count, "node count differs");
}

static void second_claim_on_a_node_id_is_refused(void **state)
{
    DqXportConfig c;
    char err[DQ_ERRBUF_SIZE], master[DQ_XPORT_ENDPOINT_MAX];
    DqXport *m, *w1, *w2, *w3;
    DqStatus st;

    (void)state;
    tnode_reset();
    base_cfg(&c, 0, 3, "tcp://127.0.0.1:*");
    m = start_node(&c);
    snprintf(master, sizeof(master), "%s", dq_xport_endpoint(m));
    base_cfg(&c, 1, 3, master);
    w1 = start_node(&c);
    usleep(100000);     /* let the first claim land first */
    c.opaque = &tnodes[2];
    assert_int_equal(dq_xport_start(&c, &w2, err, sizeof(err)), DQ_OK);
    assert_int_equal(dq_xport_wait_ready(w2, err, sizeof(err)),
                     DQ_ERR_XPORT_REFUSED);
    assert_non_null(strstr(err, "node id out of range or already joined"));
    expect_refused(0, "refused node 1");
    expect_refused(0, "node id taken");
    /* The first claim stands: node 2 completes the cluster. */
    base_cfg(&c, 2, 3, master);
    c.opaque = &tnodes[3];
    assert_int_equal(dq_xport_start(&c, &w3, err, sizeof(err)), DQ_OK);
    st = dq_xport_wait_ready(m, err, sizeof(err));
    assert_int_equal(st, DQ_OK);
    assert_int_equal(dq_xport_wait_ready(w1, err, sizeof(err)), DQ_OK);
    dq_xport_free(w3);
    dq_xport_free(w2);
    dq_xport_free(w1);
    dq_xport_free(m);
}

static void start_up_timeout_names_the_missing_nodes(void **state)
{
    DqXportConfig c;
    char err[DQ_ERRBUF_SIZE], master[DQ_XPORT_ENDPOINT_MAX];
    DqXport *m, *w;
    uint64_t t0;

    (void)state;
    tnode_reset();
    base_cfg(&c, 0, 4, "tcp://127.0.0.1:*");
    c.join_timeout_ms = 400;
    m = start_node(&c);
    snprintf(master, sizeof(master), "%s", dq_xport_endpoint(m));
    base_cfg(&c, 2, 4, master);
    c.join_timeout_ms = 400;
    w = start_node(&c);
    t0 = mono_ms();
    assert_int_equal(dq_xport_wait_ready(m, err, sizeof(err)),
                     DQ_ERR_XPORT_TIMEOUT);
    assert_true(mono_ms() - t0 < 2000);
    assert_non_null(strstr(err, "nodes never joined"));
    assert_non_null(strstr(err, ": 1, 3"));
    assert_int_equal(dq_xport_wait_ready(w, err, sizeof(err)),
                     DQ_ERR_XPORT_TIMEOUT);
    dq_xport_free(w);
    dq_xport_free(m);
}

static void worker_without_master_times_out(void **state)
{
    DqXportConfig c;
    char err[DQ_ERRBUF_SIZE];
    DqXport *w;

    (void)state;
    tnode_reset();
    /* Port 9 (discard) on loopback: nothing listens there. */
    base_cfg(&c, 1, 2, "tcp://127.0.0.1:9");
    c.join_timeout_ms = 300;
    w = start_node(&c);
    assert_int_equal(dq_xport_wait_ready(w, err, sizeof(err)),
                     DQ_ERR_XPORT_TIMEOUT);
    assert_non_null(strstr(err, "no answer from the master"));
    dq_xport_free(w);
}

/*
 * A raw DEALER plays a peer we cannot build: one from another protocol
 * version, and a stranger that never joined.
 */
static void other_version_join_is_refused_and_strangers_ignored(void **s)
{
    DqXportConfig c;
    char err[DQ_ERRBUF_SIZE];
    uint8_t rid[10] = { 'D', 1, 1, 2, 3, 4, 5, 6, 7, 8 };
    uint8_t out[128], in[128];
    const char *ep = "tcp://127.0.0.1:1";
    DqProtoLimits lim;
    DqMsg m, r;
    DqXport *x;
    size_t len;
    void *ctx, *d;
    int n, tmo = 3000, linger = 0;

    (void)s;
    tnode_reset();
    base_cfg(&c, 0, 2, "tcp://127.0.0.1:*");
    c.join_timeout_ms = 800;
    x = start_node(&c);
    ctx = zmq_ctx_new();
    d = zmq_socket(ctx, ZMQ_DEALER);
    assert_int_equal(zmq_setsockopt(d, ZMQ_RCVTIMEO, &tmo, sizeof(tmo)), 0);
    assert_int_equal(zmq_setsockopt(d, ZMQ_LINGER, &linger, sizeof(linger)),
                     0);

    /* A stranger's READ_REQ never reaches on_message. */
    rid[1] = 1;
    assert_int_equal(zmq_setsockopt(d, ZMQ_ROUTING_ID, rid, sizeof(rid)), 0);
    assert_int_equal(zmq_connect(d, dq_xport_endpoint(x)), 0);
    assert_int_equal(dq_proto_limits_init(&lim, PAGE, 0), DQ_OK);
    memset(&m, 0, sizeof(m));
    m.type = DQ_MSG_READ_REQ;
    m.src = 1;
    m.u.page.addr = 0x1000;
    assert_int_equal(dq_proto_encode(&m, &lim, out, sizeof(out), &len),
                     DQ_OK);
    assert_int_equal(zmq_send(d, out, len, 0), (int)len);

    /* A JOIN_REQ whose header says version 2. */
    memset(&m, 0, sizeof(m));
    m.type = DQ_MSG_JOIN_REQ;
    m.src = 1;
    m.u.join.cluster_id = c.cluster_id;
    m.u.join.page_size = PAGE;
    m.u.join.version = DQ_PROTO_VERSION;
    m.u.join.node_count = 2;
    assert_int_equal(dq_proto_encode(&m, &lim, out, sizeof(out), &len),
                     DQ_OK);
    out[DQ_HDR_OFF_VERSION] = 2;
    assert_int_equal(zmq_send(d, out, len, ZMQ_SNDMORE), (int)len);
    assert_int_equal(zmq_send(d, ep, strlen(ep), 0), (int)strlen(ep));

    n = zmq_recv(d, in, sizeof(in), 0);
    assert_true(n > 0);
    assert_int_equal(dq_proto_decode(in, (size_t)n, &lim, &r), DQ_OK);
    assert_int_equal(r.type, DQ_MSG_JOIN_REFUSE);
    assert_int_equal(r.u.join.reason, DQ_JOIN_REFUSE_VERSION);
    expect_refused(0, "refused node 1: protocol version differs "
                      "(node speaks 2, cluster 1)");
    /* Garbage from a connected peer is turned away the same way. */
    pthread_mutex_lock(&tnodes[0].lock);
    tnodes[0].refusals = 0;
    pthread_mutex_unlock(&tnodes[0].lock);
    assert_int_equal(zmq_send(d, "\x01\x02garbage", 9, 0), 9);
    expect_refused(0, "a message that does not decode");
    /* ... and none of it stops the cluster from forming: it times out. */
    assert_int_equal(dq_xport_wait_ready(x, err, sizeof(err)),
                     DQ_ERR_XPORT_TIMEOUT);
    assert_non_null(strstr(err, "turned away 2 connections"));
    assert_int_equal(tnodes[0].unsolicited, 0);

    zmq_close(d);
    zmq_ctx_term(ctx);
    dq_xport_free(x);
}

/* ---- failures and shutdown -------------------------------------------- */

typedef struct Blocked {
    unsigned from, dst;
    DqStatus st;
    uint64_t ms;
} Blocked;

static void *blocked_reader(void *opaque)
{
    Blocked *b = opaque;
    uint64_t t0 = mono_ms();

    b->st = read_page(b->from, b->dst, 0x7000, 20000);
    b->ms = mono_ms() - t0;
    return NULL;
}

static void dead_peer_fails_blocked_requests_within_the_timeout(void **s)
{
    DqXportConfig tm = { .heartbeat_ms = 100, .failure_timeout_ms = 600 };
    pthread_t th;
    Blocked b = { .from = 1, .dst = 2 };
    uint64_t t0;

    (void)s;
    start_cluster(3, &tm);
    tnodes[2].mode = T_BLACKHOLE;
    assert_int_equal(pthread_create(&th, NULL, blocked_reader, &b), 0);
    usleep(100000);
    t0 = mono_ms();
    dq_xport_free(tnodes[2].x);
    tnodes[2].x = NULL;
    pthread_join(th, NULL);
    assert_int_equal(b.st, DQ_ERR_XPORT_PEER_FAILED);
    assert_true(mono_ms() - t0 <= tm.failure_timeout_ms + 500);

    /* Both survivors were told, once, and new requests fail at once. */
    for (unsigned i = 0; i < 2; i++) {
        pthread_mutex_lock(&tnodes[i].lock);
        while (!(tnodes[i].failed_mask & 4) &&
               mono_ms() - t0 < tm.failure_timeout_ms + 500) {
            pthread_mutex_unlock(&tnodes[i].lock);
            usleep(5000);
            pthread_mutex_lock(&tnodes[i].lock);
        }
        assert_int_equal(tnodes[i].failed_mask, 4);
        pthread_mutex_unlock(&tnodes[i].lock);
        assert_true(dq_xport_peer_failed(tnodes[i].x, 2));
    }
    assert_int_equal(read_page(0, 2, 0x1000, 5000),
                     DQ_ERR_XPORT_PEER_FAILED);
    /* Whoever is alive still works. */
    assert_int_equal(read_page(0, 1, 0x2000, 0), DQ_OK);
    stop_cluster(2);
}

static void shutdown_reaches_every_worker_with_the_exit_code(void **state)
{
    char err[DQ_ERRBUF_SIZE];
    uint32_t code = 0;
    unsigned i;

    (void)state;
    start_cluster(4, NULL);
    assert_int_equal(dq_xport_shutdown(tnodes[0].x, 42), DQ_OK);
    for (i = 1; i < 4; i++) {
        assert_int_equal(dq_xport_wait_shutdown(tnodes[i].x, 2000, &code,
                                                err, sizeof(err)), DQ_OK);
        assert_int_equal(code, 42);
        /* on_shutdown runs just after the waiters are released. */
        pthread_mutex_lock(&tnodes[i].lock);
        for (unsigned k = 0; k < 200 && !tnodes[i].got_shutdown; k++) {
            pthread_mutex_unlock(&tnodes[i].lock);
            usleep(5000);
            pthread_mutex_lock(&tnodes[i].lock);
        }
        assert_true(tnodes[i].got_shutdown);
        pthread_mutex_unlock(&tnodes[i].lock);
        /* After SHUTDOWN, requests fail instead of waiting. */
        assert_int_equal(read_page(i, 0, 0x1000, 0), DQ_ERR_XPORT_SHUTDOWN);
    }
    assert_int_equal(dq_xport_shutdown(tnodes[1].x, 0), DQ_ERR_USAGE);
    stop_cluster(4);
}

static void worker_told_when_master_dies(void **state)
{
    DqXportConfig tm = { .heartbeat_ms = 100, .failure_timeout_ms = 500 };
    char err[DQ_ERRBUF_SIZE];
    uint32_t code;
    uint64_t t0;

    (void)state;
    start_cluster(2, &tm);
    t0 = mono_ms();
    dq_xport_free(tnodes[0].x);
    tnodes[0].x = NULL;
    assert_int_equal(dq_xport_wait_shutdown(tnodes[1].x, 5000, &code, err,
                                            sizeof(err)),
                     DQ_ERR_XPORT_PEER_FAILED);
    assert_true(mono_ms() - t0 <= tm.failure_timeout_ms + 500);
    assert_non_null(strstr(err, "lost contact with node 0"));
    dq_xport_free(tnodes[1].x);
    tnodes[1].x = NULL;
}

static void bad_configuration_is_rejected(void **state)
{
    DqXportConfig c;
    char err[DQ_ERRBUF_SIZE];
    DqXport *x = (DqXport *)1;

    (void)state;
    tnode_reset();
    base_cfg(&c, 3, 2, "tcp://127.0.0.1:*");
    assert_int_equal(dq_xport_start(&c, &x, err, sizeof(err)), DQ_ERR_RANGE);
    assert_null(x);
    base_cfg(&c, 0, 2, "tcp://127.0.0.1:*");
    c.page_size = 1000;
    assert_int_equal(dq_xport_start(&c, &x, err, sizeof(err)), DQ_ERR_RANGE);
    base_cfg(&c, 0, 2, "no-such-transport://x");
    assert_int_equal(dq_xport_start(&c, &x, err, sizeof(err)),
                     DQ_ERR_XPORT_ZMQ);
    assert_non_null(strstr(err, "bind"));
    dq_xport_free(NULL);
}

/* ---- CALL, CALL_REPLY and requests without a clock -------------------- */

/* One CALL request in its own thread, so the test can watch it wait. */
typedef struct Caller {
    unsigned from, dst;
    uint32_t op;
    unsigned timeout_ms;
    DqStatus st;
    DqMsg reply;
    uint8_t buf[DQ_PROTO_HDR_SIZE + DQ_BODY_CALL + 64];
    uint64_t ms;                /* how long the request took */
    bool done;                  /* atomic */
} Caller;

static void *caller_main(void *opaque)
{
    Caller *c = opaque;
    uint64_t t0 = mono_ms();
    DqMsg q;

    memset(&q, 0, sizeof(q));
    q.type = DQ_MSG_CALL;
    q.dst = (uint16_t)c->dst;
    q.u.call.op = c->op;
    q.u.call.arg = 0x5eed;
    c->st = dq_xport_request(tnodes[c->from].x, &q, &c->reply, c->buf,
                             sizeof(c->buf), c->timeout_ms);
    c->ms = mono_ms() - t0;
    __atomic_store_n(&c->done, true, __ATOMIC_RELEASE);
    return NULL;
}

/* Wait (bounded) until node @n has been asked @count OP_HOLD calls. */
static void wait_held(unsigned n, unsigned count)
{
    uint64_t t0 = mono_ms();

    pthread_mutex_lock(&tnodes[n].lock);
    while (tnodes[n].held < count && mono_ms() - t0 < 5000) {
        pthread_mutex_unlock(&tnodes[n].lock);
        usleep(2000);
        pthread_mutex_lock(&tnodes[n].lock);
    }
    assert_int_equal(tnodes[n].held, count);
    pthread_mutex_unlock(&tnodes[n].lock);
}

/* Node @n answers the OP_HOLD call it holds, from the test's thread. */
static void answer_held(unsigned n, const char *text)
{
    DqMsg r;

    memset(&r, 0, sizeof(r));
    r.type = DQ_MSG_CALL_REPLY;
    pthread_mutex_lock(&tnodes[n].lock);
    r.dst = tnodes[n].held_src;
    r.req_id = tnodes[n].held_req_id;
    pthread_mutex_unlock(&tnodes[n].lock);
    r.u.call.op = OP_HOLD;
    r.u.call.aux = 77;
    r.tail = (const uint8_t *)text;
    r.tail_len = strlen(text);
    assert_int_equal(dq_xport_send(tnodes[n].x, &r), DQ_OK);
}

/*
 * A delegated read() on an empty pipe may block for minutes: the caller
 * waits through 3 s (five failure timeouts) of silence about its request,
 * heartbeats keep both sides alive, and the late answer still lands.
 */
static void forever_request_outlives_3s_of_silence_with_heartbeats(void **s)
{
    DqXportConfig tm = { .heartbeat_ms = 100, .failure_timeout_ms = 600 };
    Caller c = { .from = 0, .dst = 1, .op = OP_HOLD,
                 .timeout_ms = DQ_XPORT_WAIT_FOREVER };
    pthread_t th;

    (void)s;
    start_cluster(2, &tm);
    assert_int_equal(pthread_create(&th, NULL, caller_main, &c), 0);
    wait_held(1, 1);
    usleep(3000 * 1000);
    assert_false(__atomic_load_n(&c.done, __ATOMIC_ACQUIRE));
    assert_int_equal(tnodes[0].failed_mask, 0);
    assert_int_equal(tnodes[1].failed_mask, 0);
    answer_held(1, "late but here");
    pthread_join(th, NULL);
    assert_int_equal(c.st, DQ_OK);
    assert_true(c.ms >= 3000);
    assert_int_equal(c.reply.type, DQ_MSG_CALL_REPLY);
    assert_int_equal(c.reply.src, 1);
    assert_int_equal(c.reply.u.call.aux, 77);
    assert_int_equal(c.reply.tail_len, strlen("late but here"));
    assert_memory_equal(c.reply.tail, "late but here", c.reply.tail_len);
    assert_int_equal(tnodes[0].call_replies, 0);
    stop_cluster(2);
}

static void forever_request_to_a_dying_peer_fails_within_the_timeout(void **s)
{
    DqXportConfig tm = { .heartbeat_ms = 100, .failure_timeout_ms = 600 };
    Caller c = { .from = 1, .dst = 2, .op = OP_HOLD,
                 .timeout_ms = DQ_XPORT_WAIT_FOREVER };
    pthread_t th;
    uint64_t t0;

    (void)s;
    start_cluster(3, &tm);
    assert_int_equal(pthread_create(&th, NULL, caller_main, &c), 0);
    wait_held(2, 1);
    t0 = mono_ms();
    dq_xport_free(tnodes[2].x);
    tnodes[2].x = NULL;
    pthread_join(th, NULL);
    assert_int_equal(c.st, DQ_ERR_XPORT_PEER_FAILED);
    assert_true(mono_ms() - t0 <= tm.failure_timeout_ms + 500);
    stop_cluster(2);
}

/* dq_xport_free() releases a waiter and does not free under its feet. */
static void free_completes_a_forever_request_before_it_returns(void **s)
{
    Caller c = { .from = 0, .dst = 1, .op = OP_HOLD,
                 .timeout_ms = DQ_XPORT_WAIT_FOREVER };
    pthread_t th;

    (void)s;
    start_cluster(2, NULL);
    assert_int_equal(pthread_create(&th, NULL, caller_main, &c), 0);
    wait_held(1, 1);
    dq_xport_free(tnodes[0].x);
    tnodes[0].x = NULL;
    /* Free returned only after the waiter left with its status. */
    assert_true(__atomic_load_n(&c.done, __ATOMIC_ACQUIRE));
    pthread_join(th, NULL);
    assert_int_equal(c.st, DQ_ERR_XPORT_SHUTDOWN);
    dq_xport_free(tnodes[1].x);
    tnodes[1].x = NULL;
}

/*
 * Shutdown ends forever requests both ways: a worker's to the master
 * (the worker gets SHUTDOWN) and the master's to a worker (the worker's
 * SHUTDOWN_ACK says nothing more will come); later ones fail at once.
 */
static void shutdown_completes_forever_requests_both_ways(void **s)
{
    Caller up = { .from = 1, .dst = 0, .op = OP_HOLD,
                  .timeout_ms = DQ_XPORT_WAIT_FOREVER };
    Caller down = { .from = 0, .dst = 2, .op = OP_HOLD,
                    .timeout_ms = DQ_XPORT_WAIT_FOREVER };
    Caller late = { .from = 0, .dst = 1, .op = OP_HOLD,
                    .timeout_ms = DQ_XPORT_WAIT_FOREVER };
    pthread_t t1, t2;

    (void)s;
    start_cluster(3, NULL);
    assert_int_equal(pthread_create(&t1, NULL, caller_main, &up), 0);
    assert_int_equal(pthread_create(&t2, NULL, caller_main, &down), 0);
    wait_held(0, 1);
    wait_held(2, 1);
    assert_int_equal(dq_xport_shutdown(tnodes[0].x, 9), DQ_OK);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    assert_int_equal(up.st, DQ_ERR_XPORT_SHUTDOWN);
    assert_int_equal(down.st, DQ_ERR_XPORT_SHUTDOWN);
    caller_main(&late);
    assert_int_equal(late.st, DQ_ERR_XPORT_SHUTDOWN);
    assert_true(late.ms < 100);
    stop_cluster(3);
}

/* A CALL_REPLY whose caller gave up is an unsolicited message. */
static void late_call_reply_reaches_on_message(void **s)
{
    Caller c = { .from = 0, .dst = 1, .op = OP_HOLD, .timeout_ms = 200 };
    uint64_t t0;

    (void)s;
    start_cluster(2, NULL);
    caller_main(&c);
    assert_int_equal(c.st, DQ_ERR_XPORT_TIMEOUT);
    answer_held(1, "");
    t0 = mono_ms();
    pthread_mutex_lock(&tnodes[0].lock);
    while (tnodes[0].call_replies == 0 && mono_ms() - t0 < 3000) {
        pthread_mutex_unlock(&tnodes[0].lock);
        usleep(2000);
        pthread_mutex_lock(&tnodes[0].lock);
    }
    assert_int_equal(tnodes[0].call_replies, 1);
    pthread_mutex_unlock(&tnodes[0].lock);
    stop_cluster(2);
}

/* Wait (bounded) for node @n's last OP_NOTE to be @len bytes long. */
static void wait_note(unsigned n, size_t len, uint32_t sum)
{
    uint64_t t0 = mono_ms();

    pthread_mutex_lock(&tnodes[n].lock);
    while ((tnodes[n].note_len != len || tnodes[n].note_sum != sum) &&
           mono_ms() - t0 < 5000) {
        pthread_mutex_unlock(&tnodes[n].lock);
        usleep(2000);
        pthread_mutex_lock(&tnodes[n].lock);
    }
    assert_int_equal(tnodes[n].note_len, len);
    assert_int_equal(tnodes[n].note_sum, sum);
    pthread_mutex_unlock(&tnodes[n].lock);
}

/*
 * 200 KB CALLs through every path: a request that is too big to leave
 * from the caller's stack (the I/O thread encodes it), its echo sent from
 * the I/O thread, unsolicited CALLs queued from an application thread,
 * the empty CALL; one byte over max_payload is refused up front.
 */
static void calls_of_200_kb_go_through_request_and_send(void **s)
{
    DqXportConfig tm = { .heartbeat_ms = 100, .failure_timeout_ms = 600,
                         .max_payload = BIG_PAYLOAD };
    size_t buflen, max;
    uint8_t *big, *buf;
    DqMsg q, r;
    unsigned i;

    (void)s;
    start_cluster(2, &tm);
    buflen = dq_xport_max_msg_size(tnodes[0].x);
    assert_int_equal(buflen, DQ_PROTO_HDR_SIZE + BIG_PAYLOAD);
    max = BIG_PAYLOAD - DQ_BODY_CALL;
    big = malloc(max + 1);
    buf = malloc(buflen);
    assert_non_null(big);
    assert_non_null(buf);

    for (i = 0; i < 3; i++) {
        fill_bytes(big, BIG_TAIL, i);
        memset(&q, 0, sizeof(q));
        q.type = DQ_MSG_CALL;
        q.dst = 1;
        q.u.call.op = OP_ECHO;
        q.u.call.arg = 100 + i;
        q.tail = big;
        q.tail_len = BIG_TAIL;
        assert_int_equal(dq_xport_request(tnodes[0].x, &q, &r, buf, buflen,
                                          DQ_XPORT_WAIT_FOREVER), DQ_OK);
        assert_int_equal(r.type, DQ_MSG_CALL_REPLY);
        assert_int_equal(r.req_id, q.req_id);
        assert_int_equal(r.u.call.op, OP_ECHO + 1000);
        assert_int_equal(r.u.call.aux, BIG_TAIL);
        assert_true(r.u.call.arg == 101 + i);
        assert_int_equal(r.tail_len, BIG_TAIL);
        assert_memory_equal(r.tail, big, BIG_TAIL);
    }

    /* Unsolicited, from this (application) thread, then the empty one. */
    fill_bytes(big, max, 9);
    memset(&q, 0, sizeof(q));
    q.type = DQ_MSG_CALL;
    q.dst = 0;
    q.u.call.op = OP_NOTE;
    q.tail = big;
    q.tail_len = max;
    assert_int_equal(dq_xport_send(tnodes[1].x, &q), DQ_OK);
    wait_note(0, max, checksum(big, max));
    q.tail = NULL;
    q.tail_len = 0;
    assert_int_equal(dq_xport_send(tnodes[1].x, &q), DQ_OK);
    wait_note(0, 0, checksum(NULL, 0));

    /* One byte over the limit never leaves. */
    q.tail = big;
    q.tail_len = max + 1;
    assert_int_equal(dq_xport_send(tnodes[1].x, &q), DQ_ERR_PROTO_TOO_BIG);
    q.dst = 1;
    q.u.call.op = OP_ECHO;
    assert_int_equal(dq_xport_request(tnodes[0].x, &q, &r, buf, buflen,
                                      DQ_XPORT_WAIT_FOREVER),
                     DQ_ERR_PROTO_TOO_BIG);
    /* A reply larger than the caller's buffer is refused, not copied. */
    q.tail_len = 1000;
    assert_int_equal(dq_xport_request(tnodes[0].x, &q, &r, buf, 500,
                                      DQ_XPORT_WAIT_FOREVER), DQ_ERR_NOSPACE);
    pthread_mutex_lock(&tnodes[1].lock);
    assert_int_equal(tnodes[1].calls, 4);
    pthread_mutex_unlock(&tnodes[1].lock);
    free(big);
    free(buf);
    stop_cluster(2);
}

static void config_reports_the_effective_settings(void **s)
{
    const DqXportConfig *c;

    (void)s;
    start_cluster(2, NULL);
    c = dq_xport_config(tnodes[1].x);
    assert_int_equal(c->node_id, 1);
    assert_int_equal(c->node_count, 2);
    assert_int_equal(c->page_size, PAGE);
    assert_int_equal(c->heartbeat_ms, 100);
    assert_int_equal(c->failure_timeout_ms, 600);
    /* 0 asked for the default limit; the answer is the limit itself. */
    assert_int_equal(DQ_PROTO_HDR_SIZE + c->max_payload,
                     dq_xport_max_msg_size(tnodes[1].x));
    stop_cluster(2);
}

/* ---- the one-shot timer ------------------------------------------------ */

typedef struct TTimer {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    unsigned fired;             /* under lock */
    unsigned rearm;             /* re-arm from inside this many times */
    bool off_main;              /* every call ran off the test's thread */
    pthread_t main;
    DqXport *x;
} TTimer;

static uint64_t mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void t_on_timer(void *opaque)
{
    TTimer *t = opaque;

    pthread_mutex_lock(&t->lock);
    t->fired++;
    if (pthread_equal(pthread_self(), t->main)) {
        t->off_main = false;
    }
    if (t->rearm > 0) {
        t->rearm--;
        /* Disarmed before the call: this one is kept. */
        dq_xport_arm_timer(t->x, mono_ns() + 1000000u);
    }
    pthread_cond_broadcast(&t->cond);
    pthread_mutex_unlock(&t->lock);
}

/* Wait (bounded: a hang check, not a timing) until @n calls were made. */
static unsigned wait_fired(TTimer *t, unsigned n, unsigned ms)
{
    struct timespec ts;
    unsigned got;

    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&t->lock);
    while (t->fired < n &&
           pthread_cond_timedwait(&t->cond, &t->lock, &ts) == 0) {
    }
    got = t->fired;
    pthread_mutex_unlock(&t->lock);
    return got;
}

static void timer_runs_on_the_io_thread_and_may_rearm_itself(void **s)
{
    TTimer t = { .lock = PTHREAD_MUTEX_INITIALIZER,
                 .cond = PTHREAD_COND_INITIALIZER, .off_main = true };

    (void)s;
    start_cluster(2, NULL);
    t.main = pthread_self();
    t.x = tnodes[0].x;
    t.rearm = 2;
    dq_xport_set_timer(t.x, t_on_timer, &t);
    /* Already due: as soon as the I/O thread can. */
    dq_xport_arm_timer(t.x, 0);
    assert_int_equal(wait_fired(&t, 3, 5000), 3);
    assert_true(t.off_main);
    /* One-shot: nothing more without an arm. */
    usleep(20000);
    assert_int_equal(wait_fired(&t, 4, 0), 3);
    dq_xport_set_timer(t.x, NULL, NULL);
    stop_cluster(2);
}

static void earlier_deadline_wins_over_later_ones(void **s)
{
    TTimer t = { .lock = PTHREAD_MUTEX_INITIALIZER,
                 .cond = PTHREAD_COND_INITIALIZER, .off_main = true };

    (void)s;
    start_cluster(2, NULL);
    t.main = pthread_self();
    t.x = tnodes[1].x;
    dq_xport_set_timer(t.x, t_on_timer, &t);
    dq_xport_arm_timer(t.x, mono_ns() + 60ull * 1000000000u);
    usleep(20000);
    /* Moved up from a minute away ... */
    dq_xport_arm_timer(t.x, mono_ns() + 2000000u);
    /* ... and not pushed back by a later one. */
    dq_xport_arm_timer(t.x, mono_ns() + 30ull * 1000000000u);
    assert_int_equal(wait_fired(&t, 1, 5000), 1);
    assert_true(t.off_main);
    dq_xport_set_timer(t.x, NULL, NULL);
    stop_cluster(2);
}

/* A timer callback that holds its node's I/O thread, as a frozen host would. */
static void t_on_timer_freeze(void *opaque)
{
    usleep(*(unsigned *)opaque * 1000u);
}

static void nodes_frozen_together_do_not_blame_each_other(void **s)
{
    DqXportConfig tm = { .heartbeat_ms = 100, .failure_timeout_ms = 600 };
    unsigned freeze_ms = 1000;
    uint64_t at;
    unsigned i;

    (void)s;
    start_cluster(2, &tm);
    /*
     * Both I/O threads stand still for longer than the failure timeout,
     * as every process of a paused virtual machine does; when they run
     * again neither may call the other failed.
     */
    at = mono_ns() + 20000000u;
    for (i = 0; i < 2; i++) {
        dq_xport_set_timer(tnodes[i].x, t_on_timer_freeze, &freeze_ms);
        dq_xport_arm_timer(tnodes[i].x, at);
    }
    usleep((freeze_ms + tm.failure_timeout_ms / 2) * 1000u);
    for (i = 0; i < 2; i++) {
        pthread_mutex_lock(&tnodes[i].lock);
        assert_int_equal(tnodes[i].failed_mask, 0);
        pthread_mutex_unlock(&tnodes[i].lock);
    }
    assert_int_equal(read_page(0, 1, 0x5000, 2000), DQ_OK);
    assert_int_equal(read_page(1, 0, 0x6000, 2000), DQ_OK);
    for (i = 0; i < 2; i++) {
        dq_xport_set_timer(tnodes[i].x, NULL, NULL);
    }
    stop_cluster(2);
}

static void timer_without_a_callback_is_harmless(void **s)
{
    (void)s;
    start_cluster(2, NULL);
    dq_xport_arm_timer(tnodes[0].x, 0);
    usleep(20000);
    /* The cluster still works. */
    assert_int_equal(read_page(0, 1, 0x5000, 2000), DQ_OK);
    stop_cluster(2);
}

/* ---- CURVE and the simulated link delay --------------------------------- */

static char curve_sec[41], curve_pub[41], other_sec[41], other_pub[41];

static void make_keys(void)
{
    assert_int_equal(zmq_curve_keypair(curve_pub, curve_sec), 0);
    assert_int_equal(zmq_curve_keypair(other_pub, other_sec), 0);
}

static void curve_cluster_forms_and_moves_pages(void **s)
{
    DqXportConfig t;

    (void)s;
    make_keys();
    memset(&t, 0, sizeof(t));
    t.heartbeat_ms = 100;
    t.failure_timeout_ms = 600;
    t.curve_secret = curve_sec;
    t.curve_public = curve_pub;
    start_cluster(3, &t);
    assert_int_equal(read_page(0, 2, 0x1000, 2000), DQ_OK);
    assert_int_equal(read_page(2, 1, 0x2000, 2000), DQ_OK);
    assert_int_equal(read_page(1, 0, 0x3000, 2000), DQ_OK);
    assert_int_equal(tnodes[0].refusals, 0);
    stop_cluster(3);
}

/*
 * A worker with another key, one with none, and a raw connection sending
 * garbage: each is turned away (the master says from where) and learns
 * it was refused, and the right worker still completes the cluster.
 */
static void curve_refuses_wrong_key_no_key_and_garbage(void **s)
{
    DqXportConfig c;
    char err[DQ_ERRBUF_SIZE], master[DQ_XPORT_ENDPOINT_MAX];
    DqXport *m, *w;
    int variant;

    (void)s;
    make_keys();
    tnode_reset();
    base_cfg(&c, 0, 2, "tcp://127.0.0.1:*");
    c.curve_secret = curve_sec;
    c.curve_public = curve_pub;
    m = start_node(&c);
    snprintf(master, sizeof(master), "%s", dq_xport_endpoint(m));

    for (variant = 0; variant < 2; variant++) {
        base_cfg(&c, 1, 2, master);
        c.opaque = &tnodes[2 + variant];
        c.join_timeout_ms = 5000;
        if (variant == 0) {
            c.curve_secret = other_sec;
            c.curve_public = other_pub;
        }
        assert_int_equal(dq_xport_start(&c, &w, err, sizeof(err)), DQ_OK);
        assert_int_equal(dq_xport_wait_ready(w, err, sizeof(err)),
                         DQ_ERR_XPORT_REFUSED);
        assert_non_null(strstr(err, "refused this node"));
        expect_refused(0, "not a member of this cluster");
        /* A refused connection may be closed before its fd is read. */
        assert_true(strcmp(tnodes[0].refused_addr, "127.0.0.1") == 0 ||
                    strcmp(tnodes[0].refused_addr,
                           "an unknown address") == 0);
        dq_xport_free(w);
        pthread_mutex_lock(&tnodes[0].lock);
        tnodes[0].refusals = 0;
        pthread_mutex_unlock(&tnodes[0].lock);
    }
    {
        /* Not even ZMTP: an HTTP request on a plain TCP connection. */
        static const char http[] = "GET / HTTP/1.0\r\n\r\n";
        struct sockaddr_in sa = { .sin_family = AF_INET };
        int fd = socket(AF_INET, SOCK_STREAM, 0);

        sa.sin_port = htons((uint16_t)atoi(strrchr(master, ':') + 1));
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        assert_true(fd >= 0);
        assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        assert_int_equal(write(fd, http, sizeof(http) - 1),
                         (ssize_t)sizeof(http) - 1);
        usleep(200000);
        close(fd);
        expect_refused(0, "not a member of this cluster");
    }
    base_cfg(&c, 1, 2, master);
    c.curve_secret = curve_sec;
    c.curve_public = curve_pub;
    c.opaque = &tnodes[1];
    w = start_node(&c);
    assert_int_equal(dq_xport_wait_ready(m, err, sizeof(err)), DQ_OK);
    assert_int_equal(dq_xport_wait_ready(w, err, sizeof(err)), DQ_OK);
    assert_int_equal(read_page(1, 0, 0x4000, 2000), DQ_OK);
    dq_xport_free(w);
    dq_xport_free(m);
}

/* Node 1 holds what it receives 30 ms: a round trip from node 0 shows it. */
static void rx_delay_holds_received_messages(void **s)
{
    DqXportConfig c;
    char err[DQ_ERRBUF_SIZE], master[DQ_XPORT_ENDPOINT_MAX];
    uint64_t t0, took;

    (void)s;
    tnode_reset();
    base_cfg(&c, 0, 2, "tcp://127.0.0.1:*");
    start_node(&c);
    snprintf(master, sizeof(master), "%s", dq_xport_endpoint(tnodes[0].x));
    base_cfg(&c, 1, 2, master);
    c.rx_delay_us = 30000;
    start_node(&c);
    assert_int_equal(dq_xport_wait_ready(tnodes[0].x, err, sizeof(err)),
                     DQ_OK);
    assert_int_equal(dq_xport_wait_ready(tnodes[1].x, err, sizeof(err)),
                     DQ_OK);
    t0 = mono_ms();
    assert_int_equal(read_page(0, 1, 0x1000, 2000), DQ_OK);
    took = mono_ms() - t0;
    assert_true(took >= 29);
    /* The other way, node 0 holds nothing: only the reply waits. */
    t0 = mono_ms();
    assert_int_equal(read_page(1, 0, 0x2000, 2000), DQ_OK);
    assert_true(mono_ms() - t0 >= 29);
    stop_cluster(2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_node_reads_from_every_other_node),
        cmocka_unit_test(concurrent_requesters_get_their_own_replies),
        cmocka_unit_test(reply_with_another_req_id_does_not_wake_the_requester),
        cmocka_unit_test(async_send_reaches_on_message_and_acks_come_back),
        cmocka_unit_test(request_from_a_callback_is_refused),
        cmocka_unit_test(request_to_itself_is_a_usage_error),
        cmocka_unit_test(reply_larger_than_the_buffer_is_refused_not_copied),
        cmocka_unit_test(unanswered_request_times_out),
        cmocka_unit_test(join_with_wrong_cluster_id_is_refused),
        cmocka_unit_test(join_with_wrong_version_is_refused),
        cmocka_unit_test(join_with_wrong_page_size_is_refused),
        cmocka_unit_test(join_with_wrong_node_count_is_refused),
        cmocka_unit_test(second_claim_on_a_node_id_is_refused),
        cmocka_unit_test(start_up_timeout_names_the_missing_nodes),
        cmocka_unit_test(worker_without_master_times_out),
        cmocka_unit_test(other_version_join_is_refused_and_strangers_ignored),
        cmocka_unit_test(dead_peer_fails_blocked_requests_within_the_timeout),
        cmocka_unit_test(shutdown_reaches_every_worker_with_the_exit_code),
        cmocka_unit_test(worker_told_when_master_dies),
        cmocka_unit_test(bad_configuration_is_rejected),
        cmocka_unit_test(
            forever_request_outlives_3s_of_silence_with_heartbeats),
        cmocka_unit_test(
            forever_request_to_a_dying_peer_fails_within_the_timeout),
        cmocka_unit_test(free_completes_a_forever_request_before_it_returns),
        cmocka_unit_test(shutdown_completes_forever_requests_both_ways),
        cmocka_unit_test(late_call_reply_reaches_on_message),
        cmocka_unit_test(calls_of_200_kb_go_through_request_and_send),
        cmocka_unit_test(config_reports_the_effective_settings),
        cmocka_unit_test(timer_runs_on_the_io_thread_and_may_rearm_itself),
        cmocka_unit_test(earlier_deadline_wins_over_later_ones),
        cmocka_unit_test(timer_without_a_callback_is_harmless),
        cmocka_unit_test(nodes_frozen_together_do_not_blame_each_other),
        cmocka_unit_test(curve_cluster_forms_and_moves_pages),
        cmocka_unit_test(curve_refuses_wrong_key_no_key_and_garbage),
        cmocka_unit_test(rx_delay_holds_received_messages),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
