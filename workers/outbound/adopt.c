/* SPDX-License-Identifier: Apache-2.0 */
/*
 * adopt - the calls a killed worker left behind (docs/outbound.md, "What
 * a fault costs").  The voice side's state, read by the roster's cut,
 * still holds every call the dead worker placed, with its record in the
 * attached data (GSW_RECORD_ID, GSW_CALLING_LIST, ...).  A call whose
 * record is leased by a worker of this host whose process is gone is
 * taken over: its lease first (a compare-and-set on the lease's owner, so
 * two successors cannot both take it), then its events, as if this worker
 * had placed it: an answer is given an agent, an end writes the attempt's
 * outcome.  Without it the record would wait for its lease to expire and
 * be dialled again, and the attempt's result would be lost.
 *
 * A lease held by another host is left alone: this host cannot tell a
 * live instance from a dead one there; that record comes back when its
 * lease expires, as before.  Until its lease is ours, an adopted call
 * keeps the events that come for it and plays them once it is.
 *
 * What it touches: the calling lists' tables (the leases), on the
 * worker's PostgreSQL connection; the calls of dial_int.h.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include <event2/event.h>

#include "cache.h"
#include "log.h"
#include "pgc.h"
#include "schema.h"
#include "strmap.h"
#include "util.h"
#include "voice.h"
#include "outbound_int.h"
#include "dial_int.h"

static void	 consider(const char *dn, json_t *dnstate, json_t *call);
static void	 owner_read(struct pgc *, const PGresult *, void *);
static void	 claimed(struct pgc *, const PGresult *, void *);
static int	 owner_dead(const char *owner);

/* adopt_cut - the calls of the voice side's state that no one here knows */
void
adopt_cut(json_t *state)
{
	const char	*dn;
	json_t		*v, *call;
	size_t		 i;

	json_object_foreach(state, dn, v)
		json_array_foreach(json_object_get(v, "calls"), i, call)
			consider(dn, v, call);
}

/* adopt_event - an event read before the cut that follows it: a call
 * being adopted keeps it (takes o) */
void
adopt_event(json_t *o)
{
	const char	*conn = json_string_value(json_object_get(o, "connId"));
	struct call	*c;

	if (conn != NULL && (c = strmap_get(&dial_conns, conn)) != NULL &&
	    c->held != NULL)
		json_array_append(c->held, o);
	json_decref(o);
}

/* adopt_hold - keep v for c while c's lease is not ours yet: 1 if kept */
int
adopt_hold(struct call *c, struct voice_event *v)
{
	json_t	*o;

	if (c->held == NULL || (o = voice_event_json(v)) == NULL)
		return 0;
	json_array_append(c->held, o);
	return 1;
}

/*
 * consider - one call at one DN: a call of one of our groups (its
 * attached data names the group, the list and the record) that we do not
 * know yet.  Its state there says where it is: ringing out from the
 * origination DN, answered and waiting there, or at an agent's phone.
 */
static void
consider(const char *dn, json_t *dnstate, json_t *call)
{
	json_t			*ud = json_object_get(call, "userData");
	const char		*conn = json_string_value(json_object_get(call,
				    "connId"));
	const char		*guid = json_string_value(json_object_get(ud,
				    "GSW_CALL_ATTEMPT_GUID"));
	const char		*st = json_string_value(json_object_get(call,
				    "state"));
	const struct cobj	*go, *lo, *co, *orig;
	struct group		*g;
	struct call		*c;
	json_t			*v;
	char			 number[64];
	const char		*table, *p[1];
	char			*sql, *id;

	const char		*agent = json_string_value(json_object_get(
				    json_object_get(dnstate, "agent"), "agentId"));

	if (conn == NULL || guid == NULL || st == NULL ||
	    strlen(guid) >= sizeof(c->guid))
		return;
	if ((c = strmap_get(&dial_conns, conn)) != NULL) {
		/* Being routed, it is at both phones: the agent's wins. */
		if (c->held != NULL && strcmp(dn, c->orig) != 0) {
			c->state = C_CONNECTED;
			snprintf(c->agent_dn, sizeof(c->agent_dn), "%s", dn);
			snprintf(c->agent_id, sizeof(c->agent_id), "%s",
			    agent ?: "");
		}
		return;
	}
	if ((go = cache_find(CFG_CAMPAIGN_GROUP, json_string_value(
	    json_object_get(ud, "GSW_CAMPAIGN_GROUP_NAME")) ?: "")) == NULL ||
	    (g = groups_get(go->dbid)) == NULL || g->state == G_NOT_LOADED ||
	    (lo = cache_find(CFG_CALLING_LIST, json_string_value(
	    json_object_get(ud, "GSW_CALLING_LIST")) ?: "")) == NULL ||
	    (table = lists_table(lo->dbid)) == NULL)
		return;
	co = cache_find(CFG_CAMPAIGN, json_string_value(json_object_get(ud,
	    "GSW_CAMPAIGN_NAME")) ?: "");
	v = cobj_get(go, "origDN");
	orig = cache_get(json_integer_value(v));
	json_decref(v);
	if (dial_dn_number(orig, number, sizeof(number)) == -1)
		return;
	c = xcalloc(1, sizeof(*c));
	snprintf(c->guid, sizeof(c->guid), "%s", guid);
	snprintf(c->request, sizeof(c->request), "ob-%s", guid);
	snprintf(c->conn, sizeof(c->conn), "%s", conn);
	snprintf(c->orig, sizeof(c->orig), "%s", number);
	c->group = g->dbid;
	c->campaign = co != NULL ? co->dbid : 0;
	c->list = lo->dbid;
	c->record = json_integer_value(json_object_get(ud, "GSW_RECORD_ID"));
	c->chain = json_integer_value(json_object_get(ud, "GSW_CHAIN_ID"));
	c->attempt = (int)json_integer_value(json_object_get(ud,
	    "GSW_ATTEMPTS"));
	c->phone_type = (int)json_integer_value(json_object_get(ud,
	    "GSW_PHONE_TYPE"));
	snprintf(c->phone, sizeof(c->phone), "%s", json_string_value(
	    json_object_get(ud, "GSW_PHONE")) ?: "");
	snprintf(c->mode, sizeof(c->mode), "%s", json_string_value(
	    json_object_get(ud, "GSW_DIAL_MODE")) ?: g->mode);
	c->dialed_ms = (uint64_t)json_integer_value(json_object_get(call,
	    "since"));
	if (strcmp(dn, number) != 0) {		/* at an agent's phone */
		c->state = C_CONNECTED;
		snprintf(c->agent_dn, sizeof(c->agent_dn), "%s", dn);
		snprintf(c->agent_id, sizeof(c->agent_id), "%s", agent ?: "");
		c->answered_ms = c->connected_ms = c->dialed_ms;
	} else if (strcmp(st, "Established") == 0) {
		c->state = C_WAITING;
		c->answered_ms = c->dialed_ms;
	} else
		c->state = C_DIALING;
	if (c->record <= 0) {
		free(c);
		return;
	}
	c->held = json_array();
	strmap_put(&dial_conns, c->conn, c);
	strmap_put(&dial_calls, c->request, c);
	p[0] = xasprintf("%lld", (long long)c->record);
	sql = xasprintf("SELECT lease_owner FROM %s WHERE record_id = $1 AND "
	    "record_status = 2", table);
	id = xstrdup(c->request);
	if (pgc_query(ob.pg, sql, 1, p, owner_read, id) == -1) {
		free(id);	/* not queued: owner_read will not run */
		call_free(c);
	}
	free(sql);
	free((char *)p[0]);
}

/* owner_read - the record's lease: ours to take when its owner is dead */
static void
owner_read(struct pgc *pg, const PGresult *r, void *arg)
{
	char		*id = arg;
	struct call	*c = strmap_get(&dial_calls, id);
	const char	*table, *owner, *p[4];
	char		*sql, rid[24], until[24];

	free(id);
	if (c == NULL || c->held == NULL)
		return;
	if (r == NULL || PQresultStatus(r) != PGRES_TUPLES_OK ||
	    PQntuples(r) != 1 || PQgetisnull(r, 0, 0) ||
	    !owner_dead(owner = PQgetvalue(r, 0, 0)) ||
	    (table = lists_table(c->list)) == NULL) {
		call_free(c);
		return;
	}
	snprintf(rid, sizeof(rid), "%lld", (long long)c->record);
	snprintf(until, sizeof(until), "%llu", (unsigned long long)
	    (now_wall_us() / 1000 + (uint64_t)(ob_conf()->lease_time * 1000)));
	p[0] = rid;
	p[1] = owner;
	p[2] = ob.owner;
	p[3] = until;
	sql = xasprintf("UPDATE %s SET lease_owner = $3, lease_until = $4 "
	    "WHERE record_id = $1 AND record_status = 2 AND lease_owner = $2 "
	    "RETURNING treatments, tz_dbid", table);
	id = xstrdup(c->request);
	if (pgc_query(ob.pg, sql, 4, p, claimed, id) == -1) {
		free(id);	/* not queued: claimed will not run */
		call_free(c);
	}
	free(sql);
}

/* claimed - the lease is ours: the call goes on here, with what came */
static void
claimed(struct pgc *pg, const PGresult *r, void *arg)
{
	char			*id = arg;
	struct call		*c = strmap_get(&dial_calls, id);
	struct group		*g;
	struct voice_event	 ev;
	json_t			*held, *o;
	size_t			 i;

	free(id);
	if (c == NULL || c->held == NULL)
		return;
	if (r == NULL || PQresultStatus(r) != PGRES_TUPLES_OK ||
	    PQntuples(r) != 1 || (g = groups_get(c->group)) == NULL) {
		call_free(c);	/* another took it first */
		return;
	}
	c->history = xstrdup(PQgetvalue(r, 0, 0));
	c->tz = PQgetisnull(r, 0, 1) ? 0 : strtoll(PQgetvalue(r, 0, 1),
	    NULL, 10);
	held = c->held;
	c->held = NULL;
	g->fig.total_dialed++;
	switch (c->state) {
	case C_DIALING:
		g->dialing++;
		break;
	case C_CONNECTED:
		g->connected++;
		break;
	default:
		g->waiting++;
		call_wait(c);
		break;
	}
	log_info("outbound: adopted the call %s of record %lld (list %lld), "
	    "left by a worker that is gone", c->conn, (long long)c->record,
	    (long long)c->list);
	/* What came meanwhile, in order, as if it came now. */
	json_array_foreach(held, i, o) {
		memset(&ev, 0, sizeof(ev));
		snprintf(ev.name, sizeof(ev.name), "%s", json_string_value(
		    json_object_get(o, "event")) ?: "");
		snprintf(ev.dn, sizeof(ev.dn), "%s", json_string_value(
		    json_object_get(o, "thisDN")) ?: "");
		snprintf(ev.request_id, sizeof(ev.request_id), "%s",
		    json_string_value(json_object_get(o, "requestId")) ?: "");
		ev.obj = o;
		dial_voice(&ev);
	}
	json_decref(held);
}


/*
 * owner_dead - a lease owner ("host/pid/nonce", outbound.c) that is a
 * process of this host no longer running
 */
static int
owner_dead(const char *owner)
{
	const char	*mine = ob.owner, *slash = strchr(mine, '/');
	size_t		 hl = slash != NULL ? (size_t)(slash - mine) : 0;
	char		*end;
	long		 pid;

	if (hl == 0 || strncmp(owner, mine, hl + 1) != 0 ||
	    strcmp(owner, mine) == 0)
		return 0;
	pid = strtol(owner + hl + 1, &end, 10);
	if (end == owner + hl + 1 || *end != '/' || pid <= 0)
		return 0;
	return kill((pid_t)pid, 0) == -1 && errno == ESRCH;
}
