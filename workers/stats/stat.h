/* SPDX-License-Identifier: Apache-2.0 */
/*
 * stat - statistic types, time profiles, and the accumulator that turns
 * the action instances of the model into a value (docs/stats.md).  Pure:
 * time is always passed in, in seconds since the epoch.
 */
#ifndef TENANTD_STATS_STAT_H
#define TENANTD_STATS_STAT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "model.h"

enum category {
	CAT_CURRENT_STATE = 0,
	CAT_CURRENT_NUMBER,
	CAT_CURRENT_MAX_TIME,
	CAT_TOTAL_NUMBER,
	CAT_TOTAL_TIME,
	CAT_AVERAGE_TIME,
	CAT_MAX_TIME,
	CAT_SERVICE_FACTOR,
	CAT_AGENT_STATUS,
	CAT_ESTIM_WAIT_TIME,
	CAT_COUNT
};

/* The kinds of object a statistic is about. */
enum object_kind {
	OBJ_AGENT = 0,
	OBJ_PLACE,
	OBJ_AGENT_GROUP,
	OBJ_PLACE_GROUP,
	OBJ_QUEUE,
	OBJ_RP,
	OBJ_DN_GROUP,
	OBJ_TENANT,
	OBJ_COUNT
};

#define OB(k)		(1u << (k))
#define OB_AGENTS	(OB(OBJ_AGENT) | OB(OBJ_PLACE))
#define OB_AGROUPS	(OB(OBJ_AGENT_GROUP) | OB(OBJ_PLACE_GROUP) | OB(OBJ_TENANT))
#define OB_QUEUES	(OB(OBJ_QUEUE) | OB(OBJ_DN_GROUP) | OB(OBJ_TENANT))
#define OB_ALL		((1u << OBJ_COUNT) - 1)

struct stype {
	char		 name[64];
	enum category	 cat;
	uint32_t	 actions;	/* bits of enum action */
	int		 per;		/* an action, or -1 */
	double		 threshold;	/* ServiceFactor */
	char		 filter_key[64];	/* userData.<key>=<val> */
	char		 filter_val[128];
	char		 media[16];	/* "" or "voice": voice; else none */
	unsigned	 objects;	/* OB bits */
};

enum profile_kind { PROF_GROWING = 0, PROF_SLIDING, PROF_SINCE_LOGIN };

#define PROFILE_RESETS_MAX	8

struct profile {
	enum profile_kind kind;
	double		 window;	/* Sliding */
	double		 step;
	int		 resets[PROFILE_RESETS_MAX];	/* minutes after 00:00 */
	int		 nresets;
};

int		 object_kind_by_name(const char *);
/* The enum cfg_kind read to open its statistics; -1 for no such kind. */
int		 object_cfg_kind(enum object_kind);

/* The shipped types. */
size_t		 stype_builtins(const struct stype **);
const struct stype *stype_builtin(const char *name);
/*
 * A type from JSON: an inline definition, or an options section (all
 * values strings or numbers).  -1 and why on error.
 */
int		 stype_parse(const json_t *def, const char *name,
		    struct stype *, char *why, size_t);
json_t		*stype_json(const struct stype *);

int		 profile_parse(const json_t *, struct profile *, char *why,
		    size_t);
/* A short text naming the profile: equal profiles, equal text, in a
 * buffer of PROFILE_KEY_MAX (the longest, "G" and 8 resets, takes 41);
 * in a shorter one, only the parts that fit whole. */
#define PROFILE_KEY_MAX		64
void		 profile_key(const struct profile *, char *, size_t);
/* The profile as profile_parse takes it. */
json_t		*profile_json(const struct profile *);
/* The next reset of a Growing profile after t; gmtoff: the time zone's
 * offset from UTC at t, in seconds.  0 when it never resets. */
double		 profile_next_reset(const struct profile *, double t,
		    long gmtoff);
/* When the period holding t began: a Growing profile's last reset at or
 * before t (0: it never resets); t for the others. */
double		 profile_period_start(const struct profile *, double t,
		    long gmtoff);

struct acc;

struct acc	*acc_new(const struct stype *, const struct profile *,
		    double now);
/* When the accumulator began to count (default: its period's start):
 * what happened before is not in its totals (EstimWaitTime). */
void		 acc_born(struct acc *, double t);
void		 acc_free(struct acc *);
/* Does the accumulator look at this instance (action, filters)? */
int		 acc_wants(const struct acc *, const struct inst *);
void		 acc_start(struct acc *, const struct inst *);
void		 acc_end(struct acc *, const struct inst *, double end);
void		 acc_instant(struct acc *, const struct inst *,
		    double duration);
double		 acc_value(const struct acc *, double now);
/* Start a new period at now: what completed is forgotten, what runs
 * counts from now. */
void		 acc_reset(struct acc *, double now);
double		 acc_period_start(const struct acc *);
size_t		 acc_ongoing(const struct acc *);
/* The completed part, to keep over a restart. */
json_t		*acc_save(const struct acc *);
int		 acc_load(struct acc *, const json_t *);

#endif
