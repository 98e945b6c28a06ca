/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The outbound worker's files and what they share (docs/outbound.md).
 *
 *   outbound.c   the worker: start, reload, stop, migrations, the tick
 *   group.c      campaign groups: their state, kept in ocs_group_state
 *   control.c    campaign control: session requests and HTTP routes
 *   roster.c     the agents of each group, ready or not: the voice side's
 *                state hash, then its events
 *   dial.c       the dialler's pace: leases records for the calls to place
 *   call.c       the calls: placed, answered, routed to an agent, dropped
 *   outcome.c    what a result does to the record; its reports
 *   pacing.c     how many calls to place (pure)
 *   treat.c      what a call result does to a record (pure)
 *   window.c     dialling windows in a record's time zone (pure)
 *   lists.c      the calling-list tables, made and altered from the config
 *   import.c     records into a list (CSV, NDJSON) with COPY; export
 *   records.c    one record over HTTP; queries
 *   dnc.c        the do-not-call list
 *   http.c       the HTTP routes of port 5050
 *   outbox.c     reports to Kafka through ocs_outbox
 */
#ifndef TENANTD_OUTBOUND_INT_H
#define TENANTD_OUTBOUND_INT_H

#include <stdint.h>

#include <jansson.h>

#include "conf.h"
#include "pacing.h"

struct event_base;
struct pgc;
struct rds;
struct sess;
struct http_conn;
struct http_request;
struct principal;
struct cfg_change;
struct metric;

struct ob_env {
	struct event_base	*base;
	struct pgc		*pg;		/* records, groups, DNC */
	struct rds		*kv;		/* agent states */
	char			*owner;		/* this instance, on leases */
	char			*tenant;
	int			 loaded;	/* the configuration is in */
	int			 migrated;	/* our tables exist */
	int			 restored;	/* the groups' states are read */
	int			 lists_synced;	/* the lists' tables were checked */
	int			 stopping;
};
extern struct ob_env	 ob;

/* outbound.c */
const struct conf_worker *ob_conf(void);

/* group.c: campaign groups */
void		 groups_restore(void);	/* read ocs_group_state */
void		 groups_config(void);	/* the configuration changed */
void		 groups_tick(void);
void		 groups_cleanup(void);

/* group.c: a campaign group's state (docs/outbound.md) */
enum gstate {
	G_NOT_LOADED = 0,
	G_LOADED,
	G_RUNNING,
	G_STOPPING,	/* dialling stopped; calls in progress finish */
	G_UNLOADING,	/* the same, then NotLoaded */
};

/* What the dialler measured of a group, over a sliding window. */
struct figures {
	double		 dialed;	/* attempts finished */
	double		 live;		/* answered by a person */
	double		 abandoned;	/* of those, dropped or hung up */
	double		 ttc_s;		/* dial to answer, summed */
	double		 aht_s;		/* handle time with an agent, summed */
	double		 handled;	/* calls handle time was measured on */
	double		 busy_s;	/* agent-seconds busy, since the cut */
	double		 avail_s;	/* agent-seconds logged in */
	double		 wait_s;	/* answer to agent, summed */
	uint64_t	 total_dialed;	/* since load */
	uint64_t	 total_live;
	uint64_t	 total_abandoned;
	uint64_t	 total_cut;	/* hung up ringing (predictive) */
};

struct group {
	json_int_t	 dbid;
	enum gstate	 state;
	char		 mode[24];		/* dialMode */
	char		 optimize_by[24];
	int		 optimize_goal;
	int		 auto_completion;
	int		 writing;	/* a state change is being written */
	/* the dialler's */
	unsigned	 dialing;	/* placed, no outcome yet */
	unsigned	 waiting;	/* answered, no agent yet */
	unsigned	 connected;	/* with an agent or the IVR */
	unsigned	 leasing;	/* records asked for */
	double		 k;		/* predictive: the pacing gain */
	json_int_t	 left;		/* Ready records in its lists, -1:
					   not counted yet */
	uint64_t	 empty_ms;	/* no dialable record found since */
	uint64_t	 next_lease_ms;	/* not before */
	unsigned	 list_turn;	/* shares: where the rotation is */
	struct figures	 fig;
	struct figures	 ctl;		/* the gain's longer memory */
	struct figures	 base;		/* fig after its last decay */
	struct pace_samples samples;	/* recent calls' dial phases */
	uint64_t	 paced_from_ms;	/* its first pacing since loaded */
	uint64_t	 unhealthy;	/* a reason bit counted already */
	struct metric	*m_calls, *m_rate, *m_hit, *m_abandon;
};

/* A change is written: g is the group now (NULL: not loaded), or err
 * (a session error code) and why say why it was not. */
typedef void	 group_done_cb(struct group *g, const char *err,
		    const char *why, void *arg);
void		 group_change(const struct group *next, const char *reason,
		    group_done_cb *, void *);
json_t		*group_describe(json_int_t dbid);
struct group	*groups_get(json_int_t dbid);	/* NULL: not loaded */
/* every loaded group, for the dialler */
void		 groups_each(void (*)(struct group *, void *), void *);
const char	*group_state_name(enum gstate);
/* The dialler finished a group's last call in progress. */
void		 groups_idle(struct group *);
/* No dialable record is left in the group's lists. */
void		 groups_exhausted(struct group *);

/* agents.c: who is ready, per agent group */
struct agent {
	char		 dn[64];
	char		 login[64];
	json_int_t	 person;	/* 0: unknown */
	int		 ready;
	int		 ncalls;
	char		 conns[4][24];
	uint64_t	 since_ms;	/* idle, on calls, or wrapping up,
					   since */
	int		 reserved;	/* a call is being routed to it */
	int		 wrap;		/* NotReady in AfterCallWork */
	uint64_t	 elsewhere_ms;	/* another instance's until then */
};
struct roster_count {
	unsigned	 logged_in;
	unsigned	 ready;		/* Ready, no call, not reserved */
	unsigned	 busy;		/* on a call or reserved */
	unsigned	 not_ready;
	uint64_t	 busy_ms;	/* summed time on the current calls */
};
struct voice_event;
void		 roster_start(const struct conf *);
void		 roster_invalidate(void);	/* the config changed */
void		 roster_tick(void);
void		 roster_cleanup(void);
void		 roster_link(int up);
void		 roster_gap(void);
void		 roster_voice(struct voice_event *);
int		 roster_known(void);
void		 roster_count(json_int_t agent_group, struct roster_count *);
struct agent	*roster_take(json_int_t agent_group);
struct pace_plan;
/* Add the group's agents to a predictive forecast (pacing.c). */
void		 roster_plan(json_int_t agent_group, struct pace_plan *);
void		 roster_untake(struct agent *);
int		 roster_in_group(json_int_t person, json_int_t agent_group);

/* dial.c: the dialler */
void		 dial_start(const struct conf *);
void		 dial_tick(void);
void		 dial_stop(void);
void		 dial_cleanup(void);
void		 dial_voice(struct voice_event *);
struct call;
/* The record was not dialled: Ready again (queued until PostgreSQL
 * answers: written by dial_givebacks_flush every tick; leasing waits
 * while dial_givebacks_pending); the call is freed. */
void		 dial_giveback(struct call *);
int		 dial_givebacks_pending(void);
void		 dial_givebacks_flush(void);
void		 dial_givebacks_clear(void);
/* Force-unload: forget the group's calls, give their records back. */
void		 dial_forget(struct group *);

/* lists.c: the tables of the calling lists */
void		 lists_sync(void);		/* after the config changed */
/* The list's table name, quoted for SQL, when the table exists with the
 * list's columns, else NULL (not made yet, or being altered). */
const char	*lists_table(json_int_t list);
/* The name of the list's customer-id column (quoted), or NULL when its
 * format has no such field (workers.outbound.customer_id_field). */
const char	*lists_customer_column(json_int_t list);
void		 lists_cleanup(void);

/* http.c: a request on 5050 (common/svc.c checked its token) */
int		 obhttp_head(struct http_conn *, const struct http_request *,
		    const struct principal *);
void		 obhttp_request(struct http_conn *, const struct http_request *,
		    const struct principal *);

/* control.c: campaign control */
void		 control_request(struct sess *, const char *name,
		    json_int_t ref, json_t *req);
/* POST /v1/campaign-groups/{dbid}/{action} (body: the request's fields)
 * and GET /v1/campaign-groups/{dbid} (action NULL) */
void		 control_http(struct http_conn *, const struct principal *,
		    json_int_t group, const char *action, json_t *body);
void		 control_closed(struct sess *);
/* Tell the sessions that watch the group (ev is borrowed). */
void		 control_broadcast(json_int_t group, const json_t *ev);

#endif
