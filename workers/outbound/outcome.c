/* SPDX-License-Identifier: Apache-2.0 */
/*
 * outcome - what an attempt's result does (docs/outbound.md,
 * "Treatments" and "Reporting to Kafka"): the list's treatments
 * (treat.c) decide the record's status and next time; the record, the
 * rest of its chain when the chain is done, and the attempt's, record's
 * and chain's reports are written in one transaction, tried again every
 * second until PostgreSQL takes them (the record's lease is renewed
 * meanwhile, so no one dials it).
 *
 * What it touches: the calling lists' tables and ocs_outbox on the
 * worker's PostgreSQL connection.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

#include <event2/event.h>

#include "cache.h"
#include "idmap.h"
#include "log.h"
#include "metrics.h"
#include "outbox.h"
#include "pgc.h"
#include "schema.h"
#include "strmap.h"
#include "util.h"
#include "voice.h"
#include "outbound_int.h"
#include "pacing.h"
#include "treat.h"
#include "window.h"
#include "dial_int.h"

/* An attempt's outcome, until PostgreSQL has it. */
struct outcome {
	json_int_t	 list;
	char		 rid[24];
	char		 res[16];
	char		 status[16];
	char		 sched[24];	/* "": unchanged */
	char		 chain[24];
	char		 history[256];
	char		 agent[64];
	int		 final_chain;
	char		*key;		/* of its reports */
	json_t		*msgs;		/* its reports */
	int		 tries;
	struct event	*retry;
	struct pgc_txn	*txn;		/* being written */
	LIST_ENTRY(outcome) entry;
};
static LIST_HEAD(, outcome) outcomes = LIST_HEAD_INITIALIZER(outcomes);
static unsigned		 pending_outcomes;

static size_t	 treatments_of(json_int_t, struct treatment *, size_t);
static void	 outcome_write(struct outcome *);
static void	 record_updated(struct pgc *, const PGresult *, void *);
static void	 outcome_written(struct pgc *, const PGresult *, void *);
static void	 on_outcome_retry(evutil_socket_t, short, void *);
static void	 outcome_retry(struct outcome *);
static void	 outcome_free(struct outcome *);

/* ---- outcomes ---- */

/* The list's treatments, as treat.c takes them. */
static size_t
treatments_of(json_int_t list, struct treatment *t, size_t max)
{
	const struct cobj	*l = cache_get(list), *o;
	json_t			*refs, *e, *v;
	size_t			 i, n = 0;

	if (l == NULL || (refs = cobj_get(l, "treatments")) == NULL)
		return 0;
	json_array_foreach(refs, i, e) {
		if (n == max || (o = cache_get(json_integer_value(e))) ==
		    NULL || !o->enabled || o->kind != CFG_TREATMENT)
			continue;
		memset(&t[n], 0, sizeof(t[n]));
		t[n].dbid = o->dbid;
		v = cobj_get(o, "callResult");
		t[n].result = treat_result_code(json_string_value(v));
		json_decref(v);
		v = cobj_get(o, "action");
		t[n].action = (enum treat_action)treat_action_parse(
		    json_string_value(v));
		json_decref(v);
#define INT_OF(f, dst) do {						\
		v = cobj_get(o, f);					\
		dst = (int)json_integer_value(v);			\
		json_decref(v);						\
	} while (0)
		INT_OF("interval", t[n].interval);
		INT_OF("increment", t[n].increment);
		INT_OF("attempts", t[n].attempts);
		/* RetryAt's time of day: "time", or "interval" as before it */
		v = cobj_get(o, "time");
		t[n].time = json_is_integer(v) ? (int)json_integer_value(v) :
		    t[n].interval;
		json_decref(v);
		INT_OF("cycle", t[n].cycle);
#undef INT_OF
		if ((int)t[n].action >= 0 && t[n].result >= 0)
			n++;
	}
	json_decref(refs);
	return n;
}



/*
 * finish - the attempt is over with result (a call_result code): the
 * record after its treatment, the reports, in one transaction.
 */
void
call_finish(struct call *c, int result)
{
	const struct cobj	*l = cache_get(c->list);
	struct group		*g = groups_get(c->group);
	struct treatment	 t[64];
	struct treat_in		 in;
	struct treat_out	 out;
	struct outcome		*o;
	json_t			*msg, *v;
	uint64_t		 now = now_wall_us() / 1000;

	if (g != NULL) {
		if (c->state == C_DIALING) {
			g->dialing--;
			/* A call cut while it rang tells nothing of how
			 * long it would have rung. */
			if (!c->cut)
				pace_sample(&g->samples, (now - c->dialed_ms) /
				    1000.0, 0);
		}
		else if (c->state == C_WAITING || c->state == C_ROUTING)
			g->waiting--;
		else
			g->connected--;
		g->fig.dialed++;
		if (c->state == C_CONNECTED && c->connected_ms > 0)
			g->fig.handled++;
	}
	roster_untake(c->agent);
	c->agent = NULL;
	log_debug("outbound: record %lld of list %lld: call result %d",
	    (long long)c->record, (long long)c->list, result);
	memset(&in, 0, sizeof(in));
	in.result = result;
	in.attempt = c->attempt;
	v = l != NULL ? cobj_get(l, "maxAttempts") : NULL;
	in.max_attempts = v != NULL ? (int)json_integer_value(v) : 10;
	json_decref(v);
	in.history = c->history;
	in.t = t;
	in.nt = treatments_of(c->list, t, 64);
	in.now = (time_t)(now / 1000);
	in.tz = dial_zone(c->tz, c->list);
	treat_apply(&in, &out);
	window_reset();
	o = xcalloc(1, sizeof(*o));
	LIST_INSERT_HEAD(&outcomes, o, entry);
	o->list = c->list;
	snprintf(o->rid, sizeof(o->rid), "%lld", (long long)c->record);
	snprintf(o->res, sizeof(o->res), "%d", result);
	snprintf(o->status, sizeof(o->status), "%d", out.record_status);
	if (out.sched != 0)
		snprintf(o->sched, sizeof(o->sched), "%lld",
		    (long long)out.sched);
	snprintf(o->chain, sizeof(o->chain), "%lld", (long long)c->chain);
	snprintf(o->history, sizeof(o->history), "%s", out.history);
	/* agent_id is varchar(32), as OCS has it */
	snprintf(o->agent, sizeof(o->agent), "%.32s", c->agent_id);
	o->final_chain = out.chain == TC_FINAL;
	o->key = xasprintf("%lld:%lld", (long long)c->list,
	    (long long)c->chain);
	o->msgs = json_array();
	msg = call_report(c, "finished");
	json_object_set_new(msg, "callResult", json_integer(result));
	json_object_set_new(msg, "callResultName",
	    json_string(treat_result_name(result)));
	json_object_set_new(msg, "duration", json_real((double)(now -
	    c->dialed_ms) / 1000.0));
	if (c->agent_dn[0] != '\0') {
		json_object_set_new(msg, "dn", json_string(c->agent_dn));
		json_object_set_new(msg, "agent", json_string(c->agent_id));
	}
	json_array_append_new(o->msgs, msg);
	msg = json_pack("{s:s, s:s, s:I, s:I, s:I, s:i, s:i, s:i, s:s, s:s}",
	    "type", "record", "tenant", ob.tenant,
	    "callingList", (json_int_t)c->list, "record_id",
	    (json_int_t)c->record, "chain_id", (json_int_t)c->chain,
	    "record_status", out.record_status, "call_result", result,
	    "attempt", c->attempt, "treatments", out.history,
	    "treatment", out.action);
	if (out.sched != 0)
		json_object_set_new(msg, "dial_sched_time",
		    json_integer((json_int_t)out.sched));
	json_array_append_new(o->msgs, msg);
	if (o->final_chain)
		json_array_append_new(o->msgs, json_pack("{s:s, s:s, s:I, "
		    "s:I, s:i, s:i}", "type", "chain", "tenant", ob.tenant,
		    "callingList", (json_int_t)c->list, "chainId",
		    (json_int_t)c->chain, "recordStatus", out.record_status,
		    "callResult", result));
	call_free(c);
	outcome_write(o);
}

/*
 * outcome_write - the record's update and its reports, in one
 * transaction; tried again every second while PostgreSQL does not take
 * it (the lease is renewed meanwhile).  A lease lost meanwhile (an
 * outage longer than the lease: another instance, or a sweep, took the
 * record back) leaves the record to its new holder: only the attempt's
 * report goes, marked late.
 */
static void
outcome_write(struct outcome *o)
{
	const char	*table = lists_table(o->list);
	const char	*p[7];
	char		*sql;

	if (table == NULL || pgc_state(ob.pg) != PGC_UP ||
	    (o->txn = pgc_begin(ob.pg)) == NULL) {
		outcome_retry(o);
		return;
	}
	p[0] = o->rid;
	p[1] = ob.owner;
	p[2] = o->status;
	p[3] = o->res;
	p[4] = o->sched[0] != '\0' ? o->sched : NULL;
	p[5] = o->history;
	p[6] = o->agent[0] != '\0' ? o->agent : NULL;
	/* A record cancelled meanwhile stays cancelled. */
	sql = xasprintf("UPDATE %s SET record_status = CASE WHEN "
	    "record_status = 5 THEN 5 ELSE $3::integer END, call_result = "
	    "$4, dial_sched_time = COALESCE($5::integer, dial_sched_time), "
	    "treatments = $6, agent_id = COALESCE($7, agent_id), lease_owner "
	    "= NULL, lease_until = NULL WHERE record_id = $1 AND lease_owner "
	    "= $2 RETURNING record_id", table);
	pending_outcomes++;
	if (pgc_txn_query(o->txn, sql, 7, p, record_updated, o) == -1) {
		pending_outcomes--;
		pgc_rollback(o->txn, NULL, NULL);
		outcome_retry(o);
	}
	free(sql);
}

/* record_updated - the record was ours still (or not): the rest */
static void
record_updated(struct pgc *pg, const PGresult *r, void *arg)
{
	struct outcome	*o = arg;
	const char	*table = lists_table(o->list);
	const char	*p[2];
	char		*sql;
	json_t		*msg;
	size_t		 i;

	if (r == NULL || PQresultStatus(r) != PGRES_TUPLES_OK ||
	    table == NULL) {
		pgc_rollback(o->txn, outcome_written, o);
		return;
	}
	if (PQntuples(r) == 0) {
		log_warnx("outbound: record %s of calling list %lld was no "
		    "longer this instance's when its outcome could be written: "
		    "its attempt is reported late, the record left as it is",
		    o->rid, (long long)o->list);
		msg = json_array_get(o->msgs, 0);
		json_object_set_new(msg, "late", json_true());
		outbox_put(o->txn, o->key, msg);
		pgc_commit(o->txn, outcome_written, o);
		return;
	}
	if (o->final_chain) {
		p[0] = o->chain;
		p[1] = o->rid;
		sql = xasprintf("UPDATE %s SET record_status = 7 WHERE "
		    "chain_id = $1 AND record_id <> $2 AND record_status = 1",
		    table);
		pgc_txn_query(o->txn, sql, 2, p, NULL, NULL);
		free(sql);
	}
	json_array_foreach(o->msgs, i, msg)
		outbox_put(o->txn, o->key, msg);
	pgc_commit(o->txn, outcome_written, o);
}

static void
outcome_written(struct pgc *pg, const PGresult *r, void *arg)
{
	struct outcome	*o = arg;

	pending_outcomes--;
	if (r == NULL || PQresultStatus(r) != PGRES_COMMAND_OK ||
	    strcmp(PQcmdStatus((PGresult *)r), "COMMIT") != 0) {
		outcome_retry(o);
		return;
	}
	outbox_kick();
	outcome_free(o);
}

static void
on_outcome_retry(evutil_socket_t fd, short what, void *arg)
{
	struct outcome	*o = arg;

	event_free(o->retry);
	o->retry = NULL;
	outcome_write(o);
}

static void
outcome_retry(struct outcome *o)
{
	struct timeval	tv = { 1, 0 };

	if (o->tries++ == 0)
		log_warnx("outbound: the outcome of record %s of calling list "
		    "%lld waits for PostgreSQL", o->rid, (long long)o->list);
	if (ob.stopping) {	/* the lease expires: dialled again later */
		outcome_free(o);
		return;
	}
	pending_outcomes++;
	o->retry = evtimer_new(ob.base, on_outcome_retry, o);
	evtimer_add(o->retry, &tv);
}

static void
outcome_free(struct outcome *o)
{
	if (o->retry != NULL) {
		event_free(o->retry);
		pending_outcomes--;
	}
	LIST_REMOVE(o, entry);
	json_decref(o->msgs);
	free(o->key);
	free(o);
}

json_t *
call_report(const struct call *c, const char *phase)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, "
	    "s:s, s:i, s:s, s:s}",
	    "type", "attempt", "tenant", ob.tenant, "phase", phase,
	    "attemptGuid", c->guid, "campaignGroup", (json_int_t)c->group,
	    "campaign", (json_int_t)c->campaign, "callingList",
	    (json_int_t)c->list, "recordId", (json_int_t)c->record,
	    "chainId", (json_int_t)c->chain, "phone", c->phone,
	    "attempt", c->attempt, "dialMode", c->mode, "connId", c->conn);
}

/* outcomes_pending - outcomes being written or waiting to be */
unsigned
outcomes_pending(void)
{
	return pending_outcomes;
}

/* outcomes_cleanup - at exit: those waiting for a retry (a write still
 * out is answered, NULL, by pgc_free, and freed then) */
void
outcomes_cleanup(void)
{
	struct outcome	*o, *next;

	for (o = LIST_FIRST(&outcomes); o != NULL; o = next) {
		next = LIST_NEXT(o, entry);
		if (o->retry != NULL)
			outcome_free(o);
	}
}
