/* SPDX-License-Identifier: Apache-2.0 */
/*
 * session - the stats worker's sessions and their requests
 * (docs/stats.md "Requests"): RequestOpen, its token checked and the
 * session's rights followed by common/rights.c; RequestOpenStatistic,
 * RequestPeekStatistic, RequestCloseStatistic, RequestGetStatisticTypes
 * and RequestAgentMediaState, each checked against the rights the
 * principal has now.  A withdrawn right closes the statistics of the
 * objects it covered.
 *
 * It touches sessions (common/sess.c), the statistics and their
 * subscribers, and the agents' media states; the worker's limits come
 * from worker_conf().
 */
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "cache.h"
#include "metrics.h"
#include "schema.h"
#include "sess.h"
#include "svc.h"
#include "worker.h"
#include "stats_int.h"

static void	do_open_statistic(struct client *, json_int_t, json_t *);
static void	do_peek(struct client *, json_int_t, json_t *);
static void	do_close(struct client *, json_int_t, json_t *);
static void	do_types(struct client *, json_int_t);
static void	do_media(struct client *, json_int_t, json_t *);
static int	may_read(struct client *, enum object_kind, json_int_t);
static int	find_object(enum object_kind, const char *, json_int_t *,
		    void *);
static int	over_limits(struct client *, json_int_t);
static struct sub *sub_new(struct client *, struct statistic *,
		    const struct statreq_notify *);
static struct sub *sub_find(struct client *, json_int_t, json_t *);
static void	sub_free(struct sub *);
static int	media_args(json_t *, const char **, const char **,
		    const char **, int *);

static json_int_t	 next_stat_id;

/* ---- the session ---- */

/*
 * session_open - RequestOpen, before its token is looked up by the frame
 * (common/svc.c): the client's state.  One whose open was not accepted
 * keeps it for the next try.
 */
enum sess_open
session_open(struct sess *s, json_t *req, const char **why)
{
	struct client	*c = svc_data(s);

	if (c == NULL) {
		c = xcalloc(1, sizeof(*c));
		c->s = s;
		LIST_INIT(&c->subs);
		svc_set_data(s, c);
	}
	return SESS_OPEN_ACCEPT;
}

/* session_closed - the session is gone: its statistics are closed */
void
session_closed(struct sess *s)
{
	struct client	*c = svc_data(s);

	if (c == NULL)
		return;
	while (!LIST_EMPTY(&c->subs))
		sub_free(LIST_FIRST(&c->subs));
	free(c);
}

/*
 * session_rights_changed - the access groups changed: a statistic whose
 * object the session may no longer read is closed, and the session told
 * why, so that none of its values reach it from now on.
 */
void
session_rights_changed(struct sess *ss)
{
	struct client	*c = svc_data(ss);
	struct sub	*s, *next;
	json_t		*e;

	for (s = LIST_FIRST(&c->subs); s != NULL; s = next) {
		next = LIST_NEXT(s, c_entry);
		if (may_read(c, s->m->kind, s->m->dbid))
			continue;
		e = json_pack("{s:s, s:I, s:s, s:s}", "event",
		    "EventStatisticClosed", "statisticId", s->id, "reason",
		    "Forbidden", "message", "no read right on its object any "
		    "more");
		sess_send(c->s, e);
		json_decref(e);
		sub_free(s);
	}
}

/* ---- requests ---- */

void
session_request(struct sess *s, const char *name, json_int_t ref,
    json_t *req)
{
	struct client	*c = svc_data(s);

	if (strcmp(name, "RequestOpenStatistic") == 0)
		do_open_statistic(c, ref, req);
	else if (strcmp(name, "RequestPeekStatistic") == 0)
		do_peek(c, ref, req);
	else if (strcmp(name, "RequestCloseStatistic") == 0)
		do_close(c, ref, req);
	else if (strcmp(name, "RequestGetStatisticTypes") == 0)
		do_types(c, ref);
	else if (strcmp(name, "RequestAgentMediaState") == 0)
		do_media(c, ref, req);
	else
		sess_send_error(s, ref, SESS_ERR_UNKNOWN, "no request %s in "
		    "the statistics protocol", name);
}

/*
 * do_open_statistic - RequestOpenStatistic.
 *
 * Guarantees: the client gets EventStatisticOpened with the value as it
 * is now, then EventInfo only as its notification mode says, measured
 * from that value (the baseline); or one error, and nothing is opened.
 * The checks come in the order of the errors' precedence: the object
 * (UnknownObject), the right to read it (Forbidden: after the lookup, so
 * that the message can name it), the statistic, profile and notification
 * (statreq.c, pure), then the worker's limits and lag (TooManyStatistics)
 * last, since only a request that would be served may be refused for
 * load.  Clients that open the same (object, type, profile) share one
 * statistic, seeded with what is in progress, so a count of agents ready
 * is right the moment it opens; the request's own statisticId,
 * notification mode and baseline are the subscriber's.
 */
static void
do_open_statistic(struct client *c, json_int_t ref, json_t *req)
{
	struct statreq		 r;
	struct statreq_err	 err;
	struct statistic	*m;
	struct sub		*s;
	struct value		 val;
	json_t			*opts, *e;
	int			 created, rc;

	if (statreq_object(req, find_object, NULL, &r, &err) == -1) {
		sess_send_error(c->s, ref, err.code, "%s", err.msg);
		return;
	}
	if (!may_read(c, r.kind, r.dbid)) {
		sess_send_error(c->s, ref, SESS_ERR_FORBIDDEN, "object: %s may "
		    "not read %s %s (no read right on it)", svc_who(c->s)->name,
		    r.otype, r.oid != NULL ? r.oid : "");
		return;
	}
	/* Only a type named may be one of the Application's options. */
	opts = json_is_string(json_object_get(req, "statistic")) ?
	    index_app_options() : NULL;
	rc = statreq_statistic(req, opts, &r, &err);
	json_decref(opts);
	if (rc == -1) {
		sess_send_error(c->s, ref, err.code, "%s", err.msg);
		return;
	}
	if (over_limits(c, ref))
		return;
	m = statistic_get(r.kind, r.dbid, r.oid != NULL ? r.oid : "", &r.t,
	    &r.p, 1, &created);
	s = sub_new(c, m, &r.n);
	value_get(m, stats_now(), &val);
	e = json_pack("{s:s, s:I, s:o, s:b}", "event", "EventStatisticOpened",
	    "statisticId", s->id, "value", value_json(&val, m), "valid",
	    m->valid);
	sess_reply(c->s, ref, e);
	json_decref(e);
	/* The baseline of changes: what the client just got. */
	s->has_last = 1;
	s->last_is_num = val.is_num;
	s->last_num = val.num;
	s->last_text = val.is_num ? NULL : xstrdup(val.text);
	value_free(&val);
	if (s->n.mode == NM_PERIODIC)
		subs_periodic(s);
}

static void
do_peek(struct client *c, json_int_t ref, json_t *req)
{
	struct sub	*s = sub_find(c, ref, req);
	struct value	 v;

	if (s == NULL)
		return;
	value_get(s->m, stats_now(), &v);
	subs_info(s, &v, ref);
	value_free(&v);
}

static void
do_close(struct client *c, json_int_t ref, json_t *req)
{
	struct sub	*s = sub_find(c, ref, req);
	json_t		*e;

	if (s == NULL)
		return;
	e = json_pack("{s:s, s:I}", "event", "EventStatisticClosed",
	    "statisticId", s->id);
	sub_free(s);
	sess_reply(c->s, ref, e);
	json_decref(e);
}

/* do_types - the shipped types, and those of the Application's options */
static void
do_types(struct client *c, json_int_t ref)
{
	const struct stype	*b;
	struct stype		 t;
	json_t			*types = json_object(), *opts, *sec, *e;
	const char		*k;
	char			 why[256];
	size_t			 n, i;

	n = stype_builtins(&b);
	for (i = 0; i < n; i++)
		json_object_set_new(types, b[i].name, stype_json(&b[i]));
	opts = index_app_options();
	json_object_foreach(opts, k, sec)
		if (strncmp(k, "stat:", 5) == 0 &&
		    stype_parse(sec, k + 5, &t, why, sizeof(why)) == 0)
			json_object_set_new(types, k + 5, stype_json(&t));
	json_decref(opts);
	e = json_pack("{s:s, s:o}", "event", "EventStatisticTypes", "types",
	    types);
	sess_reply(c->s, ref, e);
	json_decref(e);
}

/* do_media - the interaction server reports an agent's medium */
static void
do_media(struct client *c, json_int_t ref, json_t *req)
{
	const char		*agent, *med, *state;
	struct media_state	*ms;
	const struct node	*nd;
	json_int_t		 person;
	json_t			*e;
	size_t			 k;
	int			 i, n;

	if (media_args(req, &agent, &med, &state, &n) == -1) {
		sess_send_error(c->s, ref, SESS_ERR_BAD_ARGUMENT, "agent "
		    "(employeeId), media (not voice: it comes from the voice "
		    "events), state (LoggedOut, Ready, NotReady), "
		    "interactions (0 to 1000)");
		return;
	}
	if (index_object_find(OBJ_AGENT, agent, &person) == -1) {
		sess_send_error(c->s, ref, "UnknownObject", "no agent %s",
		    agent);
		return;
	}
	if (!svc_can(c->s, CFG_PERSON, person,
	    RIGHT_UPDATE)) {
		sess_send_error(c->s, ref, SESS_ERR_FORBIDDEN, "agent: %s may "
		    "not change the state of agent %s (no update right on "
		    "that person)", svc_who(c->s)->name, agent);
		return;
	}
	ms = value_media(person, 1);
	for (i = 0; i < ms->n; i++)
		if (strcmp(ms->v[i].name, med) == 0)
			break;
	if (i == ms->n) {
		if (ms->n == MEDIA_MAX) {
			sess_send_error(c->s, ref, SESS_ERR_BAD_ARGUMENT, "at "
			    "most %d media per agent", MEDIA_MAX);
			return;
		}
		snprintf(ms->v[ms->n++].name, sizeof(ms->v[0].name), "%s", med);
	}
	snprintf(ms->v[i].state, sizeof(ms->v[i].state), "%s", state);
	ms->v[i].interactions = n;
	if ((nd = statistic_on(OBJ_AGENT, person)) != NULL)
		for (k = 0; k < nd->n; k++)
			if (nd->v[k]->t.cat == CAT_AGENT_STATUS)
				subs_mark(nd->v[k]);
	e = json_pack("{s:s}", "event", "EventAck");
	sess_reply(c->s, ref, e);
	json_decref(e);
}

/* ---- helpers ---- */

/*
 * may_read - may the client read the object of a statistic now?  The
 * tenant's statistics need read on the Tenant object (or on all tenants).
 */
static int
may_read(struct client *c, enum object_kind k, json_int_t dbid)
{
	const struct cobj *const	*t;
	size_t				 n;

	if (k == OBJ_TENANT) {
		t = cache_list(CFG_TENANT, &n);
		dbid = n > 0 ? t[0]->dbid : 0;
	}
	return svc_can(c->s, object_cfg_kind(k), dbid,
	    RIGHT_READ);
}

/* find_object - for statreq: the configuration's object */
static int
find_object(enum object_kind k, const char *id, json_int_t *dbid, void *arg)
{
	return index_object_find(k, id, dbid);
}

/* over_limits - refused (and told) for the worker's limits or its lag */
static int
over_limits(struct client *c, json_int_t ref)
{
	const struct conf_worker *w = &worker_conf()->workers[WORKER_STATS];

	if (stats_env.nsubs < w->max_statistics && c->nsubs <
	    w->max_client_statistics && stats_env.lag <= w->max_lag)
		return 0;
	metric_inc(stats_env.m_refused);
	if (stats_env.lag > w->max_lag)
		sess_send_error(c->s, ref, "TooManyStatistics", "the worker is "
		    "%.1f s behind the voice events; no new statistic until it "
		    "catches up", stats_env.lag);
	else
		sess_send_error(c->s, ref, "TooManyStatistics", "at most %u "
		    "statistics (%u per client) are open", w->max_statistics,
		    w->max_client_statistics);
	return 1;
}

/* sub_new - a client's subscription to a statistic, with a new id */
static struct sub *
sub_new(struct client *c, struct statistic *m, const struct statreq_notify *n)
{
	struct sub	*s = xcalloc(1, sizeof(*s));

	s->n = *n;
	s->c = c;
	s->m = m;
	s->id = ++next_stat_id;
	LIST_INSERT_HEAD(&m->subs, s, m_entry);
	LIST_INSERT_HEAD(&c->subs, s, c_entry);
	c->nsubs++;
	stats_env.nsubs++;
	return s;
}

/* sub_find - the subscription a request names, or NULL (and told) */
static struct sub *
sub_find(struct client *c, json_int_t ref, json_t *req)
{
	json_t		*id = json_object_get(req, "statisticId");
	struct sub	*s;

	if (!json_is_integer(id)) {
		sess_send_error(c->s, ref, SESS_ERR_BAD_ARGUMENT,
		    "statisticId: the id EventStatisticOpened gave");
		return NULL;
	}
	LIST_FOREACH(s, &c->subs, c_entry)
		if (s->id == json_integer_value(id))
			return s;
	sess_send_error(c->s, ref, "NoSuchStatistic", "statistic %lld is not "
	    "open on this session", (long long)json_integer_value(id));
	return NULL;
}

static void
sub_free(struct sub *s)
{
	struct statistic	*m = s->m;

	LIST_REMOVE(s, m_entry);
	LIST_REMOVE(s, c_entry);
	s->c->nsubs--;
	stats_env.nsubs--;
	if (s->timer != NULL)
		event_free(s->timer);
	free(s->last_text);
	free(s);
	/* A Growing total nobody watches goes on counting until its reset:
	 * a wallboard that comes back finds it right. */
	if (LIST_EMPTY(&m->subs) && !keeps_counting(m))
		statistic_drop(m);
}

/* media_args - RequestAgentMediaState's agent, media, state and
 * interactions (0 when not given); -1 when one is wrong */
static int
media_args(json_t *req, const char **agent, const char **med,
    const char **state, int *n)
{
	json_t	*v = json_object_get(req, "interactions");

	*agent = json_string_value(json_object_get(req, "agent"));
	*med = json_string_value(json_object_get(req, "media"));
	*state = json_string_value(json_object_get(req, "state"));
	if (*agent == NULL || *med == NULL || strlen(*med) >= 32 ||
	    strcmp(*med, "voice") == 0 || *state == NULL ||
	    (strcmp(*state, "LoggedOut") != 0 && strcmp(*state, "Ready") != 0 &&
	    strcmp(*state, "NotReady") != 0) || (v != NULL &&
	    (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    json_integer_value(v) > 1000)))
		return -1;
	*n = v != NULL ? (int)json_integer_value(v) : 0;
	return 0;
}
