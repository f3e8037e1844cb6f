/*
 * stats.c - printing of the per-node counters (DqStats).
 *
 * The counters themselves are defined by DQ_STATS_LIST in dqemu.h; this
 * file turns the same list into the --stats report.
 */
#include "dqemu.h"

#include <inttypes.h>

void dq_stats_print(FILE *out, unsigned node, const DqStats *stats)
{
#define DQ_STATS_PRINT(name, unit, help)                                    \
    fprintf(out, "dqemu: node %u: stats: %-18s %12" PRIu64 " %s\n",        \
            node, #name, __atomic_load_n(&stats->name, __ATOMIC_RELAXED),  \
            unit);
    DQ_STATS_LIST(DQ_STATS_PRINT)
#undef DQ_STATS_PRINT
}
