/* SPDX-License-Identifier: Apache-2.0 */
/*
 * stats worker - real-time statistics for the tenant (port 2060).
 */
#ifndef TENANTD_STATS_WORKER_H
#define TENANTD_STATS_WORKER_H

#include "worker.h"

extern const struct worker_ops stats_worker_ops;

#endif
