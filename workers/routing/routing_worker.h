/* SPDX-License-Identifier: Apache-2.0 */
/*
 * routing worker - virtual queues, agent reservation, routing points
 * (port 5580).
 */
#ifndef TENANTD_ROUTING_WORKER_H
#define TENANTD_ROUTING_WORKER_H

#include "worker.h"

extern const struct worker_ops routing_worker_ops;

#endif
