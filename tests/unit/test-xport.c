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
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <zmq.h>

#include "xport.h"

#define PAGE        4096u
#define MAX_TNODES  8

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
} TNode;

static TNode tnodes[MAX_TNODES];

static uint8_t pattern(uint64_t addr, unsigned node, size_t i)
{
    return (uint8_t)((addr >> 12) * 31 + node * 7 + i);
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
    pthread_cond_broadcast(&t->cond);
    pthread_mutex_unlock(&t->lock);

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
    }
    start_node(&c);
    snprintf(master, sizeof(master), "%s", dq_xport_endpoint(tnodes[0].x));
    for (i = 1; i < n; i++) {
        base_cfg(&c, i, n, master);
        if (tmpl != NULL) {
            c.heartbeat_ms = tmpl->heartbeat_ms;
            c.failure_timeout_ms = tmpl->failure_timeout_ms;
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

/* A 2-node cluster where the worker's config is changed by @tweak. */
static void expect_refusal(void (*tweak)(DqXportConfig *), const char *why)
{
    DqXportConfig c;
    char err[DQ_ERRBUF_SIZE], master[DQ_XPORT_ENDPOINT_MAX];
    DqXport *m, *w;

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
    assert_int_equal(dq_xport_wait_ready(m, err, sizeof(err)),
                     DQ_ERR_XPORT_REFUSED);
    assert_non_null(strstr(err, "refused node"));
    assert_non_null(strstr(err, why));
    dq_xport_free(w);
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
    DqXport *m, *w1, *w2;
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
    st = dq_xport_wait_ready(m, err, sizeof(err));
    assert_int_equal(st, DQ_ERR_XPORT_REFUSED);
    assert_non_null(strstr(err, "refused node 1"));
    assert_non_null(strstr(err, "node id taken"));
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
    assert_int_equal(dq_xport_wait_ready(x, err, sizeof(err)),
                     DQ_ERR_XPORT_REFUSED);
    assert_non_null(strstr(err, "refused node 1: protocol version differs "
                                "(node speaks 2, cluster 1)"));
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
        assert_true(tnodes[i].got_shutdown);
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
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
