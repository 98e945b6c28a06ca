/* SPDX-License-Identifier: Apache-2.0 */
/*
 * net - listening sockets, opened by the master and handed to workers.
 */
#ifndef TENANTD_NET_H
#define TENANTD_NET_H

#include "conf.h"

/* A non-blocking, close-on-exec listening TCP socket, or -1 (errno set). */
int	net_listen(const struct conf_addr *, int backlog);

#endif
