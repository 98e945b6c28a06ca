/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rds - a Redis connection on a worker's libevent loop (hiredis async).
 *
 * One rds is one connection, reconnected with capped exponential backoff
 * after a failed connect, a connect (or AUTH) that takes longer than the
 * connect timeout, or a lost connection.  The outage is logged once and the
 * recovery once.  The state is UP once the server has answered the first
 * command (AUTH when a password is set, else PING).
 *
 * A connection serves one purpose, fixed by the first call made on it:
 *   - commands (rds_command): each callback is called exactly once, with
 *     the reply, or NULL when the client is down or the connection was lost
 *     before the reply came (the outcome is then unknown);
 *   - pub/sub (rds_subscribe, rds_psubscribe): the subscriptions are sent
 *     again after every reconnect, so the caller subscribes once; messages
 *     published while the connection was down are lost, as pub/sub goes;
 *   - one stream (rds_stream_follow): XREAD BLOCK is issued in a loop from
 *     the id of the last entry delivered, also after a reconnect, so no
 *     entry is missed or delivered twice.
 * A pub/sub or stream connection is dedicated: rds_command fails on it.
 *
 * Replies are borrowed until the callback returns.  NULL replies are
 * delivered from the loop, never from inside rds_command; rds_free hands
 * NULL to every pending command.  rds_free may be called from a callback;
 * the client is then finished off on the next turn of the loop.
 *
 * Writes may raise SIGPIPE when the server goes away: the process must
 * ignore SIGPIPE.  A host name is resolved with a blocking getaddrinfo(3)
 * when a connection starts; use an address where that matters.  A host
 * starting with '/' is a Unix socket path.
 *
 * Through Sentinel (rds_new_conf with redis.sentinels), each attempt asks
 * the sentinels in turn for the master (one that fails or takes over a
 * second goes to the back), connects there, and uses the connection only
 * once ROLE says it is the master.  It is dropped, and the sentinels
 * asked again after the backoff, when a sentinel announces
 * +switch-master to another address, when the sentinel it listens to is
 * lost and another names another master, or when a command gets READONLY
 * (that command's callback gets the error).  Each client keeps one
 * connection to a sentinel besides its own.
 */
#ifndef TENANTD_RDS_H
#define TENANTD_RDS_H

#include <stddef.h>

struct conf_redis;
struct event_base;
struct redisContext;
struct redisReply;
struct rds;
struct timeval;

enum rds_state {
	RDS_DOWN = 0,		/* waiting to retry; commands get NULL */
	RDS_CONNECTING,		/* commands are queued */
	RDS_UP,
};

typedef void	 rds_state_cb(struct rds *, enum rds_state, void *arg);
/* reply: borrowed until return, or NULL (outcome unknown) */
typedef void	 rds_reply_cb(struct rds *, const struct redisReply *reply,
		    void *arg);
/* channel: where it was published (also for a pattern subscription) */
typedef void	 rds_message_cb(struct rds *, const char *channel,
		    const char *data, size_t len, void *arg);
/* fields: the entry's field/value array, borrowed until return */
typedef void	 rds_entry_cb(struct rds *, const char *id,
		    const struct redisReply *fields, void *arg);

/*
 * Connect to host:port (or the Unix socket host) on base, authenticating
 * with password when not NULL.  The client starts CONNECTING; the first
 * attempt runs from the loop.
 */
struct rds	*rds_new(struct event_base *, const char *host, int port,
		    const char *password, rds_state_cb *, void *arg);
/* The Redis a configuration names (conf.h): host, or sentinels. */
struct rds	*rds_new_conf(struct event_base *, const struct conf_redis *,
		    rds_state_cb *, void *arg);
void		 rds_free(struct rds *);

/*
 * A blocking connection for a process without a loop (a forked child),
 * authenticated, to the master when through Sentinel; tv bounds each
 * step.  NULL when none could be made.
 */
struct redisContext *rds_connect_sync(const struct conf_redis *,
		    struct timeval);

/* Tuning; the defaults are 5 s and 100 ms to 10 s. */
void		 rds_set_connect_timeout(struct rds *, unsigned ms);
void		 rds_set_backoff(struct rds *, unsigned base_ms, unsigned max_ms);
/* The name used in log lines; the default is "redis host:port". */
void		 rds_set_name(struct rds *, const char *);

enum rds_state	 rds_state(const struct rds *);
const char	*rds_name(const struct rds *);

/*
 * A command in hiredis format ("SET %s %b", key, val, len): every %s or %b
 * is one argument, whatever it holds.  Returns 0 when accepted: cb (which
 * may be NULL) will be called exactly once.  Returns -1, and cb is never
 * called, for a bad format, on a pub/sub or stream connection, or on one
 * being freed.  Commands given before the first attempt wait for it.
 */
int		 rds_command(struct rds *, rds_reply_cb *, void *arg,
		    const char *fmt, ...);
int		 rds_command_argv(struct rds *, rds_reply_cb *, void *arg,
		    int argc, const char **argv, const size_t *argvlen);
/* A health probe: PING. */
int		 rds_reply_sent(const struct rds *);
int		 rds_ping(struct rds *, rds_reply_cb *, void *arg);

/* Subscribe for the life of the client; -1 if the connection is used
 * otherwise or already subscribed to that name. */
int		 rds_subscribe(struct rds *, const char *channel,
		    rds_message_cb *, void *arg);
int		 rds_psubscribe(struct rds *, const char *pattern,
		    rds_message_cb *, void *arg);

/*
 * Follow stream key from start_id: "0" for all of it, an entry id to start
 * after it, or "$" for the entries added from now on.  Each XREAD blocks
 * for block_ms (0: 5000) and returns up to count entries (0: 100).
 * Returns -1 if the connection is used otherwise.
 */
int		 rds_stream_follow(struct rds *, const char *key,
		    const char *start_id, unsigned block_ms, unsigned count,
		    rds_entry_cb *, void *arg);
/* The id of the last entry delivered (or the start id). */
const char	*rds_stream_last_id(const struct rds *);

#endif
