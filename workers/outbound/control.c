/* SPDX-License-Identifier: Apache-2.0 */
/*
 * control - campaign control (docs/outbound.md, "Campaign control"): the
 * campaign-manager requests of the session protocol, and the same
 * operations over HTTP (POST /v1/campaign-groups/{dbid}/{action}).
 *
 *   RequestLoadCampaign          -> EventCampaignLoaded
 *   RequestStartDialing          -> EventDialingStarted
 *   RequestStopDialing           -> EventDialingStopped
 *   RequestSetDialingMode        -> EventDialingModeChanged
 *   RequestUnloadCampaign        -> EventCampaignUnloaded (or, while its
 *                                   calls finish, EventCampaignStatus
 *                                   Unloading, then EventCampaignUnloaded)
 *   RequestForceUnloadCampaign   -> EventCampaignUnloaded
 *   RequestGetCampaignStatus     -> EventCampaignStatus
 *   RequestCancelRecord          -> EventRecordCanceled
 *   RequestDoNotCall             -> EventDoNotCallProcessed
 *
 * A session that names a group watches it: every state change of the
 * group reaches it (EventCampaignStatus, EventCampaignUnloaded) while it
 * may read the group.  Controlling a group needs the update right on it,
 * its status the read right; cancelling records the update right on the
 * calling list; the do-not-call list the update right on the tenant.
 *
 * What it touches: through group.c, the groups' states; records and
 * ocs_dnc, on the worker's PostgreSQL connection.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "access.h"
#include "cache.h"
#include "http.h"
#include "idmap.h"
#include "log.h"
#include "pgc.h"
#include "schema.h"
#include "sess.h"
#include "svc.h"
#include "util.h"
#include "outbound_int.h"

/* A session's state here. */
struct watcher {
	struct sess		*s;
	struct idmap		 groups;	/* dbid -> watcher */
	TAILQ_ENTRY(watcher)	 entry;
};

/* One request on its way: from a session or over HTTP. */
struct ctl {
	struct sess		*s;	/* NULL: gone, or HTTP */
	json_int_t		 ref;
	struct http_conn	*conn;
	const char		*answer;	/* the event that answers */
	json_int_t		 group;
	LIST_ENTRY(ctl)		 entry;
};

static TAILQ_HEAD(, watcher)	watchers = TAILQ_HEAD_INITIALIZER(watchers);
static LIST_HEAD(, ctl)		pending = LIST_HEAD_INITIALIZER(pending);

static void	run(struct ctl *, const char *op, json_t *args);
static void	answer(struct ctl *, json_t *ev);
static void	fail(struct ctl *, const char *code, const char *fmt, ...)
		    __attribute__((format(printf, 3, 4)));
static void	changed(struct group *, const char *, const char *, void *);
static int	enum_ok(const char *field, const char *value);
static void	cancel_records(struct ctl *, json_t *);
static void	do_not_call(struct ctl *, json_t *);
static void	sql_done(struct pgc *, const PGresult *, void *);
static int	may(struct ctl *, const struct principal *, enum cfg_kind,
		    json_int_t, int);

/* The session requests and what they do. */
static const struct {
	const char	*request;
	const char	*op;
	const char	*answer;
} requests[] = {
	{ "RequestLoadCampaign", "load", "EventCampaignLoaded" },
	{ "RequestStartDialing", "start", "EventDialingStarted" },
	{ "RequestStopDialing", "stop", "EventDialingStopped" },
	{ "RequestSetDialingMode", "set-dialing-mode",
	  "EventDialingModeChanged" },
	{ "RequestUnloadCampaign", "unload", "EventCampaignUnloaded" },
	{ "RequestForceUnloadCampaign", "force-unload",
	  "EventCampaignUnloaded" },
	{ "RequestGetCampaignStatus", "status", "EventCampaignStatus" },
	{ "RequestCancelRecord", "cancel-record", "EventRecordCanceled" },
	{ "RequestDoNotCall", "do-not-call", "EventDoNotCallProcessed" },
};

/* ---- the ways in ---- */

void
control_request(struct sess *s, const char *name, json_int_t ref,
    json_t *req)
{
	struct watcher	*w = svc_data(s);
	struct ctl	*c;
	json_t		*g;
	size_t		 i;

	for (i = 0; i < sizeof(requests) / sizeof(requests[0]); i++)
		if (strcmp(name, requests[i].request) == 0)
			break;
	if (i == sizeof(requests) / sizeof(requests[0])) {
		sess_send_error(s, ref, SESS_ERR_UNKNOWN, "unknown request %s",
		    name);
		return;
	}
	if (w == NULL) {
		w = xcalloc(1, sizeof(*w));
		w->s = s;
		TAILQ_INSERT_TAIL(&watchers, w, entry);
		svc_set_data(s, w);
	}
	c = xcalloc(1, sizeof(*c));
	c->s = s;
	c->ref = ref;
	c->answer = requests[i].answer;
	LIST_INSERT_HEAD(&pending, c, entry);
	g = json_object_get(req, "campaignGroup");
	if (json_is_integer(g)) {
		c->group = json_integer_value(g);
		if (c->group > 0 && svc_can(s, CFG_CAMPAIGN_GROUP, c->group,
		    RIGHT_READ))
			idmap_put(&w->groups, (uint64_t)c->group, w);
	}
	run(c, requests[i].op, req);
}

void
control_http(struct http_conn *conn, const struct principal *who,
    json_int_t group, const char *action, json_t *body)
{
	struct ctl	*c = xcalloc(1, sizeof(*c));

	c->conn = conn;
	c->group = group;
	c->answer = "EventCampaignStatus";
	LIST_INSERT_HEAD(&pending, c, entry);
	if (!may(c, who, CFG_CAMPAIGN_GROUP, group, action == NULL ?
	    RIGHT_READ : RIGHT_UPDATE))
		return;
	if (body == NULL)
		body = json_object();
	else
		json_incref(body);
	json_object_set_new(body, "campaignGroup", json_integer(group));
	run(c, action == NULL ? "status" : action, body);
	json_decref(body);
}

void
control_closed(struct sess *s)
{
	struct watcher	*w = svc_data(s);
	struct ctl	*c;

	LIST_FOREACH(c, &pending, entry)
		if (c->s == s)
			c->s = NULL;
	if (w == NULL)
		return;
	TAILQ_REMOVE(&watchers, w, entry);
	idmap_clear(&w->groups);
	free(w);
	svc_set_data(s, NULL);
}

void
control_broadcast(json_int_t group, const json_t *ev)
{
	struct watcher	*w;

	TAILQ_FOREACH(w, &watchers, entry)
		if (idmap_get(&w->groups, (uint64_t)group) != NULL &&
		    svc_can(w->s, CFG_CAMPAIGN_GROUP, group, RIGHT_READ))
			sess_send(w->s, ev);
}

/* ---- the operations ---- */

static void
run(struct ctl *c, const char *op, json_t *args)
{
	const struct cobj	*o;
	struct group		 next, *g;
	json_t			*v, *ev;
	const char		*mode, *by;

	if (strcmp(op, "cancel-record") == 0) {
		cancel_records(c, args);
		return;
	}
	if (strcmp(op, "do-not-call") == 0) {
		do_not_call(c, args);
		return;
	}
	if (c->group <= 0) {
		fail(c, SESS_ERR_BAD_ARGUMENT, "campaignGroup must be a dbid");
		return;
	}
	o = cache_get(c->group);
	if (o == NULL || o->kind != CFG_CAMPAIGN_GROUP) {
		fail(c, SESS_ERR_NOT_FOUND, "no campaign group %lld",
		    (long long)c->group);
		return;
	}
	if (c->s != NULL && !svc_can(c->s, CFG_CAMPAIGN_GROUP, c->group,
	    strcmp(op, "status") == 0 ? RIGHT_READ : RIGHT_UPDATE)) {
		fail(c, SESS_ERR_FORBIDDEN, "no right on campaign group %lld",
		    (long long)c->group);
		return;
	}
	if (!ob.restored) {
		/* a group's state before the table is read would be a guess */
		fail(c, SESS_ERR_UNAVAILABLE, "the campaign groups' states are "
		    "being read (the worker is starting); retry");
		return;
	}
	g = groups_get(c->group);
	if (strcmp(op, "status") == 0) {
		ev = group_describe(c->group);
		answer(c, ev);
		return;
	}
	memset(&next, 0, sizeof(next));
	if (g != NULL)
		next = *g;
	else {
		next.dbid = c->group;
		v = cobj_get(o, "dialMode");
		snprintf(next.mode, sizeof(next.mode), "%s",
		    json_string_value(v) ?: "Preview");
		json_decref(v);
		v = cobj_get(o, "optimizeBy");
		snprintf(next.optimize_by, sizeof(next.optimize_by), "%s",
		    json_string_value(v) ?: "OverdialRate");
		json_decref(v);
		v = cobj_get(o, "optimizeGoal");
		next.optimize_goal = v != NULL ? (int)json_integer_value(v) :
		    3;
		json_decref(v);
	}
	/* Any operation may set the mode, as OCS's may. */
	mode = json_string_value(json_object_get(args, "dialMode"));
	by = json_string_value(json_object_get(args, "optimizeBy"));
	v = json_object_get(args, "optimizeGoal");
	if ((mode != NULL && !enum_ok("dialMode", mode)) ||
	    (json_object_get(args, "dialMode") != NULL && mode == NULL)) {
		fail(c, SESS_ERR_BAD_ARGUMENT, "dialMode must be one of the "
		    "configuration's dial modes");
		return;
	}
	if ((by != NULL && !enum_ok("optimizeBy", by)) ||
	    (json_object_get(args, "optimizeBy") != NULL && by == NULL)) {
		fail(c, SESS_ERR_BAD_ARGUMENT, "optimizeBy must be BusyFactor, "
		    "OverdialRate or AverageWaitTime");
		return;
	}
	if (v != NULL && (!json_is_integer(v) || json_integer_value(v) < 1 ||
	    json_integer_value(v) > 3600)) {
		fail(c, SESS_ERR_BAD_ARGUMENT, "optimizeGoal must be an "
		    "integer from 1 to 3600, as in the configuration");
		return;
	}
	if (mode != NULL)
		snprintf(next.mode, sizeof(next.mode), "%s", mode);
	if (by != NULL)
		snprintf(next.optimize_by, sizeof(next.optimize_by), "%s", by);
	if (v != NULL)
		next.optimize_goal = (int)json_integer_value(v);
	if (json_is_boolean(json_object_get(args, "autoCompletion")))
		next.auto_completion = json_is_true(json_object_get(args,
		    "autoCompletion"));

	if (strcmp(op, "load") == 0) {
		if (g != NULL) {
			fail(c, "InvalidState", "campaign group %lld is %s "
			    "already", (long long)c->group,
			    group_state_name(g->state));
			return;
		}
		next.state = G_LOADED;
	} else if (strcmp(op, "start") == 0) {
		if (g != NULL && (g->state == G_RUNNING ||
		    g->state == G_UNLOADING)) {
			fail(c, "InvalidState", "campaign group %lld is %s",
			    (long long)c->group, group_state_name(g->state));
			return;
		}
		if (strcmp(next.mode, "Preview") == 0 ||
		    strcmp(next.mode, "PushPreview") == 0) {
			fail(c, "InvalidState", "%s is the agent's mode: the "
			    "dialler places no call in it", next.mode);
			return;
		}
		next.state = G_RUNNING;
	} else if (strcmp(op, "stop") == 0) {
		if (g == NULL || g->state != G_RUNNING) {
			fail(c, "InvalidState", "campaign group %lld is not "
			    "dialling", (long long)c->group);
			return;
		}
		next.state = g->dialing + g->waiting + g->connected > 0 ?
		    G_STOPPING : G_LOADED;
	} else if (strcmp(op, "set-dialing-mode") == 0) {
		if (g == NULL) {
			fail(c, "InvalidState", "campaign group %lld is not "
			    "loaded", (long long)c->group);
			return;
		}
	} else if (strcmp(op, "unload") == 0) {
		if (g == NULL) {
			fail(c, "InvalidState", "campaign group %lld is not "
			    "loaded", (long long)c->group);
			return;
		}
		next.state = g->dialing + g->waiting + g->connected > 0 ?
		    G_UNLOADING : G_NOT_LOADED;
	} else if (strcmp(op, "force-unload") == 0) {
		if (g == NULL) {
			fail(c, "InvalidState", "campaign group %lld is not "
			    "loaded", (long long)c->group);
			return;
		}
		next.state = G_NOT_LOADED;
	} else {
		fail(c, SESS_ERR_NOT_FOUND, "no such operation: %s", op);
		return;
	}
	group_change(&next, op, changed, c);
}

/* changed - the new state is written (or not): answer */
static void
changed(struct group *g, const char *err, const char *why, void *arg)
{
	struct ctl	*c = arg;
	json_t		*ev;

	if (err != NULL) {
		fail(c, err, "%s", why);
		return;
	}
	ev = group_describe(c->group);
	if (g != NULL && g->state == G_UNLOADING &&
	    strcmp(c->answer, "EventCampaignUnloaded") == 0)
		c->answer = "EventCampaignStatus";
	answer(c, ev);
}

/* ---- records and the do-not-call list ---- */

struct sqlctx {
	struct ctl	*c;
	int		 left;
	long long	 count;
	int		 failed;
	json_t		*ev;
};

static void
cancel_records(struct ctl *c, json_t *args)
{
	json_int_t	 list = json_integer_value(json_object_get(args,
			    "callingList"));
	json_t		*rid = json_object_get(args, "recordId");
	json_t		*chain = json_object_get(args, "chainId");
	const char	*phone = json_string_value(json_object_get(args,
			    "phone"));
	const char	*table, *p[1];
	char		*sql, num[24];
	struct sqlctx	*x;

	if (list <= 0 || cache_get(list) == NULL ||
	    cache_get(list)->kind != CFG_CALLING_LIST) {
		fail(c, SESS_ERR_NOT_FOUND, "callingList must name a calling "
		    "list");
		return;
	}
	if (c->s != NULL && !svc_can(c->s, CFG_CALLING_LIST, list,
	    RIGHT_UPDATE)) {
		fail(c, SESS_ERR_FORBIDDEN, "no update right on calling list "
		    "%lld", (long long)list);
		return;
	}
	if ((table = lists_table(list)) == NULL) {
		fail(c, SESS_ERR_UNAVAILABLE, "the calling list's table is "
		    "not ready");
		return;
	}
	if (json_is_integer(rid)) {
		snprintf(num, sizeof(num), "%lld",
		    (long long)json_integer_value(rid));
		sql = xasprintf("UPDATE %s SET record_status = 5 WHERE "
		    "record_id = $1 AND record_status IN (1, 2)", table);
		p[0] = num;
	} else if (json_is_integer(chain)) {
		snprintf(num, sizeof(num), "%lld",
		    (long long)json_integer_value(chain));
		sql = xasprintf("UPDATE %s SET record_status = 5 WHERE "
		    "chain_id = $1 AND record_status IN (1, 2)", table);
		p[0] = num;
	} else if (phone != NULL) {
		sql = xasprintf("UPDATE %s SET record_status = 5 WHERE "
		    "contact_info = $1 AND record_status IN (1, 2)", table);
		p[0] = phone;
	} else {
		fail(c, SESS_ERR_BAD_ARGUMENT, "name the record: recordId, "
		    "chainId or phone");
		return;
	}
	x = xcalloc(1, sizeof(*x));
	x->c = c;
	x->left = 1;
	x->ev = json_pack("{s:I}", "callingList", list);
	if (pgc_query(ob.pg, sql, 1, p, sql_done, x) == -1) {
		json_decref(x->ev);
		free(x);
		fail(c, SESS_ERR_UNAVAILABLE, "PostgreSQL is busy");
	}
	free(sql);
}

/*
 * do_not_call - add a phone or a customer id to the list, and close the
 * records that carry it in every calling list (call_result 51 Do Not
 * Call, record_status 5 Cancelled) but those being dialled now.
 */
static void
do_not_call(struct ctl *c, json_t *args)
{
	const char		*phone = json_string_value(json_object_get(args,
				    "phone"));
	const char		*cust = json_string_value(json_object_get(args,
				    "customerId"));
	const struct cobj *const *v;
	const struct cobj	*const *t;
	const char		*table, *col, *p[2];
	struct sqlctx		*x;
	struct pgc_txn		*txn;
	size_t			 n, i, nt;
	char			*sql, digits[130];

	t = cache_list(CFG_TENANT, &nt);
	if (c->s != NULL && (nt == 0 || !svc_can(c->s, CFG_TENANT,
	    t[0]->dbid, RIGHT_UPDATE))) {
		fail(c, SESS_ERR_FORBIDDEN, "the do-not-call list needs the "
		    "update right on the tenant");
		return;
	}
	if ((phone == NULL) == (cust == NULL) || (phone != NULL &&
	    (*phone == '\0' || strlen(phone) > 128)) || (cust != NULL &&
	    (*cust == '\0' || strlen(cust) > 128))) {
		fail(c, SESS_ERR_BAD_ARGUMENT, "give one of phone or "
		    "customerId (1 to 128 characters)");
		return;
	}
	if (phone != NULL) {	/* as an import takes it: no separators */
		size_t	j, o = 0;

		for (j = 0; phone[j] != '\0' && o < sizeof(digits) - 1; j++)
			if (strchr(" -.()", phone[j]) == NULL)
				digits[o++] = phone[j];
		digits[o] = '\0';
		phone = digits;
	}
	if (phone != NULL && (*phone == '\0' ||
	    strspn(phone + (*phone == '+'), "0123456789") !=
	    strlen(phone + (*phone == '+')))) {
		fail(c, SESS_ERR_BAD_ARGUMENT, "a phone is digits with an "
		    "optional leading +");
		return;
	}
	if (pgc_state(ob.pg) != PGC_UP || (txn = pgc_begin(ob.pg)) == NULL) {
		fail(c, SESS_ERR_UNAVAILABLE, "PostgreSQL is unreachable");
		return;
	}
	x = xcalloc(1, sizeof(*x));
	x->c = c;
	x->ev = phone != NULL ? json_pack("{s:s}", "phone", phone) :
	    json_pack("{s:s}", "customerId", cust);
	p[0] = phone != NULL ? "1" : "2";
	p[1] = phone != NULL ? phone : cust;
	pgc_txn_query(txn, "INSERT INTO ocs_dnc (kind, value) VALUES "
	    "($1::smallint, $2) ON CONFLICT DO NOTHING", 2, p, NULL, NULL);
	v = cache_list(CFG_CALLING_LIST, &n);
	for (i = 0; i < n; i++) {
		if ((table = lists_table(v[i]->dbid)) == NULL)
			continue;
		col = phone != NULL ? "contact_info" :
		    lists_customer_column(v[i]->dbid);
		if (col == NULL)
			continue;
		sql = xasprintf("UPDATE %s SET record_status = 5, "
		    "call_result = 51 WHERE %s = $1 AND record_status = 1",
		    table, col);
		x->left++;
		pgc_txn_query(txn, sql, 1, &p[1], sql_done, x);
		free(sql);
	}
	x->left++;
	pgc_commit(txn, sql_done, x);
}

static void
sql_done(struct pgc *pg, const PGresult *r, void *arg)
{
	struct sqlctx	*x = arg;
	ExecStatusType	 st = r != NULL ? PQresultStatus(r) : PGRES_FATAL_ERROR;

	if (st != PGRES_COMMAND_OK)
		x->failed = 1;
	else if (strncmp(PQcmdStatus((PGresult *)r), "UPDATE", 6) == 0)
		x->count += atoll(PQcmdTuples((PGresult *)r));
	else if (strcmp(PQcmdStatus((PGresult *)r), "ROLLBACK") == 0)
		x->failed = 1;
	if (--x->left > 0)
		return;
	if (x->failed)
		fail(x->c, SESS_ERR_UNAVAILABLE, "the records could not be "
		    "changed in PostgreSQL: nothing was");
	else {
		json_object_set_new(x->ev, "records", json_integer(x->count));
		answer(x->c, json_incref(x->ev));
	}
	json_decref(x->ev);
	free(x);
}

/* ---- answers ---- */

static int
may(struct ctl *c, const struct principal *who, enum cfg_kind kind,
    json_int_t dbid, int right)
{
	if (svc_principal_can(who, kind, dbid, right))
		return 1;
	fail(c, SESS_ERR_FORBIDDEN, "no %s right on %lld",
	    access_right_name(right), (long long)dbid);
	return 0;
}

/* answer - ev (taken) answers c, which ends */
static void
answer(struct ctl *c, json_t *ev)
{
	char	*body;

	json_object_set_new(ev, "event", json_string(c->answer));
	if (c->conn != NULL) {
		json_object_del(ev, "event");
		body = json_dumps(ev, JSON_COMPACT);
		http_respond(c->conn, 200, "application/json", NULL, body,
		    strlen(body));
		free(body);
	} else if (c->s != NULL)
		sess_reply(c->s, c->ref, ev);	/* borrowed */
	json_decref(ev);
	LIST_REMOVE(c, entry);
	free(c);
}

static int
http_status_of(const char *code)
{
	if (strcmp(code, SESS_ERR_NOT_FOUND) == 0)
		return 404;
	if (strcmp(code, SESS_ERR_FORBIDDEN) == 0)
		return 403;
	if (strcmp(code, "InvalidState") == 0)
		return 409;
	if (strcmp(code, SESS_ERR_UNAVAILABLE) == 0)
		return 503;
	return 400;
}

static void
fail(struct ctl *c, const char *code, const char *fmt, ...)
{
	va_list	 ap;
	char	 msg[512];

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (c->conn != NULL)	/* as the rest of the port, and 8888 */
		svc_http_error(c->conn, http_status_of(code), code, "%s", msg);
	else if (c->s != NULL)
		sess_send_error(c->s, c->ref, code, "%s", msg);
	LIST_REMOVE(c, entry);
	free(c);
}

static int
enum_ok(const char *field, const char *value)
{
	const struct cfg_field	*f;
	size_t			 i;

	f = cfg_field_find(cfg_type_at(CFG_CAMPAIGN_GROUP)->fields, field,
	    strlen(field));
	if (f == NULL || f->values == NULL)
		return 0;
	for (i = 0; f->values[i] != NULL; i++)
		if (strcmp(f->values[i], value) == 0)
			return 1;
	return 0;
}
