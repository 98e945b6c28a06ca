/* SPDX-License-Identifier: Apache-2.0 */
/*
 * master - the supervising process: opens the listening sockets, starts one
 * worker per enabled class, restarts them, reloads, stops.
 */
#ifndef TENANTD_MASTER_H
#define TENANTD_MASTER_H

#include "conf.h"

/* Run the master with a checked configuration; returns the exit code. */
int	master_run(struct conf *);

#endif
