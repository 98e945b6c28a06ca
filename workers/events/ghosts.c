/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ghosts - agents a client logged in: when the client goes away without
 * logging them out, they are logged out for it after logout_grace, unless
 * a client of the same principal registers the DN first (a desktop that
 * reconnects keeps its agent).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/event.h>

#include "events_int.h"
#include "log.h"
#include "metrics.h"
#include "seen.h"
#include "sess.h"
#include "strmap.h"
#include "svc.h"
#include "util.h"
#include "voice.h"
#include "worker.h"

static struct ghost_list	 ghosts = TAILQ_HEAD_INITIALIZER(ghosts);

static void	on_ghost(evutil_socket_t, short, void *);
static void	ghost_sent(int, void *);
static void	ghost_free(struct ghost *);

/* ev_haunt - c left: its agents get logged out unless someone takes them */
void
ev_haunt(struct client *c)
{
	struct timeval	 tv;
	struct ghost	*gh;
	size_t		 i;

	tv = util_tv(worker_conf()->workers[WORKER_EVENTS].logout_grace);
	for (i = 0; i < c->nlogins; i++) {
		gh = xcalloc(1, sizeof(*gh));
		gh->l = c->logins[i];
		gh->who = *svc_who(c->s);
		gh->timer = evtimer_new(events_env.base, on_ghost, gh);
		evtimer_add(gh->timer, &tv);
		TAILQ_INSERT_TAIL(&ghosts, gh, entry);
	}
}

/* ev_adopt - a client of the same principal registers the DN: it is back */
void
ev_adopt(struct client *c, const char *dn)
{
	struct ghost	*gh, *ngh;

	for (gh = TAILQ_FIRST(&ghosts); gh != NULL; gh = ngh) {
		ngh = TAILQ_NEXT(gh, entry);
		if (strcmp(gh->l.dn, dn) != 0 ||
		    gh->who.kind != svc_who(c->s)->kind ||
		    gh->who.dbid != svc_who(c->s)->dbid)
			continue;
		c->logins = xrealloc(c->logins, (c->nlogins + 1) *
		    sizeof(*c->logins));
		c->logins[c->nlogins++] = gh->l;
		ghost_free(gh);
	}
}

/* ev_login_note - c logged agent in on dn: it answers for it */
void
ev_login_note(struct client *c, const char *dn, const char *agent)
{
	ev_login_forget(dn, NULL);
	c->logins = xrealloc(c->logins, (c->nlogins + 1) * sizeof(*c->logins));
	snprintf(c->logins[c->nlogins].dn, DN_MAX, "%s", dn);
	snprintf(c->logins[c->nlogins].agent, 128, "%s", agent);
	c->nlogins++;
}

/* ev_login_forget - agent (or any, NULL) on dn is no one's now */
void
ev_login_forget(const char *dn, const char *agent)
{
	struct client	*c;
	struct ghost	*gh, *ngh;
	size_t		 i;

	TAILQ_FOREACH(c, &events_env.clients, entry)
		for (i = 0; i < c->nlogins; i++)
			if (strcmp(c->logins[i].dn, dn) == 0 && (agent == NULL ||
			    strcmp(c->logins[i].agent, agent) == 0))
				c->logins[i--] = c->logins[--c->nlogins];
	for (gh = TAILQ_FIRST(&ghosts); gh != NULL; gh = ngh) {
		ngh = TAILQ_NEXT(gh, entry);
		if (strcmp(gh->l.dn, dn) == 0)
			ghost_free(gh);
	}
}

/* on_ghost - the grace period is over: log the agent out */
static void
on_ghost(evutil_socket_t fd, short what, void *arg)
{
	struct ghost	*gh = arg;
	json_t		*req;
	char		 id[64];

	ev_request_id(id, sizeof(id), "g");
	log_info("agent %s on DN %s: its client left %.0f s ago without "
	    "logging out; logging it out", gh->l.agent, gh->l.dn,
	    worker_conf()->workers[WORKER_EVENTS].logout_grace);
	req = json_pack("{s:s, s:s, s:s, s:s, s:s}", "request",
	    "RequestAgentLogout", "requestId", id, "dn", gh->l.dn, "agentId",
	    gh->l.agent, "reason", "ClientGone");
	voice_send(req, ghost_sent, NULL);
	json_decref(req);
	metric_inc(events_env.m_ghosts);
	ghost_free(gh);
}

static void
ghost_sent(int ok, void *arg)
{
	if (!ok)
		log_warnx("could not ask the voice side for a ghost logout: "
		    "Redis is unreachable");
}

static void
ghost_free(struct ghost *gh)
{
	TAILQ_REMOVE(&ghosts, gh, entry);
	event_free(gh->timer);
	free(gh);
}

/* ev_ghosts_clear - every ghost, at exit */
void
ev_ghosts_clear(void)
{
	while (!TAILQ_EMPTY(&ghosts))
		ghost_free(TAILQ_FIRST(&ghosts));
}
