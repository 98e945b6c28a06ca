/* SPDX-License-Identifier: Apache-2.0 */
/*
 * call - the dialler's calls (docs/outbound.md, "The dialler"): a
 * predictive call per leased record, asked of the voice side with the
 * record's attached data, then followed on the voice event stream by its
 * requestId and connId.  A person answered: the call goes to the group's
 * ready agent idle the longest (roster.c), or to the IVR in the agentless
 * modes, or, with no agent free within workers.outbound.abandon_timeout,
 * it is dropped and counted abandoned.  Busy, no answer, a machine, a
 * fax, a SIT tone: the call is over.  Either way outcome.c takes it on.
 *
 * What it touches: voice requests and events (through voice.c); a
 * record's lease given back when its call could not be placed.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "cache.h"
#include "idmap.h"
#include "log.h"
#include "metrics.h"
#include "outbox.h"
#include "pgc.h"
#include "rds.h"
#include "schema.h"
#include "strmap.h"
#include "util.h"
#include "voice.h"
#include "outbound_int.h"
#include "pacing.h"
#include "treat.h"
#include "window.h"
#include "dial_int.h"

#define RING_TIMEOUT_S		25
#define RESERVE_MS		5000	/* an agent ours, for a route */

struct strmap		 dial_calls;	/* requestId -> call */
struct strmap		 dial_conns;	/* connId -> call */
static uint64_t		 seq;

static void	 placed(int, void *);
static void	 answered(struct call *);
static void	 find_waiting(const char *, void *, void *);
static void	 route(struct call *, const char *);
static void	 on_abandon(evutil_socket_t, short, void *);
static void	 abandon_timer(struct call *);
static void	 reserve(struct call *);
static void	 reserved(struct rds *, const redisReply *, void *);
static void	 find_group_call(const char *, void *, void *);
static int	 result_of_cause(const char *);
static void	 send_request(const char *, const char *, const char *, const char *,
		    const char *);
static void	 sent(int, void *);

/* ---- calls ---- */

void
call_place(struct call *c)
{
	struct group		*g = groups_get(c->group);
	const struct cobj	*o = cache_get(c->group), *dn, *camp, *list;
	json_t			*req, *ud, *v;
	const char		*tz;

	v = cobj_get(o, "origDN");
	dn = cache_get(json_integer_value(v));
	json_decref(v);
	if (dial_dn_number(dn, c->orig, sizeof(c->orig)) == -1) {
		dial_unhealthy(g, 4, "no origination DN");
		dial_giveback(c);
		return;
	}
	camp = cache_get(c->campaign);
	list = cache_get(c->list);
	tz = dial_zone(c->tz, c->list);
	ud = json_pack("{s:s, s:s, s:s, s:s, s:s, s:i, s:i, s:s, s:I, s:I, "
	    "s:s, s:s}",
	    "GSW_RECORD_HANDLE", c->guid,
	    "GSW_CAMPAIGN_NAME", camp != NULL && camp->key ? camp->key : "",
	    "GSW_CALLING_LIST", list != NULL && list->key ? list->key : "",
	    "GSW_CAMPAIGN_GROUP_NAME", o->key != NULL ? o->key : "",
	    "GSW_PHONE", c->phone,
	    "GSW_PHONE_TYPE", c->phone_type,
	    "GSW_ATTEMPTS", c->attempt,
	    "GSW_CALL_ATTEMPT_GUID", c->guid,
	    "GSW_CHAIN_ID", (json_int_t)c->chain,
	    "GSW_RECORD_ID", (json_int_t)c->record,
	    "GSW_TZ_NAME", tz,
	    "GSW_DIAL_MODE", c->mode);
	req = json_pack("{s:s, s:s, s:s, s:s, s:i, s:b, s:o}",
	    "request", "RequestMakePredictiveCall", "requestId", c->request,
	    "dn", c->orig, "destination", c->phone,
	    "ringTimeout", RING_TIMEOUT_S, "cpd", 1, "userData", ud);
	if ((v = cobj_get(o, "callerId")) != NULL)
		json_object_set_new(req, "callerId", v);
	strmap_put(&dial_calls, c->request, c);
	log_debug("outbound: dialling record %lld of list %lld (%s), attempt "
	    "%d, request %s", (long long)c->record, (long long)c->list,
	    c->phone, c->attempt, c->request);
	c->state = C_DIALING;
	g->dialing++;
	g->fig.total_dialed++;
	metric_add(dial_m.dialed, 1);
	voice_send(req, placed, xstrdup(c->request));
	json_decref(req);
}

/* placed - Redis took the request, or not: then the record goes back */
static void
placed(int ok, void *arg)
{
	char		*id = arg;
	struct call	*c = strmap_get(&dial_calls, id);

	free(id);
	if (ok || c == NULL)
		return;
	dial_giveback(c);
}

/*
 * Give-backs.  A record leased but not dialled goes back to Ready with its
 * attempt uncounted: through a queue that survives PostgreSQL being away,
 * so that a record is never left leased to an instance that forgot it (its
 * own sweep never takes its leases back; they would be renewed while it
 * dials others).  The queue is written every tick, a list's records in one
 * statement, and kept until PostgreSQL answers; leasing waits for it to
 * empty (dial.c), so a record given back cannot have been leased again
 * meanwhile.  A record no longer ours is left alone: the statement asks
 * for this instance's lease.
 */
struct giveback {
	TAILQ_ENTRY(giveback)	 entry;
	json_int_t		 list;
	json_int_t		 record;
	int			 sent;	/* in the statement that is out */
};
static TAILQ_HEAD(, giveback)	 givebacks = TAILQ_HEAD_INITIALIZER(givebacks);
static json_int_t		 giveback_out;	/* the list whose statement
						 * is out; 0: none */

static void	 given_back(struct pgc *, const PGresult *, void *);

/* dial_giveback - the record was not dialled: Ready again, as it was */
void
dial_giveback(struct call *c)
{
	struct group	*g = groups_get(c->group);
	struct giveback	*b = xcalloc(1, sizeof(*b));

	if (g != NULL && c->state == C_DIALING && strmap_get(&dial_calls,
	    c->request) == c)
		g->dialing--;
	b->list = c->list;
	b->record = c->record;
	TAILQ_INSERT_TAIL(&givebacks, b, entry);
	call_free(c);
}

/* dial_givebacks_pending - records waiting to be given back */
int
dial_givebacks_pending(void)
{
	return !TAILQ_EMPTY(&givebacks);
}

/* dial_givebacks_flush - write the first list's give-backs, if none is out */
void
dial_givebacks_flush(void)
{
	struct giveback	*b, *next, *first = NULL;
	const char	*table = NULL, *p[2];
	char		*sql, *ids;
	size_t		 n = 0, len = 0, cap;

	if (giveback_out != 0 || pgc_state(ob.pg) != PGC_UP)
		return;
	/* the first whose table is there; a list being altered waits, a
	 * list gone from the configuration has nothing left to give back */
	for (b = TAILQ_FIRST(&givebacks); b != NULL && first == NULL;
	    b = next) {
		next = TAILQ_NEXT(b, entry);
		if ((table = lists_table(b->list)) != NULL)
			first = b;
		else if (cache_get(b->list) == NULL) {
			TAILQ_REMOVE(&givebacks, b, entry);
			free(b);
		}
	}
	if (first == NULL)
		return;
	TAILQ_FOREACH(b, &givebacks, entry)
		n += b->list == first->list;
	cap = 4 + n * 22;
	ids = xmalloc(cap);
	len += (size_t)snprintf(ids, cap, "{");
	TAILQ_FOREACH(b, &givebacks, entry)
		if (b->list == first->list) {
			b->sent = 1;
			len += (size_t)snprintf(ids + len, cap - len, "%s%lld",
			    len > 1 ? "," : "", (long long)b->record);
		}
	snprintf(ids + len, cap - len, "}");
	p[0] = ids;
	p[1] = ob.owner;
	sql = xasprintf("UPDATE %s SET record_status = 1, attempt = "
	    "GREATEST(attempt - 1, 0), lease_owner = NULL, lease_until = NULL "
	    "WHERE record_id = ANY($1::bigint[]) AND lease_owner = $2 AND "
	    "record_status = 2", table);
	giveback_out = first->list;
	if (pgc_query(ob.pg, sql, 2, p, given_back, NULL) == -1)
		given_back(ob.pg, NULL, NULL);
	free(sql);
	free(ids);
}

/* given_back - the records sent are Ready again, unless the answer was lost
 * (records queued since wait for the next statement) */
static void
given_back(struct pgc *pg, const PGresult *r, void *arg)
{
	json_int_t	 list = giveback_out;
	struct giveback	*b, *next;

	giveback_out = 0;
	if (r == NULL) {	/* not known: written again next tick */
		TAILQ_FOREACH(b, &givebacks, entry)
			b->sent = 0;
		return;
	}
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		log_warnx("outbound: records of calling list %lld could not "
		    "be given back: %s", (long long)list,
		    PQresultErrorMessage(r));
	else if (atoi(PQcmdTuples((PGresult *)r)) > 0)
		log_debug("outbound: %s record(s) of calling list %lld given "
		    "back", PQcmdTuples((PGresult *)r), (long long)list);
	for (b = TAILQ_FIRST(&givebacks); b != NULL; b = next) {
		next = TAILQ_NEXT(b, entry);
		if (b->sent) {
			TAILQ_REMOVE(&givebacks, b, entry);
			free(b);
		}
	}
}

/* dial_givebacks_clear - at the end: what is left stays to the sweep */
void
dial_givebacks_clear(void)
{
	struct giveback	*b;

	while ((b = TAILQ_FIRST(&givebacks)) != NULL) {
		TAILQ_REMOVE(&givebacks, b, entry);
		free(b);
	}
}

/* ---- the voice side's news ---- */

void
call_on_link(int up, void *arg)
{
	roster_link(up);
}

void
call_on_gap(int region, const char *why, void *arg)
{
	if (region == 0)
		roster_gap();
}

void
call_on_voice(struct voice_event *v, void *arg)
{
	roster_voice(v);
	dial_voice(v);
}

void
dial_voice(struct voice_event *v)
{
	struct call	*c = NULL;
	json_t		*o;
	const char	*conn, *cause, *res;
	struct group	*g;

	if (v->region != 0 || (o = voice_event_json(v)) == NULL)
		return;
	conn = json_string_value(json_object_get(o, "connId"));
	if (strncmp(v->request_id, "ob-", 3) == 0)
		c = strmap_get(&dial_calls, v->request_id);
	else if (strncmp(v->request_id, "obr-", 4) == 0) {
		char	id[48];

		snprintf(id, sizeof(id), "ob-%s", v->request_id + 4);
		c = strmap_get(&dial_calls, id);
	}
	if (c == NULL && conn != NULL)
		c = strmap_get(&dial_conns, conn);
	if (c == NULL || adopt_hold(c, v))
		return;
	g = groups_get(c->group);
	cause = json_string_value(json_object_get(o, "cause"));
	if (strcmp(v->name, "EventError") == 0) {
		if (c->state == C_ROUTING) {	/* the agent is gone: next */
			roster_untake(c->agent);
			c->agent = NULL;
			c->state = C_WAITING;
			abandon_timer(c);
			return;
		}
		call_finish(c, strcmp(json_string_value(json_object_get(o,
		    "code")) ?: "", "UnknownDN") == 0 ? 11 : 3);
		return;
	}
	if (strcmp(v->name, "EventDialing") == 0 && conn != NULL &&
	    c->conn[0] == '\0') {
		snprintf(c->conn, sizeof(c->conn), "%s", conn);
		strmap_put(&dial_conns, c->conn, c);
		return;
	}
	if (c->state == C_CONNECTED || c->state == C_ROUTING) {
		/* At the agent: its end is the attempt's. */
		if ((strcmp(v->name, "EventReleased") == 0 ||
		    strcmp(v->name, "EventAbandoned") == 0) &&
		    strcmp(v->dn, c->agent_dn) == 0 &&
		    c->state == C_CONNECTED) {
			call_finish(c, 33);
			return;
		}
		if (strcmp(v->name, "EventReleased") == 0 && cause != NULL &&
		    strcmp(cause, "Transferred") == 0 && c->state == C_ROUTING) {
			c->state = C_CONNECTED;
			c->connected_ms = now_wall_us() / 1000;
			if (g != NULL) {
				g->waiting--;
				g->connected++;
				g->fig.wait_s += (c->connected_ms -
				    c->answered_ms) / 1000.0;
			}
			roster_untake(c->agent);
			c->agent = NULL;
			if (pace_agentless(pace_mode_parse(c->mode)))
				call_finish(c, 33);
			return;
		}
		if (strcmp(v->name, "EventAbandoned") == 0 &&
		    c->state == C_ROUTING) {
			if (g != NULL)
				g->fig.abandoned++, g->fig.total_abandoned++;
			metric_add(dial_m.abandoned, 1);
			call_finish(c, 21);
		}
		return;
	}
	if (strcmp(v->name, "EventEstablished") == 0) {
		res = json_string_value(json_object_get(o, "callResult"));
		if (res == NULL || strcmp(res, "Answer") == 0) {
			answered(c);
			return;
		}
		/* A machine or a fax the voice side did not drop: drop it. */
		send_request("RequestReleaseCall", v->dn, c->conn, NULL, NULL);
		call_finish(c, result_of_cause(res));
		return;
	}
	if (strcmp(v->name, "EventAbandoned") == 0 ||
	    strcmp(v->name, "EventReleased") == 0) {
		if (c->state == C_WAITING) {	/* hung up waiting */
			if (g != NULL)
				g->fig.abandoned++, g->fig.total_abandoned++;
			metric_add(dial_m.abandoned, 1);
			call_finish(c, 21);
			return;
		}
		call_finish(c, result_of_cause(cause));
	}
}

/* answered - a person: to an agent (or the IVR) now, or wait a little */
static void
answered(struct call *c)
{
	struct group	*g = groups_get(c->group);

	c->answered_ms = now_wall_us() / 1000;
	c->state = C_WAITING;
	if (g != NULL) {
		g->dialing--;
		g->waiting++;
		g->fig.live++;
		g->fig.total_live++;
		g->fig.ttc_s += (c->answered_ms - c->dialed_ms) / 1000.0;
		pace_sample(&g->samples, (c->answered_ms - c->dialed_ms) /
		    1000.0, 1);
	}
	metric_add(dial_m.live, 1);
	abandon_timer(c);
	if (g != NULL)
		call_connect_waiting(g, NULL);
}

struct waiting {
	struct group	*g;
	struct call	*oldest;
};

static void
find_waiting(const char *k, void *v, void *arg)
{
	struct call	*c = v;
	struct waiting	*w = arg;

	if (c->group == w->g->dbid && c->state == C_WAITING &&
	    (w->oldest == NULL || c->answered_ms < w->oldest->answered_ms))
		w->oldest = c;
}

/* call_connect_waiting - the group's answered calls to its free agents,
 * oldest first */
void
call_connect_waiting(struct group *g, void *arg)
{
	const struct cobj	*o = cache_get(g->dbid), *ivr;
	struct waiting		 w;
	struct agent		*a;
	json_t			*v;
	json_int_t		 agroup;

	if (g->waiting == 0 || o == NULL)
		return;
	v = cobj_get(o, "group");
	agroup = json_integer_value(v);
	json_decref(v);
	for (;;) {
		w.g = g;
		w.oldest = NULL;
		strmap_each(&dial_calls, find_waiting, &w);
		if (w.oldest == NULL)
			return;
		if (pace_agentless(pace_mode_parse(w.oldest->mode))) {
			v = cobj_get(o, "ivrDN");
			if (!json_is_integer(v)) {
				json_decref(v);
				v = cobj_get(o, "origDN");
			}
			ivr = cache_get(json_integer_value(v));
			json_decref(v);
			if (dial_dn_number(ivr, w.oldest->agent_dn,
			    sizeof(w.oldest->agent_dn)) == -1)
				return;
			route(w.oldest, w.oldest->agent_dn);
			continue;
		}
		if ((a = roster_take(agroup)) == NULL)
			return;
		w.oldest->agent = a;
		snprintf(w.oldest->agent_dn, sizeof(w.oldest->agent_dn), "%s",
		    a->dn);
		snprintf(w.oldest->agent_id, sizeof(w.oldest->agent_id), "%s",
		    a->login);
		reserve(w.oldest);
	}
}

/* The agent's key: taken when free, or kept when this instance has it. */
static const char reserve_lua[] =
    "if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) or "
    "redis.call('GET', KEYS[1]) == ARGV[1] then "
    "redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end return 0";

/*
 * reserve - the agent is ours on every instance for a few seconds (SET
 * NX with an expiry in Redis), long enough for the call to reach it:
 * then every instance sees it busy.  Meanwhile the call is not waiting
 * for another agent; its abandon timer runs on.
 */
static void
reserve(struct call *c)
{
	char	*key = xasprintf("tenantd:{%s}:agent:%s", ob.tenant,
		    c->agent_dn);

	c->state = C_ROUTING;
	if (rds_command(ob.kv, reserved, xstrdup(c->request),
	    "EVAL %s 1 %s %s %d", reserve_lua, key, ob.owner,
	    RESERVE_MS) == -1) {
		c->state = C_WAITING;	/* Redis away: no routing now */
		roster_untake(c->agent);
		c->agent = NULL;
	}
	free(key);
}

static void
reserved(struct rds *r, const redisReply *rep, void *arg)
{
	char		*id = arg;
	struct call	*c = strmap_get(&dial_calls, id);
	struct group	*g;

	free(id);
	if (c == NULL || c->state != C_ROUTING || c->agent == NULL)
		return;		/* gone meanwhile: the key expires */
	if (rep != NULL && rep->type == REDIS_REPLY_INTEGER &&
	    rep->integer == 1) {
		route(c, c->agent_dn);
		return;
	}
	/* Another instance has it (or Redis did not answer): another. */
	c->agent->elsewhere_ms = now_wall_us() / 1000 + RESERVE_MS;
	roster_untake(c->agent);
	c->agent = NULL;
	c->state = C_WAITING;
	if ((g = groups_get(c->group)) != NULL)
		call_connect_waiting(g, NULL);
}

static void
route(struct call *c, const char *dn)
{
	char	id[48];

	c->state = C_ROUTING;
	log_debug("outbound: record %lld: the call %s to %s", (long long)
	    c->record, c->conn, dn);
	if (c->timer != NULL)
		evtimer_del(c->timer);
	snprintf(id, sizeof(id), "obr-%s", c->guid);
	send_request("RequestRouteCall", c->orig, c->conn, dn, id);
}

/* abandon_timer - the call is dropped unless it reaches an agent within
 * workers.outbound.abandon_timeout of its answer */
static void
abandon_timer(struct call *c)
{
	uint64_t	now = now_wall_us() / 1000;
	uint64_t	due = c->answered_ms + (uint64_t)(ob_conf()->
			    abandon_timeout * 1000);
	struct timeval	tv = util_tv_us(due > now ? (due - now) * 1000 : 0);

	if (c->timer == NULL)
		c->timer = evtimer_new(ob.base, on_abandon, c);
	evtimer_add(c->timer, &tv);
}

/* on_abandon - no agent in time: drop the call (the FTC's abandon) */
static void
on_abandon(evutil_socket_t fd, short what, void *arg)
{
	struct call	*c = arg;
	struct group	*g = groups_get(c->group);

	if (c->state != C_WAITING)
		return;
	send_request("RequestReleaseCall", c->orig, c->conn, NULL, NULL);
	if (g != NULL)
		g->fig.abandoned++, g->fig.total_abandoned++;
	metric_add(dial_m.abandoned, 1);
	call_finish(c, 26);
}

void
call_wait(struct call *c)
{
	struct group	*g = groups_get(c->group);

	abandon_timer(c);
	if (g != NULL)
		call_connect_waiting(g, NULL);
}

void
call_cut(struct call *c)
{
	if (c->state != C_DIALING || c->conn[0] == '\0')
		return;
	send_request("RequestReleaseCall", c->orig, c->conn, NULL, NULL);
	c->cut = 1;
	call_finish(c, 7);
}

void
call_free(struct call *c)
{
	if (strmap_get(&dial_calls, c->request) == c)
		strmap_del(&dial_calls, c->request);
	if (c->conn[0] != '\0' && strmap_get(&dial_conns, c->conn) == c)
		strmap_del(&dial_conns, c->conn);
	roster_untake(c->agent);
	json_decref(c->held);
	if (c->timer != NULL)
		event_free(c->timer);
	free(c->history);
	free(c);
}

struct forget {
	struct group	*g;
	struct call	*c;
};

static void
find_group_call(const char *k, void *v, void *arg)
{
	struct forget	*f = arg;
	struct call	*c = v;

	if (f->c == NULL && c->group == f->g->dbid)
		f->c = c;
}

/* dial_forget - force-unload: release what still rings, records back */
void
dial_forget(struct group *g)
{
	struct forget	f = { g, NULL };

	for (;;) {
		f.c = NULL;
		strmap_each(&dial_calls, find_group_call, &f);
		if (f.c == NULL)
			break;
		if (f.c->state == C_CONNECTED) {	/* it was answered */
			call_finish(f.c, 33);
			continue;
		}
		if (f.c->state == C_DIALING || f.c->state == C_WAITING)
			send_request("RequestReleaseCall", f.c->orig, f.c->conn,
			    NULL, NULL);
		f.c->state = C_DIALING;
		dial_giveback(f.c);
	}
	g->dialing = g->waiting = g->connected = 0;
}

/* ---- small helpers ---- */

/* dn_number - a DN object's number (its key is "<switch>/<number>") */
int
dial_dn_number(const struct cobj *dn, char *out, size_t len)
{
	json_t	*v;
	int	 rc = -1;

	if (dn == NULL || dn->kind != CFG_DN || !dn->enabled ||
	    (v = cobj_get(dn, "number")) == NULL)
		return -1;
	if (json_is_string(v)) {
		snprintf(out, len, "%s", json_string_value(v));
		rc = 0;
	}
	json_decref(v);
	return rc;
}

/* result_of_cause - a released call's cause as a call_result */
static int
result_of_cause(const char *cause)
{
	int	code;

	if (cause == NULL)
		return 28;
	if (strcmp(cause, "Silence") == 0)
		return 32;
	if (strcmp(cause, "NoRingback") == 0)
		return 37;
	if (strcmp(cause, "Normal") == 0)
		return 19;	/* Cleared */
	code = treat_result_code(cause);
	return code > 0 ? code : 28;
}

static void
send_request(const char *name, const char *dn, const char *conn,
    const char *dest, const char *reqid)
{
	json_t	*req;
	char	 id[48];

	if (reqid == NULL) {
		snprintf(id, sizeof(id), "obx-%llu", (unsigned long long)++seq);
		reqid = id;
	}
	req = json_pack("{s:s, s:s, s:s, s:s}", "request", name, "requestId",
	    reqid, "dn", dn, "connId", conn);
	if (dest != NULL)
		json_object_set_new(req, "destination", json_string(dest));
	voice_send(req, sent, NULL);
	json_decref(req);
}

/* sent - a request without a record at stake: a lost one is seen in its
 * call's outcome (the customer hangs up, the lease expires) */
static void
sent(int ok, void *arg)
{
	if (!ok)
		log_warnx("outbound: a request to the voice side was lost");
}
