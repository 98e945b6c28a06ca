/* SPDX-License-Identifier: Apache-2.0 */
/*
 * model - what happens on the tenant's DNs, from the voice events (and
 * in virtual queues, from the routing events): each agent's state, the
 * calls on each DN, the calls waiting in each queue;
 * told as instances of actions that start and end (an agent Ready, a call
 * Talking, a call waiting in a queue) or happen at once (a call answered,
 * abandoned).  docs/stats.md lists the actions.  Pure: no I/O; the caller
 * says what kind each DN is, and gets the actions through callbacks.
 */
#ifndef TENANTD_STATS_MODEL_H
#define TENANTD_STATS_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

enum action {
	A_LOGGED_IN = 0,
	A_READY,
	A_NOT_READY,
	A_ACW,
	A_RINGING,
	A_DIALING,
	A_TALKING,
	A_INBOUND,
	A_OUTBOUND,
	A_INTERNAL,
	A_CONSULT,
	A_ON_HOLD,
	A_ANSWERED,
	A_WAITING,
	A_ENTERED,
	A_DISTRIBUTED,
	A_ABANDONED,
	A_COUNT
};

enum dn_kind { DNK_UNKNOWN = 0, DNK_PHONE, DNK_QUEUE, DNK_RP };

/* One instance of an action. */
struct inst {
	uint64_t	 id;
	enum action	 a;
	int		 of_agent;	/* subject: the agent (else the DN) */
	const char	*agent;		/* login code, when known */
	const char	*dn;		/* the agent's DN, or the queue */
	double		 start;		/* seconds since the epoch */
	const json_t	*user_data;	/* the call's, or NULL */
	int		 repeat;	/* the same call counted before (it
					 * entered a routing point, then a
					 * queue; answered: the queue's copy) */
	const char	*prior;		/* a repeat: the routing point or
					 * queue that counted it before, if
					 * one did (during the callback) */
};

struct agent_state {
	const char	*state;		/* LoggedOut, Ready, NotReady, ... */
	double		 since;
	const char	*reason;	/* or NULL */
	const char	*work_mode;	/* or NULL */
	const char	*dn;		/* or NULL */
	const char	*conn_id;	/* or NULL */
};

struct model_cbs {
	enum dn_kind (*dn_kind)(const char *dn, void *arg);
	void	(*start)(const struct inst *, void *arg);
	void	(*end)(const struct inst *, double end, void *arg);
	/* inst->start is when; duration: how long the call waited */
	void	(*instant)(const struct inst *, double duration, void *arg);
	/* the derived state of an agent changed */
	void	(*state)(const char *agent, void *arg);
};

struct model;

struct model	*model_new(const struct model_cbs *, void *arg);
void		 model_free(struct model *);
/* The members of a voice event that the model reads (borrowed). */
struct model_event {
	const char	*name;		/* "event" */
	const char	*dn;		/* "thisDN" */
	int		 has_time;
	long long	 time_ms;	/* "time" */
	const char	*agent_id;
	const char	*work_mode;
	const char	*reason;
	const char	*conn_id;
	const char	*prev_conn_id;	/* "previousConnId" */
	const char	*call_type;
	const json_t	*user_data;	/* an object, or NULL */
};

/* The members of an event's tree. */
void		 model_event_of(const json_t *event, struct model_event *);
/* One voice event; t: its time when it has none. */
void		 model_apply_event(struct model *, const struct model_event *,
		    double t);
/* The same from its tree (borrowed). */
void		 model_apply(struct model *, const json_t *event, double t);
/* Every call and queue forgotten (the voice side restarted); the virtual
 * queues' interactions, the routing worker's, stay. */
void		 model_clear_calls(struct model *, double t);
/*
 * Make the model agree with the voice side's state hash (DN -> {"agent",
 * "calls"}, docs/voice-redis.md) taken at the stream position the model
 * has reached: the calls, waiting calls (but those of virtual queues,
 * which the routing events tell) and logged-in agents it does not list
 * end at t.  *calls and *agents: how many.
 */
void		 model_reconcile(struct model *, const json_t *state, double t,
		    size_t *calls, size_t *agents);

/*
 * After events were missed (a gap): take in what the same hash lists and
 * the model lacks or holds otherwise: agents logged in and their mode,
 * calls on phones and their state, calls waiting in queues, each started
 * at its "since" in the hash (or t), through the callbacks.  *calls and
 * *agents: how many were taken in or changed.
 */
void		 model_adopt(struct model *, const json_t *state, double t,
		    size_t *calls, size_t *agents);

/*
 * The members of a routing event (the routing worker's stream,
 * docs/routing.md) that the model reads, borrowed: the interaction's
 * state after the event, in a virtual queue (docs/stats.md "Virtual
 * queues").
 */
struct model_vq_event {
	const char	*type;		/* queued, reserved, ...; or NULL */
	const char	*id;		/* the interaction's */
	const char	*state;		/* queued, reserved, accepted, or a
					 * final one */
	const char	*vq;		/* the VirtualQueue DN's number */
	json_int_t	 vq_dbid;
	const char	*conn;		/* a routing point's call: its connId */
	const char	*rp;		/* and that routing point */
	int		 restored;	/* put back in a Redis that lost it */
	double		 at;		/* s; 0: not said */
	double		 created;	/* s */
	const json_t	*user_data;	/* an object, or NULL */
};

/* The members of an event's tree; -1 without an id, state or queue. */
int		 model_vq_event_of(const json_t *event,
		    struct model_vq_event *);
/* One routing event; t: its time when it has none. */
void		 model_apply_vq(struct model *, const struct model_vq_event *,
		    double t);
/*
 * After routing events were missed: the interactions of the virtual
 * queues as the routing state lists them at t (an array of their states,
 * each as an event carries it).  What the model holds and the list does
 * not ends, what the list holds and the model does not is taken in,
 * through the callbacks; *ended and *taken: how many.
 */
void		 model_vq_reconcile(struct model *, const json_t *live,
		    double t, size_t *ended, size_t *taken);
/* The interactions of virtual queues known; *waiting: those waiting. */
size_t		 model_vq_count(const struct model *, size_t *waiting);

int		 model_agent_state(const struct model *, const char *agent,
		    struct agent_state *);
/* The agent on a DN, or NULL. */
const char	*model_dn_agent(const struct model *, const char *dn);
/* The instances in progress of one agent, or on one DN (queue). */
void		 model_each_of_agent(const struct model *, const char *agent,
		    void (*)(const struct inst *, void *), void *arg);
void		 model_each_of_dn(const struct model *, const char *dn,
		    void (*)(const struct inst *, void *), void *arg);
void		 model_each(const struct model *,
		    void (*)(const struct inst *, void *), void *arg);
size_t		 model_count(const struct model *, size_t *agents,
		    size_t *calls);

/* The whole state as JSON, to snapshot; and back (no callbacks). */
json_t		*model_dump(const struct model *);
int		 model_restore(struct model *, const json_t *);

const char	*action_name(enum action);
int		 action_by_name(const char *);
int		 action_is_instant(enum action);

#endif
