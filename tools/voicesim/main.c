/* SPDX-License-Identifier: Apache-2.0 */
/*
 * voicesim - a voice platform for development, demos, tests and
 * benchmarks, speaking docs/voice-redis.md (docs/voicesim.md).
 *
 * It reads tenantd's configuration file, follows the tenant's
 * configuration in PostgreSQL as workers do (cfgfollow), and on the Redis
 * of its region: writes the events of each batch of the model (model.c: a
 * read of requests, the timers due, a configuration load) with the final
 * state of every DN they were about in one MULTI/EXEC, so that a reader
 * taking voice:state and the stream's last id in one MULTI sees states
 * that are exactly the outcome of the events up to that id; sets the
 * heartbeat every second; and reads requests with the consumer group
 * "voice" on a connection of its own, acknowledging them once their
 * batch is written.  rds reconnects after an outage; the state hash is
 * written again in full each time the connection comes up, and a lost
 * consumer group is created again.
 */
#include <sys/random.h>

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <hiredis/hiredis.h>

#include "cfgfollow.h"
#include "conf.h"
#include "dir.h"
#include "flood.h"
#include "log.h"
#include "model.h"
#include "rds.h"
#include "util.h"

#define GROUP		"voice"
#define READ_BLOCK_MS	1000
#define READ_COUNT	100
#define STOP_WAIT_S	2

struct region {
	const char	*name;
	struct rds	*rds;
	int		 home;
	int		 losing;	/* events are being lost; said once */
};

static void	usage(void) __attribute__((noreturn));
static void	parse_args(int, char **);
static void	setup_redis(void);
static void	setup_config(void);
static void	on_region_state(struct rds *, enum rds_state, void *);
static void	on_req_state(struct rds *, enum rds_state, void *);
static void	read_requests(void);
static void	on_read(struct rds *, const struct redisReply *, void *);
static void	on_emit(const struct vs_out *, void *);
static void	flush(void);
static void	on_old_state(struct rds *, const struct redisReply *, void *);
static void	synced(json_int_t);
static void	arm(void);
static void	stop(const char *);
static int	finish(void);

static struct {
	const char	*conf_path;
	const char	*region;
	int		 mirror;
	double		 duration;
	uint64_t	 flood;
	int		 flood_on;
	int		 seeded;
	const char	*log_level;
	struct vs_params p;
} opt = {
	.region = "local",
	.p = {
		.ring_ms = 1000, .patience_ms = 60000, .talk_ms = 20000,
		.wrap_ms = 5000, .break_ms = 30000, .notready = 0.1,
		.external_min = 7, .mix = { [VS_OC_ANSWER] = 100 },
		.out_ring_min_ms = 4000, .out_ring_max_ms = 20000,
		.busy_after_ms = 2000, .out_patience_ms = 30000,
		.agent_answer_ms = 500,
	},
};

static struct conf		*conf;
static struct event_base	*base;
static struct cfgfollow		*follow;
static struct dir		*dir;
static struct vs		*vs;
static struct flood		*flood;
static struct region		 regions[CONF_REMOTE_MAX + 1];
static int			 nregions;
static struct region		*home;
static struct rds		*mirrors[CONF_REMOTE_MAX + 1];
static int			 nmirrors;
static struct rds		*reqs;		/* XREADGROUP only */
static struct event		*ev_model, *ev_beat, *ev_end, *ev_term,
				*ev_int, *ev_bye;
static char			 boot[17], consumer[64];
static char			*k_events, *k_requests, *k_state, *k_beat;
static const char		*group_start = "$";
static int			 group_ok, reading, stopping, loaded;
/* The calls and agents of the last start: 0 not looked at, 1 asking,
 * 2 released and logged out on the stream. */
static int			 farewell;
static int			 synced_seen;
static json_int_t		 synced_rev;
/* The events of the batch being made, as text, until flush writes them. */
static char			**batch;
static size_t			 nbatch, capbatch;

/* now_ms - the wall clock in milliseconds: event times, model clock */
static uint64_t
now_ms(void)
{
	return now_wall_us() / 1000;
}

/* usage - say how to call voicesim and exit 2 */
static void
usage(void)
{
	fprintf(stderr,
"usage: voicesim -c FILE [options]\n"
"  -c FILE             tenantd's configuration file\n"
"  --region NAME       write to this region's Redis (local: redis)\n"
"  --mirror            copy every event to every other region's stream\n"
"  --agents N          log N agents in and let them work calls\n"
"  --rate R            R inbound calls per second to routing points/queues\n"
"  --to NUMBER         send the generated calls to this DN instead\n"
"  --queue NUMBER      routing points divert to this queue (default: the\n"
"                      first queue of their switch)\n"
"  --talk S --wrap S --break S   mean talk, after call work, break (s)\n"
"  --dist exp|fixed|uniform      distribution of talk and break times\n"
"  --notready P        chance of a break after a call (0.1)\n"
"  --ring S            outside numbers and agents answer after S s (1)\n"
"  --patience S        inbound callers give up after S s (60)\n"
"  --external-busy     every outside number is busy\n"
"  --busy-suffix D     outside numbers ending in D are busy\n"
"  --external-min N    unknown numbers shorter than N are UnknownDN (7)\n"
"  --outbound-mix K=P,...  the called parties of predictive calls, in\n"
"                      percent: answer, machine, fax, silence, busy,\n"
"                      noanswer, sit, vacant, intercept, nocircuit,\n"
"                      reorder, situnknown, alltrunksbusy, noringback\n"
"                      (answer=100)\n"
"  --outbound-ring MIN:MAX  a person or machine answers after MIN to MAX\n"
"                      s, uniform (4:20)\n"
"  --busy-after S      busy and SIT results come after S s (2)\n"
"  --outbound-patience S  an answered customer waits S s for an agent (30)\n"
"  --agent-answer S    generated agents answer routed calls after S s (0.5)\n"
"  --seed N            same seed, same run\n"
"  --duration S        stop after S seconds\n"
"  --flood N           write N synthetic events as fast as Redis takes\n"
"                      them (0: until stopped), print the rate, exit\n"
"  --log-level LEVEL   error, warn, info, debug\n");
	exit(2);
}

/* num - a non-negative number option, or usage */
static double
num(const char *name, const char *s)
{
	char	*end;
	double	 v;

	errno = 0;
	v = strtod(s, &end);
	if (errno != 0 || end == s || *end != '\0' || v < 0) {
		fprintf(stderr, "voicesim: --%s: not a number: %s\n", name, s);
		usage();
	}
	return v;
}

enum {
	O_REGION = 256, O_MIRROR, O_AGENTS, O_RATE, O_TO, O_QUEUE, O_TALK,
	O_WRAP, O_BREAK, O_DIST, O_NOTREADY, O_RING, O_PATIENCE, O_EXTBUSY,
	O_BUSYSUF, O_EXTMIN, O_SEED, O_DURATION, O_FLOOD, O_LOGLEVEL,
	O_OUTMIX, O_OUTRING, O_BUSYAFTER, O_OUTPAT, O_AGENTANS,
};

/* seconds - a non-negative number of seconds option, in ms */
static uint64_t
seconds(const char *name, const char *s)
{
	return (uint64_t)(num(name, s) * 1000 + 0.5);
}

/* out_mix - --outbound-mix answer=30,busy=20,...: percentages summing to 100 */
static void
out_mix(const char *name, const char *a)
{
	char		*copy = xstrdup(a), *item, *save = NULL, *eq;
	unsigned	 sum = 0;
	int		 oc;

	memset(opt.p.mix, 0, sizeof(opt.p.mix));
	for (item = strtok_r(copy, ",", &save); item != NULL;
	    item = strtok_r(NULL, ",", &save)) {
		if ((eq = strchr(item, '=')) == NULL)
			break;
		*eq = '\0';
		if ((oc = vs_outcome_parse(item)) == -1) {
			fprintf(stderr, "voicesim: --%s: no outcome %s\n",
			    name, item);
			free(copy);
			usage();
		}
		opt.p.mix[oc] += (unsigned)num(name, eq + 1);
		sum += (unsigned)num(name, eq + 1);
	}
	free(copy);
	if (item != NULL || sum != 100) {
		fprintf(stderr, "voicesim: --%s: want KEY=PERCENT,... adding up "
		    "to 100: %s\n", name, a);
		usage();
	}
}

/* out_ring - --outbound-ring MIN:MAX seconds */
static void
out_ring(const char *name, const char *a)
{
	char	*copy = xstrdup(a), *colon = strchr(copy, ':');

	if (colon == NULL) {
		fprintf(stderr, "voicesim: --%s: want MIN:MAX: %s\n", name, a);
		free(copy);
		usage();
	}
	*colon = '\0';
	opt.p.out_ring_min_ms = seconds(name, copy);
	opt.p.out_ring_max_ms = seconds(name, colon + 1);
	free(copy);
	if (opt.p.out_ring_min_ms > opt.p.out_ring_max_ms) {
		fprintf(stderr, "voicesim: --%s: MIN is over MAX: %s\n", name,
		    a);
		usage();
	}
}

/* option - one long option */
static void
option(int o, const char *name, const char *a)
{
	switch (o) {
	case O_REGION:	opt.region = a; break;
	case O_MIRROR:	opt.mirror = 1; break;
	case O_AGENTS:	opt.p.agents = (unsigned)num(name, a); break;
	case O_RATE:	opt.p.rate = num(name, a); break;
	case O_TO:	opt.p.target = a; break;
	case O_QUEUE:	opt.p.queue = a; break;
	case O_TALK:	opt.p.talk_ms = (uint64_t)(num(name, a) * 1000); break;
	case O_WRAP:	opt.p.wrap_ms = (uint64_t)(num(name, a) * 1000); break;
	case O_BREAK:	opt.p.break_ms = (uint64_t)(num(name, a) * 1000); break;
	case O_RING:	opt.p.ring_ms = (uint64_t)(num(name, a) * 1000); break;
	case O_PATIENCE:
		opt.p.patience_ms = (uint64_t)(num(name, a) * 1000);
		break;
	case O_NOTREADY: opt.p.notready = num(name, a); break;
	case O_EXTBUSY:	opt.p.external_busy = 1; break;
	case O_BUSYSUF:	opt.p.busy_suffix = a; break;
	case O_EXTMIN:	opt.p.external_min = (size_t)num(name, a); break;
	case O_SEED:
		opt.p.seed = strtoull(a, NULL, 0);
		opt.seeded = 1;
		break;
	case O_DURATION: opt.duration = num(name, a); break;
	case O_FLOOD:
		opt.flood = (uint64_t)num(name, a);
		opt.flood_on = 1;
		break;
	case O_LOGLEVEL: opt.log_level = a; break;
	case O_OUTMIX:	out_mix(name, a); break;
	case O_OUTRING:	out_ring(name, a); break;
	case O_BUSYAFTER: opt.p.busy_after_ms = seconds(name, a); break;
	case O_OUTPAT:	opt.p.out_patience_ms = seconds(name, a); break;
	case O_AGENTANS: opt.p.agent_answer_ms = seconds(name, a); break;
	case O_DIST:
		if (strcmp(a, "exp") == 0)
			opt.p.dist = VS_DIST_EXP;
		else if (strcmp(a, "fixed") == 0)
			opt.p.dist = VS_DIST_FIXED;
		else if (strcmp(a, "uniform") == 0)
			opt.p.dist = VS_DIST_UNIFORM;
		else
			usage();
		break;
	default:
		usage();
	}
}

/* parse_args - the command line into opt */
static void
parse_args(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "region", 1, NULL, O_REGION },
		{ "mirror", 0, NULL, O_MIRROR },
		{ "agents", 1, NULL, O_AGENTS }, { "rate", 1, NULL, O_RATE },
		{ "to", 1, NULL, O_TO }, { "queue", 1, NULL, O_QUEUE },
		{ "talk", 1, NULL, O_TALK }, { "wrap", 1, NULL, O_WRAP },
		{ "break", 1, NULL, O_BREAK }, { "dist", 1, NULL, O_DIST },
		{ "notready", 1, NULL, O_NOTREADY },
		{ "ring", 1, NULL, O_RING },
		{ "patience", 1, NULL, O_PATIENCE },
		{ "external-busy", 0, NULL, O_EXTBUSY },
		{ "busy-suffix", 1, NULL, O_BUSYSUF },
		{ "external-min", 1, NULL, O_EXTMIN },
		{ "seed", 1, NULL, O_SEED },
		{ "duration", 1, NULL, O_DURATION },
		{ "flood", 1, NULL, O_FLOOD },
		{ "log-level", 1, NULL, O_LOGLEVEL },
		{ "outbound-mix", 1, NULL, O_OUTMIX },
		{ "outbound-ring", 1, NULL, O_OUTRING },
		{ "busy-after", 1, NULL, O_BUSYAFTER },
		{ "outbound-patience", 1, NULL, O_OUTPAT },
		{ "agent-answer", 1, NULL, O_AGENTANS },
		{ "help", 0, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	int	o, idx = 0;

	while ((o = getopt_long(argc, argv, "c:h", lo, &idx)) != -1) {
		if (o == 'c')
			opt.conf_path = optarg;
		else if (o == 'h' || o == '?')
			usage();
		else
			option(o, lo[idx].name, optarg);
	}
	if (optind != argc || opt.conf_path == NULL)
		usage();
}

/* random_bytes - from the kernel, or fatal */
static void
random_bytes(void *buf, size_t len)
{
	if (getrandom(buf, len, 0) != (ssize_t)len)
		fatal("getrandom");
}

/* ---- Redis: regions, heartbeat, state ---- */

/* add_region - a command connection to one region's Redis */
static void
add_region(const struct conf_redis *cr)
{
	struct region	*g = &regions[nregions++];
	char		*name;

	g->name = cr->name;
	g->home = strcmp(cr->name, opt.region) == 0;
	g->rds = rds_new_conf(base, cr, on_region_state, g);
	name = cr->sentinels.n > 0 ? xasprintf("redis %s (master %s)",
	    cr->name, cr->master_name) : xasprintf("redis %s (%s:%d)",
	    cr->name, cr->host, cr->port);
	rds_set_name(g->rds, name);
	free(name);
	if (g->home)
		home = g;
	else if (opt.mirror)
		mirrors[nmirrors++] = g->rds;
}

static void	on_beat(evutil_socket_t, short, void *);
static void	on_model(evutil_socket_t, short, void *);
static void	on_end(evutil_socket_t, short, void *);
static void	on_signal(evutil_socket_t, short, void *);
static void	on_bye(evutil_socket_t, short, void *);
static void	on_flood_done(void *);
static void	on_bye_reply(struct rds *, const struct redisReply *, void *);

/* setup_redis - connections to every region, timers and signals */
static void
setup_redis(void)
{
	struct timeval	 sec = { 1, 0 };
	const struct conf_redis *cr = &conf->redis;
	int		 i;

	add_region(&conf->redis);
	for (i = 0; i < conf->nremotes; i++)
		add_region(&conf->remotes[i]);
	if (home == NULL)
		fatalx("--region %s: no such region in %s (local, or a "
		    "redis.remote name)", opt.region, opt.conf_path);
	for (i = 0; i < conf->nremotes; i++)
		if (strcmp(conf->remotes[i].name, opt.region) == 0)
			cr = &conf->remotes[i];
	ev_model = evtimer_new(base, on_model, NULL);
	ev_end = evtimer_new(base, on_end, NULL);
	ev_bye = evtimer_new(base, on_bye, NULL);
	ev_term = evsignal_new(base, SIGTERM, on_signal, NULL);
	ev_int = evsignal_new(base, SIGINT, on_signal, NULL);
	evsignal_add(ev_term, NULL);
	evsignal_add(ev_int, NULL);
	if (opt.flood_on) {
		flood = flood_new(home->rds, mirrors, nmirrors, k_events,
		    opt.region, boot, opt.flood, on_flood_done, NULL);
		return;
	}
	reqs = rds_new_conf(base, cr, on_req_state, NULL);
	rds_set_name(reqs, "redis requests");
	ev_beat = event_new(base, -1, EV_PERSIST, on_beat, NULL);
	evtimer_add(ev_beat, &sec);
}

/* state_one - one DN's field, inside the MULTI of resync_state */
static void
state_one(const char *dn, json_t *st, void *arg)
{
	char	*text = json_dumps(st, JSON_COMPACT);

	rds_command(home->rds, NULL, NULL, "HSET %s %s %s", k_state, dn, text);
	free(text);
}

/* resync_state - the state hash holds what the model holds, no more */
static void
resync_state(void)
{
	rds_command(home->rds, NULL, NULL, "MULTI");
	rds_command(home->rds, NULL, NULL, "DEL %s", k_state);
	vs_each_state(vs, state_one, NULL);
	rds_command(home->rds, NULL, NULL, "EXEC");
}

/*
 * beat - SET the heartbeat, 3 s expiry; not before the configuration is
 * loaded: until then the switch knows no DN, and a link that says up
 * would have every request fail with UnknownDN.
 */
static void
beat(void)
{
	if ((!loaded || farewell != 2) && flood == NULL)
		return;
	rds_command(home->rds, NULL, NULL, "SET %s %s PX 3000", k_beat, boot);
}

/* farewell_event - one event about the last start's calls or agents */
static void
farewell_event(json_t *ev, const char *dn, unsigned *n)
{
	struct vs_out	o = { ev, NULL };
	char		id[96];

	snprintf(id, sizeof(id), "%s:%s:last-%u", opt.region, boot, (*n)++);
	json_object_set_new(ev, "eventId", json_string(id));
	json_object_set_new(ev, "region", json_string(opt.region));
	json_object_set_new(ev, "time", json_integer((json_int_t)now_ms()));
	json_object_set_new(ev, "thisDN", json_string(dn));
	on_emit(&o, NULL);
	json_decref(ev);
}

/*
 * on_old_state - what the last start left in the state hash.  This start
 * knows none of it: its calls are released and its agents logged out on
 * the stream, before any event of this start, so that a reader of the
 * stream alone (the stats worker) forgets them too.  Then the hash is
 * written anew and the switch says it is up.
 */
static void
on_old_state(struct rds *r, const struct redisReply *rep, void *arg)
{
	json_t		*st, *c, *a;
	const char	*dn;
	unsigned	 n = 0, calls = 0, agents = 0;
	size_t		 i, k;

	if (rep == NULL || rep->type != REDIS_REPLY_ARRAY) {
		farewell = 0;		/* asked again when Redis is back */
		return;
	}
	for (i = 0; i + 1 < rep->elements; i += 2) {
		dn = rep->element[i]->str;
		if ((st = json_loads(rep->element[i + 1]->str, 0, NULL)) ==
		    NULL)
			continue;
		json_array_foreach(json_object_get(st, "calls"), k, c) {
			farewell_event(json_pack("{s:s, s:O?, s:O?, s:O?, "
			    "s:s}", "event", "EventReleased", "connId",
			    json_object_get(c, "connId"), "callId",
			    json_object_get(c, "callId"), "callType",
			    json_object_get(c, "callType"), "cause",
			    "VoiceRestart"), dn, &n);
			calls++;
		}
		a = json_object_get(json_object_get(st, "agent"), "agentId");
		if (json_is_string(a)) {
			farewell_event(json_pack("{s:s, s:O}", "event",
			    "EventAgentLogout", "agentId", a), dn, &n);
			agents++;
		}
		json_decref(st);
	}
	flush();
	if (n > 0)
		log_info("the last start left %u calls and %u agents: "
		    "released and logged out", calls, agents);
	farewell = 2;
	resync_state();
	if (synced_seen)
		synced(synced_rev);
	beat();
}

/* on_region_state - the home Redis is back: state, heartbeat, work */
static void
on_region_state(struct rds *r, enum rds_state st, void *arg)
{
	struct region	*g = arg;

	if (!g->home || st != RDS_UP || stopping)
		return;
	g->losing = 0;
	if (flood != NULL) {
		flood_kick(flood);
		return;
	}
	if (farewell == 0) {
		farewell = 1;
		if (rds_command(home->rds, on_old_state, NULL, "HGETALL %s",
		    k_state) == -1)
			farewell = 0;
		return;
	}
	if (farewell == 2) {
		resync_state();
		beat();
	}
}

/* on_beat - every second: heartbeat, and reading requests if stalled */
static void
on_beat(evutil_socket_t fd, short what, void *arg)
{
	if (stopping)
		return;
	if (rds_state(home->rds) == RDS_UP)
		beat();
	read_requests();
}

/* ---- Redis: events ---- */

/* on_written - an event's EXEC (or XADD) was answered */
static void
on_written(struct rds *r, const struct redisReply *rep, void *arg)
{
	struct region	*g = arg;

	if (rep != NULL && rep->type != REDIS_REPLY_ERROR)
		return;
	if (!g->losing && !stopping)
		log_warnx("events are being lost: %s: %s", rds_name(r),
		    rep != NULL ? rep->str : "not connected");
	g->losing = 1;
}

/* on_emit - one event of the batch: kept until flush writes it */
static void
on_emit(const struct vs_out *o, void *arg)
{
	char	*ev;

	ev = json_dumps(o->event, JSON_COMPACT);
	if (nbatch == capbatch) {
		capbatch = capbatch ? capbatch * 2 : 256;
		batch = xrealloc(batch, capbatch * sizeof(*batch));
	}
	batch[nbatch++] = ev;
	if (o->note != NULL)
		log_debug("%s", o->note);
	log_debug("event %s", ev);
}

/* state_write - one DN's field, inside flush's MULTI */
static void
state_write(const char *dn, json_t *st, void *arg)
{
	char	*text;

	if (st == NULL) {
		rds_command(home->rds, NULL, NULL, "HDEL %s %s", k_state, dn);
		return;
	}
	text = json_dumps(st, JSON_COMPACT);
	rds_command(home->rds, NULL, NULL, "HSET %s %s %s", k_state, dn, text);
	free(text);
}

/*
 * flush - write the batch: its events, then the state now of each DN they
 * were about, in one MULTI/EXEC, so that voice:state never holds a state
 * whose events are not all in the stream, nor misses one of an event that
 * is.  The mirrors get the events only.
 */
static void
flush(void)
{
	size_t	i;
	int	k;

	if (nbatch == 0)
		return;		/* no event: no DN is due either */
	rds_command(home->rds, NULL, NULL, "MULTI");
	for (i = 0; i < nbatch; i++)
		rds_command(home->rds, NULL, NULL,
		    "XADD %s MAXLEN ~ 1000000 * event %s", k_events, batch[i]);
	if (vs != NULL)
		vs_flush(vs, state_write, NULL);
	rds_command(home->rds, on_written, home, "EXEC");
	for (k = 0; k < nregions; k++)
		for (i = 0; opt.mirror && !regions[k].home && i < nbatch; i++)
			rds_command(regions[k].rds, on_written, &regions[k],
			    "XADD %s MAXLEN ~ 1000000 * event %s", k_events,
			    batch[i]);
	for (i = 0; i < nbatch; i++)
		free(batch[i]);
	nbatch = 0;
}

/* ---- Redis: requests ---- */

/* on_group - XGROUP CREATE answered; BUSYGROUP means it is there */
static void
on_group(struct rds *r, const struct redisReply *rep, void *arg)
{
	reading = 0;
	if (rep == NULL)
		return;		/* on_beat tries again */
	if (rep->type == REDIS_REPLY_ERROR &&
	    strncmp(rep->str, "BUSYGROUP", 9) != 0) {
		log_warnx("cannot create consumer group %s on %s: %s", GROUP,
		    k_requests, rep->str);
		return;
	}
	group_ok = 1;
	read_requests();
}

/* read_requests - the next XREADGROUP, once the group is there */
static void
read_requests(void)
{
	if (reading || stopping || rds_state(reqs) != RDS_UP)
		return;
	reading = 1;
	if (!group_ok) {
		if (rds_command(reqs, on_group, NULL, "XGROUP CREATE %s %s %s "
		    "MKSTREAM", k_requests, GROUP, group_start) == -1)
			reading = 0;
		return;
	}
	if (rds_command(reqs, on_read, NULL, "XREADGROUP GROUP %s %s COUNT %d "
	    "BLOCK %d STREAMS %s >", GROUP, consumer, READ_COUNT,
	    READ_BLOCK_MS, k_requests) == -1)
		reading = 0;
}

/* on_req_state - the requests connection is up: read */
static void
on_req_state(struct rds *r, enum rds_state st, void *arg)
{
	if (st == RDS_UP)
		read_requests();
}

/* handle - one request entry: answer it (its events join the batch) */
static void
handle(const redisReply *fields)
{
	const redisReply	*v = NULL;
	json_error_t		 je;
	json_t			*req;
	size_t			 i;

	for (i = 0; i + 1 < fields->elements; i += 2)
		if (fields->element[i]->type == REDIS_REPLY_STRING &&
		    strcmp(fields->element[i]->str, "request") == 0)
			v = fields->element[i + 1];
	if (v == NULL || v->type != REDIS_REPLY_STRING)
		vs_bad_request(vs, NULL, "entry has no request field",
		    now_ms());
	else if ((req = json_loadb(v->str, v->len, 0, &je)) == NULL)
		vs_bad_request(vs, NULL, "request is not JSON", now_ms());
	else {
		log_debug("request %s", v->str);
		vs_request(vs, req, now_ms());
		json_decref(req);
	}
}

/* ack - XACK the entries whose events were just written (after them, on
 * the same connection) */
static void
ack(const char **ids, size_t n)
{
	const char	**argv;
	size_t		  i;

	if (n == 0)
		return;
	argv = xcalloc(n + 3, sizeof(*argv));
	argv[0] = "XACK";
	argv[1] = k_requests;
	argv[2] = GROUP;
	for (i = 0; i < n; i++)
		argv[3 + i] = ids[i];
	rds_command_argv(home->rds, NULL, NULL, (int)(n + 3), argv, NULL);
	free(argv);
}

/* on_read - requests arrived (or the block timed out): handle them as one
 * batch, write it, acknowledge them, read on */
static void
on_read(struct rds *r, const struct redisReply *rep, void *arg)
{
	const redisReply	*s, *e;
	const char		**ids = NULL;
	size_t			  i, j, n = 0, cap = 0;

	reading = 0;
	if (rep == NULL)
		return;		/* reconnecting: on_req_state reads again */
	if (rep->type == REDIS_REPLY_ERROR) {
		if (strncmp(rep->str, "NOGROUP", 7) == 0) {
			/* Redis lost it: anything in the stream is new */
			log_warnx("consumer group %s is gone; creating it "
			    "again", GROUP);
			group_ok = 0;
			group_start = "0";
			read_requests();
		} else
			log_warnx("XREADGROUP: %s", rep->str);
		return;
	}
	for (i = 0; rep->type == REDIS_REPLY_ARRAY && i < rep->elements; i++) {
		s = rep->element[i];
		if (s->type != REDIS_REPLY_ARRAY || s->elements != 2 ||
		    s->element[1]->type != REDIS_REPLY_ARRAY)
			continue;
		for (j = 0; j < s->element[1]->elements; j++) {
			e = s->element[1]->element[j];
			if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 ||
			    e->element[0]->type != REDIS_REPLY_STRING ||
			    e->element[1]->type != REDIS_REPLY_ARRAY)
				continue;
			handle(e->element[1]);
			if (n == cap) {
				cap = cap ? cap * 2 : READ_COUNT;
				ids = xrealloc(ids, cap * sizeof(*ids));
			}
			ids[n++] = e->element[0]->str;
		}
	}
	flush();
	ack(ids, n);
	free(ids);
	arm();
	read_requests();
}

/* ---- the model ---- */

/* arm - wake up when the model's next timer is due */
static void
arm(void)
{
	uint64_t	due = vs_next_due(vs), now = now_ms(), ms;
	struct timeval	tv;

	if (due == 0 || stopping) {
		evtimer_del(ev_model);
		return;
	}
	ms = due > now ? due - now : 0;
	tv = util_tv_us((uint64_t)ms * 1000);
	evtimer_add(ev_model, &tv);
}

/* on_model - the model's next timer is due */
static void
on_model(evutil_socket_t fd, short what, void *arg)
{
	vs_run(vs, now_ms());
	flush();
	arm();
}

/* on_reset - a configuration snapshot begins */
static void
on_reset(void *arg)
{
	dir_reset(dir);
}

/* on_change - one configuration object or change */
static void
on_change(const struct cfg_change *c, void *arg)
{
	dir_apply(dir, c->type, c->dbid, c->object);
}

/* on_synced - the configuration is there: the generator may start, once
 * the last start's calls are gone */
static void
on_synced(json_int_t rev, void *arg)
{
	synced_seen = 1;
	synced_rev = rev;
	if (farewell == 2 || flood != NULL)
		synced(rev);
}

/* synced - the model and the generator follow the configuration */
static void
synced(json_int_t rev)
{
	if (!loaded)
		log_info("configuration loaded at revision %lld: %zu phones, "
		    "%zu routing points, %zu queues", (long long)rev,
		    dir_count(dir, VOICE_DN_PHONE), dir_count(dir, VOICE_DN_RP),
		    dir_count(dir, VOICE_DN_QUEUE));
	if (!loaded) {
		loaded = 1;
		if (rds_state(home->rds) == RDS_UP)
			beat();		/* the switch is ready: say so */
	}
	vs_synced(vs, now_ms());
	flush();
	arm();
}

/* setup_config - follow the tenant's configuration; the model reads it */
static void
setup_config(void)
{
	static const struct cfgfollow_cbs cbs = { on_reset, on_change,
					    on_synced };

	dir = dir_new();
	vs = vs_new(&opt.p, dir, on_emit, NULL);
	if ((follow = cfgfollow_open(base, conf, &cbs, NULL)) == NULL)
		fatalx("postgres.conninfo does not parse");
}

/* ---- stopping ---- */

/* stop - stop once what was written is answered; a second call stops at once */
static void
stop(const char *why)
{
	struct timeval	tv = { STOP_WAIT_S, 0 };

	if (stopping) {
		event_base_loopbreak(base);
		return;
	}
	stopping = 1;
	log_info("stopping: %s", why);
	if (flood != NULL)
		flood_report(flood);
	evtimer_del(ev_model);
	if (ev_beat != NULL)
		evtimer_del(ev_beat);
	/* the events worker sees the link down at once */
	if (flood == NULL && rds_state(home->rds) == RDS_UP &&
	    rds_command(home->rds, NULL, NULL, "DEL %s", k_beat) == 0 &&
	    rds_ping(home->rds, on_bye_reply, NULL) == 0) {
		evtimer_add(ev_bye, &tv);
		return;
	}
	event_base_loopexit(base, NULL);
}

/* on_bye_reply - what was written before the stop has been answered */
static void
on_bye_reply(struct rds *r, const struct redisReply *rep, void *arg)
{
	event_base_loopexit(base, NULL);
}

/* on_bye - Redis did not answer in time: stop anyway */
static void
on_bye(evutil_socket_t fd, short what, void *arg)
{
	event_base_loopexit(base, NULL);
}

/* on_end - --duration is over */
static void
on_end(evutil_socket_t fd, short what, void *arg)
{
	stop("--duration is over");
}

/* on_signal - SIGTERM or SIGINT: stop */
static void
on_signal(evutil_socket_t fd, short what, void *arg)
{
	stop(fd == SIGTERM ? "SIGTERM" : "SIGINT");
}

/* on_flood_done - every flood event is answered: stop */
static void
on_flood_done(void *arg)
{
	stop("flood done");
}

/* finish - free everything */
static int
finish(void)
{
	struct event	*evs[] = { ev_model, ev_beat, ev_end, ev_term, ev_int,
			    ev_bye };
	char		 line[512];
	size_t		 i;
	int		 k;

	stopping = 1;
	if (vs != NULL) {
		vs_outbound_summary(vs, line, sizeof(line));
		log_info("outbound: %s", line);
	}
	cfgfollow_free(follow);		/* and its PostgreSQL connection */
	rds_free(reqs);
	for (k = 0; k < nregions; k++)
		rds_free(regions[k].rds);
	/* let the freed connections finish off */
	event_base_loop(base, EVLOOP_NONBLOCK);
	for (i = 0; i < NELEM(evs); i++)
		if (evs[i] != NULL)
			event_free(evs[i]);
	flood_free(flood);
	for (i = 0; i < nbatch; i++)
		free(batch[i]);
	free(batch);
	vs_free(vs);
	dir_free(dir);
	free(k_events);
	free(k_requests);
	free(k_state);
	free(k_beat);
	conf_free(conf);
	event_base_free(base);
	log_info("stopped");
	return 0;
}

/* main - set up, run the loop, clean up */
int
main(int argc, char **argv)
{
	char		 err[CONF_ERR_MAX];
	enum log_level	 lvl;
	uint64_t	 r;

	parse_args(argc, argv);
	log_init("voicesim", LOG_LVL_INFO, LOG_FMT_LOGFMT);
	if ((conf = conf_load(opt.conf_path, err, sizeof(err))) == NULL) {
		fprintf(stderr, "voicesim: %s\n", err);
		return 2;
	}
	lvl = conf->log_level;
	if (opt.log_level != NULL && log_level_parse(opt.log_level, &lvl) == -1)
		usage();
	log_init("voicesim", lvl, conf->log_format);
	signal(SIGPIPE, SIG_IGN);
	random_bytes(&r, sizeof(r));
	snprintf(boot, sizeof(boot), "%016" PRIx64, r);
	snprintf(consumer, sizeof(consumer), "voicesim-%s", boot);
	if (!opt.seeded)
		random_bytes(&opt.p.seed, sizeof(opt.p.seed));
	opt.p.region = opt.region;
	opt.p.boot = boot;
	k_events = xasprintf("tenantd:{%s}:voice:events", conf->tenant_id);
	k_requests = xasprintf("tenantd:{%s}:voice:requests", conf->tenant_id);
	k_state = xasprintf("tenantd:{%s}:voice:state", conf->tenant_id);
	k_beat = xasprintf("tenantd:{%s}:voice:heartbeat", conf->tenant_id);
	if ((base = event_base_new()) == NULL)
		fatalx("event_base_new failed");
	setup_redis();
	if (!opt.flood_on)
		setup_config();
	if (opt.duration > 0) {
		struct timeval tv = { (time_t)opt.duration, (suseconds_t)
		    ((opt.duration - (time_t)opt.duration) * 1e6) };
		evtimer_add(ev_end, &tv);
	}
	log_info("voicesim started: region %s, boot %s, seed %" PRIu64
	    ", %u agents, %.2f calls/s%s", opt.region, boot, opt.p.seed,
	    opt.p.agents, opt.p.rate, opt.mirror ? ", mirrored" : "");
	event_base_dispatch(base);
	return finish();
}
