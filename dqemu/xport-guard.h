/*
 * xport-guard.h - who may talk to a node's socket (private to xport.c).
 *
 * The cluster port is the way into a guest's memory and its system calls,
 * so a connection that is not a member must be turned away before any
 * dqemu message of it is decoded.  ZeroMQ CURVE does the turning away
 * (clusterkey.h: every member holds the cluster's key pair); this file
 * sets the socket up for it, answers libzmq's authentication requests
 * (ZAP, RFC 27) and watches the socket's monitor, so that every refusal
 * is reported with the address it came from, and a node whose own
 * handshake is refused learns so at once instead of timing out.
 *
 * libzmq says which connection a handshake failure belongs to only by
 * order: a connection's ACCEPTED/CONNECTED event (which has its fd) comes
 * before its handshake result (which has none), and one libzmq I/O thread
 * emits them all.  Results are matched to the oldest connection still
 * handshaking; with several handshakes at once an address may be
 * misattributed, never a refusal lost.  A refused peer's connection may
 * be closed within tens of microseconds, so the guard has a thread of its
 * own that blocks on the monitor and reads the peer's address from the
 * fd at once (when even that is too late, the address is "an unknown
 * address").  The same thread answers ZAP requests.
 *
 * Context: every call on the thread that owns the node's socket; reports
 * come on the guard's thread.
 */
#ifndef DQEMU_XPORT_GUARD_H
#define DQEMU_XPORT_GUARD_H

#include "dqemu.h"

typedef struct DqGuard DqGuard;

typedef enum DqGuardEvent {
    /* We turned a peer away: @addr is where it came from. */
    DQ_GUARD_REFUSED,
    /* A peer we connected to turned us away (or dropped us mid-handshake). */
    DQ_GUARD_REJECTED_US,
} DqGuardEvent;

typedef void (*DqGuardReport)(void *opaque, DqGuardEvent ev,
                              const char *addr, const char *why);

/*
 * Before @sock (a socket of @ctx) binds or connects: with a key pair
 * (Z85), make it a CURVE server with that pair and start the ZAP handler
 * that admits only clients holding the same pair; with @secret NULL, no
 * mechanism.  The monitor runs in both cases.
 */
DqStatus dq_guard_attach(DqGuard **out, void *ctx, void *sock,
                         const char *secret, const char *public_key,
                         DqGuardReport report, void *opaque,
                         char *err, size_t errlen);

/*
 * After @sock has bound: make its later connections CURVE clients of the
 * same pair (libzmq copies a socket's options at each bind and connect).
 * A no-op without a key.
 */
DqStatus dq_guard_connect_mode(DqGuard *g, void *sock, char *err,
                               size_t errlen);

/*
 * Stop watching @sock, on the thread that owns it, just before it is
 * closed: a monitor left attached to a closing socket can keep the
 * context from ever terminating (seen: zmq_ctx_term() waiting forever).
 * NULL is a no-op.
 */
void dq_guard_detach(DqGuard *g, void *sock);

/*
 * Stop the guard's thread and close its sockets, after the main socket
 * is closed and before its context ends.  NULL is a no-op.
 */
void dq_guard_close(DqGuard *g);

#endif /* DQEMU_XPORT_GUARD_H */
