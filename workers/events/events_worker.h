/* SPDX-License-Identifier: Apache-2.0 */
/*
 * events worker - real-time call control for the tenant (port 8000).
 */
#ifndef TENANTD_EVENTS_WORKER_H
#define TENANTD_EVENTS_WORKER_H

#include "worker.h"

extern const struct worker_ops events_worker_ops;

#endif
