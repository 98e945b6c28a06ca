/* SPDX-License-Identifier: Apache-2.0 */
/*
 * resume - a client that lost its connection opens again with the last
 * position it saw per region, registers its DNs, and sends RequestResume:
 * each region's stream is read again after its position, in batches,
 * and what the client's DNs had is sent once, in order; then it is live.
 * Nothing lost, nothing twice (docs/protocol.md, "Resuming").
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/event.h>

#include "events_int.h"
#include "log.h"
#include "metrics.h"
#include "seen.h"
#include "sess.h"
#include "strmap.h"
#include "svc.h"
#include "util.h"
#include "voice.h"
#include "worker.h"

static void	replay_next(struct client *);
static void	resume_past(struct client *);
static void	replayed_cb(int, int, int, struct voice_event *, size_t,
		    void *);

/* ev_resume - RequestResume: each region replayed after its position */
void
ev_resume(struct client *c, json_int_t ref)
{
	int	i;

	if (!c->held || c->replaying) {
		sess_send_error(c->s, ref, "InvalidState", c->replaying ?
		    "a resume is running" : "RequestResume follows a "
		    "RequestOpen with \"resume\" positions, once");
		return;
	}
	c->replaying = 1;
	c->resume_ref = ref;
	c->region = 0;
	c->replayed = 0;
	/* A region whose position was refused before stays lost. */
	for (i = 0; i < voice_nregions(); i++)
		if (c->has_cursor[i])
			c->lost[i] = 0;
	memset(c->live, 0, sizeof(c->live));
	if (c->resumed == NULL)
		c->resumed = seen_new(RESUME_SEEN_MAX, 0);
	replay_next(c);
}

/* replay_next - the next batch, or live once every region is done */
static void
replay_next(struct client *c)
{
	struct op	*op;
	json_t		*e, *lost;
	int		 i;

	while (c->region < voice_nregions() && !c->has_cursor[c->region])
		c->region++;
	if (c->region < voice_nregions()) {
		op = ev_op_new(c, OP_REPLAY, c->resume_ref);
		voice_range(c->region, &c->cursor[c->region], REPLAY_BATCH,
		    replayed_cb, op);
		return;
	}
	/* Regions it had no position for: from now on. */
	lost = json_array();
	for (i = 0; i < voice_nregions(); i++) {
		if (!c->has_cursor[i])
			c->cursor[i] = *voice_region_position(i);
		if (c->lost[i])
			json_array_append_new(lost, json_string(
			    voice_region_name(i)));
	}
	c->held = c->replaying = 0;
	e = json_pack("{s:s, s:I, s:o}", "event", "EventResumed", "replayed",
	    (json_int_t)c->replayed, "lost", lost);
	sess_reply(c->s, c->resume_ref, e);
	json_decref(e);
}

static void
replayed_cb(int ok, int lost, int past, struct voice_event *v, size_t n,
    void *arg)
{
	struct op	*op = arg;
	struct client	*c = op->c;
	char		*line;
	size_t		 i, len;
	int		 done;

	ev_op_done(op);
	free(op);
	if (c == NULL)
		return;
	if (!ok) {
		sess_send_error(c->s, c->resume_ref, SESS_ERR_UNAVAILABLE,
		    "Redis of region %s is unreachable; resume again later",
		    voice_region_name(c->region));
		c->replaying = 0;	/* still held: it may try again */
		return;
	}
	if (past) {
		resume_past(c);
		return;
	}
	c->lost[c->region] |= lost;
	for (i = 0; i < n; i++) {
		c->cursor[c->region] = v[i].id;
		if (v[i].name[0] == '\0')	/* not an event */
			continue;
		if (!seen_add(c->resumed, v[i].event_id) ||
		    strcmp(v[i].name, "EventError") == 0 ||
		    v[i].dn[0] == '\0' || !ev_registered(c, v[i].dn))
			continue;
		done = 0;
		if ((line = sess_encode(ev_prepared(&v[i], &done),
		    &len)) == NULL)
			continue;
		if (sess_send_line(c->s, line, len) == 0) {
			c->replayed++;
			metric_inc(events_env.m_replayed);
		}
		free(line);
	}
	/*
	 * Done with the region once a short batch leaves nothing between it
	 * and the live reader: an entry the live reader passed while this
	 * client was held must come in a batch, or it would be lost.
	 */
	if (n < REPLAY_BATCH && sid_cmp(voice_region_position(c->region),
	    &c->cursor[c->region]) <= 0) {
		c->live[c->region] = 1;
		c->region++;
	}
	replay_next(c);
}

/*
 * resume_past - the position given for a region is after the last entry
 * its stream ever had: no server gave it.  The client is told; a
 * RequestResume again goes on without it, that region counted as lost.
 */
static void
resume_past(struct client *c)
{
	char	pos[48];

	sid_format(&c->cursor[c->region], pos, sizeof(pos));
	sess_send_error(c->s, c->resume_ref, SESS_ERR_BAD_REQUEST, "resume: "
	    "%s is past the end of the stream of region %s; RequestResume "
	    "again goes on without it (that region reported lost)", pos,
	    voice_region_name(c->region));
	c->has_cursor[c->region] = 0;
	c->lost[c->region] = 1;
	c->replaying = 0;
}
