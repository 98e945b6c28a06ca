/* SPDX-License-Identifier: Apache-2.0 */
/*
 * journal - the waiting interactions kept in PostgreSQL too, so that a
 * Redis that restarts without its data loses none (docs/routing.md,
 * "Durability").
 *
 * rt_interaction holds one row per interaction that is live in Redis: its
 * id, document, virtual queue and creation time.  A new interaction's row
 * is written before it is queued in Redis: its creator is answered only
 * once both hold it, and one that cannot be written is refused, with
 * nothing queued.  A change of its document follows, and its row goes when
 * it ends (or, a call, when an agent accepted it: the call is then with
 * the agent); a task accepted records its agent.  These are written after
 * Redis, and a delete or an acceptance that fails is tried again; a row
 * left behind Redis (a worker killed, an answer lost) is found by the
 * sweep below.  When
 * store.c finds Redis without its state (no epoch key), one instance
 * reads the rows back into Redis, with their age: as queued, or as
 * accepted by their agent, who is held again (journal_load).
 *
 * The writes go together: one INSERT, one UPDATE and one DELETE over
 * arrays (unnest), whatever their number, each a statement prepared once
 * per connection (parsing and planning one cost PostgreSQL about 130 us,
 * as much as writing ten rows).  One such batch is out at a
 * time, and what comes meanwhile waits for it and goes as the next one:
 * batches a turn of the loop each would queue behind each other on the
 * one connection, every new interaction's INSERT behind them all (15 ms
 * for a POST at 3,000 a second, benchmark 10d), where a batch that grows
 * while the last one is out costs about two round trips.
 *
 * What it touches: rt_interaction, on its own PostgreSQL connection.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <unistd.h>

#include <event2/event.h>

#include "conf.h"
#include "jwrite.h"
#include "log.h"
#include "metrics.h"
#include "migrate.h"
#include "pgc.h"
#include "util.h"
#include "worker.h"
#include "routing_int.h"

#define MIGRATE_RETRY_S	2
#define BATCH_MAX	2000
#define RETRY_MS	1000
#define SWEEP_FIRST_S	2	/* the first sweep, after the start */
#define SWEEP_S		300	/* then every */
#define SWEEP_AGE_MS	600000	/* a younger row may be a creation on its
				 * way to Redis */
#define SWEEP_PAGE	1000	/* rows checked at a time */
#define DOUBT_MS	500	/* an id in doubt is checked after */

static const struct migration migrations[] = {
	{ 1,
	  "CREATE TABLE rt_interaction ("
	  " id text PRIMARY KEY,"
	  " doc text NOT NULL,"
	  " vq bigint NOT NULL,"
	  " created bigint NOT NULL);" },
	{ 2,
	  "ALTER TABLE rt_interaction ADD COLUMN agent bigint,"
	  " ADD COLUMN dn text;" },
	{ 3,
	  "ALTER TABLE rt_interaction ADD COLUMN owner text;" },
};

enum jkind { J_PUT, J_DOC, J_DEL, J_ACCEPT, J_KINDS };

struct jop {
	enum jkind	 kind;
	char		*id;
	char		*doc;
	json_int_t	 vq;
	uint64_t	 created;
	store_cb	*cb;
	void		*arg;
	TAILQ_ENTRY(jop) entry;
};
TAILQ_HEAD(jops, jop);

/* One flush: its ops, answered when its statements are. */
struct batch {
	struct jops	 ops;
	int		 left;		/* statements not answered */
	int		 failed[J_KINDS]; /* by kind */
};

/* An id whose row is checked against Redis (the sweep). */
struct doubt {
	char			*id;
	TAILQ_ENTRY(doubt)	 entry;
};

static struct pgc	*pg;
static struct event	*ev_flush, *ev_migrate, *ev_sweep, *ev_every;
static char		*me;		/* the writer of our rows */
static char		*family;	/* me up to the worker: this instance */
static int		 sweeping;	/* a step of the sweep is out */
static int		 swept_all;	/* every row, since the last SWEEP_S */
static char		 after[RT_ID_MAX]; /* the last row swept so far */
static TAILQ_HEAD(, doubt) doubted = TAILQ_HEAD_INITIALIZER(doubted);
static struct jops	 queued = TAILQ_HEAD_INITIALIZER(queued);
static size_t		 nqueued;
static int		 migrated;
static int		 out;		/* a batch is out */

static void	flush(evutil_socket_t, short, void *);
static void	migrate(evutil_socket_t, short, void *);
static void	sweep(evutil_socket_t, short, void *);
static void	every(evutil_socket_t, short, void *);

void
journal_start(struct event_base *b, const struct conf *c)
{
	struct timeval	first = { SWEEP_FIRST_S, 0 }, tv = { SWEEP_S, 0 };
	char		host[128];

	if (gethostname(host, sizeof(host)) == -1)
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	family = xasprintf("%s/%ld/", host, (long)getppid());
	me = xasprintf("%s%ld/%llx", family, (long)getpid(),
	    (unsigned long long)now_wall_us());
	if ((pg = pgc_new(b, c->pg_conninfo, c->pg_password, NULL, NULL)) ==
	    NULL)
		worker_fatalx(2, "postgres.conninfo does not parse");
	ev_flush = event_new(b, -1, 0, flush, NULL);
	ev_migrate = evtimer_new(b, migrate, NULL);
	ev_sweep = evtimer_new(b, sweep, NULL);
	ev_every = evtimer_new(b, every, NULL);
	evtimer_add(ev_sweep, &first);
	evtimer_add(ev_every, &tv);
	migrate(-1, 0, NULL);
}

static void
op_free(struct jop *o)
{
	free(o->id);
	free(o->doc);
	free(o);
}

void
journal_cleanup(void)
{
	struct jop	*o;
	struct doubt	*d;

	while ((o = TAILQ_FIRST(&queued)) != NULL) {
		TAILQ_REMOVE(&queued, o, entry);
		if (o->cb != NULL)
			o->cb(-1, NULL, o->arg);
		op_free(o);
	}
	while ((d = TAILQ_FIRST(&doubted)) != NULL) {
		TAILQ_REMOVE(&doubted, d, entry);
		free(d->id);
		free(d);
	}
	nqueued = 0;
	out = 0;
	pgc_free(pg);
	pg = NULL;
	if (ev_flush != NULL)
		event_free(ev_flush);
	if (ev_migrate != NULL)
		event_free(ev_migrate);
	if (ev_sweep != NULL)
		event_free(ev_sweep);
	if (ev_every != NULL)
		event_free(ev_every);
	ev_flush = ev_migrate = ev_sweep = ev_every = NULL;
	free(me);
	free(family);
	me = family = NULL;
	migrated = sweeping = swept_all = 0;
	after[0] = '\0';
}

int
journal_ready(void)
{
	return migrated;
}

int
journal_drained(void)
{
	return nqueued == 0 && (pgc_queued(pg) == 0 ||
	    pgc_state(pg) != PGC_UP);
}

/* ---- the table ---- */

static void
migrated_cb(int ok, int version, void *arg)
{
	struct timeval	tv = { MIGRATE_RETRY_S, 0 };

	if (!ok) {
		evtimer_add(ev_migrate, &tv);
		return;
	}
	migrated = 1;
}

static void
migrate(evutil_socket_t fd, short what, void *arg)
{
	struct timeval	tv = { MIGRATE_RETRY_S, 0 };

	if (migrate_run(pg, "routing", migrations, (int)(sizeof(migrations) /
	    sizeof(migrations[0])), migrated_cb, NULL) == -1)
		evtimer_add(ev_migrate, &tv);
}

/* ---- writes ---- */

static void
add(enum jkind k, const char *id, const char *doc, json_int_t vq,
    uint64_t created, store_cb *cb, void *arg)
{
	struct jop	*o = xcalloc(1, sizeof(*o));

	o->kind = k;
	o->id = xstrdup(id);
	o->doc = doc != NULL ? xstrdup(doc) : NULL;
	o->vq = vq;
	o->created = created;
	o->cb = cb;
	o->arg = arg;
	TAILQ_INSERT_TAIL(&queued, o, entry);
	nqueued++;
	event_active(ev_flush, 0, 0);
}

void
journal_put(const char *id, const char *doc, json_int_t vq, store_cb *cb,
    void *arg)
{
	if (!migrated) {
		cb(-1, NULL, arg);
		return;
	}
	add(J_PUT, id, doc, vq, now_wall_us() / 1000, cb, arg);
}

void
journal_doc(const char *id, const char *doc)
{
	add(J_DOC, id, doc, 0, 0, NULL, NULL);
}

void
journal_del(const char *id)
{
	add(J_DEL, id, NULL, 0, 0, NULL, NULL);
}

/* journal_accept - a task accepted by person at dn (it holds the agent) */
void
journal_accept(const char *id, json_int_t person, const char *dn)
{
	add(J_ACCEPT, id, dn, person, 0, NULL, NULL);
}

/* arr - a PostgreSQL array literal element, quoted and escaped */
static void
arr(struct jw *w, const char *s)
{
	const char	*p;

	jw_raw(w, w->n > 1 ? ",\"" : "\"", w->n > 1 ? 2 : 1);
	for (p = s; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\')
			jw_raw(w, "\\", 1);
		jw_raw(w, p, 1);
	}
	jw_raw(w, "\"", 1);
}

static void
arr_int(struct jw *w, long long v)
{
	char	buf[24];

	snprintf(buf, sizeof(buf), "%s%lld", w->n > 1 ? "," : "", v);
	jw_raw(w, buf, strlen(buf));
}

static void
batch_done(struct batch *b)
{
	struct jop	*o;
	int		 ok, retry = 0;

	if (--b->left > 0)
		return;
	while ((o = TAILQ_FIRST(&b->ops)) != NULL) {
		TAILQ_REMOVE(&b->ops, o, entry);
		ok = !b->failed[o->kind];
		if (!ok && (o->kind == J_DEL || o->kind == J_ACCEPT)) {
			/* tried again: a row left would come back as live */
			TAILQ_INSERT_TAIL(&queued, o, entry);
			nqueued++;
			retry = 1;
			continue;
		}
		if (!ok)
			log_warnx("routing: interaction %s could not be %s in "
			    "PostgreSQL", o->id, o->kind == J_PUT ? "stored" :
			    "updated");
		if (o->cb != NULL)
			o->cb(ok ? 1 : -1, ok ? "stored" : NULL, o->arg);
		op_free(o);
	}
	free(b);
	out = 0;
	if (retry) {
		struct timeval	tv = util_tv_us(RETRY_MS * 1000);

		event_add(ev_flush, &tv);
	} else if (nqueued > 0)
		event_active(ev_flush, 0, 0);
}

struct stmt {
	struct batch	*b;
	enum jkind	 kind;
};

static void
stmt_done(struct pgc *c, const PGresult *res, void *arg)
{
	struct stmt	*s = arg;

	if (res == NULL || PQresultStatus(res) != PGRES_COMMAND_OK)
		s->b->failed[s->kind] = 1;
	batch_done(s->b);
	free(s);
}

static void
run(struct batch *b, enum jkind k, const char *sql, int n,
    const char *const *params)
{
	static const char *const names[J_KINDS] = { "rt_put", "rt_doc",
	    "rt_del", "rt_accept" };
	struct stmt	*s = xcalloc(1, sizeof(*s));

	s->b = b;
	s->kind = k;
	b->left++;
	if (pgc_query_named(pg, names[k], sql, n, params, stmt_done, s) ==
	    -1) {
		b->failed[k] = 1;
		free(s);
		b->left--;
	}
}

/* flush - what was written in this turn, as four statements at most */
static void
flush(evutil_socket_t fd, short what, void *arg)
{
	struct batch	*b;
	struct jop	*o;
	struct jw	 ids[J_KINDS], docs[2], vqs, created, agents, dns;
	char		 buf[10][64];
	const char	*p[5];
	int		 n[J_KINDS] = { 0 }, i;
	size_t		 taken = 0;

	if (nqueued == 0 || out)
		return;		/* the batch out flushes again when answered */
	out = 1;
	b = xcalloc(1, sizeof(*b));
	TAILQ_INIT(&b->ops);
	for (i = 0; i < J_KINDS; i++)
		jw_init(&ids[i], buf[i], sizeof(buf[i]));
	jw_init(&docs[0], buf[4], sizeof(buf[4]));
	jw_init(&docs[1], buf[5], sizeof(buf[5]));
	jw_init(&vqs, buf[6], sizeof(buf[6]));
	jw_init(&created, buf[7], sizeof(buf[7]));
	jw_init(&agents, buf[8], sizeof(buf[8]));
	jw_init(&dns, buf[9], sizeof(buf[9]));
	for (i = 0; i < J_KINDS; i++)
		jw_lit(&ids[i], "{");
	jw_lit(&docs[0], "{");
	jw_lit(&docs[1], "{");
	jw_lit(&vqs, "{");
	jw_lit(&created, "{");
	jw_lit(&agents, "{");
	jw_lit(&dns, "{");
	while ((o = TAILQ_FIRST(&queued)) != NULL && taken < BATCH_MAX) {
		TAILQ_REMOVE(&queued, o, entry);
		nqueued--;
		taken++;
		TAILQ_INSERT_TAIL(&b->ops, o, entry);
		arr(&ids[o->kind], o->id);
		n[o->kind]++;
		if (o->kind == J_PUT) {
			arr(&docs[0], o->doc);
			arr_int(&vqs, o->vq);
			arr_int(&created, (long long)o->created);
		} else if (o->kind == J_DOC)
			arr(&docs[1], o->doc);
		else if (o->kind == J_ACCEPT) {
			arr_int(&agents, o->vq);
			arr(&dns, o->doc);
		}
	}
	for (i = 0; i < J_KINDS; i++)
		jw_lit(&ids[i], "}");
	jw_lit(&docs[0], "}");
	jw_lit(&docs[1], "}");
	jw_lit(&vqs, "}");
	jw_lit(&created, "}");
	jw_lit(&agents, "}");
	jw_lit(&dns, "}");
	b->left = 1;		/* held until every statement is queued */
	if (n[J_PUT] > 0) {
		p[0] = ids[J_PUT].p;
		p[1] = docs[0].p;
		p[2] = vqs.p;
		p[3] = created.p;
		p[4] = me;
		run(b, J_PUT, "INSERT INTO rt_interaction (id, doc, vq, created, "
		    "owner) SELECT *, $5::text FROM unnest($1::text[], "
		    "$2::text[], $3::bigint[], $4::bigint[]) ON CONFLICT (id) DO "
		    "NOTHING", 5, p);
	}
	if (n[J_DOC] > 0) {
		p[0] = ids[J_DOC].p;
		p[1] = docs[1].p;
		run(b, J_DOC, "UPDATE rt_interaction r SET doc = u.doc FROM "
		    "unnest($1::text[], $2::text[]) AS u (id, doc) "
		    "WHERE r.id = u.id", 2, p);
	}
	if (n[J_ACCEPT] > 0) {
		p[0] = ids[J_ACCEPT].p;
		p[1] = agents.p;
		p[2] = dns.p;
		run(b, J_ACCEPT, "UPDATE rt_interaction r SET agent = u.agent, "
		    "dn = u.dn FROM unnest($1::text[], $2::bigint[], $3::text[]) "
		    "AS u (id, agent, dn) WHERE r.id = u.id", 3, p);
	}
	if (n[J_DEL] > 0) {
		p[0] = ids[J_DEL].p;
		run(b, J_DEL, "DELETE FROM rt_interaction WHERE id = "
		    "ANY ($1::text[])", 1, p);
	}
	for (i = 0; i < J_KINDS; i++)
		jw_free(&ids[i]);
	jw_free(&docs[0]);
	jw_free(&docs[1]);
	jw_free(&vqs);
	jw_free(&created);
	jw_free(&agents);
	jw_free(&dns);
	batch_done(b);
}

/*
 * ---- the sweep ----
 *
 * A row whose interaction is not live in Redis is of one that ended while
 * its delete was not written, or of a creation that never reached Redis:
 * the worker was killed in between, or Redis ran a change and its answer
 * was lost (store.c hands such an id to journal_doubt).  Left, a Redis that
 * later lost its data would get it back as waiting.  So rows are checked
 * against Redis, in one script that first checks that Redis holds the
 * routing state (one that lost it says nothing) and says of each id: live,
 * ended (Redis keeps an ended one an hour), or absent.  Deleted are:
 *   - the ended;
 *   - the absent that are older than any creation still on its way
 *     (SWEEP_AGE_MS), or that a worker of this instance wrote and that is
 *     dead (every row names its writer: host, master and worker);
 *   - of the ids in doubt, every one not live.
 * Every row is checked, a page at a time, soon after the start (until
 * that once succeeds) and then every SWEEP_S; ids in doubt a moment after
 * they come.  Whatever Redis does after its answer, those ended.
 */

struct page {
	int	 n;
	char	*ids[SWEEP_PAGE];
	char	 why[SWEEP_PAGE];	/* 'o' old, 'd' a dead writer's, 'q' in
					 * doubt, '-' none of these */
};

static void
page_free(struct page *p)
{
	int	i;

	for (i = 0; i < p->n; i++)
		free(p->ids[i]);
	free(p);
}

/* again - the sweep's next step in ms */
static void
again(unsigned ms)
{
	struct timeval	tv = util_tv_us((uint64_t)ms * 1000);

	if (ev_sweep != NULL)	/* not after journal_cleanup */
		evtimer_add(ev_sweep, &tv);
}

static void
checked(const char *status, void *arg)
{
	struct page	*p = arg;
	struct doubt	*d;
	int		 i, doubts = p->n > 0 && p->why[0] == 'q', deleted = 0;

	sweeping = 0;
	if (ev_sweep == NULL) {		/* stopped */
		page_free(p);
		return;
	}
	if (status == NULL || strlen(status) != (size_t)p->n) {
		if (doubts)
			for (i = 0; i < p->n; i++) {
				d = xcalloc(1, sizeof(*d));
				d->id = p->ids[i];
				p->ids[i] = NULL;
				TAILQ_INSERT_TAIL(&doubted, d, entry);
			}
		page_free(p);
		again(RETRY_MS);
		return;
	}
	for (i = 0; i < p->n; i++)
		if (status[i] == 'E' || (status[i] == 'A' && p->why[i] != '-')) {
			journal_del(p->ids[i]);
			deleted++;
		}
	metric_add(rt_m.swept, deleted);
	if (deleted > 0)
		log_info("routing: %d rows of interactions not live in Redis "
		    "(ended, or never queued) taken out of rt_interaction",
		    deleted);
	if (!doubts && p->n < SWEEP_PAGE)
		swept_all = 1;		/* the last page */
	else if (!doubts)
		snprintf(after, sizeof(after), "%s", p->ids[p->n - 1]);
	page_free(p);
	again(0);
}

/* check - ask Redis about a page of ids */
static void
check(struct page *p)
{
	struct jw	 w;
	char		 buf[4096];
	int		 i;

	jw_init(&w, buf, sizeof(buf));
	jw_lit(&w, "[");
	for (i = 0; i < p->n; i++) {
		if (i > 0)
			jw_lit(&w, ",");
		jw_str(&w, p->ids[i]);
	}
	jw_lit(&w, "]");
	store_gone(w.p, checked, p);
	jw_free(&w);
}

static void
rows(struct pgc *c, const PGresult *res, void *arg)
{
	struct page	*p;
	int		 i;

	if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
		sweeping = 0;
		again(RETRY_MS);
		return;
	}
	if (PQntuples(res) == 0) {
		sweeping = 0;
		swept_all = 1;
		again(0);
		return;
	}
	p = xcalloc(1, sizeof(*p));
	for (i = 0; i < PQntuples(res) && i < SWEEP_PAGE; i++) {
		p->ids[i] = xstrdup(PQgetvalue(res, i, 0));
		p->why[i] = *PQgetvalue(res, i, 1) == 't' ? 'o' :
		    *PQgetvalue(res, i, 2) == 't' ? 'd' : '-';
		p->n++;
	}
	check(p);
}

/* sweep - the next step: ids in doubt first, then a page of every row */
static void
sweep(evutil_socket_t fd, short what, void *arg)
{
	char		 before[24], limit[16];
	const char	*p[] = { before, me, family, after, limit };
	struct page	*pp;
	struct doubt	*d;

	if (sweeping || (TAILQ_EMPTY(&doubted) && swept_all))
		return;
	if (!migrated || !store_ready() || pgc_state(pg) != PGC_UP) {
		again(RETRY_MS);
		return;
	}
	sweeping = 1;
	if (!TAILQ_EMPTY(&doubted)) {
		pp = xcalloc(1, sizeof(*pp));
		while (pp->n < SWEEP_PAGE && (d = TAILQ_FIRST(&doubted)) !=
		    NULL) {
			TAILQ_REMOVE(&doubted, d, entry);
			pp->ids[pp->n] = d->id;
			pp->why[pp->n++] = 'q';
			free(d);
		}
		check(pp);
		return;
	}
	snprintf(before, sizeof(before), "%llu", (unsigned long long)
	    (now_wall_us() / 1000 - SWEEP_AGE_MS));
	snprintf(limit, sizeof(limit), "%d", SWEEP_PAGE);
	if (pgc_query_named(pg, "rt_sweep", "SELECT id, created < $1::bigint, "
	    "owner IS NOT NULL AND owner <> $2 AND starts_with(owner, $3) "
	    "FROM rt_interaction WHERE id > $4 ORDER BY id LIMIT $5::int", 5,
	    p, rows, NULL) == -1) {
		sweeping = 0;
		again(RETRY_MS);
	}
}

/* every - a sweep of every row, every SWEEP_S */
static void
every(evutil_socket_t fd, short what, void *arg)
{
	struct timeval	tv = { SWEEP_S, 0 };

	evtimer_add(ev_every, &tv);
	if (!swept_all)
		return;		/* the last one is still going */
	swept_all = 0;
	after[0] = '\0';
	again(0);
}

/* journal_doubt - check id's row against Redis soon: deleted unless live */
void
journal_doubt(const char *id)
{
	struct doubt	*d;

	if (ev_sweep == NULL)
		return;
	d = xcalloc(1, sizeof(*d));
	d->id = xstrdup(id);
	TAILQ_INSERT_TAIL(&doubted, d, entry);
	if (!sweeping && !evtimer_pending(ev_sweep, NULL))
		again(DOUBT_MS);
}

/* ---- reading back ---- */

struct load {
	journal_load_cb	*cb;
	void		*arg;
};

static void
loaded(struct pgc *c, const PGresult *res, void *arg)
{
	struct load	*l = arg;
	json_t		*rows;
	int		 i;

	if (res == NULL || PQresultStatus(res) != PGRES_TUPLES_OK) {
		l->cb(NULL, l->arg);
		free(l);
		return;
	}
	rows = json_array();
	for (i = 0; i < PQntuples(res); i++)
		json_array_append_new(rows, json_pack("{s:s, s:s, s:I, s:I, "
		    "s:I, s:s}", "id", PQgetvalue(res, i, 0), "doc",
		    PQgetvalue(res, i, 1), "vq", (json_int_t)strtoll(
		    PQgetvalue(res, i, 2), NULL, 10), "created", (json_int_t)
		    strtoll(PQgetvalue(res, i, 3), NULL, 10), "agent",
		    (json_int_t)strtoll(PQgetvalue(res, i, 4), NULL, 10), "dn",
		    PQgetvalue(res, i, 5)));
	l->cb(rows, l->arg);
	json_decref(rows);
	free(l);
}

/* journal_load - every row, oldest first (NULL: not now) */
void
journal_load(journal_load_cb *cb, void *arg)
{
	struct load	*l = xcalloc(1, sizeof(*l));

	l->cb = cb;
	l->arg = arg;
	if (!migrated || pgc_query(pg, "SELECT id, doc, vq, created, agent, "
	    "dn FROM rt_interaction ORDER BY created, id", 0, NULL, loaded, l) == -1) {
		free(l);
		cb(NULL, arg);
	}
}
