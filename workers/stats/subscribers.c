/* SPDX-License-Identifier: Apache-2.0 */
/*
 * subscribers - who is told what, and when: the statistics that changed
 * while the events at hand were applied are valued once, on a zero timer,
 * and their subscribers in "changes" mode told past their insensitivity;
 * "periodic" subscribers on their own timers; "reset" ones at a Growing
 * profile's reset, with the value just before it; every subscriber when
 * its statistic turns valid or invalid (docs/stats.md "Notification
 * modes").  EventInfo is written straight as its line.
 *
 * It writes to sessions (common/sess.c) and, after each flush, the agent
 * states that changed (agentstates.c).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "metrics.h"
#include "sess.h"
#include "stats_int.h"

static void	on_flush(evutil_socket_t, short, void *);
static void	on_periodic(evutil_socket_t, short, void *);
static int	changed(const struct sub *, const struct value *);
static void	reset_due(struct statistic *, void *);
static void	validity(struct statistic *, void *);

static TAILQ_HEAD(, statistic)	 dirty = TAILQ_HEAD_INITIALIZER(dirty);
static struct event		*ev_flush;
static double			 reset_min;	/* the next reset of any */

void
subs_init(void)
{
	ev_flush = evtimer_new(stats_env.base, on_flush, NULL);
}

/* subs_mark - the statistic changed: value it once the events at hand
 * are applied */
void
subs_mark(struct statistic *m)
{
	m->changed = stats_env.save_epoch;
	if (m->dirty)
		return;
	m->dirty = 1;
	TAILQ_INSERT_TAIL(&dirty, m, dirty_entry);
	subs_schedule();
}

/* subs_forget - a statistic dropped is valued no more */
void
subs_forget(struct statistic *m)
{
	if (m->dirty)
		TAILQ_REMOVE(&dirty, m, dirty_entry);
	m->dirty = 0;
}

/* subs_schedule - a flush after the events at hand */
void
subs_schedule(void)
{
	struct timeval	zero = { 0, 0 };

	if (ev_flush != NULL && !evtimer_pending(ev_flush, NULL))
		evtimer_add(ev_flush, &zero);
}

/* subs_info - EventInfo, written straight as its line; ref >= 0: the
 * answer to a peek, which sets no new baseline */
void
subs_info(struct sub *s, const struct value *v, json_int_t ref)
{
	struct jw	 w;
	char		 buf[512];

	jw_init(&w, buf, sizeof(buf));
	jw_lit(&w, "{\"event\":\"EventInfo\",\"statisticId\":");
	jw_int(&w, s->id);
	jw_lit(&w, ",\"value\":");
	jw_raw(&w, v->text, strlen(v->text));
	jw_lit(&w, ",\"time\":");
	jw_int(&w, (long long)(now_wall_us() / 1000));
	if (ref >= 0) {
		jw_lit(&w, ",\"ref\":");
		jw_int(&w, ref);
	}
	jw_lit(&w, "}\n");
	sess_send_line(s->c->s, w.p, w.n);
	jw_free(&w);
	if (ref < 0) {
		s->has_last = 1;
		s->last_is_num = v->is_num;
		s->last_num = v->num;
		free(s->last_text);
		s->last_text = v->is_num ? NULL : xstrdup(v->text);
	}
	metric_inc(stats_env.m_notified);
}

/* subs_periodic - a periodic subscriber's timer */
void
subs_periodic(struct sub *s)
{
	struct timeval	tv = util_tv(s->n.interval);

	s->timer = event_new(stats_env.base, -1, EV_PERSIST, on_periodic, s);
	event_add(s->timer, &tv);
}

/* subs_reset_at - a Growing profile resets at t: the tick walks the
 * statistics only when one is due */
void
subs_reset_at(double t)
{
	if (t > 0 && (reset_min == 0 || t < reset_min))
		reset_min = t;
}

/* subs_resets - the tick: the resets due by now */
void
subs_resets(double now)
{
	if (reset_min > 0 && now >= reset_min) {
		reset_min = 0;		/* reset_due finds the next one */
		statistic_each(reset_due, &now);
	}
}

/* subs_validity - every statistic's validity, as the voice link and the
 * configuration have it now */
void
subs_validity(void)
{
	statistic_each(validity, NULL);
}

void
subs_cleanup(void)
{
	TAILQ_INIT(&dirty);
	reset_min = 0;
	if (ev_flush != NULL)
		event_free(ev_flush);
	ev_flush = NULL;
}

/* on_flush - the statistics that changed, valued once each; then the
 * agent states that changed, to Redis */
static void
on_flush(evutil_socket_t fd, short what, void *arg)
{
	struct statistic	*m;
	struct sub		*s;
	struct value		 v;
	double			 now = stats_now();

	while ((m = TAILQ_FIRST(&dirty)) != NULL) {
		TAILQ_REMOVE(&dirty, m, dirty_entry);
		m->dirty = 0;
		if (!m->valid || LIST_EMPTY(&m->subs))
			continue;
		value_get(m, now, &v);
		LIST_FOREACH(s, &m->subs, m_entry)
			if (s->n.mode == NM_CHANGES && changed(s, &v))
				subs_info(s, &v, SESS_NOREF);
		value_free(&v);
	}
	agents_write();
}

static void
on_periodic(evutil_socket_t fd, short what, void *arg)
{
	struct sub	*s = arg;
	struct value	 v;

	if (!s->m->valid)
		return;
	value_get(s->m, stats_now(), &v);
	subs_info(s, &v, SESS_NOREF);
	value_free(&v);
}

/* changed - far enough from what the client last got */
static int
changed(const struct sub *s, const struct value *v)
{
	double	a = s->last_num, b = v->num;

	if (!s->has_last || v->is_num != s->last_is_num)
		return 1;
	if (!v->is_num)
		return strcmp(v->text, s->last_text) != 0;
	if (a == b)
		return 0;
	if (s->n.insensitivity <= 0 || a == 0)
		return 1;
	return fabs(b - a) * 100.0 / fabs(a) > s->n.insensitivity;
}

/* reset_due - a Growing statistic whose reset came: its "reset"
 * subscribers get the value just before it; one kept only for its total
 * is done */
static void
reset_due(struct statistic *m, void *arg)
{
	double		 now = *(double *)arg;
	struct sub	*s;
	struct value	 val;

	if (m->p.kind != PROF_GROWING || m->next_reset == 0)
		return;
	if (now < m->next_reset) {
		subs_reset_at(m->next_reset);
		return;
	}
	value_get(m, now, &val);
	LIST_FOREACH(s, &m->subs, m_entry)
		if (s->n.mode == NM_RESET && m->valid)
			subs_info(s, &val, SESS_NOREF);
	value_free(&val);
	acc_reset(m->acc, m->next_reset);
	m->next_reset = profile_next_reset(&m->p, now, stats_gmtoff(now));
	subs_reset_at(m->next_reset);
	if (LIST_EMPTY(&m->subs)) {	/* kept for its total: done */
		save_total_forget(m);
		statistic_drop(m);
		return;
	}
	subs_mark(m);
}

/*
 * validity - a statistic's value can be known while the link that feeds
 * it is up (the voice link; a virtual queue's: the routing events) and
 * its object exists; subscribers hear when that changes.
 */
static void
validity(struct statistic *m, void *arg)
{
	int		 exists = index_object_exists(m->kind, m->dbid);
	int		 up = statistic_link_up(m) && exists;
	struct sub	*s;
	struct value	 val;
	json_t		*e;

	if (m->valid == up)
		return;
	m->valid = up;
	if (up)
		value_get(m, stats_now(), &val);
	LIST_FOREACH(s, &m->subs, m_entry) {
		e = json_pack("{s:s, s:I}", "event", up ?
		    "EventStatisticValid" : "EventStatisticInvalid",
		    "statisticId", s->id);
		if (!up)
			json_object_set_new(e, "reason", json_string(!exists ?
			    "the object was deleted from the configuration" :
			    statistic_routed(m) ? "the routing events are "
			    "not followed" : "the voice link is down"));
		sess_send(s->c->s, e);
		json_decref(e);
		if (up && s->n.mode != NM_NONE)
			subs_info(s, &val, SESS_NOREF);
	}
	if (up)
		value_free(&val);
}
