/*
 * hostlist.h - which host each node of a cluster runs on.
 *
 * A multi-host run is described the way MPI users already describe one:
 * an Open MPI hostfile ("host [slots=K]" a line, '#' comments), a
 * comma-separated --hosts list, or Slurm's compressed node list
 * ("node[01-04,07],gpu3").  Nodes fill the slots in order, as ranks do
 * under mpirun: node 0 (the master) takes the first slot.  Parsing only:
 * nothing here resolves a name or opens a connection.
 */
#ifndef DQEMU_HOSTLIST_H
#define DQEMU_HOSTLIST_H

#include "dqemu.h"

/* Longest host name accepted (DNS's limit). */
#define DQ_HOST_NAME_MAX 255
/* Largest slots=K accepted on one line. */
#define DQ_HOST_SLOTS_MAX DQ_MAX_NODES

typedef struct DqHost {
    char name[DQ_HOST_NAME_MAX + 1];
    unsigned slots;             /* >= 1 */
} DqHost;

typedef struct DqHostList {
    DqHost *hosts;              /* malloc'd; dq_hostlist_free() */
    size_t count;
} DqHostList;

/*
 * Parse a hostfile's text: one host a line, optional "slots=K" (K >= 1,
 * default 1; "max_slots=K" is accepted and ignored, as Open MPI's own
 * tools do for launching), '#' to end of line is a comment, blank lines
 * are skipped.  A host named twice adds its slots to its first line's, as
 * mpirun does.  Errors name the line: "line 3: slots=0: a host needs at
 * least one slot", "line 5: unknown attribute 'cpus=4'", "no hosts".
 */
DqStatus dq_hostfile_parse(const char *text, DqHostList *out,
                           char *err, size_t errlen);

/* Read @path and parse it; errors start with the path. */
DqStatus dq_hostfile_load(const char *path, DqHostList *out,
                          char *err, size_t errlen);

/*
 * Parse a --hosts list: "h1,h2,h3", each "host" or "host:K" (K slots,
 * mpirun's --host syntax).  Empty items are errors.
 */
DqStatus dq_hosts_parse(const char *list, DqHostList *out,
                        char *err, size_t errlen);

/*
 * Expand Slurm's node list syntax ("a[1-3,07],b,c[10-11]" -> a1 a2 a3 a07
 * b c10 c11; zero padding follows the range's first number) and give the
 * first host (what a Slurm step's rank 0 runs on).
 */
DqStatus dq_slurm_nodelist_first(const char *nodelist, char *out,
                                 size_t outlen, char *err, size_t errlen);

/*
 * Node k's host for k in 0..@nodes-1, filling slots in order.  @nodes 0
 * means every slot.  Errors: more nodes than slots, more than
 * DQ_MAX_NODES.  *@count is the node count used.  The names point into
 * @l.
 */
DqStatus dq_hostlist_assign(const DqHostList *l, unsigned nodes,
                            const char *node_host[DQ_MAX_NODES],
                            unsigned *count, char *err, size_t errlen);

void dq_hostlist_free(DqHostList *l);

#endif /* DQEMU_HOSTLIST_H */
