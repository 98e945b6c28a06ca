/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vsreplay - what voice:state must hold, replayed from voicesim's events
 * alone (docs/voice-redis.md), for the voicesim model tests: each DN's
 * calls by connId with their state and userData, and its agent.  A state
 * that voicesim writes is checked against the replay of every event
 * written before it; a mismatch is a cmocka failure naming the DN.
 */
#ifndef TENANTD_VSREPLAY_H
#define TENANTD_VSREPLAY_H

#include <stddef.h>

#include <jansson.h>

struct vsreplay;

struct vsreplay	*vsr_new(void);
void		 vsr_free(struct vsreplay *);
/* One event, in stream order. */
void		 vsr_event(struct vsreplay *, const json_t *ev);
/* dn's state as written (NULL: its field deleted) matches the replay. */
void		 vsr_check(struct vsreplay *, const char *dn,
		    const json_t *state);
/*
 * The state written right after one event, for vs_flush: checked, and
 * kept as [dn, state] in pair; an event that made two DNs due fails.
 */
struct vsr_one {
	struct vsreplay	*replay;
	json_t		*pair;		/* NULL until a DN is flushed */
};
void		 vsr_keep(const char *dn, json_t *state, void *one);
/* How many DNs the replay has with a call or an agent. */
size_t		 vsr_dns(const struct vsreplay *);

#endif
