/* SPDX-License-Identifier: Apache-2.0 */
/*
 * store - the routing state every instance shares, in Redis
 * (docs/routing.md, "Shared state"):
 *
 *   tenantd:{t}:routing:ix:<id>	one interaction: a hash of its state,
 *					agent, DN, reservation expiry, skip
 *					rule, creation time and its document
 *   tenantd:{t}:routing:live		the interactions not ended (a sorted
 *					set by creation time)
 *   tenantd:{t}:routing:events		the routing events (a stream): the
 *					positions applications resume from
 *   tenantd:{t}:routing:calls:<day>	calls each person accepted that day
 *   tenantd:{t}:agent:<dn>		an agent's reservation ("rt:<id>",
 *					with an expiry), shared with the
 *					outbound worker's dialler
 *
 * Every change is one Lua script, so that it is atomic across instances:
 * it checks the state it starts from, changes it and appends the event
 * that says so, whose text carries the interaction's whole state.  The
 * instances never change their memory from a script's reply: they follow
 * the stream (queue.c), so each sees every change in one order, its own
 * and the others'.  A reservation is the agent's key, taken with SET NX
 * and an expiry: no two interactions, and no two instances, can hold one
 * agent.
 *
 * The scripts are sent by EVALSHA once Redis has loaded them, by EVAL
 * before that and whenever Redis says it does not know them (it
 * restarted).  Times are Redis's own clock (TIME), the same for every
 * instance.
 *
 * What it touches: the keys above, on its own Redis connections (one for
 * commands, one following the stream).
 */
#include <sys/queue.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "conf.h"
#include "log.h"
#include "rds.h"
#include "util.h"
#include "voice.h"
#include "worker.h"
#include "routing_int.h"

#define MAXLEN		"100000"	/* events kept, about */
#define KEEP_ENDED_S	"3600"		/* an ended interaction is read */
#define SKIP_MS		10000		/* a rejecting agent is not asked */
#define HOLD_MS		28800000	/* an accepted task holds its agent */
#define CATCH_UP_MS	1000		/* store_catch_up waits at most */

/*
 * What every script begins with: ARGV[1] the routing prefix, ARGV[2] the
 * agents' prefix, ARGV[3] the interaction's id.  state() writes an
 * interaction as the events and reads carry it.
 */
static const char prelude[] =
"local P, A, id = ARGV[1], ARGV[2], ARGV[3]\n"
"local t = redis.call('TIME')\n"
"local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
"local ix = P .. 'ix:' .. id\n"
"local function state(key, iid, typ, extra)\n"
"  local h = redis.call('HMGET', key, 'state', 'agent', 'dn', 'until',\n"
"    'created', 'skip', 'skipu', 'doc', 'seq')\n"
"  if not h[1] then return nil end\n"
"  local e = '{\"type\":\"' .. typ .. '\",\"id\":' .. cjson.encode(iid) ..\n"
"    ',\"state\":\"' .. h[1] .. '\",\"at\":' .. now ..\n"
"    ',\"created\":' .. h[5] .. ',\"seq\":' .. (h[9] or 0)\n"
"  if h[2] then\n"
"    e = e .. ',\"agent\":' .. h[2] .. ',\"dn\":' .. cjson.encode(h[3]) ..\n"
"      ',\"until\":' .. (h[4] or 0)\n"
"  end\n"
"  if h[6] then e = e .. ',\"skip\":' .. h[6] .. ',\"skipUntil\":' .. h[7] end\n"
"  return e .. (extra or '') .. ',\"interaction\":' .. h[8] .. '}'\n"
"end\n"
"local function ev(typ, extra)\n"
"  return redis.call('XADD', P .. 'events', 'MAXLEN', '~', " MAXLEN ",\n"
"    '*', 'e', state(ix, id, typ, extra))\n"
"end\n"
"local function unhold(dn)\n"
"  if dn and redis.call('GET', A .. dn) == 'rt:' .. id then\n"
"    redis.call('DEL', A .. dn)\n"
"  end\n"
"end\n";

/* ARGV[4] doc, [5] vq, [6] person or '', [7] dn, [8] ttl ms */
static const char queue_lua[] =
"if redis.call('EXISTS', ix) == 1 then return {0, 'exists'} end\n"
"local seq = redis.call('INCR', P .. 'seq')\n"
"redis.call('HSET', ix, 'state', 'queued', 'doc', ARGV[4], 'vq', ARGV[5],\n"
"  'created', now, 'seq', seq)\n"
"redis.call('ZADD', P .. 'live', now, id)\n"
"-- what state() would write, without reading back what was just set\n"
"redis.call('XADD', P .. 'events', 'MAXLEN', '~', " MAXLEN ", '*', 'e',\n"
"  '{\"type\":\"queued\",\"id\":' .. cjson.encode(id) ..\n"
"  ',\"state\":\"queued\",\"at\":' .. now .. ',\"created\":' .. now ..\n"
"  ',\"seq\":' .. seq .. ',\"interaction\":' .. ARGV[4] .. '}')\n"
"if ARGV[6] ~= '' and redis.call('SET', A .. ARGV[7], 'rt:' .. id, 'NX',\n"
"    'PX', ARGV[8]) then\n"
"  redis.call('HSET', ix, 'state', 'reserved', 'agent', ARGV[6],\n"
"    'dn', ARGV[7], 'until', now + tonumber(ARGV[8]))\n"
"  ev('reserved')\n"
"  return {1, 'reserved'}\n"
"end\n"
"return {1, 'queued'}\n";

/* ARGV[4] person, [5] dn, [6] ttl ms */
static const char reserve_lua[] =
"local h = redis.call('HMGET', ix, 'state', 'skip', 'skipu')\n"
"if h[1] ~= 'queued' then return {0, h[1] or 'gone'} end\n"
"if h[2] == ARGV[4] and tonumber(h[3]) > now then return {0, 'skip'} end\n"
"if not redis.call('SET', A .. ARGV[5], 'rt:' .. id, 'NX', 'PX',\n"
"    ARGV[6]) then\n"
"  return {0, 'agent', redis.call('PTTL', A .. ARGV[5])}\n"
"end\n"
"redis.call('HSET', ix, 'state', 'reserved', 'agent', ARGV[4],\n"
"  'dn', ARGV[5], 'until', now + tonumber(ARGV[6]))\n"
"ev('reserved')\n"
"return {1, 'reserved'}\n";

/* ARGV[4] person or '', [5] hold ms (0: free the agent's key), [6] day */
static const char accept_lua[] =
"local h = redis.call('HMGET', ix, 'state', 'agent', 'dn')\n"
"if h[1] ~= 'reserved' then return {0, h[1] or 'gone'} end\n"
"if ARGV[4] ~= '' and ARGV[4] ~= h[2] then return {0, 'agent'} end\n"
"local k = A .. h[3]\n"
"if redis.call('GET', k) ~= 'rt:' .. id then return {0, 'expired'} end\n"
"if tonumber(ARGV[5]) > 0 then redis.call('PEXPIRE', k, ARGV[5])\n"
"else redis.call('DEL', k) end\n"
"redis.call('HSET', ix, 'state', 'accepted', 'until', 0)\n"
"redis.call('HINCRBY', P .. 'calls:' .. ARGV[6], h[2], 1)\n"
"redis.call('EXPIRE', P .. 'calls:' .. ARGV[6], 172800)\n"
"ev('accepted')\n"
"return {1, 'accepted', h[2], h[3]}\n";

/* ARGV[4] person or '', [5] skip ms, [6] 'rejected' or 'timed-out' */
static const char reject_lua[] =
"local h = redis.call('HMGET', ix, 'state', 'agent', 'dn', 'until')\n"
"if h[1] ~= 'reserved' then return {0, h[1] or 'gone'} end\n"
"if ARGV[4] ~= '' and ARGV[4] ~= h[2] then return {0, 'agent'} end\n"
"if ARGV[6] == 'timed-out' and tonumber(h[4]) > now and\n"
"    redis.call('GET', A .. h[3]) == 'rt:' .. id then\n"
"  return {0, 'early'}\n"
"end\n"
"unhold(h[3])\n"
"redis.call('HSET', ix, 'state', 'queued', 'skip', h[2],\n"
"  'skipu', now + tonumber(ARGV[5]))\n"
"redis.call('HDEL', ix, 'agent', 'dn', 'until')\n"
"ev(ARGV[6], ',\"from\":' .. h[2] .. ',\"fromDN\":' .. cjson.encode(h[3]))\n"
"return {1, 'queued'}\n";

/* ARGV[4] event type, [5] states it may end from (",a,b,"), [6] person
 * or '', [7] the final state */
static const char end_lua[] =
"local h = redis.call('HMGET', ix, 'state', 'agent', 'dn')\n"
"if not h[1] then return {0, 'gone'} end\n"
"if not string.find(ARGV[5], ',' .. h[1] .. ',', 1, true) then\n"
"  return {0, h[1]}\n"
"end\n"
"if ARGV[6] ~= '' and ARGV[6] ~= h[2] then return {0, 'agent'} end\n"
"unhold(h[3])\n"
"redis.call('HSET', ix, 'state', ARGV[7], 'until', 0)\n"
"redis.call('ZREM', P .. 'live', id)\n"
"ev(ARGV[4])\n"
"redis.call('EXPIRE', ix, " KEEP_ENDED_S ")\n"
"return {1, ARGV[7]}\n";

/* ARGV[4] doc */
static const char update_lua[] =
"local s = redis.call('HGET', ix, 'state')\n"
"if s ~= 'queued' and s ~= 'reserved' and s ~= 'accepted' then\n"
"  return {0, s or 'gone'}\n"
"end\n"
"redis.call('HSET', ix, 'doc', ARGV[4])\n"
"ev('updated')\n"
"return {1, s}\n";

/* ARGV[3] unused; [4] day.  {position, calls today, epoch,
 * interactions...} */
static const char snapshot_lua[] =
"local epoch = redis.call('GET', P .. 'epoch')\n"
"if not epoch then return {'restore'} end\n"
"local last = redis.call('XREVRANGE', P .. 'events', '+', '-', 'COUNT', 1)\n"
"local out = {last[1] and last[1][1] or '0-0',\n"
"  redis.call('HGETALL', P .. 'calls:' .. ARGV[4]), epoch}\n"
"for _, i in ipairs(redis.call('ZRANGE', P .. 'live', 0, -1)) do\n"
"  local s = state(P .. 'ix:' .. i, i, 'state')\n"
"  if s then out[#out + 1] = s else redis.call('ZREM', P .. 'live', i) end\n"
"end\n"
"return out\n";

/* ARGV[4] doc, [5] vq, [6] created (ms), [7] the agent who accepted it
 * ('0': none), [8] its DN, [9] how long it holds the agent */
static const char restore_lua[] =
"if redis.call('EXISTS', ix) == 1 then return {0, 'exists'} end\n"
"redis.call('HSET', ix, 'state', 'queued', 'doc', ARGV[4], 'vq', ARGV[5],\n"
"  'created', ARGV[6], 'seq', redis.call('INCR', P .. 'seq'))\n"
"redis.call('ZADD', P .. 'live', ARGV[6], id)\n"
"if ARGV[7] ~= '0' then\n"
"  redis.call('HSET', ix, 'state', 'accepted', 'agent', ARGV[7],\n"
"    'dn', ARGV[8], 'until', 0)\n"
"  redis.call('SET', A .. ARGV[8], 'rt:' .. id, 'PX', ARGV[9])\n"
"  ev('accepted', ',\"restored\":true')\n"
"  return {1, 'accepted'}\n"
"end\n"
"ev('queued', ',\"restored\":true')\n"
"return {1, 'queued'}\n";

static const char get_lua[] =
"return state(ix, id, 'state')\n";

/* ARGV[3] unused; [4] a JSON array of ids.  A letter for each: L live,
 * E ended (its record is kept KEEP_ENDED_S), A absent; or false when Redis
 * does not hold the routing state (no epoch: it may have lost it) */
static const char gone_lua[] =
"if redis.call('EXISTS', P .. 'epoch') == 0 then return false end\n"
"local out = {}\n"
"for n, i in ipairs(cjson.decode(ARGV[4])) do\n"
"  if redis.call('ZSCORE', P .. 'live', i) then out[n] = 'L'\n"
"  elseif redis.call('EXISTS', P .. 'ix:' .. i) == 1 then out[n] = 'E'\n"
"  else out[n] = 'A' end\n"
"end\n"
"return table.concat(out)\n";

enum script { S_QUEUE, S_RESERVE, S_ACCEPT, S_REJECT, S_END, S_UPDATE,
    S_SNAPSHOT, S_GET, S_RESTORE, S_GONE, S_MAX };

static const char *const bodies[S_MAX] = { queue_lua, reserve_lua,
    accept_lua, reject_lua, end_lua, update_lua, snapshot_lua, get_lua,
    restore_lua, gone_lua };

static struct rds	*kv;
static char		*texts[S_MAX];	/* prelude + body */
static char		 shas[S_MAX][41]; /* "" until loaded */
static char		*prefix, *agent_prefix, *events_key;
static char		 epoch[32];	/* of the last snapshot, "" none yet */

#define ARGS_MAX	12

/* One script call, kept until answered (sent again after NOSCRIPT). */
struct call {
	enum script	 s;
	int		 argc;
	char		*argv[ARGS_MAX];
	int		 retried;
	int		 sent;		/* handed to Redis: a lost answer is
					 * an unknown outcome */
	void		(*done)(struct call *, const redisReply *);
	store_cb	*cb;
	store_get_cb	*get_cb;
	store_gone_cb	*gone_cb;
	void		*arg;
};

static struct rds	*follower;
static struct event	*ev_retry;
static int		 snapshotting, have_snapshot;

/*
 * Catching up (store_catch_up): the position of the last event applied,
 * and the requests waiting until it reaches the stream's end as it was
 * when they asked.
 */
struct catch_up {
	TAILQ_ENTRY(catch_up)	 entry;
	struct sid		 until;
	int			 asked;		/* until is known */
	uint64_t		 deadline_us;
	void			(*cb)(void *, int);
	void			*arg;
};
static TAILQ_HEAD(, catch_up) catching = TAILQ_HEAD_INITIALIZER(catching);
static struct sid	 applied;
static struct event	*ev_catch_up;

static void	catch_up_run(int all);

static void	send_call(struct call *, int eval);
static void	snapshot(void);
static void	restore(void);
static const char *num(char *, size_t, long long);
static void	retry(evutil_socket_t, short, void *);
static void	on_state(struct rds *, enum rds_state, void *);
static void	load_scripts(void);
static void	today(char *, size_t);
static void	catch_up_due(evutil_socket_t, short, void *);

void
store_start(struct event_base *b, const struct conf *c)
{
	int	i;

	prefix = xasprintf("tenantd:{%s}:routing:", c->tenant_id);
	agent_prefix = xasprintf("tenantd:{%s}:agent:", c->tenant_id);
	events_key = xasprintf("%sevents", prefix);
	for (i = 0; i < S_MAX; i++)
		texts[i] = xasprintf("%s%s", prelude, bodies[i]);
	ev_retry = evtimer_new(b, retry, NULL);
	ev_catch_up = evtimer_new(b, catch_up_due, NULL);
	kv = rds_new_conf(b, &c->redis, on_state, NULL);
	rds_set_name(kv, "redis (routing)");
}

void
store_cleanup(void)
{
	int	i;

	catch_up_run(1);
	rds_free(kv);
	rds_free(follower);
	kv = follower = NULL;
	if (ev_retry != NULL)
		event_free(ev_retry);
	ev_retry = NULL;
	if (ev_catch_up != NULL)
		event_free(ev_catch_up);
	ev_catch_up = NULL;
	have_snapshot = snapshotting = 0;
	for (i = 0; i < S_MAX; i++) {
		free(texts[i]);
		texts[i] = NULL;
		shas[i][0] = '\0';
	}
	free(prefix);
	free(agent_prefix);
	free(events_key);
	prefix = agent_prefix = events_key = NULL;
}

const char *
store_events_key(void)
{
	return events_key;
}

struct rds *
store_kv(void)
{
	return kv;
}

/* ---- the scripts ---- */

static void
loaded(struct rds *r, const redisReply *rep, void *arg)
{
	int	i = (int)(intptr_t)arg;

	if (rep != NULL && rep->type == REDIS_REPLY_STRING && rep->len == 40)
		memcpy(shas[i], rep->str, 41);
}

static void
load_scripts(void)
{
	int	i;

	for (i = 0; i < S_MAX; i++)
		rds_command(kv, loaded, (void *)(intptr_t)i,
		    "SCRIPT LOAD %s", texts[i]);
}

static void
call_free(struct call *c)
{
	int	i;

	for (i = 0; i < c->argc; i++)
		free(c->argv[i]);
	free(c);
}

static void
replied(struct rds *r, const redisReply *rep, void *arg)
{
	struct call	*c = arg;

	if (rep != NULL && rep->type == REDIS_REPLY_ERROR &&
	    strncmp(rep->str, "NOSCRIPT", 8) == 0 && !c->retried) {
		c->retried = 1;
		shas[c->s][0] = '\0';
		load_scripts();
		send_call(c, 1);
		return;
	}
	if (rep != NULL && rep->type == REDIS_REPLY_ERROR)
		log_warnx("routing: Redis refused a script: %s", rep->str);
	c->sent = rep != NULL || rds_reply_sent(r);
	c->done(c, rep != NULL && rep->type != REDIS_REPLY_ERROR ? rep :
	    NULL);
	call_free(c);
}

/* send_call - EVALSHA (or EVAL) script 0 prefix agents id args... */
static void
send_call(struct call *c, int eval)
{
	const char	*argv[ARGS_MAX + 3];
	size_t		 lens[ARGS_MAX + 3];
	int		 i, n = 0;

	eval = eval || shas[c->s][0] == '\0';
	argv[n++] = eval ? "EVAL" : "EVALSHA";
	argv[n++] = eval ? texts[c->s] : shas[c->s];
	argv[n++] = "0";
	for (i = 0; i < c->argc; i++)
		argv[n++] = c->argv[i];
	for (i = 0; i < n; i++)
		lens[i] = strlen(argv[i]);
	if (rds_command_argv(kv, replied, c, n, argv, lens) == -1) {
		c->done(c, NULL);
		call_free(c);
	}
}

/* call_new - script s with its arguments after the three every one has */
static struct call *
call_new(enum script s, void (*done)(struct call *, const redisReply *),
    const char *id, int n, const char *const *args)
{
	struct call	*c = xcalloc(1, sizeof(*c));
	int		 i;

	c->s = s;
	c->done = done;
	c->argv[c->argc++] = xstrdup(prefix);
	c->argv[c->argc++] = xstrdup(agent_prefix);
	c->argv[c->argc++] = xstrdup(id);
	for (i = 0; i < n && c->argc < ARGS_MAX; i++)
		c->argv[c->argc++] = xstrdup(args[i]);
	return c;
}

static void
call(enum script s, void (*done)(struct call *, const redisReply *),
    const char *id, int n, const char *const *args, store_cb *cb,
    void *arg)
{
	struct call	*c = call_new(s, done, id, n, args);

	c->cb = cb;
	c->arg = arg;
	send_call(c, 0);
}

/*
 * changed - a change script's answer: {1|0, why, ...}.  PostgreSQL
 * follows (journal.c): a changed document, an end; a call accepted
 * (without a hold) is the agent's now.  An answer lost after the script
 * was sent leaves its outcome unknown, and a queueing refused because the
 * id exists (a routing point's call another instance queued) may have met
 * one that ended: the journal checks those ids against Redis later.  A
 * queueing that never left did not happen (its creator hears 503).
 */
static void
changed(struct call *c, const redisReply *rep)
{
	const char	*why = NULL, *id = c->argv[2];
	int		 rc = -1;

	if (rep != NULL && rep->type == REDIS_REPLY_ARRAY &&
	    rep->elements >= 2 && rep->element[0]->type ==
	    REDIS_REPLY_INTEGER && rep->element[1]->type ==
	    REDIS_REPLY_STRING) {
		rc = rep->element[0]->integer == 1;
		why = rep->element[1]->str;
	}
	if (rc == 1 && c->s == S_UPDATE)
		journal_doc(id, c->argv[3]);
	else if (rc == 1 && (c->s == S_END || (c->s == S_ACCEPT &&
	    strcmp(c->argv[4], "0") == 0)))
		journal_del(id);
	else if (rc == 1 && c->s == S_ACCEPT && rep->elements >= 4 &&
	    rep->element[2]->type == REDIS_REPLY_STRING &&
	    rep->element[3]->type == REDIS_REPLY_STRING)
		journal_accept(id, strtoll(rep->element[2]->str, NULL, 10),
		    rep->element[3]->str);
	else if (rc == -1 && c->s == S_QUEUE && !c->sent)
		journal_del(id);
	else if ((rc == -1 && c->sent && (c->s == S_QUEUE || c->s == S_END ||
	    c->s == S_ACCEPT)) || (rc == 0 && c->s == S_QUEUE))
		journal_doubt(id);
	if (c->cb != NULL)
		c->cb(rc, why, c->arg);
}

static const char *
num(char *buf, size_t len, long long v)
{
	snprintf(buf, len, "%lld", v);
	return buf;
}

void
store_queue(const char *id, const char *doc, json_int_t vq,
    json_int_t person, const char *dn, store_cb *cb, void *arg)
{
	char		 v[24], p[24], ttl[24];
	const char	*a[] = { doc, num(v, sizeof(v), vq), person > 0 ?
			    num(p, sizeof(p), person) : "", dn, num(ttl,
			    sizeof(ttl), (long long)(rt.reservation_ttl *
			    1000)) };

	call(S_QUEUE, changed, id, 5, a, cb, arg);
}

void
store_reserve(const char *id, json_int_t person, const char *dn,
    store_cb *cb, void *arg)
{
	char		 p[24], ttl[24];
	const char	*a[] = { num(p, sizeof(p), person), dn, num(ttl,
			    sizeof(ttl), (long long)(rt.reservation_ttl *
			    1000)) };

	call(S_RESERVE, changed, id, 3, a, cb, arg);
}

/* today - the day of the calls-today counts, in local time */
static void
today(char *buf, size_t len)
{
	time_t		now = time(NULL);
	struct tm	tm;

	localtime_r(&now, &tm);
	strftime(buf, len, "%Y%m%d", &tm);
}

void
store_accept(const char *id, json_int_t person, int hold, store_cb *cb,
    void *arg)
{
	char		 p[24], h[24], day[16];
	const char	*a[] = { person > 0 ? num(p, sizeof(p), person) : "",
			    num(h, sizeof(h), hold ? HOLD_MS : 0), day };

	today(day, sizeof(day));
	call(S_ACCEPT, changed, id, 3, a, cb, arg);
}

void
store_reject(const char *id, json_int_t person, store_cb *cb, void *arg)
{
	char		 p[24], s[24];
	const char	*a[] = { person > 0 ? num(p, sizeof(p), person) : "",
			    num(s, sizeof(s), SKIP_MS), "rejected" };

	call(S_REJECT, changed, id, 3, a, cb, arg);
}

void
store_expire(const char *id, store_cb *cb, void *arg)
{
	char		 s[24];
	const char	*a[] = { "", num(s, sizeof(s), SKIP_MS), "timed-out" };

	call(S_REJECT, changed, id, 3, a, cb, arg);
}

void
store_end(const char *id, const char *type, json_int_t person,
    store_cb *cb, void *arg)
{
	char		 p[24];
	const char	*from, *a[4];

	if (strcmp(type, "completed") == 0)
		from = ",accepted,";
	else if (strcmp(type, "timed-out") == 0)
		from = ",queued,";
	else
		from = ",queued,reserved,accepted,";
	a[0] = type;
	a[1] = from;
	a[2] = person > 0 ? num(p, sizeof(p), person) : "";
	a[3] = type;
	call(S_END, changed, id, 4, a, cb, arg);
}

void
store_update(const char *id, const char *doc, store_cb *cb, void *arg)
{
	const char	*a[] = { doc };

	call(S_UPDATE, changed, id, 1, a, cb, arg);
}

/* ---- reads ---- */

static void
got(struct call *c, const redisReply *rep)
{
	json_t	*o = NULL;

	if (rep != NULL && rep->type == REDIS_REPLY_STRING)
		o = json_loadb(rep->str, rep->len, 0, NULL);
	c->get_cb(o, rep != NULL, c->arg);
	json_decref(o);
}

void
store_get(const char *id, store_get_cb *cb, void *arg)
{
	struct call	*c = call_new(S_GET, got, id, 0, NULL);

	c->get_cb = cb;
	c->arg = arg;
	send_call(c, 0);
}

static void
gone(struct call *c, const redisReply *rep)
{
	c->gone_cb(rep != NULL && rep->type == REDIS_REPLY_STRING ?
	    rep->str : NULL, c->arg);
}

/* store_gone - of ids (a JSON array's text), whether each is live (L),
 * ended (E) or absent (A) in Redis, a letter each; NULL when Redis did not
 * answer or does not hold the routing state */
void
store_gone(const char *ids, store_gone_cb *cb, void *arg)
{
	const char	*a[] = { ids };
	struct call	*c = call_new(S_GONE, gone, "", 1, a);

	c->gone_cb = cb;
	c->arg = arg;
	send_call(c, 0);
}

/*
 * ---- the snapshot and the stream ----
 *
 * At start, and whenever the connection comes back (a Redis that
 * restarted may have lost everything, or nothing), the state is read
 * whole with the stream's last position, in one script; the stream is
 * then followed from that position on a connection of its own, made anew
 * each time.
 */


static void
on_entry(struct rds *r, const char *id, const redisReply *fields, void *arg)
{
	size_t	i;

	if (fields != NULL && fields->type == REDIS_REPLY_ARRAY)
		for (i = 0; i + 1 < fields->elements; i += 2)
			if (fields->element[i]->type == REDIS_REPLY_STRING &&
			    strcmp(fields->element[i]->str, "e") == 0 &&
			    fields->element[i + 1]->type == REDIS_REPLY_STRING)
				queue_event(id, fields->element[i + 1]->str,
				    fields->element[i + 1]->len);
	if (sid_parse(id, &applied) == 0 && !TAILQ_EMPTY(&catching))
		catch_up_run(0);
}

/*
 * ---- catching up ----
 *
 * An instance hears of a change by the stream, a moment after Redis made
 * it; a client that heard of it from another instance (its feed said
 * "reserved") and asks this one about the interaction must not be told
 * it does not exist.  So a request about an interaction unknown here
 * waits until this instance has applied the stream up to its end as it
 * was when the request came (the last entry's id, read then), or for
 * CATCH_UP_MS, and then looks again.
 */

/*
 * catch_up_run - call the waiters that are done; all: every one, told
 * that the worker is stopping (it only frees what it holds)
 */
static void
catch_up_run(int all)
{
	struct catch_up	*w, *next;
	uint64_t	 now = now_mono_us();

	for (w = TAILQ_FIRST(&catching); w != NULL; w = next) {
		next = TAILQ_NEXT(w, entry);
		if (!all && !(w->asked && sid_cmp(&applied, &w->until) >= 0) &&
		    now < w->deadline_us)
			continue;
		TAILQ_REMOVE(&catching, w, entry);
		w->cb(w->arg, all);
		free(w);
	}
	if (ev_catch_up != NULL && !TAILQ_EMPTY(&catching) &&
	    !evtimer_pending(ev_catch_up, NULL)) {
		struct timeval	tv = { 0, 100000 };

		evtimer_add(ev_catch_up, &tv);
	}
}

static void
catch_up_due(evutil_socket_t fd, short what, void *arg)
{
	catch_up_run(0);
}

/* caught_end - the stream's last id now: w waits for it */
static void
caught_end(struct rds *r, const redisReply *rep, void *arg)
{
	struct catch_up	*w = arg;

	w->asked = 1;
	if (rep == NULL || rep->type != REDIS_REPLY_ARRAY ||
	    rep->elements == 0 || rep->element[0]->type !=
	    REDIS_REPLY_ARRAY || rep->element[0]->elements < 1 ||
	    rep->element[0]->element[0]->type != REDIS_REPLY_STRING ||
	    sid_parse(rep->element[0]->element[0]->str, &w->until) == -1)
		w->deadline_us = 0;	/* no stream, or no answer: now */
	catch_up_run(0);
}

/*
 * store_catch_up - cb(arg, 0) once this instance has applied every
 * routing event written before now, or after CATCH_UP_MS (Redis slow, or
 * away); cb(arg, 1) if the worker stops first
 */
void
store_catch_up(void (*cb)(void *, int), void *arg)
{
	struct catch_up	*w = xcalloc(1, sizeof(*w));

	w->cb = cb;
	w->arg = arg;
	w->deadline_us = now_mono_us() + CATCH_UP_MS * 1000ULL;
	TAILQ_INSERT_TAIL(&catching, w, entry);
	if (kv == NULL || rds_command(kv, caught_end, w,
	    "XREVRANGE %s + - COUNT 1", events_key) == -1)
		w->deadline_us = 0;
	catch_up_run(0);
}

static void
snapshotted(struct call *c, const redisReply *rep)
{
	const struct conf	*cf = worker_conf();
	json_t			*calls, *ixs, *o;
	const redisReply	*h;
	size_t			 i;

	snapshotting = 0;
	if (rep != NULL && rep->type == REDIS_REPLY_ARRAY && rep->elements == 1
	    && rep->element[0]->type == REDIS_REPLY_STRING &&
	    strcmp(rep->element[0]->str, "restore") == 0) {
		restore();
		return;
	}
	if (rep == NULL || rep->type != REDIS_REPLY_ARRAY ||
	    rep->elements < 3 || rep->element[0]->type != REDIS_REPLY_STRING ||
	    rep->element[1]->type != REDIS_REPLY_ARRAY ||
	    rep->element[2]->type != REDIS_REPLY_STRING) {
		struct timeval	tv = { 1, 0 };

		evtimer_add(ev_retry, &tv);
		return;
	}
	calls = json_object();
	h = rep->element[1];
	for (i = 0; i + 1 < h->elements; i += 2)
		if (h->element[i]->type == REDIS_REPLY_STRING &&
		    h->element[i + 1]->type == REDIS_REPLY_STRING)
			json_object_set_new(calls, h->element[i]->str,
			    json_integer(strtoll(h->element[i + 1]->str, NULL,
			    10)));
	ixs = json_array();
	for (i = 3; i < rep->elements; i++)
		if (rep->element[i]->type == REDIS_REPLY_STRING &&
		    (o = json_loadb(rep->element[i]->str,
		    rep->element[i]->len, 0, NULL)) != NULL)
			json_array_append_new(ixs, o);
	if (follower != NULL)
		rds_free(follower);
	follower = rds_new_conf(rt.base, &cf->redis, NULL, NULL);
	rds_set_name(follower, "redis (routing events)");
	rds_stream_follow(follower, events_key, rep->element[0]->str, 0, 500,
	    on_entry, NULL);
	if (sid_parse(rep->element[0]->str, &applied) == -1)
		memset(&applied, 0, sizeof(applied));
	have_snapshot = 1;
	queue_load(calls, ixs);
	/* the same epoch: the stream is the one the feeds were reading */
	feed_reset(rep->element[0]->str, epoch[0] != '\0' &&
	    strcmp(epoch, rep->element[2]->str) != 0);
	snprintf(epoch, sizeof(epoch), "%s", rep->element[2]->str);
	json_decref(calls);
	json_decref(ixs);
	log_info("routing: the shared state is read (%zu interactions, from "
	    "event %s)", rep->elements - 3, rep->element[0]->str);
}

static void
snapshot(void)
{
	struct call	*c;
	char		 day[16];
	const char	*a[] = { day };

	if (snapshotting)
		return;
	snapshotting = 1;
	today(day, sizeof(day));
	c = call_new(S_SNAPSHOT, snapshotted, "", 1, a);
	send_call(c, 0);
}

static void
retry(evutil_socket_t fd, short what, void *arg)
{
	snapshot();
}

static void
retry_later(void)
{
	struct timeval	tv = { 1, 0 };

	evtimer_add(ev_retry, &tv);
}

/*
 * ---- Redis without its state: the journal read back ----
 *
 * No epoch key: Redis is new, or restarted without its data.  One
 * instance (a lock with an expiry) puts every row of rt_interaction back
 * as queued with its creation time, then sets the epoch; the others, and
 * this one, then take their snapshot.
 */

struct restoring {
	size_t	left;
	int	failed;
};

static void
epoch_set(struct rds *r, const redisReply *rep, void *arg)
{
	if (rep == NULL || rep->type == REDIS_REPLY_ERROR) {
		retry_later();
		return;
	}
	rds_command(kv, NULL, NULL, "DEL %srestoring", prefix);
	snapshot();
}

static void
restored_one(int rc, const char *why, void *arg)
{
	struct restoring	*k = arg;

	if (rc == -1)
		k->failed = 1;
	if (--k->left > 0)
		return;
	if (k->failed)
		retry_later();		/* the lock expires; tried again */
	else if (rds_command(kv, epoch_set, NULL, "SET %sepoch %llu",
	    prefix, (unsigned long long)now_wall_us()) == -1)
		retry_later();
	free(k);
}

static void
rows_read(json_t *rows, void *arg)
{
	struct restoring	*k;
	json_t			*o;
	size_t			 i;
	char			 vq[24], created[24];
	const char		*a[6];
	char			 agent[24], hold[24];

	if (rows == NULL) {
		retry_later();
		return;
	}
	k = xcalloc(1, sizeof(*k));
	k->left = json_array_size(rows) + 1;
	json_array_foreach(rows, i, o) {
		a[0] = json_string_value(json_object_get(o, "doc"));
		a[1] = num(vq, sizeof(vq), json_integer_value(json_object_get(o,
		    "vq")));
		a[2] = num(created, sizeof(created), json_integer_value(
		    json_object_get(o, "created")));
		a[3] = num(agent, sizeof(agent), json_integer_value(
		    json_object_get(o, "agent")));
		a[4] = json_string_value(json_object_get(o, "dn")) ?: "";
		a[5] = num(hold, sizeof(hold), HOLD_MS);
		call(S_RESTORE, changed, json_string_value(json_object_get(o,
		    "id")), 6, a, restored_one, k);
	}
	if (json_array_size(rows) > 0)
		log_info("routing: Redis had lost the routing state: %zu "
		    "interactions put back from PostgreSQL", json_array_size(rows));
	restored_one(1, NULL, k);
}

static void
locked(struct rds *r, const redisReply *rep, void *arg)
{
	if (rep != NULL && rep->type == REDIS_REPLY_STATUS)
		journal_load(rows_read, NULL);
	else
		retry_later();		/* another instance restores */
}

static void
restore(void)
{
	if (!journal_ready() || rds_command(kv, locked, NULL,
	    "SET %srestoring %s NX PX 30000", prefix, rt.owner) == -1)
		retry_later();
}

/* on_state - the command connection went down or came back up */
static void
on_state(struct rds *r, enum rds_state st, void *arg)
{
	if (st == RDS_UP) {
		load_scripts();
		snapshot();
	} else if (st == RDS_DOWN && have_snapshot) {
		have_snapshot = 0;
		queue_reset();
	}
}

int
store_ready(void)
{
	return have_snapshot && !snapshotting;
}
