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
 *
 * Through Sentinel, an attempt starts on r->watch, a connection to one
 * sentinel that is asked for the master's address and then subscribed
 * to +switch-master, pipelined in that order so that no switch falls
 * between the answer and the subscription.  The watch lives as long as
 * the attempt and the connection it leads to: a switch to another
 * address drops the connection, and a lost watch is reopened on the next
 * sentinel and asks again, since a switch may have gone unheard.  The
 * connection to the master is only used once ROLE says "master": until
 * then commands are parked, so nothing is ever written to a replica that
 * a sentinel still named master a moment ago.  A READONLY error later
 * (the master was demoted under us) drops and asks again too.
 */
#include <sys/queue.h>
#include <sys/socket.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <hiredis/async.h>
#include <hiredis/adapters/libevent.h>

#include "conf.h"
#include "link.h"
#include "log.h"
#include "rds.h"
#include "util.h"

#define RDS_BLOCK_MS		5000
#define RDS_COUNT		100
#define RDS_SENTINEL_MS		1000	/* for one sentinel's answer */
#define RDS_REWATCH_MS		1000	/* once every sentinel failed */

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
	int			 sent;		/* handed to a connection, and
						 * so maybe written */
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
	char			*host;		/* or the master last named */
	int			 port;
	char			*password;
	/* Sentinel mode (master != NULL) */
	char			*master;
	struct conf_addr	*sentinels;	/* who failed goes last */
	int			 nsentinels;
	int			 asked;		/* failed in a row */
	int			 ready;		/* ROLE said master */
	int			 heard;		/* the watch answered */
	redisAsyncContext	*watch;
	struct event		*ev_watch;	/* answer timeout, or retry */
	rds_state_cb		*state_cb;
	void			*state_arg;
	enum rds_mode		 mode;
	redisAsyncContext	*ac;
	struct rds_cmds		 parked;	/* for the first context */
	struct rds_cmds		 failed;	/* to be answered NULL */
	TAILQ_HEAD(, rds_sub)	 subs;
	struct rds_stream	 stream;
	char			 why[256];
	int			 reply_sent;	/* rds_reply_sent */
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
static void	rds_on_role(redisAsyncContext *, void *, void *);
static void	rds_open(struct rds *);
static void	watch_open(struct rds *);
static void	watch_close(struct rds *);
static void	watch_on_timer(evutil_socket_t, short, void *);

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

/*
 * rds_new_conf - a client for the Redis a configuration names: host and
 * port, or the master its sentinels name
 */
struct rds *
rds_new_conf(struct event_base *base, const struct conf_redis *cr,
    rds_state_cb *cb, void *arg)
{
	struct rds	*r;
	char		*name;

	if (cr->sentinels.n == 0)
		return rds_new(base, cr->host, cr->port, cr->password, cb, arg);
	r = rds_new(base, "", 0, cr->password, cb, arg);
	r->master = xstrdup(cr->master_name);
	r->nsentinels = cr->sentinels.n;
	r->sentinels = xcalloc((size_t)r->nsentinels, sizeof(*r->sentinels));
	memcpy(r->sentinels, cr->sentinels.a, (size_t)r->nsentinels *
	    sizeof(*r->sentinels));
	r->ev_watch = evtimer_new(base, watch_on_timer, r);
	if (r->ev_watch == NULL)
		fatalx("rds: out of memory");
	name = xasprintf("redis master %s", r->master);
	link_set_name(&r->link, name);
	free(name);
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
	r->ready = 0;
	/* a watch that answered stays, to cut the backoff short on a
	 * switch; one still asking would start a connection while down */
	if (!r->heard)
		watch_close(r);
	rds_unpark(r);
	link_down(&r->link, why);
}

/*
 * rds_drop - drop the live context on purpose, saying why.  It is reset,
 * not closed: what it still had to send is thrown away rather than
 * delivered by the kernel after a partition heals, when its caller has
 * long been told that it failed.
 */
static void
rds_drop(void *arg, const char *why)
{
	struct rds		*r = arg;
	redisAsyncContext	*ac = r->ac;
	struct linger		 l = { 1, 0 };

	r->ac = NULL;
	if (ac != NULL) {
		if (ac->c.fd != -1)
			(void)setsockopt(ac->c.fd, SOL_SOCKET, SO_LINGER, &l,
			    sizeof(l));
		redisAsyncFree(ac);	/* deferred if in its callback */
	}
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

/* rds_connect - start an attempt: at the server, or by asking a sentinel */
static void
rds_connect(void *arg)
{
	struct rds	*r = arg;

	link_attempt(&r->link);
	if (r->master == NULL) {
		rds_open(r);
		return;
	}
	r->asked = 0;
	watch_close(r);
	watch_open(r);
}

/* rds_open - connect to r->host; AUTH or PING goes first, then ROLE */
static void
rds_open(struct rds *r)
{
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
	if (r->password != NULL)
		redisAsyncCommand(ac, rds_on_hello, r, "AUTH %s", r->password);
	else
		redisAsyncCommand(ac, rds_on_hello, r, "PING");
	if (r->master != NULL)
		redisAsyncCommand(ac, rds_on_role, r, "ROLE");
	else
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
	else if (r->master == NULL)
		rds_up(r);
}

/* rds_on_role - through Sentinel, only a master is used, never a replica */
static void
rds_on_role(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct rds	*r = privdata;
	redisReply	*rep = reply;

	if (rep == NULL || r->ac != ac)
		return;
	if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 1 ||
	    rep->element[0]->type != REDIS_REPLY_STRING) {
		rds_fail(r, "ROLE at %s:%d: %s", r->host, r->port,
		    rep->type == REDIS_REPLY_ERROR ? rep->str : "bad reply");
		return;
	}
	if (strcmp(rep->element[0]->str, "master") != 0) {
		rds_fail(r, "%s:%d is a %s, not the master of %s", r->host,
		    r->port, rep->element[0]->str, r->master);
		return;
	}
	r->ready = 1;
	rds_unpark(r);
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
	int	sendable = r->ac != NULL && (r->master == NULL || r->ready);

	if (sendable && redisAsyncFormattedCommand(r->ac, rds_on_reply,
	    c, buf, (size_t)len) == REDIS_OK) {
		redisFreeCommand(buf);
		c->sent = 1;
		return;
	}
	if (!sendable && link_state(&r->link) == LINK_CONNECTING &&
	    !link_dying(&r->link)) {
		/* before the first attempt, or before ROLE said master */
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
		if (r->ac != NULL && (r->master == NULL || r->ready))
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
		r->reply_sent = c->sent;
		link_enter(&r->link);
		c->cb(r, reply, c->arg);
		link_return(&r->link);
	}
	free(c);
}

/*
 * rds_reply_sent - in a reply callback given NULL: 1 if the command had
 * been handed to a connection, so that Redis may have run it (its answer
 * was lost), 0 if it never left (it did not run)
 */
int
rds_reply_sent(const struct rds *r)
{
	return r->reply_sent;
}

/* rds_on_reply - a command's reply, or NULL as hiredis drops it */
static void
rds_on_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct rds_cmd	*c = privdata;
	struct rds	*r = c->rds;
	redisReply	*rep = reply;
	int		 demoted;

	if (rep == NULL) {
		/* written only once connected: a context whose connect never
		 * completed sent nothing (hiredis sets REDIS_CONNECTED then) */
		if (!(ac->c.flags & REDIS_CONNECTED))
			c->sent = 0;
		rds_cmd_failed(r, c);
		return;
	}
	/* the master became a replica under us: ask the sentinels again */
	demoted = r->master != NULL && r->ac == ac &&
	    rep->type == REDIS_REPLY_ERROR &&
	    strncmp(rep->str, "READONLY", 8) == 0;
	rds_cmd_done(r, c, rep);
	if (demoted && r->ac == ac && !link_dying(&r->link))
		rds_fail(r, "%s:%d is read-only now: no longer the master",
		    r->host, r->port);
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
	watch_close(r);
	if (r->ev_watch != NULL)
		event_free(r->ev_watch);
	free(r->sentinels);
	free(r->master);
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
	watch_close(r);
	link_reap(&r->link);
}

/* watch_close - hang up on the sentinel; its callbacks will ignore r */
static void
watch_close(struct rds *r)
{
	redisAsyncContext	*ac = r->watch;

	if (r->ev_watch != NULL)
		evtimer_del(r->ev_watch);
	r->watch = NULL;
	if (ac != NULL)
		redisAsyncFree(ac);	/* deferred if in its callback */
}

/* watch_arm - run ev_watch in ms */
static void
watch_arm(struct rds *r, unsigned ms)
{
	struct timeval	tv = { ms / 1000, (ms % 1000) * 1000 };

	evtimer_add(r->ev_watch, &tv);
}

/*
 * watch_failed - this sentinel did not answer (gone is 1 when hiredis is
 * already freeing its context): it goes to the back of the list, and the
 * next one is asked.  When each has failed in turn, an attempt fails; a
 * connection that is up keeps its master and asks again in a while.
 */
static void
watch_failed(struct rds *r, int gone, const char *reason)
{
	struct conf_addr	first = r->sentinels[0];
	char			why[128];

	/* reason may live in the context that is closed below */
	snprintf(why, sizeof(why), "%s", reason);
	log_debug("%s: sentinel %s:%d: %s", rds_name(r), first.host,
	    first.port, why);
	if (gone)
		r->watch = NULL;
	watch_close(r);
	if (link_state(&r->link) == LINK_DOWN)
		return;		/* the next attempt asks again */
	memmove(&r->sentinels[0], &r->sentinels[1],
	    (size_t)(r->nsentinels - 1) * sizeof(*r->sentinels));
	r->sentinels[r->nsentinels - 1] = first;
	if (++r->asked < r->nsentinels) {
		watch_open(r);
		return;
	}
	r->asked = 0;
	if (r->ac != NULL) {
		watch_arm(r, RDS_REWATCH_MS);
		return;
	}
	snprintf(r->why, sizeof(r->why), "no sentinel named the master of "
	    "%.64s (last: %.64s:%d: %.80s)", r->master, first.host, first.port,
	    why);
	rds_down(r, r->why);
}

/* watch_on_timer - a sentinel took too long, or it is time to ask again */
static void
watch_on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct rds	*r = arg;

	link_enter(&r->link);
	if (!link_dying(&r->link)) {
		if (r->watch != NULL)
			watch_failed(r, 0, "no answer in time");
		else if (link_state(&r->link) != LINK_DOWN)
			watch_open(r);
	}
	link_leave(&r->link);
}

/* watch_on_connect - the sentinel's TCP connect failed, or is done */
static void
watch_on_connect(const redisAsyncContext *ac, int status)
{
	struct rds	*r = ac->data;

	if (r == NULL || r->watch != ac)
		return;
	if (status == REDIS_OK) {
		redisEnableKeepAlive((redisContext *)&ac->c);
		return;
	}
	watch_failed(r, 1, ac->c.errstr);
}

/* watch_on_disconnect - the sentinel went away: ask another */
static void
watch_on_disconnect(const redisAsyncContext *ac, int status)
{
	struct rds	*r = ac->data;

	if (r == NULL || r->watch != ac)
		return;
	watch_failed(r, 1, status == REDIS_OK || ac->errstr == NULL ?
	    "connection closed" : ac->errstr);
}

/* watch_addr - the master's address out of a sentinel's answer; 0 if one */
static int
watch_addr(const redisReply *rep, char *host, size_t len, int *port)
{
	char	*end;
	long	 p;

	if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
	    rep->element[0]->type != REDIS_REPLY_STRING ||
	    rep->element[1]->type != REDIS_REPLY_STRING ||
	    rep->element[0]->len == 0 || rep->element[0]->len >= len)
		return -1;
	p = strtol(rep->element[1]->str, &end, 10);
	if (*end != '\0' || p < 1 || p > 65535)
		return -1;
	memcpy(host, rep->element[0]->str, rep->element[0]->len + 1);
	*port = (int)p;
	return 0;
}

/* watch_master - the sentinels name host:port: go there, or stay */
static void
watch_master(struct rds *r, const char *host, int port)
{
	if (link_state(&r->link) == LINK_DOWN) {
		link_retry(&r->link);
		return;
	}
	if (r->ac == NULL) {
		free(r->host);
		r->host = xstrdup(host);
		r->port = port;
		rds_open(r);
	} else if (strcmp(r->host, host) != 0 || r->port != port)
		rds_fail(r, "the sentinels name %s:%d as master of %s now, "
		    "not %s:%d", host, port, r->master, r->host, r->port);
}

/* watch_on_addr - SENTINEL get-master-addr-by-name answered */
static void
watch_on_addr(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct rds	*r = privdata;
	redisReply	*rep = reply;
	char		 host[256];
	int		 port;

	if (rep == NULL || r->watch != ac)
		return;
	if (watch_addr(rep, host, sizeof(host), &port) == -1) {
		watch_failed(r, 0, rep->type == REDIS_REPLY_ERROR ? rep->str :
		    "does not know that master");
		return;
	}
	evtimer_del(r->ev_watch);
	r->asked = 0;
	r->heard = 1;
	watch_master(r, host, port);
}

/* watch_on_switch - +switch-master: "name old-ip old-port new-ip new-port" */
static void
watch_on_switch(redisAsyncContext *ac, void *reply, void *privdata)
{
	struct rds		*r = privdata;
	redisReply		*m = reply;
	const redisReply	*data;
	char			 name[256], host[256];
	int			 port;

	if (m == NULL || r->watch != ac || m->type != REDIS_REPLY_ARRAY ||
	    m->elements != 3 || m->element[0]->type != REDIS_REPLY_STRING ||
	    strcmp(m->element[0]->str, "message") != 0)
		return;
	data = m->element[2];
	if (data->type != REDIS_REPLY_STRING || sscanf(data->str,
	    "%255s %*s %*s %255s %d", name, host, &port) != 3 ||
	    strcmp(name, r->master) != 0)
		return;
	log_info("%s: sentinel says the master moved to %s:%d", rds_name(r),
	    host, port);
	if (r->ac != NULL || link_state(&r->link) == LINK_DOWN)
		watch_master(r, host, port);
}

/* watch_open - ask the first sentinel for the master, then listen to it */
static void
watch_open(struct rds *r)
{
	struct conf_addr	*a = &r->sentinels[0];
	redisAsyncContext	*ac;
	char			 why[128];

	if ((ac = redisAsyncConnect(a->host, a->port)) == NULL)
		fatalx("rds: out of memory");
	if (ac->err) {
		snprintf(why, sizeof(why), "%s", ac->errstr);
		redisAsyncFree(ac);
		watch_failed(r, 0, why);
		return;
	}
	ac->data = r;
	if (redisLibeventAttach(ac, r->base) != REDIS_OK)
		fatalx("rds: cannot attach to the event loop");
	redisAsyncSetConnectCallback(ac, watch_on_connect);
	redisAsyncSetDisconnectCallback(ac, watch_on_disconnect);
	r->watch = ac;
	r->heard = 0;
	redisAsyncCommand(ac, watch_on_addr, r,
	    "SENTINEL get-master-addr-by-name %s", r->master);
	redisAsyncCommand(ac, watch_on_switch, r, "SUBSCRIBE +switch-master");
	watch_arm(r, RDS_SENTINEL_MS);
}

/* sync_ask - one sentinel's answer for the master, blocking; 0 if one */
static int
sync_ask(const struct conf_addr *a, const char *master, struct timeval tv,
    char *host, size_t len, int *port)
{
	redisContext	*c;
	redisReply	*rep;
	int		 rc = -1;

	if ((c = redisConnectWithTimeout(a->host, a->port, tv)) == NULL)
		return -1;
	if (c->err == 0 && redisSetTimeout(c, tv) == REDIS_OK &&
	    (rep = redisCommand(c, "SENTINEL get-master-addr-by-name %s",
	    master)) != NULL) {
		rc = watch_addr(rep, host, len, port);
		freeReplyObject(rep);
	}
	redisFree(c);
	return rc;
}

/* sync_hello - AUTH when there is a password, then ROLE when it matters */
static int
sync_hello(redisContext *c, const struct conf_redis *cr)
{
	redisReply	*rep;
	int		 ok;

	if (cr->password != NULL) {
		if ((rep = redisCommand(c, "AUTH %s", cr->password)) == NULL)
			return -1;
		ok = rep->type != REDIS_REPLY_ERROR;
		freeReplyObject(rep);
		if (!ok)
			return -1;
	}
	if (cr->sentinels.n == 0)
		return 0;
	if ((rep = redisCommand(c, "ROLE")) == NULL)
		return -1;
	ok = rep->type == REDIS_REPLY_ARRAY && rep->elements > 0 &&
	    rep->element[0]->type == REDIS_REPLY_STRING &&
	    strcmp(rep->element[0]->str, "master") == 0;
	freeReplyObject(rep);
	return ok ? 0 : -1;
}

/* rds_connect_sync - see rds.h */
struct redisContext *
rds_connect_sync(const struct conf_redis *cr, struct timeval tv)
{
	redisContext	*c = NULL;
	char		 host[256];
	int		 i, port;

	if (cr->sentinels.n == 0) {
		snprintf(host, sizeof(host), "%s", cr->host);
		port = cr->port;
	} else {
		for (i = 0; i < cr->sentinels.n; i++)
			if (sync_ask(&cr->sentinels.a[i], cr->master_name, tv,
			    host, sizeof(host), &port) == 0)
				break;
		if (i == cr->sentinels.n)
			return NULL;
	}
	c = host[0] == '/' ? redisConnectUnixWithTimeout(host, tv) :
	    redisConnectWithTimeout(host, port, tv);
	if (c == NULL || c->err || redisSetTimeout(c, tv) != REDIS_OK ||
	    sync_hello(c, cr) == -1) {
		if (c != NULL)
			redisFree(c);
		return NULL;
	}
	return c;
}
