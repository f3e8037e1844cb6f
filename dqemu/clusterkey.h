/*
 * clusterkey.h - the secret that makes a process a member of a cluster.
 *
 * Every connection between nodes is ZeroMQ CURVE.  A cluster has one
 * secret, a CURVE secret key; its public key is derived from it.  Each
 * node is both a CURVE server (with that key pair) and a client (with the
 * same pair), and a node admits only clients whose public key is the
 * cluster's: knowing the secret is membership.  The secret never appears
 * on a command line: it is read from a file only its owner can read, or
 * from a launcher's standard input.
 *
 * File format: one line "dqemu-cluster-key-v1 " followed by the secret in
 * Z85 (40 characters) and a newline; '#' lines are comments.
 */
#ifndef DQEMU_CLUSTERKEY_H
#define DQEMU_CLUSTERKEY_H

#include "dqemu.h"

#define DQ_CLUSTER_KEY_Z85_LEN 40
#define DQ_CLUSTER_KEY_TAG "dqemu-cluster-key-v1"

typedef struct DqClusterKey {
    char secret[DQ_CLUSTER_KEY_Z85_LEN + 1];   /* Z85, NUL-terminated */
    char public_[DQ_CLUSTER_KEY_Z85_LEN + 1];  /* derived from secret */
} DqClusterKey;

/* A fresh random key (libzmq's zmq_curve_keypair, libsodium's RNG). */
DqStatus dq_cluster_key_generate(DqClusterKey *key, char *err, size_t errlen);

/*
 * Write @key to a new file @path, mode 0600 (O_EXCL: an existing file is
 * an error, never overwritten).  Errors name the path.
 */
DqStatus dq_cluster_key_write_file(const char *path, const DqClusterKey *key,
                                   char *err, size_t errlen);

/*
 * Parse a key file's text (also the line a launcher writes on a worker's
 * stdin).  Errors: "not a dqemu cluster key", "malformed key".
 */
DqStatus dq_cluster_key_parse(const char *text, DqClusterKey *key,
                              char *err, size_t errlen);

/*
 * Read and check @path: missing, unreadable, not a regular file,
 * readable or writable by group or others (the message says to chmod 600),
 * malformed: each an error whose text starts with the path.
 */
DqStatus dq_cluster_key_load(const char *path, DqClusterKey *key,
                             char *err, size_t errlen);

/* The text dq_cluster_key_parse() takes, for a launcher's stdin. */
void dq_cluster_key_format(const DqClusterKey *key, char *out, size_t outlen);

#endif /* DQEMU_CLUSTERKEY_H */
