/* SPDX-License-Identifier: Apache-2.0 */
/*
 * routing_int.h - the routing worker's parts and what they share
 * (docs/routing.md):
 *
 *   routing.c	the worker: start, reload, stop, configuration, tick
 *   store.c	the shared state in Redis: every change one Lua script that
 *		also appends the routing event; the snapshot and the
 *		event stream followed from it
 *   queue.c	the interactions in memory, as the events say, and the
 *		matching of waiting interactions with free agents
 *   pool.c	the agents: who is logged in where, Ready, on a call (the
 *		voice side), with which skills and groups (configuration)
 *   target.c	targets: parsed from a request or a routing point, matched
 *		against an agent
 *   ewt.c	expected wait: urs, urs2, stat
 *   http.c	the HTTP routes of port 5580
 *   feed.c	the event stream to applications (SSE, NDJSON)
 *   rp.c	routing points: the voice side's calls queued and routed
 *   expr.c	skill expressions
 */
#ifndef TENANTD_ROUTING_INT_H
#define TENANTD_ROUTING_INT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include <jansson.h>

#include "heap.h"

struct event_base;
struct rds;
struct rexpr;
struct conf;
struct http_conn;
struct http_request;
struct principal;
struct voice_event;
struct metric;

#define RT_ID_MAX	128	/* an interaction id: a UUID, or "rp-<connId>-<position>" */
#define RT_DN_MAX	64
#define RT_STEPS_MAX	8
#define RT_CALLS_MAX	4
#define RT_CONN_MAX	64	/* a connId */

/* A change to the shared state answered: rc 1 done (why: the state it
 * left), 0 refused (why: the state it was in, "gone", "agent", ...), -1
 * Redis did not answer. */
typedef void	 store_cb(int rc, const char *why, void *arg);

/* ---- targets (target.c) ---- */

enum target_kind {
	TG_ANY = 0,		/* any agent */
	TG_EXPR,		/* a skill expression */
	TG_AGENT_GROUP,
	TG_PLACE_GROUP,
	TG_AGENT,		/* one person */
};

enum strategy {
	ST_LONGEST_IDLE = 0,
	ST_MOST_SKILLED,
	ST_ROUND_ROBIN,
	ST_FEWEST_CALLS,
};

struct target {
	enum target_kind kind;
	json_int_t	 dbid;		/* the group or person */
	struct rexpr	*expr;		/* TG_EXPR */
	char		*text;		/* TG_EXPR: as written */
};

struct step {
	double		 after;		/* s waited before it applies */
	struct target	 t;
	int		 strategy;	/* an enum strategy from then on; -1:
					 * the one in force goes on (step 0,
					 * the target: the interaction's) */
};

struct agent;

/*
 * Parse a target: a string (a skill expression), {"agentGroup": dbid},
 * {"placeGroup": dbid} or {"agent": dbid}.  0, or -1 with why.
 */
int		 target_parse(const json_t *, struct target *, char *why,
		    size_t len);
void		 target_free(struct target *);
int		 target_match(const struct target *, const struct agent *);
/* A Skill's dbid by name (an expr.h rexpr_skill_cb), -1: none. */
int		 target_skill(const char *name, size_t len, void *arg);
/* For ST_MOST_SKILLED: the agent's highest level among the skills the
 * target names (-1: none, or a group target) */
int		 target_score(const struct target *, const struct agent *);
enum strategy	 strategy_parse(const char *);	/* -1: unknown */

/* ---- agents (pool.c) ---- */

struct skill_level {
	int		 skill;		/* Skill dbid */
	int		 level;
};

/* One phone DN and whoever is logged in on it. */
struct agent {
	char		 dn[RT_DN_MAX];
	char		 login[64];
	json_int_t	 person;	/* 0: nobody known */
	json_int_t	 place;		/* of the person, or of the DN */
	int		 ready;
	int		 ncalls;
	char		 conns[RT_CALLS_MAX][RT_CONN_MAX];
	uint64_t	 since_ms;	/* the state's start: idle since */
	char		 holds[RT_ID_MAX]; /* the interaction reserved for it
					   * or accepted by it, "" none */
	uint64_t	 elsewhere_ms;	/* taken by someone else until */
	int		 trying;	/* a reservation is on its way */
	int		 free;		/* in the free list ... */
	uint64_t	 free_since;	/* ... placed by this since_ms */
	TAILQ_ENTRY(agent) free_entry;
	const struct skill_level *skills; /* the person's (pool.c) */
	size_t		 nskills;
};
TAILQ_HEAD(agent_list, agent);

/* The free agents, longest idle first: by since_ms, then DN (the order
 * LongestIdle picks in, so its choice is the first that fits). */
extern struct agent_list pool_free;

void		 pool_start(void);
void		 pool_cleanup(void);
void		 pool_invalidate(void);	/* the configuration changed */
void		 pool_tick(void);
void		 pool_voice(struct voice_event *);
void		 pool_link(int up);
void		 pool_gap(void);
int		 pool_known(void);
struct agent	*pool_at(const char *dn);	/* NULL: none */
/* Recompute whether the agent is free (after any change to it). */
void		 pool_update(struct agent *);
/* Its reservation key is someone else's for ms more. */
void		 pool_taken(struct agent *, long long ms);
/* Calls accepted today as Redis counts them: person -> count. */
void		 pool_calls(json_t *);
int		 pool_in_agent_group(const struct agent *, json_int_t group);
int		 pool_in_place_group(json_int_t place, json_int_t group);
/* The agent's level of skill, -1 when it lacks it. */
int		 pool_level(const struct agent *, int skill);
/* Agents logged in (Ready or not) that the target could use. */
unsigned	 pool_count(const struct target *, unsigned *free_now);
/* Calls the person accepted today (from the accepted events). */
unsigned	 pool_calls_today(json_int_t person);
void		 pool_count_call(json_int_t person);

/* ---- interactions (queue.c) ---- */

enum ix_state {
	IX_QUEUED = 0,
	IX_RESERVED,
	IX_ACCEPTED,
	IX_ENDED,
};

struct vq;

struct ix {
	char		 id[RT_ID_MAX];
	struct vq	*vq;
	json_int_t	 vq_dbid;
	enum ix_state	 state;
	long long	 priority;
	uint64_t	 created_ms;
	uint64_t	 seq;		/* order of arrival, for ties */
	uint64_t	 timeout_ms;	/* absolute; 0: none */
	struct step	 steps[RT_STEPS_MAX + 1]; /* [0]: the target */
	int		 nsteps;
	json_int_t	 agent;		/* reserved/accepted: the person */
	char		 dn[RT_DN_MAX];
	uint64_t	 until_ms;	/* reservation expiry */
	json_int_t	 skip;		/* not offered to this person ... */
	uint64_t	 skip_ms;	/* ... before then */
	char		 conn[RT_CONN_MAX]; /* a routing point's call */
	char		 rp[RT_DN_MAX];
	char		*doc;		/* the interaction's JSON, as stored */
	int		 trying;	/* a reservation is on its way */
	int		 ending;	/* a timeout is on its way */
	uint64_t	 accepted_ms;
	unsigned	 version;	/* events applied to it */
	struct heap_node due;		/* its next deadline (queue.c) */
	TAILQ_ENTRY(ix)	 entry;		/* in its queue: waiting or not */
	TAILQ_ENTRY(ix)	 wentry;	/* in its queue's waiting ones */
};
TAILQ_HEAD(ix_list, ix);

/* A virtual queue: a VirtualQueue DN and what waits in it. */
struct vq {
	json_int_t	 dbid;
	char		 number[RT_DN_MAX];
	long long	 increment;	/* priority aging */
	long long	 interval;	/* s */
	struct ix_list	 list;		/* every live interaction */
	struct ix_list	 wait;		/* the queued ones, in no order */
	unsigned	 waiting;
	/* the last interactions that left the queue for an agent */
	uint64_t	 left_ms[32];	/* when */
	unsigned	 nleft;		/* ever */
	double		 handle[32];	/* accepted to completed, s */
	unsigned	 nhandle;
	json_int_t	 rr;		/* round robin: the last person given */
	struct metric	*m_waiting;
};

/* A routing event's fields as queue.c applies them (rtev.c). */
struct rtev {
	char		 type[32];
	char		 id[RT_ID_MAX];
	char		 state[32];
	char		 dn[RT_DN_MAX];
	long long	 at, created, seq, agent, until, skip, skipu;
	long long	 vq;		/* the document's */
	const char	*doc;		/* the document's text, "interaction" */
	size_t		 doclen;
};

/* The event in text (a routing event as store.c writes it): 0, or -1 when
 * it is not one this reads in place (parse it with jansson then). */
int		 rtev_parse(const char *text, size_t len, struct rtev *);
/* Where a document's field key is, with its comma: doc[*from, *to) taken
 * out leaves the document without it; -1: no such field. */
int		 rtev_doc_cut(const char *doc, size_t len, const char *key,
		    size_t *from, size_t *to);

void		 queue_start(void);
void		 queue_cleanup(void);
/* The configuration changed: the queues' settings, targets' skills. */
void		 queue_config(void);
struct vq	*queue_vq(const char *number);
struct vq	*queue_vq_dbid(json_int_t dbid);
struct ix	*queue_ix(const char *id);
/* The live interaction of a call, by its connId. */
struct ix	*queue_call(const char *conn);

/* Redis is away: what is known may be stale. */
void		 queue_reset(void);
/* The shared state read whole: calls today (person -> count) and the
 * interactions not ended (an array of their states, as events carry
 * them); events follow. */
void		 queue_load(json_t *calls, json_t *ixs);
/* A routing event from the stream (its JSON text and position). */
void		 queue_event(const char *pos, const char *text, size_t len);
/* Look for matches soon (once per turn of the loop). */
void		 queue_kick(void);
/* Agent a became free: look for its interaction soon. */
void		 queue_agent_free(struct agent *);
void		 queue_tick(void);
/* 1-based position of a waiting interaction; 0 when not waiting. */
unsigned	 queue_position(const struct ix *);
long long	 queue_effective_priority(const struct ix *, uint64_t now_ms);
const char	*ix_state_name(enum ix_state);
/* Queue a new interaction (see queue.c). */
void		 queue_create(const char *id, const char *doc, struct vq *,
		    store_cb *, void *);
/* A new interaction's document from a request body (validated): the
 * JSON text stored, or NULL with an HTTP status and why. */
char		*queue_doc(json_t *body, const char *id, int *status,
		    char *why, size_t len);

/* ---- Redis (store.c) ---- */

enum store_op {
	OP_QUEUE = 0,
	OP_RESERVE,
	OP_ACCEPT,
	OP_REJECT,
	OP_EXPIRE,	/* the reservation ran out */
	OP_END,		/* cancelled, abandoned, completed, timed out */
	OP_UPDATE,
	OP_MAX
};

void		 store_start(struct event_base *, const struct conf *);
void		 store_cleanup(void);
/* The shared state is read and followed. */
int		 store_ready(void);
const char	*store_events_key(void);
struct rds	*store_kv(void);
/* person 0: queue only; else also reserve that agent at dn, if free */
void		 store_queue(const char *id, const char *doc, json_int_t vq,
		    json_int_t person, const char *dn, store_cb *, void *);
void		 store_reserve(const char *id, json_int_t person,
		    const char *dn, store_cb *, void *);
void		 store_accept(const char *id, json_int_t person, int hold,
		    store_cb *, void *);
void		 store_reject(const char *id, json_int_t person, store_cb *,
		    void *);
void		 store_expire(const char *id, store_cb *, void *);
/* type: cancelled, abandoned, completed, timed-out; person: 0 or the
 * agent who must hold it (completed) */
void		 store_end(const char *id, const char *type, json_int_t person,
		    store_cb *, void *);
void		 store_update(const char *id, const char *doc, store_cb *,
		    void *);
/* Read one interaction as stored (also an ended one): JSON or NULL. */
typedef void	 store_get_cb(json_t *ix, int ok, void *arg);
void		 store_get(const char *id, store_get_cb *, void *);
typedef void	 store_gone_cb(const char *status, void *arg);
void		 store_gone(const char *ids, store_gone_cb *, void *);
void		 store_catch_up(void (*)(void *, int), void *);

/* ---- PostgreSQL (journal.c) ---- */

void		 journal_start(struct event_base *, const struct conf *);
void		 journal_cleanup(void);
int		 journal_ready(void);		/* its table is there */
int		 journal_drained(void);
/* A new interaction's row, before it goes to Redis: cb 1 or -1. */
void		 journal_put(const char *id, const char *doc, json_int_t vq,
		    store_cb *, void *);
void		 journal_doc(const char *id, const char *doc);
void		 journal_del(const char *id);
void		 journal_doubt(const char *id);
void		 journal_accept(const char *id, json_int_t person,
		    const char *dn);
/* Every row: [{id, doc, vq, created, agent, dn}] (agent 0: waiting),
 * oldest first; NULL: not now. */
typedef void	 journal_load_cb(json_t *rows, void *arg);
void		 journal_load(journal_load_cb *, void *);

/* ---- routing points (rp.c) ---- */

void		 rp_start(const struct conf *);
void		 rp_cleanup(void);
void		 rp_config(void);
void		 rp_voice(struct voice_event *);
/* A routing point's call was reserved an agent at dn: route it there. */
void		 rp_route(const char *conn, const char *rp, const char *dn,
		    const char *id);
/* A routing point's call waited past its timeout: its default. */
void		 rp_timed_out(const char *conn, const char *rp);

/* ---- HTTP (http.c, feed.c) ---- */

int		 rthttp_head(struct http_conn *, const struct http_request *,
		    const struct principal *);
void		 rthttp_request(struct http_conn *, const struct http_request *,
		    const struct principal *);
/* An event of interaction id was applied: answer who waited for it. */
void		 rthttp_seen(const char *id);
void		 rthttp_cleanup(void);
void		 feed_start(void);
void		 feed_cleanup(void);
void		 feed_open(struct http_conn *, const struct http_request *,
		    const struct principal *);
/* A routing event read from the stream, for the open feeds. */
void		 feed_event(const char *pos, const char *type, const char *text,
		    size_t len, json_int_t vq);
/* The state was read again, up to pos; lost: from a Redis that lost it
 * (another epoch), so the feeds' positions mean nothing any more. */
void		 feed_reset(const char *pos, int lost);
/* Ask again whether every feed's token holds (a revoked one ends it). */
void		 feed_recheck(void);

/* ---- expected wait (ewt.c) ---- */

enum ewt_kind { EWT_URS = 0, EWT_URS2, EWT_STAT };

/* Expected wait, in s, of position pos (1-based) in vq; -1: unknown. */
double		 ewt(const struct vq *, unsigned pos, enum ewt_kind);
void		 ewt_left(struct vq *, uint64_t at_ms);
void		 ewt_handled(struct vq *, double seconds);
/* The agents logged in who could take what waits in q (every agent when
 * nothing waits), and how many of them are free now. */
unsigned	 ewt_agents(const struct vq *, unsigned *free_now);

/* ---- the worker (routing.c) ---- */

struct rt_env {
	struct event_base *base;
	char		*tenant;
	char		*owner;		/* this process, for logs */
	int		 loaded;	/* the configuration is in */
	int		 stopping;
	double		 reservation_ttl;
	size_t		 user_data_max;
};
extern struct rt_env rt;

struct rt_metrics {
	struct metric	*routed, *abandoned, *timed_out, *cancelled;
	struct metric	*rejected, *expired, *time_to_route;
	struct metric	*swept;		/* journal rows left behind Redis */
};
extern struct rt_metrics rt_m;

/* ---- stats link (statlink.c) ---- */

/* The link to the local stats worker, if it is configured. */
void		 statlink_start(void);
void		 statlink_cleanup(void);
/* The virtual queues changed: open and close their statistics. */
void		 statlink_config(void);
/* Expected wait, in s, of position pos (1-based) in vq from the stats
 * worker's statistics; -1: unknown. */
double		 statlink_ewt(const struct vq *, unsigned pos);

#endif
