/* SPDX-License-Identifier: Apache-2.0 */
/*
 * save - what a restarted worker needs to go on as if it had not
 * stopped: the model's snapshot with the stream position of each region
 * it reflects and of the routing events (tenantd:{<tenant>}:stats:model),
 * and the Growing totals
 * with the reset they head for (stats:growing).  Saved every 5 s, when
 * they changed, by a forked child, so that the loop never waits while
 * they are serialized; restored once the configuration is loaded, before
 * the voice and routing events since the snapshot are read (voicefeed.c,
 * routingfeed.c).
 *
 * It touches those two keys, through the worker's Redis connection (the
 * child through its own), and forks; nothing else of the parent's but
 * memory the child reads.
 */
#include <sys/resource.h>
#include <sys/wait.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "log.h"
#include "rds.h"
#include "voice.h"
#include "worker.h"
#include "stats_int.h"

#define SAVE_EVERY_S		5	/* model snapshot and totals */

struct child_save {
	redisContext	*rc;
	int		 n;		/* commands sent */
};

static void	on_load(evutil_socket_t, short, void *);
static void	restored(struct rds *, const redisReply *, void *);
static void	totals_restored(struct rds *, const redisReply *, void *);
static int	total_restore(const json_t *, double);
static void	reseed(struct statistic *, void *);
static void	start_reading(void);
static void	loaded_cb(struct rds *, const redisReply *, void *);
static void	persist(int);
static void	reap(void);
static void	child_save(int) __attribute__((noreturn));
static void	child_total(struct statistic *, void *);
static char	*saved_text(const struct statistic *);
static char	*snapshot_text(void);

static char		*k_model, *k_growing;
static struct event	*ev_load;
static uint64_t		 last_save_us;
static pid_t		 saver;		/* the saving child */
static int		 saver_model;	/* it saves the model too */
/* Saves by epoch (stats_env.save_epoch): a statistic changed in epoch
 * save_from or later is not saved yet; a save takes those, and the epoch
 * moves on. */
static uint64_t		 save_from = 1, saver_from;
/* Where each region's stream is read from after a restart, and the
 * routing events. */
static char		*resume_from[VOICE_REGIONS_MAX];
static char		*routing_from;
static int		 no_snapshot;

void
save_init(const struct conf *c)
{
	k_model = xasprintf("tenantd:{%s}:stats:model", c->tenant_id);
	k_growing = xasprintf("tenantd:{%s}:stats:growing", c->tenant_id);
	ev_load = evtimer_new(stats_env.base, on_load, NULL);
	stats_env.save_epoch = save_from = 1;
}

/* save_load - the configuration is loaded: the last worker's model and
 * totals, then the voice events since */
void
save_load(void)
{
	on_load(-1, 0, NULL);
}

/* save_tick - the saving child reaped; a new save every SAVE_EVERY_S */
void
save_tick(uint64_t now_us)
{
	reap();
	if (now_us - last_save_us >= SAVE_EVERY_S * 1000000ULL) {
		last_save_us = now_us;
		persist(0);
	}
}

/* save_stop - the next worker starts from here: the save under way, then
 * a last one, both waited for */
void
save_stop(void)
{
	int	status;

	reap();
	if (saver > 0) {
		while (waitpid(saver, &status, 0) == -1 && errno == EINTR)
			;
		saver = 0;
	}
	stats_env.model_dirty = 1;
	persist(1);
}

/* save_total_load - a Growing total made again: the saved one of its
 * period, if any */
void
save_total_load(const struct statistic *m)
{
	char	*key = xstrdup(m->key);

	/* The reply's callback owns key; without a command, nobody does. */
	if (rds_command(stats_env.kv, loaded_cb, key, "HGET %s %s", k_growing,
	    key) == -1)
		free(key);
}

/* save_total_forget - a Growing total that reset with nobody watching */
void
save_total_forget(const struct statistic *m)
{
	rds_command(stats_env.kv, NULL, NULL, "HDEL %s %s", k_growing, m->key);
}

void
save_cleanup(void)
{
	int	i;

	free(k_model);
	free(k_growing);
	k_model = k_growing = NULL;
	for (i = 0; i < VOICE_REGIONS_MAX; i++) {
		free(resume_from[i]);
		resume_from[i] = NULL;
	}
	free(routing_from);
	routing_from = NULL;
	if (ev_load != NULL)
		event_free(ev_load);
	ev_load = NULL;
}

/* ---- restoring ---- */

static void
on_load(evutil_socket_t fd, short what, void *arg)
{
	struct timeval	tv = { 1, 0 };

	if (rds_command(stats_env.kv, restored, NULL, "GET %s", k_model) == -1)
		evtimer_add(ev_load, &tv);
}

/*
 * restored - the last worker's model, with the stream positions it
 * reflects.
 *
 * Guarantees: the reader goes on from exactly those positions, so that no
 * event is applied twice or missed; the voice side's boot id the model
 * knows is the snapshot's, so that a voice side that restarted meanwhile
 * is noticed (reconcile.c); a statistic opened before this, seeded from
 * an empty model, is seeded again from the restored one (reseed); the
 * Growing totals are back before any event is read (totals_restored).
 * Why in that order: an event read before its totals were back would be
 * counted in a total that the saved one then replaces.  Without a
 * snapshot (or an unreadable one) the reader starts at the stream's end,
 * and what was going on comes from the state hash: a gap.  With Redis
 * away, again in a second: read from the stream's end without knowing
 * whether a snapshot exists, the worker would drop the model the last
 * one saved, and the totals with it.
 */
static void
restored(struct rds *r, const redisReply *rep, void *arg)
{
	const struct conf	*c = worker_conf();
	json_t			*j = NULL, *pos;
	const char		*p;
	int			 i, n = 1 + c->nremotes;

	if (rep == NULL || (rep->type != REDIS_REPLY_STRING &&
	    rep->type != REDIS_REPLY_NIL)) {
		struct timeval	tv = { 1, 0 };

		evtimer_add(ev_load, &tv);	/* Redis away: again */
		return;
	}
	if (rep->type == REDIS_REPLY_STRING &&
	    (j = json_loadb(rep->str, rep->len, 0, NULL)) != NULL &&
	    model_restore(stats_env.model, json_object_get(j, "model")) == 0) {
		pos = json_object_get(j, "positions");
		for (i = 0; i < n; i++) {
			p = json_string_value(json_object_get(pos, i == 0 ?
			    c->redis.name : c->remotes[i - 1].name));
			resume_from[i] = p != NULL ? xstrdup(p) : NULL;
		}
		p = json_string_value(json_object_get(j, "routing"));
		routing_from = p != NULL ? xstrdup(p) : NULL;
		log_info("agent states restored from the snapshot; reading "
		    "the voice events since");
		p = json_string_value(json_object_get(j, "boot"));
		reconcile_set_boot(p != NULL ? p : "");
		statistic_each(reseed, NULL);
	} else
		no_snapshot = 1;
	json_decref(j);
	index_fresh();
	if (rds_command(stats_env.kv, totals_restored, NULL, "HGETALL %s",
	    k_growing) == -1)
		start_reading();
}

/*
 * totals_restored - the Growing totals of the last worker come back as
 * statistics, before the events since the snapshot are read again, so
 * that those events count in them.  A total of an older period, or one
 * that does not read, is gone.
 */
static void
totals_restored(struct rds *r, const redisReply *rep, void *arg)
{
	double	now = stats_now();
	size_t	i, n = 0;
	json_t	*j;

	for (i = 0; rep != NULL && rep->type == REDIS_REPLY_ARRAY &&
	    i + 1 < rep->elements; i += 2) {
		j = json_loadb(rep->element[i + 1]->str,
		    rep->element[i + 1]->len, 0, NULL);
		if (j != NULL && total_restore(j, now) == 0)
			n++;
		else
			rds_command(stats_env.kv, NULL, NULL, "HDEL %s %s",
			    k_growing, rep->element[i]->str);
		json_decref(j);
	}
	if (n > 0)
		log_info("%zu Growing totals restored", n);
	start_reading();
}

/* total_restore - one saved total as a statistic; -1 when it is not of
 * the current period or does not read */
static int
total_restore(const json_t *j, double now)
{
	struct statistic	*m;
	struct stype		 t;
	struct profile		 p;
	char			 why[256];
	int			 created;

	if (stype_parse(json_object_get(j, "type"), json_string_value(
	    json_object_get(j, "name")), &t, why, sizeof(why)) == -1 ||
	    profile_parse(json_object_get(j, "profile"), &p, why,
	    sizeof(why)) == -1 ||
	    json_string_value(json_object_get(j, "id")) == NULL ||
	    json_number_value(json_object_get(j, "nextReset")) !=
	    profile_next_reset(&p, now, stats_gmtoff(now)))
		return -1;
	m = statistic_get((enum object_kind)json_integer_value(
	    json_object_get(j, "kind")), json_integer_value(json_object_get(j,
	    "dbid")), json_string_value(json_object_get(j, "id")), &t, &p, 0,
	    &created);
	acc_load(m->acc, json_object_get(j, "acc"));
	return 0;
}

/* start_reading - the voice and routing events after the restored
 * positions */
static void
start_reading(void)
{
	int	i;

	voicefeed_start(resume_from, no_snapshot);
	routingfeed_start(routing_from);
	for (i = 0; i < VOICE_REGIONS_MAX; i++) {
		free(resume_from[i]);
		resume_from[i] = NULL;
	}
	free(routing_from);
	routing_from = NULL;
}

/*
 * reseed - a statistic opened before the model was restored was seeded
 * from an empty model, and a restore tells no one what it starts: it
 * counts what the restored model holds in progress now.  (It is not
 * valid yet: the voice link comes up only after the restore, and then
 * its subscribers get EventStatisticValid with this value.)
 */
static void
reseed(struct statistic *m, void *arg)
{
	statistic_seed(m);
	subs_mark(m);
}

/* loaded_cb - a saved Growing total, for a statistic made again */
static void
loaded_cb(struct rds *r, const redisReply *rep, void *arg)
{
	char			*key = arg;
	struct statistic	*m = statistic_find(key);
	json_t			*j;

	free(key);
	if (m == NULL || rep == NULL || rep->type != REDIS_REPLY_STRING)
		return;
	j = json_loadb(rep->str, rep->len, 0, NULL);
	/* The same period only: the reset it was heading for. */
	if (j != NULL && json_number_value(json_object_get(j, "nextReset")) ==
	    m->next_reset && acc_load(m->acc, json_object_get(j, "acc")) == 0)
		subs_mark(m);
	json_decref(j);
}

/* ---- saving ---- */

/*
 * persist - save what changed from a forked child: the fork hands it the
 * state as it is now (pages shared until written), and the loop goes on
 * while it serializes 10,000 agents and the totals, which would stall the
 * loop for a good part of a second.  One child at a time; reaped by
 * the tick.  wait: for a stop, block until it is done.
 */
static void
persist(int wait)
{
	int	model_too = stats_env.model_dirty && stats_env.voice_started;
	int	status;
	pid_t	pid;

	if (saver > 0 || rds_state(stats_env.kv) != RDS_UP)
		return;
	if ((pid = fork()) == -1) {
		log_warn("stats: fork to save the state");
		return;
	}
	if (pid == 0)
		child_save(model_too);
	saver = pid;
	saver_model = model_too;
	if (model_too)
		stats_env.model_dirty = 0;
	/* What changes from now on goes in the next save. */
	saver_from = save_from;
	save_from = ++stats_env.save_epoch;
	if (wait) {
		while (waitpid(pid, &status, 0) == -1 && errno == EINTR)
			;
		saver = 0;
	}
}

/* reap - the saving child is done: if it failed, save all again */
static void
reap(void)
{
	int	status;
	pid_t	r;

	if (saver <= 0)
		return;
	if ((r = waitpid(saver, &status, WNOHANG)) == 0)
		return;
	if (r == saver && (!WIFEXITED(status) || WEXITSTATUS(status) != 0)) {
		log_warnx("stats: saving the state to Redis failed; again at "
		    "the next tick");
		if (saver_model)
			stats_env.model_dirty = 1;
		save_from = saver_from;		/* those changes again */
	}
	saver = 0;
}

/*
 * child_save - in the child: serialize and write, blocking, then exit.
 * It touches nothing of the parent's but memory it reads.
 */
static void
child_save(int model_too)
{
	const struct conf	*c = worker_conf();
	struct timeval		 tv = { 5, 0 };
	struct child_save	 cs;
	redisReply		*rep;
	char			*text;
	int			 ok = 1;

	/* The parent serves clients meanwhile: let it go first.  Its
	 * sockets are the parent's: a client that leaves, or a worker that
	 * dies, must not find them held open by the child. */
	(void)setpriority(PRIO_PROCESS, 0, 19);
	closefrom(3);
	cs.n = 0;
	/* authenticated, and the master when through Sentinel */
	if ((cs.rc = rds_connect_sync(&c->redis, tv)) == NULL)
		_exit(1);
	if (model_too) {
		text = snapshot_text();
		redisAppendCommand(cs.rc, "SET %s %s", k_model, text);
		free(text);
		cs.n++;
	}
	statistic_each(child_total, &cs);
	while (cs.n-- > 0) {
		if (redisGetReply(cs.rc, (void **)&rep) != REDIS_OK) {
			ok = 0;
			break;
		}
		if (rep->type == REDIS_REPLY_ERROR)
			ok = 0;
		freeReplyObject(rep);
	}
	_exit(ok ? 0 : 1);
}

/* child_total - a Growing total that changed since the last save */
static void
child_total(struct statistic *m, void *arg)
{
	struct child_save	*cs = arg;
	char			*text;

	if (!keeps_counting(m) || m->changed < save_from)
		return;
	text = saved_text(m);
	redisAppendCommand(cs->rc, "HSET %s %s %s", k_growing, m->key, text);
	free(text);
	cs->n++;
}

/* saved_text - what is kept of a Growing statistic: enough to remake it */
static char *
saved_text(const struct statistic *m)
{
	json_t	*j;
	char	*text;

	j = json_pack("{s:f, s:o, s:i, s:I, s:s, s:s, s:o, s:o}", "nextReset",
	    m->next_reset, "acc", acc_save(m->acc), "kind", (int)m->kind,
	    "dbid", m->dbid, "id", m->id, "name", m->t.name, "type",
	    stype_json(&m->t), "profile", profile_json(&m->p));
	text = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	return text;
}

/* snapshot_text - the model with the stream positions it reflects */
static char *
snapshot_text(void)
{
	json_t	*j, *pos;
	char	*text, id[64];
	int	 i;

	j = json_pack("{s:o}", "model", model_dump(stats_env.model));
	pos = json_object();
	for (i = 0; i < voice_nregions(); i++) {
		sid_format(voice_region_position(i), id, sizeof(id));
		json_object_set_new(pos, voice_region_name(i), json_string(id));
	}
	json_object_set_new(j, "positions", pos);
	if (routingfeed_position()[0] != '\0')
		json_object_set_new(j, "routing",
		    json_string(routingfeed_position()));
	if (reconcile_boot_known()[0] != '\0')
		json_object_set_new(j, "boot",
		    json_string(reconcile_boot_known()));
	text = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	return text;
}
