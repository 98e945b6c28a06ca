/* SPDX-License-Identifier: Apache-2.0 */
/*
 * agentstates - every agent's CurrentAgentState in the Redis hash
 * tenantd:{<tenant>}:stats:agents, by employeeId, for the routing worker
 * and other instances (docs/stats.md "State in Redis").  A changed state
 * is written once the events at hand are applied, in one HSET; while a
 * write is out, changes gather for the next.  At start, after a failed
 * write, and when Redis comes back (it may have lost the hash), the whole
 * hash is written again, in one MULTI, so that a reader never sees it
 * half made.
 *
 * It touches only that key, through the worker's Redis connection.
 */
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "idmap.h"
#include "log.h"
#include "worker.h"
#include "stats_int.h"

static void	states_written(struct rds *, const redisReply *, void *);
static void	every_agent(json_int_t, void *);
static size_t	states_args(const char **, char **);
static void	states_send(const char **, size_t);

static struct idmap	 st_dirty;	/* person dbid -> mark */
static json_int_t	*st_list;	/* those persons, in order */
static size_t		 st_n, st_cap;
static int		 st_inflight;	/* a write is out */
static int		 st_resync = 1;	/* write the whole hash */
static char		*k_agents;

void
agents_init(const struct conf *c)
{
	k_agents = xasprintf("tenantd:{%s}:stats:agents", c->tenant_id);
	st_resync = 1;
}

/* agents_changed - person's state is to be written */
void
agents_changed(json_int_t person)
{
	if (person <= 0 || idmap_get(&st_dirty, (uint64_t)person) != NULL)
		return;
	idmap_put(&st_dirty, (uint64_t)person, &st_dirty);
	if (st_n == st_cap) {
		st_cap = st_cap ? st_cap * 2 : 256;
		st_list = xrealloc(st_list, st_cap * sizeof(*st_list));
	}
	st_list[st_n++] = person;
	subs_schedule();
}

/* agents_write - the changed agent states to Redis, in one command (all
 * of them in one MULTI when the hash is to be written whole) */
void
agents_write(void)
{
	const char	**argv;
	char		**texts;
	size_t		  i, n;

	if (st_inflight || !stats_env.voice_started ||
	    rds_state(stats_env.kv) != RDS_UP)
		return;
	if (st_resync)
		index_each_login(every_agent, NULL);
	if (st_n == 0 && !st_resync)
		return;
	argv = xcalloc(2 + 2 * st_n, sizeof(*argv));
	texts = xcalloc(st_n + 1, sizeof(*texts));
	n = states_args(argv, texts);
	states_send(argv, n);
	for (i = 0; i < n; i++)
		free(texts[i]);
	free(texts);
	free(argv);
}

/* agents_kv_state - a Redis that comes back may have lost the hash */
void
agents_kv_state(struct rds *r, enum rds_state state, void *arg)
{
	if (state == RDS_UP) {
		st_resync = 1;
		subs_schedule();
	}
}

void
agents_cleanup(void)
{
	idmap_clear(&st_dirty);
	free(st_list);
	st_list = NULL;
	st_n = st_cap = 0;
	st_inflight = 0;
	st_resync = 1;
	free(k_agents);
	k_agents = NULL;
}

/* states_args - HSET key, then employeeId and state of each changed
 * agent (texts: the states, to free); the number of agents */
static size_t
states_args(const char **argv, char **texts)
{
	struct jw	 w;
	char		 buf[256];
	const char	*eid;
	size_t		 i, n = 0;

	argv[0] = "HSET";
	argv[1] = k_agents;
	for (i = 0; i < st_n; i++) {
		idmap_del(&st_dirty, (uint64_t)st_list[i]);
		if ((eid = index_eid(st_list[i])) == NULL)
			continue;
		jw_init(&w, buf, sizeof(buf));
		value_person_state(st_list[i], &w);
		texts[n] = xstrdup(w.p);
		jw_free(&w);
		argv[2 + 2 * n] = eid;
		argv[3 + 2 * n] = texts[n];
		n++;
	}
	st_n = 0;
	return n;
}

/* states_send - the command; a whole write replaces the hash at once
 * for a reader, and one of no agent at all leaves none in it */
static void
states_send(const char **argv, size_t n)
{
	size_t	*len, i;
	int	 ok;

	if (n == 0) {
		if (st_resync && rds_command(stats_env.kv, NULL, NULL, "DEL %s",
		    k_agents) == 0)
			st_resync = 0;
		return;
	}
	len = xcalloc(2 + 2 * n, sizeof(*len));
	for (i = 0; i < 2 + 2 * n; i++)
		len[i] = strlen(argv[i]);
	if (st_resync) {
		rds_command(stats_env.kv, NULL, NULL, "MULTI");
		rds_command(stats_env.kv, NULL, NULL, "DEL %s", k_agents);
	}
	ok = rds_command_argv(stats_env.kv, st_resync ? NULL : states_written,
	    NULL, 2 + 2 * (int)n, argv, len) == 0;
	if (st_resync)
		rds_command(stats_env.kv, ok ? states_written : NULL, NULL,
		    ok ? "EXEC" : "DISCARD");
	st_inflight = ok;
	st_resync = !ok;
	free(len);
}

/* states_written - a write of agent states answered */
static void
states_written(struct rds *r, const redisReply *rep, void *arg)
{
	st_inflight = 0;
	if (rep == NULL || rep->type == REDIS_REPLY_ERROR) {
		if (!st_resync)
			log_warnx("stats: agent states not written to Redis "
			    "(%s); all of them will be, once it answers",
			    rep != NULL ? rep->str : "no connection");
		st_resync = 1;
	} else if (st_n > 0 || st_resync)
		subs_schedule();
}

/* every_agent - for a whole write */
static void
every_agent(json_int_t person, void *arg)
{
	agents_changed(person);
}
