/* SPDX-License-Identifier: Apache-2.0 */
/*
 * svc - the frame of a worker that serves the session protocol (events
 * 8000, stats 2060, outbound 5050): what each such worker does the same
 * way, written once, so that its main file says only what is particular
 * to it.
 *
 *   - the configuration: a PostgreSQL connection of its own, the change
 *     follower (common/cfgfollow.c) feeding the process's cache
 *     (common/cache.c); the worker is ready once it is loaded;
 *   - RequestOpen: the token looked up (common/auth.c) and the session's
 *     rights kept true while it lasts (common/rights.c): a revoked token,
 *     a disabled or deleted principal end it; the worker hears when a
 *     session's grants change, to withdraw what it may no longer see;
 *   - the listener (common/sess.c) with the worker's limits, and two
 *     metrics: tenant_<name>_clients (sessions open) and
 *     tenantd_<name>_slow_clients_total (cut for not reading);
 *   - reload (limits, admin token), a new listening socket, the graceful
 *     stop (EventError Shutdown to every session after what is queued for
 *     it, then exit once all are gone), and the cleanup.
 *
 * The worker keeps its per-session state with svc_set_data/svc_data (the
 * session's own data belongs to this module).  One per process.
 */
#ifndef TENANTD_SVC_H
#define TENANTD_SVC_H

#include <jansson.h>

#include "access.h"
#include "auth.h"
#include "conf.h"
#include "sess.h"

struct event_base;
struct cfg_change;

struct svc_ops {
	/*
	 * RequestOpen, before its token is looked up: the worker's own
	 * fields (NULL: none).  ACCEPT goes on; UNAVAILABLE or BAD_REQUEST
	 * refuse, and the link waits for another open.  The worker's data
	 * is still set from an open that was not accepted, or NULL.
	 */
	enum sess_open	(*open)(struct sess *, json_t *req, const char **why);
	/* The token is good: add the worker's fields to EventOpened. */
	void	(*opened)(struct sess *, json_t *extra);
	/* A request after RequestOpen (but RequestPing); req is borrowed. */
	void	(*request)(struct sess *, const char *name, json_int_t ref,
		    json_t *req);
	/* The session is gone (its data may be NULL): free the data. */
	void	(*closed)(struct sess *);
	/* Its grants changed: withdraw what it may no longer see. */
	void	(*rights_changed)(struct sess *);
	/* A change applied to the cache; NULL: a snapshot begins. */
	void	(*change)(const struct cfg_change *);
	/* Everything up to rev is applied; first: the configuration is in. */
	void	(*synced)(json_int_t rev, int first);
	/* Graceful stop, before the sessions are told (NULL: nothing). */
	void	(*stop)(void);
	/* Cleanup, once the sessions are closed, before the frame's own. */
	void	(*cleanup)(void);
	/* After a stop, may the worker exit once its sessions are gone?
	 * (NULL: yes.)  Asked every 50 ms. */
	int	(*drained)(void);
	/* What EventError Shutdown says to clients. */
	const char	*stop_message;
};

/*
 * Start the frame for worker class w, serving listen_fd (owned).  -1 when
 * the listener cannot be made; exits 2 when postgres.conninfo does not
 * parse.
 */
int		 svc_start(struct event_base *, const struct conf *,
		    enum worker_class w, int listen_fd, const struct svc_ops *);
/* The worker_ops parts: reload's second phase, listen, stop, cleanup. */
void		 svc_reload(const struct conf *next, const struct conf *prev);
void		 svc_listen(int fd);
void		 svc_stop(void);
void		 svc_cleanup(void);

void		 svc_set_data(struct sess *, void *);
void		*svc_data(const struct sess *);
/* Who the session's principal is (after the open was accepted). */
const struct principal *svc_who(const struct sess *);
/* May it exercise right on (kind, dbid), now? */
int		 svc_can(const struct sess *, enum cfg_kind, json_int_t dbid,
		    int right);
/* Does its principal still exist, enabled? */
int		 svc_valid(const struct sess *);

#endif
