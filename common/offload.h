/* SPDX-License-Identifier: Apache-2.0 */
/*
 * offload - run slow, CPU-bound work (password hashing) on a small pool of
 * threads, so that the event loop never stalls; the result is handed back
 * on the loop.  The work function must touch nothing the loop uses.
 */
#ifndef TENANTD_OFFLOAD_H
#define TENANTD_OFFLOAD_H

struct event_base;

typedef void	 offload_fn(void *arg);		/* on a pool thread */
typedef void	 offload_done_fn(void *arg);	/* on the loop, after */

void	 offload_init(struct event_base *, int nthreads);
/* Queue fn(arg), then done(arg) on the loop. */
void	 offload(offload_fn *, offload_done_fn *, void *arg);
/*
 * Stop the threads.  Finished work gets its done call; so does queued work
 * that did not start, with offload_cancelled() true: fn did not run, and
 * done only frees what arg holds.
 */
void	 offload_fini(void);
/* In a done function: whether fn did not run (offload_fini gave it back). */
int	 offload_cancelled(void);

#endif
