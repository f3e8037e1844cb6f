/*
 * launch.h - how the nodes of a cluster get started.
 *
 * Two ways besides local workers: the master runs a launcher command
 * (ssh by default) once per remote slot, or every rank of an srun/mpirun
 * job runs the same dqemu command line and finds its place in the cluster
 * from the launcher's environment.  No shell and no MPI library is
 * involved: the launcher template is split into words here, and ranks are
 * read from environment variables only.
 */
#ifndef DQEMU_LAUNCH_H
#define DQEMU_LAUNCH_H

#include "dqemu.h"

#define DQ_LAUNCHER_DEFAULT "ssh -o BatchMode=yes"

/*
 * Split @cmd into words as a POSIX shell would, without running one and
 * without any expansion: blanks separate words; 'single quotes' keep
 * everything literally; "double quotes" keep everything but a backslash
 * before " \ $ ` or newline; an unquoted backslash keeps the next
 * character.  Errors: an unterminated quote, a trailing backslash, no
 * words.  *@words is a NULL-terminated malloc'd vector
 * (dq_words_free()).
 */
DqStatus dq_split_words(const char *cmd, char ***words, size_t *count,
                        char *err, size_t errlen);

void dq_words_free(char **words);

/*
 * The argv that starts a worker on @host: the words of @launcher, with
 * every literal "{host}" inside a word replaced by @host (when no word has
 * "{host}", @host is appended as one more word), then @remote_bin, then
 * @worker_args (NULL-terminated).  NULL-terminated, malloc'd
 * (dq_words_free()).
 */
DqStatus dq_launcher_argv(const char *launcher, const char *host,
                          const char *remote_bin,
                          const char *const *worker_args, char ***argv,
                          char *err, size_t errlen);

/* Where a rank's place in the job came from. */
typedef enum DqRankSource {
    DQ_RANK_NONE,               /* no launcher environment: not a rank */
    DQ_RANK_SLURM,              /* SLURM_PROCID / SLURM_NTASKS */
    DQ_RANK_OMPI,               /* OMPI_COMM_WORLD_RANK / _SIZE */
    DQ_RANK_PMI,                /* PMI_RANK / PMI_SIZE (MPICH, Intel MPI) */
} DqRankSource;

typedef struct DqRank {
    DqRankSource source;
    unsigned rank, size;        /* rank < size <= DQ_MAX_NODES */
    /* Slurm only (else NULL/0): for the default master endpoint. */
    const char *slurm_nodelist; /* SLURM_STEP_NODELIST (or SLURM_NODELIST) */
    unsigned long slurm_job_id, slurm_step_id;
    bool slurm_ids;             /* both ids were present and numeric */
} DqRank;

/*
 * Read this process's rank from the environment (through @get_env).
 * Open MPI's variables win, then PMI's, then Slurm's: mpirun inside a
 * Slurm allocation leaves the Slurm variables of its own daemons, and an
 * srun task with PMI has the same rank in both.  Slurm's count only in a
 * job step (SLURM_STEP_ID a step number), not in a batch script or an
 * salloc shell, where dqemu runs as one plain process.  A size of 1
 * from the first family present, or no variables at all, give
 * DQ_RANK_NONE.  Errors name the variable: not a
 * number, rank not below size, size over DQ_MAX_NODES, one variable of a
 * pair without the other.
 */
DqStatus dq_rank_from_env(const char *(*get_env)(const char *name),
                          DqRank *out, char *err, size_t errlen);

const char *dq_rank_source_str(DqRankSource s);

/*
 * The TCP port a Slurm step's master listens on when --master is not
 * given: derived from the job and step ids, in 20000..59999, so that two
 * steps of one job (and most concurrent jobs) do not collide.
 */
unsigned dq_slurm_master_port(unsigned long job_id, unsigned long step_id);

#endif /* DQEMU_LAUNCH_H */
