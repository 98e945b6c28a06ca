/* SPDX-License-Identifier: Apache-2.0 */
/*
 * events_int - what the files of the events worker share, and nothing
 * else sees: a client and what waits for Redis on its behalf, the state
 * every file reads (struct events_env), and each file's entry points.
 * The files:
 *
 *   events.c   the worker: start, stop, sessions (through common/svc),
 *              the requests and their answers
 *   fanout.c   the voice events: de-duplicated, matched to the request
 *              that asked for them, sent to every client registered on
 *              their DN; the registrations; the voice link
 *   resume.c   a client that comes back gets what it missed
 *   ghosts.c   agents a client logged in, logged out once it is gone
 *   request.c  call and agent requests checked, pure (request.h)
 */
#ifndef TENANTD_EVENTS_INT_H
#define TENANTD_EVENTS_INT_H

#include <sys/queue.h>

#include <stdint.h>

#include <jansson.h>

#include "auth.h"
#include "request.h"
#include "voice.h"

struct event_base;
struct metric;
struct sess;

#define SEEN_MAX		65536	/* event ids remembered for de-dup */
#define RESUME_SEEN_MAX		8192	/* per resumed client */
#define REPLAY_BATCH		500
#define REQUEST_TIMEOUT_S	10
#define SWEEP_MS		1000
#define DN_MAX			(EVREQ_DN_MAX + 1)

/* Something that waits for Redis on behalf of a client. */
enum op_kind { OP_SEND, OP_QUERY, OP_REPLAY };

struct op {
	enum op_kind		 kind;
	struct client		*c;		/* NULL once the client left */
	json_int_t		 ref;
	char			 dn[DN_MAX];
	/* OP_SEND: the request, then waiting for the answering event */
	char			 request_id[48];
	char			*name;
	uint64_t		 deadline_us;
	int			 sent;
	TAILQ_ENTRY(op)		 client_entry;
	TAILQ_ENTRY(op)		 pending_entry;	/* OP_SEND once sent */
};
TAILQ_HEAD(op_list, op);

/* An agent a client logged in, logged out for it if it goes away. */
struct login {
	char		 dn[DN_MAX];
	char		 agent[128];
};

struct client {
	struct sess		*s;
	int			 open;
	int			 held;		/* waits for RequestResume */
	int			 live[VOICE_REGIONS_MAX]; /* replayed: live */
	int			 replaying;
	int			 region;	/* replaying this one */
	json_int_t		 resume_ref;
	size_t			 replayed;
	int			 lost[VOICE_REGIONS_MAX];
	struct sid		 cursor[VOICE_REGIONS_MAX];
	int			 has_cursor[VOICE_REGIONS_MAX];
	struct seen		*resumed;	/* ids replayed, for de-dup */
	char			**dns;		/* registered */
	size_t			 ndns;
	struct login		*logins;
	size_t			 nlogins;
	struct op_list		 ops;
	TAILQ_ENTRY(client)	 entry;
};
TAILQ_HEAD(client_list, client);

/* The clients registered on one DN (regs: DN number -> reg). */
struct reg {
	struct client	**v;
	size_t		  n;
};

/* An agent whose client left without logging it out. */
struct ghost {
	struct login		 l;
	struct principal	 who;
	struct event		*timer;
	TAILQ_ENTRY(ghost)	 entry;
};
TAILQ_HEAD(ghost_list, ghost);

/* What every file of the worker reads. */
struct events_env {
	struct event_base	*base;
	struct seen		*seen;		/* event ids delivered, de-dup */
	struct client_list	 clients;	/* sessions open */
	struct op_list		 pending;	/* sent, the answer awaited */
	struct metric		*m_received, *m_delivered, *m_dups,
				*m_requests, *m_errors, *m_link, *m_lag,
				*m_ghosts, *m_replayed;
};
extern struct events_env events_env;

/* events.c */
struct op	*ev_op_new(struct client *, enum op_kind, json_int_t ref);
void		 ev_op_done(struct op *);
void		 ev_request_id(char *, size_t, const char *tag);

/* fanout.c */
void		 ev_on_voice_event(struct voice_event *, void *);
void		 ev_on_link(int up, void *);
json_t		*ev_prepared(struct voice_event *, int *done);
int		 ev_registered(const struct client *, const char *dn);
void		 ev_reg_add(struct client *, const char *dn);
void		 ev_reg_remove(struct client *, const char *dn);
void		 ev_regs_clear(void);

/* resume.c */
void		 ev_resume(struct client *, json_int_t ref);

/* ghosts.c */
void		 ev_login_note(struct client *, const char *dn,
		    const char *agent);
void		 ev_login_forget(const char *dn, const char *agent);
void		 ev_haunt(struct client *);
void		 ev_adopt(struct client *, const char *dn);
void		 ev_ghosts_clear(void);

#endif
