/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pacing_sim - the predictive bench's population (predictive_bench.py),
 * simulated in 0.1 s steps around the worker's own pacing.c, so that the
 * pacing can be tried in seconds rather than in ten-minute runs: 50
 * agents; of the calls 30% answered live and 15% by a machine after 4-20
 * s (uniform), 15% busy after 2 s, 40% unanswered at 25 s; an answer is
 * given a ready agent at once, else waits up to 2 s and is dropped; the
 * agent rings 0.5 s, talks for an exponential 20 s, wraps up 5 s.  The
 * gain is steered every 10 s as dial.c's steer() does.  What it leaves
 * out: the worker's and voicesim's latencies, the 200 ms tick's jitter.
 *
 *	pacing_sim [minutes] [seed]
 *
 * Prints the calls cut while ringing, the live answers, the drops per
 * live answer and the busy factor (talk + wrap-up over logged-in time)
 * after the first minute.  The environment changes the run:
 *
 *	SIM_MARGIN=z	the margin of new calls, in standard deviations
 *	SIM_CM=z	the same, for cutting calls
 *	SIM_NOCUT=1	never cut a ringing call
 *	SIM_FIXED=1	no feedback: the gain stays 1
 *	SIM_RING=s	the agent's phone rings s before it answers (0.5)
 *	SIM_RATE=r	dial r calls/s from 40 s on, not as pacing.c says
 *	SIM_TRACE=1	print the gain and the figures every 10 s
 *
 *	cc -O2 -Icommon -Iworkers/outbound -o pacing_sim \
 *	    test/bench/pacing_sim.c build/libcommon.a -ljansson -lm ...
 */
/* pacing.c's own, unless the environment says otherwise */
static double sim_margin = 0.6, sim_cut_margin = 0.0;
#define PACE_MARGIN sim_margin
#define PACE_CUT_MARGIN sim_cut_margin
#include "../../workers/outbound/pacing.c"

#include <stdio.h>
#include <stdlib.h>

#define AGENTS		50
#define STEP		0.1
#define MAXCALLS	4096

enum ast { A_READY, A_RING, A_TALK, A_WRAP };
struct agent {
	enum ast	st;
	double		since;		/* of the call (ring), or state */
	double		until;		/* the state's end */
};
struct call {
	double		placed, at;	/* outcome at */
	int		live, used;
	double		answered;	/* waiting since; 0: not answered */
};

static struct agent	ag[AGENTS];
static struct call	calls[MAXCALLS];
static unsigned long	rng = 88172645463325252ULL;

static double
unif(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (rng >> 11) * (1.0 / 9007199254740992.0);
}

static void
place(double now)
{
	struct call	*c = NULL;
	double		 u = unif();
	int		 i;

	for (i = 0; i < MAXCALLS && c == NULL; i++)
		if (!calls[i].used)
			c = &calls[i];
	if (c == NULL)
		return;
	memset(c, 0, sizeof(*c));
	c->used = 1;
	c->placed = now;
	if (u < 0.30) {
		c->live = 1;
		c->at = now + 4 + 16 * unif();
	} else if (u < 0.45)
		c->at = now + 4 + 16 * unif();	/* machine */
	else if (u < 0.60)
		c->at = now + 2;		/* busy */
	else
		c->at = now + 25;		/* no answer */
}

int
main(int argc, char **argv)
{
	double			 minutes = argc > 1 ? atof(argv[1]) : 10;
	double			 now, k = 1.0, t_end;
	struct pace_samples	 samples;
	struct pace_dist	 talk, wrap;
	struct pace_surv	 st, sw;
	struct pace_plan	 plan;
	struct pace_in		 in;
	double			 run_c[AGENTS], run_w[AGENTS], ages[MAXCALLS];
	size_t			 nc, nw, na;
	int			 i, j, n, ready, waiting, tick = 0;
	double			 live = 0, drops = 0, busy = 0, avail = 0;
	double			 cancelled = 0, last_live = 0, last_drops = 0;
	double			 last_cut = 0;
	double			 ring = getenv("SIM_RING") ? atof(getenv(
				    "SIM_RING")) : 0.5;
	double			 rate = getenv("SIM_RATE") ? atof(getenv(
				    "SIM_RATE")) : 0, owe = 0;
	int			 nocut = getenv("SIM_NOCUT") != NULL;
	int			 fixed = getenv("SIM_FIXED") != NULL;
	int			 trace = getenv("SIM_TRACE") != NULL;

	if (getenv("SIM_CM") != NULL)
		sim_cut_margin = atof(getenv("SIM_CM"));
	if (getenv("SIM_MARGIN") != NULL)
		sim_margin = atof(getenv("SIM_MARGIN"));
	if (argc > 2)
		rng += strtoul(argv[2], NULL, 10) * 2654435761UL;
	memset(&samples, 0, sizeof(samples));
	memset(&talk, 0, sizeof(talk));
	memset(&wrap, 0, sizeof(wrap));
	t_end = minutes * 60;
	for (now = 0; now < t_end; now += STEP, tick++) {
		/* the agents' states end */
		for (i = 0; i < AGENTS; i++) {
			if (ag[i].st == A_RING && now >= ag[i].until) {
				ag[i].st = A_TALK;
				ag[i].until = now - 20 * log(1 - unif());
			} else if (ag[i].st == A_TALK && now >= ag[i].until) {
				pace_dist_add(&talk, now - ag[i].since);
				ag[i].st = A_WRAP;
				ag[i].since = now;
				ag[i].until = now + 5;
			} else if (ag[i].st == A_WRAP && now >= ag[i].until) {
				pace_dist_add(&wrap, now - ag[i].since);
				ag[i].st = A_READY;
				ag[i].since = now;
			}
		}
		/* the calls' outcomes, and the answers given agents */
		for (j = 0; j < MAXCALLS; j++) {
			struct call *c = &calls[j];

			if (!c->used)
				continue;
			if (c->answered == 0 && now >= c->at) {
				pace_sample(&samples, c->at - c->placed,
				    c->live);
				if (!c->live) {
					c->used = 0;
					continue;
				}
				c->answered = now;
				if (now >= 60)
					live++;
			}
			if (c->answered == 0)
				continue;
			for (i = 0; i < AGENTS; i++)
				if (ag[i].st == A_READY)
					break;
			if (i < AGENTS) {
				ag[i].st = A_RING;
				ag[i].since = now;
				ag[i].until = now + ring;
				c->used = 0;
			} else if (now - c->answered >= 2) {
				if (now >= 60)
					drops++;
				c->used = 0;
			}
		}
		if (now >= 60)
			for (i = 0; i < AGENTS; i++) {
				avail += STEP;
				busy += ag[i].st == A_TALK ||
				    ag[i].st == A_WRAP ? STEP : 0;
			}
		if (tick % 2 != 0)
			continue;
		/* pace, every 0.2 s */
		memset(&in, 0, sizeof(in));
		memset(&plan, 0, sizeof(plan));
		nc = nw = na = 0;
		ready = waiting = 0;
		for (i = 0; i < AGENTS; i++) {
			if (ag[i].st == A_RING || ag[i].st == A_TALK)
				run_c[nc++] = now - ag[i].since;
			else if (ag[i].st == A_WRAP)
				run_w[nw++] = now - ag[i].since;
			else
				ready++;
		}
		for (j = 0; j < MAXCALLS; j++)
			if (calls[j].used && calls[j].answered == 0)
				ages[na++] = now - calls[j].placed;
			else if (calls[j].used)
				waiting++;
		in.mode = PM_PREDICTIVE;
		in.ready = ready;
		in.busy = AGENTS - ready;
		in.logged_in = AGENTS;
		in.dialing = na;
		in.waiting = waiting;
		in.ratio = 1;
		in.min_agents = 10;
		in.goal = 3;
		in.k = k;
		in.grace = 2;
		in.hit = now >= 40 ? pace_hit(&samples) : -1;
		if (in.hit >= 0) {
			pace_surv_build(&st, &talk, run_c, nc);
			pace_surv_build(&sw, &wrap, run_w, nw);
			for (i = 0; i < AGENTS; i++)
				pace_plan_agent(&plan, &st, &sw,
				    ag[i].st == A_READY ? PA_READY :
				    ag[i].st == A_WRAP ? PA_WRAP : PA_TALK,
				    now - ag[i].since);
			pace_plan_calls(&plan, &samples, ages, na, 0,
			    waiting);
			pace_surv_free(&st);
			pace_surv_free(&sw);
			in.plan = &plan;
			if (!nocut) {
				unsigned char	cut[MAXCALLS];
				size_t		m = 0;

				pace_cuts(&plan, &samples, ages, na, 15, 2,
				    cut);
				for (j = 0; j < MAXCALLS; j++)
					if (calls[j].used &&
					    calls[j].answered == 0 &&
					    cut[m++]) {
						calls[j].used = 0;
						cancelled++;
					}
			}
		}
		n = (int)pace_calls(&in);
		if (rate > 0 && now >= 40) {
			owe += rate * 0.2;
			n = (int)owe;
			owe -= n;
		}
		while (n-- > 0)
			place(now);
		/* steer, every 10 s */
		if (tick % 100 == 0 && now >= 60 && !fixed) {
			double il = live - last_live, id = drops - last_drops;
			double cw = getenv("SIM_CUTW") ? atof(getenv("SIM_CUTW")) : 0;

			id += cw * (cancelled - last_cut);
			last_cut = cancelled;

			k = pace_adjust(k, PG_OVERDIAL, 3, il > 0 ? id / il : 0,
			    0, 0, il);
			last_live = live;
			last_drops = drops;
			if (trace)
				printf("%5.0f s  k %.3f  live %.0f drops %.0f "
				    "busy %.1f%%\n", now, k, live, drops,
				    100 * busy / avail);
		}
	}
	printf("cancelled %.0f  ", cancelled);
	printf("live %.0f  drops %.0f  ab/live %.2f%%  busy %.2f%%  k %.3f\n",
	    live, drops, 100 * drops / fmax(live, 1), 100 * busy /
	    fmax(avail, 1), k);
	return 0;
}
