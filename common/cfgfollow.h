/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cfgfollow - keep a process's copy of the tenant configuration in step
 * with PostgreSQL, for every worker that caches configuration.
 *
 * It loads a consistent snapshot (every object and the revision it
 * reflects), then follows the change log from that revision.  Redis
 * pub/sub on tenantd:{<tenant>}:config only says "look now": the changes
 * themselves are always read from the change log, in revision order, so a
 * dropped message, a Redis outage or a reconnect loses nothing.  A timer
 * looks every second as well.  When the log no longer holds the next
 * revision (history pruned while we were away), it loads a new snapshot.
 */
#ifndef TENANTD_CFGFOLLOW_H
#define TENANTD_CFGFOLLOW_H

#include <jansson.h>

struct conf_redis;

struct event_base;
struct pgc;
struct cfgfollow;

enum cfg_op {
	CFG_OP_SNAPSHOT = 0,	/* an object of a (re)loaded snapshot */
	CFG_OP_CREATED,
	CFG_OP_UPDATED,
	CFG_OP_DELETED,
};

struct cfg_change {
	json_int_t	 revision;	/* the snapshot's, for CFG_OP_SNAPSHOT */
	enum cfg_op	 op;
	const char	*type;		/* "Person", ... */
	json_int_t	 dbid;
	json_t		*object;	/* borrowed; NULL for a delete */
};

struct cfgfollow_cbs {
	/* A snapshot begins: drop everything held. */
	void	(*reset)(void *arg);
	/* One object of a snapshot, or one change, in revision order. */
	void	(*change)(const struct cfg_change *, void *arg);
	/* Everything up to revision is applied (after a snapshot too). */
	void	(*synced)(json_int_t revision, void *arg);
};

/*
 * Follow the tenant's configuration using pg (shared with the caller) and
 * a Redis subscription of its own.  The first snapshot is loaded at once.
 */
struct cfgfollow *cfgfollow_new(struct event_base *, struct pgc *,
		    const struct conf_redis *, const char *tenant_id,
		    const struct cfgfollow_cbs *, void *arg);
/*
 * The same on a PostgreSQL connection of its own, made from the
 * configuration (postgres.conninfo, postgres.password_file; redis;
 * tenant.id), and freed with the follower.  NULL when the conninfo does
 * not parse.
 */
struct conf;
struct cfgfollow *cfgfollow_open(struct event_base *, const struct conf *,
		    const struct cfgfollow_cbs *, void *arg);
/*
 * Stop.  A follower made with cfgfollow_new: free its pg first, since the
 * pending callbacks still need the follower.
 */
void		 cfgfollow_free(struct cfgfollow *);
/* Look for new changes now (after a commit of our own, say). */
void		 cfgfollow_poke(struct cfgfollow *);
/*
 * Reads of the configuration that failed in a row (PostgreSQL away, the
 * tables not made yet, an error): 0 once one succeeds.  The follower
 * tries again every second.
 */
unsigned long	 cfgfollow_failures(const struct cfgfollow *);
/* The Redis channel changes are announced on; malloc'ed. */
char		*cfgfollow_channel(const char *tenant_id);

#endif
