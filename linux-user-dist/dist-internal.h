/*
 * dist-internal.h - state shared between the linux-user-dist files.
 */
#ifndef LINUX_USER_DIST_INTERNAL_H
#define LINUX_USER_DIST_INTERNAL_H

#include "dqemu.h"

/* This node's options, final once dist_start() has run. */
extern DqOptions dist_options;

/* This node's counters (bumped with dq_stats_add from any thread). */
extern DqStats dist_stats;

#endif /* LINUX_USER_DIST_INTERNAL_H */
