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
#include <stdlib.h>
#include <string.h>

#include "pacing.h"
#include "util.h"

#define MIN_HIT		0.02	/* below: hit ratio taken as this */
#ifndef PACE_MARGIN
#define PACE_MARGIN	0.6	/* standard deviations of the answers */
#endif
#define PACE_STEP_DOWN	0.85	/* the gain's step, at most, per interval */
#define PACE_STEP_UP	1.06
#ifndef PACE_CUT_MARGIN
#define PACE_CUT_MARGIN	0.0	/* the same, for cutting calls */
#endif
#define PACE_ETA	0.02	/* the gain's log, per abandoned call */
#define PACE_AIM	0.85	/* of an overdial goal: it is a ceiling */

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
 * planned - new calls now, from the forecast: at every horizon t, the
 * live answers by t (of the calls placed and of the new ones) must not
 * outnumber the agents free by t + grace, less a margin of one standard
 * deviation of the difference.  The fewest calls any horizon allows: an
 * answer at t finds an agent if, and only if, that holds at every t up to
 * it (agents once free stay free until given a call).  The gain scales
 * the agents: the feedback loop's correction of what the forecast misses.
 */
static double
planned(const struct pace_in *in)
{
	const struct pace_plan	*p = in->plan;
	int			 g = (int)(in->grace / PACE_STEP_S), t, ta;
	double			 best = HUGE_VAL, f, x, v, b, u;
	double			 z = PACE_MARGIN;

	for (t = 1; t < PACE_STEPS; t++) {
		if ((f = p->per_call[t]) < 0.005)
			continue;
		ta = t + g < PACE_STEPS ? t + g : PACE_STEPS - 1;
		/*
		 * c new calls leave u = x - c f agents to spare, with a
		 * variance v + c f (1 - f): the largest c with u >= z sd, from
		 * u^2 + b u - z^2 (v + x (1 - f)) = 0, b = z^2 (1 - f).
		 */
		x = p->free[ta] * in->k - p->ans[t];
		v = p->free_var[ta] + p->ans_var[t];
		b = z * z * (1 - f);
		u = (-b + sqrt(b * b + 4 * z * z * fmax(v + x * (1 - f), 0))) /
		    2;
		if ((x - u) / f < best)
			best = (x - u) / f;
	}
	return best == HUGE_VAL ? 0 : best;
}

/*
 * predictive - calls wanted in flight: the agents free within the time a
 * call takes to be answered, less the answers waiting for them and those
 * still to come from the calls placed, over the hit ratio.  Returned as
 * calls in flight (the caller takes the calls placed off) when the
 * placed calls' answers are counted at the hit ratio, else as new calls.
 * Used without a forecast: the agentless modes, whose ports are free at
 * once.
 */
static double
predictive(const struct pace_in *in)
{
	double	hit = in->hit < MIN_HIT ? MIN_HIT : in->hit;
	double	soon = in->ready, want;

	if (in->plan != NULL)
		return planned(in);
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

static int
cmp_float(const void *a, const void *b)
{
	float	x = *(const float *)a, y = *(const float *)b;

	return x < y ? -1 : x > y;
}

/* le - how many of the n sorted values are <= x */
static unsigned
le(const float *v, unsigned n, double x)
{
	unsigned	lo = 0, hi = n, mid;

	while (lo < hi) {
		mid = (lo + hi) / 2;
		if (v[mid] <= x)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

void
pace_dist_add(struct pace_dist *d, double secs)
{
	d->v[d->next] = (float)secs;
	d->next = (d->next + 1) % PACE_SAMPLES;
	if (d->n < PACE_SAMPLES)
		d->n++;
}

struct obs {
	double	t;
	int	ended;
};

static int
cmp_obs(const void *a, const void *b)
{
	const struct obs	*x = a, *y = b;

	if (x->t != y->t)
		return x->t < y->t ? -1 : 1;
	return y->ended - x->ended;	/* at a tie, the ended first */
}

void
pace_surv_build(struct pace_surv *sv, const struct pace_dist *d,
    const double *running, size_t n)
{
	struct obs	*o;
	size_t		 all = d->n + n, i, at_risk;
	double		 s = 1, sum = 0;

	memset(sv, 0, sizeof(*sv));
	if (d->n == 0)
		return;
	o = xcalloc(all, sizeof(*o));
	for (i = 0; i < d->n; i++) {
		o[i].t = d->v[i];
		o[i].ended = 1;
		sum += d->v[i];
	}
	for (i = 0; i < n; i++)
		o[d->n + i].t = running[i];
	qsort(o, all, sizeof(*o), cmp_obs);
	sv->t = xcalloc(d->n, sizeof(*sv->t));
	sv->s = xcalloc(d->n, sizeof(*sv->s));
	for (i = 0, at_risk = all; i < all; i++, at_risk--) {
		if (!o[i].ended)
			continue;
		s *= 1.0 - 1.0 / (double)at_risk;
		sv->t[sv->n] = o[i].t;
		sv->s[sv->n++] = s;
	}
	sv->mean = sum / d->n;
	free(o);
}

void
pace_surv_free(struct pace_surv *sv)
{
	free(sv->t);
	free(sv->s);
	memset(sv, 0, sizeof(*sv));
}

/* surv - S(x), the chance to last longer than x */
static double
surv(const struct pace_surv *sv, double x)
{
	unsigned	lo = 0, hi = sv->n, mid;

	while (lo < hi) {		/* how many ended at or before x */
		mid = (lo + hi) / 2;
		if (sv->t[mid] <= x)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo == 0 ? 1 : sv->s[lo - 1];
}

double
pace_surv_within(const struct pace_surv *sv, double e, double s)
{
	double	se;

	if (sv->n == 0)
		return -1;
	if (s <= 0)
		return 0;
	se = surv(sv, e);
	/* Longer than every one that ended: as memoryless as their mean. */
	if (e >= sv->t[sv->n - 1] || se <= 0)
		return sv->mean > 0 ? 1 - exp(-s / sv->mean) : 1;
	return 1 - surv(sv, e + s) / se;
}

void
pace_plan_agent(struct pace_plan *p, const struct pace_surv *talk,
    const struct pace_surv *wrap, enum pace_agent st, double elapsed)
{
	double	w = wrap->n > 0 ? wrap->mean : 0, q;
	int	t;

	for (t = 0; t < PACE_STEPS; t++) {
		switch (st) {
		case PA_READY:
			q = 1;
			break;
		case PA_WRAP:
			q = pace_surv_within(wrap, elapsed, t * PACE_STEP_S);
			break;
		case PA_TALK:
		default:
			/* The call ends, then the wrap-up (its mean). */
			q = pace_surv_within(talk, elapsed, t * PACE_STEP_S -
			    w);
			break;
		}
		if (q <= 0)
			continue;	/* unknown counts as busy */
		p->free[t] += q;
		p->free_var[t] += q * (1 - q);
	}
}

/* sorted_samples - the samples' lengths, all and live, sorted */
static void
sorted_samples(const struct pace_samples *s, float *all, unsigned *na,
    float *live, unsigned *nl)
{
	unsigned	i;

	*na = *nl = 0;
	for (i = 0; i < s->n; i++) {
		all[(*na)++] = s->secs[i];
		if (s->live[i])
			live[(*nl)++] = s->secs[i];
	}
	qsort(all, *na, sizeof(*all), cmp_float);
	qsort(live, *nl, sizeof(*live), cmp_float);
}

void
pace_plan_calls(struct pace_plan *p, const struct pace_samples *s,
    const double *ages, size_t n, unsigned fresh, unsigned waiting)
{
	float		all[PACE_SAMPLES], live[PACE_SAMPLES];
	unsigned	na, nl, longer;
	size_t		j;
	int		t;
	double		q;

	sorted_samples(s, all, &na, live, &nl);
	if (na == 0)
		return;
	for (t = 0; t < PACE_STEPS; t++) {
		p->per_call[t] = (double)le(live, nl, t * PACE_STEP_S) / na;
		p->ans[t] += waiting + fresh * p->per_call[t];
		p->ans_var[t] += fresh * p->per_call[t] *
		    (1 - p->per_call[t]);
	}
	for (j = 0; j < n; j++) {
		/* Older than every sample: it ends with no one, as they did. */
		if ((longer = na - le(all, na, ages[j])) == 0)
			continue;
		for (t = 0; t < PACE_STEPS; t++) {
			q = (double)(le(live, nl, ages[j] + t * PACE_STEP_S) -
			    le(live, nl, ages[j])) / longer;
			p->ans[t] += q;
			p->ans_var[t] += q * (1 - q);
		}
	}
}

unsigned
pace_cuts(const struct pace_plan *p, const struct pace_samples *s,
    const double *ages, size_t n, double after, double grace,
    unsigned char *cut)
{
	float		all[PACE_SAMPLES], live[PACE_SAMPLES];
	unsigned	na, nl, longer, ncut = 0;
	int		g = (int)(grace / PACE_STEP_S), t, ta;
	double		short_by = 0, d, q, best;
	size_t		j, pick;
	double		*chance;

	memset(cut, 0, n);
	for (t = 1; t <= (int)(PACE_CUT_S / PACE_STEP_S); t++) {
		ta = t + g < PACE_STEPS ? t + g : PACE_STEPS - 1;
		d = p->ans[t] - p->free[ta] + PACE_CUT_MARGIN *
		    sqrt(p->free_var[ta] + p->ans_var[t]);
		if (d > short_by)
			short_by = d;
	}
	if (short_by <= 0 || n == 0)
		return 0;
	sorted_samples(s, all, &na, live, &nl);
	chance = xcalloc(n, sizeof(*chance));
	for (j = 0; j < n; j++) {
		if (ages[j] < after ||
		    (longer = na - le(all, na, ages[j])) == 0)
			continue;
		chance[j] = (double)(le(live, nl, ages[j] + PACE_CUT_S) -
		    le(live, nl, ages[j])) / longer;
	}
	while (short_by > 0) {
		best = 0;
		pick = n;
		for (j = 0; j < n; j++)
			if (!cut[j] && (q = chance[j]) > best) {
				best = q;
				pick = j;
			}
		if (pick == n)
			break;
		cut[pick] = 1;
		ncut++;
		short_by -= best;
	}
	free(chance);
	return ncut;
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
		if (in->plan == NULL && in->expect < 0)
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
 * bounded, so one bad interval cannot swing it far.  For an overdial
 * goal, on the counts of the interval: each abandoned call takes
 * PACE_ETA off the gain's logarithm and each live answer gives back the
 * goal's share of it, so that over any run of intervals the gain settles
 * where the abandons are the goal's share of the answers (an integral
 * controller: a window's rate, with a handful of answers, swings it from
 * one bound to the other).
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
		step = exp(0.25 * err);
		break;
	case PG_WAIT:
		err = goal > 0 ? (goal - wait) / goal : -wait;
		step = exp(0.25 * err);
		break;
	case PG_OVERDIAL:
	default:
		step = exp(PACE_ETA * live * (PACE_AIM * goal / 100.0 -
		    abandon));
		break;
	}
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
