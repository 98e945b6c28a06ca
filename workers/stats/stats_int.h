/* SPDX-License-Identifier: Apache-2.0 */
/*
 * stats_int - what the files of the stats worker share, and nothing else
 * sees: the statistic and its subscribers, the state every file reads
 * (struct stats_env), and each file's entry points.  The files:
 *
 *   stats.c        the worker: start, reload, stop, the configuration
 *                  follower, the tick
 *   session.c      sessions and requests (RequestOpen through rights)
 *   statreq.c      RequestOpenStatistic checked, pure (statreq.h)
 *   index.c        what the configuration says: persons, DNs, groups
 *   statistic.c    the open statistics, found by key and by object, fed
 *                  by the model's callbacks
 *   value.c        a statistic's value, formatted once
 *   subscribers.c  who is told what, and when
 *   agentstates.c  every agent's state in Redis (stats:agents)
 *   save.c         the snapshot and the Growing totals: saved, restored
 *   voicefeed.c    the voice events applied to the model, the link
 *   reconcile.c    the model made to agree with the voice state hash
 *   routingfeed.c  the routing worker's events applied to the model (the
 *                  virtual queues), and made to agree with its state
 *   model.c, stat.c  pure: the model, types, profiles, accumulators
 */
#ifndef TENANTD_STATS_INT_H
#define TENANTD_STATS_INT_H

#include <sys/queue.h>

#include <stdint.h>

#include <jansson.h>

#include "jwrite.h"
#include "model.h"
#include "rds.h"
#include "sess.h"
#include "stat.h"
#include "statreq.h"
#include "util.h"

#define MEDIA_MAX		8

struct event_base;
struct sess;
struct voice_event;
struct sid;
struct conf;

struct client;

/* One client's interest in a statistic. */
struct sub {
	struct client		*c;
	struct statistic	*m;
	json_int_t		 id;		/* statisticId */
	struct statreq_notify	 n;		/* how it is told */
	int			 has_last;	/* a value was sent */
	int			 last_is_num;
	double			 last_num;	/* the value last sent */
	char			*last_text;	/* or its text */
	struct event		*timer;		/* periodic */
	LIST_ENTRY(sub)		 m_entry;
	LIST_ENTRY(sub)		 c_entry;
};

/* One statistic: (object, type, profile), shared by its subscribers. */
struct statistic {
	char			*key;
	enum object_kind	 kind;
	json_int_t		 dbid;		/* 0: the tenant */
	char			*id;		/* as the client named it */
	struct stype		 t;
	struct profile		 p;
	struct acc		*acc;
	double			 next_reset;
	int			 dirty;
	uint64_t		 changed;	/* save epoch of last change */
	int			 valid;
	LIST_HEAD(, sub)	 subs;
	TAILQ_ENTRY(statistic)	 dirty_entry;
};

/* The statistics open on one object. */
struct node {
	struct statistic	**v;
	size_t			  n, cap;
};

struct client {
	struct sess		*s;		/* who it is: svc_who(s) */
	size_t			 nsubs;
	LIST_HEAD(, sub)	 subs;
};

/* Another medium of an agent, as the interaction server reports it. */
struct media {
	char	 name[32];
	char	 state[16];
	int	 interactions;
};

struct media_state {
	struct media	 v[MEDIA_MAX];
	int		 n;
};

/* A DN number as the configuration has it. */
struct dninfo {
	json_int_t	 dbid;
	json_int_t	 place;		/* the place it is in, or 0 */
	enum dn_kind	 kind;
	int		 virtual_queue;	/* a VirtualQueue: routing events */
};

/* The objects an instance counts for. */
struct targets {
	enum object_kind	 k[64];
	json_int_t		 dbid[64];
	int			 n;
};

/* A value as sent: a number, or an object's compact JSON text. */
struct value {
	int		 is_num;
	double		 num;
	const char	*text;
	struct jw	 w;
	char		 buf[256];
};

/*
 * What several files read.  Set by stats.c at start, except where a
 * field names its writer.
 */
struct stats_env {
	struct event_base	*base;
	struct rds		*kv;		/* snapshots, totals, agents */
	struct model		*model;
	int			 voice_started;	/* voicefeed.c: reading */
	int			 link_up;	/* voicefeed.c: voice link */
	int			 routing_up;	/* routingfeed.c: its stream
						 * read, the model agreeing */
	int			 model_dirty;	/* changed since the snapshot */
	double			 lag;		/* voicefeed.c; decays */
	size_t			 nsubs;		/* session.c: subscriptions */
	uint64_t		 save_epoch;	/* save.c: see there */
	struct metric		*m_notified, *m_events, *m_refused;
	struct metric		*m_routing_events;
};

extern struct stats_env stats_env;

/* now - the wall clock in seconds */
static inline double
stats_now(void)
{
	return (double)now_wall_us() / 1e6;
}

/* keeps_counting - a Growing total lives on without subscribers */
static inline int
keeps_counting(const struct statistic *m)
{
	return m->p.kind == PROF_GROWING && m->t.cat != CAT_CURRENT_STATE &&
	    m->t.cat != CAT_AGENT_STATUS;
}

/* session.c: the worker's part of common/svc's session frame */
enum sess_open	 session_open(struct sess *, json_t *req, const char **why);
void		 session_request(struct sess *, const char *name,
		    json_int_t ref, json_t *req);
void		 session_closed(struct sess *);
void		 session_rights_changed(struct sess *);

/* index.c */
void		 index_invalidate(void);
int		 index_is_stale(void);
void		 index_fresh(void);
void		 index_clear(void);
const struct dninfo *index_dn(const char *number);
enum dn_kind	 index_dn_kind(const char *number, void *arg);
json_int_t	 index_person_of_login(const char *code);
const json_t	*index_list(char prefix, json_int_t dbid);
const char	*index_eid(json_int_t person);
void		 index_each_login(void (*)(json_int_t, void *), void *);
int		 index_object_find(enum object_kind, const char *id,
		    json_int_t *dbid);
int		 index_object_exists(enum object_kind, json_int_t dbid);
void		 index_targets(const struct inst *, struct targets *);
json_t		*index_app_options(void);

/* statistic.c */
extern const struct model_cbs statistic_model_cbs;
struct statistic *statistic_get(enum object_kind, json_int_t, const char *,
		    const struct stype *, const struct profile *, int load,
		    int *created);
void		 statistic_drop(struct statistic *);
struct statistic *statistic_find(const char *key);
void		 statistic_seed(struct statistic *);
const struct node *statistic_on(enum object_kind, json_int_t);
/* Fed by the routing events (a virtual queue), not the voice events. */
int		 statistic_routed(const struct statistic *);
/* Can its value be known: the link that feeds it is up. */
int		 statistic_link_up(const struct statistic *);
void		 statistic_each(void (*)(struct statistic *, void *), void *);
void		 statistic_cleanup(void);
long		 stats_gmtoff(double t);

/* value.c */
void		 value_get(const struct statistic *, double now,
		    struct value *);
void		 value_free(struct value *);
json_t		*value_json(const struct value *, const struct statistic *);
void		 value_person_state(json_int_t person, struct jw *);
struct media_state *value_media(json_int_t person, int create);
void		 value_cleanup(void);

/* subscribers.c */
void		 subs_init(void);
void		 subs_mark(struct statistic *);
void		 subs_forget(struct statistic *);
void		 subs_schedule(void);
void		 subs_info(struct sub *, const struct value *, json_int_t ref);
void		 subs_periodic(struct sub *);
void		 subs_reset_at(double);
void		 subs_resets(double now);
void		 subs_validity(void);
void		 subs_cleanup(void);

/* agentstates.c */
void		 agents_init(const struct conf *);
void		 agents_changed(json_int_t person);
void		 agents_write(void);
rds_state_cb	 agents_kv_state;
void		 agents_cleanup(void);

/* save.c */
void		 save_init(const struct conf *);
void		 save_load(void);
void		 save_tick(uint64_t now_us);
void		 save_stop(void);
void		 save_total_load(const struct statistic *);
void		 save_total_forget(const struct statistic *);
void		 save_cleanup(void);

/* voicefeed.c */
void		 voicefeed_start(char **resume_from, int no_snapshot);
void		 voicefeed_cleanup(void);

/* routingfeed.c */
void		 routingfeed_start(const char *resume_from);
void		 routingfeed_tick(void);
/* The position the model reflects, to save; "" when none. */
const char	*routingfeed_position(void);
void		 routingfeed_cleanup(void);

/* reconcile.c */
void		 reconcile_boot(const char *, void *);
void		 reconcile_gap(int, const char *, void *);
void		 reconcile_seen(const struct voice_event *, int applied);
void		 reconcile_tick(void);
void		 reconcile_link(void);
const char	*reconcile_boot_known(void);
void		 reconcile_set_boot(const char *);
void		 reconcile_cleanup(void);

#endif
