/* SPDX-License-Identifier: Apache-2.0 */
/*
 * throttle - login attempts counted in Redis, or in memory while Redis
 * is away (throttle.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "conf.h"
#include "log.h"
#include "rds.h"
#include "strmap.h"
#include "throttle.h"
#include "util.h"

/*
 * KEYS: the address's count, then the user's (if any); ARGV: the window
 * in ms, then for each key the count that refuses (0: never).  {the
 * address's count before, the user's, ms until a refusal ends (0: not
 * refused)}.  A refused attempt is not counted, so the refusal ends with
 * the window of the first failure.
 */
static const char attempt_lua[] =
    "local n, wait = {0, 0}, 0 "
    "for i, k in ipairs(KEYS) do "
    " local c = tonumber(redis.call('GET', k) or '0') "
    " local refuse = tonumber(ARGV[i + 1]) "
    " n[i] = c "
    " if refuse > 0 and c >= refuse then "
    "  local t = redis.call('PTTL', k) "
    "  if t < 0 then t = tonumber(ARGV[1]) end "
    "  if t > wait then wait = t end end end "
    "if wait > 0 then return {n[1], n[2], wait} end "
    "for _, k in ipairs(KEYS) do "
    " if redis.call('INCR', k) == 1 then "
    "  redis.call('PEXPIRE', k, ARGV[1]) end end "
    "return {n[1], n[2], 0}";

/* KEYS: the address's count, then the user's (if any). */
static const char success_lua[] =
    "if KEYS[2] then redis.call('DEL', KEYS[2]) end "
    "if tonumber(redis.call('GET', KEYS[1]) or '0') > 1 then "
    " redis.call('DECR', KEYS[1]) else redis.call('DEL', KEYS[1]) end "
    "return 1";

/* A count kept in memory. */
struct lcount {
	unsigned	n;
	uint64_t	end_us;		/* monotonic */
};

struct throttle_wait {
	TAILQ_ENTRY(throttle_wait) entry;
	struct throttle		*t;
	struct event		*ev;
	void			(*fn)(void *);
	void			*arg;
};

struct throttle {
	struct event_base	*base;
	TAILQ_HEAD(, throttle_wait) waits;
	struct rds		*redis;
	char			*prefix;	/* tenantd:{<tenant>}:login: */
	struct throttle_limits	 lim;
	struct strmap		 local;		/* key -> struct lcount */
	int			 warned;	/* of the local counts */
};

struct throttle_op {
	struct throttle	*t;
	char		*user;		/* or NULL */
	char		 addr[THROTTLE_HOST_MAX];
	throttle_cb	*cb;		/* NULL: cancelled */
	void		*arg;
};

/* throttle_new - counts of one tenant, on a Redis command connection */
struct throttle *
throttle_new(struct event_base *base, const struct conf_redis *cr,
    const char *tenant_id)
{
	struct throttle	*t = xcalloc(1, sizeof(*t));

	t->base = base;
	t->redis = rds_new_conf(base, cr, NULL, NULL);
	rds_set_name(t->redis, "redis (logins)");
	t->prefix = xasprintf("tenantd:{%s}:login:", tenant_id);
	t->lim.window = 300;
	TAILQ_INIT(&t->waits);
	return t;
}

static void
lcount_free(const char *key, void *val, void *arg)
{
	free(val);
}

static void	wait_done(evutil_socket_t, short, void *);

/*
 * throttle_free - pending attempts are answered by rds_free, locally;
 * delayed answers are given now
 */
void
throttle_free(struct throttle *t)
{
	struct throttle_wait	*w;

	if (t == NULL)
		return;
	while ((w = TAILQ_FIRST(&t->waits)) != NULL)
		wait_done(-1, 0, w);
	rds_free(t->redis);
	t->redis = NULL;
	strmap_each(&t->local, lcount_free, NULL);
	strmap_clear(&t->local);
	free(t->prefix);
	free(t);
}

struct throttle_limits
throttle_limits_of(const struct conf *c)
{
	struct throttle_limits	l;

	l.delay_after = (unsigned)c->login_delay_after;
	l.refuse_after = (unsigned)c->login_refuse_after;
	l.addr_delay_after = (unsigned)c->login_address_delay_after;
	l.addr_refuse_after = (unsigned)c->login_address_refuse_after;
	l.window = c->login_window;
	l.delay = c->login_delay;
	return l;
}

void
throttle_set_limits(struct throttle *t, const struct throttle_limits *l)
{
	t->lim = *l;
}

/* stage - what one count means against its two limits */
static enum throttle_verdict
stage(unsigned n, unsigned delay_after, unsigned refuse_after)
{
	if (refuse_after > 0 && n >= refuse_after)
		return THROTTLE_REFUSE;
	if (delay_after > 0 && n >= delay_after)
		return THROTTLE_SLOW;
	return THROTTLE_OK;
}

/* throttle_verdict_of - what the counts before (and a refusal) mean */
enum throttle_verdict
throttle_verdict_of(const struct throttle_limits *l, unsigned addr,
    unsigned user, int refused)
{
	enum throttle_verdict	a, u;

	if (refused)
		return THROTTLE_REFUSE;
	a = stage(addr, l->addr_delay_after, l->addr_refuse_after);
	u = stage(user, l->delay_after, l->refuse_after);
	return a > u ? a : u;
}

/* throttle_host - the address part of a peer name */
void
throttle_host(const char *peer, char *buf, size_t len)
{
	const char	*end;
	size_t		 n;

	if (peer[0] == '[' && (end = strchr(peer, ']')) != NULL)
		peer++;
	else if ((end = strrchr(peer, ':')) == NULL ||
	    strchr(peer, ':') != end)	/* no port, or a bare IPv6 address */
		end = peer + strlen(peer);
	n = (size_t)(end - peer);
	if (n >= len)
		n = len - 1;
	memcpy(buf, peer, n);
	buf[n] = '\0';
}

/* ---- in memory, while Redis is away ---- */

struct prune {
	struct strmap	*m;
	uint64_t	 now;
};

static void
prune_one(const char *key, void *val, void *arg)
{
	struct prune	*p = arg;
	struct lcount	*lc = val;

	if (lc->end_us <= p->now)
		free(strmap_del(p->m, key));
}

/* local_get - the live count of key; NULL when it has none */
static struct lcount *
local_get(struct throttle *t, const char *key, uint64_t now)
{
	struct lcount	*lc = strmap_get(&t->local, key);

	if (lc != NULL && lc->end_us <= now) {
		free(strmap_del(&t->local, key));
		lc = NULL;
	}
	return lc;
}

/* local_add - count one attempt of key; -1 when the table is full */
static int
local_add(struct throttle *t, const char *key, uint64_t now)
{
	struct prune	 p = { &t->local, now };
	struct lcount	*lc;

	if ((lc = local_get(t, key, now)) != NULL) {
		lc->n++;
		return 0;
	}
	if (t->local.n >= THROTTLE_LOCAL_MAX)
		strmap_each(&t->local, prune_one, &p);
	if (t->local.n >= THROTTLE_LOCAL_MAX)
		return -1;
	lc = xcalloc(1, sizeof(*lc));
	lc->n = 1;
	lc->end_us = now + (uint64_t)(t->lim.window * 1e6);
	strmap_put(&t->local, key, lc);
	return 0;
}

/* local_attempt - the script's work, in this process's memory */
static void
local_attempt(struct throttle *t, char *const keys[], int nkeys,
    unsigned before[2], uint64_t *wait_us)
{
	struct lcount	*lc;
	uint64_t	 now = now_mono_us();
	unsigned	 refuse[2] = { t->lim.addr_refuse_after,
			    t->lim.refuse_after };
	int		 i;

	before[0] = before[1] = 0;
	*wait_us = 0;
	for (i = 0; i < nkeys; i++) {
		if ((lc = local_get(t, keys[i], now)) == NULL)
			continue;
		before[i] = lc->n;
		if (refuse[i] > 0 && lc->n >= refuse[i] &&
		    lc->end_us - now > *wait_us)
			*wait_us = lc->end_us - now;
	}
	if (*wait_us > 0)
		return;
	for (i = 0; i < nkeys; i++)
		if (local_add(t, keys[i], now) == -1)
			*wait_us = (uint64_t)(t->lim.window * 1e6);
}

/* ---- attempts ---- */

/* op_keys - the op's Redis keys, the address's first; free(3) each */
static int
op_keys(struct throttle_op *op, char *keys[2])
{
	keys[0] = xasprintf("%saddr:%s", op->t->prefix, op->addr);
	if (op->user == NULL)
		return 1;
	keys[1] = xasprintf("%suser:%s", op->t->prefix, op->user);
	return 2;
}

static void
op_free(struct throttle_op *op)
{
	free(op->user);
	free(op);
}

/* op_answer - the caller's verdict */
static void
op_answer(struct throttle_op *op, const unsigned before[2], uint64_t wait_ms)
{
	enum throttle_verdict	v;

	v = throttle_verdict_of(&op->t->lim, before[0], before[1],
	    wait_ms > 0);
	if (op->cb != NULL)
		op->cb(v, v == THROTTLE_REFUSE ? (unsigned)((wait_ms + 999) /
		    1000) : 0, op->arg);
	op_free(op);
}

/* op_local - Redis could not answer: count in memory */
static void
op_local(struct throttle_op *op)
{
	struct throttle	*t = op->t;
	char		*keys[2];
	unsigned	 before[2];
	uint64_t	 wait_us;
	int		 n = op_keys(op, keys), i;

	if (!t->warned)
		log_warnx("login attempts counted in this process only "
		    "(Redis unavailable)");
	t->warned = 1;
	local_attempt(t, keys, n, before, &wait_us);
	for (i = 0; i < n; i++)
		free(keys[i]);
	op_answer(op, before, (wait_us + 999) / 1000);
}

static void
attempt_cb(struct rds *r, const redisReply *reply, void *arg)
{
	struct throttle_op	*op = arg;
	unsigned		 before[2];
	size_t			 i;

	if (reply == NULL || reply->type != REDIS_REPLY_ARRAY ||
	    reply->elements != 3)
		goto local;
	for (i = 0; i < 3; i++)
		if (reply->element[i]->type != REDIS_REPLY_INTEGER)
			goto local;
	if (op->t->warned)
		log_info("login attempts counted in Redis again");
	op->t->warned = 0;
	before[0] = (unsigned)reply->element[0]->integer;
	before[1] = (unsigned)reply->element[1]->integer;
	op_answer(op, before, (uint64_t)reply->element[2]->integer);
	return;
local:
	if (reply != NULL && reply->type == REDIS_REPLY_ERROR)
		log_warnx("login attempt not counted in Redis: %s", reply->str);
	op_local(op);
}

/* throttle_attempt - count the attempt, atomically with the check */
struct throttle_op *
throttle_attempt(struct throttle *t, const char *user, const char *addr,
    throttle_cb *cb, void *arg)
{
	struct throttle_op	*op = xcalloc(1, sizeof(*op));
	unsigned long long	 window_ms = (unsigned long long)
				    (t->lim.window * 1000);
	char			*keys[2];
	int			 n, rc;

	op->t = t;
	op->user = user != NULL ? xstrdup(user) : NULL;
	snprintf(op->addr, sizeof(op->addr), "%s", addr);
	op->cb = cb;
	op->arg = arg;
	n = op_keys(op, keys);
	if (n == 2)
		rc = rds_command(t->redis, attempt_cb, op, "EVAL %s 2 %s %s "
		    "%llu %u %u", attempt_lua, keys[0], keys[1], window_ms,
		    t->lim.addr_refuse_after, t->lim.refuse_after);
	else
		rc = rds_command(t->redis, attempt_cb, op, "EVAL %s 1 %s "
		    "%llu %u", attempt_lua, keys[0], window_ms,
		    t->lim.addr_refuse_after);
	free(keys[0]);
	if (n == 2)
		free(keys[1]);
	if (rc == -1) {
		op_local(op);	/* at once: rds_command did not take it */
		return NULL;
	}
	return op;
}

/*
 * throttle_cancel - the caller is gone; the attempt stays counted.  Only
 * before cb was called: op is freed after the call.
 */
void
throttle_cancel(struct throttle_op *op)
{
	if (op != NULL)
		op->cb = NULL;
}

/* throttle_success - the user's count gone, the address's one less */
void
throttle_success(struct throttle *t, const char *user, const char *addr)
{
	struct throttle_op	 op = { t, (char *)user, "", NULL, NULL };
	struct lcount		*lc;
	char			*keys[2];
	int			 n, i;

	snprintf(op.addr, sizeof(op.addr), "%s", addr);
	n = op_keys(&op, keys);
	rds_command(t->redis, NULL, NULL, n == 2 ? "EVAL %s 2 %s %s" :
	    "EVAL %s 1 %s", success_lua, keys[0], n == 2 ? keys[1] : NULL);
	/* the local counts too, in case the attempt was counted here */
	if ((lc = strmap_get(&t->local, keys[0])) != NULL && lc->n > 0)
		lc->n--;
	for (i = 0; i < n; i++) {
		if (i == 1)
			free(strmap_del(&t->local, keys[i]));
		free(keys[i]);
	}
}

/* throttle_forget - a user's count gone (its password was changed) */
void
throttle_forget(struct throttle *t, const char *user)
{
	char	*key = xasprintf("%suser:%s", t->prefix, user);

	rds_command(t->redis, NULL, NULL, "DEL %s", key);
	free(strmap_del(&t->local, key));
	free(key);
}

/* ---- delays ---- */

static void
wait_done(evutil_socket_t fd, short what, void *arg)
{
	struct throttle_wait	*w = arg;
	void			(*fn)(void *) = w->fn;
	void			*farg = w->arg;

	TAILQ_REMOVE(&w->t->waits, w, entry);
	event_free(w->ev);
	free(w);
	fn(farg);
}

/* throttle_delay - fn(arg) after login_delay seconds, from the loop */
struct throttle_wait *
throttle_delay(struct throttle *t, void (*fn)(void *), void *arg)
{
	struct throttle_wait	*w = xcalloc(1, sizeof(*w));
	struct timeval		 tv = util_tv(t->lim.delay);

	w->t = t;
	w->fn = fn;
	w->arg = arg;
	TAILQ_INSERT_TAIL(&t->waits, w, entry);
	if ((w->ev = evtimer_new(t->base, wait_done, w)) == NULL)
		fatalx("throttle: cannot make a timer");
	evtimer_add(w->ev, &tv);
	return w;
}

void
throttle_wait_cancel(struct throttle_wait *w)
{
	if (w == NULL)
		return;
	TAILQ_REMOVE(&w->t->waits, w, entry);
	event_free(w->ev);
	free(w);
}
