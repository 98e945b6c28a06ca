/* SPDX-License-Identifier: Apache-2.0 */
/*
 * worker - the runtime every worker process runs in: its event loop, its
 * channel to the master (heartbeats, reload, shutdown, new sockets, log
 * reopen) and its signals.  A worker supplies a struct worker_ops; the
 * runtime calls it and the worker never talks to the master itself.
 */
#ifndef TENANTD_WORKER_H
#define TENANTD_WORKER_H

#include <stddef.h>

#include "conf.h"

struct event_base;

struct worker_ops {
	/*
	 * Start serving on listen_fd (owned by the worker from now on).
	 * Call worker_ready() once clients can be served.  Return -1 on a
	 * failure that a restart may cure (exit 1), -2 on a bad
	 * configuration (exit 2: the master will not retry it blindly).
	 */
	int	(*start)(struct event_base *, const struct conf *, int listen_fd);
	/* Reload, first phase: could next be applied?  0, or -1 and why. */
	int	(*reload_check)(const struct conf *next, char *why, size_t);
	/* Reload, second phase: apply next.  Must not fail. */
	void	(*reload_apply)(const struct conf *next, const struct conf *prev);
	/* Serve this listening socket instead of the old one (owned). */
	void	(*listen)(int fd);
	/* Graceful stop: stop accepting, finish, then call worker_exit(0). */
	void	(*stop)(void);
	/* Free everything, just before exit. */
	void	(*cleanup)(void);
};

/* Run a worker; never returns.  conf becomes the runtime's. */
void		 worker_run(enum worker_class, const struct worker_ops *,
		    struct conf *, int chan_fd, int listen_fd)
		    __attribute__((noreturn));
/* Tell the master this worker serves. */
void		 worker_ready(void);
/* The configuration in force; replaced whole on reload. */
const struct conf *worker_conf(void);
void		 worker_exit(int code) __attribute__((noreturn));
/*
 * Give up: log why, tell the master (IPC_FATAL: it logs the reason
 * beside the exit), and exit with code (2: bad configuration).
 */
void		 worker_fatalx(int code, const char *, ...)
		    __attribute__((format(printf, 2, 3), noreturn));

#endif
