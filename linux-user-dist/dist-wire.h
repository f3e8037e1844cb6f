/*
 * dist-wire.h - little-endian writing and checked reading of the byte
 * tails our CALL messages carry.
 *
 * libdqemu moves CALL tails without looking at them, so the bounds checks
 * a peer's bytes need live here: a reader never reads past its end, and
 * once one read fails every later read fails too, so a decoder checks
 * dist_rd_ok() once at the end instead of after every field.
 */
#ifndef LINUX_USER_DIST_WIRE_H
#define LINUX_USER_DIST_WIRE_H

typedef struct DistWr {
    GByteArray *buf;
} DistWr;

static inline void dist_wr_init(DistWr *w)
{
    w->buf = g_byte_array_new();
}

static inline void dist_wr_bytes(DistWr *w, const void *p, size_t n)
{
    g_byte_array_append(w->buf, p, n);
}

static inline void dist_wr_u32(DistWr *w, uint32_t v)
{
    uint8_t b[4];

    for (int i = 0; i < 4; i++) {
        b[i] = v >> (8 * i);
    }
    dist_wr_bytes(w, b, 4);
}

static inline void dist_wr_u64(DistWr *w, uint64_t v)
{
    uint8_t b[8];

    for (int i = 0; i < 8; i++) {
        b[i] = v >> (8 * i);
    }
    dist_wr_bytes(w, b, 8);
}

/* A string as u32 length + bytes (no NUL). */
static inline void dist_wr_str(DistWr *w, const char *s)
{
    size_t n = s ? strlen(s) : 0;

    dist_wr_u32(w, n);
    dist_wr_bytes(w, s, n);
}

static inline uint8_t *dist_wr_data(DistWr *w)
{
    return w->buf->data;
}

static inline size_t dist_wr_len(DistWr *w)
{
    return w->buf->len;
}

static inline void dist_wr_free(DistWr *w)
{
    g_byte_array_free(w->buf, true);
    w->buf = NULL;
}

typedef struct DistRd {
    const uint8_t *p;
    size_t left;
    bool bad;
} DistRd;

static inline void dist_rd_init(DistRd *r, const uint8_t *p, size_t len)
{
    r->p = p;
    r->left = len;
    r->bad = false;
}

/* @n bytes, or NULL (and the reader is bad from now on). */
static inline const uint8_t *dist_rd_bytes(DistRd *r, size_t n)
{
    const uint8_t *p = r->p;

    if (r->bad || n > r->left) {
        r->bad = true;
        return NULL;
    }
    r->p += n;
    r->left -= n;
    return p;
}

static inline uint32_t dist_rd_u32(DistRd *r)
{
    const uint8_t *b = dist_rd_bytes(r, 4);
    uint32_t v = 0;

    for (int i = 0; b && i < 4; i++) {
        v |= (uint32_t)b[i] << (8 * i);
    }
    return v;
}

static inline uint64_t dist_rd_u64(DistRd *r)
{
    const uint8_t *b = dist_rd_bytes(r, 8);
    uint64_t v = 0;

    for (int i = 0; b && i < 8; i++) {
        v |= (uint64_t)b[i] << (8 * i);
    }
    return v;
}

/* A string written by dist_wr_str(), as a new g_malloc'ed C string. */
static inline char *dist_rd_str(DistRd *r)
{
    uint32_t n = dist_rd_u32(r);
    const uint8_t *b = dist_rd_bytes(r, n);

    return b ? g_strndup((const char *)b, n) : NULL;
}

/* True when every read succeeded and nothing is left over. */
static inline bool dist_rd_done(const DistRd *r)
{
    return !r->bad && r->left == 0;
}

#endif /* LINUX_USER_DIST_WIRE_H */
