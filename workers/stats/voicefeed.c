/* SPDX-License-Identifier: Apache-2.0 */
/*
 * voicefeed - the voice events of every region (common/voice.c, the
 * same streams the events worker reads) applied to the model, once each
 * (common/seen.c), without a tree of the event where it can; the voice
 * link's ups and downs, which make every statistic valid or invalid.  A
 * gap in the stream, or a new boot of the voice side, is reconcile.c's.
 *
 * It touches the model, the voice streams (read) and stats_env.lag.
 */
#include <string.h>

#include "jscan.h"
#include "metrics.h"
#include "seen.h"
#include "voice.h"
#include "worker.h"
#include "stats_int.h"

static void	on_voice_event(struct voice_event *, void *);
static void	on_link(int, void *);
static void	apply(struct voice_event *);
static int	event_of(const struct voice_event *, struct model_event *,
		    char *, size_t, json_t **);

/* The members of an event the model reads, beyond those every worker
 * routes by: voice_read_also finds them in the pass that checks it.  In
 * the order of event_of's. */
static const char *const model_members[] = { "agentId", "workMode",
    "reason", "connId", "previousConnId", "callType", "userData" };

static struct seen	*seen;

/*
 * voicefeed_start - the model and totals are back: read the events since
 * (from[i]: region i's stream id, or NULL for its end).  Without a
 * snapshot the reader starts at the stream's end, and what came before
 * (agents logged in, calls up) is known only from the state hash: that
 * is a gap too.
 */
void
voicefeed_start(char **from, int no_snapshot)
{
	struct voice_cbs	vc = { on_voice_event, on_link,
				    reconcile_boot };

	seen = seen_new(65536, 1);
	voice_read_also(model_members, NELEM(model_members));
	voice_on_gap(reconcile_gap);
	voice_start_from(stats_env.base, worker_conf(), from, &vc, NULL);
	stats_env.voice_started = 1;
	if (no_snapshot)
		reconcile_gap(0, "no snapshot of the model: the events before "
		    "the stream's end were not read", NULL);
}

void
voicefeed_cleanup(void)
{
	voice_stop();
	seen_free(seen);
	seen = NULL;
}

/*
 * on_voice_event - an entry of a region's stream.
 *
 * Guarantees: an event is applied once, whichever region (or replay after
 * a reconnect) brings it, since eventIds are de-duplicated; it is applied
 * in stream order, before any statistic is valued (that waits for the
 * zero timer, subscribers.c), so a burst of events makes one notification
 * per statistic, not one per event.  A cut of the local region
 * (reconcile.c) is told every entry id, also those seen before: the
 * reader has passed them whether or not they were applied.
 */
static void
on_voice_event(struct voice_event *ev, void *arg)
{
	int	applied = 0;

	if (seen != NULL && seen_add(seen, ev->event_id)) {
		apply(ev);
		applied = 1;
	}
	if (ev->region == 0)
		reconcile_seen(ev, applied);
}

/* on_link - the voice side reachable or not: validity, and a cut that
 * waited for it */
static void
on_link(int up, void *arg)
{
	stats_env.link_up = up;
	subs_validity();
	reconcile_link();
}

/*
 * apply - one new event to the model.  The members the model reads come
 * from the pass that checked the event (event_of); only when one has
 * escapes, or is too long, is the event's tree built.  The lag is how old
 * the event was when applied: over max_lag, no new statistic is opened.
 */
static void
apply(struct voice_event *ev)
{
	struct model_event	 me;
	json_t			*ud;
	char			 buf[1024];
	double			 now = stats_now();

	metric_inc(stats_env.m_events);
	if (ev->has_time)
		stats_env.lag = now - (double)ev->time_ms / 1000.0;
	if (stats_env.lag < 0)
		stats_env.lag = 0;
	stats_env.model_dirty = 1;
	if (event_of(ev, &me, buf, sizeof(buf), &ud) == -1) {
		json_decref(ud);
		ud = NULL;
		model_event_of(voice_event_json(ev), &me);
	}
	model_apply_event(stats_env.model, &me, now);
	json_decref(ud);
}

/*
 * event_of - the members the model reads, from that pass (no tree); -1
 * when one of them has escapes or is too long, and the tree must tell.
 * *ud: the userData parsed, to free after.
 */
static int
event_of(const struct voice_event *ev, struct model_event *me, char *buf,
    size_t len, json_t **ud)
{
	const struct jscan_field *f = ev->more;
	const char		**to[] = { &me->agent_id, &me->work_mode,
				    &me->reason, &me->conn_id,
				    &me->prev_conn_id, &me->call_type };
	size_t			 i, used = 0;

	*ud = NULL;
	if (ev->obj != NULL)
		return -1;
	me->name = ev->name;
	me->dn = ev->dn[0] != '\0' ? ev->dn : NULL;
	me->has_time = ev->has_time;
	me->time_ms = ev->time_ms;
	for (i = 0; i < NELEM(to); i++) {
		*to[i] = NULL;
		if (f[i].type == JSCAN_STRING_ESCAPED ||
		    (f[i].type == JSCAN_STRING && used + f[i].len >= len))
			return -1;
		if (f[i].type != JSCAN_STRING)
			continue;
		memcpy(buf + used, f[i].val, f[i].len);
		buf[used + f[i].len] = '\0';
		*to[i] = buf + used;
		used += f[i].len + 1;
	}
	me->user_data = NULL;
	/* Agents' events and a call's release do not look at it. */
	if (f[6].type == JSCAN_OTHER && f[6].val[0] == '{' &&
	    strncmp(me->name, "EventAgent", 10) != 0 &&
	    strcmp(me->name, "EventReleased") != 0) {
		if ((*ud = json_loadb(f[6].val, f[6].len, 0, NULL)) == NULL)
			return -1;
		me->user_data = *ud;
	}
	return 0;
}
