/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rights - a session's principal and grants, kept true (rights.h).
 *
 * Grants come from the access groups in the cache; a generation number,
 * bumped by every change of an access group, tells a session that its
 * grants are stale, so a request never needs more than one comparison to
 * know.  Principal checks (disabled, deleted) run once per batch of
 * changes, from a deferred event, so that a snapshot of many objects does
 * not scan the sessions once per object.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "cache.h"
#include "cfgfollow.h"
#include "log.h"
#include "rds.h"
#include "rights.h"
#include "schema.h"
#include "util.h"

#define RIGHTS_RECHECK_S	60	/* every token looked at again */

TAILQ_HEAD(rights_list, rights_sess);

struct rights {
	struct event_base	*base;
	struct auth		*auth;
	struct rds		*sub;
	struct rights_cbs	 cbs;
	void			*arg;
	struct rights_list	 list;		/* open sessions */
	struct event		*ev_sweep;	/* after a batch of changes */
	struct event		*ev_recheck;	/* every RIGHTS_RECHECK_S */
	unsigned		 gen;		/* of the access groups */
	int			 ready;
};

/* A token lookup for a session; outlives the session if it must. */
struct rights_check {
	struct rights		*r;
	struct rights_sess	*rs;		/* NULL: the session left */
	int			 opening;
};

static void	rights_sweep(evutil_socket_t, short, void *);
static void	rights_tick(evutil_socket_t, short, void *);
static void	rights_on_sub(struct rds *, enum rds_state, void *);
static void	rights_on_message(struct rds *, const char *, const char *,
		    size_t, void *);
static void	rights_lookup(struct rights *, struct rights_sess *, int);

/* rights_new - sessions' rights, and a subscription to revocations */
struct rights *
rights_new(struct event_base *base, struct auth *auth,
    const struct conf_redis *cr, const char *tenant_id,
    const struct rights_cbs *cbs, void *arg)
{
	struct rights	*r = xcalloc(1, sizeof(*r));
	struct timeval	 tv = { RIGHTS_RECHECK_S, 0 };
	char		*channel = auth_channel(tenant_id);

	r->base = base;
	r->auth = auth;
	r->cbs = *cbs;
	r->arg = arg;
	TAILQ_INIT(&r->list);
	r->ev_sweep = event_new(base, -1, 0, rights_sweep, r);
	r->ev_recheck = event_new(base, -1, EV_PERSIST, rights_tick, r);
	if (r->ev_sweep == NULL || r->ev_recheck == NULL)
		fatalx("rights: cannot make events");
	event_add(r->ev_recheck, &tv);
	r->sub = rds_new_conf(base, cr, rights_on_sub, r);
	rds_set_name(r->sub, "redis (revocations)");
	rds_subscribe(r->sub, channel, rights_on_message, r);
	free(channel);
	return r;
}

void
rights_free(struct rights *r)
{
	struct rights_sess	*rs;

	if (r == NULL)
		return;
	while ((rs = TAILQ_FIRST(&r->list)) != NULL)
		rights_close(r, rs);
	rds_free(r->sub);
	event_free(r->ev_sweep);
	event_free(r->ev_recheck);
	free(r);
}

/* ---- the configuration ---- */

void
rights_synced(struct rights *r)
{
	r->ready = 1;
}

/*
 * rights_change - an applied change: an access group makes every grant
 * stale; a person or application, its sessions' principal perhaps gone.
 * The sessions are looked at once the batch is applied.
 */
void
rights_change(struct rights *r, const struct cfg_change *ch)
{
	const struct cfg_type	*t = NULL;
	enum cfg_kind		 k;

	if (ch != NULL && (t = cfg_type_by_name(ch->type,
	    strlen(ch->type))) == NULL)
		return;
	k = t != NULL ? cfg_type_kind(t) : CFG_ACCESS_GROUP;
	if (k == CFG_ACCESS_GROUP)
		r->gen++;
	else if (k != CFG_PERSON && k != CFG_APPLICATION)
		return;
	if (!TAILQ_EMPTY(&r->list))
		event_active(r->ev_sweep, EV_TIMEOUT, 1);
}

/* rights_principal_valid - the person or application still is, enabled */
int
rights_principal_valid(const struct principal *who)
{
	const struct cobj	*o;

	if (who->kind == PRINCIPAL_ADMIN)
		return 1;
	o = cache_get(who->dbid);
	return o != NULL && o->enabled && o->kind == (who->kind ==
	    PRINCIPAL_PERSON ? CFG_PERSON : CFG_APPLICATION);
}

/* rights_gone - why a principal is no longer valid */
static const char *
rights_gone(const struct principal *who)
{
	const struct cobj	*o = cache_get(who->dbid);

	return o == NULL ? "was deleted" : !o->enabled ? "was disabled" :
	    "is no longer what the token was issued for";
}

/* ---- ending a session ---- */

/*
 * rights_end - tell the session why, and close it: Unauthorized makes a
 * client drop the credentials, which is what it must do now.
 */
static void
rights_end(struct rights *r, struct rights_sess *rs, const char *reason,
    const char *fmt, const char *arg)
{
	json_t	*e;
	char	*msg = xasprintf(fmt, rs->who.name, arg);

	log_info("sess %llu: %s", (unsigned long long)sess_id(rs->s), msg);
	e = json_pack("{s:s, s:s, s:s, s:s}", "event", "EventError", "code",
	    SESS_ERR_UNAUTHORIZED, "reason", reason, "message", msg);
	sess_send(rs->s, e);
	json_decref(e);
	free(msg);
	sess_close(rs->s);
	if (rs->check != NULL)
		rs->check->rs = NULL;
	rs->check = NULL;
	TAILQ_REMOVE(&r->list, rs, entry);
	rs->attached = 0;
}

/* rights_fresh - grants recomputed when the access groups changed */
static void
rights_fresh(struct rights *r, struct rights_sess *rs)
{
	if (rs->gen == r->gen)
		return;
	access_clear(&rs->g);
	access_grants(&rs->who, &rs->g);
	rs->gen = r->gen;
	rs->notify = 1;
}

/*
 * rights_sweep - after a batch of changes: end the sessions whose
 * principal is gone; tell the worker of every session whose grants were
 * recomputed, so that it withdraws what they no longer cover.
 */
static void
rights_sweep(evutil_socket_t fd, short what, void *arg)
{
	struct rights		*r = arg;
	struct rights_sess	*rs, *next;

	for (rs = TAILQ_FIRST(&r->list); rs != NULL; rs = next) {
		next = TAILQ_NEXT(rs, entry);
		if (!rights_principal_valid(&rs->who)) {
			rights_end(r, rs, "PrincipalGone", "%s %s",
			    rights_gone(&rs->who));
			continue;
		}
		rights_fresh(r, rs);
		if (rs->notify) {
			rs->notify = 0;
			if (r->cbs.changed != NULL)
				r->cbs.changed(rs, r->arg);
		}
	}
}

/* ---- tokens ---- */

/* rights_opened - the token of a RequestOpen, looked up */
static void
rights_opened(struct rights *r, struct rights_sess *rs,
    const struct principal *who, uint64_t expires_us, int unavailable)
{
	enum sess_open	 res = SESS_OPEN_ACCEPT;
	const char	*why = NULL;

	if (who == NULL && unavailable) {
		res = SESS_OPEN_UNAVAILABLE;
		why = "the token cannot be checked now (Redis is "
		    "unreachable); retry";
	} else if (who == NULL || !rights_principal_valid(who)) {
		res = SESS_OPEN_REFUSE;
		why = "the token is not valid";
	} else {
		rs->who = *who;
		rs->expires_us = expires_us;
		access_grants(who, &rs->g);
		rs->gen = r->gen;
		rs->attached = 1;
		TAILQ_INSERT_TAIL(&r->list, rs, entry);
	}
	r->cbs.opened(rs, res, why, r->arg);
}

/* rights_looked - a token looked up, for an open or a recheck */
static void
rights_looked(const struct principal *who, uint64_t expires_us,
    int unavailable, void *arg)
{
	struct rights_check	*ck = arg;
	struct rights_sess	*rs = ck->rs;
	struct rights		*r = ck->r;

	free(ck);
	if (rs == NULL)
		return;		/* the session left meanwhile */
	rs->check = NULL;
	if (!rs->attached) {
		rights_opened(r, rs, who, expires_us, unavailable);
		return;
	}
	if (who == NULL && !unavailable)
		rights_end(r, rs, "TokenRevoked", "the token of %s was "
		    "revoked%s", rs->who.kind == PRINCIPAL_ADMIN ? " (the "
		    "admin token changed)" : "");
}

/* rights_lookup - look the session's token up, unless it is already */
static void
rights_lookup(struct rights *r, struct rights_sess *rs, int opening)
{
	struct rights_check	*ck;

	if (rs->check != NULL)
		return;
	ck = xcalloc(1, sizeof(*ck));
	ck->r = r;
	ck->rs = rs;
	ck->opening = opening;
	rs->check = ck;
	/* an open must be a live token; an open session follows refreshes */
	if (opening)
		auth_check_expiry(r->auth, rs->token, strlen(rs->token),
		    rights_looked, ck);
	else
		auth_check_follow(r->auth, rs->token, strlen(rs->token),
		    rights_looked, ck);
}

/*
 * rights_recheck_all - every session's token again; one that has merely
 * expired is left alone (only a revocation ends a session).
 */
void
rights_recheck_all(struct rights *r)
{
	struct rights_sess	*rs, *next;
	uint64_t		 now = now_wall_us();

	for (rs = TAILQ_FIRST(&r->list); rs != NULL; rs = next) {
		next = TAILQ_NEXT(rs, entry);
		if (rs->expires_us == 0 || now < rs->expires_us)
			rights_lookup(r, rs, 0);
	}
}

static void
rights_tick(evutil_socket_t fd, short what, void *arg)
{
	rights_recheck_all(arg);
}

/* rights_on_sub - a (new) subscription: what was announced meanwhile? */
static void
rights_on_sub(struct rds *sub, enum rds_state st, void *arg)
{
	if (st == RDS_UP)
		rights_recheck_all(arg);
}

/* rights_on_message - a principal's tokens were revoked or one dropped */
static void
rights_on_message(struct rds *sub, const char *channel, const char *data,
    size_t len, void *arg)
{
	struct rights		*r = arg;
	struct rights_sess	*rs, *next;
	char			 buf[32];
	json_int_t		 dbid;

	if (len == 0 || len >= sizeof(buf))
		return;
	memcpy(buf, data, len);
	buf[len] = '\0';
	dbid = strtoll(buf, NULL, 10);
	for (rs = TAILQ_FIRST(&r->list); rs != NULL; rs = next) {
		next = TAILQ_NEXT(rs, entry);
		if (rs->who.kind != PRINCIPAL_ADMIN && rs->who.dbid == dbid)
			rights_lookup(r, rs, 0);
	}
}

/* ---- sessions ---- */

enum sess_open
rights_open(struct rights *r, struct rights_sess *rs, struct sess *s,
    const char *token, const char **why)
{
	free(rs->token);	/* of an open that was not accepted */
	memset(rs, 0, sizeof(*rs));
	rs->s = s;
	if (!r->ready) {
		*why = "the configuration is not loaded yet; retry";
		return SESS_OPEN_UNAVAILABLE;
	}
	rs->token = xstrdup(token);
	rights_lookup(r, rs, 1);
	return SESS_OPEN_PENDING;
}

/* rights_close - forget the session; a lookup out is answered to no one */
void
rights_close(struct rights *r, struct rights_sess *rs)
{
	if (rs->check != NULL)
		rs->check->rs = NULL;
	rs->check = NULL;
	if (rs->attached)
		TAILQ_REMOVE(&r->list, rs, entry);
	rs->attached = 0;
	access_clear(&rs->g);
	free(rs->token);
	rs->token = NULL;
}

static const struct grants *
rights_grants(struct rights *r, struct rights_sess *rs)
{
	if (rs->attached)
		rights_fresh(r, rs);
	return &rs->g;
}

int
rights_can(struct rights *r, struct rights_sess *rs, enum cfg_kind k,
    json_int_t dbid, int right)
{
	if (!rs->attached)
		return 0;
	return access_can(rights_grants(r, rs), k, dbid, right);
}
