/* SPDX-License-Identifier: Apache-2.0 */
/*
 * outbox - the outbound worker's reports, relayed from ocs_outbox to Kafka
 * (docs/outbound.md, "Reporting to Kafka").
 *
 * outbox_put writes a report in the caller's transaction.  The relay reads
 * the table in seq order, in batches, produces each row with librdkafka's
 * idempotent producer and deletes the rows whose delivery report says
 * delivered.  Messages are never timed out by librdkafka (a Kafka outage
 * holds them, in order, until it ends); a report that fails all the same
 * stops the relay: once every message in flight has its report, it starts
 * again from the oldest row left, after a backoff.  The idempotent
 * producer with the gapless guarantee means that what Kafka holds of one
 * partition is always a prefix of what was produced to it, so a key's
 * reports reach Kafka in seq order, duplicates aside.
 *
 * One instance relays at a time: the relay's connection holds a session
 * advisory lock, tried again every second by the others; it dies with the
 * connection.  Rows whose seq is taken by a transaction that commits after
 * the relay has read past it are found again: every read asks for the
 * seqs it skipped (the holes, for a minute) with the rows after the
 * cursor, in seq order, so a hole filled since goes before any later
 * report of its key; and every row left is read again each time nothing
 * is in flight.
 *
 * What a row costs PostgreSQL sets the relay's pace (the read of a batch
 * and its delete, beside them librdkafka's work is small): after a full
 * batch the next read goes out before the batch is produced; delivered
 * rows are deleted by runs of consecutive seqs, each a range scan of the
 * index, and a row delivered past an older one still in flight waits a
 * little for it, so that the runs are long.
 *
 * Delivery reports, errors and statistics come through librdkafka's main
 * queue, which writes to a pipe when it stops being empty: the loop serves
 * them at once and never polls in a busy loop.
 *
 * What it touches: ocs_outbox, on its own two PostgreSQL connections (the
 * lock and the reads on one, the deletes and the count on the other); the
 * topic workers.outbound.kafka_topic; the metrics
 * tenantd_outbound_outbox_depth, _reports_total, _report_failures_total and
 * _kafka_up.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "backoff.h"
#include "conf.h"
#include "log.h"
#include "metrics.h"
#include "outbox.h"
#include "pgc.h"
#include "util.h"

#define READ_BATCH	5000		/* rows per SELECT */
#define MAX_INFLIGHT	20000		/* produced, no report yet */
#define TICK_S		1.0
#define STOP_MS		2000
#define HOLE_MAX	1024
#define HOLE_TTL_US	(60 * 1000000ULL)
#define HOLD_US		100000		/* a delivered row waits for older */
#define COUNT_SPACING	50		/* a count's time, till the next */
#define MOCK_PARTITIONS	4

static const char SQL_PUT[] =
    "INSERT INTO ocs_outbox (id, key, value) VALUES ($1, $2, $3)";
static const char SQL_LOCK[] =
    "SELECT pg_try_advisory_lock(hashtext('tenantd:outbox:' || "
    "current_schema()))";
/*
 * The next rows, with the holes the relay read past: a hole committed
 * since comes first, before the rows after it (a key's later report may
 * be among them: its earlier one must not follow it).
 */
static const char SQL_READ[] =
    "SELECT seq, key, value FROM ("
    "SELECT seq, key, value FROM ocs_outbox WHERE seq = ANY($2::bigint[]) "
    "UNION ALL (SELECT seq, key, value FROM ocs_outbox WHERE seq > $1 "
    "ORDER BY seq LIMIT 5000)) r ORDER BY seq";
/*
 * The delivered seqs as runs lo..hi of consecutive numbers, every number
 * of a run delivered: the same rows as seq = ANY of them all, but a range
 * scan of the index per run rather than a descent per row.
 */
static const char SQL_DELETE[] =
    "DELETE FROM ocs_outbox o USING unnest($1::bigint[], $2::bigint[]) "
    "AS r(lo, hi) WHERE o.seq BETWEEN r.lo AND r.hi";
static const char SQL_COUNT[] = "SELECT count(*) FROM ocs_outbox";

/* A seq the relay read past without seeing it: a late commit, or none. */
struct hole {
	int64_t		 seq;
	uint64_t	 seen_us;
};

struct seqs {
	int64_t		*v;
	size_t		 n, cap;
};

/*
 * The messages produced, in order, until every older one has its report:
 * the oldest without one is the relay's low-water mark.
 */
struct sent {
	int64_t		 seq;
	int		 reported;
};

struct ring {
	struct sent	*v;
	size_t		 cap;		/* a power of two */
	uintptr_t	 head, tail;	/* tickets: oldest, next */
};

/* Where the reads are: the cursor, and the holes behind it. */
struct readpos {
	int		 started;	/* a read since the last rewind */
	int64_t		 cursor;	/* highest seq taken */
	struct hole	 holes[HOLE_MAX];
	size_t		 nholes;
};

static struct outbox {
	struct event_base	*base;
	struct pgc		*pg;		/* the lock, reads */
	struct pgc		*pgd;		/* deletes, the count */
	rd_kafka_t		*rk;
	rd_kafka_topic_t	*rkt;
	rd_kafka_t		*mock_rk;	/* holds the mock cluster */
	rd_kafka_mock_cluster_t	*mock;
	char			*topic;
	char			*brokers;
	rd_kafka_conf_t		*kconf;		/* each producer's, copied */
	int			 pipe[2];
	struct event		*ev_pipe, *ev_tick, *ev_kick, *ev_retry;

	int			 locked;	/* we are the relay */
	int			 locking, reading, deleting, counting;
	int			 want_read;	/* kicked, ticked, or more rows */
	uintptr_t		 gen;		/* of the reads: a read of an
						 * older one is dropped */
	struct readpos		 pos;
	size_t			 inflight;
	size_t			 pending;	/* read, being produced */
	struct seqs		 batch;		/* their seqs */
	struct ring		 sent;		/* produced */
	struct seqs		 done;		/* delivered, to delete */
	uint64_t		 held_us;	/* since some of done wait */
	struct seqs		 dying;		/* being deleted */

	int			 failed;	/* a report failed: rewind */
	int			 purge;		/* purge what is in flight */
	int			 waiting;	/* the rewind's backoff: 1 runs,
						 * 2 over */
	int			 failing;	/* logged, until a delivery */
	struct backoff		 retry;

	int			 stopping, closing;
	uint64_t		 stop_us;
	size_t			 depth;
	uint64_t		 count_us, count_next_us;
	int			 up;		/* -1 unknown, 0 down, 1 up */

	struct metric		*m_depth, *m_reports, *m_failures, *m_up;
} ob = { .pipe = { -1, -1 }, .up = -1 };

static rd_kafka_conf_t *kafka_conf(const struct conf *, char *, size_t);
static rd_kafka_t *producer_new(char *, size_t);
static int	 mock_start(void);
static void	 on_pg_state(struct pgc *, enum pgc_state, void *);
static void	 on_pipe(evutil_socket_t, short, void *);
static void	 on_tick(evutil_socket_t, short, void *);
static void	 on_kick(evutil_socket_t, short, void *);
static void	 on_retry(evutil_socket_t, short, void *);
static void	 pump(void);
static void	 set_up(int);

/* ---- writing a report ---- */

/*
 * outbox_value - give msg its id and, when absent, its time; the text
 * stored in the row.  Pure but for the clock and the random id.
 */
static char *
outbox_value(json_t *msg, char id[37])
{
	util_uuid(id);
	json_object_set_new(msg, "id", json_string(id));
	if (json_object_get(msg, "time") == NULL)
		json_object_set_new(msg, "time",
		    json_integer((json_int_t)(now_wall_us() / 1000)));
	return json_dumps(msg, JSON_COMPACT);
}

int
outbox_put(struct pgc_txn *txn, const char *key, json_t *msg)
{
	const char	*p[3];
	char		 id[37], *value;
	int		 rc;

	if (!json_is_object(msg) || (value = outbox_value(msg, id)) == NULL)
		return -1;
	p[0] = id;
	p[1] = key;
	p[2] = value;
	rc = pgc_txn_query(txn, SQL_PUT, 3, p, NULL, NULL);
	free(value);
	return rc;
}

void
outbox_kick(void)
{
	if (ob.ev_kick == NULL)
		return;
	ob.want_read = 1;
	event_active(ob.ev_kick, EV_TIMEOUT, 0);
}

size_t
outbox_depth(void)
{
	return ob.depth;
}

int
outbox_kafka_up(void)
{
	return ob.up == 1;
}

/* ---- start and stop ---- */

int
outbox_start(struct event_base *base, const struct conf *c)
{
	struct timeval	tv;
	char		errstr[512];

	ob.base = base;
	ob.topic = xstrdup(c->workers[WORKER_OUTBOUND].kafka_topic);
	ob.brokers = xstrdup(c->kafka_brokers != NULL ? c->kafka_brokers :
	    "mock");
	backoff_init(&ob.retry, 500000, 30000000, 20);
	ob.m_depth = metrics_gauge("tenantd_outbound_outbox_depth",
	    "Reports waiting in ocs_outbox for Kafka, as last counted", NULL);
	ob.m_reports = metrics_counter("tenantd_outbound_reports_total",
	    "Reports Kafka acknowledged", NULL);
	ob.m_failures = metrics_counter(
	    "tenantd_outbound_report_failures_total",
	    "Reports whose delivery failed (they are produced again)", NULL);
	ob.m_up = metrics_gauge("tenantd_outbound_kafka_up",
	    "1 when a Kafka broker is reachable", NULL);
	if (strcmp(ob.brokers, "mock") == 0 && mock_start() == -1)
		return -1;
	if (pipe2(ob.pipe, O_NONBLOCK | O_CLOEXEC) == -1) {
		log_warn("outbox: pipe");
		return -1;
	}
	ob.ev_pipe = event_new(base, ob.pipe[0], EV_READ | EV_PERSIST,
	    on_pipe, NULL);
	event_add(ob.ev_pipe, NULL);
	if ((ob.kconf = kafka_conf(c, errstr, sizeof(errstr))) == NULL ||
	    (ob.rk = producer_new(errstr, sizeof(errstr))) == NULL) {
		log_warnx("outbox: cannot make the Kafka producer: %s", errstr);
		return -1;
	}
	if ((ob.pg = pgc_new(base, c->pg_conninfo, c->pg_password,
	    on_pg_state, NULL)) == NULL || (ob.pgd = pgc_new(base,
	    c->pg_conninfo, c->pg_password, on_pg_state, NULL)) == NULL) {
		log_warnx("outbox: postgres.conninfo does not parse");
		return -1;
	}
	ob.ev_tick = event_new(base, -1, EV_PERSIST, on_tick, NULL);
	ob.ev_kick = event_new(base, -1, 0, on_kick, NULL);
	ob.ev_retry = evtimer_new(base, on_retry, NULL);
	tv = util_tv(TICK_S);
	event_add(ob.ev_tick, &tv);
	return 0;
}

/* mock_start - kafka.brokers = "mock": a cluster in this process */
static int
mock_start(void)
{
	rd_kafka_conf_t	*conf = rd_kafka_conf_new();
	char		 errstr[512];

	rd_kafka_conf_set(conf, "log_level", "3", NULL, 0);
	if ((ob.mock_rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr,
	    sizeof(errstr))) == NULL ||
	    (ob.mock = rd_kafka_mock_cluster_new(ob.mock_rk, 1)) == NULL) {
		log_warnx("outbox: cannot start the mock Kafka cluster");
		return -1;
	}
	rd_kafka_mock_topic_create(ob.mock, ob.topic, MOCK_PARTITIONS, 1);
	free(ob.brokers);
	ob.brokers = xstrdup(rd_kafka_mock_cluster_bootstraps(ob.mock));
	log_info("outbox: kafka.brokers is \"mock\": librdkafka's mock "
	    "cluster serves on %s (topic %s; its reports live as long as "
	    "this worker)", ob.brokers, ob.topic);
	return 0;
}

static void	 on_report(rd_kafka_t *, const rd_kafka_message_t *, void *);
static void	 on_error(rd_kafka_t *, int, const char *, void *);
static int	 on_stats(rd_kafka_t *, char *, size_t, void *);
static void	 on_log(const rd_kafka_t *, int, const char *, const char *);

/*
 * kafka_conf - tenantd's settings, then the operator's properties, and
 * the callbacks: the template every producer is made from
 */
static rd_kafka_conf_t *
kafka_conf(const struct conf *c, char *errstr, size_t len)
{
	static const char *const fixed[][2] = {
		{ "client.id", "tenantd-outbound" },
		{ "enable.idempotence", "true" },
		{ "enable.gapless.guarantee", "true" },
		{ "acks", "all" },
		{ "message.timeout.ms", "0" },
		{ "statistics.interval.ms", "1000" },
		{ "log.queue", "true" },
	};
	rd_kafka_conf_t		*conf = rd_kafka_conf_new();
	size_t			 i;
	int			 bad = 0;

	for (i = 0; i < NELEM(fixed); i++)
		bad |= rd_kafka_conf_set(conf, fixed[i][0], fixed[i][1], errstr,
		    len) != RD_KAFKA_CONF_OK;
	bad |= rd_kafka_conf_set(conf, "bootstrap.servers", ob.brokers, errstr,
	    len) != RD_KAFKA_CONF_OK;
	if (c->kafka_sasl_username != NULL)
		bad |= rd_kafka_conf_set(conf, "sasl.username",
		    c->kafka_sasl_username, errstr, len) != RD_KAFKA_CONF_OK;
	if (c->kafka_sasl_password != NULL)
		bad |= rd_kafka_conf_set(conf, "sasl.password",
		    c->kafka_sasl_password, errstr, len) != RD_KAFKA_CONF_OK;
	for (i = 0; i < c->nkafka_props && !bad; i++)
		bad |= rd_kafka_conf_set(conf, c->kafka_props[i].name,
		    c->kafka_props[i].value, errstr, len) != RD_KAFKA_CONF_OK;
	if (bad) {
		rd_kafka_conf_destroy(conf);
		return NULL;
	}
	rd_kafka_conf_set_dr_msg_cb(conf, on_report);
	rd_kafka_conf_set_error_cb(conf, on_error);
	rd_kafka_conf_set_stats_cb(conf, on_stats);
	rd_kafka_conf_set_log_cb(conf, on_log);
	return conf;
}

/*
 * producer_new - the producer, its callbacks served from the main queue,
 * which writes to the pipe when it stops being empty
 */
static rd_kafka_t *
producer_new(char *errstr, size_t len)
{
	rd_kafka_conf_t		*conf = rd_kafka_conf_dup(ob.kconf);
	rd_kafka_queue_t	*q;
	rd_kafka_t		*rk;

	if ((rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, len)) ==
	    NULL) {
		rd_kafka_conf_destroy(conf);
		return NULL;
	}
	rd_kafka_set_log_queue(rk, NULL);
	q = rd_kafka_queue_get_main(rk);
	rd_kafka_queue_io_event_enable(q, ob.pipe[1], "1", 1);
	rd_kafka_queue_destroy(q);
	ob.rkt = rd_kafka_topic_new(rk, ob.topic, NULL);
	/* The pipe is written only when the queue stops being empty: serve
	 * what came before it was set (log lines of rd_kafka_new). */
	event_active(ob.ev_pipe, EV_READ, 0);
	return rk;
}

/* producer_free - what is still queued or in flight stays in the table */
static void
producer_free(void)
{
	rd_kafka_queue_t	*q;

	if (ob.rk == NULL)
		return;
	rd_kafka_purge(ob.rk, RD_KAFKA_PURGE_F_QUEUE |
	    RD_KAFKA_PURGE_F_INFLIGHT);
	rd_kafka_poll(ob.rk, 0);
	q = rd_kafka_queue_get_main(ob.rk);
	rd_kafka_queue_io_event_enable(q, -1, NULL, 0);
	rd_kafka_queue_destroy(q);
	rd_kafka_topic_destroy(ob.rkt);
	rd_kafka_destroy(ob.rk);
	ob.rk = NULL;
	ob.rkt = NULL;
	ob.inflight = 0;
	ob.sent.head = ob.sent.tail;
}

void
outbox_stop(void)
{
	ob.stopping = 1;
	ob.stop_us = now_mono_us() + STOP_MS * 1000ULL;
	pump();
}

int
outbox_drained(void)
{
	if (ob.inflight == 0 && ob.done.n == 0 && !ob.deleting)
		return 1;
	return ob.stopping && (ob.pgd == NULL || pgc_state(ob.pgd) != PGC_UP ||
	    now_mono_us() >= ob.stop_us);
}

void
outbox_cleanup(void)
{
	ob.closing = 1;
	producer_free();
	if (ob.mock != NULL)
		rd_kafka_mock_cluster_destroy(ob.mock);
	if (ob.mock_rk != NULL)
		rd_kafka_destroy(ob.mock_rk);
	if (ob.kconf != NULL)
		rd_kafka_conf_destroy(ob.kconf);
	pgc_free(ob.pg);
	pgc_free(ob.pgd);
	if (ob.ev_pipe != NULL)
		event_free(ob.ev_pipe);
	if (ob.ev_tick != NULL)
		event_free(ob.ev_tick);
	if (ob.ev_kick != NULL)
		event_free(ob.ev_kick);
	if (ob.ev_retry != NULL)
		event_free(ob.ev_retry);
	if (ob.pipe[0] != -1)
		close(ob.pipe[0]);
	if (ob.pipe[1] != -1)
		close(ob.pipe[1]);
	free(ob.sent.v);
	free(ob.batch.v);
	free(ob.done.v);
	free(ob.dying.v);
	free(ob.topic);
	free(ob.brokers);
	memset(&ob, 0, sizeof(ob));
	ob.pipe[0] = ob.pipe[1] = -1;
	ob.up = -1;
}

/* ---- small helpers ---- */

static void
seqs_add(struct seqs *s, int64_t seq)
{
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 1024;
		s->v = xrealloc(s->v, s->cap * sizeof(*s->v));
	}
	s->v[s->n++] = seq;
}

/* seqs_array - a PostgreSQL array literal, "{1,2,3}"; malloc'ed */
static char *
seqs_array(const int64_t *v, size_t n)
{
	char	*buf = xmalloc(n * 21 + 3), *p = buf;
	size_t	 i;

	*p++ = '{';
	for (i = 0; i < n; i++)
		p += sprintf(p, i ? ",%lld" : "%lld", (long long)v[i]);
	*p++ = '}';
	*p = '\0';
	return buf;
}

static int
seqs_cmp(const void *a, const void *b)
{
	int64_t	x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/* seqs_sort - in order, each seq once */
static void
seqs_sort(struct seqs *s)
{
	size_t	i, j;

	if (s->n == 0)
		return;		/* qsort of nothing: v may be NULL */
	qsort(s->v, s->n, sizeof(*s->v), seqs_cmp);
	for (i = j = 0; i < s->n; i++)
		if (j == 0 || s->v[i] != s->v[j - 1])
			s->v[j++] = s->v[i];
	s->n = j;
}

/*
 * seqs_runs - the sorted seqs s as runs of consecutive seqs: *lo and *hi
 * get the array literals of each run's first and last seq (malloc'ed);
 * the number of runs
 */
static size_t
seqs_runs(const struct seqs *s, char **lo, char **hi)
{
	char	*l, *h;
	size_t	 i, j, n = 0;

	l = *lo = xmalloc(s->n * 21 + 3);
	h = *hi = xmalloc(s->n * 21 + 3);
	*l++ = '{';
	*h++ = '{';
	for (i = 0; i < s->n; i = j, n++) {
		for (j = i + 1; j < s->n && s->v[j] - 1 == s->v[j - 1]; j++)
			;
		l += sprintf(l, n ? ",%lld" : "%lld", (long long)s->v[i]);
		h += sprintf(h, n ? ",%lld" : "%lld", (long long)s->v[j - 1]);
	}
	strcpy(l, "}");
	strcpy(h, "}");
	return n;
}

/* ring_push - a message produced: its ticket */
static uintptr_t
ring_push(struct ring *r, int64_t seq)
{
	struct sent	*v;
	size_t		 cap;
	uintptr_t	 t;

	if (r->tail - r->head == r->cap) {
		cap = r->cap ? r->cap * 2 : 4096;
		v = xcalloc(cap, sizeof(*v));
		for (t = r->head; t != r->tail; t++)
			v[t & (cap - 1)] = r->v[t & (r->cap - 1)];
		free(r->v);
		r->v = v;
		r->cap = cap;
	}
	r->v[r->tail & (r->cap - 1)].seq = seq;
	r->v[r->tail & (r->cap - 1)].reported = 0;
	return r->tail++;
}

/* ring_report - ticket t has its report: its seq, or -1 when it is not
 * one of the ring's (a producer's before the last was freed) */
static int64_t
ring_report(struct ring *r, uintptr_t t)
{
	int64_t	seq;

	if (t - r->head >= r->tail - r->head)
		return -1;
	r->v[t & (r->cap - 1)].reported = 1;
	seq = r->v[t & (r->cap - 1)].seq;
	while (r->head != r->tail && r->v[r->head & (r->cap - 1)].reported)
		r->head++;
	return seq;
}

/* ring_low - the seq of the oldest message without a report; INT64_MAX
 * when every one has it */
static int64_t
ring_low(const struct ring *r)
{
	if (r->head == r->tail)
		return INT64_MAX;
	return r->v[r->head & (r->cap - 1)].seq;
}

/* holes_seen - seqs between the last one read and seq are holes */
static void
holes_seen(int64_t from, int64_t seq, uint64_t now)
{
	int64_t	s;

	if (seq - from > HOLE_MAX)
		return;		/* a jump (a crash, a rewind): not holes */
	for (s = from + 1; s < seq && ob.pos.nholes < HOLE_MAX; s++) {
		ob.pos.holes[ob.pos.nholes].seq = s;
		ob.pos.holes[ob.pos.nholes++].seen_us = now;
	}
}

/* holes_forget - drop seq (found), or every hole older than the TTL */
static void
holes_forget(int64_t seq, uint64_t now)
{
	size_t	i, j;

	for (i = j = 0; i < ob.pos.nholes; i++)
		if (ob.pos.holes[i].seq != seq &&
		    now - ob.pos.holes[i].seen_us < HOLE_TTL_US)
			ob.pos.holes[j++] = ob.pos.holes[i];
	ob.pos.nholes = j;
}

/* pos_take - seq was read: a hole filled, or the cursor moves past it */
static void
pos_take(int64_t seq, uint64_t now)
{
	if (ob.pos.started && seq <= ob.pos.cursor)
		holes_forget(seq, now);
	else {
		if (ob.pos.started)
			holes_seen(ob.pos.cursor, seq, now);
		ob.pos.cursor = seq;
		ob.pos.started = 1;
	}
}

/* pos_reset - read every row left from the oldest, late ones too; a
 * read under way is dropped when it comes */
static void
pos_reset(void)
{
	ob.pos.cursor = 0;
	ob.pos.started = 0;
	ob.pos.nholes = 0;
	ob.gen++;
}

/* set_up - Kafka reachable or not; each change logged once */
static void
set_up(int up)
{
	if (up == ob.up)
		return;
	if (!up)
		log_warnx("outbox: Kafka: every broker is down (%s); reports "
		    "wait in ocs_outbox", ob.brokers);
	else if (ob.up == 0)
		log_info("outbox: Kafka: a broker is reachable again");
	else
		log_info("outbox: Kafka: connected to %s, topic %s",
		    ob.brokers, ob.topic);
	ob.up = up;
	metric_set(ob.m_up, up);
}

/* ---- librdkafka's callbacks, served from the loop by rd_kafka_poll ---- */

/* on_report - a delivery report: delete the row, or rewind */
static void
on_report(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	int64_t	seq = ring_report(&ob.sent, (uintptr_t)m->_private);

	if (seq == -1)
		return;
	if (ob.inflight > 0)
		ob.inflight--;
	if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
		seqs_add(&ob.done, seq);
		metric_inc(ob.m_reports);
		backoff_reset(&ob.retry);
		set_up(1);
		if (ob.failing)
			log_info("outbox: reports are delivered again");
		ob.failing = 0;
		return;
	}
	/* Our own purge: the failure that caused it is counted. */
	if (ob.stopping || ob.closing ||
	    m->err == RD_KAFKA_RESP_ERR__PURGE_QUEUE ||
	    m->err == RD_KAFKA_RESP_ERR__PURGE_INFLIGHT)
		return;
	metric_inc(ob.m_failures);
	if (!ob.failing)
		log_warnx("outbox: report %lld was not delivered: %s; the "
		    "relay starts again from the oldest row left",
		    (long long)seq, rd_kafka_err2str(m->err));
	ob.failing = 1;
	if (!ob.failed)
		ob.purge = 1;
	ob.failed = 1;
}

static void
on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN)
		set_up(0);
	else if (err == RD_KAFKA_RESP_ERR__FATAL)
		log_warnx("outbox: Kafka producer: %s; it is made again",
		    reason);
	else
		log_debug("outbox: Kafka: %s", reason);
}

/* stats_up - does librdkafka's statistics JSON show a broker UP? */
static int
stats_up(const char *json, size_t len)
{
	json_t		*root, *brokers, *b;
	const char	*name, *state;
	int		 up = 0;

	if ((root = json_loadb(json, len, 0, NULL)) == NULL)
		return 0;
	brokers = json_object_get(root, "brokers");
	json_object_foreach(brokers, name, b) {
		state = json_string_value(json_object_get(b, "state"));
		if (state != NULL && strcmp(state, "UP") == 0)
			up = 1;
	}
	json_decref(root);
	return up;
}

/* on_stats - every second; only needed to see Kafka come back */
static int
on_stats(rd_kafka_t *rk, char *json, size_t len, void *opaque)
{
	if (ob.up != 1 && stats_up(json, len))
		set_up(1);
	return 0;
}

/* on_log - librdkafka's own lines, which an outage repeats: debug only */
static void
on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	log_debug("outbox: rdkafka %s: %s", fac, buf);
}

/* ---- the loop's events ---- */

/* on_pipe - librdkafka's queue has something: serve all of it */
static void
on_pipe(evutil_socket_t fd, short what, void *arg)
{
	char	buf[256];

	while (read(fd, buf, sizeof(buf)) > 0)
		;
	if (ob.rk != NULL)
		rd_kafka_poll(ob.rk, 0);
	pump();
}

static void	 count(void);

/* on_tick - every second: lock, new rows, holes, the count, the stop */
static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
	if (ob.rk != NULL)
		rd_kafka_poll(ob.rk, 0);
	holes_forget(-1, now_mono_us());
	ob.want_read = 1;
	if (ob.inflight == 0 && !ob.failed && !ob.reading &&
	    ob.done.n == 0 && !ob.deleting) {
		pos_reset();
	}
	count();
	pump();
}

static void
on_kick(evutil_socket_t fd, short what, void *arg)
{
	pump();
}

/* on_retry - the rewind's backoff is over */
static void
on_retry(evutil_socket_t fd, short what, void *arg)
{
	ob.waiting = 2;
	pump();
}

/* ---- the relay ---- */

static void	 lock_try(void);
static void	 delete_done(void);
static void	 read_rows(void);
static int	 rewind_relay(void);

/*
 * pump - do the next thing: delete what was delivered, be the relay,
 * rewind after a failure, read the next rows
 */
static void
pump(void)
{
	if (ob.closing || ob.pg == NULL)
		return;
	if (ob.purge && ob.rk != NULL) {
		ob.purge = 0;
		rd_kafka_purge(ob.rk, RD_KAFKA_PURGE_F_QUEUE |
		    RD_KAFKA_PURGE_F_INFLIGHT);
		rd_kafka_poll(ob.rk, 0);
	}
	/* Deleting a delivered row is right whoever relays. */
	if (ob.done.n > 0 && !ob.deleting && ob.pgd != NULL &&
	    pgc_state(ob.pgd) == PGC_UP)
		delete_done();
	if (ob.stopping || pgc_state(ob.pg) != PGC_UP)
		return;
	if (!ob.locked) {
		lock_try();
		return;
	}
	if (ob.failed && rewind_relay() == -1)
		return;
	if (ob.reading || !ob.want_read ||
	    ob.inflight + ob.pending >= MAX_INFLIGHT)
		return;
	read_rows();
}

/*
 * rewind_relay - after a failed report: once every message has its
 * report and the backoff is over, start again from the oldest row (a new
 * producer if the old one is dead); -1 while waiting
 */
static int
rewind_relay(void)
{
	char	errstr[512];
	struct timeval tv;

	if (ob.inflight > 0 || ob.done.n > 0 || ob.deleting ||
	    ob.waiting == 1)
		return -1;
	if (ob.waiting == 0) {
		ob.waiting = 1;
		tv = util_tv_us(backoff_next(&ob.retry));
		evtimer_add(ob.ev_retry, &tv);
		return -1;
	}
	if (rd_kafka_fatal_error(ob.rk, errstr, sizeof(errstr)) !=
	    RD_KAFKA_RESP_ERR_NO_ERROR) {
		producer_free();
		if ((ob.rk = producer_new(errstr, sizeof(errstr))) == NULL)
			fatalx("outbox: cannot make the Kafka producer again: "
			    "%s", errstr);
	}
	ob.failed = 0;
	ob.waiting = 0;
	pos_reset();
	ob.want_read = 1;
	return 0;
}

static void
locked(struct pgc *pg, const PGresult *r, void *arg)
{
	ob.locking = 0;
	if (r == NULL || PQresultStatus(r) != PGRES_TUPLES_OK ||
	    PQntuples(r) != 1)
		return;
	if (strcmp(PQgetvalue(r, 0, 0), "t") != 0)
		return;
	ob.locked = 1;
	ob.want_read = 1;
	log_info("outbox: this instance relays ocs_outbox to Kafka");
	pump();
}

/* lock_try - be the relay; the others try again on each tick */
static void
lock_try(void)
{
	if (ob.locking)
		return;
	if (pgc_query(ob.pg, SQL_LOCK, 0, NULL, locked, NULL) == 0)
		ob.locking = 1;
}

static void
on_pg_state(struct pgc *pg, enum pgc_state st, void *arg)
{
	if (pg == ob.pg && st != PGC_UP) {
		/* The lock went with the connection. */
		ob.locked = 0;
		return;
	}
	pump();
}

/* deleted - the rows are gone; if not, they are deleted again later */
static void
deleted(struct pgc *pg, const PGresult *r, void *arg)
{
	size_t	i;

	ob.deleting = 0;
	if (r == NULL || PQresultStatus(r) != PGRES_COMMAND_OK)
		for (i = 0; i < ob.dying.n; i++)
			seqs_add(&ob.done, ob.dying.v[i]);
	ob.dying.n = 0;
	pump();
}

/*
 * done_ready - how many of the delivered seqs (put in order) to delete
 * now.  Those past the oldest message still without its report wait for
 * it, for up to HOLD_US: each partition's reports come on their own, and
 * what one of them has delivered alone is runs of a seq or two, each a
 * descent of the index.
 */
static size_t
done_ready(uint64_t now)
{
	int64_t	low = ring_low(&ob.sent);
	size_t	k;

	if (ob.held_us != 0 && now - ob.held_us >= HOLD_US)
		low = INT64_MAX;
	for (k = 0; k < ob.done.n && ob.done.v[k] >= low; k++)
		;
	if (k < ob.done.n) {			/* some to delete: in order */
		seqs_sort(&ob.done);
		for (k = 0; k < ob.done.n && ob.done.v[k] < low; k++)
			;
	} else
		k = 0;
	if (k == ob.done.n)
		ob.held_us = 0;
	else if (ob.held_us == 0)
		ob.held_us = now;
	return k;
}

/* delete_done - the delivered rows ready, in one DELETE by runs of seqs */
static void
delete_done(void)
{
	struct seqs	 t = ob.dying;
	char		*lo, *hi;
	const char	*p[2];
	size_t		 i, k, n;

	if ((k = done_ready(now_mono_us())) == 0)
		return;
	n = ob.done.n;
	ob.dying = ob.done;
	ob.dying.n = k;
	ob.done = t;
	ob.done.n = 0;
	for (i = k; i < n; i++)
		seqs_add(&ob.done, ob.dying.v[i]);
	seqs_runs(&ob.dying, &lo, &hi);
	p[0] = lo;
	p[1] = hi;
	if (pgc_query(ob.pgd, SQL_DELETE, 2, p, deleted, NULL) == 0)
		ob.deleting = 1;
	else
		deleted(ob.pg, NULL, NULL);
	free(lo);
	free(hi);
}

/*
 * produce - one row; 0, or -1 when librdkafka refused it (the relay
 * stops there: nothing after it may go first; its queue full, it goes on
 * once reports have come)
 */
static int
produce(int64_t seq, const char *key, const char *value, size_t len)
{
	rd_kafka_resp_err_t	err;

	if (rd_kafka_produce(ob.rkt, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY,
	    (void *)value, len, key, strlen(key),
	    (void *)(ob.sent.tail)) == 0) {
		ring_push(&ob.sent, seq);
		ob.inflight++;
		return 0;
	}
	err = rd_kafka_last_error();
	if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
		ob.want_read = 1;
		return -1;
	}
	metric_inc(ob.m_failures);
	if (!ob.failing)
		log_warnx("outbox: report %lld cannot be produced: %s; the "
		    "relay starts again from the oldest row left",
		    (long long)seq, rd_kafka_err2str(err));
	ob.failing = 1;
	ob.failed = 1;
	return -1;
}

/*
 * got_rows - produce what was read, in seq order, noting the holes.  The
 * read position moves past the whole batch first, so that the next read
 * goes out before these rows are produced and PostgreSQL reads it
 * meanwhile; if librdkafka takes only part of the batch, the position goes
 * back to the last row produced and that read is dropped when it comes.
 */
static void
got_rows(struct pgc *pg, const PGresult *r, void *arg)
{
	struct readpos	 before;
	int		 i, n;
	uint64_t	 now = now_mono_us();

	ob.reading = 0;
	if ((uintptr_t)arg != ob.gen)		/* read before a rewind */
		ob.want_read = 1;
	if (r == NULL || PQresultStatus(r) != PGRES_TUPLES_OK || !ob.locked ||
	    ob.failed || ob.stopping || (uintptr_t)arg != ob.gen) {
		pump();
		return;
	}
	n = PQntuples(r);
	before = ob.pos;
	ob.batch.n = 0;
	for (i = 0; i < n; i++) {
		seqs_add(&ob.batch, strtoll(PQgetvalue(r, i, 0), NULL, 10));
		pos_take(ob.batch.v[i], now);
	}
	/* A full batch: more rows wait; read them now. */
	ob.pending = (size_t)n;
	if (n >= READ_BATCH)
		ob.want_read = 1;
	pump();
	ob.pending = 0;
	for (i = 0; i < n; i++)
		if (produce(ob.batch.v[i], PQgetvalue(r, i, 1),
		    PQgetvalue(r, i, 2), (size_t)PQgetlength(r, i, 2)) == -1)
			break;
	if (i < n) {
		ob.pos = before;
		ob.gen++;
		for (n = i, i = 0; i < n; i++)
			pos_take(ob.batch.v[i], now);
		ob.want_read = !ob.failed;
	}
	pump();
}

/* read_rows - the next batch after the cursor, with the holes */
static void
read_rows(void)
{
	char		 cur[24], *arr = NULL;
	const char	*p[2];
	int		 rc;
	int64_t		 v[HOLE_MAX];
	size_t		 i;

	ob.want_read = 0;
	for (i = 0; i < ob.pos.nholes; i++)
		v[i] = ob.pos.holes[i].seq;
	snprintf(cur, sizeof(cur), "%lld", (long long)ob.pos.cursor);
	p[0] = cur;
	p[1] = arr = seqs_array(v, ob.pos.nholes);
	rc = pgc_query(ob.pg, SQL_READ, 2, p, got_rows, (void *)ob.gen);
	free(arr);
	if (rc == 0)
		ob.reading = 1;
}

/*
 * count - the depth gauge, every second; on the deletes' connection, as
 * the reads are the relay's pace.  A count of a long table takes long
 * (every row is read): the next one waits 50 times as long as it took, so
 * that counting costs PostgreSQL at most 2 % of its time.
 */
static void
counted(struct pgc *pg, const PGresult *r, void *arg)
{
	uint64_t	now = now_mono_us();

	ob.counting = 0;
	ob.count_next_us = now + COUNT_SPACING * (now - ob.count_us);
	if (r == NULL || PQresultStatus(r) != PGRES_TUPLES_OK ||
	    PQntuples(r) != 1)
		return;
	ob.depth = (size_t)strtoull(PQgetvalue(r, 0, 0), NULL, 10);
	metric_set(ob.m_depth, (double)ob.depth);
}

static void
count(void)
{
	uint64_t	now = now_mono_us();

	if (ob.counting || ob.pgd == NULL || pgc_state(ob.pgd) != PGC_UP ||
	    now < ob.count_next_us)
		return;
	if (pgc_query(ob.pgd, SQL_COUNT, 0, NULL, counted, NULL) == 0) {
		ob.counting = 1;
		ob.count_us = now;
	}
}
