/* SPDX-License-Identifier: Apache-2.0 */
/*
 * feed - GET /v1/events: the routing events for applications, as
 * server-sent events (Accept: text/event-stream) or NDJSON (otherwise),
 * each with its position in the shared stream (Redis's entry id).  A
 * client that comes back with ?after=<position> (or SSE's Last-Event-ID)
 * first gets what it missed, read from the stream in pages, then the
 * live events, with nothing lost or repeated between the two.  A client
 * sees the events of the virtual queues it may read.
 *
 * When the position asked for is older than what the stream still holds
 * (it is trimmed to about 100,000 events), or Redis lost the shared state
 * (it was put back from PostgreSQL), the feed says "reset" first: the
 * client should read the state it cares about again.  When the worker
 * only read the state again (its link to Redis came back), a live feed
 * catches up from its last position instead.
 *
 * A client that does not read is cut at the port's max_output
 * (common/http.c), as every slow client.
 *
 * What a feed is sent in one turn of the loop (the events of one read of
 * the stream, a page) goes out as one chunk, one write, at the end of the
 * turn: a write for each event was an eighth of the worker's time at a few
 * thousand routings a second (benchmark 10b).
 *
 * What it touches: the routing event stream in Redis, read.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "access.h"
#include "auth.h"
#include "http.h"
#include "jwrite.h"
#include "log.h"
#include "rds.h"
#include "schema.h"
#include "svc.h"
#include "util.h"
#include "voice.h"
#include "routing_int.h"

#define PAGE	1000

struct feed {
	struct http_conn	*c;
	struct principal	 who;
	int			 sse;
	int			 live;		/* else catching up */
	int			 reading;	/* an XRANGE is out */
	int			 checking;	/* its token is being checked */
	char			*token;		/* as the request sent it */
	int			 closed;
	int			 writing;	/* in http.c: not freed under it */
	char			 last[48];	/* the position sent last */
	char			*out;		/* to write at the turn's end */
	size_t			 nout, capout;
	TAILQ_ENTRY(feed)	 entry;
};

static TAILQ_HEAD(, feed) feeds = TAILQ_HEAD_INITIALIZER(feeds);
static char	 applied[48] = "0-0";	/* the last event queue.c applied */
static struct event *ev_flush;		/* the turn's writes */

static void	catch_up(struct feed *);
static int	sid_less(const char *, const char *);
static void	gone(struct feed *);
static void	flush_all(evutil_socket_t, short, void *);

void
feed_start(void)
{
	ev_flush = event_new(rt.base, -1, 0, flush_all, NULL);
}

static void
feed_free(struct feed *f)
{
	TAILQ_REMOVE(&feeds, f, entry);
	free(f->token);
	free(f->out);
	free(f);
}

/* flush - what f was sent in this turn, as one chunk; -1 when f is gone */
static int
flush(struct feed *f)
{
	size_t	n = f->nout;
	int	rc = 0;

	f->nout = 0;
	if (f->closed)
		return -1;
	if (n > 0) {
		/* a write that finds the client gone calls closed() */
		f->writing = 1;
		if (http_stream_write(f->c, f->out, n) == -1)
			f->closed = 1;	/* cut: the connection is gone */
		f->writing = 0;
		rc = f->closed ? -1 : 0;
	}
	if (f->capout > 65536) {	/* a page's worth: not kept */
		free(f->out);
		f->out = NULL;
		f->capout = 0;
	}
	return rc;
}

/* stream_end - f's stream ends, after what it was still to be sent */
static void
stream_end(struct feed *f)
{
	if (flush(f) == 0) {
		f->writing = 1;
		http_stream_end(f->c);
		f->writing = 0;
	}
	f->closed = 1;
	gone(f);
}

static void
flush_all(evutil_socket_t fd, short what, void *arg)
{
	struct feed	*f, *next;

	for (f = TAILQ_FIRST(&feeds); f != NULL; f = next) {
		next = TAILQ_NEXT(f, entry);
		if (f->nout > 0 && flush(f) == -1)
			gone(f);
	}
}

/* gone - f's connection is gone: free it once nothing is out for it */
static void
gone(struct feed *f)
{
	f->closed = 1;
	if (!f->reading && !f->checking && !f->writing)
		feed_free(f);
}

/* feed_cleanup - every stream ends; a feed with a question out for it is
 * freed when it is answered (the Redis clients answer every one, NULL at
 * the latest when they are freed) */
void
feed_cleanup(void)
{
	struct feed	*f, *next;

	for (f = TAILQ_FIRST(&feeds); f != NULL; f = next) {
		next = TAILQ_NEXT(f, entry);
		stream_end(f);
	}
	if (ev_flush != NULL)
		event_free(ev_flush);
	ev_flush = NULL;
}

static void
closed(void *arg)
{
	struct feed	*f = arg;

	gone(f);
}

/* emit - one event to f, written at the turn's end; -1 when f is gone */
static int
emit(struct feed *f, const char *pos, const char *type, const char *text,
    size_t len)
{
	struct jw	w;
	char		buf[1024];

	if (f->closed)
		return -1;
	jw_init(&w, buf, sizeof(buf));
	if (f->sse) {
		jw_lit(&w, "id: ");
		jw_raw(&w, pos, strlen(pos));
		jw_lit(&w, "\nevent: ");
		jw_raw(&w, type, strlen(type));
		jw_lit(&w, "\ndata: ");
	}
	jw_lit(&w, "{\"position\":");
	jw_str(&w, pos);
	if (len > 2) {
		jw_lit(&w, ",");
		jw_raw(&w, text + 1, len - 1);
	} else
		jw_lit(&w, "}");
	if (f->sse)
		jw_lit(&w, "\n\n");
	else
		jw_lit(&w, "\n");
	if (f->nout + w.n > f->capout) {
		f->capout = (f->nout + w.n) * 2;
		f->out = xrealloc(f->out, f->capout);
	}
	memcpy(f->out + f->nout, w.p, w.n);
	f->nout += w.n;
	jw_free(&w);
	snprintf(f->last, sizeof(f->last), "%s", pos);
	if (ev_flush == NULL)		/* stopping: at once */
		return flush(f);
	event_active(ev_flush, 0, 0);
	return 0;
}

static void
reset(struct feed *f, const char *why)
{
	char	text[256];

	snprintf(text, sizeof(text), "{\"type\":\"reset\",\"reason\":\"%s\"}",
	    why);
	emit(f, f->last, "reset", text, strlen(text));
}

/* visible - may f see an event of vq? */
static int
visible(const struct feed *f, json_int_t vq)
{
	return svc_principal_can(&f->who, CFG_DN, vq, RIGHT_READ);
}

/* event_vq - the virtual queue an event's text names */
static json_int_t
event_vq(const char *text, size_t len, char *type, size_t tlen)
{
	json_t		*o = json_loadb(text, len, 0, NULL);
	json_int_t	 vq;

	vq = json_integer_value(json_object_get(json_object_get(o,
	    "interaction"), "vq"));
	snprintf(type, tlen, "%s", json_string_value(json_object_get(o,
	    "type")) ?: "event");
	json_decref(o);
	return vq;
}

/* feed_event - a live event, applied by queue.c */
void
feed_event(const char *pos, const char *type, const char *text, size_t len,
    json_int_t vq)
{
	struct feed	*f, *next;

	snprintf(applied, sizeof(applied), "%s", pos);
	for (f = TAILQ_FIRST(&feeds); f != NULL; f = next) {
		next = TAILQ_NEXT(f, entry);
		if (!f->live || !visible(f, vq))
			continue;
		if (emit(f, pos, type, text, len) == -1)
			gone(f);
	}
}

/*
 * feed_recheck - every feed's token asked again (routing.c's tick, every
 * RECHECK_S): a feed whose token was revoked, or expired, ends.  Rights
 * are checked per event already; this is for the token itself.
 */
static void
rechecked(const struct principal *who, int unavailable, void *arg)
{
	struct feed	*f = arg;

	f->checking = 0;
	if (f->closed) {
		gone(f);
		return;
	}
	if (who == NULL && !unavailable) {
		log_info("routing: an event feed's token is no longer valid: "
		    "its stream ends");
		stream_end(f);
	}
}

void
feed_recheck(void)
{
	struct feed	*f, *next;

	for (f = TAILQ_FIRST(&feeds); f != NULL; f = next) {
		next = TAILQ_NEXT(f, entry);
		if (f->token == NULL || f->checking || f->closed)
			continue;
		f->checking = 1;
		svc_token_check(f->token, strlen(f->token), rechecked, f);
	}
}

/*
 * feed_reset - the state was read again, up to pos (Redis came back, or
 * the link to it).  When Redis kept its state, each live feed catches up
 * from the last position it was sent, as a client that resumes does: the
 * events its old reader had not delivered yet are in the stream.  When
 * Redis lost it, the positions name nothing: reset.
 */
void
feed_reset(const char *pos, int lost)
{
	struct feed	*f, *next;

	if (sid_less(applied, pos))
		snprintf(applied, sizeof(applied), "%s", pos);
	for (f = TAILQ_FIRST(&feeds); f != NULL; f = next) {
		next = TAILQ_NEXT(f, entry);
		if (!f->live || f->closed)
			continue;
		if (lost) {
			reset(f, "the routing state was lost by Redis and "
			    "put back");
			continue;
		}
		f->live = 0;
		catch_up(f);
	}
}

static int
sid_less(const char *a, const char *b)
{
	struct sid	x, y;

	if (sid_parse(a, &x) == -1 || sid_parse(b, &y) == -1)
		return 0;
	return sid_cmp(&x, &y) < 0;
}

static void
page(struct rds *r, const redisReply *rep, void *arg)
{
	struct feed		*f = arg;
	const redisReply	*e, *fl;
	size_t			 i, j;
	json_int_t		 vq;
	char			 type[32];

	f->reading = 0;
	if (f->closed) {
		gone(f);
		return;
	}
	if (rep == NULL || rep->type != REDIS_REPLY_ARRAY) {
		http_stream_abort(f->c);
		gone(f);
		return;
	}
	for (i = 0; i < rep->elements; i++) {
		e = rep->element[i];
		if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
		    e->element[0]->type != REDIS_REPLY_STRING)
			continue;
		if (!sid_less(f->last, e->element[0]->str) ||
		    sid_less(applied, e->element[0]->str))
			break;		/* past what memory shows: go live */
		fl = e->element[1];
		for (j = 0; j + 1 < fl->elements; j += 2)
			if (strcmp(fl->element[j]->str, "e") == 0) {
				vq = event_vq(fl->element[j + 1]->str,
				    fl->element[j + 1]->len, type,
				    sizeof(type));
				if (visible(f, vq) && emit(f,
				    e->element[0]->str, type,
				    fl->element[j + 1]->str,
				    fl->element[j + 1]->len) == -1) {
					gone(f);
					return;
				}
			}
		snprintf(f->last, sizeof(f->last), "%s", e->element[0]->str);
	}
	catch_up(f);
}

/* catch_up - the next page after f->last, up to what memory shows */
static void
catch_up(struct feed *f)
{
	char	from[52], count[16];

	if (!sid_less(f->last, applied)) {
		f->live = 1;
		return;
	}
	snprintf(from, sizeof(from), "(%s", f->last);
	snprintf(count, sizeof(count), "%d", PAGE);
	f->reading = 1;
	if (rds_command(store_kv(), page, f, "XRANGE %s %s %s COUNT %s",
	    store_events_key(), from, applied, count) == -1) {
		f->reading = 0;
		http_stream_abort(f->c);
		gone(f);
	}
}

/* trimmed - is position after older than what the stream lost? */
static void
info(struct rds *r, const redisReply *rep, void *arg)
{
	struct feed	*f = arg;
	size_t		 i;

	f->reading = 0;
	if (f->closed) {
		gone(f);
		return;
	}
	for (i = 0; rep != NULL && rep->type == REDIS_REPLY_ARRAY &&
	    i + 1 < rep->elements; i += 2)
		if (rep->element[i]->type == REDIS_REPLY_STRING &&
		    strcmp(rep->element[i]->str, "max-deleted-entry-id") == 0 &&
		    rep->element[i + 1]->type == REDIS_REPLY_STRING &&
		    sid_less(f->last, rep->element[i + 1]->str))
			reset(f, "events after this position were trimmed "
			    "from the stream");
	catch_up(f);
}

static int
accepts_sse(const struct http_request *r)
{
	const char	*v;
	size_t		 len;

	v = http_header(r, "Accept", &len);
	return v != NULL && memmem(v, len, "text/event-stream", 17) != NULL;
}

void
feed_open(struct http_conn *c, const struct http_request *r,
    const struct principal *who)
{
	struct feed	*f;
	char		 after[48] = "";
	const char	*v;
	size_t		 len;
	struct sid	 s;
	int		 q;

	if ((q = http_query(r, "after", after, sizeof(after))) == -1 ||
	    (q == 1 && sid_parse(after, &s) == -1 && strcmp(after, "0") != 0)) {
		svc_http_error(c, 400, "BadRequest", "after must be a position "
		    "as the events carry it (<ms>-<seq>), or 0");
		return;
	}
	if (q == 0 && (v = http_header(r, "Last-Event-ID", &len)) != NULL &&
	    len < sizeof(after)) {
		memcpy(after, v, len);
		after[len] = '\0';
		if (sid_parse(after, &s) == -1)
			after[0] = '\0';
	}
	if (strcmp(after, "0") == 0)
		snprintf(after, sizeof(after), "0-0");
	f = xcalloc(1, sizeof(*f));
	f->c = c;
	f->who = *who;
	if ((v = http_header(r, "Authorization", &len)) != NULL && len > 7)
		f->token = xasprintf("%.*s", (int)(len - 7), v + 7);
	f->sse = accepts_sse(r);
	TAILQ_INSERT_TAIL(&feeds, f, entry);
	if (http_stream_begin(c, 200, f->sse ? "text/event-stream" :
	    "application/x-ndjson", closed, f) == -1) {
		feed_free(f);
		return;
	}
	if (after[0] == '\0') {
		snprintf(f->last, sizeof(f->last), "%s", applied);
		f->live = 1;
		return;
	}
	snprintf(f->last, sizeof(f->last), "%s", after);
	f->reading = 1;
	if (rds_command(store_kv(), info, f, "XINFO STREAM %s",
	    store_events_key()) == -1) {
		f->reading = 0;
		catch_up(f);
	}
}
