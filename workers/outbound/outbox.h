/* SPDX-License-Identifier: Apache-2.0 */
/*
 * outbox - the outbound worker's reports to Kafka, through the table
 * ocs_outbox (docs/outbound.md, "Reporting to Kafka").
 *
 * A report is written by outbox_put inside the caller's transaction, so it
 * exists if and only if the change it reports was committed.  The relay,
 * one per worker process, reads the table in seq order, produces each row
 * with an idempotent producer and clears it from the table once Kafka
 * acknowledged it (its partition truncated once every row in it was, or
 * the row deleted).
 * Only one instance relays at a time (a session advisory lock on the
 * relay's own PostgreSQL connection).
 */
#ifndef TENANTD_OUTBOX_H
#define TENANTD_OUTBOX_H

#include <stddef.h>

#include <jansson.h>

struct conf;
struct event_base;
struct pgc_txn;

/*
 * Start the relay on base: its own two PostgreSQL connections
 * (postgres.conninfo: the lock, reads and truncations; the deletes and the
 * count) and
 * its own producer (kafka.*) to the topic workers.outbound.kafka_topic;
 * kafka.brokers = "mock" runs librdkafka's mock cluster in this process.  0, or -1 (logged) when the producer
 * cannot be made.
 */
int		 outbox_start(struct event_base *, const struct conf *);
/* Read no more rows; what is in flight is delivered and cleared for up to
 * 2 s, the rest stays in the table for the next relay. */
void		 outbox_stop(void);
/* 1 when nothing is in flight or waits to be cleared; after outbox_stop,
 * also once the 2 s are over or PostgreSQL is away. */
int		 outbox_drained(void);
/* Free everything (what is still in flight stays in the table). */
void		 outbox_cleanup(void);

/*
 * Queue the report msg (a JSON object, borrowed; its "id" is set to a new
 * random UUID, its "time" to now in ms when absent) on txn, under the
 * Kafka key key.  0, or -1 when pgc refused the query.  Needs no relay:
 * any process may write reports.
 */
int		 outbox_put(struct pgc_txn *, const char *key, json_t *msg);
/* A transaction that put reports committed: read the table now. */
void		 outbox_kick(void);

/*
 * The outbound worker's migration 2 of ocs_outbox: the table partitioned
 * as the relay clears it, its rows and its sequence kept.
 */
extern const char outbox_migration_2[];

/* Rows waiting in ocs_outbox for Kafka, as last counted (every second,
 * less often when a count takes long; rows delivered and not yet cleared
 * are not counted). */
size_t		 outbox_depth(void);
/* 1 when a broker is reachable, 0 when all are down or not yet known. */
int		 outbox_kafka_up(void);

#endif
