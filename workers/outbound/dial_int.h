/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the dialler's three files share: dial.c (pace and leases), call.c
 * (the calls), outcome.c (what a result does).
 */
#ifndef TENANTD_OB_DIAL_INT_H
#define TENANTD_OB_DIAL_INT_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <jansson.h>

#include "strmap.h"

struct event;
struct group;
struct agent;
struct metric;
struct voice_event;

enum call_state {
	C_DIALING,	/* placed, no outcome yet */
	C_WAITING,	/* a person answered; no agent yet */
	C_ROUTING,	/* being routed to an agent or the IVR */
	C_CONNECTED,	/* with an agent or the IVR */
};

/* One attempt: a record leased and dialled. */
struct call {
	char		 guid[37];
	char		 request[48];	/* its requestId */
	char		 conn[24];	/* its connId, once dialled */
	json_int_t	 group;
	json_int_t	 campaign;
	json_int_t	 list;
	json_int_t	 record;
	json_int_t	 chain;
	json_int_t	 tz;		/* the record's zone, 0: the list's */
	int		 attempt;
	int		 phone_type;
	char		 phone[129];
	char		 orig[64];	/* the origination DN */
	char		*history;	/* its treatments column */
	char		 mode[24];
	enum call_state	 state;
	uint64_t	 dialed_ms;
	uint64_t	 answered_ms;
	uint64_t	 connected_ms;
	struct agent	*agent;		/* reserved, while routing */
	char		 agent_dn[64];
	char		 agent_id[64];
	struct event	*timer;		/* abandon timeout */
	int		 cut;		/* hung up by the dialler, unanswered */
	json_t		*held;		/* being adopted: its events meanwhile */
};

struct dial_metrics {
	struct metric	*dialed, *live, *abandoned;
};

/* dial.c */
extern struct dial_metrics dial_m;
void		 dial_unhealthy(struct group *, unsigned bit, const char *why);
/* The IANA name of a record's zone: its own, the list's, the tenant's,
 * else UTC (a static buffer). */
const char	*dial_zone(json_int_t tz, json_int_t list);

/* call.c */
extern struct strmap dial_calls;	/* requestId -> call */
extern struct strmap dial_conns;	/* connId -> call */
void		 call_place(struct call *);
/* Hang up a call still ringing (predictive: more answers due than
 * agents); its record's result is No Answer. */
void		 call_cut(struct call *);
void		 call_free(struct call *);
/* An answered call waits for an agent: its abandon timer runs. */
void		 call_wait(struct call *);

/* adopt.c: the calls a killed worker of this host left */
void		 adopt_cut(json_t *voice_state);
void		 adopt_event(json_t *);		/* takes it */
int		 adopt_hold(struct call *, struct voice_event *);
void		 call_connect_waiting(struct group *, void *);
void		 call_on_voice(struct voice_event *, void *);
void		 call_on_link(int, void *);
void		 call_on_gap(int, const char *, void *);
struct cobj;
/* A DN object's number into out: 0, or -1 when it is no enabled DN. */
int		 dial_dn_number(const struct cobj *, char *out, size_t len);

/* outcome.c */
void		 call_finish(struct call *, int result);
json_t		*call_report(const struct call *, const char *phase);
unsigned	 outcomes_pending(void);
void		 outcomes_cleanup(void);

#endif
