/* SPDX-License-Identifier: Apache-2.0 */
/*
 * link - what every client that keeps a connection to a server (pgc, rds)
 * does the same way: a state (down, connecting, up) reported to its owner,
 * a connect timeout, capped exponential backoff between attempts, failures
 * handed over from the loop rather than from the caller's stack, a free
 * from inside a callback finished once the callback returns, and the
 * logging policy for outages: the outage is logged once (warning), the
 * recovery once with how long it took (info), retries in between at debug
 * level.
 *
 * A struct link is embedded in its owner, which supplies the hooks below
 * and reports what happened to the connection with link_attempt, link_up
 * and link_down.  The link calls the hooks with the owner: from the loop,
 * connect when it is time for an attempt, lost when an attempt took longer
 * than the connect timeout, and defer after link_defer; state on every
 * change of state, unless the owner is dying; and destroy to finish a
 * free, with a frame held so that nothing it calls can free again.
 */
#ifndef TENANTD_LINK_H
#define TENANTD_LINK_H

#include <stdint.h>

#include "backoff.h"

struct event;
struct event_base;

enum link_state {
	LINK_DOWN = 0,		/* waiting to retry */
	LINK_CONNECTING,
	LINK_UP,
};

struct link_ops {
	void	(*connect)(void *owner);
	void	(*lost)(void *owner, const char *why);
	void	(*defer)(void *owner);
	void	(*destroy)(void *owner);
	void	(*state)(void *owner, enum link_state);
};

struct link {
	const struct link_ops	*ops;
	void			*owner;
	char			*name;		/* for log lines */
	enum link_state		 state;
	struct event		*ev_timer;	/* connect timeout, or retry */
	struct event		*ev_defer;	/* failures, late free */
	struct backoff		 backoff;
	unsigned		 connect_timeout_ms;
	int			 attempting;	/* ev_timer is the timeout */
	int			 outage;	/* the outage was logged */
	uint64_t		 down_since;
	int			 depth;		/* owner frames on the stack */
	int			 dying;
};

/*
 * Start CONNECTING, the first attempt to run from the loop.  name was
 * allocated by the caller and is freed by link_free.
 */
void		 link_init(struct link *, struct event_base *, char *name,
		    const struct link_ops *, void *owner);
/* Free the link's events and name, not the owner. */
void		 link_free(struct link *);

/* Tuning; the defaults are 5 s and 100 ms to 10 s. */
void		 link_set_connect_timeout(struct link *, unsigned ms);
void		 link_set_backoff(struct link *, unsigned base_ms,
		    unsigned max_ms);
void		 link_set_name(struct link *, const char *);

enum link_state	 link_state(const struct link *);
const char	*link_name(const struct link *);

/* An attempt started, an attempt or the connection failed, or it is up. */
void		 link_attempt(struct link *);
void		 link_down(struct link *, const char *why);
void		 link_up(struct link *);
/* While down, attempt again now rather than after the backoff. */
void		 link_retry(struct link *);

/* Have the loop call the defer hook (not once the owner is dying). */
void		 link_defer(struct link *);

/*
 * Frames: an event handler of the owner runs between link_enter and
 * link_leave, and the outermost link_leave finishes a pending free.  The
 * owner's user code runs between link_enter and link_return, which never
 * frees: for code called from under a library that still holds the owner.
 */
void		 link_enter(struct link *);
void		 link_leave(struct link *);
void		 link_return(struct link *);

/*
 * Freeing the owner: link_kill marks it dying (0 if it already was), and
 * link_reap calls the destroy hook now, or from the loop when a frame of
 * the owner is on the stack.
 */
int		 link_kill(struct link *);
void		 link_reap(struct link *);
int		 link_dying(const struct link *);

#endif
