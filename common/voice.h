/* SPDX-License-Identifier: Apache-2.0 */
/*
 * voice - a worker's side of the Redis contract with the voice platform
 * (docs/voice-redis.md), for the events and stats workers: the event
 * stream of every region, followed from the last entry read; the voice
 * link (local Redis up and the voice side's heartbeat present); requests
 * written to the local request stream; the state hash read for
 * RequestQueryAddress; ranges of a region's stream read again for a
 * client that resumes; and, for a worker that asks, when a reader may
 * have missed entries.  One per process.
 */
#ifndef TENANTD_VOICE_H
#define TENANTD_VOICE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "jscan.h"

struct event_base;
struct conf;

#define VOICE_REGIONS_MAX	9	/* local + 8 remotes */
#define VOICE_MORE_MAX		8	/* members a worker also asks for */

/*
 * What the switch does with a DN of a configuration type (the DN's
 * "type"): one classification for every part that reads voice events.
 */
enum voice_dn {
	VOICE_DN_OTHER = 0,	/* trunks, chat, ...: no agent, no queue */
	VOICE_DN_PHONE,		/* Extension, ACDPosition */
	VOICE_DN_RP,		/* RoutingPoint, VirtualRoutingPoint */
	VOICE_DN_QUEUE,		/* ACDQueue, VirtualQueue, RoutingQueue */
};
enum voice_dn	 voice_dn_kind(const char *type);

/* A stream entry id, "<ms>-<seq>", as two numbers to compare. */
struct sid {
	uint64_t	ms;
	uint64_t	seq;
};

int	 sid_parse(const char *, struct sid *);
int	 sid_cmp(const struct sid *, const struct sid *);
void	 sid_format(const struct sid *, char *, size_t);

/*
 * One event read from a region's stream: its text, checked valid, and the
 * members workers route by.  The tree (voice_event_json) is built only
 * when a worker needs more; it is freed after the callback.
 */
struct voice_event {
	int		 region;	/* index */
	struct sid	 id;
	const char	*id_text;
	const char	*raw;		/* its JSON text, as read */
	size_t		 raw_len;
	char		 name[64];	/* "": not an event (ranges) */
	char		 event_id[129];
	char		 dn[64];	/* thisDN, or "" */
	char		 request_id[64]; /* or "" */
	long long	 time_ms;
	int		 has_time;
	/* The members named to voice_read_also, in that order, found in the
	 * same pass (their types and spans; meaningless when obj was built
	 * because of escapes in the members above). */
	struct jscan_field more[VOICE_MORE_MAX];
	json_t		*obj;		/* NULL until asked for */
};

struct voice_cbs {
	/* An entry of a region's live stream, in stream order. */
	void	(*event)(struct voice_event *, void *arg);
	/* The voice link went up or down. */
	void	(*link)(int up, void *arg);
	/* The voice side's boot id (the heartbeat's value), when first seen
	 * and whenever it changes: a new one has forgotten its calls.  May
	 * be NULL. */
	void	(*boot)(const char *boot, void *arg);
};

/*
 * Be told when the live reader of a region may have missed entries: its
 * connection came back (a Redis that restarted without persistence lost
 * what it had not handed over), or entries after its position were
 * deleted (the stream trimmed past it: XINFO STREAM every second, the
 * oldest entry left, or the last one added when none is left, past the
 * position it had a second before).  Set before voice_start; arg is
 * voice_start's.  Without it nothing is checked.
 */
typedef void	 voice_gap_cb(int region, const char *why, void *arg);
void		 voice_on_gap(voice_gap_cb *);

/* Start following every region of conf; the link starts down. */
void		 voice_start(struct event_base *, const struct conf *,
		    const struct voice_cbs *, void *arg);
/* The same from given positions: from[i] is region i's stream id to read
 * after, or NULL for the end (regions in configuration order). */
void		 voice_start_from(struct event_base *, const struct conf *,
		    char *const *from, const struct voice_cbs *, void *arg);
void		 voice_stop(void);
/*
 * Could a reload apply next?  The tenant's streams are followed from
 * where they are, on connections to redis and redis.remote: those and
 * tenant.id cannot change without a restart.  0, or -1 and why (naming
 * worker).
 */
int		 voice_reload_check(const struct conf *cur,
		    const struct conf *next, const char *worker, char *why,
		    size_t len);
int		 voice_link_up(void);
/* The state of the Redis connection that carries requests to the voice
 * side (the local command connection): 0 down (or not started), 1
 * connecting, 2 up, as enum rds_state. */
int		 voice_request_state(void);
int		 voice_nregions(void);
const char	*voice_region_name(int);
int		 voice_region_index(const char *name);
/* The id of the last live entry read from a region. */
const struct sid *voice_region_position(int);

/* Also find these members of every event (at most VOICE_MORE_MAX; the
 * strings are the caller's, kept until voice_stop). */
void		 voice_read_also(const char *const *names, size_t n);
/*
 * The local region's state hash as a JSON object (DN -> its state), and
 * the id of the last entry of its event stream when the hash was so: one
 * MULTI, so the two agree.  ok 0: Redis did not answer (state NULL).
 */
typedef void	 voice_cut_cb(int ok, json_t *state, const struct sid *at,
		    void *arg);
void		 voice_state_cut(voice_cut_cb *, void *arg);
/* The id of the last entry the local region's live reader has passed
 * (also when it started at the stream's end and read none yet). */
int		 voice_read_upto(struct sid *);
/* Read the "event" field of an entry (a redisReply of its fields) into
 * ev; -1 and why when it is not an event. */
int		 voice_read_entry(const void *fields, struct voice_event *ev,
		    const char **why);
json_t		*voice_event_json(struct voice_event *);

/*
 * Write a request to the local request stream.  done gets 1 once Redis
 * took it, 0 when it could not be written.
 */
typedef void	 voice_done_cb(int ok, void *arg);
void		 voice_send(const json_t *req, voice_done_cb *, void *arg);

/* The state of dn from the state hash: json NULL when there is none;
 * ok 0 when Redis could not be asked. */
typedef void	 voice_state_cb(int ok, json_t *state, void *arg);
void		 voice_query(const char *dn, voice_state_cb *, void *arg);

/*
 * Up to count entries of a region after id (exclusive), in order; ok 0
 * when Redis could not be asked; lost 1 when entries after id have been
 * trimmed away; past 1 (and no entry) when id is after the last entry
 * ever added to the stream, so it cannot be a position it gave.  The
 * array holds n parsed events (NULL where an entry was not one),
 * borrowed until return.
 */
typedef void	 voice_range_cb(int ok, int lost, int past,
		    struct voice_event *v, size_t n, void *arg);
void		 voice_range(int region, const struct sid *after,
		    unsigned count, voice_range_cb *, void *arg);

#endif
