/* SPDX-License-Identifier: Apache-2.0 */
/*
 * voice - each region has two Redis connections: one follows its event
 * stream (XREAD from the last entry read, also across reconnects, so
 * nothing is lost or read twice), one carries commands (ranges for
 * resuming clients; for the local region also requests, state queries
 * and the heartbeat).  The link is up while the local command connection
 * is up and the heartbeat key is there.  Reading on from the last id
 * loses nothing only while Redis keeps the stream: for a worker that
 * asks (voice_on_gap), a reader that reconnects, or a stream trimmed
 * past it (XINFO STREAM every second), is told as a possible gap.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "conf.h"
#include "jscan.h"
#include "log.h"
#include "rds.h"
#include "util.h"
#include "voice.h"

#define HEARTBEAT_CHECK_MS	1000
#define READ_BLOCK_MS		1000
#define READ_COUNT		100
#define REQUESTS_MAXLEN		"100000"

struct region {
	char		*name;
	struct rds	*stream;
	struct rds	*cmd;
	struct sid	 position;	/* last live entry read */
	int		 index;
	int		 was_up;	/* the reader was connected before */
	int		 checking;	/* an XINFO STREAM is out */
	int		 has_mark;
	struct sid	 mark;		/* the reader's position at the last
					 * check */
	struct sid	 check_from;	/* the same, for the check out */
	struct sid	 gap_told;	/* the deleted id last reported */
};

static struct region	 regions[VOICE_REGIONS_MAX];
static int		 nregions;
static char		*k_events, *k_requests, *k_state, *k_heartbeat;
static struct event	*ev_beat;
static int		 link_up;
static int		 beat_pending;
static char		 boot_seen[65];	/* the heartbeat's last value */
static struct voice_cbs	 cbs;
static const char	*more[VOICE_MORE_MAX];	/* voice_read_also */
static size_t		 nmore;
static void		*cbs_arg;
static voice_gap_cb	*gap_cb;	/* voice_on_gap */

static void	check_trim(struct region *);

/* voice_dn_kind - what the switch does with a DN of this type */
enum voice_dn
voice_dn_kind(const char *type)
{
	static const struct {
		const char	*type;
		enum voice_dn	 kind;
	} k[] = {
		{ "Extension", VOICE_DN_PHONE }, { "ACDPosition", VOICE_DN_PHONE },
		{ "RoutingPoint", VOICE_DN_RP },
		{ "VirtualRoutingPoint", VOICE_DN_RP },
		{ "ACDQueue", VOICE_DN_QUEUE }, { "VirtualQueue", VOICE_DN_QUEUE },
		{ "RoutingQueue", VOICE_DN_QUEUE },
	};
	size_t	i;

	for (i = 0; type != NULL && i < NELEM(k); i++)
		if (strcmp(type, k[i].type) == 0)
			return k[i].kind;
	return VOICE_DN_OTHER;
}

/* ---- stream ids ---- */

int
sid_parse(const char *s, struct sid *id)
{
	char	*end;

	if (s == NULL || *s < '0' || *s > '9')
		return -1;
	id->ms = strtoull(s, &end, 10);
	id->seq = 0;
	if (*end == '\0')
		return 0;
	if (*end != '-' || end[1] < '0' || end[1] > '9')
		return -1;
	id->seq = strtoull(end + 1, &end, 10);
	return *end == '\0' ? 0 : -1;
}

int
sid_cmp(const struct sid *a, const struct sid *b)
{
	if (a->ms != b->ms)
		return a->ms < b->ms ? -1 : 1;
	if (a->seq != b->seq)
		return a->seq < b->seq ? -1 : 1;
	return 0;
}

void
sid_format(const struct sid *id, char *buf, size_t len)
{
	snprintf(buf, len, "%" PRIu64 "-%" PRIu64, id->ms, id->seq);
}

/* ---- the link ---- */

static void
set_link(int up)
{
	if (up == link_up)
		return;
	link_up = up;
	log_info("voice link %s", up ? "up" : "down (no heartbeat from the "
	    "voice side, or the local Redis is unreachable)");
	cbs.link(up, cbs_arg);
}

/* beat_cb - the heartbeat's value: the link, and the voice side's boot */
static void
beat_cb(struct rds *r, const redisReply *rep, void *arg)
{
	beat_pending = 0;
	set_link(rep != NULL && rep->type == REDIS_REPLY_STRING);
	if (rep == NULL || rep->type != REDIS_REPLY_STRING ||
	    strncmp(rep->str, boot_seen, sizeof(boot_seen) - 1) == 0)
		return;
	snprintf(boot_seen, sizeof(boot_seen), "%s", rep->str);
	if (cbs.boot != NULL)
		cbs.boot(boot_seen, cbs_arg);
}

static void
on_beat(evutil_socket_t fd, short what, void *arg)
{
	struct timeval	tv = { HEARTBEAT_CHECK_MS / 1000,
			    (HEARTBEAT_CHECK_MS % 1000) * 1000 };
	int		i;

	evtimer_add(ev_beat, &tv);
	for (i = 0; i < nregions; i++)
		check_trim(&regions[i]);
	if (beat_pending)
		return;
	if (rds_state(regions[0].cmd) != RDS_UP) {
		set_link(0);
		return;
	}
	if (rds_command(regions[0].cmd, beat_cb, NULL, "GET %s",
	    k_heartbeat) == 0)
		beat_pending = 1;
}

static void
on_cmd_state(struct rds *r, enum rds_state st, void *arg)
{
	struct region	*rg = arg;

	if (rg->index == 0 && st == RDS_DOWN)
		set_link(0);
	else if (rg->index == 0 && st == RDS_UP)
		on_beat(-1, 0, NULL);	/* up again: look at once */
}

/* ---- the live streams ---- */

/* copy_field - a plain string member into buf; -1 if it does not fit */
static int
copy_field(const struct jscan_field *f, char *buf, size_t len, int required)
{
	if (f->type == JSCAN_ABSENT && !required) {
		buf[0] = '\0';
		return 0;
	}
	if (f->type != JSCAN_STRING || f->len == 0 || f->len >= len ||
	    memchr(f->val, '\0', f->len) != NULL)
		return -1;
	memcpy(buf, f->val, f->len);
	buf[f->len] = '\0';
	return 0;
}

/* from_tree - the fields, from a parsed event (their text had escapes) */
static int
from_tree(struct voice_event *ev)
{
	const json_t	*t;
	const char	*v;
	size_t		 i;
	struct { const char *k; char *buf; size_t len; int req; } f[] = {
		{ "event", ev->name, sizeof(ev->name), 1 },
		{ "eventId", ev->event_id, sizeof(ev->event_id), 1 },
		{ "thisDN", ev->dn, sizeof(ev->dn), 0 },
		{ "requestId", ev->request_id, sizeof(ev->request_id), 0 },
	};

	for (i = 0; i < NELEM(f); i++) {
		t = json_object_get(ev->obj, f[i].k);
		if (t == NULL && !f[i].req) {
			f[i].buf[0] = '\0';
			continue;
		}
		if ((v = json_string_value(t)) == NULL || *v == '\0' ||
		    json_string_length(t) >= f[i].len)
			return -1;
		memcpy(f[i].buf, v, json_string_length(t) + 1);
	}
	t = json_object_get(ev->obj, "time");
	ev->has_time = json_is_integer(t);
	ev->time_ms = ev->has_time ? json_integer_value(t) : 0;
	return 0;
}

/* voice_read_also - members a worker wants of every event, found in the
 * pass that checks its text */
void
voice_read_also(const char *const *names, size_t n)
{
	if (n > VOICE_MORE_MAX)
		fatalx("voice: at most %d more members", VOICE_MORE_MAX);
	memcpy(more, names, n * sizeof(*names));
	nmore = n;
}

/*
 * voice_read_entry - the event held by an entry's "event" field: its text
 * checked in one pass and the members the workers route by copied out;
 * parsed into a tree only when one of those has escapes.
 */
int
voice_read_entry(const void *fields, struct voice_event *ev,
    const char **why)
{
	const redisReply	*f = fields;
	struct jscan_field	 jf[5 + VOICE_MORE_MAX] = {
				    { "event", 0, NULL, 0 },
				    { "eventId", 0, NULL, 0 },
				    { "thisDN", 0, NULL, 0 },
				    { "requestId", 0, NULL, 0 },
				    { "time", 0, NULL, 0 } };
	const char		*text;
	size_t			 i, len;
	char			*end;

	*why = "the entry has no \"event\" field";
	ev->obj = NULL;
	ev->name[0] = '\0';
	if (f == NULL || f->type != REDIS_REPLY_ARRAY)
		return -1;
	for (i = 0; i + 1 < f->elements; i += 2)
		if (f->element[i]->type == REDIS_REPLY_STRING &&
		    strcmp(f->element[i]->str, "event") == 0 &&
		    f->element[i + 1]->type == REDIS_REPLY_STRING)
			break;
	if (i + 1 >= f->elements)
		return -1;
	text = f->element[i + 1]->str;
	len = f->element[i + 1]->len;
	*why = "the event is not a JSON object with string \"event\" and "
	    "\"eventId\"";
	for (i = 0; i < nmore; i++)
		jf[5 + i].key = more[i];
	if (jscan_object(text, len, jf, 5 + nmore) == 0)
		memcpy(ev->more, jf + 5, nmore * sizeof(*jf));
	else if (nmore == 0 || jscan_object(text, len, jf, 5) == -1)
		return -1;
	else if ((ev->obj = json_loadb(text, len, 0, NULL)) == NULL)
		return -1;	/* one of the others twice: the tree says */
	ev->raw = text;
	ev->raw_len = len;
	if (copy_field(&jf[0], ev->name, sizeof(ev->name), 1) == 0 &&
	    copy_field(&jf[1], ev->event_id, sizeof(ev->event_id), 1) == 0 &&
	    copy_field(&jf[2], ev->dn, sizeof(ev->dn), 0) == 0 &&
	    copy_field(&jf[3], ev->request_id, sizeof(ev->request_id),
	    0) == 0) {
		ev->has_time = jf[4].type == JSCAN_NUMBER;
		ev->time_ms = ev->has_time ? strtoll(jf[4].val, &end, 10) : 0;
		if (ev->has_time && end != jf[4].val + jf[4].len)
			ev->has_time = 0;	/* not an integer */
		return 0;
	}
	/* Escapes, or too long: the tree decides. */
	json_decref(ev->obj);
	if ((ev->obj = json_loadb(text, len, JSON_REJECT_DUPLICATES,
	    NULL)) == NULL || from_tree(ev) == -1) {
		json_decref(ev->obj);
		ev->obj = NULL;
		ev->name[0] = '\0';
		return -1;
	}
	return 0;
}

/* voice_event_json - the event as a tree, parsed once when first asked */
json_t *
voice_event_json(struct voice_event *ev)
{
	json_error_t	e;

	if (ev->obj == NULL && ev->raw != NULL &&
	    (ev->obj = json_loadb(ev->raw, ev->raw_len, 0, &e)) == NULL)
		fatalx("voice: event %s was checked valid but does not parse: "
		    "%s", ev->event_id, e.text);
	return ev->obj;
}

static void
on_entry(struct rds *r, const char *id, const redisReply *fields, void *arg)
{
	struct region		*rg = arg;
	struct voice_event	 ev;
	const char		*why;

	memset(&ev, 0, sizeof(ev));
	if (sid_parse(id, &ev.id) == -1)
		return;
	rg->position = ev.id;
	if (voice_read_entry(fields, &ev, &why) == -1) {
		log_warnx("voice: %s entry %s dropped: %s", rg->name, id, why);
		return;
	}
	ev.region = rg->index;
	ev.id_text = id;
	cbs.event(&ev, cbs_arg);
	json_decref(ev.obj);
}

/* ---- entries the reader may have missed ---- */

/* voice_on_gap - a worker that wants to hear of gaps */
void
voice_on_gap(voice_gap_cb *cb)
{
	gap_cb = cb;
}

/* reader_at - the id of the last entry the reader passed; -1 before it
 * knows where it starts */
static int
reader_at(const struct region *rg, struct sid *at)
{
	const char	*last = rds_stream_last_id(rg->stream);

	if (last == NULL || strcmp(last, "$") == 0)
		return -1;
	return sid_parse(last, at);
}

/*
 * on_stream_state - a reader that connects again reads on from its last
 * id, which loses nothing while the server keeps its stream; but a Redis
 * that restarted without persistence lost the entries it had not handed
 * over, and nothing in the new stream says so.
 */
static void
on_stream_state(struct rds *r, enum rds_state st, void *arg)
{
	struct region	*rg = arg;

	if (st != RDS_UP)
		return;
	if (rg->was_up && gap_cb != NULL)
		gap_cb(rg->index, "the voice events reader reconnected",
		    cbs_arg);
	rg->was_up = 1;
}

/* field_of - a member of a reply of field/value pairs, or NULL */
static const redisReply *
field_of(const redisReply *rep, const char *name)
{
	size_t	i;

	for (i = 0; i + 1 < rep->elements; i += 2)
		if (rep->element[i]->type == REDIS_REPLY_STRING &&
		    strcmp(rep->element[i]->str, name) == 0)
			return rep->element[i + 1];
	return NULL;
}

/*
 * deleted_of - from XINFO STREAM, the newest id that may have been
 * deleted: the one before the oldest entry left, or, when none is left,
 * the last one added.  (Redis 7.0's max-deleted-entry-id does not move
 * on a trim.)  -1 when the reply says neither.
 */
static int
deleted_of(const redisReply *rep, struct sid *gone)
{
	const redisReply	*first = field_of(rep, "first-entry");
	const redisReply	*last = field_of(rep, "last-generated-id");

	if (first != NULL && first->type == REDIS_REPLY_ARRAY &&
	    first->elements > 0 && first->element[0]->type ==
	    REDIS_REPLY_STRING && sid_parse(first->element[0]->str,
	    gone) == 0) {
		if (gone->seq-- == 0)
			gone->ms--;
		return 0;
	}
	if (last != NULL && last->type == REDIS_REPLY_STRING)
		return sid_parse(last->str, gone);
	return -1;
}

/*
 * trim_cb - entries after the position the reader had at the check
 * before may have been deleted: the reader may have gone past them
 * unseen.  Checked against that older position, so that a reader which
 * skipped them since is still caught; told once per deleted id.  A
 * reader that started on an empty stream (position 0-0) is not judged:
 * it cannot be told from one that missed the first entries.
 */
static void
trim_cb(struct rds *r, const redisReply *rep, void *arg)
{
	struct region	*rg = arg;
	struct sid	 gone, zero = { 0, 0 };

	rg->checking = 0;
	if (rep == NULL || rep->type != REDIS_REPLY_ARRAY || gap_cb == NULL ||
	    deleted_of(rep, &gone) == -1 || sid_cmp(&gone,
	    &rg->check_from) <= 0 || sid_cmp(&gone, &rg->gap_told) == 0 ||
	    sid_cmp(&rg->check_from, &zero) == 0)
		return;
	rg->gap_told = gone;
	gap_cb(rg->index, "entries after the reader's position were "
	    "deleted from the stream (trimmed)", cbs_arg);
}

/* check_trim - every second, when a worker listens for gaps */
static void
check_trim(struct region *rg)
{
	struct sid	at;

	if (gap_cb == NULL || rg->checking || rds_state(rg->cmd) != RDS_UP ||
	    reader_at(rg, &at) == -1)
		return;
	if (!rg->has_mark) {
		rg->mark = at;
		rg->has_mark = 1;
	}
	if (rds_command(rg->cmd, trim_cb, rg, "XINFO STREAM %s",
	    k_events) == -1)
		return;
	rg->checking = 1;
	rg->check_from = rg->mark;
	rg->mark = at;
}

static void
region_open(struct event_base *base, struct region *rg,
    const struct conf_redis *rc, const char *from)
{
	char	name[300];

	rg->name = xstrdup(rc->name);
	rg->cmd = rds_new_conf(base, rc, on_cmd_state, rg);
	rg->stream = rds_new_conf(base, rc, on_stream_state, rg);
	rg->was_up = rg->checking = rg->has_mark = 0;
	memset(&rg->gap_told, 0, sizeof(rg->gap_told));
	snprintf(name, sizeof(name), "redis %s (voice commands)", rc->name);
	rds_set_name(rg->cmd, name);
	snprintf(name, sizeof(name), "redis %s (voice events)", rc->name);
	rds_set_name(rg->stream, name);
	/* By default from the end: a client of the events worker that was
	 * away resumes with its own ids. */
	if (from != NULL && sid_parse(from, &rg->position) == 0) {
		rg->mark = rg->position;	/* a trim while away shows */
		rg->has_mark = 1;
	}
	rds_stream_follow(rg->stream, k_events, from != NULL ? from : "$",
	    READ_BLOCK_MS, READ_COUNT, on_entry, rg);
}

void
voice_start(struct event_base *base, const struct conf *c,
    const struct voice_cbs *cb, void *arg)
{
	voice_start_from(base, c, NULL, cb, arg);
}

void
voice_start_from(struct event_base *base, const struct conf *c,
    char *const *from, const struct voice_cbs *cb, void *arg)
{
	int	i;

	cbs = *cb;
	cbs_arg = arg;
	k_events = xasprintf("tenantd:{%s}:voice:events", c->tenant_id);
	k_requests = xasprintf("tenantd:{%s}:voice:requests", c->tenant_id);
	k_state = xasprintf("tenantd:{%s}:voice:state", c->tenant_id);
	k_heartbeat = xasprintf("tenantd:{%s}:voice:heartbeat", c->tenant_id);
	nregions = 1 + c->nremotes;
	for (i = 0; i < nregions; i++) {
		regions[i].index = i;
		region_open(base, &regions[i], i == 0 ? &c->redis :
		    &c->remotes[i - 1], from != NULL ? from[i] : NULL);
	}
	ev_beat = evtimer_new(base, on_beat, NULL);
	on_beat(-1, 0, NULL);
}

void
voice_stop(void)
{
	int	i;

	for (i = 0; i < nregions; i++) {
		rds_free(regions[i].stream);
		rds_free(regions[i].cmd);
		free(regions[i].name);
	}
	nregions = 0;
	if (ev_beat != NULL)
		event_free(ev_beat);
	ev_beat = NULL;
	free(k_events);
	free(k_requests);
	free(k_state);
	free(k_heartbeat);
	k_events = k_requests = k_state = k_heartbeat = NULL;
	link_up = 0;
	beat_pending = 0;
	boot_seen[0] = '\0';
	gap_cb = NULL;
}

/* same_redis - two Redis settings that reach the same server alike */
static int
same_redis(const struct conf_redis *a, const struct conf_redis *b)
{
	return strcmp(a->name, b->name) == 0 && conf_redis_equal(a, b);
}

int
voice_reload_check(const struct conf *cur, const struct conf *next,
    const char *worker, char *why, size_t len)
{
	int	i, same = next->nremotes == cur->nremotes &&
		    same_redis(&next->redis, &cur->redis);

	/* The streams' keys hold the tenant's id. */
	if (strcmp(next->tenant_id, cur->tenant_id) != 0) {
		snprintf(why, len, "tenant.id cannot change while running");
		return -1;
	}
	for (i = 0; same && i < next->nremotes; i++)
		same = same_redis(&next->remotes[i], &cur->remotes[i]);
	if (same)
		return 0;
	snprintf(why, len, "the %s worker follows the voice streams of redis "
	    "and redis.remote from where it is: restart tenantd to change "
	    "them", worker);
	return -1;
}

int
voice_link_up(void)
{
	return link_up;
}

/* voice_request_state - the local command connection, which carries the
 * requests: an enum rds_state, RDS_DOWN before voice_start */
int
voice_request_state(void)
{
	return nregions > 0 ? (int)rds_state(regions[0].cmd) : RDS_DOWN;
}

int
voice_nregions(void)
{
	return nregions;
}

const char *
voice_region_name(int i)
{
	return regions[i].name;
}

int
voice_region_index(const char *name)
{
	int	i;

	for (i = 0; i < nregions; i++)
		if (strcmp(regions[i].name, name) == 0)
			return i;
	return -1;
}

const struct sid *
voice_region_position(int i)
{
	return &regions[i].position;
}

/* ---- requests and queries ---- */

struct done {
	voice_done_cb	*cb;
	void		*arg;
};

static void
sent_cb(struct rds *r, const redisReply *rep, void *arg)
{
	struct done	*d = arg;

	d->cb(rep != NULL && rep->type == REDIS_REPLY_STRING, d->arg);
	free(d);
}

/* voice_send - XADD the request to the local request stream */
void
voice_send(const json_t *req, voice_done_cb *cb, void *arg)
{
	struct done	*d = xmalloc(sizeof(*d));
	char		*text = json_dumps(req, JSON_COMPACT);

	d->cb = cb;
	d->arg = arg;
	if (text == NULL || rds_command(regions[0].cmd, sent_cb, d,
	    "XADD %s MAXLEN ~ " REQUESTS_MAXLEN " * request %s", k_requests,
	    text) == -1) {
		free(d);
		cb(0, arg);
	}
	free(text);
}

struct query {
	voice_state_cb	*cb;
	void		*arg;
};

static void
query_cb(struct rds *r, const redisReply *rep, void *arg)
{
	struct query	*q = arg;
	json_t		*j = NULL;

	if (rep == NULL || (rep->type != REDIS_REPLY_STRING &&
	    rep->type != REDIS_REPLY_NIL)) {
		q->cb(0, NULL, q->arg);
		free(q);
		return;
	}
	if (rep->type == REDIS_REPLY_STRING)
		j = json_loadb(rep->str, rep->len, 0, NULL);
	q->cb(1, json_is_object(j) ? j : NULL, q->arg);
	json_decref(j);
	free(q);
}

/* voice_query - HGET the DN's field of the state hash */
void
voice_query(const char *dn, voice_state_cb *cb, void *arg)
{
	struct query	*q = xmalloc(sizeof(*q));

	q->cb = cb;
	q->arg = arg;
	if (rds_command(regions[0].cmd, query_cb, q, "HGET %s %s", k_state,
	    dn) == -1) {
		free(q);
		cb(0, NULL, arg);
	}
}

/* ---- the state hash at a point of the stream ---- */

struct cut {
	voice_cut_cb	*cb;
	void		*arg;
};

/* cut_cb - EXEC answered: [HGETALL, XREVRANGE] */
static void
cut_cb(struct rds *r, const redisReply *rep, void *arg)
{
	struct cut		*c = arg;
	const redisReply	*h, *x;
	json_t			*state;
	struct sid		 at = { 0, 0 };
	size_t			 i;

	if (rep == NULL || rep->type != REDIS_REPLY_ARRAY ||
	    rep->elements != 2 || (h = rep->element[0])->type !=
	    REDIS_REPLY_ARRAY || (x = rep->element[1])->type !=
	    REDIS_REPLY_ARRAY) {
		c->cb(0, NULL, NULL, c->arg);
		free(c);
		return;
	}
	if (x->elements > 0 && x->element[0]->type == REDIS_REPLY_ARRAY &&
	    x->element[0]->elements > 0 &&
	    x->element[0]->element[0]->type == REDIS_REPLY_STRING)
		sid_parse(x->element[0]->element[0]->str, &at);
	state = json_object();
	for (i = 0; i + 1 < h->elements; i += 2) {
		json_t	*v;

		if (h->element[i]->type != REDIS_REPLY_STRING ||
		    h->element[i + 1]->type != REDIS_REPLY_STRING)
			continue;
		if ((v = json_loadb(h->element[i + 1]->str,
		    h->element[i + 1]->len, 0, NULL)) == NULL) {
			log_warnx("voice: the state of DN %s is not JSON",
			    h->element[i]->str);
			continue;
		}
		json_object_set_new(state, h->element[i]->str, v);
	}
	c->cb(1, state, &at, c->arg);
	json_decref(state);
	free(c);
}

/* voice_state_cut - HGETALL of the state hash and the stream's last id */
void
voice_state_cut(voice_cut_cb *cb, void *arg)
{
	struct cut	*c = xmalloc(sizeof(*c));

	c->cb = cb;
	c->arg = arg;
	if (nregions == 0 || rds_command(regions[0].cmd, NULL, NULL,
	    "MULTI") == -1) {
		free(c);
		cb(0, NULL, NULL, arg);
		return;
	}
	rds_command(regions[0].cmd, NULL, NULL, "HGETALL %s", k_state);
	rds_command(regions[0].cmd, NULL, NULL, "XREVRANGE %s + - COUNT 1",
	    k_events);
	if (rds_command(regions[0].cmd, cut_cb, c, "EXEC") == -1) {
		free(c);
		cb(0, NULL, NULL, arg);
	}
}

/* voice_read_upto - where the local live reader is */
int
voice_read_upto(struct sid *at)
{
	if (nregions == 0)
		return -1;
	return reader_at(&regions[0], at);
}

/* ---- ranges, for clients that resume ---- */

struct range {
	voice_range_cb	*cb;
	void		*arg;
	int		 region;
	struct sid	 after;
	int		 lost;
	int		 past;
	int		 failed;
};

/*
 * info_cb - the stream's ends: is the client's last entry still there
 * (the oldest kept is not after it), and was it ever there (the last
 * added is not before it)?  A stream not there at all holds nothing.
 */
static void
info_cb(struct rds *r, const redisReply *rep, void *arg)
{
	struct range		*rg = arg;
	const redisReply	*first, *last;
	struct sid		 id, zero = { 0, 0 };

	if (rg->failed == 2) {		/* the range was never asked */
		rg->cb(0, 0, 0, NULL, 0, rg->arg);
		free(rg);
		return;
	}
	if (rep != NULL && rep->type == REDIS_REPLY_ERROR &&
	    strstr(rep->str, "no such key") != NULL) {
		rg->lost = sid_cmp(&rg->after, &zero) > 0;
		rg->past = rg->lost;
		return;
	}
	if (rep == NULL || rep->type != REDIS_REPLY_ARRAY) {
		rg->failed = 1;
		return;
	}
	first = field_of(rep, "first-entry");
	last = field_of(rep, "last-generated-id");
	if (last != NULL && last->type == REDIS_REPLY_STRING &&
	    sid_parse(last->str, &id) == 0)
		rg->past = sid_cmp(&rg->after, &id) > 0;
	if (first != NULL && first->type == REDIS_REPLY_ARRAY &&
	    first->elements == 2 && first->element[0]->type ==
	    REDIS_REPLY_STRING && sid_parse(first->element[0]->str, &id) == 0)
		rg->lost = sid_cmp(&id, &rg->after) > 0 &&
		    sid_cmp(&rg->after, &zero) > 0;
	else				/* nothing kept at all */
		rg->lost = sid_cmp(&rg->after, &zero) > 0;
}

static void
range_cb(struct rds *r, const redisReply *rep, void *arg)
{
	struct range		*rg = arg;
	struct voice_event	*v = NULL;
	const redisReply	*e;
	const char		*why;
	size_t			 i, n = 0;

	if (rg->past) {			/* whatever the range said */
		rg->cb(1, 0, 1, NULL, 0, rg->arg);
		free(rg);
		return;
	}
	if (rg->failed || rep == NULL || rep->type != REDIS_REPLY_ARRAY) {
		rg->cb(0, 0, 0, NULL, 0, rg->arg);
		free(rg);
		return;
	}
	v = xcalloc(rep->elements + 1, sizeof(*v));
	for (i = 0; i < rep->elements; i++) {
		e = rep->element[i];
		if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
		    e->element[0]->type != REDIS_REPLY_STRING ||
		    sid_parse(e->element[0]->str, &v[n].id) == -1)
			continue;
		v[n].region = rg->region;
		v[n].id_text = e->element[0]->str;
		voice_read_entry(e->element[1], &v[n], &why);
		n++;
	}
	rg->cb(1, rg->lost, 0, v, n, rg->arg);
	for (i = 0; i < n; i++)
		json_decref(v[i].obj);
	free(v);
	free(rg);
}

void
voice_range(int region, const struct sid *after, unsigned count,
    voice_range_cb *cb, void *arg)
{
	struct range	*rg = xcalloc(1, sizeof(*rg));
	struct rds	*r = regions[region].cmd;
	char		 from[64], n[16];

	rg->cb = cb;
	rg->arg = arg;
	rg->region = region;
	rg->after = *after;
	sid_format(after, from + 1, sizeof(from) - 1);
	from[0] = '(';
	snprintf(n, sizeof(n), "%u", count);
	/* Both on one connection: the replies come in this order. */
	if (rds_command(r, info_cb, rg, "XINFO STREAM %s", k_events) == -1) {
		free(rg);
		cb(0, 0, 0, NULL, 0, arg);
		return;
	}
	if (rds_command(r, range_cb, rg, "XRANGE %s %s + COUNT %s", k_events,
	    from, n) == -1)
		rg->failed = 2;		/* info_cb answers */
}
