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
 * and reloads, drains and stops; this file holds what is the events
 * worker's own: resuming, registrations, requests, the fan-out of events,
 * agents left logged in.
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

#define SEEN_MAX		65536	/* event ids remembered for de-dup */
#define RESUME_SEEN_MAX		8192	/* per resumed client */
#define REPLAY_BATCH		500
#define REQUEST_TIMEOUT_S	10
#define SWEEP_MS		1000
#define DN_MAX			(EVREQ_DN_MAX + 1)

/* Something that waits for Redis on behalf of a client. */
enum op_kind { OP_SEND, OP_QUERY, OP_REPLAY };

struct op {
	enum op_kind		 kind;
	struct client		*c;		/* NULL once the client left */
	json_int_t		 ref;
	char			 dn[DN_MAX];
	/* OP_SEND: the request, then waiting for the answering event */
	char			 request_id[48];
	char			*name;
	uint64_t		 deadline_us;
	int			 sent;
	TAILQ_ENTRY(op)		 client_entry;
	TAILQ_ENTRY(op)		 pending_entry;	/* OP_SEND once sent */
};
TAILQ_HEAD(op_list, op);

/* An agent a client logged in, logged out for it if it goes away. */
struct login {
	char		 dn[DN_MAX];
	char		 agent[128];
};

struct client {
	struct sess		*s;
	int			 open;
	int			 held;		/* waits for RequestResume */
	int			 live[VOICE_REGIONS_MAX]; /* replayed: live */
	int			 replaying;
	int			 region;	/* replaying this one */
	json_int_t		 resume_ref;
	size_t			 replayed;
	int			 lost[VOICE_REGIONS_MAX];
	struct sid		 cursor[VOICE_REGIONS_MAX];
	int			 has_cursor[VOICE_REGIONS_MAX];
	struct seen		*resumed;	/* ids replayed, for de-dup */
	char			**dns;		/* registered */
	size_t			 ndns;
	struct login		*logins;
	size_t			 nlogins;
	struct op_list		 ops;
	TAILQ_ENTRY(client)	 entry;
};
TAILQ_HEAD(client_list, client);

/* The clients registered on one DN (regs: DN number -> reg). */
struct reg {
	struct client	**v;
	size_t		  n;
};

/* reg_free - one DN's registrations, at exit */
static void
reg_free(const char *dn, void *v, void *arg)
{
	struct reg	*r = v;

	free(r->v);
	free(r);
}

/* An agent whose client left without logging it out. */
struct ghost {
	struct login		 l;
	struct principal	 who;
	struct event		*timer;
	TAILQ_ENTRY(ghost)	 entry;
};
TAILQ_HEAD(ghost_list, ghost);

static int	 events_start(struct event_base *, const struct conf *, int);
static int	 events_reload_check(const struct conf *, char *, size_t);
static void	 events_cleanup(void);

const struct worker_ops events_worker_ops = {
	.start = events_start,
	.reload_check = events_reload_check,
	.reload_apply = svc_reload,
	.listen = svc_listen,
	.stop = svc_stop,
	.cleanup = svc_cleanup,
};

static struct event_base	*base;
static struct seen		*seen;
static struct client_list	 clients = TAILQ_HEAD_INITIALIZER(clients);
static struct op_list		 pending = TAILQ_HEAD_INITIALIZER(pending);
static struct ghost_list	 ghosts = TAILQ_HEAD_INITIALIZER(ghosts);
static struct strmap		 regs;
static struct event		*ev_sweep;
static char			 instance[24];
static uint64_t			 next_request;

static struct metric	*m_received, *m_delivered, *m_dups, *m_requests,
			*m_errors, *m_link, *m_lag, *m_ghosts, *m_replayed;

static enum sess_open on_open(struct sess *, json_t *, const char **);
static void	on_opened(struct sess *, json_t *);
static void	on_session_request(struct sess *, const char *, json_int_t,
		    json_t *);
static void	on_closed(struct sess *);
static void	on_rights_changed(struct sess *);
static void	on_voice_event(struct voice_event *, void *);
static void	on_link(int, void *);
static void	replay_next(struct client *);
static void	resume_past(struct client *);
static int	readable(struct client *, const char *);

/* ---- start, reload, stop ---- */

static void
register_metrics(void)
{
	m_received = metrics_counter("tenantd_events_received_total",
	    "Voice events read from the streams (duplicates included).", NULL);
	m_dups = metrics_counter("tenantd_events_duplicates_total",
	    "Voice events dropped as already delivered (same eventId).", NULL);
	m_delivered = metrics_counter("tenantd_events_delivered_total",
	    "Events sent to clients, one per client.", NULL);
	m_requests = metrics_counter("tenantd_events_requests_total",
	    "Call and agent requests written to the voice side.", NULL);
	m_errors = metrics_counter("tenantd_events_request_errors_total",
	    "Requests answered with EventError by the events worker.", NULL);
	m_link = metrics_gauge("tenantd_events_voice_link_up",
	    "1 while the voice side is reachable (local Redis and heartbeat).",
	    NULL);
	m_lag = metrics_gauge("tenantd_events_lag_seconds",
	    "Age of the last live event when it was read (its time field).",
	    NULL);
	m_ghosts = metrics_counter("tenantd_events_ghost_logouts_total",
	    "Agents logged out because their client left without doing so.",
	    NULL);
	m_replayed = metrics_counter("tenantd_events_replayed_total",
	    "Events sent again to clients that resumed.", NULL);
}

/* on_sweep - requests the voice side did not answer in time */
static void
on_sweep(evutil_socket_t fd, short what, void *arg)
{
	uint64_t		 now = now_mono_us();
	struct op		*op;

	while ((op = TAILQ_FIRST(&pending)) != NULL && op->deadline_us < now) {
		TAILQ_REMOVE(&pending, op, pending_entry);
		if (op->c != NULL) {
			sess_send_error(op->c->s, op->ref, "Timeout", "the voice "
			    "side did not answer %s within %d s", op->name,
			    REQUEST_TIMEOUT_S);
			metric_inc(m_errors);
			TAILQ_REMOVE(&op->c->ops, op, client_entry);
		}
		free(op->name);
		free(op);
	}
}

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

/* events_start - the voice streams, then the session frame (common/svc) */
static int
events_start(struct event_base *b, const struct conf *c, int fd)
{
	struct voice_cbs	 vc = { on_voice_event, on_link, NULL };
	struct timeval		 tv = util_tv(SWEEP_MS / 1000.0);

	base = b;
	register_metrics();
	snprintf(instance, sizeof(instance), "%lx.%x",
	    (unsigned long)(now_wall_us() / 1000), (unsigned)getpid());
	seen = seen_new(SEEN_MAX);
	voice_start(base, c, &vc, NULL);
	if (svc_start(base, c, WORKER_EVENTS, fd, &ops) == -1)
		return -1;
	ev_sweep = event_new(base, -1, EV_PERSIST, on_sweep, NULL);
	event_add(ev_sweep, &tv);
	return 0;
}

static int
events_reload_check(const struct conf *next, char *why, size_t len)
{
	return voice_reload_check(worker_conf(), next, "events", why, len);
}

static void
ghost_free(struct ghost *gh)
{
	TAILQ_REMOVE(&ghosts, gh, entry);
	event_free(gh->timer);
	free(gh);
}

/* events_cleanup - after the sessions are closed (common/svc) */
static void
events_cleanup(void)
{
	struct op	*op;

	while ((op = TAILQ_FIRST(&pending)) != NULL) {
		TAILQ_REMOVE(&pending, op, pending_entry);
		free(op->name);
		free(op);
	}
	while (!TAILQ_EMPTY(&ghosts))
		ghost_free(TAILQ_FIRST(&ghosts));
	voice_stop();
	seen_free(seen);
	strmap_each(&regs, reg_free, NULL);
	strmap_clear(&regs);
	if (ev_sweep != NULL)
		event_free(ev_sweep);
}

/* ---- configuration lookups ---- */

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

/* ---- registrations: DN -> clients ---- */

static struct reg *
reg_get(const char *dn, int create)
{
	struct reg	*r = strmap_get(&regs, dn);

	if (r == NULL && create) {
		r = xcalloc(1, sizeof(*r));
		strmap_put(&regs, dn, r);
	}
	return r;
}

static int
registered(const struct client *c, const char *dn)
{
	size_t	i;

	for (i = 0; i < c->ndns; i++)
		if (strcmp(c->dns[i], dn) == 0)
			return 1;
	return 0;
}

static void
reg_add(struct client *c, const char *dn)
{
	struct reg	*r = reg_get(dn, 1);

	r->v = xrealloc(r->v, (r->n + 1) * sizeof(*r->v));
	r->v[r->n++] = c;
	c->dns = xrealloc(c->dns, (c->ndns + 1) * sizeof(*c->dns));
	c->dns[c->ndns++] = xstrdup(dn);
}

static void
reg_remove(struct client *c, const char *dn)
{
	struct reg	*r = reg_get(dn, 0);
	size_t		 i;

	for (i = 0; r != NULL && i < r->n; i++)
		if (r->v[i] == c) {
			r->v[i] = r->v[--r->n];
			break;
		}
	for (i = 0; i < c->ndns; i++)
		if (strcmp(c->dns[i], dn) == 0) {
			free(c->dns[i]);
			c->dns[i] = c->dns[--c->ndns];
			break;
		}
}

/* ---- agents logged in by a client; ghosts ---- */

static void
login_forget(const char *dn, const char *agent)
{
	struct client	*c;
	struct ghost	*gh, *ngh;
	size_t		 i;

	TAILQ_FOREACH(c, &clients, entry)
		for (i = 0; i < c->nlogins; i++)
			if (strcmp(c->logins[i].dn, dn) == 0 && (agent == NULL ||
			    strcmp(c->logins[i].agent, agent) == 0))
				c->logins[i--] = c->logins[--c->nlogins];
	for (gh = TAILQ_FIRST(&ghosts); gh != NULL; gh = ngh) {
		ngh = TAILQ_NEXT(gh, entry);
		if (strcmp(gh->l.dn, dn) == 0)
			ghost_free(gh);
	}
}

static void
login_note(struct client *c, const char *dn, const char *agent)
{
	login_forget(dn, NULL);
	c->logins = xrealloc(c->logins, (c->nlogins + 1) * sizeof(*c->logins));
	snprintf(c->logins[c->nlogins].dn, DN_MAX, "%s", dn);
	snprintf(c->logins[c->nlogins].agent, 128, "%s", agent);
	c->nlogins++;
}

static void
ghost_sent(int ok, void *arg)
{
	if (!ok)
		log_warnx("could not ask the voice side for a ghost logout: "
		    "Redis is unreachable");
}

/* on_ghost - the grace period is over: log the agent out */
static void
on_ghost(evutil_socket_t fd, short what, void *arg)
{
	struct ghost	*gh = arg;
	json_t		*req;
	char		 id[64];

	snprintf(id, sizeof(id), "%s-g%llu", instance,
	    (unsigned long long)++next_request);
	log_info("agent %s on DN %s: its client left %.0f s ago without "
	    "logging out; logging it out", gh->l.agent, gh->l.dn,
	    worker_conf()->workers[WORKER_EVENTS].logout_grace);
	req = json_pack("{s:s, s:s, s:s, s:s, s:s}", "request",
	    "RequestAgentLogout", "requestId", id, "dn", gh->l.dn, "agentId",
	    gh->l.agent, "reason", "ClientGone");
	voice_send(req, ghost_sent, NULL);
	json_decref(req);
	metric_inc(m_ghosts);
	ghost_free(gh);
}

/* haunt - c left: its agents get logged out unless someone takes them */
static void
haunt(struct client *c)
{
	double		 grace = worker_conf()->workers[WORKER_EVENTS].logout_grace;
	struct timeval	 tv;
	struct ghost	*gh;
	size_t		 i;

	tv.tv_sec = (time_t)grace;
	tv.tv_usec = (suseconds_t)((grace - (double)tv.tv_sec) * 1e6);
	for (i = 0; i < c->nlogins; i++) {
		gh = xcalloc(1, sizeof(*gh));
		gh->l = c->logins[i];
		gh->who = *svc_who(c->s);
		gh->timer = evtimer_new(base, on_ghost, gh);
		evtimer_add(gh->timer, &tv);
		TAILQ_INSERT_TAIL(&ghosts, gh, entry);
	}
}

/* adopt - a client of the same principal registers the DN: it is back */
static void
adopt(struct client *c, const char *dn)
{
	struct ghost	*gh, *ngh;

	for (gh = TAILQ_FIRST(&ghosts); gh != NULL; gh = ngh) {
		ngh = TAILQ_NEXT(gh, entry);
		if (strcmp(gh->l.dn, dn) != 0 || gh->who.kind != svc_who(c->s)->kind ||
		    gh->who.dbid != svc_who(c->s)->dbid)
			continue;
		c->logins = xrealloc(c->logins, (c->nlogins + 1) *
		    sizeof(*c->logins));
		c->logins[c->nlogins++] = gh->l;
		ghost_free(gh);
	}
}

/* ---- sessions ---- */

static struct op *
op_new(struct client *c, enum op_kind kind, json_int_t ref)
{
	struct op	*op = xcalloc(1, sizeof(*op));

	op->kind = kind;
	op->c = c;
	op->ref = ref;
	TAILQ_INSERT_TAIL(&c->ops, op, client_entry);
	return op;
}

/* op_done - the op's client no longer waits for it */
static void
op_done(struct op *op)
{
	if (op->c != NULL)
		TAILQ_REMOVE(&op->c->ops, op, client_entry);
	op->c = NULL;
}

/* on_opened - the token is good: the client is served from now on */
static void
on_opened(struct sess *s, json_t *extra)
{
	struct client	*c = svc_data(s);
	json_t		*regions = json_array();
	int		 i;

	c->open = 1;
	TAILQ_INSERT_TAIL(&clients, c, entry);
	for (i = 0; i < voice_nregions(); i++)
		json_array_append_new(regions, json_string(
		    voice_region_name(i)));
	json_object_set_new(extra, "link", json_string(voice_link_up() ?
	    "connected" : "disconnected"));
	json_object_set_new(extra, "regions", regions);
	json_object_set_new(extra, "resume", json_boolean(c->held));
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

static void
on_closed(struct sess *s)
{
	struct client	*c = svc_data(s);
	struct op	*op;

	if (c == NULL)
		return;
	while ((op = TAILQ_FIRST(&c->ops)) != NULL)
		op_done(op);	/* freed when Redis answers */
	if (c->open) {
		TAILQ_REMOVE(&clients, c, entry);
		haunt(c);
	}
	while (c->ndns > 0)
		reg_remove(c, c->dns[c->ndns - 1]);
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
		reg_remove(c, dn);
	}
}

/* ---- events from the voice side ---- */

/* position - {"<region>": "<id>"}: where the event is in its stream */
static json_t *
position(const struct voice_event *ev)
{
	return json_pack("{s:s}", voice_region_name(ev->region), ev->id_text);
}

/* plain - a region name that needs no escaping in JSON */
static int
plain(const char *s)
{
	for (; *s != '\0'; s++)
		if (*s == '"' || *s == '\\' || (unsigned char)*s < 0x20)
			return 0;
	return 1;
}

/*
 * splice - the event's text as the voice side wrote it, with its
 * position added before the closing brace: the line every registered
 * client gets, without parsing it into a new encoding.  NULL when the
 * text does not lend itself (the encoder does it then).
 */
static char *
splice(const struct voice_event *ev, size_t *len)
{
	const char	*end = ev->raw + ev->raw_len;
	const char	*region = voice_region_name(ev->region);
	char		*buf;
	size_t		 n, cap;

	while (end > ev->raw && end[-1] != '}')
		end--;
	/* A line break between tokens would end the line early. */
	if (end - ev->raw < 3 || !plain(region) || memchr(ev->raw, '\n',
	    ev->raw_len) != NULL || memchr(ev->raw, '\r', ev->raw_len) !=
	    NULL)
		return NULL;
	n = (size_t)(end - 1 - ev->raw);
	cap = n + strlen(region) + strlen(ev->id_text) + 32;
	buf = xmalloc(cap);
	memcpy(buf, ev->raw, n);
	*len = n + (size_t)snprintf(buf + n, cap - n,
	    ",\"position\":{\"%s\":\"%s\"}}\n", region, ev->id_text);
	return buf;
}

/* cap_user_data - a userData over the limit is dropped, and said so */
static void
cap_user_data(json_t *e, size_t raw_len)
{
	size_t	 max = worker_conf()->workers[WORKER_EVENTS].user_data_max;
	json_t	*ud;
	char	*t;

	if (raw_len <= max || (ud = json_object_get(e, "userData")) == NULL)
		return;
	t = json_dumps(ud, JSON_COMPACT | JSON_ENCODE_ANY);
	if (t != NULL && strlen(t) > max) {
		json_object_set_new(e, "userData", json_object());
		json_object_set_new(e, "userDataTruncated", json_true());
	}
	free(t);
}

/* pending_find - the request an event answers */
static struct op *
pending_find(const char *request_id)
{
	struct op	*op;

	if (request_id == NULL)
		return NULL;
	TAILQ_FOREACH(op, &pending, pending_entry)
		if (strcmp(op->request_id, request_id) == 0)
			return op;
	return NULL;
}

/* deliver - one line to c, unless c has had this position already: 1 if sent */
static int
deliver(struct client *c, const struct voice_event *ev, const char *line,
    size_t len)
{
	if ((c->held && !c->live[ev->region]) ||
	    sid_cmp(&ev->id, &c->cursor[ev->region]) <= 0)
		return 0;
	if (c->resumed != NULL && !seen_add(c->resumed, ev->event_id))
		return 0;
	c->cursor[ev->region] = ev->id;
	return sess_send_line(c->s, line, len) == 0;
}

/*
 * prepared - the event as a tree, as clients get it: userData capped,
 * its position added, the voice side's requestId gone.  Built once, when
 * the text cannot be passed on as it is.
 */
static json_t *
prepared(struct voice_event *ev, int *done)
{
	json_t	*e = voice_event_json(ev);

	if (!*done) {
		cap_user_data(e, ev->raw_len);
		json_object_set_new(e, "position", position(ev));
		json_object_del(e, "requestId");
		*done = 1;
	}
	return e;
}

static void
on_voice_event(struct voice_event *ev, void *arg)
{
	const char	*name = ev->name;
	const char	*dn = ev->dn[0] != '\0' ? ev->dn : NULL;
	const char	*agent;
	struct client	*asker = NULL;
	struct reg	*r;
	struct op	*op;
	json_t		*e;
	char		*line;
	size_t		 len, i, sent;
	int		 done = 0;

	metric_inc(m_received);
	if (!seen_add(seen, ev->event_id)) {
		metric_inc(m_dups);
		return;
	}
	if (ev->has_time)
		metric_set(m_lag, (double)((long long)(now_wall_us() / 1000) -
		    ev->time_ms) / 1000.0);
	op = pending_find(ev->request_id[0] != '\0' ? ev->request_id : NULL);

	/* The answer to a request: to its sender, with the ref. */
	if (op != NULL) {
		TAILQ_REMOVE(&pending, op, pending_entry);
		if ((asker = op->c) != NULL) {
			e = prepared(ev, &done);
			if (strcmp(name, "EventAgentLogin") == 0 && dn != NULL &&
			    (agent = json_string_value(json_object_get(e,
			    "agentId"))) != NULL)
				login_note(asker, dn, agent);
			sess_reply(asker->s, op->ref, e);
			json_object_del(e, "ref");
			/* Not again, live or replayed. */
			if (!asker->held || asker->live[ev->region])
				asker->cursor[ev->region] = ev->id;
			if (asker->resumed != NULL)
				seen_add(asker->resumed, ev->event_id);
			metric_inc(m_delivered);
		}
		op_done(op);
		free(op->name);
		free(op);
	}
	if (strcmp(name, "EventError") == 0 || dn == NULL)
		return;		/* only the sender's business */
	if (strcmp(name, "EventAgentLogout") == 0)
		login_forget(dn, NULL);
	if ((r = reg_get(dn, 0)) == NULL || r->n == 0)
		return;
	/* As read, with its position: no new encoding, unless changed. */
	if (ev->request_id[0] != '\0' || ev->raw_len > worker_conf()->
	    workers[WORKER_EVENTS].user_data_max ||
	    (line = splice(ev, &len)) == NULL) {
		if ((line = sess_encode(prepared(ev, &done), &len)) == NULL)
			return;
	}
	for (i = 0, sent = 0; i < r->n; i++)
		if (r->v[i] != asker)
			sent += deliver(r->v[i], ev, line, len);
	metric_add(m_delivered, (double)sent);	/* once: it is atomic */
	free(line);
}

/* on_link - every client hears that the voice link went up or down */
static void
on_link(int up, void *arg)
{
	struct client	*c;
	json_t		*e;
	char		*line;
	size_t		 len;

	metric_set(m_link, up);
	e = json_pack("{s:s, s:I}", "event", up ? "EventLinkConnected" :
	    "EventLinkDisconnected", "time", (json_int_t)(now_wall_us() /
	    1000));
	line = sess_encode(e, &len);
	json_decref(e);
	TAILQ_FOREACH(c, &clients, entry)
		sess_send_line(c->s, line, len);
	free(line);
}

/* ---- resuming ---- */

static void
replayed_cb(int ok, int lost, int past, struct voice_event *v, size_t n,
    void *arg)
{
	struct op	*op = arg;
	struct client	*c = op->c;
	char		*line;
	size_t		 i, len;
	int		 done;

	op_done(op);
	free(op);
	if (c == NULL)
		return;
	if (!ok) {
		sess_send_error(c->s, c->resume_ref, SESS_ERR_UNAVAILABLE,
		    "Redis of region %s is unreachable; resume again later",
		    voice_region_name(c->region));
		c->replaying = 0;	/* still held: it may try again */
		return;
	}
	if (past) {
		resume_past(c);
		return;
	}
	c->lost[c->region] |= lost;
	for (i = 0; i < n; i++) {
		c->cursor[c->region] = v[i].id;
		if (v[i].name[0] == '\0')	/* not an event */
			continue;
		if (!seen_add(c->resumed, v[i].event_id) ||
		    strcmp(v[i].name, "EventError") == 0 ||
		    v[i].dn[0] == '\0' || !registered(c, v[i].dn))
			continue;
		done = 0;
		if ((line = sess_encode(prepared(&v[i], &done), &len)) == NULL)
			continue;
		if (sess_send_line(c->s, line, len) == 0) {
			c->replayed++;
			metric_inc(m_replayed);
		}
		free(line);
	}
	/*
	 * Done with the region once a short batch leaves nothing between it
	 * and the live reader: an entry the live reader passed while this
	 * client was held must come in a batch, or it would be lost.
	 */
	if (n < REPLAY_BATCH && sid_cmp(voice_region_position(c->region),
	    &c->cursor[c->region]) <= 0) {
		c->live[c->region] = 1;
		c->region++;
	}
	replay_next(c);
}

/* replay_next - the next batch, or live once every region is done */
static void
replay_next(struct client *c)
{
	struct op	*op;
	json_t		*e, *lost;
	int		 i;

	while (c->region < voice_nregions() && !c->has_cursor[c->region])
		c->region++;
	if (c->region < voice_nregions()) {
		op = op_new(c, OP_REPLAY, c->resume_ref);
		voice_range(c->region, &c->cursor[c->region], REPLAY_BATCH,
		    replayed_cb, op);
		return;
	}
	/* Regions it had no position for: from now on. */
	lost = json_array();
	for (i = 0; i < voice_nregions(); i++) {
		if (!c->has_cursor[i])
			c->cursor[i] = *voice_region_position(i);
		if (c->lost[i])
			json_array_append_new(lost, json_string(
			    voice_region_name(i)));
	}
	c->held = c->replaying = 0;
	e = json_pack("{s:s, s:I, s:o}", "event", "EventResumed", "replayed",
	    (json_int_t)c->replayed, "lost", lost);
	sess_reply(c->s, c->resume_ref, e);
	json_decref(e);
}

/*
 * resume_past - the position given for a region is after the last entry
 * its stream ever had: no server gave it.  The client is told; a
 * RequestResume again goes on without it, that region counted as lost.
 */
static void
resume_past(struct client *c)
{
	char	pos[48];

	sid_format(&c->cursor[c->region], pos, sizeof(pos));
	sess_send_error(c->s, c->resume_ref, SESS_ERR_BAD_REQUEST, "resume: "
	    "%s is past the end of the stream of region %s; RequestResume "
	    "again goes on without it (that region reported lost)", pos,
	    voice_region_name(c->region));
	c->has_cursor[c->region] = 0;
	c->lost[c->region] = 1;
	c->replaying = 0;
}

static void
do_resume(struct client *c, json_int_t ref)
{
	int	i;

	if (!c->held || c->replaying) {
		sess_send_error(c->s, ref, "InvalidState", c->replaying ?
		    "a resume is running" : "RequestResume follows a "
		    "RequestOpen with \"resume\" positions, once");
		return;
	}
	c->replaying = 1;
	c->resume_ref = ref;
	c->region = 0;
	c->replayed = 0;
	for (i = 0; i < voice_nregions(); i++)
		if (c->has_cursor[i])	/* kept: a position refused before */
			c->lost[i] = 0;
	memset(c->live, 0, sizeof(c->live));
	if (c->resumed == NULL)
		c->resumed = seen_new(RESUME_SEEN_MAX);
	replay_next(c);
}

/* ---- requests ---- */

/* refuse - an EventError for a request that did not pass */
static void
refuse(struct client *c, json_int_t ref, const struct evreq_error *err)
{
	sess_send_error(c->s, ref, err->code, "%s", err->message);
	metric_inc(m_errors);
}

/* readable - may the client read dn (one no longer configured: yes)? */
static int
readable(struct client *c, const char *dn)
{
	const struct cobj	*o = dn_find(dn);

	return o == NULL || svc_can(c->s, CFG_DN, o->dbid, RIGHT_READ);
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

static void
sent(int ok, void *arg)
{
	struct op	*op = arg;

	if (!ok) {
		if (op->c != NULL) {
			sess_send_error(op->c->s, op->ref, SESS_ERR_UNAVAILABLE,
			    "the voice side cannot be reached (Redis); %s was "
			    "not sent", op->name);
			metric_inc(m_errors);
		}
		op_done(op);
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
	TAILQ_INSERT_TAIL(&pending, op, pending_entry);
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
		metric_inc(m_errors);
		return;
	}
	op = op_new(c, OP_SEND, ref);
	op->name = xstrdup(name);
	snprintf(op->request_id, sizeof(op->request_id), "%s-%llu", instance,
	    (unsigned long long)++next_request);
	out = json_deep_copy(req);
	json_object_del(out, "ref");
	json_object_del(out, "token");
	json_object_set_new(out, "requestId", json_string(op->request_id));
	metric_inc(m_requests);
	voice_send(out, sent, op);
	json_decref(out);
}

static void
queried(int ok, json_t *state, void *arg)
{
	struct op		*op = arg;
	struct client		*c = op->c;
	const struct cobj	*o;
	json_t			*e, *type;

	op_done(op);
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

static void
do_register(struct client *c, json_int_t ref, json_t *req)
{
	unsigned	 max = worker_conf()->workers[WORKER_EVENTS].max_registrations;
	const char	*dn;
	json_t		*e;

	if (usable_dn(c, ref, req) == NULL)
		return;
	dn = json_string_value(json_object_get(req, "dn"));
	if (!registered(c, dn)) {
		if (c->ndns >= max) {
			sess_send_error(c->s, ref, "TooManyRegistrations",
			    "at most %u DNs per client", max);
			return;
		}
		reg_add(c, dn);
		adopt(c, dn);
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
	if (!registered(c, dn)) {
		sess_send_error(c->s, ref, "NotRegistered", "dn: %s is not "
		    "registered on this session", dn);
		return;
	}
	reg_remove(c, dn);
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
	op = op_new(c, OP_QUERY, ref);
	snprintf(op->dn, sizeof(op->dn), "%s", json_string_value(
	    json_object_get(req, "dn")));
	voice_query(op->dn, queried, op);
}

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
		do_resume(c, ref);
	else if ((d = evreq_find(name)) == NULL)
		sess_send_error(s, ref, SESS_ERR_UNKNOWN, "no request %s in "
		    "the events protocol", name);
	else if ((dn = usable_dn(c, ref, req)) != NULL &&
	    check_request(c, ref, req, d, dn) == 0)
		forward(c, ref, name, req);
}
