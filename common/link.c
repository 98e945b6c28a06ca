/* SPDX-License-Identifier: Apache-2.0 */
/*
 * link - the reconnecting part of a client, shared by pgc and rds.
 *
 * One timer serves two purposes: while an attempt runs (attempting) it is
 * the connect timeout, otherwise it waits out the backoff before the next
 * attempt.  The link's events run the owner's hooks inside a frame
 * (link_enter, link_leave), so that a free asked for by the owner's user
 * code is finished by the outermost frame, once nothing of the owner is in
 * use.
 */
#include <sys/time.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "backoff.h"
#include "link.h"
#include "log.h"
#include "util.h"

#define LINK_CONNECT_TIMEOUT_MS	5000
#define LINK_BACKOFF_BASE_MS	100
#define LINK_BACKOFF_MAX_MS	10000
#define LINK_BACKOFF_JITTER	20

static void	link_on_timer(evutil_socket_t, short, void *);
static void	link_on_defer(evutil_socket_t, short, void *);

/* link_init - a link that starts connecting once the loop runs */
void
link_init(struct link *l, struct event_base *base, char *name,
    const struct link_ops *ops, void *owner)
{
	memset(l, 0, sizeof(*l));
	l->ops = ops;
	l->owner = owner;
	l->name = name;
	l->state = LINK_CONNECTING;
	l->connect_timeout_ms = LINK_CONNECT_TIMEOUT_MS;
	link_set_backoff(l, LINK_BACKOFF_BASE_MS, LINK_BACKOFF_MAX_MS);
	if ((l->ev_timer = evtimer_new(base, link_on_timer, l)) == NULL ||
	    (l->ev_defer = event_new(base, -1, 0, link_on_defer, l)) == NULL)
		fatalx("%s: event_new failed", name);
	event_active(l->ev_timer, EV_TIMEOUT, 1);
}

/* link_free - free the events and the name */
void
link_free(struct link *l)
{
	event_free(l->ev_timer);
	event_free(l->ev_defer);
	free(l->name);
}

/* link_set_connect_timeout - how long a connect attempt may take */
void
link_set_connect_timeout(struct link *l, unsigned ms)
{
	l->connect_timeout_ms = ms > 0 ? ms : 1;
}

/* link_set_backoff - the first and the largest delay between attempts */
void
link_set_backoff(struct link *l, unsigned base_ms, unsigned max_ms)
{
	backoff_init(&l->backoff, base_ms * 1000ULL, max_ms * 1000ULL,
	    LINK_BACKOFF_JITTER);
}

/* link_set_name - the name used in log lines */
void
link_set_name(struct link *l, const char *name)
{
	free(l->name);
	l->name = xstrdup(name);
}

/* link_state - down, connecting or up */
enum link_state
link_state(const struct link *l)
{
	return l->state;
}

/* link_name - the name used in log lines */
const char *
link_name(const struct link *l)
{
	return l->name;
}

/* link_enter - note that one of the owner's frames is on the stack */
void
link_enter(struct link *l)
{
	l->depth++;
}

/* link_return - leave a frame; a pending free waits for the outermost */
void
link_return(struct link *l)
{
	l->depth--;
}

/* link_destroy - free the owner, which it does with a frame on the stack */
static void
link_destroy(struct link *l)
{
	l->depth++;	/* so that what the destroy hook calls cannot free */
	l->ops->destroy(l->owner);
}

/* link_leave - leave a frame; the outermost finishes a pending free */
void
link_leave(struct link *l)
{
	if (--l->depth == 0 && l->dying)
		link_destroy(l);
}

/* link_kill - mark the owner as being freed, with no attempt to come */
int
link_kill(struct link *l)
{
	if (l->dying)
		return 0;
	l->dying = 1;
	l->attempting = 0;
	evtimer_del(l->ev_timer);
	return 1;
}

/* link_reap - free the owner now, or from the loop if it is in use */
void
link_reap(struct link *l)
{
	if (l->depth == 0)
		link_destroy(l);
	else
		event_active(l->ev_defer, EV_TIMEOUT, 1);
}

/* link_dying - whether the owner is being freed */
int
link_dying(const struct link *l)
{
	return l->dying;
}

/* link_defer - have the loop call the owner's defer hook */
void
link_defer(struct link *l)
{
	if (!l->dying)
		event_active(l->ev_defer, EV_TIMEOUT, 1);
}

/* link_arm - run the timer in us microseconds */
static void
link_arm(struct link *l, uint64_t us)
{
	struct timeval	tv = util_tv_us(us);

	evtimer_add(l->ev_timer, &tv);
}

/* link_set_state - record a state change and tell the owner */
static void
link_set_state(struct link *l, enum link_state s)
{
	if (l->state == s)
		return;
	l->state = s;
	if (!l->dying) {
		link_enter(l);
		l->ops->state(l->owner, s);
		link_return(l);
	}
}

/* link_attempt - an attempt started: give up on it after the timeout */
void
link_attempt(struct link *l)
{
	l->attempting = 1;
	link_arm(l, l->connect_timeout_ms * 1000ULL);
}

/* link_down - the attempt or the connection failed: retry after backoff */
void
link_down(struct link *l, const char *why)
{
	l->attempting = 0;
	if (l->outage)
		log_debug("%s: %s", l->name, why);
	else {
		l->outage = 1;
		l->down_since = now_mono_us();
		log_warnx("%s: %s; will keep retrying", l->name, why);
	}
	if (!l->dying)
		link_arm(l, backoff_next(&l->backoff));
	link_set_state(l, LINK_DOWN);
}

/* link_retry - news that the server is back: end the backoff now */
void
link_retry(struct link *l)
{
	if (l->state != LINK_DOWN || l->attempting || l->dying)
		return;
	link_arm(l, 0);
}

/* link_up - the connection is usable: say so once after an outage */
void
link_up(struct link *l)
{
	evtimer_del(l->ev_timer);
	l->attempting = 0;
	backoff_reset(&l->backoff);
	if (l->outage)
		log_info("%s: up again after %.1f s", l->name,
		    (double)(now_mono_us() - l->down_since) / 1e6);
	else
		log_debug("%s: up", l->name);
	l->outage = 0;
	link_set_state(l, LINK_UP);
}

/* link_timed_out - an attempt took too long: the owner drops it */
static void
link_timed_out(struct link *l)
{
	char	why[64];

	snprintf(why, sizeof(why), "connect timed out after %u ms",
	    l->connect_timeout_ms);
	l->ops->lost(l->owner, why);
}

/* link_on_timer - an attempt timed out, or it is time for the next one */
static void
link_on_timer(evutil_socket_t fd, short what, void *arg)
{
	struct link	*l = arg;

	link_enter(l);
	if (l->attempting)
		link_timed_out(l);
	else {
		link_set_state(l, LINK_CONNECTING);
		if (!l->dying)
			l->ops->connect(l->owner);
	}
	link_leave(l);
}

/* link_on_defer - the owner delivers failures; a late free is finished */
static void
link_on_defer(evutil_socket_t fd, short what, void *arg)
{
	struct link	*l = arg;

	link_enter(l);
	l->ops->defer(l->owner);
	link_leave(l);
}
