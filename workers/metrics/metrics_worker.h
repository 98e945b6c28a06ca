/* SPDX-License-Identifier: Apache-2.0 */
/*
 * metrics worker - /metrics, /healthz, /readyz and /tenant/health.
 */
#ifndef TENANTD_METRICS_WORKER_H
#define TENANTD_METRICS_WORKER_H

#include "worker.h"

extern const struct worker_ops metrics_worker_ops;

#endif
