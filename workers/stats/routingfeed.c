/* SPDX-License-Identifier: Apache-2.0 */
/*
 * routingfeed - the routing worker's events (the stream
 * tenantd:{<tenant>}:routing:events, docs/routing.md) applied to the
 * model: the interactions waiting in virtual queues, counted as calls at
 * the VirtualQueue DN (docs/stats.md "Virtual queues").
 *
 * The stream is read from the position the model's snapshot reflects
 * (save.c keeps it beside the voice streams'), so that a restart neither
 * misses an event nor counts one twice.  When the reader may have missed
 * entries, the routing worker's shared state is the truth, as the voice
 * state hash is for the voice events (reconcile.c): the reader
 * reconnected (a Redis that restarted lost what it had not handed over),
 * the stream was trimmed past it or is gone (checked every second), or
 * there was no position to start from.  Then the reader stops; the
 * interactions not ended (routing:live, each one's hash) and the stream's
 * last id are read in one script; the model is made to agree with them
 * (what it holds and they do not ends, what they hold it lacks is taken
 * in; nothing instant is made up); and a new reader starts after that id.
 * The routing link, which makes the virtual queues' statistics valid, is
 * up while a reader follows the stream from a position the model agrees
 * with.
 *
 * It touches the model (through its callbacks, so that statistics count
 * what changes), and reads, never writes, the routing worker's keys in
 * the local Redis, on two connections of its own.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "cache.h"
#include "log.h"
#include "metrics.h"
#include "schema.h"
#include "voice.h"
#include "worker.h"
#include "stats_int.h"

#define READ_BLOCK_MS	1000
#define READ_COUNT	500

static void	follow(const char *from);
static void	resync(const char *why);
static void	on_reader(struct rds *, enum rds_state, void *);
static void	on_entry(struct rds *, const char *, const redisReply *,
		    void *);
static void	cut_cb(struct rds *, const redisReply *, void *);
static void	check_cb(struct rds *, const redisReply *, void *);
static void	renumber(json_t *event);
static void	set_up(int);

/*
 * The cut: the stream's last id, then id, state, created and document of
 * every interaction not ended, read at one point of the stream.
 */
static const char cut_lua[] =
"local P = ARGV[1]\n"
"local last = redis.call('XREVRANGE', P .. 'events', '+', '-', 'COUNT', 1)\n"
"local out = {last[1] and last[1][1] or '0-0'}\n"
"for _, i in ipairs(redis.call('ZRANGE', P .. 'live', 0, -1)) do\n"
"  local h = redis.call('HMGET', P .. 'ix:' .. i, 'state', 'created', 'doc')\n"
"  if h[1] and h[3] then\n"
"    out[#out + 1] = i\n"
"    out[#out + 1] = h[1]\n"
"    out[#out + 1] = h[2] or '0'\n"
"    out[#out + 1] = h[3]\n"
"  end\n"
"end\n"
"return out\n";

static struct rds	*cmd, *reader;
static char		*k_prefix, *k_events;
static char		 position[64];	/* what the model reflects */
static int		 started, reader_was_up;
static int		 syncing;	/* a cut is out */
static int		 want_sync;	/* a cut is due (one failed) */
static char		 sync_why[128];
static int		 checking, has_mark;
static struct sid	 mark;		/* the position at the last check */
static struct sid	 check_from;	/* the same, for the check out */

/*
 * routingfeed_start - the model is restored: read the routing events
 * after from (the snapshot's position), or, without one, take the
 * routing state as it is and read on from there.
 */
void
routingfeed_start(const char *from)
{
	const struct conf	*c = worker_conf();
	struct sid		 at;

	k_prefix = xasprintf("tenantd:{%s}:routing:", c->tenant_id);
	k_events = xasprintf("%sevents", k_prefix);
	cmd = rds_new_conf(stats_env.base, &c->redis, NULL, NULL);
	rds_set_name(cmd, "redis (routing state, for statistics)");
	started = 1;
	if (from != NULL && sid_parse(from, &at) == 0) {
		mark = at;		/* a trim while away shows */
		has_mark = 1;
		follow(from);
	} else
		resync("no position of the routing events in the snapshot");
}

/* routingfeed_tick - every second: a cut that failed, a trim */
void
routingfeed_tick(void)
{
	struct sid	at;

	if (!started)
		return;
	if (want_sync && !syncing) {
		resync(sync_why);
		return;
	}
	if (syncing || reader == NULL || checking || rds_state(cmd) != RDS_UP ||
	    sid_parse(position, &at) == -1)
		return;
	if (!has_mark) {
		mark = at;
		has_mark = 1;
	}
	if (rds_command(cmd, check_cb, NULL, "XINFO STREAM %s", k_events) ==
	    -1)
		return;
	checking = 1;
	check_from = mark;
	mark = at;
}

const char *
routingfeed_position(void)
{
	return position;
}

void
routingfeed_cleanup(void)
{
	rds_free(reader);
	rds_free(cmd);
	reader = cmd = NULL;
	free(k_prefix);
	free(k_events);
	k_prefix = k_events = NULL;
	position[0] = '\0';
	started = reader_was_up = syncing = want_sync = checking = 0;
	has_mark = 0;
	stats_env.routing_up = 0;
}

/* ---- the reader ---- */

/* follow - a new reader, after the entry from */
static void
follow(const char *from)
{
	const struct conf	*c = worker_conf();

	snprintf(position, sizeof(position), "%s", from);
	reader = rds_new_conf(stats_env.base, &c->redis, on_reader, NULL);
	rds_set_name(reader, "redis (routing events, for statistics)");
	reader_was_up = 0;
	rds_stream_follow(reader, k_events, from, READ_BLOCK_MS, READ_COUNT,
	    on_entry, NULL);
}

/*
 * on_reader - a reader that connects again reads on from its last id,
 * which loses nothing while Redis keeps the stream; but a Redis that
 * restarted without persistence lost the entries it had not handed over,
 * and nothing in the new stream says so
 */
static void
on_reader(struct rds *r, enum rds_state st, void *arg)
{
	if (st == RDS_DOWN)
		set_up(0);
	if (st != RDS_UP)
		return;
	if (reader_was_up) {
		resync("the routing events reader reconnected");
		return;
	}
	reader_was_up = 1;
	set_up(1);
}

/* on_entry - one routing event, applied to the model */
static void
on_entry(struct rds *r, const char *id, const redisReply *fields, void *arg)
{
	struct model_vq_event	 e;
	json_t			*o = NULL;
	size_t			 i;

	snprintf(position, sizeof(position), "%s", id);
	for (i = 0; fields != NULL && fields->type == REDIS_REPLY_ARRAY &&
	    i + 1 < fields->elements; i += 2)
		if (fields->element[i]->type == REDIS_REPLY_STRING &&
		    strcmp(fields->element[i]->str, "e") == 0 &&
		    fields->element[i + 1]->type == REDIS_REPLY_STRING) {
			o = json_loadb(fields->element[i + 1]->str,
			    fields->element[i + 1]->len, 0, NULL);
			break;
		}
	if (o == NULL) {
		log_warnx("stats: routing event %s is not JSON with an \"e\"; "
		    "left out", id);
		return;
	}
	renumber(o);
	if (model_vq_event_of(o, &e) == 0) {
		model_apply_vq(stats_env.model, &e, stats_now());
		stats_env.model_dirty = 1;
		metric_inc(stats_env.m_routing_events);
	}
	json_decref(o);
}

/*
 * renumber - the virtual queue as the configuration numbers it now: the
 * event names it by dbid and by the number it had when queued
 */
static void
renumber(json_t *event)
{
	json_t			*doc = json_object_get(event, "interaction");
	const struct cobj	*dn;
	json_t			*num;

	dn = cache_get(json_integer_value(json_object_get(doc, "vq")));
	if (dn == NULL || dn->kind != CFG_DN)
		return;
	num = cobj_get(dn, "number");
	if (json_is_string(num))
		json_object_set(doc, "virtualQueue", num);
	json_decref(num);
}

/* ---- the model made to agree with the routing state ---- */

/* resync - the reader may have missed entries: stop it, take a cut */
static void
resync(const char *why)
{
	set_up(0);
	rds_free(reader);
	reader = NULL;
	checking = has_mark = 0;
	if (why != sync_why)
		snprintf(sync_why, sizeof(sync_why), "%s", why);
	if (!want_sync)
		log_info("stats: routing events may have been missed (%s); "
		    "the virtual queues will agree with the routing state",
		    why);
	want_sync = 1;
	if (rds_command(cmd, cut_cb, NULL, "EVAL %s 0 %s", cut_lua,
	    k_prefix) == 0)
		syncing = 1;
}

/* live_of - the interactions of a cut, as their events carry them */
static json_t *
live_of(const redisReply *rep)
{
	json_t		*live = json_array(), *doc, *o;
	size_t		 i;

	for (i = 1; i + 3 < rep->elements; i += 4) {
		if (rep->element[i]->type != REDIS_REPLY_STRING ||
		    rep->element[i + 1]->type != REDIS_REPLY_STRING ||
		    rep->element[i + 2]->type != REDIS_REPLY_STRING ||
		    rep->element[i + 3]->type != REDIS_REPLY_STRING ||
		    (doc = json_loadb(rep->element[i + 3]->str,
		    rep->element[i + 3]->len, 0, NULL)) == NULL)
			continue;
		o = json_pack("{s:s, s:s, s:I, s:o}", "id",
		    rep->element[i]->str, "state", rep->element[i + 1]->str,
		    "created", (json_int_t)strtoll(rep->element[i + 2]->str,
		    NULL, 10), "interaction", doc);
		renumber(o);
		json_array_append_new(live, o);
	}
	return live;
}

/* cut_cb - the routing state and the stream id it goes with */
static void
cut_cb(struct rds *r, const redisReply *rep, void *arg)
{
	json_t	*live;
	size_t	 ended, taken;

	syncing = 0;
	if (rep == NULL || rep->type != REDIS_REPLY_ARRAY ||
	    rep->elements < 1 || rep->element[0]->type != REDIS_REPLY_STRING ||
	    rep->element[0]->len >= sizeof(position)) {
		if (rep != NULL && rep->type == REDIS_REPLY_ERROR)
			log_warnx("stats: reading the routing state: %s",
			    rep->str);
		return;			/* the tick tries again */
	}
	want_sync = 0;
	live = live_of(rep);
	model_vq_reconcile(stats_env.model, live, stats_now(), &ended,
	    &taken);
	json_decref(live);
	stats_env.model_dirty = 1;
	log_info("stats: the virtual queues agree with the routing state "
	    "(%zu interactions ended, %zu taken in); routing events from %s",
	    ended, taken, rep->element[0]->str);
	follow(rep->element[0]->str);
}

/*
 * deleted_of - from XINFO STREAM, the newest id that may have been
 * deleted: the one before the oldest entry left, or, when none is left,
 * the last one added; and that last one.  -1 when the reply says
 * neither.
 */
static int
deleted_of(const redisReply *rep, struct sid *gone, struct sid *last)
{
	const redisReply	*v, *first = NULL, *lastg = NULL;
	size_t			 i;

	for (i = 0; i + 1 < rep->elements; i += 2) {
		if (rep->element[i]->type != REDIS_REPLY_STRING)
			continue;
		v = rep->element[i + 1];
		if (strcmp(rep->element[i]->str, "first-entry") == 0)
			first = v;
		else if (strcmp(rep->element[i]->str, "last-generated-id") == 0)
			lastg = v;
	}
	if (lastg == NULL || lastg->type != REDIS_REPLY_STRING ||
	    sid_parse(lastg->str, last) == -1)
		return -1;
	if (first != NULL && first->type == REDIS_REPLY_ARRAY &&
	    first->elements > 0 && first->element[0]->type ==
	    REDIS_REPLY_STRING && sid_parse(first->element[0]->str,
	    gone) == 0) {
		if (gone->seq-- == 0)
			gone->ms--;
		return 0;
	}
	*gone = *last;
	return 0;
}

/*
 * check_cb - entries after where the reader was a second ago were
 * deleted (it may have gone past them unseen), or the stream is gone or
 * younger than the reader's position (Redis lost it).  A reader that
 * started on an empty stream (0-0) is not judged by the first: it cannot
 * be told from one that missed the first entries.
 */
static void
check_cb(struct rds *r, const redisReply *rep, void *arg)
{
	struct sid	gone, last, at, zero = { 0, 0 };

	checking = 0;
	if (rep == NULL || syncing || reader == NULL ||
	    sid_parse(position, &at) == -1)
		return;
	if (rep->type == REDIS_REPLY_ERROR) {
		if (strstr(rep->str, "no such key") != NULL &&
		    sid_cmp(&at, &zero) != 0)
			resync("the routing events stream is gone");
		return;
	}
	if (rep->type != REDIS_REPLY_ARRAY || deleted_of(rep, &gone,
	    &last) == -1)
		return;
	if (sid_cmp(&last, &at) < 0)
		resync("the routing events stream is older than the reader's "
		    "position");
	else if (sid_cmp(&check_from, &zero) != 0 && sid_cmp(&gone,
	    &check_from) > 0)
		resync("routing events after the reader's position were "
		    "deleted from the stream (trimmed)");
}

/* set_up - the routing link: the virtual queues' statistics valid */
static void
set_up(int up)
{
	if (stats_env.routing_up == up)
		return;
	stats_env.routing_up = up;
	subs_validity();
}
