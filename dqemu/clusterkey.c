/*
 * clusterkey.c - the cluster's CURVE secret: made, written, read, checked.
 *
 * libzmq does the cryptography (zmq_curve_keypair() draws from libsodium,
 * zmq_curve_public() derives the public key); this file owns the key file:
 * created with O_EXCL at mode 0600, refused when group or others can get
 * at it (as ssh refuses a private key), strictly parsed.  Secrets never
 * appear in an error message, and buffers that held one are wiped.
 */
#include "clusterkey.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zmq.h>

/* A key file is a few lines; anything larger is not one. */
#define DQ_CLUSTER_KEY_FILE_MAX 4096

/* The secret decoded: a CURVE key is 32 bytes, 40 Z85 characters. */
#define DQ_CLUSTER_KEY_BYTES 32

/* What the key file says above the key, for whoever opens it. */
#define DQ_CLUSTER_KEY_COMMENT                                              \
    "# dqemu cluster key: a secret.  Whoever can read it can join the\n"    \
    "# cluster and run code on every host in it.  Do not share it.\n"

/* ZeroMQ's Z85 alphabet (RFC 32/Z85), in value order. */
static const char z85_alphabet[] =
    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
    ".-:+=^!/*?&<>()[]{}@%$#";

static DqStatus curve_check(char *err, size_t errlen)
{
    if (!zmq_has("curve")) {
        return dq_fail(err, errlen, DQ_ERR_NOSYS,
                         "this libzmq was built without CURVE security "
                         "(zmq_has(\"curve\") is false); cluster keys need "
                         "a libzmq built with libsodium");
    }
    return DQ_OK;
}

/* The message for a failed open() or read() of @path. */
static DqStatus path_errno(char *err, size_t errlen, const char *path, int e)
{
    return dq_fail(err, errlen, DQ_ERR_USAGE, "%s: %s", path,
                     e == ENOENT ? "no such file" :
                     e == EACCES ? "permission denied" : strerror(e));
}

/*
 * True when the 40 characters at @s are Z85 that decodes to 32 bytes:
 * every character in the alphabet and no 5-character group above
 * 2^32 - 1 (libzmq's decoder does not check that in every version).
 */
static bool z85_secret_ok(const char *s)
{
    size_t i, j;

    for (i = 0; i < DQ_CLUSTER_KEY_Z85_LEN; i += 5) {
        uint64_t v = 0;

        for (j = 0; j < 5; j++) {
            const char *c = s[i + j] ? strchr(z85_alphabet, s[i + j]) : NULL;

            if (c == NULL) {
                return false;
            }
            v = v * 85 + (uint64_t)(c - z85_alphabet);
        }
        if (v > UINT32_MAX) {
            return false;
        }
    }
    return true;
}

DqStatus dq_cluster_key_generate(DqClusterKey *key, char *err, size_t errlen)
{
    DqStatus st = curve_check(err, errlen);

    if (st != DQ_OK) {
        return st;
    }
    if (zmq_curve_keypair(key->public_, key->secret) != 0) {
        return dq_fail(err, errlen, DQ_ERR_XPORT_ZMQ,
                         "zmq_curve_keypair: %s", zmq_strerror(zmq_errno()));
    }
    return DQ_OK;
}

void dq_cluster_key_format(const DqClusterKey *key, char *out, size_t outlen)
{
    int n;

    if (outlen == 0) {
        return;
    }
    n = snprintf(out, outlen, "%s %s\n", DQ_CLUSTER_KEY_TAG, key->secret);
    if (n < 0 || (size_t)n >= outlen) {
        /* Half a key is no key: give nothing rather than a prefix. */
        explicit_bzero(out, outlen);
    }
}

/* Write all of @buf (@len bytes) to @fd; false with errno set on failure. */
static bool write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            if (n == 0) {
                errno = EIO;
            }
            return false;
        }
        buf += n;
        len -= (size_t)n;
    }
    return true;
}

DqStatus dq_cluster_key_write_file(const char *path, const DqClusterKey *key,
                                   char *err, size_t errlen)
{
    char text[sizeof(DQ_CLUSTER_KEY_COMMENT) + sizeof(DQ_CLUSTER_KEY_TAG) +
              DQ_CLUSTER_KEY_Z85_LEN + 8];
    size_t head = sizeof(DQ_CLUSTER_KEY_COMMENT) - 1;
    const char *what;
    int fd, e;

    if (strlen(key->secret) != DQ_CLUSTER_KEY_Z85_LEN ||
        !z85_secret_ok(key->secret)) {
        return dq_fail(err, errlen, DQ_ERR_USAGE,
                         "%s: not writing a malformed key", path);
    }
    memcpy(text, DQ_CLUSTER_KEY_COMMENT, head);
    dq_cluster_key_format(key, text + head, sizeof(text) - head);

    fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC | O_NOCTTY, 0600);
    if (fd < 0) {
        e = errno;
        explicit_bzero(text, sizeof(text));
        if (e == EEXIST) {
            return dq_fail(err, errlen, DQ_ERR_USAGE,
                             "%s: already exists (a key file is never "
                             "overwritten)", path);
        }
        return dq_fail(err, errlen, DQ_ERR_USAGE, "%s: %s", path,
                         e == EACCES ? "permission denied" : strerror(e));
    }
    /* 0600 exactly, whatever the umask took away from the owner. */
    if (fchmod(fd, 0600) != 0) {
        what = "fchmod";
        goto fail;
    }
    if (!write_all(fd, text, strlen(text))) {
        what = "write";
        goto fail;
    }
    if (fsync(fd) != 0) {
        what = "fsync";
        goto fail;
    }
    explicit_bzero(text, sizeof(text));
    if (close(fd) != 0) {
        e = errno;
        unlink(path);
        return dq_fail(err, errlen, DQ_ERR_USAGE, "%s: close: %s", path,
                         strerror(e));
    }
    return DQ_OK;

fail:
    /* The file is ours (O_EXCL): leave no half-written key behind. */
    e = errno;
    explicit_bzero(text, sizeof(text));
    close(fd);
    unlink(path);
    return dq_fail(err, errlen, DQ_ERR_USAGE, "%s: %s: %s", path, what,
                     strerror(e));
}

static bool is_key_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

DqStatus dq_cluster_key_parse(const char *text, DqClusterKey *key,
                              char *err, size_t errlen)
{
    const size_t tag_len = sizeof(DQ_CLUSTER_KEY_TAG) - 1;
    char secret[DQ_CLUSTER_KEY_Z85_LEN + 1];
    char public_[DQ_CLUSTER_KEY_Z85_LEN + 1];
    const char *p = text ? text : "";
    bool found = false;
    DqStatus st;

    st = curve_check(err, errlen);
    if (st != DQ_OK) {
        return st;
    }
    while (*p != '\0') {
        const char *eol = strchr(p, '\n');
        const char *s, *e;

        if (eol == NULL) {
            eol = p + strlen(p);
        }
        while (p < eol && is_key_blank(*p)) {
            p++;
        }
        if (p == eol || *p == '#') {
            p = *eol ? eol + 1 : eol;
            continue;
        }
        if (found) {
            st = dq_fail(err, errlen, DQ_ERR_USAGE,
                           "malformed key: more text after the key line");
            goto out;
        }
        if ((size_t)(eol - p) < tag_len ||
            memcmp(p, DQ_CLUSTER_KEY_TAG, tag_len) != 0 ||
            (p + tag_len < eol && !is_key_blank(p[tag_len]))) {
            st = dq_fail(err, errlen, DQ_ERR_USAGE,
                           "not a dqemu cluster key");
            goto out;
        }
        for (s = p + tag_len; s < eol && is_key_blank(*s); s++) {
        }
        for (e = s; e < eol && !is_key_blank(*e); e++) {
        }
        if (s == e) {
            st = dq_fail(err, errlen, DQ_ERR_USAGE,
                           "malformed key: no secret after %s",
                           DQ_CLUSTER_KEY_TAG);
            goto out;
        }
        if ((size_t)(e - s) != DQ_CLUSTER_KEY_Z85_LEN) {
            st = dq_fail(err, errlen, DQ_ERR_USAGE,
                           "malformed key: the secret has %zu characters, "
                           "not %d", (size_t)(e - s), DQ_CLUSTER_KEY_Z85_LEN);
            goto out;
        }
        memcpy(secret, s, DQ_CLUSTER_KEY_Z85_LEN);
        secret[DQ_CLUSTER_KEY_Z85_LEN] = '\0';
        if (!z85_secret_ok(secret)) {
            st = dq_fail(err, errlen, DQ_ERR_USAGE,
                           "malformed key: the secret is not Z85");
            goto out;
        }
        for (; e < eol && is_key_blank(*e); e++) {
        }
        if (e != eol) {
            st = dq_fail(err, errlen, DQ_ERR_USAGE,
                           "malformed key: more text after the secret");
            goto out;
        }
        found = true;
        p = *eol ? eol + 1 : eol;
    }
    if (!found) {
        st = dq_fail(err, errlen, DQ_ERR_USAGE, "not a dqemu cluster key");
        goto out;
    }
    {
        uint8_t raw[DQ_CLUSTER_KEY_BYTES];
        bool decoded = zmq_z85_decode(raw, secret) != NULL;

        explicit_bzero(raw, sizeof(raw));
        if (!decoded) {
            st = dq_fail(err, errlen, DQ_ERR_USAGE,
                           "malformed key: the secret is not Z85");
            goto out;
        }
    }
    if (zmq_curve_public(public_, secret) != 0) {
        st = dq_fail(err, errlen, DQ_ERR_XPORT_ZMQ, "zmq_curve_public: %s",
                       zmq_strerror(zmq_errno()));
        goto out;
    }
    memcpy(key->secret, secret, sizeof(secret));
    memcpy(key->public_, public_, sizeof(public_));
    st = DQ_OK;
out:
    explicit_bzero(secret, sizeof(secret));
    return st;
}

DqStatus dq_cluster_key_load(const char *path, DqClusterKey *key,
                             char *err, size_t errlen)
{
    char buf[DQ_CLUSTER_KEY_FILE_MAX + 2];
    char why[DQ_ERRBUF_SIZE];
    size_t len = 0;
    struct stat st;
    DqStatus status;
    int fd;

    /*
     * Symlinks are followed (a key may live in a shared config tree); the
     * checks are on what was opened, so nothing can swap the file between
     * check and read.  O_NONBLOCK: a FIFO must not hang us before fstat
     * refuses it.
     */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) {
        return path_errno(err, errlen, path, errno);
    }
    if (fstat(fd, &st) != 0) {
        int e = errno;

        close(fd);
        return path_errno(err, errlen, path, e);
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return dq_fail(err, errlen, DQ_ERR_USAGE, "%s: not a regular file",
                         path);
    }
    if (st.st_mode & 077) {
        close(fd);
        return dq_fail(err, errlen, DQ_ERR_USAGE,
                         "%s: %s by others (mode %04o); run chmod 600 %s",
                         path,
                         (st.st_mode & 044) ? "readable" :
                         (st.st_mode & 022) ? "writable" : "usable",
                         (unsigned)(st.st_mode & 07777), path);
    }
    for (;;) {
        ssize_t n = read(fd, buf + len, sizeof(buf) - 1 - len);

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            int e = errno;

            close(fd);
            explicit_bzero(buf, sizeof(buf));
            return path_errno(err, errlen, path, e);
        }
        len += (size_t)n;
        if (n == 0 || len == sizeof(buf) - 1) {
            break;
        }
    }
    close(fd);
    if (len > DQ_CLUSTER_KEY_FILE_MAX) {
        explicit_bzero(buf, sizeof(buf));
        return dq_fail(err, errlen, DQ_ERR_USAGE,
                         "%s: malformed key: larger than %d bytes", path,
                         DQ_CLUSTER_KEY_FILE_MAX);
    }
    if (memchr(buf, '\0', len) != NULL) {
        explicit_bzero(buf, sizeof(buf));
        return dq_fail(err, errlen, DQ_ERR_USAGE,
                         "%s: malformed key: not a text file", path);
    }
    buf[len] = '\0';
    status = dq_cluster_key_parse(buf, key, why, sizeof(why));
    explicit_bzero(buf, sizeof(buf));
    if (status != DQ_OK) {
        return dq_fail(err, errlen, status, "%s: %s", path, why);
    }
    return DQ_OK;
}
