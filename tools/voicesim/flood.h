/* SPDX-License-Identifier: Apache-2.0 */
/*
 * flood - the benchmark mode: synthetic call events XADDed to the events
 * stream as fast as Redis takes them, many commands in flight at once.
 */
#ifndef VOICESIM_FLOOD_H
#define VOICESIM_FLOOD_H

#include <stdint.h>

struct rds;
struct flood;

/*
 * Write count events (0: until flood_free) to key on rds, and the same
 * events to each of the nmirror mirrors; done is called once all count
 * have been answered.  Writing starts, and resumes, when flood_kick is
 * called with the connection up.
 */
struct flood	*flood_new(struct rds *, struct rds **mirrors, int nmirror,
		    const char *key, const char *region, const char *boot,
		    uint64_t count, void (*done)(void *), void *arg);
void		 flood_free(struct flood *);
void		 flood_kick(struct flood *);
/* Events answered by Redis, and failed, so far; the time it took. */
void		 flood_report(const struct flood *);

#endif
