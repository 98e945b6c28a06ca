/* SPDX-License-Identifier: Apache-2.0 */
/*
 * model - the simulated switch: DNs, agents, calls, and the requests of
 * docs/voice-redis.md, answered with the events a T-Server would send.
 *
 * Pure: it reads no clock and does no I/O.  The caller hands it the time
 * with every call, runs its timers (ringing external parties, patience,
 * the traffic generator's agents) when vs_next_due says, and writes each
 * event it emits, with the state of the DN it changed, to Redis.  Timers
 * fire in order of their due time, and a timer's own due time is the
 * model's clock while it runs, so a run of the traffic generator with one
 * seed always produces the same events, however late the loop is.
 */
#ifndef VOICESIM_MODEL_H
#define VOICESIM_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct dir;
struct vs;

enum vs_dist {
	VS_DIST_EXP = 0,	/* exponential with the given mean */
	VS_DIST_FIXED,
	VS_DIST_UNIFORM,	/* uniform on [0, 2 * mean] */
};

struct vs_params {
	const char	*region;	/* for eventId and region */
	const char	*boot;		/* boot id: 16 hex digits */
	uint64_t	 seed;
	/* times in milliseconds */
	uint64_t	 ring_ms;	/* external answer, agent answer */
	uint64_t	 patience_ms;	/* inbound caller waits this long */
	uint64_t	 talk_ms;	/* mean talk time (traffic) */
	uint64_t	 wrap_ms;	/* after call work (traffic) */
	uint64_t	 break_ms;	/* mean not-ready time (traffic) */
	enum vs_dist	 dist;		/* of talk and break times */
	double		 notready;	/* chance of a break after a call */
	double		 rate;		/* inbound calls per second (traffic) */
	unsigned	 agents;	/* agents logged in automatically */
	int		 external_busy;	/* every external number is busy */
	const char	*busy_suffix;	/* external numbers ending so: busy */
	size_t		 external_min;	/* shorter unknown numbers: UnknownDN */
	const char	*queue;		/* where routing points send calls */
	const char	*target;	/* traffic goes here, not to RPs */
};

/* One event to write; the DN's state goes in the same MULTI/EXEC. */
struct vs_out {
	json_t		*event;		/* borrowed until return */
	const char	*dn;		/* whose state changed, or NULL */
	json_t		*state;		/* its new value; NULL: delete */
};

typedef void	 vs_emit_cb(const struct vs_out *, void *arg);

/* The model reads dir (owned by the caller) at every request. */
struct vs	*vs_new(const struct vs_params *, struct dir *,
		    vs_emit_cb *, void *arg);
void		 vs_free(struct vs *);

/* Answer one request (docs/voice-redis.md and docs/voicesim.md). */
void		 vs_request(struct vs *, const json_t *req, uint64_t now_ms);
/* Answer a request that did not parse: EventError BadRequest. */
void		 vs_bad_request(struct vs *, const char *request_id,
		    const char *message, uint64_t now_ms);
/* The configuration is loaded (or reloaded): start the traffic. */
void		 vs_synced(struct vs *, uint64_t now_ms);
/* Run the timers due by now; the next due time, or 0 when none. */
void		 vs_run(struct vs *, uint64_t now_ms);
uint64_t	 vs_next_due(const struct vs *);

/* Every DN with an agent or calls, and its state (after a Redis loss). */
void		 vs_each_state(struct vs *,
		    void (*cb)(const char *dn, json_t *state, void *),
		    void *arg);
/* Counters for the log. */
uint64_t	 vs_events(const struct vs *);
size_t		 vs_calls(const struct vs *);

#endif
