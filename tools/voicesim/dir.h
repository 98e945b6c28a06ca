/* SPDX-License-Identifier: Apache-2.0 */
/*
 * dir - the voice simulator's view of the tenant configuration: switches,
 * DNs, agent logins, persons and places, kept in step with the changes
 * cfgfollow hands over.  Pure: no I/O, so the unit tests drive it directly.
 */
#ifndef VOICESIM_DIR_H
#define VOICESIM_DIR_H

#include <stddef.h>

#include <jansson.h>

#include "voice.h"

struct dir_dn {
	json_int_t	 dbid;
	char		*number;
	enum voice_dn	 kind;
	json_int_t	 sw;		/* the switch's dbid */
	json_int_t	 vq;		/* its virtualQueue's dbid; 0: none */
};

/* An agent the traffic generator may log in: login code and its DN. */
struct dir_agent {
	json_int_t	 person;
	const char	*login;
	const char	*dn;
};

struct dir;

struct dir	*dir_new(void);
void		 dir_free(struct dir *);
/* Forget everything (a snapshot begins). */
void		 dir_reset(struct dir *);
/* Apply one object of a snapshot or one change; type as in the change log
 * ("DN", ...), obj NULL for a delete.  Other types are ignored. */
void		 dir_apply(struct dir *, const char *type, json_int_t dbid,
		    const json_t *obj);

/* The enabled DN with that number (the lowest dbid if several switches
 * have it), or NULL. */
const struct dir_dn *dir_dn(const struct dir *, const char *number);
/* Is login an enabled AgentLogin code of switch sw? */
int		 dir_login_ok(const struct dir *, const char *login,
		    json_int_t sw);
/* The enabled DNs of one kind, in dbid order: n-th one, or NULL. */
const struct dir_dn *dir_nth(const struct dir *, enum voice_dn, size_t n);
size_t		 dir_count(const struct dir *, enum voice_dn);
/* Is dn a routing point that tenantd's routing worker routes (one with a
 * virtualQueue)?  Its calls wait there for RequestRouteCall. */
int		 dir_routed(const struct dir_dn *dn);
/* The first queue of switch sw (lowest dbid), or NULL. */
const struct dir_dn *dir_first_queue(const struct dir *, json_int_t sw);
/*
 * Agents in person dbid order: enabled persons with isAgent, an enabled
 * agent login, and a place holding a phone DN of the login's switch.
 * Fills up to max; returns how many there are in all.  The strings are
 * borrowed until the next change.
 */
size_t		 dir_agents(const struct dir *, struct dir_agent *, size_t max);

#endif
