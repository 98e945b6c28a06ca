/* SPDX-License-Identifier: Apache-2.0 */
/*
 * net - resolve a configured address and listen on it; pause accept out
 * of descriptors.
 */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "net.h"
#include "util.h"

#define PAUSE_MIN_US	100000
#define PAUSE_MAX_US	1000000
#define PAUSE_LOG_US	60000000	/* one warning a minute at most */

/* net_listen - bind and listen on addr with SO_REUSEADDR */
int
net_listen(const struct conf_addr *addr, int backlog)
{
	struct addrinfo	 hints, *res, *ai;
	char		 port[8];
	int		 fd = -1, one = 1, err = EADDRNOTAVAIL;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	snprintf(port, sizeof(port), "%d", addr->port);
	if (getaddrinfo(addr->host, port, &hints, &res) != 0) {
		errno = EADDRNOTAVAIL;
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK |
		    SOCK_CLOEXEC, ai->ai_protocol);
		if (fd == -1) {
			err = errno;
			continue;
		}
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
		    listen(fd, backlog) == 0)
			break;
		err = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd == -1)
		errno = err;
	return fd;
}

/* net_pause_failed - begin or lengthen the pause; warn once a minute */
struct timeval
net_pause_failed(struct net_pause *p, const char *who, int err,
    unsigned nconns)
{
	uint64_t	now = now_mono_us();

	if (p->pause_us == 0) {
		p->pause_us = PAUSE_MIN_US;
		p->failed_us = now;
		if (now >= p->log_us) {
			log_warnx("%s: accept: %s, with %u connections open; "
			    "accepting again in a moment (not logged again "
			    "for a minute)", who, strerror(err), nconns);
			p->log_us = now + PAUSE_LOG_US;
			p->logged = 1;
		}
	} else if ((p->pause_us *= 2) > PAUSE_MAX_US)
		p->pause_us = PAUSE_MAX_US;
	return util_tv_us(p->pause_us);
}

/* net_pause_ok - accept works (again) */
void
net_pause_ok(struct net_pause *p, const char *who)
{
	if (p->pause_us == 0)
		return;
	if (p->logged)
		log_info("%s: accepting connections again after %.1f s", who,
		    (double)(now_mono_us() - p->failed_us) / 1e6);
	p->pause_us = 0;
	p->logged = 0;
}
