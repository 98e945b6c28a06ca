/* SPDX-License-Identifier: Apache-2.0 */
/*
 * config worker - the tenant's configuration and provisioning API.
 */
#ifndef TENANTD_CONFIG_WORKER_H
#define TENANTD_CONFIG_WORKER_H

#include "worker.h"

extern const struct worker_ops config_worker_ops;

#endif
