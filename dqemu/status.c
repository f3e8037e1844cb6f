/*
 * status.c - DqStatus texts.
 *
 * Kept apart so every module can report errors with one vocabulary.
 */
#include "dqemu.h"

#include <stdarg.h>

static const char *const dq_status_text[DQ_STATUS__COUNT] = {
#define DQ_STATUS_TEXT(name, text) [name] = text,
    DQ_STATUS_LIST(DQ_STATUS_TEXT)
#undef DQ_STATUS_TEXT
};

const char *dq_status_str(DqStatus status)
{
    if ((unsigned)status >= DQ_STATUS__COUNT) {
        return "unknown status";
    }
    return dq_status_text[status];
}

DqStatus dq_fail(char *err, size_t errlen, DqStatus status,
                 const char *fmt, ...)
{
    va_list ap;

    if (err != NULL && errlen > 0) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return status;
}
