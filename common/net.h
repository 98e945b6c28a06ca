/* SPDX-License-Identifier: Apache-2.0 */
/*
 * net - listening sockets, opened by the master and handed to workers,
 * and the pause a worker's accept takes when it runs out of descriptors.
 */
#ifndef TENANTD_NET_H
#define TENANTD_NET_H

#include <stdint.h>
#include <sys/time.h>

#include "conf.h"

/* A non-blocking, close-on-exec listening TCP socket, or -1 (errno set). */
int	net_listen(const struct conf_addr *, int backlog);

/*
 * Out of descriptors (or memory), a listener stays readable and accept
 * fails at once, again and again: the server stops accepting for a pause
 * (100 ms, doubling to 1 s while it keeps failing), and logs the trouble
 * at most once a minute and its end once.  Every server that accepts
 * (common/http.c, common/sess.c) keeps one; zeroed means accepting.
 */
struct net_pause {
	uint64_t	pause_us;	/* 0: accepting */
	uint64_t	failed_us;	/* when the trouble began */
	uint64_t	log_us;		/* no warning before this */
	int		logged;		/* its end is to be logged */
};

/* accept failed with err: the pause to take before accepting again */
struct timeval	net_pause_failed(struct net_pause *, const char *who, int err,
		    unsigned nconns);
/* accept worked: the end of a trouble is logged once */
void		net_pause_ok(struct net_pause *, const char *who);

#endif
