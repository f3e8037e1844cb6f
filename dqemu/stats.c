/*
 * stats.c - printing of the per-node counters (DqStats).
 *
 * The counters themselves are defined by DQ_STATS_LIST in dqemu.h; this
 * file turns the same list into the --stats report and the --stats-json
 * object, so neither can drift from counting.
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

void dq_stats_print_json(FILE *out, const DqStats *stats)
{
    const char *sep = "";

#define DQ_STATS_JSON(name, unit, help)                                     \
    fprintf(out, "%s\"%s\": %" PRIu64, sep, #name,                         \
            __atomic_load_n(&stats->name, __ATOMIC_RELAXED));              \
    sep = ", ";
    fputc('{', out);
    DQ_STATS_LIST(DQ_STATS_JSON)
    fputc('}', out);
#undef DQ_STATS_JSON
}

void dq_stats_sum(DqStats *sum, const DqStats *add)
{
#define DQ_STATS_SUM(name, unit, help) sum->name += add->name;
    DQ_STATS_LIST(DQ_STATS_SUM)
#undef DQ_STATS_SUM
}

void dq_json_print_string(FILE *out, const char *s)
{
    const unsigned char *p;

    fputc('"', out);
    for (p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"':
            fputs("\\\"", out);
            break;
        case '\\':
            fputs("\\\\", out);
            break;
        case '\n':
            fputs("\\n", out);
            break;
        case '\t':
            fputs("\\t", out);
            break;
        default:
            /* RFC 8259: every other character below 0x20 as \u00XX. */
            if (*p < 0x20 || *p == 0x7f) {
                fprintf(out, "\\u%04x", *p);
            } else {
                fputc(*p, out);
            }
            break;
        }
    }
    fputc('"', out);
}
