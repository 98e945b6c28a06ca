/* SPDX-License-Identifier: Apache-2.0 */
/*
 * flood - synthetic events, pipelined.
 *
 * Up to WINDOW XADDs are in flight; each reply sends the next, so the
 * socket always holds work and Redis, not the round trip, sets the pace.
 * The events look like EventRinging of inbound calls on DNs 5000 to 5099,
 * each with a fresh connId and eventId, about 330 bytes each.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flood.h"
#include "log.h"
#include "rds.h"
#include "util.h"

#define WINDOW		2000

struct flood {
	struct rds	*rds;
	struct rds	**mirrors;
	int		 nmirror;
	char		*key, *region, *boot;
	uint64_t	 count, sent, answered, failed, inflight;
	uint64_t	 t0;
	void		(*done)(void *);
	void		*arg;
	int		 finished;
};

static void	on_reply(struct rds *, const struct redisReply *, void *);

/* flood_new - ready to write; nothing is sent before flood_kick */
struct flood *
flood_new(struct rds *r, struct rds **mirrors, int nmirror, const char *key,
    const char *region, const char *boot, uint64_t count,
    void (*done)(void *), void *arg)
{
	struct flood	*f;

	f = xcalloc(1, sizeof(*f));
	f->rds = r;
	f->mirrors = mirrors;
	f->nmirror = nmirror;
	f->key = xstrdup(key);
	f->region = xstrdup(region);
	f->boot = xstrdup(boot);
	f->count = count;
	f->done = done;
	f->arg = arg;
	return f;
}

/* flood_free - free the flood; NULL does nothing */
void
flood_free(struct flood *f)
{
	if (f == NULL)
		return;
	free(f->key);
	free(f->region);
	free(f->boot);
	free(f);
}

/* send_one - XADD event number n (and its mirrors) */
static int
send_one(struct flood *f, uint64_t n)
{
	char	ev[640];
	int	i;

	snprintf(ev, sizeof(ev), "{\"event\":\"EventRinging\","
	    "\"eventId\":\"%s:%s:f%" PRIu64 "\",\"region\":\"%s\","
	    "\"time\":%" PRIu64 ",\"connId\":\"%.6s%010" PRIx64 "\","
	    "\"callId\":\"%" PRIu64 "\",\"callThreadId\":\"%" PRIu64 "\","
	    "\"thisDN\":\"%" PRIu64 "\",\"thisDNRole\":\"Destination\","
	    "\"otherDN\":\"+15550100\",\"otherDNRole\":\"Origination\","
	    "\"callType\":\"Inbound\",\"userData\":{\"Segment\":\"Gold\"}}",
	    f->region, f->boot, n, f->region, now_wall_us() / 1000, f->boot,
	    n, n, n, 5000 + n % 100);
	for (i = 0; i < f->nmirror; i++)
		rds_command(f->mirrors[i], NULL, NULL,
		    "XADD %s MAXLEN ~ 1000000 * event %s", f->key, ev);
	return rds_command(f->rds, on_reply, f,
	    "XADD %s MAXLEN ~ 1000000 * event %s", f->key, ev);
}

/* flood_kick - fill the window */
void
flood_kick(struct flood *f)
{
	if (f->t0 == 0)
		f->t0 = now_mono_us();
	while (!f->finished && f->inflight < WINDOW &&
	    (f->count == 0 || f->sent < f->count) &&
	    rds_state(f->rds) == RDS_UP) {
		if (send_one(f, f->sent) == -1)
			break;
		f->sent++;
		f->inflight++;
	}
}

/* on_reply - one event written (or lost); send more */
static void
on_reply(struct rds *r, const struct redisReply *rep, void *arg)
{
	struct flood	*f = arg;

	f->inflight--;
	if (rep == NULL)
		f->failed++;
	else
		f->answered++;
	if (f->count != 0 && f->answered + f->failed == f->count) {
		f->finished = 1;
		f->done(f->arg);
		return;
	}
	flood_kick(f);
}

/* flood_report - log and print the rate */
void
flood_report(const struct flood *f)
{
	double	secs = f->t0 ? (double)(now_mono_us() - f->t0) / 1e6 : 0;

	log_info("flood: %" PRIu64 " events written, %" PRIu64 " lost, in "
	    "%.3f s: %.0f events/s", f->answered, f->failed, secs,
	    secs > 0 ? (double)f->answered / secs : 0.0);
	printf("flood: %" PRIu64 " events in %.3f s: %.0f events/s\n",
	    f->answered, secs, secs > 0 ? (double)f->answered / secs : 0.0);
	fflush(stdout);
}
