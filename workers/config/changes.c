/* SPDX-License-Identifier: Apache-2.0 */
/*
 * changes - the change log as clients read it (docs/config-api.md,
 * "Changes"), and the requests that wait for the cache:
 *
 *   GET /v1/changes?since=R            one page, read from PostgreSQL
 *   GET /v1/changes?since=R&wait=S     a long poll, parked until the cache
 *                                      passes R or S seconds go by
 *   Accept: application/x-ndjson       a stream: one change per line, read
 *                                      in batches each time the cache
 *                                      moves on
 *
 * A committed write is parked here too, until the cache holds its
 * revision (read your writes).  changes_wake runs each time the follower
 * moves the cache on, and answers every parked request it now satisfies.
 * The cache holds only current objects, so the log itself is always read
 * from PostgreSQL, filtered by the principal's rights at each read.  A
 * stream outlives its token's check: changes_recheck looks each stream's
 * token up again (through its refreshes), and ends the stream of a token
 * revoked or logged out, or of a principal disabled or deleted.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <libpq-fe.h>

#include "access.h"
#include "cache.h"
#include "config_int.h"
#include "log.h"
#include "pgc.h"
#include "rights.h"
#include "util.h"

#define WAIT_MAX_S		60

/* A request parked until the cache reaches a revision. */
struct parked {
	TAILQ_ENTRY(parked)	 entry;
	struct cfgw		*w;
	struct http_conn	*conn;
	json_int_t		 revision;	/* write: wait for; poll: since */
	json_int_t		 dbid;		/* write: the object answered */
	int			 status;	/* write: 200, 201 or 204 */
	int			 limit;		/* poll */
	int			 is_poll;
	char			*answer;	/* write: a body of its own */
	struct principal	 who;		/* poll */
	struct event		*ev_timeout;
};

/*
 * A client following the change log forever: one JSON change per line.
 * A stream is read in batches from PostgreSQL when the cache moves on;
 * it may outlive its connection while a query is out (dead is then set).
 */
struct stream {
	TAILQ_ENTRY(stream)	 entry;
	struct cfgw		*w;
	struct http_conn	*conn;
	struct principal	 who;
	json_int_t		 sent;		/* last revision passed on */
	int			 started;	/* headers sent */
	int			 busy;		/* a query is out */
	int			 again;
	int			 dead;
	char			*token;		/* to ask again; NULL: admin */
	struct stream_check	*check;		/* a token lookup out */
};

/* A stream's token being looked up; outlives the stream if it must. */
struct stream_check {
	struct stream	*st;		/* NULL: the stream is gone */
};

/* One page of the change log being read for a client. */
struct changes_q {
	struct http_conn	*conn;
	json_int_t		 since;
	int			 limit;
	struct principal	 who;
};

static void	changes_query(struct cfgw *, struct http_conn *,
		    const struct principal *, json_int_t, int);
static void	park(struct cfgw *, struct http_conn *, int, json_int_t,
		    json_int_t, int, int, int, const struct principal *);
static void	parked_free(struct parked *);
static void	on_parked_timeout(evutil_socket_t, short, void *);
static void	stream_start(struct cfgw *, struct http_conn *,
		    const struct principal *, json_int_t, const char *);
static void	stream_pump(struct stream *);
static void	stream_free(struct stream *);
static void	wake_streams(struct cfgw *);

/*
 * Changes after $1, at most $2, with the oldest and latest revisions.
 * Scalar subqueries, not a join: before cfg_revision is first analyzed the
 * planner guesses it large, and a join would cost enough to be compiled
 * by PostgreSQL's JIT on every read (10 ms each).
 */
static const char changes_sql[] =
    "SELECT c.revision, c.op, c.type, c.dbid, c.object::text,"
    " (SELECT min(revision) FROM cfg_change),"
    " (SELECT revision FROM cfg_revision WHERE id = 1) "
    "FROM (SELECT 1) one LEFT JOIN LATERAL ("
    " SELECT * FROM cfg_change WHERE revision > $1::bigint"
    " ORDER BY revision LIMIT $2::integer) c ON true "
    "ORDER BY c.revision";

/* changes_get - GET /v1/changes?since=R[&wait=S][&limit=N] */
void
changes_get(struct cfgw *w, struct http_conn *c, const struct http_request *r,
    const struct principal *who)
{
	const char	*v2;
	size_t		 alen;
	json_int_t	 since = 0, n = 0;
	int		 wait_s, limit;
	char		 tok[AUTH_TOKEN_LEN + 1];

	if (read_number_param(c, r, "since", 0, CFG_DBID_MAX, &since) == -1 ||
	    read_number_param(c, r, "wait", 0, WAIT_MAX_S, &n) == -1)
		return;
	wait_s = (int)n;
	n = CHANGES_LIMIT;
	if (read_number_param(c, r, "limit", 1, CHANGES_LIMIT, &n) == -1)
		return;
	limit = (int)n;
	if ((v2 = http_header(r, "Accept", &alen)) != NULL && alen >= 20 &&
	    memmem(v2, alen, "application/x-ndjson", 20) != NULL) {
		v2 = http_header(r, "Authorization", &alen);
		if (who->kind != PRINCIPAL_ADMIN && v2 != NULL &&
		    alen == 7 + AUTH_TOKEN_LEN) {
			snprintf(tok, sizeof(tok), "%.*s", AUTH_TOKEN_LEN,
			    v2 + 7);
			stream_start(w, c, who, since, tok);
			explicit_bzero(tok, sizeof(tok));
		} else
			stream_start(w, c, who, since, NULL);
	}
	else if (wait_s > 0 && since >= w->revision)
		park(w, c, 1, since, 0, 200, limit, wait_s, who);
	else
		changes_query(w, c, who, since, limit);
}

/*
 * changes_park_write - a committed write answers once the cache holds
 * rev: the object (status 200 or 201), 204, or answer when given (taken).
 */
void
changes_park_write(struct cfgw *w, struct http_conn *c, json_int_t rev,
    json_int_t dbid, int status, char *answer)
{
	park(w, c, 0, rev, dbid, status, 0, WRITE_WAIT_S, NULL);
	TAILQ_LAST(&w->parked, parked_list)->answer = answer;
}

/* changes_wake - the cache moved on: answer all it now satisfies */
void
changes_wake(struct cfgw *w)
{
	struct parked		*p, *next;
	const struct cobj	*o;

	wake_streams(w);
	for (p = TAILQ_FIRST(&w->parked); p != NULL; p = next) {
		next = TAILQ_NEXT(p, entry);
		if (p->is_poll ? w->revision <= p->revision :
		    w->revision < p->revision)
			continue;
		if (p->is_poll)
			changes_query(w, p->conn, &p->who, p->revision,
			    p->limit);
		else if (p->answer != NULL)
			reply_json(p->conn, p->status, NULL, p->answer,
			    strlen(p->answer));
		else if (p->status == 204)
			http_respond(p->conn, 204, NULL, NULL, NULL, 0);
		else if ((o = cache_get(p->dbid)) != NULL)
			reply_object(p->conn, p->status, o);
		else
			reply_error(p->conn, 409, "Deleted", NULL, "object "
			    "%lld was deleted by a later change",
			    (long long)p->dbid);
		parked_free(p);
	}
}

/* changes_writes_parked - committed writes still waiting for the cache */
size_t
changes_writes_parked(const struct cfgw *w)
{
	const struct parked	*p;
	size_t			 n = 0;

	TAILQ_FOREACH(p, &w->parked, entry)
		n += !p->is_poll;
	return n;
}

/*
 * changes_stop - a graceful stop: end the streams that have started and
 * wait for no query; answer the long polls at once with what there is.
 */
void
changes_stop(struct cfgw *w)
{
	struct stream	*st, *nst;
	struct parked	*p, *np;

	for (st = TAILQ_FIRST(&w->streams); st != NULL; st = nst) {
		nst = TAILQ_NEXT(st, entry);
		if (st->started && !st->dead && !st->busy) {
			http_stream_end(st->conn);
			stream_free(st);
		}
	}
	for (p = TAILQ_FIRST(&w->parked); p != NULL; p = np) {
		np = TAILQ_NEXT(p, entry);
		if (p->is_poll) {
			event_del(p->ev_timeout);
			on_parked_timeout(-1, 0, p);
		}
	}
}

/* changes_free - at exit, forget every parked request and stream */
void
changes_free(struct cfgw *w)
{
	while (TAILQ_FIRST(&w->parked) != NULL)
		parked_free(TAILQ_FIRST(&w->parked));
	while (TAILQ_FIRST(&w->streams) != NULL)
		stream_free(TAILQ_FIRST(&w->streams));
}

/* ---- pages ---- */

/* readable - may the principal see change row i? */
static int
readable(const struct grants *g, const PGresult *res, int i)
{
	const char		*type = PQgetvalue(res, i, 2);
	const struct cfg_type	*t = cfg_type_by_name(type, strlen(type));

	return t != NULL && access_can(g, cfg_type_kind(t),
	    strtoll(PQgetvalue(res, i, 3), NULL, 10), RIGHT_READ);
}

/* print_change - change row i as one JSON object */
static void
print_change(FILE *f, const PGresult *res, int i)
{
	fprintf(f, "{\"revision\":%s,\"op\":\"%s\",\"type\":\"%s\","
	    "\"dbid\":%s", PQgetvalue(res, i, 0), PQgetvalue(res, i, 1),
	    PQgetvalue(res, i, 2), PQgetvalue(res, i, 3));
	if (!PQgetisnull(res, i, 4))
		fprintf(f, ",\"object\":%s", PQgetvalue(res, i, 4));
	fputc('}', f);
}

/* gone - answer 410 if since is older than the change log keeps */
static int
gone(struct http_conn *c, const PGresult *res, json_int_t since)
{
	json_int_t	oldest, latest;

	oldest = PQgetisnull(res, 0, 5) ? -1 :
	    strtoll(PQgetvalue(res, 0, 5), NULL, 10);
	latest = strtoll(PQgetvalue(res, 0, 6), NULL, 10);
	if (since >= latest || (oldest != -1 && since >= oldest - 1))
		return 0;
	reply_printf(c, 410, NULL, "{\"error\":\"Gone\",\"message\":"
	    "\"revision %lld is no longer in the change log; reload and follow "
	    "from the revision of the list\",\"oldest\":%lld}",
	    (long long)since + 1, (long long)(oldest == -1 ? latest : oldest));
	return 1;
}

/* result_rows - a change-log read that answered */
static int
result_rows(const PGresult *res)
{
	return res != NULL && PQresultStatus(res) == PGRES_TUPLES_OK &&
	    PQntuples(res) >= 1;
}

/* changes_cb - {"revision": latest, "changes": [...]}, or 410 */
static void
changes_cb(struct pgc *p, const PGresult *res, void *arg)
{
	struct changes_q	*q = arg;
	struct grants		 g;
	char			*buf = NULL;
	size_t			 len = 0;
	FILE			*f;
	json_int_t		 latest;
	int			 i, n, shown = 0;

	if (!result_rows(res)) {
		reply_error(q->conn, 503, "Unavailable", NULL, "the change "
		    "log cannot be read now: PostgreSQL is unavailable");
		free(q);
		return;
	}
	if (gone(q->conn, res, q->since)) {
		free(q);
		return;
	}
	latest = strtoll(PQgetvalue(res, 0, 6), NULL, 10);
	if ((f = open_memstream(&buf, &len)) == NULL)
		fatal("open_memstream");
	access_grants(&q->who, &g);
	fprintf(f, "{\"revision\":%lld,\"changes\":[", (long long)latest);
	n = PQntuples(res);
	for (i = 0; i < n; i++) {
		if (PQgetisnull(res, i, 0) || !readable(&g, res, i))
			continue;
		if (shown++ > 0)
			fputc(',', f);
		print_change(f, res, i);
	}
	/*
	 * Where to go on from, even when none of these changes was readable:
	 * the last one read if the page was full, else the latest revision.
	 */
	fprintf(f, "],\"next\":%lld}", (long long)(n >= q->limit &&
	    !PQgetisnull(res, n - 1, 0) ? strtoll(PQgetvalue(res, n - 1, 0),
	    NULL, 10) : q->since > latest ? q->since : latest));
	access_clear(&g);
	if (fclose(f) != 0)
		fatal("changes");
	reply_json(q->conn, 200, NULL, buf, len);
	free(buf);
	free(q);
}

/* changes_query - read up to limit changes after since */
static void
changes_query(struct cfgw *w, struct http_conn *c,
    const struct principal *who, json_int_t since, int limit)
{
	struct changes_q	*q = xcalloc(1, sizeof(*q));
	char			 s[24], l[16];
	const char		*params[2] = { s, l };

	q->conn = c;
	q->since = since;
	q->limit = limit;
	q->who = *who;
	snprintf(s, sizeof(s), "%lld", (long long)since);
	snprintf(l, sizeof(l), "%d", limit);
	if (pgc_query(w->pg, changes_sql, 2, params, changes_cb, q) == -1) {
		free(q);
		reply_error(c, 503, "Unavailable", NULL, "too many queries "
		    "waiting for PostgreSQL; retry later");
	}
}

/* ---- parked requests ---- */

/* park - answer c once the cache reaches (or, polling, passes) rev */
static void
park(struct cfgw *w, struct http_conn *c, int is_poll, json_int_t rev,
    json_int_t dbid, int status, int limit, int wait_s,
    const struct principal *who)
{
	struct parked	*p = xcalloc(1, sizeof(*p));
	struct timeval	 tv = { wait_s, 0 };

	if (who != NULL)
		p->who = *who;
	p->w = w;
	p->conn = c;
	p->is_poll = is_poll;
	p->revision = rev;
	p->dbid = dbid;
	p->status = status;
	p->limit = limit;
	p->ev_timeout = evtimer_new(w->base, on_parked_timeout, p);
	evtimer_add(p->ev_timeout, &tv);
	TAILQ_INSERT_TAIL(&w->parked, p, entry);
}

/* parked_free - forget an answered request */
static void
parked_free(struct parked *p)
{
	TAILQ_REMOVE(&p->w->parked, p, entry);
	event_free(p->ev_timeout);
	free(p->answer);
	free(p);
}

/* on_parked_timeout - the wait is over: answer with what there is */
static void
on_parked_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct parked	*p = arg;

	if (p->is_poll)
		changes_query(p->w, p->conn, &p->who, p->revision, p->limit);
	else if (p->answer != NULL)
		reply_json(p->conn, p->status, NULL, p->answer,
		    strlen(p->answer));
	else {
		/* Committed, but the cache is behind: say so plainly. */
		reply_printf(p->conn, p->status == 204 ? 200 : p->status,
		    NULL, "{\"dbid\":%lld,\"revision\":%lld}",
		    (long long)p->dbid, (long long)p->revision);
	}
	parked_free(p);
}

/* ---- streams: Accept: application/x-ndjson ---- */

/* stream_start - GET /v1/changes with Accept: application/x-ndjson */
static void
stream_start(struct cfgw *w, struct http_conn *c, const struct principal *who,
    json_int_t since, const char *token)
{
	struct stream	*st = xcalloc(1, sizeof(*st));

	st->token = token != NULL ? xstrdup(token) : NULL;
	st->w = w;
	st->conn = c;
	st->who = *who;
	st->sent = since;
	TAILQ_INSERT_TAIL(&w->streams, st, entry);
	stream_pump(st);
}

/* wake_streams - the cache moved on: so may the streams */
static void
wake_streams(struct cfgw *w)
{
	struct stream	*st, *next;

	for (st = TAILQ_FIRST(&w->streams); st != NULL; st = next) {
		next = TAILQ_NEXT(st, entry);
		if (st->started && !st->dead && st->sent < w->revision)
			stream_pump(st);
	}
}

/* stream_free - forget a stream whose client or query is done */
static void
stream_free(struct stream *st)
{
	TAILQ_REMOVE(&st->w->streams, st, entry);
	if (st->check != NULL)
		st->check->st = NULL;
	if (st->token != NULL) {
		explicit_bzero(st->token, strlen(st->token));
		free(st->token);
	}
	free(st);
}

/*
 * stream_rechecked - a stream's token looked up again: revoked, logged
 * out, or its principal disabled or deleted, the stream ends (a refresh
 * does not end it: the lookup follows the token's refreshes)
 */
static void
stream_rechecked(const struct principal *who, uint64_t expires_us,
    int unavailable, void *arg)
{
	struct stream_check	*ck = arg;
	struct stream		*st = ck->st;

	free(ck);
	if (st == NULL)
		return;
	st->check = NULL;
	if (st->dead || unavailable || (who != NULL &&
	    rights_principal_valid(who)))
		return;
	log_info("a change stream of %s ends: its token is no longer valid",
	    st->who.name);
	http_stream_end(st->conn);
	if (st->busy) {		/* its query's answer frees it */
		st->dead = 1;
		st->conn = NULL;
	} else
		stream_free(st);
}

/*
 * changes_recheck - every stream's token asked again (config.c's timer),
 * as for a routing feed: a request is checked once, a stream lasts
 */
void
changes_recheck(struct cfgw *w)
{
	struct stream		*st, *next;
	struct stream_check	*ck;

	for (st = TAILQ_FIRST(&w->streams); st != NULL; st = next) {
		next = TAILQ_NEXT(st, entry);
		if (st->token == NULL || st->check != NULL || !st->started ||
		    st->dead)
			continue;
		ck = xcalloc(1, sizeof(*ck));
		ck->st = st;
		st->check = ck;
		auth_check_follow(w->auth, st->token, strlen(st->token),
		    stream_rechecked, ck);
	}
}

/* stream_closed - the client went away */
static void
stream_closed(void *arg)
{
	struct stream	*st = arg;

	st->dead = 1;
	st->conn = NULL;
	if (!st->busy)
		stream_free(st);
}

/* stream_rows - pass a batch on; -1 if the client was cut off */
static int
stream_rows(struct stream *st, const PGresult *res)
{
	struct grants	 g;
	char		*line = NULL;
	size_t		 len = 0;
	FILE		*f;
	int		 i, n = PQntuples(res), rc = 0;

	access_grants(&st->who, &g);
	for (i = 0; i < n && rc == 0 && !st->dead; i++) {
		if (PQgetisnull(res, i, 0))
			continue;
		st->sent = strtoll(PQgetvalue(res, i, 0), NULL, 10);
		if (!readable(&g, res, i))
			continue;
		if ((f = open_memstream(&line, &len)) == NULL)
			fatal("open_memstream");
		print_change(f, res, i);
		fputc('\n', f);
		if (fclose(f) != 0)
			fatal("stream");
		rc = http_stream_write(st->conn, line, len);
		free(line);
		line = NULL;
	}
	access_clear(&g);
	return rc;
}

/* stream_fell_behind - has pruning passed what the stream sent? */
static int
stream_fell_behind(const struct stream *st, const PGresult *res)
{
	json_int_t	oldest;

	if (PQgetisnull(res, 0, 5))
		return 0;
	oldest = strtoll(PQgetvalue(res, 0, 5), NULL, 10);
	return st->sent < oldest - 1;
}

/* stream_cb - a batch of the change log arrived */
static void
stream_cb(struct pgc *p, const PGresult *res, void *arg)
{
	struct stream	*st = arg;
	int		 full;

	/*
	 * busy stays set until the end: a write may find the client gone,
	 * and stream_closed must then only mark the stream, not free it.
	 */
	if (st->dead)
		goto drop;
	if (!result_rows(res)) {
		if (st->started) {
			st->busy = 0;	/* waits for the next change */
			return;
		}
		reply_error(st->conn, 503, "Unavailable", NULL, "the change "
		    "log cannot be read now");
		goto drop;
	}
	if (!st->started) {
		if (gone(st->conn, res, st->sent))
			goto drop;
		st->started = 1;
		if (http_stream_begin(st->conn, 200, "application/x-ndjson",
		    stream_closed, st) == -1 || st->dead)
			goto drop;
	}
	if (stream_fell_behind(st, res)) {
		/* It would skip pruned changes: end it; a new one gets 410. */
		http_stream_end(st->conn);
		goto drop;
	}
	full = PQntuples(res) >= CHANGES_LIMIT;
	if (stream_rows(st, res) == -1 || st->dead)
		goto drop;
	st->busy = 0;
	if (full || st->again) {
		st->again = 0;
		stream_pump(st);
	}
	return;
drop:
	stream_free(st);
}

/* stream_pump - read what the stream has not passed on yet */
static void
stream_pump(struct stream *st)
{
	char		 s[24], l[16];
	const char	*params[2] = { s, l };

	if (st->busy) {
		st->again = 1;
		return;
	}
	snprintf(s, sizeof(s), "%lld", (long long)st->sent);
	snprintf(l, sizeof(l), "%d", CHANGES_LIMIT);
	if (pgc_query(st->w->pg, changes_sql, 2, params, stream_cb, st) == 0)
		st->busy = 1;
	else if (!st->started) {
		reply_error(st->conn, 503, "Unavailable", NULL, "too many "
		    "queries waiting for PostgreSQL; retry later");
		stream_free(st);
	}
}
