/* SPDX-License-Identifier: Apache-2.0 */
/*
 * outbox - the outbound worker's reports, relayed from ocs_outbox to Kafka
 * (docs/outbound.md, "Reporting to Kafka").
 *
 * outbox_put writes a report in the caller's transaction.  The relay reads
 * the table in seq order, in batches, produces each row with librdkafka's
 * idempotent producer and, once the delivery report says delivered, clears
 * the row from the table.  Messages are never timed out by librdkafka (a
 * Kafka outage holds them, in order, until it ends); a report that fails
 * all the same stops the relay: once every message in flight has its
 * report, it starts again from the oldest row left, after a backoff.  The
 * idempotent producer with the gapless guarantee means that what Kafka
 * holds of one partition is always a prefix of what was produced to it,
 * so a key's reports reach Kafka in seq order, duplicates aside.
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
 * Clearing.  PostgreSQL's CPU per row sets the relay's pace, and deleting
 * row by row cost it as much as reading (and a vacuum after).  So
 * ocs_outbox is partitioned (migration 2) into a ring of PART_COUNT
 * partitions by seq / PART_SLICE: a slice of consecutive seqs fills one
 * partition, the next slice the next one.  The delivered seqs are kept,
 * per partition, as runs; a partition is emptied by TRUNCATE (a few
 * milliseconds, whatever its size) once its slice is sealed (the relay
 * read a later one, and every row of it has its report), in a transaction
 * on the reads' connection that:
 *
 *   - locks the partition NOWAIT, so it fails at once while any other
 *     transaction holds a lock on it, above all a writer's open
 *     transaction that inserted into it: one that took its seq before and
 *     commits after the relay read past it;
 *   - then, under the lock, looks for a row in it whose seq is in none of
 *     the kept runs (an index probe per gap between them); with the lock
 *     held every transaction that wrote there has ended, so a row not
 *     delivered would be seen: a late commit, or a row of the ring's next
 *     lap (a backlog longer than the ring);
 *   - and truncates only if there is none.
 *
 * A writer whose INSERT took its seq before the lock and writes after it
 * puts its row in the emptied partition, where the relay finds it as any
 * late row.  A partition that cannot be truncated (its lock held for
 * CLEAR_TRIES tries a second apart, or a row not delivered after them)
 * has its kept rows deleted by runs of seqs instead; one that holds the
 * next lap waits until that row is delivered too.  The slice still being
 * written is not sealed: its kept rows are cleared when the relay is idle
 * (nothing to read, nothing in flight), by DELETE when they are few, so
 * that a steady trickle of reports leaves the table small and a crash
 * sends few again, by a truncation when they are many and no writer is in
 * it.  The partition key is a function of seq, so every seq has a
 * partition and a partition's primary key keeps seq unique in the table.
 *
 * The delivered seqs come from the ring of messages in flight as its
 * oldest leave it, in the order produced (nearly seq order: the reports
 * of Kafka's partitions come apart).  A read stops before the first kept
 * seq after its cursor and then skips the kept stretch: rows delivered
 * and not cleared yet are never read, nor produced, again.
 *
 * Reading: after a full batch the next read goes out before the batch is
 * produced, so that PostgreSQL reads while the relay produces; a read
 * without holes is a plain ordered read of the partitions' indexes.
 *
 * Delivery reports, errors and statistics come through librdkafka's main
 * queue, which writes to a pipe when it stops being empty: the loop serves
 * them at once and never polls in a busy loop.
 *
 * What it touches: ocs_outbox and its partitions ocs_outbox_0..15, on its
 * own two PostgreSQL connections (the lock, the reads and the truncations
 * on one, the deletes and the count on the other); the topic
 * workers.outbound.kafka_topic; the metrics tenantd_outbound_outbox_depth,
 * _reports_total, _report_failures_total and _kafka_up.
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

#define READ_BATCH	10000		/* rows per SELECT */
#define MAX_INFLIGHT	40000		/* produced, no report yet */
#define TICK_S		1.0
#define STOP_MS		2000
#define HOLE_MAX	1024
#define HOLE_TTL_US	(60 * 1000000ULL)
#define COUNT_SPACING	50		/* a count's time, till the next */
#define MOCK_PARTITIONS	4

/*
 * ocs_outbox's layout (migration 2): seq n is in partition
 * n / PART_SLICE % PART_COUNT, so that each partition holds slices of
 * PART_SLICE consecutive seqs, and the ring goes round once every
 * PART_COUNT * PART_SLICE seqs.  Changing them takes a new migration.
 */
#define PART_COUNT	16
#define PART_SLICE	200000
#define STR_(x)		#x
#define STR(x)		STR_(x)

#define TRUNC_MIN	10000		/* fewer kept rows: a DELETE */
#define CLEAR_TRIES	5		/* truncations tried before a DELETE */
#define CLEAR_RETRY_US	1000000		/* between two tries */

/*
 * Migration 2 of the outbound worker (outbound.c): the table partitioned
 * into the ring, the old one's rows moved in under their seqs, the
 * sequence kept.  A partition's key is a function of seq, so each
 * partition's primary key keeps seq unique in the whole table.
 */
const char outbox_migration_2[] =
    "ALTER TABLE ocs_outbox RENAME TO ocs_outbox_v1;"
    "ALTER SEQUENCE ocs_outbox_seq_seq OWNED BY NONE;"
    "CREATE TABLE ocs_outbox ("
    " seq bigint NOT NULL DEFAULT nextval('ocs_outbox_seq_seq'),"
    " id uuid NOT NULL,"
    " key text NOT NULL,"
    " value text NOT NULL,"
    " created timestamptz NOT NULL DEFAULT now())"
    " PARTITION BY LIST ((seq / " STR(PART_SLICE) " % " STR(PART_COUNT) "));"
    "DO $$ BEGIN FOR i IN 0.." STR(PART_COUNT) " - 1 LOOP EXECUTE format("
    "'CREATE TABLE ocs_outbox_%s PARTITION OF ocs_outbox (PRIMARY KEY (seq))"
    " FOR VALUES IN (%s)', i, i); END LOOP; END $$;"
    "ALTER SEQUENCE ocs_outbox_seq_seq OWNED BY ocs_outbox.seq;"
    "INSERT INTO ocs_outbox (seq, id, key, value, created)"
    " SELECT seq, id, key, value, created FROM ocs_outbox_v1;"
    "DROP TABLE ocs_outbox_v1;";

static const char SQL_PUT[] =
    "INSERT INTO ocs_outbox (id, key, value) VALUES ($1, $2, $3)";
static const char SQL_LOCK[] =
    "SELECT pg_try_advisory_lock(hashtext('tenantd:outbox:' || "
    "current_schema()))";
/*
 * The next rows, with the holes the relay read past: a hole committed
 * since comes first, before the rows after it (a key's later report may
 * be among them: its earlier one must not follow it).  The rows after the
 * cursor stop before $3, where delivered rows not yet cleared begin: the
 * relay never reads those again.
 */
static const char SQL_READ_HOLES[] =
    "SELECT seq, key, value FROM ("
    "SELECT seq, key, value FROM ocs_outbox WHERE seq = ANY($3::bigint[]) "
    "UNION ALL (SELECT seq, key, value FROM ocs_outbox WHERE seq > $1 "
    "AND seq < $2 ORDER BY seq LIMIT " STR(READ_BATCH) ")) r ORDER BY seq";
/* The same without holes: a tenth cheaper for PostgreSQL (no merge). */
static const char SQL_READ[] =
    "SELECT seq, key, value FROM ocs_outbox WHERE seq > $1 AND seq < $2 "
    "ORDER BY seq LIMIT " STR(READ_BATCH);
/*
 * Delivered rows as runs lo..hi of consecutive seqs, every number of a run
 * delivered: a range scan of each partition's index per run rather than a
 * descent per row.  On the parent, so that it works on either layout.
 */
static const char SQL_DELETE[] =
    "DELETE FROM ocs_outbox o USING unnest($1::bigint[], $2::bigint[]) "
    "AS r(lo, hi) WHERE o.seq BETWEEN r.lo AND r.hi";
/*
 * Emptying partition %d: its lock, taken only if no other transaction
 * holds one (a writer's open transaction in it, a count, a vacuum); then
 * the first row left in it that was not delivered, its seq in one of the
 * gaps $1..$2 between the delivered runs (a probe of the index per gap);
 * if there is none, TRUNCATE.
 */
static const char SQL_LOCK_PART[] =
    "LOCK TABLE ocs_outbox_%d IN ACCESS EXCLUSIVE MODE NOWAIT";
static const char SQL_CHECK_PART[] =
    "SELECT min(o.seq) FROM unnest($1::bigint[], $2::bigint[]) AS g(lo, hi), "
    "LATERAL (SELECT seq FROM ocs_outbox_%d WHERE seq BETWEEN g.lo AND g.hi "
    "ORDER BY seq LIMIT 1) o";
static const char SQL_TRUNCATE_PART[] = "TRUNCATE ocs_outbox_%d";
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

/* The seqs lo..hi, every one. */
struct run {
	int64_t		 lo, hi;
};

struct runs {
	struct run	*v;		/* in order, apart (never touching) */
	size_t		 n, cap;
	size_t		 nseq;		/* seqs in all the runs */
};

/* A partition of ocs_outbox: its rows delivered and still in the table. */
struct part {
	struct runs	 kept;
	uint64_t	 retry_us;	/* not cleared again before */
	int		 fails;		/* truncations that did not happen */
	int64_t		 ahead;		/* a row of a later lap, not read */
};

enum clear_how {
	CLEAR_NONE,
	CLEAR_TRUNCATE,
	CLEAR_DELETE,
};

static struct outbox {
	struct event_base	*base;
	struct pgc		*pg;		/* the lock, reads, truncations */
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
	int			 locking, reading, counting;
	int			 want_read;	/* kicked, ticked, or more rows */
	int			 caught_up;	/* the last read was not full */
	uintptr_t		 gen;		/* of the reads: a read of an
						 * older one is dropped */
	struct readpos		 pos;
	int64_t			 read_end;	/* the read stops before */
	int64_t			 read_skip;	/* then: kept up to here */
	int64_t			 seen_hi;	/* the highest seq read */
	size_t			 inflight;
	size_t			 pending;	/* read, being produced */
	struct seqs		 batch;		/* their seqs */
	struct ring		 sent;		/* produced */
	struct seqs		 done;		/* delivered, not yet kept */
	struct part		 parts[PART_COUNT];
	int64_t			 kept_hi;	/* no kept seq is higher */

	int			 clear_due;	/* something changed: look */
	int			 clearing;	/* a truncation or a delete */
	enum clear_how		 clearing_how;
	int			 clr_part;	/* of this partition */
	int			 clr_lock;	/* its lock: 1 taken, 0 held by
						 * another, -1 no such table */
	int64_t			 clr_left;	/* a row not delivered, or 0 */
	int			 failed;	/* a report failed: rewind */
	int			 purge;		/* purge what is in flight */
	int			 waiting;	/* the rewind's backoff: 1 runs,
						 * 2 over */
	int			 failing;	/* logged, until a delivery */
	struct backoff		 retry;

	int			 stopping, closing;
	uint64_t		 stop_us;
	size_t			 depth;
	size_t			 count_kept;	/* kept when the count began */
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
static size_t	 kept_total(void);

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
	ob.clear_due = 1;
	pump();
}

int
outbox_drained(void)
{
	if (ob.inflight == 0 && ob.done.n == 0 && !ob.clearing &&
	    kept_total() == 0)
		return 1;
	return ob.stopping && (ob.pgd == NULL || pgc_state(ob.pgd) != PGC_UP ||
	    now_mono_us() >= ob.stop_us);
}

void
outbox_cleanup(void)
{
	size_t	i;

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
	for (i = 0; i < PART_COUNT; i++)
		free(ob.parts[i].kept.v);
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

/* part_of - the partition of ocs_outbox that holds seq */
static int
part_of(int64_t seq)
{
	return (int)(seq / PART_SLICE % PART_COUNT);
}

/* runs_find - the first run that seq joins or that lies after it */
static size_t
runs_find(const struct runs *r, int64_t seq)
{
	size_t	lo = 0, hi = r->n, mid;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if (r->v[mid].hi + 1 < seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* runs_has - whether seq is in one of the runs */
static int
runs_has(const struct runs *r, int64_t seq)
{
	size_t	i = runs_find(r, seq);

	return i < r->n && r->v[i].lo <= seq && seq <= r->v[i].hi;
}

/*
 * runs_add - the seqs lo..hi join the runs: a run of their own, or the
 * runs they touch made one
 */
static void
runs_add(struct runs *r, int64_t lo, int64_t hi)
{
	size_t	i = runs_find(r, lo), k;

	if (i == r->n || r->v[i].lo > hi + 1) {
		if (r->n == r->cap) {
			r->cap = r->cap ? r->cap * 2 : 16;
			r->v = xrealloc(r->v, r->cap * sizeof(*r->v));
		}
		memmove(r->v + i + 1, r->v + i, (r->n - i) * sizeof(*r->v));
		r->v[i].lo = lo;
		r->v[i].hi = hi;
		r->n++;
		r->nseq += (size_t)(hi - lo + 1);
		return;
	}
	r->nseq -= (size_t)(r->v[i].hi - r->v[i].lo + 1);
	if (lo < r->v[i].lo)
		r->v[i].lo = lo;
	if (hi > r->v[i].hi)
		r->v[i].hi = hi;
	for (k = i + 1; k < r->n && r->v[k].lo <= r->v[i].hi + 1; k++) {
		r->nseq -= (size_t)(r->v[k].hi - r->v[k].lo + 1);
		if (r->v[k].hi > r->v[i].hi)
			r->v[i].hi = r->v[k].hi;
	}
	memmove(r->v + i + 1, r->v + k, (r->n - k) * sizeof(*r->v));
	r->n -= k - i - 1;
	r->nseq += (size_t)(r->v[i].hi - r->v[i].lo + 1);
}

/*
 * runs_literal - the array literal "{...}" of the runs' first seqs (hi 0)
 * or last seqs (hi 1), each plus add, after *first and before *last when
 * they are not NULL; malloc'ed
 */
static char *
runs_literal(const struct runs *r, int hi, int64_t add, const int64_t *first,
    const int64_t *last)
{
	char	*buf = xmalloc((r->n + 2) * 21 + 3), *p = buf;
	size_t	 i;

	*p++ = '{';
	if (first != NULL)
		p += sprintf(p, "%lld", (long long)*first);
	for (i = 0; i < r->n; i++)
		p += sprintf(p, p[-1] == '{' ? "%lld" : ",%lld",
		    (long long)((hi ? r->v[i].hi : r->v[i].lo) + add));
	if (last != NULL)
		p += sprintf(p, p[-1] == '{' ? "%lld" : ",%lld",
		    (long long)*last);
	strcpy(p, "}");
	return buf;
}

/* runs_arrays - the runs' first and last seqs, for SQL_DELETE */
static void
runs_arrays(const struct runs *r, char **lo, char **hi)
{
	*lo = runs_literal(r, 0, 0, NULL, NULL);
	*hi = runs_literal(r, 1, 0, NULL, NULL);
}

/*
 * runs_gaps - the first and last seqs of the gaps between the runs, and
 * before and after them all: every seq in no run, for SQL_CHECK_PART
 */
static void
runs_gaps(const struct runs *r, char **lo, char **hi)
{
	static const int64_t	min = INT64_MIN, max = INT64_MAX;

	*lo = runs_literal(r, 1, 1, &min, NULL);
	*hi = runs_literal(r, 0, -1, NULL, &max);
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

/*
 * ring_report - ticket t has its report, delivered (ok) or not: its seq,
 * or -1 when it is not one of the ring's (a producer's before the last
 * was freed).  The messages that leave the ring, the oldest with all
 * their reports, add their seqs to done when they were delivered: in the
 * order they were produced, which is nearly seq order (the reports of
 * Kafka's partitions come apart).
 */
static int64_t
ring_report(struct ring *r, uintptr_t t, int ok, struct seqs *done)
{
	struct sent	*e;
	int64_t		 seq;

	if (t - r->head >= r->tail - r->head)
		return -1;
	r->v[t & (r->cap - 1)].reported = ok ? 1 : 2;
	seq = r->v[t & (r->cap - 1)].seq;
	while (r->head != r->tail &&
	    (e = &r->v[r->head & (r->cap - 1)])->reported) {
		if (e->reported == 1)
			seqs_add(done, e->seq);
		r->head++;
	}
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

/*
 * pos_skip - every row before end was read, and the rows from end to skip
 * were delivered (kept, not cleared yet): the cursor moves past them
 */
static void
pos_skip(int64_t end, int64_t skip, uint64_t now)
{
	if (ob.pos.started)
		holes_seen(ob.pos.cursor, end, now);
	ob.pos.cursor = skip;
	ob.pos.started = 1;
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
	int64_t	seq = ring_report(&ob.sent, (uintptr_t)m->_private,
	    m->err == RD_KAFKA_RESP_ERR_NO_ERROR, &ob.done);

	if (seq == -1)
		return;
	if (ob.inflight > 0)
		ob.inflight--;
	if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
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
	ob.clear_due = 1;
	if (ob.inflight == 0 && !ob.failed && !ob.reading &&
	    ob.done.n == 0 && !ob.clearing) {
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

/* ---- the delivered rows: kept, then cleared ---- */

/*
 * file_done - the delivered seqs join their partitions' kept runs, by
 * runs of consecutive seqs (done is nearly in order); those of the
 * partition being cleared wait until it is
 */
static void
file_done(void)
{
	size_t	i, j, k = 0;
	int	p;

	for (i = 0; i < ob.done.n; i = j) {
		p = part_of(ob.done.v[i]);
		for (j = i + 1; j < ob.done.n &&
		    ob.done.v[j] == ob.done.v[j - 1] + 1 &&
		    ob.done.v[j] / PART_SLICE == ob.done.v[i] / PART_SLICE; j++)
			;
		if (ob.clearing && p == ob.clr_part) {
			while (i < j)
				ob.done.v[k++] = ob.done.v[i++];
			continue;
		}
		runs_add(&ob.parts[p].kept, ob.done.v[i], ob.done.v[j - 1]);
		if (ob.done.v[j - 1] > ob.kept_hi)
			ob.kept_hi = ob.done.v[j - 1];
	}
	ob.done.n = k;
}

/* kept - whether seq was delivered and its row is still in the table */
static int
kept(int64_t seq)
{
	return seq <= ob.kept_hi && runs_has(&ob.parts[part_of(seq)].kept, seq);
}

/* kept_end - the last seq of the kept run that holds seq */
static int64_t
kept_end(int64_t seq)
{
	const struct runs	*r = &ob.parts[part_of(seq)].kept;

	return r->v[runs_find(r, seq)].hi;
}

/*
 * kept_next - the first kept seq after after, or INT64_MAX; *end gets
 * the last of the kept seqs that follow it without a gap (the runs of
 * consecutive slices are in two partitions)
 */
static int64_t
kept_next(int64_t after, int64_t *end)
{
	const struct runs	*r;
	int64_t			 first = INT64_MAX, e;
	size_t			 i, j;

	if (after >= ob.kept_hi)
		return INT64_MAX;
	for (j = 0; j < PART_COUNT; j++) {
		r = &ob.parts[j].kept;
		if ((i = runs_find(r, after + 2)) == r->n)
			continue;
		e = r->v[i].lo > after ? r->v[i].lo : after + 1;
		if (e < first)
			first = e;
	}
	if (first == INT64_MAX)
		return first;
	for (e = kept_end(first); e < ob.kept_hi && kept(e + 1);
	    e = kept_end(e + 1))
		;
	*end = e;
	return first;
}

static size_t
kept_total(void)
{
	size_t	i, n = 0;

	for (i = 0; i < PART_COUNT; i++)
		n += ob.parts[i].kept.nseq;
	return n;
}

/*
 * part_sealed - whether what p keeps is of a slice that writers are done
 * with (the relay read a later one; only a transaction that took its seq
 * before could still write in it) and none of it is in flight
 */
static int
part_sealed(const struct part *p)
{
	int64_t	hi = p->kept.v[p->kept.n - 1].hi;

	return hi / PART_SLICE < ob.seen_hi / PART_SLICE &&
	    ring_low(&ob.sent) / PART_SLICE > hi / PART_SLICE;
}

/*
 * relay_idle - nothing in flight and nothing more to read: the time to
 * clear what was delivered of the slice being written
 */
static int
relay_idle(void)
{
	if (ob.inflight > 0 || ob.pending > 0)
		return 0;
	return ob.stopping || !ob.locked || (ob.caught_up && !ob.reading);
}

/*
 * clear_pick - which partition's kept rows to clear now (*which), and
 * how.  A sealed one is truncated, as soon as all of it has its reports;
 * if it cannot be after CLEAR_TRIES tries a second apart, its rows are
 * deleted.  One that holds a later lap of the ring too (a backlog longer
 * than the ring) waits until that row was delivered.  The slice being
 * written is cleared when the relay is idle: a DELETE of its few rows, or
 * a truncation of its many, which no writer may be in (else a DELETE).
 */
static enum clear_how
clear_pick(uint64_t now, int idle, int *which)
{
	struct part	*p;
	int		 j, sealed;

	for (j = 0; j < PART_COUNT; j++) {
		p = &ob.parts[j];
		if (p->kept.nseq == 0 || now < p->retry_us ||
		    (p->kept.v[p->kept.n - 1].hi < p->ahead && !idle))
			continue;
		*which = j;
		sealed = part_sealed(p);
		if (sealed && p->fails < CLEAR_TRIES)
			return CLEAR_TRUNCATE;
		if (!sealed && !idle)
			continue;
		if (!sealed && p->kept.nseq >= TRUNC_MIN && p->fails == 0)
			return CLEAR_TRUNCATE;
		return CLEAR_DELETE;
	}
	return CLEAR_NONE;
}

static void	 truncate_part(int);
static void	 delete_part(int);

/* clear - clear a partition's kept rows, when one is due */
static void
clear(void)
{
	enum clear_how	how;
	int		j;

	if (ob.clearing)
		return;
	how = clear_pick(now_mono_us(), relay_idle(), &j);
	if (how == CLEAR_TRUNCATE && pgc_state(ob.pg) != PGC_UP)
		how = CLEAR_DELETE;
	if (how == CLEAR_DELETE && (ob.pgd == NULL ||
	    pgc_state(ob.pgd) != PGC_UP))
		return;
	if (how == CLEAR_TRUNCATE)
		truncate_part(j);
	else if (how == CLEAR_DELETE)
		delete_part(j);
}

/* clear_end - the partition's kept rows are gone, or not yet */
static void
clear_end(int ok)
{
	struct part	*p = &ob.parts[ob.clr_part];
	int64_t		 hi = p->kept.n > 0 ? p->kept.v[p->kept.n - 1].hi : 0;

	ob.clearing = 0;
	ob.clear_due = 1;
	if (ok) {
		p->kept.n = p->kept.nseq = 0;
		p->fails = 0;
		p->retry_us = 0;
	} else if (ob.clearing_how == CLEAR_TRUNCATE &&
	    ob.clr_left / PART_SLICE > hi / PART_SLICE) {
		p->ahead = ob.clr_left;		/* a later lap: not a failure */
	} else {
		if (ob.clearing_how == CLEAR_TRUNCATE)
			p->fails = ob.clr_lock == -1 ? CLEAR_TRIES :
			    p->fails + 1;
		if (ob.clearing_how == CLEAR_DELETE ||
		    (p->kept.n > 0 && part_sealed(p)))
			p->retry_us = now_mono_us() + CLEAR_RETRY_US;
	}
	pump();
}

static void
part_truncated(struct pgc *pg, const PGresult *r, void *arg)
{
	clear_end(r != NULL && PQresultStatus(r) == PGRES_COMMAND_OK &&
	    strcmp(PQcmdStatus((PGresult *)r), "COMMIT") == 0);
}

static void
part_kept(struct pgc *pg, const PGresult *r, void *arg)
{
	clear_end(0);
}

/* part_locked - the partition's lock, or why not */
static void
part_locked(struct pgc *pg, const PGresult *r, void *arg)
{
	const char	*state;

	if (r != NULL && PQresultStatus(r) == PGRES_COMMAND_OK)
		ob.clr_lock = 1;
	else if (r != NULL && (state = PQresultErrorField(r,
	    PG_DIAG_SQLSTATE)) != NULL && strcmp(state, "42P01") == 0)
		ob.clr_lock = -1;	/* the table is not partitioned yet */
}

/*
 * part_checked - no row left in the locked partition that was not
 * delivered: truncate it; else leave it as it is, and note the row
 */
static void
part_checked(struct pgc *pg, const PGresult *r, void *arg)
{
	struct pgc_txn	*t = arg;
	char		 sql[64];
	int		 ok;

	ok = ob.clr_lock == 1 && r != NULL &&
	    PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
	if (ok && PQgetisnull(r, 0, 0)) {
		snprintf(sql, sizeof(sql), SQL_TRUNCATE_PART, ob.clr_part);
		pgc_txn_query(t, sql, 0, NULL, NULL, NULL);
		if (pgc_commit(t, part_truncated, NULL) == -1)
			ob.clearing = 0;	/* pgc is being freed */
		return;
	}
	if (ok)
		ob.clr_left = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
	if (pgc_rollback(t, part_kept, NULL) == -1)
		ob.clearing = 0;
}

/*
 * truncate_part - empty partition j, on the reads' connection (the reads'
 * locks never stand in the way): its lock if no one else holds one, then
 * the check that every row in it was delivered, then TRUNCATE
 */
static void
truncate_part(int j)
{
	struct pgc_txn	*t;
	char		 sql[256], *lo, *hi;
	const char	*p[2];

	if ((t = pgc_begin(ob.pg)) == NULL)
		return;
	ob.clearing = 1;
	ob.clearing_how = CLEAR_TRUNCATE;
	ob.clr_part = j;
	ob.clr_lock = 0;
	ob.clr_left = 0;
	snprintf(sql, sizeof(sql), SQL_LOCK_PART, j);
	pgc_txn_query(t, sql, 0, NULL, part_locked, NULL);
	runs_gaps(&ob.parts[j].kept, &lo, &hi);
	p[0] = lo;
	p[1] = hi;
	snprintf(sql, sizeof(sql), SQL_CHECK_PART, j);
	pgc_txn_query(t, sql, 2, p, part_checked, t);
	free(lo);
	free(hi);
}

static void
part_deleted(struct pgc *pg, const PGresult *r, void *arg)
{
	clear_end(r != NULL && PQresultStatus(r) == PGRES_COMMAND_OK);
}

/* delete_part - delete partition j's kept rows, by runs of seqs */
static void
delete_part(int j)
{
	char		*lo, *hi;
	const char	*p[2];

	runs_arrays(&ob.parts[j].kept, &lo, &hi);
	p[0] = lo;
	p[1] = hi;
	if (pgc_query(ob.pgd, SQL_DELETE, 2, p, part_deleted, NULL) == 0) {
		ob.clearing = 1;
		ob.clearing_how = CLEAR_DELETE;
		ob.clr_part = j;
	}
	free(lo);
	free(hi);
}

/* ---- the relay ---- */

static void	 lock_try(void);
static void	 read_rows(void);
static int	 rewind_relay(void);

/*
 * pump - do the next thing: keep what was delivered and clear what is
 * due, be the relay, rewind after a failure, read the next rows
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
	/* Clearing a delivered row is right whoever relays. */
	if (ob.done.n > 0) {
		file_done();
		ob.clear_due = 1;
	}
	if (ob.clear_due) {
		ob.clear_due = 0;
		clear();
	}
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

	if (ob.inflight > 0 || ob.done.n > 0 || ob.clearing ||
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
	ob.clear_due = 1;
	if (pg == ob.pg && st != PGC_UP) {
		/* The lock went with the connection. */
		ob.locked = 0;
		return;
	}
	pump();
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
		if (ob.batch.v[i] > ob.seen_hi)
			ob.seen_hi = ob.batch.v[i];
	}
	/* A full batch: more rows wait; read them now. */
	ob.pending = (size_t)n;
	ob.caught_up = n < READ_BATCH && ob.read_end == INT64_MAX;
	ob.clear_due = 1;
	if (n < READ_BATCH && ob.read_end != INT64_MAX)
		pos_skip(ob.read_end, ob.read_skip, now);
	if (n >= READ_BATCH || ob.read_end != INT64_MAX)
		ob.want_read = 1;
	pump();
	ob.pending = 0;
	for (i = 0; i < n; i++) {
		if (kept(ob.batch.v[i]))	/* read again: delivered */
			continue;
		if (produce(ob.batch.v[i], PQgetvalue(r, i, 1),
		    PQgetvalue(r, i, 2), (size_t)PQgetlength(r, i, 2)) == -1)
			break;
	}
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
	char		 cur[24], end[24], *arr = NULL;
	const char	*p[3];
	int		 rc;
	int64_t		 v[HOLE_MAX];
	size_t		 i;

	ob.want_read = 0;
	for (i = 0; i < ob.pos.nholes; i++)
		v[i] = ob.pos.holes[i].seq;
	ob.read_end = kept_next(ob.pos.cursor, &ob.read_skip);
	snprintf(cur, sizeof(cur), "%lld", (long long)ob.pos.cursor);
	snprintf(end, sizeof(end), "%lld", (long long)ob.read_end);
	p[0] = cur;
	p[1] = end;
	if (ob.pos.nholes > 0) {
		p[2] = arr = seqs_array(v, ob.pos.nholes);
		rc = pgc_query(ob.pg, SQL_READ_HOLES, 3, p, got_rows,
		    (void *)ob.gen);
	} else
		rc = pgc_query(ob.pg, SQL_READ, 2, p, got_rows,
		    (void *)ob.gen);
	free(arr);
	if (rc == 0)
		ob.reading = 1;
}

/*
 * count - the depth gauge, every second; on the deletes' connection, as
 * the reads are the relay's pace.  A count of a long table takes long
 * (every row is read): the next one waits 50 times as long as it took, so
 * that counting costs PostgreSQL at most 2 % of its time.  The rows kept
 * (delivered, not cleared yet) when it began are not waiting for Kafka.
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
	ob.depth = ob.depth > ob.count_kept ? ob.depth - ob.count_kept : 0;
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
		ob.count_kept = kept_total();
	}
}
