/* SPDX-License-Identifier: Apache-2.0 */
/*
 * statreq - a RequestOpenStatistic checked before anything is opened: its
 * object, statistic, profile and notification mode (docs/stats.md), each
 * error with the code and message the client gets.  Pure: the object is
 * looked up through a callback, the stats Application's options are
 * passed in; rights and the worker's limits are the caller's.
 */
#ifndef TENANTD_STATS_STATREQ_H
#define TENANTD_STATS_STATREQ_H

#include <jansson.h>

#include "stat.h"

enum notify_mode { NM_CHANGES = 0, NM_PERIODIC, NM_RESET, NM_NONE };

struct statreq_notify {
	enum notify_mode	 mode;
	double			 insensitivity;	/* percent (changes) */
	double			 interval;	/* seconds (periodic) */
};

/* A request that passed: what to open. */
struct statreq {
	enum object_kind	 kind;
	const char		*otype;		/* borrowed from the request */
	const char		*oid;		/* the same; NULL: the tenant */
	json_int_t		 dbid;		/* 0: the tenant */
	struct stype		 t;
	struct profile		 p;
	struct statreq_notify	 n;
};

/* Why it did not: the error's code and message. */
struct statreq_err {
	const char	*code;		/* UnknownObject, BadProfile, ... */
	char		 msg[512];
};

/* The object a client names: 0 and its dbid, or -1 when there is none.
 * The tenant is never asked for. */
typedef int statreq_find_fn(enum object_kind, const char *id,
    json_int_t *dbid, void *arg);

/*
 * The request's object: its kind, and its dbid by find.  0, or -1 and
 * UnknownObject in *err.
 */
int	statreq_object(const json_t *req, statreq_find_fn *find, void *arg,
	    struct statreq *, struct statreq_err *err);
/*
 * The rest, once the object is known (r->kind, r->otype): the statistic
 * (a shipped type, a section "stat:<name>" of options, which may be NULL,
 * or an inline definition), the profile and the notification mode.  0,
 * or -1 and UnknownStatistic, BadArgument, NotApplicable, BadProfile or
 * BadNotify in *err.
 */
int	statreq_statistic(const json_t *req, const json_t *options,
	    struct statreq *, struct statreq_err *err);
/* Both, in that order (the worker checks rights between the two). */
int	statreq_check(const json_t *req, const json_t *options,
	    statreq_find_fn *find, void *arg, struct statreq *,
	    struct statreq_err *err);
#endif
