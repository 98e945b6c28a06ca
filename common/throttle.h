/* SPDX-License-Identifier: Apache-2.0 */
/*
 * throttle - logins slowed down, then refused, after repeated failures.
 *
 * A login (POST /v1/auth/token, RequestOpen on a session port) is counted
 * as an attempt before its credentials are looked at, under its user name
 * (when it has one) and its client address, in Redis, so that every worker
 * and instance of a tenant shares the counts:
 *
 *   tenantd:{<tenant>}:login:user:<name>
 *   tenantd:{<tenant>}:login:addr:<address>
 *
 * each living security.login_window seconds from its first attempt.  One
 * Lua script reads both counts and adds the attempt in one atomic step, so
 * that many attempts in parallel are all counted.  Each count has its own
 * limits (security.login_delay_after and login_refuse_after for a user
 * name, login_address_delay_after and login_address_refuse_after, higher,
 * for an address, which many users may share); the worse stage wins:
 *
 *   below login_delay_after	THROTTLE_OK
 *   from login_delay_after	THROTTLE_SLOW: a failure is answered only
 *				after login_delay seconds (a timer)
 *   from login_refuse_after	THROTTLE_REFUSE: refused at once, not
 *				counted, until the count's window ends
 *
 * A success takes its attempt back: the user's count is deleted, the
 * address's decremented (not deleted: many users may share an address,
 * and one good password must not wipe out the guesses made at others).
 *
 * When Redis cannot be asked, the same counts are kept in this process's
 * memory (at most THROTTLE_LOCAL_MAX entries; when full of live entries, a
 * new name or address is refused until some expire), so an outage never
 * lets guesses through unchecked, and is never an error of the server.
 */
#ifndef TENANTD_THROTTLE_H
#define TENANTD_THROTTLE_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct conf;
struct conf_redis;
struct throttle;
struct throttle_op;
struct throttle_wait;

#define THROTTLE_LOCAL_MAX	65536
#define THROTTLE_HOST_MAX	64

enum throttle_verdict {
	THROTTLE_OK = 0,
	THROTTLE_SLOW,
	THROTTLE_REFUSE,
};

struct throttle_limits {
	unsigned	delay_after;	/* a user name's; 0: never slowed */
	unsigned	refuse_after;	/* 0: never refused */
	unsigned	addr_delay_after;	/* an address's */
	unsigned	addr_refuse_after;
	double		window;		/* seconds */
	double		delay;		/* seconds */
};

/* retry_after: whole seconds until a refusal ends (REFUSE only) */
typedef void	 throttle_cb(enum throttle_verdict, unsigned retry_after,
		    void *arg);

/* The Redis of cr (a host, or through its sentinels). */
struct throttle	*throttle_new(struct event_base *, const struct conf_redis *cr,
		    const char *tenant_id);
/* Pending attempts are answered (from the local counts), and delayed
 * answers given, now. */
void		 throttle_free(struct throttle *);
struct throttle_limits throttle_limits_of(const struct conf *);
void		 throttle_set_limits(struct throttle *,
		    const struct throttle_limits *);
/*
 * Count an attempt of user (NULL: none) from addr, and say what may be
 * done with it.  cb is called once, unless the op is cancelled: later,
 * or (NULL returned, nothing to cancel) already, when Redis could not
 * even be asked.
 */
struct throttle_op *throttle_attempt(struct throttle *, const char *user,
		    const char *addr, throttle_cb *, void *arg);
void		 throttle_cancel(struct throttle_op *);
/* The attempt succeeded: take it back. */
void		 throttle_success(struct throttle *, const char *user,
		    const char *addr);
/* Forget a user's count (a new password was set). */
void		 throttle_forget(struct throttle *, const char *user);
/* Call fn(arg) after the configured delay; cancel it if arg goes. */
struct throttle_wait *throttle_delay(struct throttle *, void (*fn)(void *),
		    void *arg);
void		 throttle_wait_cancel(struct throttle_wait *);

/* Pure parts, for the unit tests. */
enum throttle_verdict throttle_verdict_of(const struct throttle_limits *,
		    unsigned addr_before, unsigned user_before, int refused);
/* The host of "addr:port", "[v6]:port" or "local", into buf. */
void		 throttle_host(const char *peer, char *buf, size_t len);

#endif
