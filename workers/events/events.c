/* SPDX-License-Identifier: Apache-2.0 */
/*
 * events worker - real-time call control on workers.events.listen, in the
 * session protocol (docs/protocol.md, "The events worker").
 *
 * Clients (agent desktops, dashboards, WFM) open a session with a token,
 * register the DNs they follow, and get every event of those DNs in the
 * order the voice side produced it.  They send call and agent requests,
 * which go to the voice side over Redis (voice.c, docs/voice-redis.md);
 * the event that answers a request comes back to its sender with the
 * request's ref.  Every event carries its position in its region's
 * stream; a client that lost its connection opens again with the last
 * positions it saw, registers its DNs, and RequestResume replays what it
 * missed, then the live events follow: nothing lost, nothing twice.
 *
 * The frame every session worker shares (common/svc.c) follows the
 * configuration, answers RequestOpen, keeps each session's rights true,
 * and reloads, drains and stops.  This file starts the worker and serves
 * its sessions and requests; the voice events and registrations are in
 * fanout.c, resuming in resume.c, agents left logged in in ghosts.c
 * (events_int.h lists what they share).
 *
 * What it may touch: the voice keys in Redis (through voice.c), tokens in
 * Redis (common/auth.c, through svc), the configuration read from
 * PostgreSQL into the process's cache (through svc), and the metrics
 * registry.  It writes nothing to PostgreSQL.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <unistd.h>

#include <event2/event.h>

#include "access.h"
#include "auth.h"
#include "cache.h"
#include "events_int.h"
#include "events_worker.h"
#include "log.h"
#include "metrics.h"
#include "request.h"
#include "schema.h"
#include "seen.h"
#include "sess.h"
#include "strmap.h"
#include "svc.h"
#include "util.h"
#include "voice.h"

static int	 events_start(struct event_base *, const struct conf *, int);
static int	 events_reload_check(const struct conf *, char *, size_t);
static void	 events_cleanup(void);
static enum sess_open on_open(struct sess *, json_t *, const char **);
static void	on_opened(struct sess *, json_t *);
static void	on_session_request(struct sess *, const char *, json_int_t,
		    json_t *);
static void	on_closed(struct sess *);
static void	on_rights_changed(struct sess *);
static int	readable(struct client *, const char *);
static void	do_register(struct client *, json_int_t, json_t *);
static void	do_unregister(struct client *, json_int_t, json_t *);
static void	do_query(struct client *, json_int_t, json_t *);
static const struct cobj *usable_dn(struct client *, json_int_t, json_t *);
static int	check_request(struct client *, json_int_t, json_t *,
		    const struct request_def *, const struct cobj *);
static void	forward(struct client *, json_int_t, const char *, json_t *);
static const struct cobj *dn_find(const char *);
static const struct cobj *login_find(const struct cobj *, const char *);
static void	register_metrics(void);
static void	on_sweep(evutil_socket_t, short, void *);
static int	resume_parse(struct client *, json_t *, const char **);
static void	refuse(struct client *, json_int_t,
		    const struct evreq_error *);
static void	queried(int, json_t *, void *);
static void	sent(int, void *);

const struct worker_ops events_worker_ops = {
	.start = events_start,
	.reload_check = events_reload_check,
	.reload_apply = svc_reload,
	.listen = svc_listen,
	.stop = svc_stop,
	.cleanup = svc_cleanup,
};

static const struct svc_ops ops = {
	.open = on_open,
	.opened = on_opened,
	.request = on_session_request,
	.closed = on_closed,
	.rights_changed = on_rights_changed,
	.cleanup = events_cleanup,
	/* An agent its client logged in stays: the client comes back. */
	.stop_message = "tenantd is stopping; reconnect and resume",
};

struct events_env	 events_env = {
	.clients = TAILQ_HEAD_INITIALIZER(events_env.clients),
	.pending = TAILQ_HEAD_INITIALIZER(events_env.pending),
};
static struct event	*ev_sweep;
static char		 instance[24];
static uint64_t		 next_request;

/* ---- start, reload, stop ---- */

/* events_start - the voice streams, then the session frame (common/svc) */
static int
events_start(struct event_base *b, const struct conf *c, int fd)
{
	struct voice_cbs	 vc = { ev_on_voice_event, ev_on_link, NULL };
	struct timeval		 tv = util_tv(SWEEP_MS / 1000.0);

	events_env.base = b;
	register_metrics();
	snprintf(instance, sizeof(instance), "%lx.%x",
	    (unsigned long)(now_wall_us() / 1000), (unsigned)getpid());
	events_env.seen = seen_new(SEEN_MAX, 1);
	voice_start(events_env.base, c, &vc, NULL);
	if (svc_start(events_env.base, c, WORKER_EVENTS, fd, &ops) == -1)
		return -1;
	ev_sweep = event_new(events_env.base, -1, EV_PERSIST, on_sweep, NULL);
	event_add(ev_sweep, &tv);
	return 0;
}

static int
events_reload_check(const struct conf *next, char *why, size_t len)
{
	return voice_reload_check(worker_conf(), next, "events", why, len);
}

/* events_cleanup - after the sessions are closed (common/svc) */
static void
events_cleanup(void)
{
	struct op	*op;

	while ((op = TAILQ_FIRST(&events_env.pending)) != NULL) {
		TAILQ_REMOVE(&events_env.pending, op, pending_entry);
		free(op->name);
		free(op);
	}
	ev_ghosts_clear();
	voice_stop();
	seen_free(events_env.seen);
	ev_regs_clear();
	if (ev_sweep != NULL)
		event_free(ev_sweep);
}

static void
register_metrics(void)
{
	events_env.m_received = metrics_counter("tenantd_events_received_total",
	    "Voice events read from the streams (duplicates included).", NULL);
	events_env.m_dups = metrics_counter("tenantd_events_duplicates_total",
	    "Voice events dropped as already delivered (same eventId).", NULL);
	events_env.m_delivered = metrics_counter(
	    "tenantd_events_delivered_total",
	    "Events sent to clients, one per client.", NULL);
	events_env.m_requests = metrics_counter("tenantd_events_requests_total",
	    "Call and agent requests written to the voice side.", NULL);
	events_env.m_errors = metrics_counter(
	    "tenantd_events_request_errors_total",
	    "Requests answered with EventError by the events worker.", NULL);
	events_env.m_link = metrics_gauge("tenantd_events_voice_link_up",
	    "1 while the voice side is reachable (local Redis and heartbeat).",
	    NULL);
	events_env.m_lag = metrics_gauge("tenantd_events_lag_seconds",
	    "Age of the last live event when it was read (its time field).",
	    NULL);
	events_env.m_ghosts = metrics_counter(
	    "tenantd_events_ghost_logouts_total",
	    "Agents logged out because their client left without doing so.",
	    NULL);
	events_env.m_replayed = metrics_counter("tenantd_events_replayed_total",
	    "Events sent again to clients that resumed.", NULL);
}

/* on_sweep - requests the voice side did not answer in time */
static void
on_sweep(evutil_socket_t fd, short what, void *arg)
{
	uint64_t		 now = now_mono_us();
	struct op		*op;

	while ((op = TAILQ_FIRST(&events_env.pending)) != NULL &&
	    op->deadline_us < now) {
		TAILQ_REMOVE(&events_env.pending, op, pending_entry);
		if (op->c != NULL) {
			sess_send_error(op->c->s, op->ref, "Timeout", "the voice "
			    "side did not answer %s within %d s", op->name,
			    REQUEST_TIMEOUT_S);
			metric_inc(events_env.m_errors);
			TAILQ_REMOVE(&op->c->ops, op, client_entry);
		}
		free(op->name);
		free(op);
	}
}

/* ---- sessions ---- */

/*
 * on_open - RequestOpen's own field: "resume", the last position seen per
 * region, from a previous session; events then wait until RequestResume
 * has replayed what was missed.  The token is common/svc's.  A session
 * whose open was not accepted keeps its client for the next try.
 */
static enum sess_open
on_open(struct sess *s, json_t *req, const char **why)
{
	struct client	*c = svc_data(s);

	if (c == NULL) {
		c = xcalloc(1, sizeof(*c));
		c->s = s;
		TAILQ_INIT(&c->ops);
		svc_set_data(s, c);
	}
	memset(c->cursor, 0, sizeof(c->cursor));
	memset(c->has_cursor, 0, sizeof(c->has_cursor));
	c->held = 0;
	if (resume_parse(c, json_object_get(req, "resume"), why) == -1)
		return SESS_OPEN_BAD_REQUEST;
	return SESS_OPEN_ACCEPT;
}

/* on_opened - the token is good: the client is served from now on */
static void
on_opened(struct sess *s, json_t *extra)
{
	struct client	*c = svc_data(s);
	json_t		*regions = json_array();
	int		 i;

	c->open = 1;
	TAILQ_INSERT_TAIL(&events_env.clients, c, entry);
	for (i = 0; i < voice_nregions(); i++)
		json_array_append_new(regions, json_string(
		    voice_region_name(i)));
	json_object_set_new(extra, "link", json_string(voice_link_up() ?
	    "connected" : "disconnected"));
	json_object_set_new(extra, "regions", regions);
	json_object_set_new(extra, "resume", json_boolean(c->held));
}

static void
on_closed(struct sess *s)
{
	struct client	*c = svc_data(s);
	struct op	*op;

	if (c == NULL)
		return;
	while ((op = TAILQ_FIRST(&c->ops)) != NULL)
		ev_op_done(op);	/* freed when Redis answers */
	if (c->open) {
		TAILQ_REMOVE(&events_env.clients, c, entry);
		ev_haunt(c);
	}
	while (c->ndns > 0)
		ev_reg_remove(c, c->dns[c->ndns - 1]);
	free(c->dns);
	free(c->logins);
	seen_free(c->resumed);
	free(c);
}

/*
 * on_rights_changed - the access groups changed: a DN the session may no
 * longer read is unregistered, and the session told why, so that it gets
 * none of its events from now on.
 */
static void
on_rights_changed(struct sess *s)
{
	struct client	*c = svc_data(s);
	const char	*dn;
	json_t		*e;
	size_t		 i = c->ndns;

	while (i-- > 0) {
		dn = c->dns[i];
		if (readable(c, dn))
			continue;
		e = json_pack("{s:s, s:s, s:s, s:s}", "event",
		    "EventUnregistered", "dn", dn, "reason", "Forbidden",
		    "message", "no read right on this DN any more");
		sess_send(c->s, e);
		json_decref(e);
		log_info("sess %llu: %s may no longer read DN %s; "
		    "unregistered", (unsigned long long)sess_id(c->s),
		    svc_who(c->s)->name, dn);
		ev_reg_remove(c, dn);
	}
}

/*
 * resume_parse - the "resume" positions of a RequestOpen into c (held
 * until RequestResume); -1 and *why for a malformed one.
 */
static int
resume_parse(struct client *c, json_t *resume, const char **why)
{
	const char	*k;
	json_t		*v;
	struct sid	 id;
	int		 i;

	if (resume != NULL && !json_is_object(resume)) {
		*why = "resume: must be an object of region: stream id";
		return -1;
	}
	json_object_foreach(resume, k, v) {
		if ((i = voice_region_index(k)) == -1 ||
		    sid_parse(json_string_value(v), &id) == -1) {
			*why = i == -1 ? "resume: no such region" :
			    "resume: a position is a stream id like "
			    "\"1764140000000-0\"";
			return -1;
		}
		c->cursor[i] = id;
		c->has_cursor[i] = 1;
		c->held = 1;
	}
	return 0;
}

/* ---- requests ---- */

/* on_session_request - every request after RequestOpen */
static void
on_session_request(struct sess *s, const char *name, json_int_t ref,
    json_t *req)
{
	struct client		*c = svc_data(s);
	const struct request_def *d;
	const struct cobj	*dn;

	if (!svc_valid(s)) {
		sess_send_error(s, ref, SESS_ERR_UNAUTHORIZED, "%s is disabled "
		    "or deleted", svc_who(s)->name);
		sess_close(s);
		return;
	}
	if (strcmp(name, "RequestRegisterAddress") == 0)
		do_register(c, ref, req);
	else if (strcmp(name, "RequestUnregisterAddress") == 0)
		do_unregister(c, ref, req);
	else if (strcmp(name, "RequestQueryAddress") == 0)
		do_query(c, ref, req);
	else if (strcmp(name, "RequestResume") == 0)
		ev_resume(c, ref);
	else if ((d = evreq_find(name)) == NULL)
		sess_send_error(s, ref, SESS_ERR_UNKNOWN, "no request %s in "
		    "the events protocol", name);
	else if ((dn = usable_dn(c, ref, req)) != NULL &&
	    check_request(c, ref, req, d, dn) == 0)
		forward(c, ref, name, req);
}

static void
do_register(struct client *c, json_int_t ref, json_t *req)
{
	unsigned	 max = worker_conf()->workers[WORKER_EVENTS].max_registrations;
	const char	*dn;
	json_t		*e;

	if (usable_dn(c, ref, req) == NULL)
		return;
	dn = json_string_value(json_object_get(req, "dn"));
	if (!ev_registered(c, dn)) {
		if (c->ndns >= max) {
			sess_send_error(c->s, ref, "TooManyRegistrations",
			    "at most %u DNs per client", max);
			return;
		}
		ev_reg_add(c, dn);
		ev_adopt(c, dn);
	}
	e = json_pack("{s:s, s:s, s:s}", "event", "EventRegistered", "dn", dn,
	    "link", voice_link_up() ? "connected" : "disconnected");
	sess_reply(c->s, ref, e);
	json_decref(e);
}

static void
do_unregister(struct client *c, json_int_t ref, json_t *req)
{
	struct evreq_error	 err;
	const char		*dn;
	json_t			*e;

	if (evreq_check_dn(req, &err) == -1) {
		refuse(c, ref, &err);
		return;
	}
	dn = json_string_value(json_object_get(req, "dn"));
	if (!ev_registered(c, dn)) {
		sess_send_error(c->s, ref, "NotRegistered", "dn: %s is not "
		    "registered on this session", dn);
		return;
	}
	ev_reg_remove(c, dn);
	e = json_pack("{s:s, s:s}", "event", "EventUnregistered", "dn", dn);
	sess_reply(c->s, ref, e);
	json_decref(e);
}

static void
do_query(struct client *c, json_int_t ref, json_t *req)
{
	struct op	*op;

	if (usable_dn(c, ref, req) == NULL)
		return;
	op = ev_op_new(c, OP_QUERY, ref);
	snprintf(op->dn, sizeof(op->dn), "%s", json_string_value(
	    json_object_get(req, "dn")));
	voice_query(op->dn, queried, op);
}

static void
queried(int ok, json_t *state, void *arg)
{
	struct op		*op = arg;
	struct client		*c = op->c;
	const struct cobj	*o;
	json_t			*e, *type;

	ev_op_done(op);
	if (c == NULL) {
		free(op);
		return;
	}
	if (!ok) {
		sess_send_error(c->s, op->ref, SESS_ERR_UNAVAILABLE, "the voice "
		    "state cannot be read (Redis is unreachable)");
		free(op);
		return;
	}
	o = dn_find(op->dn);
	type = o != NULL ? cobj_get(o, "type") : NULL;
	e = json_pack("{s:s, s:s, s:s}", "event", "EventAddressInfo", "dn",
	    op->dn, "link", voice_link_up() ? "connected" : "disconnected");
	if (type != NULL)
		json_object_set_new(e, "type", type);
	if (json_is_object(json_object_get(state, "agent")))
		json_object_set(e, "agent", json_object_get(state, "agent"));
	else
		json_object_set_new(e, "agent", json_pack("{s:s}", "state",
		    "LoggedOut"));
	if (json_is_array(json_object_get(state, "calls")))
		json_object_set(e, "calls", json_object_get(state, "calls"));
	else
		json_object_set_new(e, "calls", json_array());
	sess_reply(c->s, op->ref, e);
	json_decref(e);
	free(op);
}

/* forward - a checked request goes to the voice side */
static void
forward(struct client *c, json_int_t ref, const char *name, json_t *req)
{
	struct op	*op;
	json_t		*out;

	if (!voice_link_up()) {
		sess_send_error(c->s, ref, "LinkDown", "the voice side is "
		    "unreachable; %s was not sent", name);
		metric_inc(events_env.m_errors);
		return;
	}
	op = ev_op_new(c, OP_SEND, ref);
	op->name = xstrdup(name);
	ev_request_id(op->request_id, sizeof(op->request_id), "");
	out = json_deep_copy(req);
	json_object_del(out, "ref");
	json_object_del(out, "token");
	json_object_set_new(out, "requestId", json_string(op->request_id));
	metric_inc(events_env.m_requests);
	voice_send(out, sent, op);
	json_decref(out);
}

static void
sent(int ok, void *arg)
{
	struct op	*op = arg;

	if (!ok) {
		if (op->c != NULL) {
			sess_send_error(op->c->s, op->ref, SESS_ERR_UNAVAILABLE,
			    "the voice side cannot be reached (Redis); %s was "
			    "not sent", op->name);
			metric_inc(events_env.m_errors);
		}
		ev_op_done(op);
		free(op->name);
		free(op);
		return;
	}
	/* Waits for its answer, unless the client left. */
	if (op->c == NULL) {
		free(op->name);
		free(op);
		return;
	}
	op->sent = 1;
	op->deadline_us = now_mono_us() + REQUEST_TIMEOUT_S * 1000000ULL;
	TAILQ_INSERT_TAIL(&events_env.pending, op, pending_entry);
}

/*
 * usable_dn - the DN of a request: it exists in the configuration and the
 * principal may use it (read right on it).  NULL after an EventError.
 */
static const struct cobj *
usable_dn(struct client *c, json_int_t ref, json_t *req)
{
	struct evreq_error	 err;
	const struct cobj	*o;
	const char		*dn;

	if (evreq_check_dn(req, &err) == -1) {
		refuse(c, ref, &err);
		return NULL;
	}
	dn = json_string_value(json_object_get(req, "dn"));
	if ((o = dn_find(dn)) == NULL) {
		sess_send_error(c->s, ref, "UnknownDN", "dn: no DN %s in the "
		    "tenant's configuration", dn);
		return NULL;
	}
	if (!svc_can(c->s, CFG_DN, o->dbid, RIGHT_READ)) {
		sess_send_error(c->s, ref, SESS_ERR_FORBIDDEN, "dn: %s may "
		    "not use DN %s (no read right on it)", svc_who(c->s)->name,
		    dn);
		return NULL;
	}
	return o;
}

/* readable - may the client read dn (one no longer configured: yes)? */
static int
readable(struct client *c, const char *dn)
{
	const struct cobj	*o = dn_find(dn);

	return o == NULL || svc_can(c->s, CFG_DN, o->dbid, RIGHT_READ);
}

/* check_request - the fields as defined, then what the cache knows */
static int
check_request(struct client *c, json_int_t ref, json_t *req,
    const struct request_def *d, const struct cobj *dn)
{
	struct evreq_error	 err;
	const char		*agent;

	if (evreq_check(d, req, worker_conf()->workers[WORKER_EVENTS].
	    user_data_max, &err) == -1) {
		refuse(c, ref, &err);
		return -1;
	}
	agent = json_string_value(json_object_get(req, "agentId"));
	if ((d->need & N_AGENT) && login_find(dn, agent) == NULL) {
		sess_send_error(c->s, ref, "UnknownAgent", "agentId: no agent "
		    "login %s on the switch of DN %s", agent,
		    json_string_value(json_object_get(req, "dn")));
		return -1;
	}
	return 0;
}

/* refuse - an EventError for a request that did not pass */
static void
refuse(struct client *c, json_int_t ref, const struct evreq_error *err)
{
	sess_send_error(c->s, ref, err->code, "%s", err->message);
	metric_inc(events_env.m_errors);
}

/* ---- what waits for Redis; configuration lookups ---- */

/* ev_op_new - something c waits for from Redis, on its list */
struct op *
ev_op_new(struct client *c, enum op_kind kind, json_int_t ref)
{
	struct op	*op = xcalloc(1, sizeof(*op));

	op->kind = kind;
	op->c = c;
	op->ref = ref;
	TAILQ_INSERT_TAIL(&c->ops, op, client_entry);
	return op;
}

/* ev_op_done - the op's client no longer waits for it */
void
ev_op_done(struct op *op)
{
	if (op->c != NULL)
		TAILQ_REMOVE(&op->c->ops, op, client_entry);
	op->c = NULL;
}

/* ev_request_id - an id unique to this worker, for the voice side */
void
ev_request_id(char *buf, size_t len, const char *tag)
{
	snprintf(buf, len, "%s-%s%llu", instance, tag,
	    (unsigned long long)++next_request);
}

/* dn_find - a DN by number, on any switch of the tenant */
static const struct cobj *
dn_find(const char *number)
{
	const struct cobj *const	*sw;
	const struct cobj		*o;
	char				 key[DN_MAX + 32];
	size_t				 n, i;

	sw = cache_list(CFG_SWITCH, &n);
	for (i = 0; i < n; i++) {
		snprintf(key, sizeof(key), "%lld/%s", (long long)sw[i]->dbid,
		    number);
		if ((o = cache_find(CFG_DN, key)) != NULL)
			return o;
	}
	return NULL;
}

/* login_find - an agent login by code, on the switch of dn */
static const struct cobj *
login_find(const struct cobj *dn, const char *code)
{
	json_t		*sw = cobj_get(dn, "switch");
	char		 key[300];

	snprintf(key, sizeof(key), "%lld/%s",
	    (long long)json_integer_value(sw), code);
	json_decref(sw);
	return cache_find(CFG_AGENT_LOGIN, key);
}
