/*
 * hostlist.c - hostfiles, --hosts lists and Slurm node lists.
 *
 * Three spellings of "these hosts, this many slots each" become one
 * DqHostList, and dq_hostlist_assign() hands the slots out to nodes in
 * order, as mpirun hands them to ranks.  Host names are checked for shape
 * only (they end up as an argument of ssh, so one that starts with '-' or
 * holds a shell character is refused here, naming the line); nothing is
 * resolved.  Errors come back as text for the caller to report.
 */
#include "hostlist.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

/* A hostfile larger than this is not one (and is not read into memory). */
#define DQ_HOSTFILE_MAX (1024 * 1024)

/* Longest number read from a hostfile or node list; more is out of range. */
#define NUM_DIGITS_MAX 18

/* ---- host names -------------------------------------------------------- */

static bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/*
 * What a DNS name, an IPv4 literal or an IPv6 literal is made of: letters,
 * digits, '-', '.', ':' (IPv6), and '_', which real node names use though
 * DNS does not allow it.  Not the locale's isalnum(): a host name is ASCII.
 */
static bool is_host_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) ||
           c == '-' || c == '.' || c == '_' || c == ':';
}

/*
 * Check the @len bytes at @name as a host name; on failure say why in
 * @why.  A leading '-' is refused because the launcher would read the
 * name as one of its options ("ssh -oProxyCommand=...").
 */
static bool host_name_ok(const char *name, size_t len, char *why,
                         size_t whylen)
{
    size_t i;

    if (len == 0) {
        snprintf(why, whylen, "empty host name");
        return false;
    }
    if (len > DQ_HOST_NAME_MAX) {
        snprintf(why, whylen, "host name too long (%zu characters, at most %d)",
                 len, DQ_HOST_NAME_MAX);
        return false;
    }
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];

        if (c < 0x20 || c >= 0x7f) {
            /* Do not echo a name that could move the terminal's cursor. */
            snprintf(why, whylen, "host name with a non-printing byte 0x%02x",
                     c);
            return false;
        }
    }
    for (i = 0; i < len; i++) {
        if (!is_host_char(name[i])) {
            if (name[i] == '@') {
                snprintf(why, whylen, "'%.*s' is not a host name (a user "
                         "name goes in the launcher: \"ssh user@{host}\")",
                         (int)len, name);
            } else {
                snprintf(why, whylen, "'%.*s' is not a host name "
                         "(character '%c')", (int)len, name, name[i]);
            }
            return false;
        }
    }
    if (name[0] == '-') {
        snprintf(why, whylen, "'%.*s' is not a host name (it starts with "
                 "'-', like an option)", (int)len, name);
        return false;
    }
    return true;
}

/*
 * Read the decimal digits at @s (@len bytes, all of them digits) into
 * *@v.  False for no digits or anything else; a number with more digits
 * than NUM_DIGITS_MAX reads as ULONG_MAX, out of every range we check.
 */
static bool parse_count(const char *s, size_t len, unsigned long *v)
{
    unsigned long long n = 0;
    size_t i;

    if (len == 0) {
        return false;
    }
    for (i = 0; i < len; i++) {
        if (!is_digit(s[i])) {
            return false;
        }
    }
    if (len > NUM_DIGITS_MAX) {
        *v = ULONG_MAX;
        return true;
    }
    for (i = 0; i < len; i++) {
        n = n * 10 + (unsigned)(s[i] - '0');
    }
    *v = n > ULONG_MAX ? ULONG_MAX : (unsigned long)n;
    return true;
}

static size_t count_char(const char *s, size_t len, char c)
{
    size_t i, n = 0;

    for (i = 0; i < len; i++) {
        n += s[i] == c;
    }
    return n;
}

/* ---- building a list --------------------------------------------------- */

/*
 * A list being built, with a hash index over the names so that merging
 * duplicates stays linear: a hostfile may name thousands of hosts.
 * Names compare without case, as DNS does.
 */
typedef struct HostBuilder {
    DqHost *hosts;
    size_t count, cap;
    size_t *index;          /* host number + 1, 0 for empty; power of 2 */
    size_t index_size;
} HostBuilder;

static size_t name_hash(const char *name, size_t len)
{
    uint64_t h = 1469598103934665603ull;
    size_t i;

    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];

        if (c >= 'A' && c <= 'Z') {
            c = (unsigned char)(c - 'A' + 'a');
        }
        h = (h ^ c) * 1099511628211ull;
    }
    return (size_t)(h ^ (h >> 32));
}

static void builder_free(HostBuilder *b)
{
    free(b->hosts);
    free(b->index);
    memset(b, 0, sizeof(*b));
}

/* Rebuild the index at twice the host capacity (load factor <= 1/2). */
static bool builder_reindex(HostBuilder *b)
{
    size_t size = 16, i;
    size_t *index;

    while (size < 2 * b->cap) {
        size *= 2;
    }
    index = calloc(size, sizeof(*index));
    if (index == NULL) {
        return false;
    }
    for (i = 0; i < b->count; i++) {
        const char *name = b->hosts[i].name;
        size_t slot = name_hash(name, strlen(name)) & (size - 1);

        while (index[slot] != 0) {
            slot = (slot + 1) & (size - 1);
        }
        index[slot] = i + 1;
    }
    free(b->index);
    b->index = index;
    b->index_size = size;
    return true;
}

/*
 * Add @slots slots on the host named by the @len bytes at @name (already
 * checked by host_name_ok()), or to its earlier entry.
 */
static DqStatus builder_add(HostBuilder *b, const char *name, size_t len,
                            unsigned slots, char *err, size_t errlen)
{
    size_t slot;
    DqHost *h;

    if (b->count == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 8;
        DqHost *hosts = realloc(b->hosts, cap * sizeof(*hosts));

        if (hosts == NULL) {
            return dq_fail(err, errlen, DQ_ERR_NOMEM, "out of memory");
        }
        b->hosts = hosts;
        b->cap = cap;
        if (!builder_reindex(b)) {
            return dq_fail(err, errlen, DQ_ERR_NOMEM, "out of memory");
        }
    }
    slot = name_hash(name, len) & (b->index_size - 1);
    while (b->index[slot] != 0) {
        h = &b->hosts[b->index[slot] - 1];
        if (strlen(h->name) == len && strncasecmp(h->name, name, len) == 0) {
            /* Saturate: only the first DQ_MAX_NODES slots are ever used. */
            h->slots = slots > UINT_MAX - h->slots ? UINT_MAX
                                                   : h->slots + slots;
            return DQ_OK;
        }
        slot = (slot + 1) & (b->index_size - 1);
    }
    h = &b->hosts[b->count];
    memcpy(h->name, name, len);
    h->name[len] = '\0';
    h->slots = slots;
    b->index[slot] = ++b->count;
    return DQ_OK;
}

/* Hand the built list to @out, or say there is nothing in it. */
static DqStatus builder_finish(HostBuilder *b, DqHostList *out, char *err,
                               size_t errlen)
{
    if (b->count == 0) {
        builder_free(b);
        return dq_fail(err, errlen, DQ_ERR_USAGE, "no hosts");
    }
    out->hosts = b->hosts;
    out->count = b->count;
    free(b->index);
    memset(b, 0, sizeof(*b));
    return DQ_OK;
}

/* ---- hostfiles --------------------------------------------------------- */

/* Check slots=K's value (@v, @vlen bytes) and put it in *@slots. */
static DqStatus hostfile_slots(const char *v, size_t vlen, size_t line,
                               unsigned *slots, char *err, size_t errlen)
{
    unsigned long n;

    if (!parse_count(v, vlen, &n)) {
        return dq_fail(err, errlen, DQ_ERR_RANGE,
                        "line %zu: slots=%.*s: not a number", line,
                        (int)vlen, v);
    }
    if (n == 0) {
        return dq_fail(err, errlen, DQ_ERR_RANGE,
                        "line %zu: slots=%.*s: a host needs at least one "
                        "slot", line, (int)vlen, v);
    }
    if (n > DQ_HOST_SLOTS_MAX) {
        return dq_fail(err, errlen, DQ_ERR_RANGE,
                        "line %zu: slots=%.*s: at most %d slots on one host",
                        line, (int)vlen, v, DQ_HOST_SLOTS_MAX);
    }
    *slots = (unsigned)n;
    return DQ_OK;
}

/*
 * One hostfile line, [@s, @end) without its newline: "host [attr=value]...".
 * Open MPI also takes blanks around '=' ("slots = 2"), so we do too.
 */
static DqStatus hostfile_line(HostBuilder *b, const char *s, const char *end,
                              size_t line, char *err, size_t errlen)
{
    const char *hash = memchr(s, '#', (size_t)(end - s));
    const char *name, *p;
    size_t name_len;
    unsigned slots = 1;
    bool have_slots = false;
    char why[DQ_HOST_NAME_MAX + 128];

    if (hash) {
        end = hash;
    }
    for (p = s; p < end && is_blank(*p); p++) {
    }
    if (p == end) {
        return DQ_OK;
    }
    name = p;
    while (p < end && !is_blank(*p)) {
        p++;
    }
    name_len = (size_t)(p - name);
    if (count_char(name, name_len, ':') == 1) {
        /* One ':' is --hosts syntax; an IPv6 literal has at least two. */
        return dq_fail(err, errlen, DQ_ERR_USAGE,
                        "line %zu: '%.*s': a hostfile gives slots as "
                        "\"slots=K\", not \":K\"", line, (int)name_len, name);
    }
    if (!host_name_ok(name, name_len, why, sizeof(why))) {
        return dq_fail(err, errlen, DQ_ERR_USAGE, "line %zu: %s", line, why);
    }

    for (;;) {
        const char *key, *key_end, *val, *val_end;
        size_t key_len;
        DqStatus st;

        while (p < end && is_blank(*p)) {
            p++;
        }
        if (p == end) {
            break;
        }
        key = p;
        while (p < end && !is_blank(*p) && *p != '=') {
            p++;
        }
        key_end = p;
        while (p < end && is_blank(*p)) {
            p++;
        }
        if (p == end || *p != '=') {
            return dq_fail(err, errlen, DQ_ERR_USAGE,
                            "line %zu: unknown attribute '%.*s'", line,
                            (int)(key_end - key), key);
        }
        p++;
        while (p < end && is_blank(*p)) {
            p++;
        }
        val = p;
        while (p < end && !is_blank(*p)) {
            p++;
        }
        val_end = p;
        key_len = (size_t)(key_end - key);

        if (key_len == 5 && memcmp(key, "slots", 5) == 0) {
            if (have_slots) {
                return dq_fail(err, errlen, DQ_ERR_USAGE,
                                "line %zu: slots given twice", line);
            }
            st = hostfile_slots(val, (size_t)(val_end - val), line, &slots,
                                err, errlen);
            if (st != DQ_OK) {
                return st;
            }
            have_slots = true;
        } else if (key_len == 9 && memcmp(key, "max_slots", 9) == 0) {
            unsigned long ignored;

            /* A cap on oversubscription; we never oversubscribe. */
            if (!parse_count(val, (size_t)(val_end - val), &ignored)) {
                return dq_fail(err, errlen, DQ_ERR_RANGE,
                                "line %zu: max_slots=%.*s: not a number",
                                line, (int)(val_end - val), val);
            }
        } else {
            return dq_fail(err, errlen, DQ_ERR_USAGE,
                            "line %zu: unknown attribute '%.*s'", line,
                            (int)(val_end - key), key);
        }
    }
    return builder_add(b, name, name_len, slots, err, errlen);
}

DqStatus dq_hostfile_parse(const char *text, DqHostList *out,
                           char *err, size_t errlen)
{
    HostBuilder b = { 0 };
    const char *p = text ? text : "";
    size_t line = 0;

    out->hosts = NULL;
    out->count = 0;
    while (*p) {
        const char *eol = strchr(p, '\n');
        DqStatus st;

        if (eol == NULL) {
            eol = p + strlen(p);
        }
        st = hostfile_line(&b, p, eol, ++line, err, errlen);
        if (st != DQ_OK) {
            builder_free(&b);
            return st;
        }
        p = *eol ? eol + 1 : eol;
    }
    return builder_finish(&b, out, err, errlen);
}

DqStatus dq_hostfile_load(const char *path, DqHostList *out,
                          char *err, size_t errlen)
{
    char *buf = NULL;
    size_t len = 0, cap = 0;
    char why[DQ_ERRBUF_SIZE];
    DqStatus st;
    int fd;

    out->hosts = NULL;
    out->count = 0;
    /*
     * Not only regular files: "--hostfile <(...)" hands us a pipe.  No
     * O_NONBLOCK, so a FIFO waits for its writer as cat(1) would.
     */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        int e = errno;

        return dq_fail(err, errlen, DQ_ERR_USAGE, "%s: %s", path,
                        e == ENOENT ? "no such file" :
                        e == EACCES ? "permission denied" : strerror(e));
    }
    for (;;) {
        ssize_t n;

        if (len == cap) {
            char *nbuf;

            if (cap > DQ_HOSTFILE_MAX) {
                close(fd);
                free(buf);
                return dq_fail(err, errlen, DQ_ERR_USAGE,
                                "%s: too large for a hostfile (over %d "
                                "bytes)", path, DQ_HOSTFILE_MAX);
            }
            cap = cap ? cap * 2 : 4096;
            if (cap > DQ_HOSTFILE_MAX + 1) {
                cap = DQ_HOSTFILE_MAX + 1;
            }
            nbuf = realloc(buf, cap + 1);
            if (nbuf == NULL) {
                close(fd);
                free(buf);
                return dq_fail(err, errlen, DQ_ERR_NOMEM, "%s: out of memory",
                                path);
            }
            buf = nbuf;
        }
        n = read(fd, buf + len, cap - len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            int e = errno;

            close(fd);
            free(buf);
            return dq_fail(err, errlen, DQ_ERR_USAGE, "%s: %s", path,
                            e == EACCES ? "permission denied" : strerror(e));
        }
        if (n == 0) {
            break;
        }
        len += (size_t)n;
    }
    close(fd);
    if (memchr(buf, '\0', len) != NULL) {
        free(buf);
        return dq_fail(err, errlen, DQ_ERR_USAGE,
                        "%s: not a text file (it holds a NUL byte)", path);
    }
    buf[len] = '\0';
    st = dq_hostfile_parse(buf, out, why, sizeof(why));
    free(buf);
    if (st != DQ_OK) {
        return dq_fail(err, errlen, st, "%s: %s", path, why);
    }
    return DQ_OK;
}

/* ---- --hosts ----------------------------------------------------------- */

/*
 * One --hosts item, the @len bytes at @s (blanks trimmed): "host",
 * "host:K", or "[v6-literal]:K" for an IPv6 address with a slot count.  An
 * item with several ':' and no brackets is an IPv6 literal, one slot.
 */
static DqStatus hosts_item(HostBuilder *b, const char *s, size_t len,
                           size_t item, char *err, size_t errlen)
{
    const char *name = s, *count = NULL;
    size_t name_len = len, count_len = 0;
    unsigned long slots = 1;
    char why[DQ_HOST_NAME_MAX + 128];

    if (len == 0) {
        return dq_fail(err, errlen, DQ_ERR_USAGE, "item %zu: empty host name",
                        item);
    }
    if (s[0] == '[') {
        const char *rb = memchr(s, ']', len);

        if (rb == NULL || (rb + 1 < s + len && rb[1] != ':')) {
            return dq_fail(err, errlen, DQ_ERR_USAGE,
                            "item %zu: '%.*s': expected [ADDRESS] or "
                            "[ADDRESS]:SLOTS", item, (int)len, s);
        }
        name = s + 1;
        name_len = (size_t)(rb - name);
        if (rb + 1 < s + len) {
            count = rb + 2;
            count_len = (size_t)(s + len - count);
        }
    } else if (count_char(s, len, ':') == 1) {
        const char *colon = memchr(s, ':', len);

        name_len = (size_t)(colon - s);
        count = colon + 1;
        count_len = (size_t)(s + len - count);
    }
    if (count != NULL) {
        if (!parse_count(count, count_len, &slots)) {
            return dq_fail(err, errlen, DQ_ERR_RANGE,
                            "item %zu: '%.*s': slots '%.*s' is not a number",
                            item, (int)len, s, (int)count_len, count);
        }
        if (slots == 0) {
            return dq_fail(err, errlen, DQ_ERR_RANGE,
                            "item %zu: '%.*s': a host needs at least one slot",
                            item, (int)len, s);
        }
        if (slots > DQ_HOST_SLOTS_MAX) {
            return dq_fail(err, errlen, DQ_ERR_RANGE,
                            "item %zu: '%.*s': at most %d slots on one host",
                            item, (int)len, s, DQ_HOST_SLOTS_MAX);
        }
    }
    if (!host_name_ok(name, name_len, why, sizeof(why))) {
        return dq_fail(err, errlen, DQ_ERR_USAGE, "item %zu: %s", item, why);
    }
    return builder_add(b, name, name_len, (unsigned)slots, err, errlen);
}

DqStatus dq_hosts_parse(const char *list, DqHostList *out,
                        char *err, size_t errlen)
{
    HostBuilder b = { 0 };
    const char *p = list ? list : "";
    size_t item = 0;

    out->hosts = NULL;
    out->count = 0;
    if (*p == '\0') {
        return dq_fail(err, errlen, DQ_ERR_USAGE, "no hosts");
    }
    for (;;) {
        const char *comma = strchr(p, ',');
        const char *end = comma ? comma : p + strlen(p);
        DqStatus st;

        while (p < end && is_blank(*p)) {
            p++;
        }
        while (end > p && is_blank(end[-1])) {
            end--;
        }
        st = hosts_item(&b, p, (size_t)(end - p), ++item, err, errlen);
        if (st != DQ_OK) {
            builder_free(&b);
            return st;
        }
        if (comma == NULL) {
            break;
        }
        p = comma + 1;
    }
    return builder_finish(&b, out, err, errlen);
}

/* ---- Slurm node lists -------------------------------------------------- */

/*
 * Check the bracket at *@pp ("[1-3,07]") and leave *@pp after its ']'.
 * When @host is not NULL, append the bracket's first number as written
 * (so its zero padding) to @host, whose length is *@hlen.
 */
static DqStatus slurm_bracket(const char *list, const char **pp, char *host,
                              size_t *hlen, char *err, size_t errlen)
{
    const char *p = *pp + 1;
    bool first = true;

    for (;;) {
        const char *lo = p, *hi;
        unsigned long lo_v, hi_v;

        while (is_digit(*p)) {
            p++;
        }
        if (p == lo) {
            goto bad;
        }
        if (!parse_count(lo, (size_t)(p - lo), &lo_v) ||
            p - lo > NUM_DIGITS_MAX) {
            return dq_fail(err, errlen, DQ_ERR_RANGE,
                            "node list '%s': number '%.*s' too long", list,
                            (int)(p - lo), lo);
        }
        if (first && host) {
            if (*hlen + (size_t)(p - lo) > DQ_HOST_NAME_MAX) {
                return dq_fail(err, errlen, DQ_ERR_USAGE,
                                "node list '%s': host name too long (at most "
                                "%d characters)", list, DQ_HOST_NAME_MAX);
            }
            memcpy(host + *hlen, lo, (size_t)(p - lo));
            *hlen += (size_t)(p - lo);
        }
        first = false;
        if (*p == '-') {
            hi = ++p;
            while (is_digit(*p)) {
                p++;
            }
            if (p == hi) {
                goto bad;
            }
            if (!parse_count(hi, (size_t)(p - hi), &hi_v) ||
                p - hi > NUM_DIGITS_MAX) {
                return dq_fail(err, errlen, DQ_ERR_RANGE,
                                "node list '%s': number '%.*s' too long",
                                list, (int)(p - hi), hi);
            }
            if (hi_v < lo_v) {
                return dq_fail(err, errlen, DQ_ERR_RANGE,
                                "node list '%s': range %.*s runs backwards",
                                list, (int)(p - lo), lo);
            }
        }
        if (*p == ',') {
            p++;
            continue;
        }
        if (*p == ']') {
            *pp = p + 1;
            return DQ_OK;
        }
        goto bad;
    }
bad:
    if (*p == '\0') {
        return dq_fail(err, errlen, DQ_ERR_USAGE,
                        "node list '%s': unterminated '['", list);
    }
    return dq_fail(err, errlen, DQ_ERR_USAGE,
                    "node list '%s': expected a number or a range at '%c' "
                    "inside [...]", list, *p);
}

DqStatus dq_slurm_nodelist_first(const char *nodelist, char *out,
                                 size_t outlen, char *err, size_t errlen)
{
    const char *p = nodelist;
    char host[DQ_HOST_NAME_MAX + 1];
    char why[DQ_HOST_NAME_MAX + 128];
    size_t hlen = 0;
    bool first = true;

    if (outlen) {
        out[0] = '\0';
    }
    if (nodelist == NULL || *nodelist == '\0') {
        return dq_fail(err, errlen, DQ_ERR_USAGE, "empty node list");
    }
    /* The whole list is checked, though only its first host is wanted. */
    for (;;) {
        const char *start = p;

        while (*p != '\0' && *p != ',') {
            if (*p == '[') {
                DqStatus st = slurm_bracket(nodelist, &p, first ? host : NULL,
                                            &hlen, err, errlen);

                if (st != DQ_OK) {
                    return st;
                }
            } else if (is_host_char(*p) && *p != ':') {
                if (first) {
                    if (hlen == DQ_HOST_NAME_MAX) {
                        return dq_fail(err, errlen, DQ_ERR_USAGE,
                                        "node list '%s': host name too long "
                                        "(at most %d characters)", nodelist,
                                        DQ_HOST_NAME_MAX);
                    }
                    host[hlen++] = *p;
                }
                p++;
            } else if (*p == ']') {
                return dq_fail(err, errlen, DQ_ERR_USAGE,
                                "node list '%s': ']' without '['", nodelist);
            } else if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f) {
                return dq_fail(err, errlen, DQ_ERR_USAGE,
                                "node list with a non-printing byte 0x%02x",
                                (unsigned char)*p);
            } else {
                return dq_fail(err, errlen, DQ_ERR_USAGE,
                                "node list '%s': unexpected character '%c'",
                                nodelist, *p);
            }
        }
        if (p == start) {
            return dq_fail(err, errlen, DQ_ERR_USAGE,
                            "node list '%s': empty host name", nodelist);
        }
        if (first) {
            if (!host_name_ok(host, hlen, why, sizeof(why))) {
                return dq_fail(err, errlen, DQ_ERR_USAGE, "node list: %s",
                                why);
            }
            first = false;
        }
        if (*p == '\0') {
            break;
        }
        p++;
    }
    if (hlen >= outlen) {
        return dq_fail(err, errlen, DQ_ERR_NOSPACE,
                        "host name '%.*s' does not fit in %zu bytes",
                        (int)hlen, host, outlen);
    }
    memcpy(out, host, hlen);
    out[hlen] = '\0';
    return DQ_OK;
}

/* ---- nodes onto slots -------------------------------------------------- */

DqStatus dq_hostlist_assign(const DqHostList *l, unsigned nodes,
                            const char *node_host[DQ_MAX_NODES],
                            unsigned *count, char *err, size_t errlen)
{
    unsigned long slots = 0;
    unsigned k = 0;
    size_t i;

    *count = 0;
    if (l == NULL || l->count == 0) {
        return dq_fail(err, errlen, DQ_ERR_USAGE, "no hosts");
    }
    for (i = 0; i < l->count; i++) {
        slots += l->hosts[i].slots;
        if (slots > DQ_MAX_NODES) {
            slots = DQ_MAX_NODES + 1;   /* enough to know it is too many */
            break;
        }
    }
    if (nodes > DQ_MAX_NODES) {
        return dq_fail(err, errlen, DQ_ERR_RANGE,
                        "%u nodes: at most %d", nodes, DQ_MAX_NODES);
    }
    if (nodes == 0) {
        if (slots > DQ_MAX_NODES) {
            return dq_fail(err, errlen, DQ_ERR_RANGE,
                            "the hosts have more than %d slots, more "
                            "nodes than dqemu runs; give a node count",
                            DQ_MAX_NODES);
        }
        nodes = (unsigned)slots;
    } else if (nodes > slots) {
        return dq_fail(err, errlen, DQ_ERR_RANGE,
                        "%u nodes but the hosts have only %lu slot%s", nodes,
                        slots, slots == 1 ? "" : "s");
    }
    for (i = 0; i < l->count && k < nodes; i++) {
        unsigned s;

        for (s = 0; s < l->hosts[i].slots && k < nodes; s++) {
            node_host[k++] = l->hosts[i].name;
        }
    }
    *count = k;
    return DQ_OK;
}

void dq_hostlist_free(DqHostList *l)
{
    if (l == NULL) {
        return;
    }
    free(l->hosts);
    l->hosts = NULL;
    l->count = 0;
}
