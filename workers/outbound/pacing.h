/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pacing - how many calls a campaign group places now (pacing.c).
 */
#ifndef TENANTD_OB_PACING_H
#define TENANTD_OB_PACING_H

enum pace_mode {
	PM_NONE = 0,		/* Preview, PushPreview: the agent dials */
	PM_PROGRESSIVE,
	PM_PREDICTIVE,
	PM_POWER,
	PM_PROGRESSIVE_GVP,
	PM_PREDICTIVE_GVP,
	PM_POWER_GVP,
};

enum pace_goal {
	PG_OVERDIAL = 0,	/* abandoned per live answer, percent */
	PG_BUSY,		/* agents' busy factor, percent */
	PG_WAIT,		/* seconds a live answer waits for an agent */
};

struct pace_plan;
struct pace_in {
	enum pace_mode	 mode;
	unsigned	 ready;		/* agents free now (or IVR ports) */
	unsigned	 busy;		/* agents on a call */
	unsigned	 logged_in;
	unsigned	 dialing;	/* placed, no outcome yet */
	unsigned	 waiting;	/* answered, no agent yet */
	unsigned	 connected;	/* with an agent or the IVR */
	unsigned	 channels;	/* numOfChannels, 0: no limit */
	unsigned	 max_queue;	/* maxQueueSize, 0: no limit */
	double		 ratio;		/* progressive: calls per agent */
	unsigned	 min_agents;	/* predictive below: progressive */
	int		 goal;		/* optimizeGoal */
	double		 hit;		/* live answers per dial; < 0 unknown */
	double		 ttc;		/* mean s from dial to answer */
	double		 aht;		/* mean s an agent spends on a call */
	double		 k;		/* predictive gain */
	double		 expect;	/* live answers still to come from the
					   calls placed; < 0: unknown (each
					   counts hit) */
	const struct pace_plan *plan;	/* predictive with agents: the
					   forecast (expect and ttc unused) */
	double		 grace;		/* s an answer may wait for one */
};

/*
 * The dial phase of recent calls, for the predictive forecast: how long a
 * call took to be answered by a person (live) or to end otherwise.
 */
#define PACE_SAMPLES	512
#define PACE_MIN_SAMPLES 100	/* before: the hit ratio is unknown */
struct pace_samples {
	float		 secs[PACE_SAMPLES];
	unsigned char	 live[PACE_SAMPLES];
	unsigned	 n;		/* held, at most PACE_SAMPLES */
	unsigned	 next;		/* where the next one goes */
};

/*
 * A duration's distribution (an agent's time on a call, its wrap-up):
 * its last PACE_SAMPLES values, and those still running (censored) when it
 * is read, in a Kaplan-Meier estimate: the durations that ended first are
 * the short ones, so the ended ones alone would say calls are short until
 * the long ones have ended too.
 */
struct pace_dist {
	float		 v[PACE_SAMPLES];
	unsigned	 n, next;
};
struct pace_surv {
	double		*t, *s;		/* S(x) = s[i], t[i] <= x < t[i+1] */
	unsigned	 n;
	double		 mean;		/* of the ended ones, for the tail */
};

/*
 * The predictive forecast of a group, by horizon (0, PACE_STEP_S, ... s
 * from now): how many of its agents will have been free by then, how many
 * live answers the calls placed will have brought, and a new call's chance
 * of a live answer by then; with the variances of the two counts.
 */
#define PACE_STEP_S	0.5
#define PACE_STEPS	61
struct pace_plan {
	double		 free[PACE_STEPS], free_var[PACE_STEPS];
	double		 ans[PACE_STEPS], ans_var[PACE_STEPS];
	double		 per_call[PACE_STEPS];
};
enum pace_agent {
	PA_READY,		/* free now */
	PA_WRAP,		/* wrapping up a call, for elapsed s */
	PA_TALK,		/* on a call (or being given one) for elapsed s */
};

void		 pace_dist_add(struct pace_dist *, double secs);
/* The estimate from d's samples and running[0..n-1], lasted so far. */
void		 pace_surv_build(struct pace_surv *, const struct pace_dist *d,
		    const double *running, size_t n);
void		 pace_surv_free(struct pace_surv *);
/* P(X <= e + s | X > e): a duration that has lasted e ends within s more;
 * < 0 with no samples. */
double		 pace_surv_within(const struct pace_surv *, double e, double s);
/* Add one agent to the forecast. */
void		 pace_plan_agent(struct pace_plan *, const struct pace_surv *talk,
		    const struct pace_surv *wrap, enum pace_agent,
		    double elapsed);
/* Add the calls placed ages[i] s ago and not ended, fresh ones about to
 * be placed, and the answers waiting for an agent; set per_call. */
void		 pace_plan_calls(struct pace_plan *, const struct pace_samples *,
		    const double *ages, size_t n, unsigned fresh,
		    unsigned waiting);

/*
 * The calls to cut (cut[i] set) among those placed ages[i] s ago, not
 * answered: when the answers due within PACE_CUT_S outnumber the agents
 * free by then (with the margin), the calls that have rung at least
 * `after` s and are likeliest to be answered by a person within
 * PACE_CUT_S, enough of them to cover the shortfall.  Returns how many.
 */
#define PACE_CUT_S	3.0
unsigned	 pace_cuts(const struct pace_plan *, const struct pace_samples *,
		    const double *ages, size_t n, double after, double grace,
		    unsigned char *cut);

void		 pace_sample(struct pace_samples *, double secs, int live);
/* Live answers per call placed, over the samples; < 0 when too few. */
double		 pace_hit(const struct pace_samples *);
/*
 * The live answers to come from calls placed ages[i] seconds ago and not
 * yet answered or ended: each one's chance, from the samples, to end with
 * a person answering, now that it has lasted that long.
 */
double		 pace_expect(const struct pace_samples *, const double *ages,
		    size_t n);

enum pace_mode	 pace_mode_parse(const char *);
int		 pace_agentless(enum pace_mode);
enum pace_goal	 pace_goal_parse(const char *);
unsigned	 pace_calls(const struct pace_in *);
/*
 * The predictive gain after a measurement: abandon (abandoned per live
 * answer), busy (busy factor) and wait (mean s) over the last window.
 */
double		 pace_adjust(double k, enum pace_goal, int goal,
		    double abandon, double busy, double wait, double live);

#endif
