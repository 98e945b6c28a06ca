/* SPDX-License-Identifier: Apache-2.0 */
/*
 * http - the HTTP routes of port 5580 (docs/openapi/routing.yaml), once
 * common/svc.c has checked the request's token:
 *
 *   /v1/interactions			POST: queue one
 *   /v1/interactions/{id}		GET, PATCH (priority, userData),
 *					DELETE (cancel)
 *   /v1/interactions/{id}/{action}	POST accept, reject, complete
 *   /v1/virtual-queues/{number}	GET: its figures
 *   /v1/virtual-queues/{number}/interactions	GET: what waits, in order
 *   /v1/events				GET: the routing events (feed.c)
 *   /urs/call/{connid|max}/lvq/{vq}	GET: URS's {pos, ewt}
 *
 * Rights are those of the config API on the VirtualQueue DN: update to
 * queue, change or cancel an interaction, read to see it or the queue.
 * The agent an interaction is reserved for may accept, reject and
 * complete it with its own token; so may whoever may update the queue.
 * Errors are the config API's {"error": code, "message": ...}.
 *
 * A change is answered once this instance's memory shows it (its event
 * came back from the stream), so that what the answer says (position,
 * state) is what a read right after it says; past WAIT_MS, with the state
 * its script left.
 *
 * What it may touch: memory, Redis through store.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "access.h"
#include "cache.h"
#include "http.h"
#include "jwrite.h"
#include "schema.h"
#include "strmap.h"
#include "svc.h"
#include "util.h"
#include "routing_int.h"

#define WAIT_MS		1000	/* for a change's own event, at most */

enum route {
	R_NONE = 0,
	R_IXS,		/* /v1/interactions */
	R_IX,		/* /v1/interactions/{id} */
	R_IX_ACTION,	/* /v1/interactions/{id}/{action} */
	R_VQ,		/* /v1/virtual-queues/{number} */
	R_VQ_IXS,	/* /v1/virtual-queues/{number}/interactions */
	R_EVENTS,	/* /v1/events */
	R_URS,		/* /urs/call/{connid|max}/lvq/{vq} */
};

struct req {
	enum route	 route;
	char		 a[128];	/* id, number, connid */
	char		 b[128];	/* action, vq */
};

/* A change waiting for its event to come back. */
struct waiter {
	struct http_conn *c;
	char		 id[RT_ID_MAX];
	int		 status;	/* of the answer */
	enum ix_state	 want;		/* the state to see, or IX_ENDED */
	unsigned	 version;	/* the change is later than this */
	struct event	*timer;
};

static struct strmap	 waiters;	/* id -> struct waiter */

static int	seen(const struct waiter *);

/* ---- paths ---- */

static int
seg(const char **p, const char *end, char *out, size_t len)
{
	const char	*q;
	size_t		 n;

	if (*p >= end || **p != '/')
		return 0;
	(*p)++;
	q = memchr(*p, '/', (size_t)(end - *p));
	n = (size_t)((q != NULL ? q : end) - *p);
	if (n == 0 || n >= len)
		return -1;
	memcpy(out, *p, n);
	out[n] = '\0';
	*p += n;
	return 1;
}

static void
parse(const struct http_request *r, struct req *q)
{
	const char	*p = r->target, *end = r->target + r->path_len;
	char		 s[6][128];
	int		 k = 0, rc;

	memset(q, 0, sizeof(*q));
	while (k < 6 && (rc = seg(&p, end, s[k], sizeof(s[k]))) == 1)
		k++;
	if (p != end || k < 2)
		return;
	if (k == 5 && strcmp(s[0], "urs") == 0 && strcmp(s[1], "call") == 0 &&
	    strcmp(s[3], "lvq") == 0) {
		q->route = R_URS;
		snprintf(q->a, sizeof(q->a), "%s", s[2]);
		snprintf(q->b, sizeof(q->b), "%s", s[4]);
		return;
	}
	if (strcmp(s[0], "v1") != 0)
		return;
	if (strcmp(s[1], "events") == 0 && k == 2)
		q->route = R_EVENTS;
	else if (strcmp(s[1], "interactions") == 0) {
		q->route = k == 2 ? R_IXS : k == 3 ? R_IX : k == 4 ?
		    R_IX_ACTION : R_NONE;
		if (k >= 3)
			snprintf(q->a, sizeof(q->a), "%s", s[2]);
		if (k == 4)
			snprintf(q->b, sizeof(q->b), "%s", s[3]);
	} else if (strcmp(s[1], "virtual-queues") == 0 && k >= 3 && k <= 4) {
		snprintf(q->a, sizeof(q->a), "%s", s[2]);
		q->route = k == 3 ? R_VQ : strcmp(s[3], "interactions") == 0 ?
		    R_VQ_IXS : R_NONE;
	}
}

static const char *
allowed(enum route r)
{
	switch (r) {
	case R_IXS:
	case R_IX_ACTION:
		return "POST";
	case R_IX:
		return "GET, PATCH, DELETE";
	default:
		return "GET";
	}
}

static int
method_ok(const struct http_request *r, enum route route)
{
	switch (route) {
	case R_IXS:
	case R_IX_ACTION:
		return http_method_is(r, "POST");
	case R_IX:
		return http_method_is(r, "GET") || http_method_is(r, "PATCH") ||
		    http_method_is(r, "DELETE");
	default:
		return http_method_is(r, "GET");
	}
}

/* rthttp_head - the route and method, before the body is read */
int
rthttp_head(struct http_conn *c, const struct http_request *r,
    const struct principal *who)
{
	struct req	 q;
	char		 extra[64], *text;
	json_t		*body;

	parse(r, &q);
	if (q.route == R_NONE) {
		svc_http_error(c, 404, "NotFound", "no such route: %.*s",
		    (int)r->path_len, r->target);
		return SVC_HTTP_ANSWERED;
	}
	if (!method_ok(r, q.route)) {
		snprintf(extra, sizeof(extra), "Allow: %s\r\n",
		    allowed(q.route));
		body = json_pack("{s:s, s:s}", "error", "MethodNotAllowed",
		    "message", "method not allowed on this route");
		text = json_dumps(body, JSON_COMPACT);
		http_respond(c, 405, "application/json", extra, text,
		    strlen(text));
		free(text);
		json_decref(body);
		return SVC_HTTP_ANSWERED;
	}
	if (!store_ready()) {
		svc_http_error(c, 503, "Unavailable", "the routing state is "
		    "not available (Redis); retry later");
		return SVC_HTTP_ANSWERED;
	}
	return SVC_HTTP_WHOLE;
}

/* ---- answers ---- */

static void
reply(struct http_conn *c, int status, json_t *o)
{
	char	*s = json_dumps(o, JSON_COMPACT);

	http_respond(c, status, "application/json", NULL, s, strlen(s));
	free(s);
	json_decref(o);
}

/* ix_json - an interaction as the API shows it */
static json_t *
ix_json(const struct ix *x)
{
	json_t		*o = json_loads(x->doc, 0, NULL);
	unsigned	 pos = queue_position(x);

	if (o == NULL)
		o = json_object();
	json_object_del(o, "vq");
	json_object_set_new(o, "state", json_string(ix_state_name(x->state)));
	json_object_set_new(o, "created", json_integer((json_int_t)
	    x->created_ms));
	if (x->state == IX_QUEUED) {
		json_object_set_new(o, "position", json_integer(pos));
		json_object_set_new(o, "ewt", json_real(ewt(x->vq, pos,
		    EWT_URS)));
	}
	if (x->state == IX_RESERVED || x->state == IX_ACCEPTED) {
		json_object_set_new(o, "agent", json_integer(x->agent));
		json_object_set_new(o, "dn", json_string(x->dn));
	}
	if (x->state == IX_RESERVED)
		json_object_set_new(o, "reservedUntil", json_integer(
		    (json_int_t)x->until_ms));
	return o;
}

/* real - a number as jansson writes a real (%.17g, with ".0" when that
 * looks like an integer); 0, or -1 for one with an exponent */
static int
real(char *buf, size_t len, double v)
{
	int	n = snprintf(buf, len, "%.17g", v);

	if (n < 0 || (size_t)n + 3 > len || strpbrk(buf, "eEni") != NULL)
		return -1;
	if (strchr(buf, '.') == NULL)
		memcpy(buf + n, ".0", 3);
	return 0;
}

/*
 * reply_ix - ix_json's answer, written straight from the stored document
 * (the answer to every change and read of one interaction: no tree is
 * built and dumped); the same bytes.  ix_json when the document is not
 * one rtev.c reads.
 */
static void
reply_ix(struct http_conn *c, int status, const struct ix *x)
{
	struct jw	 w;
	char		 buf[1024], num[40];
	size_t		 len = strlen(x->doc), from, to;
	unsigned	 pos = queue_position(x);

	if (len < 2 || rtev_doc_cut(x->doc, len, "vq", &from, &to) == -1 ||
	    (x->state == IX_QUEUED && real(num, sizeof(num), ewt(x->vq, pos,
	    EWT_URS)) == -1)) {
		reply(c, status, ix_json(x));
		return;
	}
	jw_init(&w, buf, sizeof(buf));
	jw_raw(&w, x->doc, from);
	jw_raw(&w, x->doc + to, len - 1 - to);
	if (w.n > 1)
		jw_lit(&w, ",");
	jw_lit(&w, "\"state\":");
	jw_str(&w, ix_state_name(x->state));
	jw_lit(&w, ",\"created\":");
	jw_int(&w, (long long)x->created_ms);
	if (x->state == IX_QUEUED) {
		jw_lit(&w, ",\"position\":");
		jw_int(&w, pos);
		jw_lit(&w, ",\"ewt\":");
		jw_raw(&w, num, strlen(num));
	}
	if (x->state == IX_RESERVED || x->state == IX_ACCEPTED) {
		jw_lit(&w, ",\"agent\":");
		jw_int(&w, x->agent);
		jw_lit(&w, ",\"dn\":");
		jw_str(&w, x->dn);
	}
	if (x->state == IX_RESERVED) {
		jw_lit(&w, ",\"reservedUntil\":");
		jw_int(&w, (long long)x->until_ms);
	}
	jw_lit(&w, "}");
	http_respond(c, status, "application/json", NULL, w.p, w.n);
	jw_free(&w);
}

/* ---- waiting for a change's event ---- */

/*
 * respond - the change's answer: the interaction as memory shows it, once
 * its event is in; when it did not come in time (late, true), what the
 * change's script said it left, {"id", "state"}, rather than what memory
 * still shows from before (a new interaction not seen yet, an acceptance
 * still "reserved")
 */
static void
respond(struct waiter *w, int late)
{
	struct ix	*x = queue_ix(w->id);

	event_free(w->timer);
	if (w->status == 204)
		http_respond(w->c, 204, NULL, NULL, NULL, 0);
	else if (x != NULL && !late)
		reply_ix(w->c, w->status, x);
	else
		reply(w->c, w->status, json_pack("{s:s, s:s}", "id", w->id,
		    "state", ix_state_name(w->want)));
	free(w);
}

static void
answer(struct waiter *w, int late)
{
	if (strmap_get(&waiters, w->id) == w)
		strmap_del(&waiters, w->id);
	evtimer_del(w->timer);
	respond(w, late);
}

static void
waited(evutil_socket_t fd, short what, void *arg)
{
	struct waiter	*w = arg;

	answer(w, !seen(w));
}

/* seen - is what the waiter waits for in memory? */
static int
seen(const struct waiter *w)
{
	struct ix	*x = queue_ix(w->id);

	if (w->want == IX_ENDED)
		return x == NULL;
	return x != NULL && x->version > w->version && x->state == w->want;
}

/* await - answer c once memory shows id in state want (at most WAIT_MS;
 * at once when another change of it is already waiting) */
static void
await(struct http_conn *c, const char *id, int status, enum ix_state want,
    unsigned version)
{
	struct waiter	*w = xcalloc(1, sizeof(*w));
	struct timeval	 tv = util_tv(WAIT_MS / 1000.0);

	w->c = c;
	snprintf(w->id, sizeof(w->id), "%s", id);
	w->status = status;
	w->want = want;
	w->version = version;
	w->timer = evtimer_new(rt.base, waited, w);
	if (seen(w)) {
		respond(w, 0);
		return;
	}
	if (strmap_get(&waiters, id) != NULL) {
		respond(w, 1);
		return;
	}
	strmap_put(&waiters, w->id, w);
	evtimer_add(w->timer, &tv);
}

/* rthttp_seen - an event of id was applied */
void
rthttp_seen(const char *id)
{
	struct waiter	*w = strmap_get(&waiters, id);

	if (w != NULL && seen(w))
		answer(w, 0);
}

static void
free_waiter(const char *k, void *v, void *arg)
{
	struct waiter	*w = v;

	evtimer_del(w->timer);
	event_free(w->timer);
	svc_http_error(w->c, 503, "Unavailable", "the worker is stopping");
	free(w);
}

void
rthttp_cleanup(void)
{
	strmap_each(&waiters, free_waiter, NULL);
	strmap_clear(&waiters);
}

/* ---- the routes ---- */

static int
may(struct http_conn *c, const struct principal *who, json_int_t vq,
    int right)
{
	if (svc_principal_can(who, CFG_DN, vq, right))
		return 1;
	svc_http_error(c, 403, "Forbidden", "no %s right on virtual queue %lld",
	    right == RIGHT_READ ? "read" : "update", (long long)vq);
	return 0;
}

struct pending {
	struct http_conn *c;
	char		 id[RT_ID_MAX];
	int		 status;	/* on success */
	enum ix_state	 want;
	unsigned	 version;	/* of the interaction when asked */
	int		 as_204;
};

static void
done(int rc, const char *why, void *arg)
{
	struct pending	*p = arg;

	if (rc == 1) {
		enum ix_state	want = p->want;

		if (p->status == 201 && why != NULL &&
		    strcmp(why, "reserved") == 0)
			want = IX_RESERVED;
		if (p->status != 201 && why != NULL)	/* the state it left */
			want = !strcmp(why, "queued") ? IX_QUEUED :
			    !strcmp(why, "reserved") ? IX_RESERVED :
			    !strcmp(why, "accepted") ? IX_ACCEPTED : IX_ENDED;
		await(p->c, p->id, p->as_204 ? 204 : p->status, want,
		    p->version);
	} else if (rc == 0 && why != NULL && strcmp(why, "gone") == 0)
		svc_http_error(p->c, 404, "NotFound", "no interaction %s",
		    p->id);
	else if (rc == 0)
		svc_http_error(p->c, 409, "Conflict", "the interaction is %s",
		    strcmp(why ?: "", "agent") == 0 ? "reserved for another "
		    "agent" : strcmp(why ?: "", "expired") == 0 ? "no longer "
		    "reserved (its reservation expired)" : why ?: "?");
	else
		svc_http_error(p->c, 503, "Unavailable", "%s did not answer; "
		    "retry later", why != NULL && strcmp(why, "postgres") == 0 ?
		    "PostgreSQL" : "Redis");
	free(p);
}

static struct pending *
pending(struct http_conn *c, const char *id, int status, enum ix_state want)
{
	struct pending	*p = xcalloc(1, sizeof(*p));

	p->c = c;
	snprintf(p->id, sizeof(p->id), "%.*s", RT_ID_MAX - 1, id);
	p->status = status;
	p->want = want;
	p->version = queue_ix(id) != NULL ? queue_ix(id)->version : 0;
	return p;
}

static void
create(struct http_conn *c, const struct http_request *r,
    const struct principal *who)
{
	json_t		*b = svc_json_body(c, r, 0);
	char		 id[RT_ID_MAX], why[512], uuid[37];
	char		*doc;
	int		 status;
	struct vq	*q;

	if (b == NULL)
		return;
	if (json_object_get(b, "connId") != NULL ||
	    json_object_get(b, "routingPoint") != NULL) {
		/* a routing point's calls are queued from the voice events */
		svc_http_error(c, 422, "Invalid", "connId and routingPoint are "
		    "set by the routing points, not by a request");
		json_decref(b);
		return;
	}
	util_uuid(uuid);
	snprintf(id, sizeof(id), "%s", uuid);
	if ((doc = queue_doc(b, id, &status, why, sizeof(why))) == NULL) {
		svc_http_error(c, status, status == 404 ? "NotFound" :
		    status == 413 ? "TooLarge" : "Invalid", "%s", why);
		json_decref(b);
		return;
	}
	q = queue_vq(json_string_value(json_object_get(b, "virtualQueue")));
	json_decref(b);
	if (!may(c, who, q->dbid, RIGHT_UPDATE)) {
		free(doc);
		return;
	}
	queue_create(id, doc, q, done, pending(c, id, 201, IX_QUEUED));
	free(doc);
}

/* An ended interaction is kept in Redis for an hour: read from there. */
struct reading {
	struct http_conn	*c;
	struct principal	 who;
	char			 id[RT_ID_MAX];
};

static void
ended_read(json_t *o, int ok, void *arg)
{
	struct reading	*g = arg;
	json_t		*doc = json_object_get(o, "interaction"), *v;
	const char	*k;

	if (!ok)
		svc_http_error(g->c, 503, "Unavailable", "Redis did not "
		    "answer; retry later");
	else if (!json_is_object(doc))
		svc_http_error(g->c, 404, "NotFound", "no interaction %s",
		    g->id);
	else if (may(g->c, &g->who, json_integer_value(json_object_get(doc,
	    "vq")), RIGHT_READ)) {
		doc = json_deep_copy(doc);
		json_object_del(doc, "vq");
		json_object_foreach(o, k, v)
			if (strcmp(k, "state") == 0 || strcmp(k, "created") ==
			    0 || strcmp(k, "agent") == 0 || strcmp(k, "dn") == 0)
				json_object_set(doc, k, v);
		reply(g->c, 200, doc);
	}
	free(g);
}

static void
ended_get(struct http_conn *c, const struct principal *who, const char *id)
{
	struct reading	*g = xcalloc(1, sizeof(*g));

	g->c = c;
	g->who = *who;
	snprintf(g->id, sizeof(g->id), "%s", id);
	store_get(id, ended_read, g);
}

/*
 * A change asked of an interaction this instance has not heard of (yet:
 * the client may have heard of it from another instance) waits until
 * this instance has caught up with the stream (store_catch_up), then is
 * served, or answered 404, as any.
 */
enum change { CH_PATCH, CH_DELETE, CH_ACTION };

struct later {
	struct http_conn	*c;
	struct principal	 who;
	enum change		 ch;
	char			 id[RT_ID_MAX];
	char			 what[16];	/* the action */
	json_t			*body;		/* the PATCH's */
};

static void	change(struct http_conn *, const struct principal *,
		    enum change, const char *, const char *, json_t *, int);

static void
caught_up(void *arg, int stopping)
{
	struct later	*l = arg;

	if (!stopping)
		change(l->c, &l->who, l->ch, l->id, l->what, l->body, 1);
	json_decref(l->body);
	free(l);
}

/* patch - PATCH /v1/interactions/{id}: priority and userData */
static void
patch(struct http_conn *c, const char *id, const struct ix *x, json_t *b)
{
	json_t		*d, *v;
	char		*doc;

	d = json_loads(x->doc, 0, NULL);
	if (d == NULL || json_object_size(b) == 0) {
		svc_http_error(c, 422, "Invalid", "send priority and/or "
		    "userData");
		goto out;
	}
	if ((v = json_object_get(b, "priority")) != NULL) {
		if (!json_is_integer(v) || json_integer_value(v) < 0 ||
		    json_integer_value(v) > 1000000000) {
			svc_http_error(c, 422, "Invalid", "priority must be an "
			    "integer from 0 to 1000000000");
			goto out;
		}
		json_object_set(d, "priority", v);
	}
	if ((v = json_object_get(b, "userData")) != NULL) {
		if (!json_is_object(v)) {
			svc_http_error(c, 422, "Invalid", "userData must be an "
			    "object");
			goto out;
		}
		json_object_set(d, "userData", v);
	}
	if (json_object_size(b) != (json_object_get(b, "priority") != NULL) +
	    (size_t)(json_object_get(b, "userData") != NULL)) {
		svc_http_error(c, 422, "Invalid", "only priority and userData "
		    "may change");
		goto out;
	}
	doc = json_dumps(d, JSON_COMPACT);
	if (strlen(doc) > rt.user_data_max) {
		svc_http_error(c, 413, "TooLarge", "the interaction would be "
		    "%zu bytes; at most %zu", strlen(doc), rt.user_data_max);
		free(doc);
		goto out;
	}
	store_update(id, doc, done, pending(c, id, 200, x->state));
	free(doc);
out:
	json_decref(d);
}

/*
 * change - PATCH or DELETE /v1/interactions/{id}, or POST
 * /v1/interactions/{id}/{accept|reject|complete} (what); body: the
 * PATCH's (borrowed); waited: after catching up
 */
static void
change(struct http_conn *c, const struct principal *who, enum change ch,
    const char *id, const char *what, json_t *body, int waited)
{
	struct ix	*x = queue_ix(id);
	struct later	*l;
	struct pending	*p;
	json_int_t	 agent;

	if (x == NULL && !waited) {
		l = xcalloc(1, sizeof(*l));
		l->c = c;
		l->who = *who;
		l->ch = ch;
		snprintf(l->id, sizeof(l->id), "%s", id);
		snprintf(l->what, sizeof(l->what), "%s", what ? what : "");
		l->body = body != NULL ? json_incref(body) : NULL;
		store_catch_up(caught_up, l);
		return;
	}
	if (x == NULL) {
		svc_http_error(c, 404, "NotFound", "no interaction %s%s", id,
		    ch == CH_ACTION ? "" : " waiting or being handled");
		return;
	}
	if (ch == CH_PATCH) {
		if (may(c, who, x->vq_dbid, RIGHT_UPDATE))
			patch(c, id, x, body);
		return;
	}
	if (ch == CH_DELETE) {
		if (!may(c, who, x->vq_dbid, RIGHT_UPDATE))
			return;
		p = pending(c, id, 204, IX_ENDED);
		p->as_204 = 1;
		store_end(id, "cancelled", 0, done, p);
		return;
	}
	/* the agent it is for, with its own token; else the queue's right */
	if (who->kind == PRINCIPAL_PERSON && who->dbid == x->agent)
		agent = x->agent;
	else if (!may(c, who, x->vq_dbid, RIGHT_UPDATE))
		return;
	else
		agent = 0;
	if (strcmp(what, "accept") == 0)
		store_accept(id, agent, x->conn[0] == '\0', done,
		    pending(c, id, 200, IX_ACCEPTED));
	else if (strcmp(what, "reject") == 0)
		store_reject(id, agent, done, pending(c, id, 200, IX_QUEUED));
	else if (strcmp(what, "complete") == 0)
		store_end(id, "completed", agent, done, pending(c, id, 200,
		    IX_ENDED));
	else
		svc_http_error(c, 404, "NotFound", "no action %s (accept, "
		    "reject, complete)", what);
}

/* one - GET, PATCH, DELETE /v1/interactions/{id} */
static void
one(struct http_conn *c, const struct http_request *r,
    const struct principal *who, const char *id)
{
	struct ix	*x;
	json_t		*b;

	if (http_method_is(r, "DELETE")) {
		change(c, who, CH_DELETE, id, NULL, NULL, 0);
		return;
	}
	if (!http_method_is(r, "GET")) {
		if ((b = svc_json_body(c, r, 0)) == NULL)
			return;
		change(c, who, CH_PATCH, id, NULL, b, 0);
		json_decref(b);
		return;
	}
	if ((x = queue_ix(id)) == NULL)
		ended_get(c, who, id);
	else if (may(c, who, x->vq_dbid, RIGHT_READ))
		reply_ix(c, 200, x);
}

/* vq_figures - GET /v1/virtual-queues/{number} */
static void
vq_figures(struct http_conn *c, const struct principal *who, struct vq *q)
{
	const struct ix	*x;
	uint64_t	 now = now_wall_us() / 1000, oldest = 0;
	unsigned	 agents, free_now = 0;

	if (!may(c, who, q->dbid, RIGHT_READ))
		return;
	TAILQ_FOREACH(x, &q->list, entry)
		if (x->state == IX_QUEUED && (oldest == 0 ||
		    x->created_ms < oldest))
			oldest = x->created_ms;
	agents = ewt_agents(q, &free_now);
	reply(c, 200, json_pack("{s:s, s:i, s:f, s:f, s:f, s:i, s:i}",
	    "virtualQueue", q->number, "waiting", (int)q->waiting,
	    "longestWait", oldest > 0 && now > oldest ? (now - oldest) /
	    1000.0 : 0.0, "ewt", ewt(q, q->waiting + 1, EWT_URS),
	    "ewtUrs2", ewt(q, q->waiting + 1, EWT_URS2),
	    "agents", (int)agents, "agentsFree", (int)free_now));
}

static int
by_pos(const void *a, const void *b)
{
	return (int)json_integer_value(json_object_get(*(json_t *const *)a,
	    "position")) - (int)json_integer_value(json_object_get(
	    *(json_t *const *)b, "position"));
}

/* vq_list - GET /v1/virtual-queues/{number}/interactions */
static void
vq_list(struct http_conn *c, const struct principal *who, struct vq *q)
{
	const struct ix	*x;
	json_t		**v, *a;
	size_t		 n = 0, i;

	if (!may(c, who, q->dbid, RIGHT_READ))
		return;
	v = xcalloc(q->waiting + 1, sizeof(*v));
	TAILQ_FOREACH(x, &q->list, entry)
		if (x->state == IX_QUEUED && n < q->waiting)
			v[n++] = ix_json(x);
	qsort(v, n, sizeof(*v), by_pos);
	a = json_array();
	for (i = 0; i < n; i++)
		json_array_append_new(a, v[i]);
	free(v);
	reply(c, 200, json_pack("{s:s, s:o}", "virtualQueue", q->number,
	    "interactions", a));
}

/*
 * urs - GET /urs/call/{connid|max}/lvq/{vq}[.GQ]?aqt=stat|urs|urs2: the
 * position of the interaction whose connId (or id) is given, or of one
 * that would come now ("max"), in the virtual queue, or in a DN group of
 * virtual queues named with ".GQ"; and its expected wait.
 */
static void
urs(struct http_conn *c, const struct http_request *r,
    const struct principal *who, const struct req *q)
{
	char			 aqt[16] = "urs", name[128];
	enum ewt_kind		 kind;
	const struct cobj	*g;
	struct vq		*vq, *vs[64];
	size_t			 nv = 0, i, len;
	struct ix		*x = NULL, *y;
	unsigned		 pos = 0;
	double			 e, best = -1;
	json_t			*m, *d;

	if (http_query(r, "aqt", aqt, sizeof(aqt)) == -1 ||
	    (strcmp(aqt, "urs") != 0 && strcmp(aqt, "urs2") != 0 &&
	    strcmp(aqt, "stat") != 0)) {
		svc_http_error(c, 400, "BadRequest", "aqt must be stat, urs "
		    "or urs2");
		return;
	}
	kind = strcmp(aqt, "urs") == 0 ? EWT_URS : strcmp(aqt, "urs2") == 0 ?
	    EWT_URS2 : EWT_STAT;
	len = strlen(q->b);
	if (len > 3 && strcmp(q->b + len - 3, ".GQ") == 0) {
		snprintf(name, sizeof(name), "%.*s", (int)(len - 3), q->b);
		if ((g = cache_find(CFG_DN_GROUP, name)) == NULL) {
			svc_http_error(c, 404, "NotFound", "no DN group %s",
			    name);
			return;
		}
		m = cobj_get(g, "members");
		json_array_foreach(m, i, d)
			if (nv < 64 && (vq = queue_vq_dbid(json_integer_value(
			    d))) != NULL)
				vs[nv++] = vq;
		json_decref(m);
	} else if ((vq = queue_vq(q->b)) != NULL)
		vs[nv++] = vq;
	if (nv == 0) {
		svc_http_error(c, 404, "NotFound", "no virtual queue %s", q->b);
		return;
	}
	for (i = 0; i < nv; i++)
		if (!svc_principal_can(who, CFG_DN, vs[i]->dbid, RIGHT_READ)) {
			svc_http_error(c, 403, "Forbidden", "no read right on "
			    "virtual queue %s", vs[i]->number);
			return;
		}
	if (strcmp(q->a, "max") != 0) {
		for (i = 0; i < nv && x == NULL; i++)
			TAILQ_FOREACH(y, &vs[i]->list, entry)
				if (strcmp(y->conn, q->a) == 0 ||
				    strcmp(y->id, q->a) == 0) {
					x = y;
					break;
				}
		if (x == NULL) {
			reply(c, 200, json_pack("{s:i, s:i}", "pos", -1, "ewt",
			    -1));
			return;
		}
	}
	/* in a group: the queue where it waits, or the shortest wait */
	for (i = 0; i < nv; i++) {
		unsigned	p = x != NULL ? (x->vq == vs[i] ?
				    queue_position(x) : 0) : vs[i]->waiting + 1;

		if (p == 0)
			continue;
		e = ewt(vs[i], p, kind);
		if (pos == 0 || (e >= 0 && (best < 0 || e < best))) {
			pos = p;
			best = e;
		}
	}
	reply(c, 200, json_pack("{s:i, s:i}", "pos", pos > 0 ? (int)pos : -1,
	    "ewt", best < 0 ? -1 : (int)(best + 0.5)));
}

/* rthttp_request - see routing_int.h */
void
rthttp_request(struct http_conn *c, const struct http_request *r,
    const struct principal *who)
{
	struct req	 q;
	struct vq	*vq;

	parse(r, &q);
	switch (q.route) {
	case R_IXS:
		create(c, r, who);
		break;
	case R_IX:
	case R_IX_ACTION:
		if (strlen(q.a) >= RT_ID_MAX) {
			svc_http_error(c, 404, "NotFound", "no interaction "
			    "%.64s...", q.a);
			break;
		}
		if (q.route == R_IX)
			one(c, r, who, q.a);
		else
			change(c, who, CH_ACTION, q.a, q.b, NULL, 0);
		break;
	case R_VQ:
	case R_VQ_IXS:
		if ((vq = queue_vq(q.a)) == NULL) {
			svc_http_error(c, 404, "NotFound", "no virtual queue "
			    "%s", q.a);
			break;
		}
		if (q.route == R_VQ)
			vq_figures(c, who, vq);
		else
			vq_list(c, who, vq);
		break;
	case R_EVENTS:
		feed_open(c, r, who);
		break;
	case R_URS:
		urs(c, r, who, &q);
		break;
	case R_NONE:
		svc_http_error(c, 404, "NotFound", "no such route");
		break;
	}
}
