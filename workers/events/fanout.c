/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fanout - the voice events of the events worker: each read once from
 * its region's stream (common/voice.c), dropped if another region had it
 * first, handed to the client whose request it answers (with the ref),
 * and sent to every client registered on its DN, as one line encoded
 * once.  The registrations (DN -> clients) and the voice link live here.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/event.h>

#include "events_int.h"
#include "log.h"
#include "metrics.h"
#include "seen.h"
#include "sess.h"
#include "strmap.h"
#include "svc.h"
#include "util.h"
#include "voice.h"
#include "worker.h"

static struct strmap	 regs;		/* DN number -> struct reg */

static struct reg *reg_get(const char *, int);
static int	deliver(struct client *, const struct voice_event *,
		    const char *, size_t);
static struct op *pending_find(const char *);
static char	*splice(const struct voice_event *, size_t *);
static json_t	*position(const struct voice_event *);
static int	plain(const char *);
static void	cap_user_data(json_t *, size_t);

/*
 * ev_on_voice_event - one entry of a region's stream, live.  What it
 * guarantees: a client gets each event of its DNs once, in the order of
 * the stream, even when the voice side wrote it to two regions (the
 * event id, common/seen.c); the answer to a request goes to its sender
 * with the request's ref, and only there when it is an EventError; a
 * client that is resuming gets a live event only after its replay has
 * passed it (deliver), so nothing comes twice or out of order.  The line
 * is encoded once for every client, from the text as read when that is
 * possible (splice), since the fan-out is the worker's hot path.
 */
void
ev_on_voice_event(struct voice_event *ev, void *arg)
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

	metric_inc(events_env.m_received);
	if (!seen_add(events_env.seen, ev->event_id)) {
		metric_inc(events_env.m_dups);
		return;
	}
	if (ev->has_time)
		metric_set(events_env.m_lag, (double)((long long)(
		    now_wall_us() / 1000) - ev->time_ms) / 1000.0);
	op = pending_find(ev->request_id[0] != '\0' ? ev->request_id : NULL);

	/* The answer to a request: to its sender, with the ref. */
	if (op != NULL) {
		TAILQ_REMOVE(&events_env.pending, op, pending_entry);
		if ((asker = op->c) != NULL) {
			e = ev_prepared(ev, &done);
			if (strcmp(name, "EventAgentLogin") == 0 && dn != NULL &&
			    (agent = json_string_value(json_object_get(e,
			    "agentId"))) != NULL)
				ev_login_note(asker, dn, agent);
			sess_reply(asker->s, op->ref, e);
			json_object_del(e, "ref");
			/* Not again, live or replayed. */
			if (!asker->held || asker->live[ev->region])
				asker->cursor[ev->region] = ev->id;
			if (asker->resumed != NULL)
				seen_add(asker->resumed, ev->event_id);
			metric_inc(events_env.m_delivered);
		}
		ev_op_done(op);
		free(op->name);
		free(op);
	}
	if (strcmp(name, "EventError") == 0 || dn == NULL)
		return;		/* only the sender's business */
	if (strcmp(name, "EventAgentLogout") == 0)
		ev_login_forget(dn, NULL);
	if ((r = reg_get(dn, 0)) == NULL || r->n == 0)
		return;
	/* As read, with its position: no new encoding, unless changed. */
	if (ev->request_id[0] != '\0' || ev->raw_len > worker_conf()->
	    workers[WORKER_EVENTS].user_data_max ||
	    (line = splice(ev, &len)) == NULL) {
		if ((line = sess_encode(ev_prepared(ev, &done), &len)) == NULL)
			return;
	}
	for (i = 0, sent = 0; i < r->n; i++)
		if (r->v[i] != asker)
			sent += deliver(r->v[i], ev, line, len);
	/* Once, not per client: the registry's add is atomic. */
	metric_add(events_env.m_delivered, (double)sent);
	free(line);
}

/* ev_on_link - every client hears that the voice link went up or down */
void
ev_on_link(int up, void *arg)
{
	struct client	*c;
	json_t		*e;
	char		*line;
	size_t		 len;

	metric_set(events_env.m_link, up);
	e = json_pack("{s:s, s:I}", "event", up ? "EventLinkConnected" :
	    "EventLinkDisconnected", "time", (json_int_t)(now_wall_us() /
	    1000));
	line = sess_encode(e, &len);
	json_decref(e);
	TAILQ_FOREACH(c, &events_env.clients, entry)
		sess_send_line(c->s, line, len);
	free(line);
}

/* ---- one event, as clients get it ---- */

/* pending_find - the request an event answers */
static struct op *
pending_find(const char *request_id)
{
	struct op	*op;

	if (request_id == NULL)
		return NULL;
	TAILQ_FOREACH(op, &events_env.pending, pending_entry)
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
 * ev_prepared - the event as a tree, as clients get it: userData capped,
 * its position added, the voice side's requestId gone.  Built once, when
 * the text cannot be passed on as it is.
 */
json_t *
ev_prepared(struct voice_event *ev, int *done)
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

/* ---- registrations: DN -> clients ---- */

/* ev_registered - has c registered dn? */
int
ev_registered(const struct client *c, const char *dn)
{
	size_t	i;

	for (i = 0; i < c->ndns; i++)
		if (strcmp(c->dns[i], dn) == 0)
			return 1;
	return 0;
}

/* ev_reg_add - c follows dn from now on */
void
ev_reg_add(struct client *c, const char *dn)
{
	struct reg	*r = reg_get(dn, 1);

	r->v = xrealloc(r->v, (r->n + 1) * sizeof(*r->v));
	r->v[r->n++] = c;
	c->dns = xrealloc(c->dns, (c->ndns + 1) * sizeof(*c->dns));
	c->dns[c->ndns++] = xstrdup(dn);
}

/* ev_reg_remove - c no longer follows dn */
void
ev_reg_remove(struct client *c, const char *dn)
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

/* reg_free - one DN's registrations, at exit */
static void
reg_free(const char *dn, void *v, void *arg)
{
	struct reg	*r = v;

	free(r->v);
	free(r);
}

/* ev_regs_clear - every registration, at exit */
void
ev_regs_clear(void)
{
	strmap_each(&regs, reg_free, NULL);
	strmap_clear(&regs);
}
