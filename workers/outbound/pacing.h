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
