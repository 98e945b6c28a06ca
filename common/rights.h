/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rights - who a session is and what it may do, kept true while it lasts.
 *
 * Every session port (events 8000, stats 2060, outbound 5050) checks each
 * request against the rights its principal has now, not at RequestOpen
 * (DESIGN §3).  This module opens a session's principal from its token,
 * keeps the principal's grants in step with the access groups in the
 * configuration cache, and ends the session, with an EventError
 * Unauthorized that names why, when:
 *   - its token is revoked (a password or secret changed, the principal
 *     was deleted): every revocation is announced on tenantd:{<t>}:auth in
 *     the same atomic step as the deletion (common/auth.c), and each
 *     session of that principal, on every instance, looks its token up
 *     again; after a lost subscription, and every minute, every session
 *     does, so a message lost with a connection is made up for;
 *   - its principal is disabled or deleted in the configuration;
 *   - the admin token it opened with is no longer the admin token.
 * A token that merely expires does not end a session opened with it.
 *
 * When the grants of open sessions may have changed (an access group
 * changed), the worker's changed() callback is called for each, after the
 * change is applied, so that it withdraws what the session may no longer
 * see (a registered DN, an open statistic).  Requests checked with
 * rights_can see the new grants at once, even before that callback.
 *
 * One struct rights per worker process; a struct rights_sess lives in the
 * worker's own per-session state.
 */
#ifndef TENANTD_RIGHTS_H
#define TENANTD_RIGHTS_H

#include <stdint.h>
#include <sys/queue.h>

#include "access.h"
#include "auth.h"
#include "sess.h"

struct event_base;
struct cfg_change;
struct rights;
struct rights_check;

struct rights_sess {
	struct sess		*s;
	struct principal	 who;
	char			*token;
	uint64_t		 expires_us;	/* of the token; 0: none */
	struct grants		 g;
	unsigned		 gen;		/* of g */
	int			 attached;	/* open, followed */
	int			 notify;	/* g recomputed: changed() due */
	struct rights_check	*check;		/* a token lookup out */
	TAILQ_ENTRY(rights_sess) entry;
};

struct rights_cbs {
	/*
	 * The open asked for by rights_open is decided: SESS_OPEN_ACCEPT
	 * (rs is followed from now on), or a refusal with why.  The worker
	 * answers the session with sess_open_done.
	 */
	void	(*opened)(struct rights_sess *, enum sess_open,
		    const char *why, void *arg);
	/* The session's grants may have changed: withdraw what it lost. */
	void	(*changed)(struct rights_sess *, void *arg);
};

/* Follows revocations on its own Redis subscription. */
struct rights	*rights_new(struct event_base *, struct auth *,
		    const struct conf_redis *, const char *tenant_id,
		    const struct rights_cbs *, void *arg);
void		 rights_free(struct rights *);

/*
 * The configuration is loaded (RequestOpen is refused with Unavailable
 * before), or a change to it was applied to the cache (after cache_apply;
 * NULL: a snapshot began).
 */
void		 rights_synced(struct rights *);
void		 rights_change(struct rights *, const struct cfg_change *);
/* Look every session's token up again (the admin token was reloaded). */
void		 rights_recheck_all(struct rights *);

/*
 * RequestOpen with token: PENDING, and opened() later; or a refusal now
 * (*why says why), and no callback.  rs is zeroed before its first open
 * (calloc); an open again, after one not accepted, starts it afresh.
 */
enum sess_open	 rights_open(struct rights *, struct rights_sess *,
		    struct sess *, const char *token, const char **why);
/* The session is gone (or its open was not accepted): forget it. */
void		 rights_close(struct rights *, struct rights_sess *);

/* May the session exercise right on (kind, dbid), now? */
int		 rights_can(struct rights *, struct rights_sess *,
		    enum cfg_kind, json_int_t dbid, int right);
/* Does the person or application behind a principal still exist, enabled? */
int		 rights_principal_valid(const struct principal *);

#endif
