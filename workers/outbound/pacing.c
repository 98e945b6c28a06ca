/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pacing - how many calls a campaign group places now (docs/outbound.md,
 * "Dial modes"): pure.
 *
 *   Progressive      one call per ready agent (times workers.outbound.
 *                    progressive_ratio), less the calls already placed;
 *   Power            optimizeGoal calls per ready agent (at least one);
 *   Predictive       the agents expected free within the time a call
 *                    takes to be answered, over the measured hit ratio,
 *                    times a gain that a feedback loop moves to hold the
 *                    group's goal (pace_adjust); progressive until enough
 *                    calls were measured, and with fewer agents than
 *                    workers.outbound.predictive_min_agents;
 *   *GVP             the same with IVR ports (numOfChannels) for agents:
 *                    no agent is needed.
 *
 * Every mode stays within numOfChannels (calls in progress, connected
 * ones too) and maxQueueSize (calls placed and not yet connected).
 */
#include <math.h>
#include <string.h>

#include "pacing.h"

#define MIN_HIT		0.02	/* below: hit ratio taken as this */
#define PACE_MARGIN	1.0	/* standard deviations of the answers */
#define PACE_STEP_DOWN	0.85	/* the gain's step, at most, per interval */
#define PACE_STEP_UP	1.06

static const char *const modes[] = {
	[PM_NONE] = "Preview", [PM_PROGRESSIVE] = "Progressive",
	[PM_PREDICTIVE] = "Predictive", [PM_POWER] = "Power",
	[PM_PROGRESSIVE_GVP] = "ProgressiveGVP",
	[PM_PREDICTIVE_GVP] = "PredictiveGVP", [PM_POWER_GVP] = "PowerGVP",
};

enum pace_mode
pace_mode_parse(const char *s)
{
	int	i;

	for (i = PM_PROGRESSIVE; s != NULL && i <= PM_POWER_GVP; i++)
		if (strcmp(modes[i], s) == 0)
			return (enum pace_mode)i;
	return PM_NONE;
}

int
pace_agentless(enum pace_mode m)
{
	return m == PM_PROGRESSIVE_GVP || m == PM_PREDICTIVE_GVP ||
	    m == PM_POWER_GVP;
}

enum pace_goal
pace_goal_parse(const char *s)
{
	if (s != NULL && strcmp(s, "BusyFactor") == 0)
		return PG_BUSY;
	if (s != NULL && strcmp(s, "AverageWaitTime") == 0)
		return PG_WAIT;
	return PG_OVERDIAL;
}

/*
 * predictive - calls wanted in flight: the agents free within the time a
 * call takes to be answered, less the answers waiting for them and those
 * still to come from the calls placed, over the hit ratio.  Returned as
 * calls in flight (the caller takes the calls placed off) when the
 * placed calls' answers are counted at the hit ratio, else as new calls.
 */
static double
predictive(const struct pace_in *in)
{
	double	hit = in->hit < MIN_HIT ? MIN_HIT : in->hit;
	double	soon = in->ready, want;

	/* An agent on a call is free within ttc with 1 - e^(-ttc/aht). */
	if (in->aht > 0 && in->ttc > 0)
		soon += in->busy * (1.0 - exp(-in->ttc / in->aht));
	want = (soon - in->waiting) * in->k;
	if (in->expect < 0)
		return want / hit;
	/*
	 * The answers come by chance: for many free agents at once (a start,
	 * a shift coming in) the count varies by about its square root, and
	 * every answer above the agents is a drop.  Aim that much below.
	 */
	if (want > 0)
		want -= PACE_MARGIN * sqrt(want);
	return (want - in->expect) / hit;
}

void
pace_sample(struct pace_samples *p, double secs, int live)
{
	p->secs[p->next] = (float)secs;
	p->live[p->next] = live != 0;
	p->next = (p->next + 1) % PACE_SAMPLES;
	if (p->n < PACE_SAMPLES)
		p->n++;
}

double
pace_hit(const struct pace_samples *p)
{
	unsigned	i, live = 0;

	if (p->n < PACE_MIN_SAMPLES)
		return -1;
	for (i = 0; i < p->n; i++)
		live += p->live[i];
	return (double)live / p->n;
}

double
pace_expect(const struct pace_samples *p, const double *ages, size_t n)
{
	unsigned	i;
	size_t		j;
	double		sum = 0;
	unsigned	longer, live;

	for (j = 0; j < n; j++) {
		longer = live = 0;
		for (i = 0; i < p->n; i++)
			if (p->secs[i] > ages[j]) {
				longer++;
				live += p->live[i];
			}
		/* Older than every sample: as likely as the oldest were. */
		if (longer > 0)
			sum += (double)live / longer;
	}
	return sum;
}

unsigned
pace_calls(const struct pace_in *in)
{
	double		 want;
	unsigned	 inflight = in->dialing + in->waiting, n;
	enum pace_mode	 m = in->mode;

	switch (m) {
	case PM_PREDICTIVE:
	case PM_PREDICTIVE_GVP:
		if (in->hit < 0 || (m == PM_PREDICTIVE &&
		    in->logged_in < in->min_agents)) {
			want = in->ready * (in->ratio > 0 ? in->ratio : 1.0);
			break;
		}
		want = predictive(in);
		break;
	case PM_POWER:
	case PM_POWER_GVP:
		want = (double)in->ready * (in->goal > 0 ? in->goal : 1);
		break;
	case PM_PROGRESSIVE:
	case PM_PROGRESSIVE_GVP:
		want = in->ready * (in->ratio > 0 ? in->ratio : 1.0);
		break;
	default:
		return 0;
	}
	/* Progressive and power: the calls placed are for ready agents. */
	if (m != PM_PREDICTIVE && m != PM_PREDICTIVE_GVP)
		want -= inflight;
	else if (in->hit >= 0 && !(m == PM_PREDICTIVE &&
	    in->logged_in < in->min_agents)) {
		if (in->expect < 0)
			want -= in->dialing;
	}
	else
		want -= inflight;
	if (want < 1)
		return 0;
	n = (unsigned)floor(want);
	if (in->channels > 0) {
		unsigned used = inflight + in->connected;

		n = used >= in->channels ? 0 : n < in->channels - used ? n :
		    in->channels - used;
	}
	if (in->max_queue > 0)
		n = inflight >= in->max_queue ? 0 : n < in->max_queue -
		    inflight ? n : in->max_queue - inflight;
	return n;
}

/*
 * pace_adjust - move the gain toward the goal: multiplicative steps,
 * bounded, so one bad window cannot swing it far.
 */
double
pace_adjust(double k, enum pace_goal g, int goal, double abandon,
    double busy, double wait, double live)
{
	double	err, step;

	if (live < 1)
		return k;
	switch (g) {
	case PG_BUSY:
		/* Up while below the busy goal, unless abandons run high. */
		err = (goal / 100.0 - busy);
		if (abandon > 0.05)
			err = -abandon;
		break;
	case PG_WAIT:
		err = goal > 0 ? (goal - wait) / goal : -wait;
		break;
	case PG_OVERDIAL:
	default:
		err = goal > 0 ? (goal / 100.0 - abandon) / (goal / 100.0) :
		    -abandon * 10;
		break;
	}
	step = exp(0.25 * err);
	/* Down fast, up slowly: drops show only after the calls placed on
	 * the higher gain are answered, so climbing fast overshoots. */
	if (step < PACE_STEP_DOWN)
		step = PACE_STEP_DOWN;
	if (step > PACE_STEP_UP)
		step = PACE_STEP_UP;
	k *= step;
	if (k < 0.3)
		k = 0.3;
	if (k > 3.0)
		k = 3.0;
	return k;
}
