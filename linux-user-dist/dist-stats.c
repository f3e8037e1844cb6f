/*
 * dist-stats.c - this node's statistics, and the reports made of them.
 *
 * The counters are dist_stats (DQ_STATS_LIST, bumped where things happen)
 * and the coherence engine's (dq_dsm_counters).  This file keeps the one
 * counter that is not a plain sum, thread_ns, sets the read-at-exit ones
 * in a snapshot, and writes the reports: --stats as text on stderr and
 * --stats-json as one JSON document, both made by the master at exit
 * with every node's part (workers answer DIST_OP_STATS with theirs).
 */
#include "qemu/osdep.h"
#include "qemu/thread.h"
#include "qemu/timer.h"
#include "qobject/qdict.h"
#include "qobject/qjson.h"
#include "qobject/qlist.h"
#include "qobject/qnum.h"
#include "qemu.h"
#include "dist-internal.h"
#include "dsm.h"

/* A node's report is a few KiB of text or JSON. */
#define DIST_STATS_REPLY_MAX (64u * 1024)

/* ---- thread_ns ---------------------------------------------------------- */

/*
 * thread_ns sums each guest thread's time on this node, from when it
 * starts running here to its exit; threads still running at the snapshot
 * count up to it:
 *
 *     thread_ns = done_ns + live * now - live_start_sum
 *
 * The three values change together under thread_time_lock: read as
 * separate atomics they could miss a thread that started in between and
 * be off by its whole start time.  Threads start and end rarely next to
 * the work they do, and nothing else is taken under the lock.  The sums
 * wrap modulo 2^64 and the result is right as long as it fits.
 */
static QemuMutex thread_time_lock;
static uint64_t threads_done_ns;
static uint64_t threads_live;
static uint64_t threads_live_start_sum;

/* When this thread started running here; 0: not a counted guest thread
 * (a proxy, the service thread, a transport thread). */
static __thread int64_t thread_started;
/* Set while this thread's exit call runs (its time ended at this clock). */
static __thread int64_t thread_ended;

/*
 * Set while this thread runs exit or exit_group: dist_exit()'s code is
 * then the guest's status, else 128 + the signal the guest dies of.
 */
static __thread bool in_exit_call;

/* The process that writes --stats-json (not a child the guest forks). */
static pid_t stats_pid;
/* --stats-json's file, absolute: the guest may chdir before it exits. */
static char *stats_json_path;

/*
 * In the child of a fork only the forking thread goes on: the others'
 * time is the parent's.  The lock may have been held by one of them.
 */
static void dist_stats_atfork_child(void)
{
    qemu_mutex_init(&thread_time_lock);
    threads_live = thread_started ? 1 : 0;
    threads_live_start_sum = (uint64_t)thread_started;
}

void dist_stats_init(void)
{
    qemu_mutex_init(&thread_time_lock);
    stats_pid = getpid();
    pthread_atfork(NULL, NULL, dist_stats_atfork_child);
}

void dist_stats_thread_begin(void)
{
    int64_t now = get_clock();

    dq_stats_add(&dist_stats, threads_run, 1);
    qemu_mutex_lock(&thread_time_lock);
    threads_live++;
    threads_live_start_sum += (uint64_t)now;
    qemu_mutex_unlock(&thread_time_lock);
    thread_started = now;
}

bool dist_stats_exit_call_begin(int num)
{
    bool thread_exit = false;

#ifdef TARGET_NR_exit
    thread_exit = num == TARGET_NR_exit;
#endif
#ifdef TARGET_NR_exit_group
    if (num != TARGET_NR_exit_group && !thread_exit) {
        return false;
    }
#else
    if (!thread_exit) {
        return false;
    }
#endif
    in_exit_call = true;
    /*
     * A thread's exit ends its time before the call wakes its joiner
     * (CLEARTID), who may read the statistics next; the last thread's
     * exit ends the process, whose snapshot must have it.  exit_group
     * leaves the threads to the snapshot.
     */
    if (thread_exit && thread_started) {
        int64_t now = get_clock();

        qemu_mutex_lock(&thread_time_lock);
        threads_done_ns += (uint64_t)(now - thread_started);
        threads_live--;
        threads_live_start_sum -= (uint64_t)thread_started;
        qemu_mutex_unlock(&thread_time_lock);
        thread_ended = now;
    }
    return true;
}

void dist_stats_exit_call_restarted(void)
{
    in_exit_call = false;
    /* A pending signal runs first: the thread lives on, as if never ended. */
    if (thread_ended) {
        qemu_mutex_lock(&thread_time_lock);
        threads_done_ns -= (uint64_t)(thread_ended - thread_started);
        threads_live++;
        threads_live_start_sum += (uint64_t)thread_started;
        qemu_mutex_unlock(&thread_time_lock);
        thread_ended = 0;
    }
}

/* Set the counters that are read, not bumped: wall_time_ns, thread_ns. */
static void dist_stats_snapshot(void)
{
    int64_t now = get_clock();

    qemu_mutex_lock(&thread_time_lock);
    dist_stats.thread_ns = threads_done_ns + threads_live * (uint64_t)now -
                           threads_live_start_sum;
    qemu_mutex_unlock(&thread_time_lock);
    dist_stats.wall_time_ns = now - dist_start_time_ns;
}

/* ---- the text report (--stats) ------------------------------------------- */

/* Ask worker @k for its report (@format: DIST_STATS_TEXT or _JSON). */
static DqStatus dist_stats_ask(unsigned k, uint64_t format, DqMsg *reply,
                               uint8_t *buf)
{
    return dist_call(k, DIST_OP_STATS, 0, format, NULL, 0, reply, buf,
                     DIST_STATS_REPLY_MAX, 0);
}

/* This node's --stats report as text. */
static char *dist_stats_text(size_t *len)
{
    char *text = NULL;
    FILE *f = open_memstream(&text, len);
    DqDsmCounters c;

    if (f == NULL) {
        return NULL;
    }
    dq_stats_print(f, dist_node_id, &dist_stats);
    dq_dsm_counters(&c);
    if (dist_active()) {
        dq_dsm_counters_print(f, dist_node_id, &c);
    }
    fclose(f);
    return text;
}

/* Master: collect the workers' counters and print every node's. */
static void dist_print_cluster_stats(void)
{
    uint8_t *buf = g_malloc(DIST_STATS_REPLY_MAX);
    unsigned k;

    for (k = 1; k < dist_node_count; k++) {
        DqMsg reply;
        DqStatus st = dist_stats_ask(k, DIST_STATS_TEXT, &reply, buf);

        if (st == DQ_OK) {
            fwrite(reply.tail, 1, reply.tail_len, stderr);
        } else {
            fprintf(stderr, "dqemu: node %u: no statistics (%s)\n", k,
                    dq_status_str(st));
        }
    }
    g_free(buf);
}

static void dist_stats_print_report(void)
{
    size_t len = 0;
    char *text = dist_stats_text(&len);

    if (text) {
        fwrite(text, 1, len, stderr);
        free(text);
    }
    if (dist_active() && dist_node_id == 0) {
        dist_print_cluster_stats();
    }
}

/* ---- the JSON document (--stats-json) ------------------------------------ */

/* A copy of this node's counters, each read once (others bump them). */
static void dist_stats_load(DqStats *out)
{
#define DIST_STATS_LOAD(name, unit, help)                                   \
    out->name = __atomic_load_n(&dist_stats.name, __ATOMIC_RELAXED);
    DQ_STATS_LIST(DIST_STATS_LOAD)
#undef DIST_STATS_LOAD
}

/* {"stats": {...}, "dsm": {...}}: what a worker sends for its entry. */
static void dist_stats_print_json_part(FILE *f, const DqStats *s,
                                       const DqDsmCounters *c)
{
    fputs("\"stats\": ", f);
    dq_stats_print_json(f, s);
    fputs(", \"dsm\": ", f);
    dq_dsm_counters_print_json(f, c);
}

static bool dist_json_uint(QDict *d, const char *key, uint64_t *out)
{
    QNum *n = qobject_to(QNum, qdict_get(d, key));

    return n != NULL && qnum_get_try_uint(n, out);
}

/* One [lo, hi, count] of "fault_hist_us" into its bucket of @c. */
static bool dist_json_hist_entry(QObject *o, DqDsmCounters *c)
{
    QList *l = qobject_to(QList, o);
    QNum *field[3] = { NULL, NULL, NULL };
    uint64_t lo_us, n;
    QListEntry *e;
    size_t i = 0;

    if (l == NULL || qlist_size(l) != 3) {
        return false;
    }
    QLIST_FOREACH_ENTRY(l, e) {
        field[i++] = qobject_to(QNum, qlist_entry_obj(e));
    }
    if (!field[0] || !field[2] || !qnum_get_try_uint(field[0], &lo_us) ||
        !qnum_get_try_uint(field[2], &n) || lo_us > UINT64_MAX / 1000) {
        return false;
    }
    c->fault_hist[dq_dsm_hist_bucket(lo_us * 1000)] += n;
    return true;
}

/* A worker's part back into counters (for the totals). */
static bool dist_stats_from_json(const char *text, DqStats *s,
                                 DqDsmCounters *c)
{
    QObject *o = qobject_from_json(text, NULL);
    QDict *d = qobject_to(QDict, o);
    QDict *ds = d ? qdict_get_qdict(d, "stats") : NULL;
    QDict *dc = d ? qdict_get_qdict(d, "dsm") : NULL;
    QList *hist = dc ? qdict_get_qlist(dc, "fault_hist_us") : NULL;
    bool ok = ds != NULL && dc != NULL && hist != NULL;
    QListEntry *e;

    memset(s, 0, sizeof(*s));
    memset(c, 0, sizeof(*c));
#define DIST_STATS_GET(name, unit, help)                                    \
    ok = ok && dist_json_uint(ds, #name, &s->name);
    DQ_STATS_LIST(DIST_STATS_GET)
#undef DIST_STATS_GET
#define DIST_DSM_GET(name, unit, help)                                      \
    ok = ok && dist_json_uint(dc, #name, &c->name);
    DQ_DSM_COUNTER_LIST(DIST_DSM_GET)
#undef DIST_DSM_GET
    if (ok) {
        QLIST_FOREACH_ENTRY(hist, e) {
            ok = ok && dist_json_hist_entry(qlist_entry_obj(e), c);
        }
    }
    qobject_unref(o);
    return ok;
}

/* Worker @k's entry of "per_node"; its counters added to the totals. */
static void dist_stats_json_worker(FILE *f, unsigned k, uint8_t *buf,
                                   DqStats *sum, DqDsmCounters *dsm_sum)
{
    DqMsg reply;
    DqStats s;
    DqDsmCounters c;
    DqStatus st = dist_stats_ask(k, DIST_STATS_JSON, &reply, buf);
    g_autofree char *text = NULL;
    g_autofree char *why = NULL;

    if (st == DQ_OK) {
        text = g_strndup((const char *)reply.tail, reply.tail_len);
        if (dist_stats_from_json(text, &s, &c)) {
            fprintf(f, "{\"node\": %u, ", k);
            dist_stats_print_json_part(f, &s, &c);
            fputc('}', f);
            dq_stats_sum(sum, &s);
            dq_dsm_counters_sum(dsm_sum, &c);
            return;
        }
        why = g_strdup("its statistics did not decode");
    } else {
        why = g_strdup_printf("no statistics: %s", dq_status_str(st));
    }
    fprintf(f, "{\"node\": %u, \"error\": ", k);
    dq_json_print_string(f, why);
    fputc('}', f);
}

/*
 * The whole document for a guest that ends with dist_exit()'s @code.
 * The counters are printed from one copy each, so the totals are the
 * sums of exactly what per_node shows.
 */
static void dist_stats_print_json_document(FILE *f, int code)
{
    uint8_t *buf = g_malloc(DIST_STATS_REPLY_MAX);
    DqStats s, sum;
    DqDsmCounters c, dsm_sum;
    unsigned k;

    dist_stats_load(&s);
    sum = s;
    dq_dsm_counters(&c);
    dsm_sum = c;
    fprintf(f, "{\"format\": \"dqemu-stats\", \"version\": 1, "
            "\"nodes\": %u, \"wall_time_ns\": %" PRIu64 ", ",
            dist_node_count, s.wall_time_ns);
    if (in_exit_call) {
        fprintf(f, "\"exit_status\": %d, ", code & 0xff);
    } else if (code > 128) {
        fprintf(f, "\"exit_signal\": %d, ", code - 128);
    }
    fputs("\n \"per_node\": [\n  {\"node\": 0, ", f);
    dist_stats_print_json_part(f, &s, &c);
    fputc('}', f);
    for (k = 1; k < dist_node_count; k++) {
        fputs(",\n  ", f);
        dist_stats_json_worker(f, k, buf, &sum, &dsm_sum);
    }
    fputs("\n ],\n \"totals\": {", f);
    dist_stats_print_json_part(f, &sum, &dsm_sum);
    fputs("}}\n", f);
    g_free(buf);
}

/*
 * Write the document to FILE.tmp and rename it over FILE, so a reader
 * never sees half of one.  Returns false, having said why, on failure.
 */
static bool dist_stats_write_json(int code)
{
    g_autofree char *tmp = g_strdup_printf("%s.tmp", stats_json_path);
    FILE *f = fopen(tmp, "w");
    int err = 0;

    if (f == NULL) {
        err = errno;
    } else {
        dist_stats_print_json_document(f, code);
        if (fflush(f) != 0) {
            err = errno;
        } else if (ferror(f)) {
            err = EIO;
        }
        if (fclose(f) != 0 && err == 0) {
            err = errno;
        }
        if (err == 0 && rename(tmp, stats_json_path) != 0) {
            err = errno;
        }
        if (err != 0) {
            unlink(tmp);
        }
    }
    if (err != 0) {
        fflush(stdout);
        fprintf(stderr, "dqemu-" TARGET_NAME ": node %u: --stats-json: "
                "cannot write %s: %s\n", dist_node_id, stats_json_path,
                strerror(err));
        return false;
    }
    return true;
}

void dist_stats_check_json_file(void)
{
    const char *file = dist_options.stats_json;
    g_autofree char *tmp = NULL;
    g_autofree char *cwd = NULL;
    struct stat st;
    int fd;

    if (file == NULL || dist_options.worker) {
        return;
    }
    if (file[0] == '/') {
        stats_json_path = g_strdup(file);
    } else {
        cwd = g_get_current_dir();
        stats_json_path = g_build_filename(cwd, file, NULL);
    }
    if (stat(stats_json_path, &st) == 0 && S_ISDIR(st.st_mode)) {
        dist_usage_error("--stats-json: cannot write %s: %s", file,
                         strerror(EISDIR));
    }
    /* What dist_stats_write_json() will do at exit, now, while it is cheap
     * to stop: a typo should not cost a whole run's statistics. */
    tmp = g_strdup_printf("%s.tmp", stats_json_path);
    fd = open(tmp, O_WRONLY | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0) {
        dist_usage_error("--stats-json: cannot write %s (%s.tmp): %s", file,
                         file, strerror(errno));
    }
    close(fd);
    unlink(tmp);
}

/* ---- at exit, and a worker's answer ------------------------------------- */

int dist_stats_at_exit(int code)
{
    bool json = dist_options.stats_json != NULL && getpid() == stats_pid &&
                stats_json_path != NULL;

    if (!dist_options.stats && !json) {
        return code;
    }
    dist_stats_snapshot();
    if (dist_options.stats) {
        fflush(stdout);
        dist_stats_print_report();
    }
    /* A guest that succeeded but whose statistics are lost says so. */
    if (json && !dist_stats_write_json(code) && in_exit_call &&
        (code & 0xff) == 0) {
        return EXIT_FAILURE;
    }
    return code;
}

void dist_stats_answer(unsigned src, uint64_t req_id, uint64_t format)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f;
    DqStats s;
    DqDsmCounters c;

    dist_stats_snapshot();
    if (format != DIST_STATS_JSON) {
        text = dist_stats_text(&len);
    } else if ((f = open_memstream(&text, &len)) != NULL) {
        dist_stats_load(&s);
        dq_dsm_counters(&c);
        fputc('{', f);
        dist_stats_print_json_part(f, &s, &c);
        fputc('}', f);
        fclose(f);
    }
    dist_reply(src, req_id, 0, 0, text, text ? len : 0);
    free(text);
}
