/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rp - routing points: a RoutingPoint DN whose configuration names a
 * virtualQueue is routed by this worker (docs/routing.md, "Routing
 * points"; the voice side's part is docs/voice-redis.md).
 *
 *   EventRouteRequest on it	the call is queued in the virtual queue
 *				with the routing point's target, strategy,
 *				priority and timeout, and the call's
 *				attached data; its id is made of the connId
 *				and the event's position, so every instance
 *				that reads the event queues the same one,
 *				once;
 *   an agent reserved		RequestRouteCall to the agent's DN, from
 *				the instance that reserved it;
 *   EventRouteUsed on it	the reservation is accepted (so is the
 *				agent's EventRinging for the call);
 *   EventAbandoned on it	the caller hung up: abandoned;
 *   past the timeout		RequestRouteCall to the defaultDestination
 *				(without one the call waits on).
 *
 * What it touches: the voice request stream (through common/voice.c);
 * the shared state through queue.c and store.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "log.h"
#include "schema.h"
#include "strmap.h"
#include "util.h"
#include "voice.h"
#include "routing_int.h"

/* A routing point routed here. */
struct rpoint {
	char		 number[RT_DN_MAX];
	char		 vq[RT_DN_MAX];
	json_t		*target;	/* as a request names it, or NULL */
	char		 strategy[16];
	json_int_t	 priority;
	json_int_t	 timeout;
	char		 dest[RT_DN_MAX];
};

static struct strmap	 rps;		/* number -> struct rpoint */
static struct strmap	 routing;	/* requestId -> interaction id */
static unsigned long long seq;

static void
free_rp(const char *k, void *v, void *arg)
{
	struct rpoint	*p = v;

	json_decref(p->target);
	free(p);
}

void
rp_start(const struct conf *c)
{
}

static void
free_str(const char *k, void *v, void *arg)
{
	free(v);
}

void
rp_cleanup(void)
{
	strmap_each(&rps, free_rp, NULL);
	strmap_clear(&rps);
	strmap_each(&routing, free_str, NULL);
	strmap_clear(&routing);
}

static void
str_of(const struct cobj *o, const char *f, char *buf, size_t len)
{
	json_t	*v = cobj_get(o, f);

	snprintf(buf, len, "%s", json_is_string(v) ? json_string_value(v) :
	    "");
	json_decref(v);
}

/* rp_config - the routing points with a virtual queue */
void
rp_config(void)
{
	const struct cobj *const	*v;
	const struct cobj		*q;
	struct rpoint			*p;
	size_t				 n, i;
	char				 type[32], expr[4096];
	json_int_t			 g;

	strmap_each(&rps, free_rp, NULL);
	strmap_clear(&rps);
	v = cache_list(CFG_DN, &n);
	for (i = 0; i < n; i++) {
		str_of(v[i], "type", type, sizeof(type));
		if (!v[i]->enabled || (strcmp(type, "RoutingPoint") != 0 &&
		    strcmp(type, "VirtualRoutingPoint") != 0) ||
		    cobj_int(v[i], "virtualQueue", 0) == 0)
			continue;
		q = cache_get(cobj_int(v[i], "virtualQueue", 0));
		if (q == NULL || !q->enabled || queue_vq_dbid(q->dbid) == NULL) {
			log_warnx("routing: routing point %lld names virtual "
			    "queue %lld, which is not an enabled VirtualQueue: "
			    "its calls wait there unrouted", (long long)
			    v[i]->dbid, (long long)cobj_int(v[i], "virtualQueue",
			    0));
			continue;
		}
		p = xcalloc(1, sizeof(*p));
		str_of(v[i], "number", p->number, sizeof(p->number));
		str_of(q, "number", p->vq, sizeof(p->vq));
		str_of(v[i], "routeStrategy", p->strategy, sizeof(p->strategy));
		str_of(v[i], "defaultDestination", p->dest, sizeof(p->dest));
		p->priority = cobj_int(v[i], "routePriority", 0);
		p->timeout = cobj_int(v[i], "routeTimeout", 120);
		if ((g = cobj_int(v[i], "routeAgentGroup", 0)) > 0)
			p->target = json_pack("{s:I}", "agentGroup", g);
		else if ((g = cobj_int(v[i], "routePlaceGroup", 0)) > 0)
			p->target = json_pack("{s:I}", "placeGroup", g);
		else {
			str_of(v[i], "routeTarget", expr, sizeof(expr));
			if (expr[0] != '\0')
				p->target = json_string(expr);
		}
		if (p->number[0] == '\0' || strmap_get(&rps, p->number)) {
			free_rp(NULL, p, NULL);
			continue;
		}
		strmap_put(&rps, p->number, p);
	}
}

/* ---- requests to the voice side ---- */

static void
sent(int ok, void *arg)
{
	if (!ok)
		log_warnx("routing: a RequestRouteCall could not be written "
		    "(Redis)");
}

static void
route_call(const char *conn, const char *rp, const char *dest,
    const char *ix)
{
	char	 id[48];
	json_t	*req;

	snprintf(id, sizeof(id), "rtr-%llu", ++seq);
	if (ix != NULL)
		strmap_put(&routing, id, xstrdup(ix));
	req = json_pack("{s:s, s:s, s:s, s:s, s:s}", "request",
	    "RequestRouteCall", "dn", rp, "connId", conn, "destination", dest,
	    "requestId", id);
	voice_send(req, sent, NULL);
	json_decref(req);
}

void
rp_route(const char *conn, const char *rp, const char *dn, const char *ix)
{
	log_debug("routing: the call %s at %s to %s", conn, rp, dn);
	route_call(conn, rp, dn, ix);
}

void
rp_timed_out(const char *conn, const char *rp)
{
	struct rpoint	*p = strmap_get(&rps, rp);

	if (p == NULL || p->dest[0] == '\0') {
		log_info("routing: the call %s at %s waited past its timeout; "
		    "no default destination", conn, rp);
		return;
	}
	route_call(conn, rp, p->dest, NULL);
}

/* ---- the voice events ---- */

static void
queued(int rc, const char *why, void *arg)
{
	if (rc == -1)
		log_warnx("routing: the call %s could not be queued (Redis)",
		    (char *)arg);
	free(arg);
}

/* ix_of - the live interaction of call conn, at routing point rp (or
 * anywhere: NULL) */
static struct ix *
ix_of(const char *conn, const char *rp)
{
	struct ix	*x = queue_call(conn);

	return x != NULL && (rp == NULL || strcmp(x->rp, rp) == 0) ? x : NULL;
}

static void
request(struct rpoint *p, json_t *o, const struct voice_event *v)
{
	const char	*conn = json_string_value(json_object_get(o,
			    "connId"));
	json_t		*b, *ud = json_object_get(o, "userData");
	char		 id[RT_ID_MAX], why[512];
	char		*doc;
	int		 status;
	struct vq	*q = queue_vq(p->vq);

	if (conn == NULL || q == NULL)
		return;
	snprintf(id, sizeof(id), "rp-%s-%s", conn, v->id_text);
	b = json_pack("{s:s, s:O?, s:s, s:I, s:I, s:O?, s:s, s:s}",
	    "virtualQueue", p->vq, "target", p->target, "strategy",
	    p->strategy[0] ? p->strategy : "LongestIdle", "priority",
	    p->priority, "timeout", p->timeout, "userData",
	    json_is_object(ud) ? ud : NULL, "connId", conn, "routingPoint",
	    p->number);
	if ((doc = queue_doc(b, id, &status, why, sizeof(why))) == NULL) {
		log_warnx("routing: the call %s at %s cannot be queued: %s",
		    conn, p->number, why);
		json_decref(b);
		return;
	}
	json_decref(b);
	queue_create(id, doc, q, queued, xstrdup(conn));
	free(doc);
}

static void
ended(int rc, const char *why, void *arg)
{
	free(arg);
}

static void
accept_call(struct ix *x)
{
	if (x != NULL && x->state == IX_RESERVED)
		store_accept(x->id, 0, 0, ended, NULL);
}

void
rp_voice(struct voice_event *v)
{
	json_t		*o;
	const char	*conn;
	struct rpoint	*p;
	struct ix	*x;
	char		*ix;

	if (v->region == 0 && v->request_id[0] != '\0' &&
	    (ix = strmap_del(&routing, v->request_id)) != NULL) {
		/* our RequestRouteCall answered: failed, it waits again */
		if (strcmp(v->name, "EventError") == 0) {
			log_info("routing: interaction %s could not be routed "
			    "to its agent; it waits again", ix);
			store_reject(ix, 0, ended, NULL);
		}
		free(ix);
	}
	if (v->region != 0 || v->dn[0] == '\0' ||
	    (o = voice_event_json(v)) == NULL ||
	    (conn = json_string_value(json_object_get(o, "connId"))) == NULL)
		return;
	p = strmap_get(&rps, v->dn);
	if (p != NULL && strcmp(v->name, "EventRouteRequest") == 0)
		request(p, o, v);
	else if (p != NULL && strcmp(v->name, "EventRouteUsed") == 0)
		accept_call(ix_of(conn, p->number));
	else if (p != NULL && (strcmp(v->name, "EventAbandoned") == 0 ||
	    strcmp(v->name, "EventReleased") == 0)) {
		if ((x = ix_of(conn, p->number)) != NULL)
			store_end(x->id, "abandoned", 0, ended, NULL);
	} else if (p != NULL || (x = ix_of(conn, NULL)) == NULL ||
	    strcmp(x->dn, v->dn) != 0)
		;	/* not a call routed here, at its agent */
	else if (strcmp(v->name, "EventRinging") == 0)
		accept_call(x);
	else if (x->state == IX_ACCEPTED && (strcmp(v->name, "EventReleased")
	    == 0 || strcmp(v->name, "EventAbandoned") == 0))
		store_end(x->id, "completed", 0, ended, NULL);
}
