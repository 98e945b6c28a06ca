/* SPDX-License-Identifier: Apache-2.0 */
/*
 * metrics - the registry of counters, gauges and histograms, and the table
 * of process states, both in one shared memory region that the master maps
 * before it starts any worker.
 *
 * Every process registers its series at start and updates them with atomic
 * operations; the metrics worker reads them at scrape time with no round
 * trip.  A series is found again by name and labels when its worker is
 * restarted, so counters stay monotonic across restarts.
 */
#ifndef TENANTD_METRICS_H
#define TENANTD_METRICS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "conf.h"

enum metric_type {
	METRIC_COUNTER = 1,
	METRIC_GAUGE,
	METRIC_HISTOGRAM,
};

enum proc_state {
	PROC_STOPPED = 0,	/* not running, not wanted */
	PROC_STARTING,		/* forked, not ready yet */
	PROC_READY,		/* serving */
	PROC_STOPPING,		/* asked to stop */
	PROC_BACKOFF,		/* dead, waiting to be restarted */
	PROC_FAILED,		/* dead with a bad configuration: not retried */
};

/* What the master publishes about itself and each worker. */
struct proc_status {
	volatile pid_t		 pid;
	volatile int		 state;		/* enum proc_state */
	volatile int		 enabled;
	volatile uint64_t	 started_us;	/* monotonic */
	volatile uint64_t	 ready_us;
	volatile uint64_t	 heartbeat_us;
	volatile uint64_t	 restarts;
};

struct metrics_status {
	struct proc_status	 master;
	struct proc_status	 workers[WORKER_MAX];
	volatile uint64_t	 reloads_ok;
	volatile uint64_t	 reloads_failed;
};

struct metric;

/* Map the shared region (master, before forking). 0 on success. */
int		 metrics_init(size_t max_series);
/* Use a private region instead: for tests and single-process tools. */
int		 metrics_init_private(size_t max_series);
void		 metrics_fini(void);
struct metrics_status *metrics_status(void);

/*
 * Register (or find again) a series.  labels is the text inside the braces,
 * e.g. "worker=\"metrics\"", or NULL.  Returns NULL only when the registry
 * is full or the name is invalid; the caller may then skip updates, since
 * every update function accepts NULL.
 */
struct metric	*metrics_counter(const char *name, const char *help,
		    const char *labels);
struct metric	*metrics_gauge(const char *name, const char *help,
		    const char *labels);
struct metric	*metrics_histogram(const char *name, const char *help,
		    const char *labels, const double *bounds, size_t nbounds);

void		 metric_inc(struct metric *);
void		 metric_add(struct metric *, double);
void		 metric_set(struct metric *, double);
double		 metric_get(const struct metric *);
void		 metric_observe(struct metric *, double);

/*
 * A counter that follows a running total kept elsewhere (a server's count
 * since it started): metric_follow adds what the total gained since the
 * last call.  Added, not set: the registry outlives a worker, and a new
 * worker's totals start from zero.
 */
struct metric_follower {
	struct metric	*m;
	uint64_t	 seen;
};
void		 metric_follow(struct metric_follower *, uint64_t total);

/*
 * Render every series in the Prometheus text format into buf; returns the
 * length, or the needed size if it exceeds cap (call again with more).
 */
size_t		 metrics_render(char *buf, size_t cap);
size_t		 metrics_count(void);
/* Is this a valid Prometheus metric name / label set? */
int		 metrics_valid_name(const char *);
int		 metrics_valid_labels(const char *);

#endif
