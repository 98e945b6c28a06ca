/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rds - a Redis connection on a libevent loop, over hiredis 0.14's async
 * API and its libevent adapter.
 *
 * hiredis frees an async context itself after a failed connect or a lost
 * connection, calling every pending reply callback with NULL first, and
 * redisAsyncFree from inside a reply callback only takes effect once the
 * callback returns.  So the rules here are:
 *   - r->ac is the live context; it is cleared before anything that can
 *     run user code, and every hiredis callback ignores a context that is
 *     no longer r->ac;
 *   - user code never runs from a NULL reply: failed commands are queued
 *     and answered from link's deferred event, off hiredis' stack;
 *   - rds_free from inside a callback drops the context and leaves the
 *     freeing of r to the next turn of the loop, when hiredis is done.
 * hiredis 0.14 has no connect timeout: link's timer provides it, and
 * also waits out the backoff before the next attempt (link.h).
 */
#include <sys/queue.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <hiredis/async.h>
#include <hiredis/adapters/libevent.h>

#include "link.h"
#include "log.h"
#include "rds.h"
#include "util.h"

#define RDS_BLOCK_MS		5000
#define RDS_COUNT		100

enum rds_mode {
	RDS_MODE_NONE = 0,
	RDS_MODE_CMD,
	RDS_MODE_SUB,
	RDS_MODE_STREAM,
};

struct rds_cmd {
	TAILQ_ENTRY(rds_cmd)	 entry;
	struct rds		*rds;
	rds_reply_cb		*cb;
	void			*arg;
	char			*buf;		/* parked: the formatted command */
	int			 len;
};
TAILQ_HEAD(rds_cmds, rds_cmd);

struct rds_sub {
	TAILQ_ENTRY(rds_sub)	 entry;
	struct rds		*rds;
	char			*name;
	int			 pattern;
	rds_message_cb		*cb;
	void			*arg;
};

struct rds_stream {
	char			*key;
	char			 last[64];	/* id of the last entry seen */
	unsigned		 block_ms;
	unsigned		 count;
	rds_entry_cb		*cb;
	void			*arg;
};

struct rds {
	struct link		 link;		/* name, state, retries */
	struct event_base	*base;
	char			*host;
	int			 port;
	char			*password;
	rds_state_cb		*state_cb;
	void			*state_arg;
	enum rds_mode		 mode;
	redisAsyncContext	*ac;
	struct rds_cmds		 parked;	/* for the first context */
	struct rds_cmds		 failed;	/* to be answered NULL */
	TAILQ_HEAD(, rds_sub)	 subs;
	struct rds_stream	 stream;
	char			 why[256];
};

_Static_assert(RDS_DOWN == (int)LINK_DOWN && RDS_CONNECTING ==
    (int)LINK_CONNECTING && RDS_UP == (int)LINK_UP, "rds_state is link_state");

static void	rds_connect(void *);
static void	rds_drop(void *, const char *);
static void	rds_on_defer(void *);
static void	rds_destroy(void *);
static void	rds_on_state(void *, enum link_state);
static void	rds_on_connect(const redisAsyncContext *, int);
static void	rds_on_disconnect(const redisAsyncContext *, int);
static void	rds_on_hello(redisAsyncContext *, void *, void *);
static void	rds_on_reply(redisAsyncContext *, void *, void *);
static void	rds_on_message(redisAsyncContext *, void *, void *);
static void	rds_on_tail(redisAsyncContext *, void *, void *);
static void	rds_on_xread(redisAsyncContext *, void *, void *);

static const struct link_ops rds_link_ops = {
	.connect = rds_connect, .lost = rds_drop, .defer = rds_on_defer,
	.destroy = rds_destroy, .state = rds_on_state,
};

/* rds_new - a client that starts connecting once the loop runs */
struct rds *
rds_new(struct event_base *base, const char *host, int port,
    const char *password, rds_state_cb *cb, void *arg)
{
	struct rds	*r;

	r = xcalloc(1, sizeof(*r));
	r->base = base;
	r->host = xstrdup(host);
	r->port = port;
	r->password = password != NULL ? xstrdup(password) : NULL;
	r->state_cb = cb;
	r->state_arg = arg;
	TAILQ_INIT(&r->parked);
	TAILQ_INIT(&r->failed);
	TAILQ_INIT(&r->subs);
	link_init(&r->link, base, host[0] == '/' ?
	    xasprintf("redis %s", host) : xasprintf("redis %s:%d", host, port),
	    &rds_link_ops, r);
	return r;
}

/* rds_set_connect_timeout - how long a connect and its AUTH or PING may take */
void
rds_set_connect_timeout(struct rds *r, unsigned ms)
{
	link_set_connect_timeout(&r->link, ms);
}

/* rds_set_backoff - the first and the largest delay between attempts */
void
rds_set_backoff(struct rds *r, unsigned base_ms, unsigned max_ms)
{
	link_set_backoff(&r->link, base_ms, max_ms);
}

/* rds_set_name - the name used in log lines, such as a region */
void
rds_set_name(struct rds *r, const char *name)
{
	link_set_name(&r->link, name);
}

/* rds_state - down, connecting or up, for health and metrics */
enum rds_state
rds_state(const struct rds *r)
{
	return (enum rds_state)link_state(&r->link);
}

/* rds_name - the name used in log lines */
const char *
rds_name(const struct rds *r)
{
	return link_name(&r->link);
}

/* rds_stream_last_id - where a stream follower would resume */
const char *
rds_stream_last_id(const struct rds *r)
{
	return r->stream.last;
}

/* rds_on_state - report a state change to the creator of the client */
static void
rds_on_state(void *arg, enum link_state s)
{
	struct rds	*r = arg;

	if (r->state_cb != NULL)
		r->state_cb(r, (enum rds_state)s, r->state_arg);
}

static void	rds_unpark(struct rds *);

/* rds_down - the connection failed or broke: retry after the backoff */
static void
rds_down(struct rds *r, const char *why)
{
	rds_unpark(r);
	link_down(&r->link, why);
}

/* rds_drop - drop the live context on purpose, saying why */
static void
rds_drop(void *arg, const char *why)
{
	struct rds		*r = arg;
	redisAsyncContext	*ac = r->ac;

	r->ac = NULL;
	if (ac != NULL)
		redisAsyncFree(ac);	/* deferred if in its callback */
	rds_down(r, why);
}

/* rds_fail - rds_drop with a formatted reason */
static void __attribute__((format(printf, 2, 3)))
rds_fail(struct rds *r, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(r->why, sizeof(r->why), fmt, ap);
	va_end(ap);
	rds_drop(r, r->why);
}

/* rds_connect - start a connection attempt; AUTH or PING goes first */
static void
rds_connect(void *arg)
{
	struct rds		*r = arg;
	redisAsyncContext	*ac;

	if (r->host[0] == '/')
		ac = redisAsyncConnectUnix(r->host);
	else
		ac = redisAsyncConnect(r->host, r->port);
	if (ac == NULL)
		fatalx("rds: out of memory");
	if (ac->err) {
		snprintf(r->why, sizeof(r->why), "%s", ac->errstr);
		redisAsyncFree(ac);
		rds_down(r, r->why);
		return;
	}
	ac->data = r;
	if (redisLibeventAttach(ac, r->base) != REDIS_OK)
		fatalx("rds: cannot attach to the event loop");
	redisAsyncSetConnectCallback(ac, rds_on_connect);
	redisAsyncSetDisconnectCallback(ac, rds_on_disconnect);
	r->ac = ac;
	link_attempt(&r->link);
	if (r->password != NULL)
		redisAsyncCommand(ac, rds_on_hello, r, "AUTH %s", r->password);
	else
		redisAsyncCommand(ac, rds_on_hello, r, "PING");
	rds_unpark(r);
}

/* rds_sub_send - (re)issue one subscription */
static void
rds_sub_send(struct rds *r, struct rds_sub *s)
{
	redisAsyncCommand(r->ac, rds_on_message, s,
	    s->pattern ? "PSUBSCRIBE %s" : "SUBSCRIBE %s", s->name);
}

/* rds_stream_next - ask for the entries after the last one seen */
static void
rds_stream_next(struct rds *r)
{
	struct rds_stream	*st = &r->stream;

	/* "$" is pinned to a real id first, or a reconnect could skip */
	if (strcmp(st->last, "$") == 0)
		redisAsyncCommand(r->ac, rds_on_tail, r,
		    "XREVRANGE %s + - COUNT 1", st->key);
	else
		redisAsyncCommand(r->ac, rds_on_xread, r,
		    "XREAD BLOCK %u COUNT %u STREAMS %s %s", st->block_ms,
		    st->count, st->key, st->last);
}

/* rds_up - the server answered: resume the connection's work, report */
static void
rds_up(struct rds *r)
{
	struct rds_sub	*s;

	/* before the state callback, which may add a subscription */
	TAILQ_FOREACH(s, &r->subs, entry)
		rds_sub_send(r, s);
	if (r->stream.key != NULL)
		rds_stream_next(r);
	link_up(&r->link);
}

/* rds_on_connect - TCP connect done or failed; hiredis frees on failure */
static void
rds_on_connect(const redisAsyncContext *ac, int status)
{
	struct rds	*r = ac->data;

	if (r == NULL || r->ac != ac)
		return;
	if (status == REDIS_OK) {
		redisEnableKeepAlive((redisContext *)&ac->c);
		return;
	}
	r->ac = NULL;
	snprintf(r->why, sizeof(r->why), "%s", ac->c.errstr);
	rds_down(r, r->why);
}

/* rds_on_disconnect - the connection broke; hiredis is freeing it */
static void
rds_on_disconnect(const redisAsyncContext *ac, int status)
{
	struct rds	*r = ac->data;

	if (r == NULL || r->ac != ac)
		return;
	r->ac = NULL;
	snprintf(r->why, sizeof(r->why), "%s", status == REDIS_OK ||
	    ac->errstr == NULL ? "connection closed" : ac->errstr);
	rds_down(r, r->why);
}

/* rds_on_hello - the answer to AUTH or PING: the server is usable */
static void
rds_on_hello(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct rds	*r = privdata;
	redisReply	*rep = reply;

	if (rep == NULL || r->ac != ac)
		return;
	if (rep->type == REDIS_REPLY_ERROR)
		rds_fail(r, "%s: %s", r->password ? "AUTH" : "PING", rep->str);
	else
		rds_up(r);
}

/* rds_cmd_failed - answer a command NULL from the loop */
static void
rds_cmd_failed(struct rds *r, struct rds_cmd *c)
{
	TAILQ_INSERT_TAIL(&r->failed, c, entry);
	link_defer(&r->link);
}

/* rds_cmd_send - hand a formatted command to the context, or park it */
static void
rds_cmd_send(struct rds *r, struct rds_cmd *c, char *buf, int len)
{
	if (r->ac != NULL && redisAsyncFormattedCommand(r->ac, rds_on_reply,
	    c, buf, (size_t)len) == REDIS_OK) {
		redisFreeCommand(buf);
		return;
	}
	if (r->ac == NULL && link_state(&r->link) == LINK_CONNECTING &&
	    !link_dying(&r->link)) {
		/* queued before the first attempt started */
		c->buf = buf;
		c->len = len;
		TAILQ_INSERT_TAIL(&r->parked, c, entry);
		return;
	}
	redisFreeCommand(buf);
	rds_cmd_failed(r, c);
}

/* rds_unpark - send parked commands to the new context, or fail them */
static void
rds_unpark(struct rds *r)
{
	struct rds_cmds	 list;
	struct rds_cmd	*c;
	char		*buf;

	TAILQ_INIT(&list);
	TAILQ_CONCAT(&list, &r->parked, entry);
	while ((c = TAILQ_FIRST(&list)) != NULL) {
		TAILQ_REMOVE(&list, c, entry);
		buf = c->buf;
		c->buf = NULL;
		if (r->ac != NULL)
			rds_cmd_send(r, c, buf, c->len);
		else {
			redisFreeCommand(buf);
			rds_cmd_failed(r, c);
		}
	}
}

/* rds_cmd_done - hand a command its reply (NULL: unknown), then forget it */
static void
rds_cmd_done(struct rds *r, struct rds_cmd *c, const redisReply *reply)
{
	if (c->cb != NULL) {
		link_enter(&r->link);
		c->cb(r, reply, c->arg);
		link_return(&r->link);
	}
	free(c);
}

/* rds_on_reply - a command's reply, or NULL as hiredis drops it */
static void
rds_on_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct rds_cmd	*c = privdata;

	if (reply == NULL)
		rds_cmd_failed(c->rds, c);
	else
		rds_cmd_done(c->rds, c, reply);
}

/* rds_on_message - a pub/sub message; confirmations are ignored */
static void
rds_on_message(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct rds_sub		*s = privdata;
	struct rds		*r = s->rds;
	redisReply		*m = reply;
	const redisReply	*ch, *data;
	size_t			 i;

	if (m == NULL || r->ac != ac || link_dying(&r->link) ||
	    m->type != REDIS_REPLY_ARRAY || m->elements < 3 ||
	    m->element[0]->type != REDIS_REPLY_STRING)
		return;
	/* ["message", channel, data] or ["pmessage", pattern, channel, data] */
	if (m->elements == 3 && strcmp(m->element[0]->str, "message") == 0)
		i = 1;
	else if (m->elements == 4 &&
	    strcmp(m->element[0]->str, "pmessage") == 0)
		i = 2;
	else
		return;
	ch = m->element[i];
	data = m->element[i + 1];
	if (ch->type != REDIS_REPLY_STRING || data->type != REDIS_REPLY_STRING)
		return;
	link_enter(&r->link);
	s->cb(r, ch->str, data->str, data->len, s->arg);
	link_return(&r->link);
}

/* rds_on_tail - the stream's last id, to start after it */
static void
rds_on_tail(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct rds		*r = privdata;
	redisReply		*rep = reply;
	const redisReply	*e;

	if (rep == NULL || r->ac != ac)
		return;
	if (rep->type != REDIS_REPLY_ARRAY) {
		rds_fail(r, "XREVRANGE %s: %s", r->stream.key,
		    rep->type == REDIS_REPLY_ERROR ? rep->str : "bad reply");
		return;
	}
	snprintf(r->stream.last, sizeof(r->stream.last), "0-0");
	if (rep->elements > 0 && (e = rep->element[0])->type ==
	    REDIS_REPLY_ARRAY && e->elements > 0 &&
	    e->element[0]->type == REDIS_REPLY_STRING)
		snprintf(r->stream.last, sizeof(r->stream.last), "%s",
		    e->element[0]->str);
	rds_stream_next(r);
}

/* rds_stream_deliver - hand over each entry, remembering its id first */
static void
rds_stream_deliver(struct rds *r, const redisReply *rep)
{
	struct rds_stream	*st = &r->stream;
	const redisReply	*entries, *e;
	size_t			 i;

	if (rep->elements < 1 || rep->element[0]->type != REDIS_REPLY_ARRAY ||
	    rep->element[0]->elements < 2)
		return;
	entries = rep->element[0]->element[1];
	if (entries->type != REDIS_REPLY_ARRAY)
		return;
	for (i = 0; i < entries->elements && !link_dying(&r->link); i++) {
		e = entries->element[i];
		if (e->type != REDIS_REPLY_ARRAY || e->elements < 2 ||
		    e->element[0]->type != REDIS_REPLY_STRING ||
		    e->element[0]->len >= sizeof(st->last))
			continue;
		memcpy(st->last, e->element[0]->str, e->element[0]->len + 1);
		link_enter(&r->link);
		st->cb(r, st->last, e->element[1], st->arg);
		link_return(&r->link);
	}
}

/* rds_on_xread - entries, or a timeout (nil): either way, read on */
static void
rds_on_xread(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct rds	*r = privdata;
	redisReply	*rep = reply;

	if (rep == NULL || r->ac != ac)
		return;
	if (rep->type == REDIS_REPLY_ARRAY)
		rds_stream_deliver(r, rep);
	else if (rep->type != REDIS_REPLY_NIL) {
		rds_fail(r, "XREAD %s: %s", r->stream.key,
		    rep->type == REDIS_REPLY_ERROR ? rep->str : "bad reply");
		return;
	}
	if (!link_dying(&r->link) && r->ac == ac)
		rds_stream_next(r);
}

/* rds_on_defer - answer NULL to the commands that failed so far, in order */
static void
rds_on_defer(void *arg)
{
	struct rds	*r = arg;
	struct rds_cmds	 batch;
	struct rds_cmd	*c;

	/* only this batch: a caller retrying at once waits a loop turn */
	TAILQ_INIT(&batch);
	TAILQ_CONCAT(&batch, &r->failed, entry);
	while (!TAILQ_EMPTY(&batch)) {
		c = TAILQ_FIRST(&batch);
		TAILQ_REMOVE(&batch, c, entry);
		rds_cmd_done(r, c, NULL);
	}
}

/* rds_use - claim the connection for one purpose; 0 if it has another */
static int
rds_use(struct rds *r, enum rds_mode mode)
{
	if (link_dying(&r->link))
		return 0;
	if (r->mode == RDS_MODE_NONE)
		r->mode = mode;
	return r->mode == mode;
}

/* rds_cmd_new - the callback record of one command */
static struct rds_cmd *
rds_cmd_new(struct rds *r, rds_reply_cb *cb, void *arg)
{
	struct rds_cmd	*c;

	c = xcalloc(1, sizeof(*c));
	c->rds = r;
	c->cb = cb;
	c->arg = arg;
	return c;
}

/* rds_command - send a command, or fail it from the loop when down */
int
rds_command(struct rds *r, rds_reply_cb *cb, void *arg, const char *fmt, ...)
{
	va_list	 ap;
	char	*buf;
	int	 len;

	if (!rds_use(r, RDS_MODE_CMD))
		return -1;
	va_start(ap, fmt);
	len = redisvFormatCommand(&buf, fmt, ap);
	va_end(ap);
	if (len < 0)
		return -1;
	rds_cmd_send(r, rds_cmd_new(r, cb, arg), buf, len);
	return 0;
}

/* rds_command_argv - rds_command with an argument vector */
int
rds_command_argv(struct rds *r, rds_reply_cb *cb, void *arg, int argc,
    const char **argv, const size_t *argvlen)
{
	char	*buf;
	int	 len;

	if (!rds_use(r, RDS_MODE_CMD))
		return -1;
	if ((len = redisFormatCommandArgv(&buf, argc, argv, argvlen)) < 0)
		return -1;
	rds_cmd_send(r, rds_cmd_new(r, cb, arg), buf, len);
	return 0;
}

/* rds_ping - a health probe through the command queue */
int
rds_ping(struct rds *r, rds_reply_cb *cb, void *arg)
{
	return rds_command(r, cb, arg, "PING");
}

/* rds_sub_add - remember a subscription and send it if up */
static int
rds_sub_add(struct rds *r, const char *name, int pattern,
    rds_message_cb *cb, void *arg)
{
	struct rds_sub	*s;

	if (!rds_use(r, RDS_MODE_SUB))
		return -1;
	TAILQ_FOREACH(s, &r->subs, entry)
		if (s->pattern == pattern && strcmp(s->name, name) == 0)
			return -1;
	s = xcalloc(1, sizeof(*s));
	s->rds = r;
	s->name = xstrdup(name);
	s->pattern = pattern;
	s->cb = cb;
	s->arg = arg;
	TAILQ_INSERT_TAIL(&r->subs, s, entry);
	if (link_state(&r->link) == LINK_UP && r->ac != NULL)
		rds_sub_send(r, s);
	return 0;
}

/* rds_subscribe - subscribe to a channel, again after each reconnect */
int
rds_subscribe(struct rds *r, const char *channel, rds_message_cb *cb,
    void *arg)
{
	return rds_sub_add(r, channel, 0, cb, arg);
}

/* rds_psubscribe - subscribe to a pattern, again after each reconnect */
int
rds_psubscribe(struct rds *r, const char *pattern, rds_message_cb *cb,
    void *arg)
{
	return rds_sub_add(r, pattern, 1, cb, arg);
}

/* rds_stream_follow - start the XREAD loop on a dedicated connection */
int
rds_stream_follow(struct rds *r, const char *key, const char *start_id,
    unsigned block_ms, unsigned count, rds_entry_cb *cb, void *arg)
{
	struct rds_stream	*st = &r->stream;

	if (st->key != NULL || strlen(start_id) >= sizeof(st->last) ||
	    !rds_use(r, RDS_MODE_STREAM))
		return -1;
	st->key = xstrdup(key);
	snprintf(st->last, sizeof(st->last), "%s", start_id);
	st->block_ms = block_ms > 0 ? block_ms : RDS_BLOCK_MS;
	st->count = count > 0 ? count : RDS_COUNT;
	st->cb = cb;
	st->arg = arg;
	if (link_state(&r->link) == LINK_UP && r->ac != NULL)
		rds_stream_next(r);
	return 0;
}

/* rds_destroy - answer NULL to pending commands and free everything */
static void
rds_destroy(void *arg)
{
	struct rds	*r = arg;
	struct rds_sub	*s;

	rds_unpark(r);
	while (!TAILQ_EMPTY(&r->failed))
		rds_on_defer(r);
	while ((s = TAILQ_FIRST(&r->subs)) != NULL) {
		TAILQ_REMOVE(&r->subs, s, entry);
		free(s->name);
		free(s);
	}
	link_free(&r->link);
	free(r->stream.key);
	if (r->password != NULL) {
		explicit_bzero(r->password, strlen(r->password));
		free(r->password);
	}
	free(r->host);
	free(r);
}

/*
 * rds_free - close and free.  From inside a callback, hiredis may still
 * hold the context, so r itself is freed on the next turn of the loop.
 */
void
rds_free(struct rds *r)
{
	redisAsyncContext	*ac;

	if (r == NULL || !link_kill(&r->link))
		return;
	if ((ac = r->ac) != NULL) {
		r->ac = NULL;
		redisAsyncFree(ac);
	}
	link_reap(&r->link);
}
