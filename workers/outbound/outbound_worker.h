/* SPDX-License-Identifier: Apache-2.0 */
/*
 * outbound worker - campaigns, calling lists and the dialler (port 5050).
 */
#ifndef TENANTD_OUTBOUND_WORKER_H
#define TENANTD_OUTBOUND_WORKER_H

#include "worker.h"

extern const struct worker_ops outbound_worker_ops;

#endif
