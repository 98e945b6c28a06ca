/* SPDX-License-Identifier: Apache-2.0 */
/*
 * model - the simulated switch: DNs, agents, calls, and the requests of
 * docs/voice-redis.md, answered with the events a T-Server would send.
 *
 * Pure: it reads no clock and does no I/O.  The caller hands it the time
 * with every call, runs its timers (ringing external parties, patience,
 * the traffic generator's agents) when vs_next_due says, and writes the
 * events it emits to Redis.  After each call into the model (a batch of
 * requests, the timers due) vs_flush gives the state, as it is then, of
 * each DN those events were about, once: written with the batch's events
 * in one MULTI/EXEC, voice:state always matches the stream, and a DN with
 * hundreds of calls has its state built once per batch, not per event.
 * Timers
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

/*
 * What a called party of a predictive call does (--outbound-mix).  The
 * keys and results are in model.c's outcome table, in this order.
 */
enum vs_outcome {
	VS_OC_ANSWER = 0,	/* a person: EventEstablished, callResult Answer */
	VS_OC_MACHINE,		/* answered by a machine, a fax, or silence: */
	VS_OC_FAX,		/* released by CPD, or established without */
	VS_OC_SILENCE,
	VS_OC_BUSY,		/* early results: after busy_after_ms */
	VS_OC_SIT,
	VS_OC_VACANT,
	VS_OC_INTERCEPT,
	VS_OC_NOCIRCUIT,
	VS_OC_REORDER,
	VS_OC_SITUNKNOWN,
	VS_OC_ALLTRUNKS,
	VS_OC_NORINGBACK,
	VS_OC_NOANSWER,		/* rings until the request's ringTimeout */
	VS_OC_N
};

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
	/* predictive calls (RequestMakePredictiveCall) */
	unsigned	 mix[VS_OC_N];	/* percent of called parties; all 0:
					 * every one answers */
	uint64_t	 out_ring_min_ms; /* a person or machine answers */
	uint64_t	 out_ring_max_ms; /* uniformly in between */
	uint64_t	 busy_after_ms;	/* busy and SIT results come then */
	uint64_t	 out_patience_ms; /* answered: waits for an agent;
					 * 0: forever */
	uint64_t	 agent_answer_ms; /* generated agents, routed calls */
};

/* One event to write; the states of the DNs it changed come from
 * vs_flush. */
struct vs_out {
	json_t		*event;		/* borrowed until return */
	const char	*note;		/* a predictive call's outcome, for
					 * the debug log; or NULL */
};

typedef void	 vs_emit_cb(const struct vs_out *, void *arg);
/* A DN's field in voice:state: state borrowed until return; NULL: the DN
 * has no agent and no call, its field goes. */
typedef void	 vs_state_cb(const char *dn, json_t *state, void *arg);

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

/*
 * The DNs that events emitted since the last flush were about, each once,
 * with its state now (NULL: delete its field).  The caller flushes at the
 * end of each batch; a flush from the emit callback gives each event the
 * state of its DN right after it.  cb must not call the model.
 */
void		 vs_flush(struct vs *, vs_state_cb *cb, void *arg);
/* Every DN with an agent or calls, and its state (after a Redis loss). */
void		 vs_each_state(struct vs *, vs_state_cb *cb, void *arg);
/* Counters for the log. */
uint64_t	 vs_events(const struct vs *);
size_t		 vs_calls(const struct vs *);
/* One line on the predictive calls: how many, each result, routed... */
void		 vs_outbound_summary(const struct vs *, char *, size_t);

/* The --outbound-mix key of an outcome ("answer", "busy", ...), and back
 * (-1: no such key). */
const char	*vs_outcome_key(enum vs_outcome);
int		 vs_outcome_parse(const char *key);

#endif
