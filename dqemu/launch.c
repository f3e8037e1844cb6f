/*
 * launch.c - launcher command lines and ranks from a job's environment.
 *
 * The master starts remote workers by exec'ing a launcher (ssh by
 * default) with no shell in between, so the --launcher template is split
 * into words here by the shell's quoting rules and nothing is expanded.
 * Under srun or mpirun every rank runs the same command line instead, and
 * learns its rank from the variables the launcher sets.  Nothing here
 * starts a process or prints.
 */
#include "launch.h"

#include <stdlib.h>
#include <string.h>

#define HOST_PLACEHOLDER "{host}"
#define HOST_PLACEHOLDER_LEN (sizeof(HOST_PLACEHOLDER) - 1)

/* The port window of dq_slurm_master_port(). */
#define SLURM_PORT_BASE 20000u
#define SLURM_PORT_SPAN 40000u

/* ---- word vectors ------------------------------------------------------ */

/* A NULL-terminated vector being built. */
typedef struct WordVec {
    char **v;
    size_t count, cap;
} WordVec;

/* Append @word (taken over: freed here on failure). */
static bool vec_push(WordVec *w, char *word)
{
    if (word == NULL) {
        return false;
    }
    if (w->count + 1 >= w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 8;
        char **v = realloc(w->v, cap * sizeof(*v));

        if (v == NULL) {
            free(word);
            return false;
        }
        w->v = v;
        w->cap = cap;
    }
    w->v[w->count++] = word;
    w->v[w->count] = NULL;
    return true;
}

static bool vec_push_copy(WordVec *w, const char *s)
{
    return vec_push(w, strdup(s));
}

void dq_words_free(char **words)
{
    size_t i;

    if (words == NULL) {
        return;
    }
    for (i = 0; words[i] != NULL; i++) {
        free(words[i]);
    }
    free(words);
}

/* ---- splitting a command into words ------------------------------------ */

/*
 * Blanks separate words.  A newline is one too: there is only ever one
 * command here, so the shell's "newline ends a command" has nothing to do.
 */
static bool is_word_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n';
}

/* Skip blanks and backslash-newline pairs (a line continuation, nothing). */
static const char *skip_blanks(const char *p)
{
    for (;;) {
        if (is_word_blank(*p)) {
            p++;
        } else if (p[0] == '\\' && p[1] == '\n') {
            p += 2;
        } else {
            return p;
        }
    }
}

DqStatus dq_split_words(const char *cmd, char ***words, size_t *count,
                        char *err, size_t errlen)
{
    WordVec w = { 0 };
    const char *why = NULL;
    const char *p;
    char *buf;

    *words = NULL;
    if (count) {
        *count = 0;
    }
    if (cmd == NULL) {
        cmd = "";
    }
    /* No word is longer than the command it came from. */
    buf = malloc(strlen(cmd) + 1);
    if (buf == NULL) {
        return dq_fail(err, errlen, DQ_ERR_NOMEM, "out of memory");
    }
    for (p = skip_blanks(cmd); *p != '\0' && why == NULL;
         p = skip_blanks(p)) {
        size_t n = 0;

        while (*p != '\0' && !is_word_blank(*p) && why == NULL) {
            if (*p == '\'') {
                const char *close = strchr(p + 1, '\'');

                if (close == NULL) {
                    why = "unterminated single quote";
                    break;
                }
                memcpy(buf + n, p + 1, (size_t)(close - p - 1));
                n += (size_t)(close - p - 1);
                p = close + 1;
            } else if (*p == '"') {
                for (p++; *p != '"'; ) {
                    if (*p == '\0') {
                        why = "unterminated double quote";
                        break;
                    }
                    if (p[0] == '\\' && p[1] == '\n') {
                        p += 2;                 /* line continuation */
                    } else if (p[0] == '\\' && p[1] != '\0' &&
                               strchr("\"\\$`", p[1]) != NULL) {
                        buf[n++] = p[1];
                        p += 2;
                    } else {
                        buf[n++] = *p++;
                    }
                }
                if (why == NULL) {
                    p++;                        /* the closing quote */
                }
            } else if (*p == '\\') {
                if (p[1] == '\0') {
                    why = "backslash at the end";
                    break;
                }
                if (p[1] != '\n') {
                    buf[n++] = p[1];
                }
                p += 2;
            } else {
                buf[n++] = *p++;
            }
        }
        /*
         * Even an empty word ('' or "") is a word.  A word cannot be
         * empty otherwise: skip_blanks() ate every continuation that
         * could have started it.
         */
        if (why == NULL && !vec_push(&w, strndup(buf, n))) {
            free(buf);
            dq_words_free(w.v);
            return dq_fail(err, errlen, DQ_ERR_NOMEM, "out of memory");
        }
    }
    free(buf);
    if (why != NULL) {
        dq_words_free(w.v);
        return dq_fail(err, errlen, DQ_ERR_USAGE, "'%s': %s", cmd, why);
    }
    if (w.count == 0) {
        return dq_fail(err, errlen, DQ_ERR_USAGE, "no words in '%s'", cmd);
    }
    *words = w.v;
    if (count) {
        *count = w.count;
    }
    return DQ_OK;
}

/* ---- the launcher's argv ----------------------------------------------- */

/* @word with every "{host}" replaced by @host; *@found set if there was one. */
static char *substitute_host(const char *word, const char *host, bool *found)
{
    size_t hlen = strlen(host), n = 0, len;
    const char *p, *hit;
    char *out, *q;

    for (p = word; (hit = strstr(p, HOST_PLACEHOLDER)) != NULL;
         p = hit + HOST_PLACEHOLDER_LEN) {
        n++;
    }
    if (n == 0) {
        return strdup(word);
    }
    *found = true;
    len = strlen(word) - n * HOST_PLACEHOLDER_LEN + n * hlen;
    out = malloc(len + 1);
    if (out == NULL) {
        return NULL;
    }
    q = out;
    for (p = word; (hit = strstr(p, HOST_PLACEHOLDER)) != NULL;
         p = hit + HOST_PLACEHOLDER_LEN) {
        memcpy(q, p, (size_t)(hit - p));
        q += hit - p;
        memcpy(q, host, hlen);
        q += hlen;
    }
    strcpy(q, p);
    return out;
}

DqStatus dq_launcher_argv(const char *launcher, const char *host,
                          const char *remote_bin,
                          const char *const *worker_args, char ***argv,
                          char *err, size_t errlen)
{
    WordVec w = { 0 };
    char **words;
    bool found = false;
    DqStatus st;
    size_t i;

    *argv = NULL;
    if (host == NULL || host[0] == '\0' || host[0] == '-') {
        /* Host names are checked when read (hostlist.c); this is a guard. */
        return dq_fail(err, errlen, DQ_ERR_USAGE,
                            "'%s' is not a host for a launcher",
                            host ? host : "(null)");
    }
    st = dq_split_words(launcher ? launcher : DQ_LAUNCHER_DEFAULT, &words,
                        NULL, err, errlen);
    if (st != DQ_OK) {
        return st;
    }
    for (i = 0; words[i] != NULL; i++) {
        if (!vec_push(&w, substitute_host(words[i], host, &found))) {
            goto nomem;
        }
    }
    if (!found && !vec_push_copy(&w, host)) {
        goto nomem;
    }
    if (remote_bin != NULL && !vec_push_copy(&w, remote_bin)) {
        goto nomem;
    }
    for (i = 0; worker_args != NULL && worker_args[i] != NULL; i++) {
        if (!vec_push_copy(&w, worker_args[i])) {
            goto nomem;
        }
    }
    dq_words_free(words);
    *argv = w.v;
    return DQ_OK;

nomem:
    dq_words_free(words);
    dq_words_free(w.v);
    return dq_fail(err, errlen, DQ_ERR_NOMEM, "out of memory");
}

/* ---- ranks from the environment ---------------------------------------- */

/* The two variables one launcher family sets on every rank. */
typedef struct RankVars {
    DqRankSource source;
    const char *rank, *size;
} RankVars;

/* In precedence order (launch.h). */
static const RankVars rank_vars[] = {
    { DQ_RANK_OMPI, "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE" },
    { DQ_RANK_PMI, "PMI_RANK", "PMI_SIZE" },
    { DQ_RANK_SLURM, "SLURM_PROCID", "SLURM_NTASKS" },
};

/* Slurm's ids of the batch, interactive and extern steps start here. */
#define SLURM_PSEUDO_STEP_MIN 0xfffffff0ul

/* A plain decimal: digits only, no sign or blanks, no overflow. */
static bool parse_ulong(const char *s, unsigned long *out)
{
    unsigned long v = 0;

    if (s == NULL || *s == '\0') {
        return false;
    }
    for (; *s != '\0'; s++) {
        unsigned d = (unsigned)(*s - '0');

        if (*s < '0' || *s > '9' || v > (~0ul - d) / 10) {
            return false;
        }
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

/* Read one family's pair; *@present is false when neither is set. */
static DqStatus rank_pair(const RankVars *rv,
                          const char *(*get_env)(const char *name),
                          bool *present, unsigned long *rank,
                          unsigned long *size, char *err, size_t errlen)
{
    const char *r = get_env(rv->rank), *s = get_env(rv->size);

    *present = r != NULL || s != NULL;
    if (!*present) {
        return DQ_OK;
    }
    if (r == NULL || s == NULL) {
        return dq_fail(err, errlen, DQ_ERR_USAGE, "%s is set but %s is "
                            "not", r ? rv->rank : rv->size,
                            r ? rv->size : rv->rank);
    }
    if (!parse_ulong(r, rank)) {
        return dq_fail(err, errlen, DQ_ERR_USAGE,
                            "%s: '%s' is not a number", rv->rank, r);
    }
    if (!parse_ulong(s, size)) {
        return dq_fail(err, errlen, DQ_ERR_USAGE,
                            "%s: '%s' is not a number", rv->size, s);
    }
    if (*size == 0) {
        return dq_fail(err, errlen, DQ_ERR_RANGE,
                            "%s=0: a job has at least one task", rv->size);
    }
    if (*size > DQ_MAX_NODES) {
        return dq_fail(err, errlen, DQ_ERR_RANGE,
                            "%s=%lu: more than the %d nodes dqemu runs",
                            rv->size, *size, DQ_MAX_NODES);
    }
    if (*rank >= *size) {
        return dq_fail(err, errlen, DQ_ERR_RANGE,
                            "%s=%lu is not below %s=%lu", rv->rank, *rank,
                            rv->size, *size);
    }
    return DQ_OK;
}

DqStatus dq_rank_from_env(const char *(*get_env)(const char *name),
                          DqRank *out, char *err, size_t errlen)
{
    size_t i;

    memset(out, 0, sizeof(*out));
    out->source = DQ_RANK_NONE;
    for (i = 0; i < sizeof(rank_vars) / sizeof(rank_vars[0]); i++) {
        const RankVars *rv = &rank_vars[i];
        unsigned long rank = 0, size = 0, step_id;
        bool present;
        DqStatus st;

        /*
         * Slurm sets SLURM_PROCID and SLURM_NTASKS in a batch script and
         * an salloc shell too, where dqemu is one plain process: only a
         * task of an srun step (a real step id) is a rank.
         */
        if (rv->source == DQ_RANK_SLURM &&
            (!parse_ulong(get_env("SLURM_STEP_ID"), &step_id) ||
             step_id >= SLURM_PSEUDO_STEP_MIN)) {
            continue;
        }
        st = rank_pair(rv, get_env, &present, &rank, &size, err, errlen);
        if (st != DQ_OK) {
            return st;
        }
        if (!present) {
            continue;
        }
        if (size == 1) {
            /* A job of one task is a plain run, not a cluster. */
            return DQ_OK;
        }
        out->source = rv->source;
        out->rank = (unsigned)rank;
        out->size = (unsigned)size;
        if (rv->source == DQ_RANK_SLURM) {
            const char *job = get_env("SLURM_JOB_ID");
            const char *step = get_env("SLURM_STEP_ID");

            out->slurm_nodelist = get_env("SLURM_STEP_NODELIST");
            if (out->slurm_nodelist == NULL) {
                out->slurm_nodelist = get_env("SLURM_NODELIST");
            }
            out->slurm_ids = parse_ulong(job, &out->slurm_job_id) &&
                             parse_ulong(step, &out->slurm_step_id);
            if (!out->slurm_ids) {
                out->slurm_job_id = 0;
                out->slurm_step_id = 0;
            }
        }
        return DQ_OK;
    }
    return DQ_OK;
}

const char *dq_rank_source_str(DqRankSource s)
{
    switch (s) {
    case DQ_RANK_NONE:
        return "none";
    case DQ_RANK_SLURM:
        return "Slurm";
    case DQ_RANK_OMPI:
        return "Open MPI";
    case DQ_RANK_PMI:
        return "PMI";
    }
    return "unknown";
}

/* ---- the Slurm master's port ------------------------------------------- */

/* A 64-bit finaliser (xor-shift and odd multiplies) spreading job ids. */
static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

/*
 * The job id is hashed to a base in the window and the step id added to
 * it: the steps of one job get consecutive ports, distinct for any 40000
 * steps, and another job's run starts somewhere unrelated.
 */
unsigned dq_slurm_master_port(unsigned long job_id, unsigned long step_id)
{
    uint64_t base = mix64(job_id) % SLURM_PORT_SPAN;

    return SLURM_PORT_BASE +
           (unsigned)((base + step_id % SLURM_PORT_SPAN) % SLURM_PORT_SPAN);
}
