/* SPDX-License-Identifier: Apache-2.0 */
/*
 * backoff - capped exponential backoff with jitter, used by the supervisor
 * to restart workers and by every client that reconnects to PostgreSQL,
 * Redis or a peer.
 */
#ifndef TENANTD_BACKOFF_H
#define TENANTD_BACKOFF_H

#include <stdint.h>

struct backoff {
	uint64_t	base_us;	/* first delay */
	uint64_t	max_us;		/* cap */
	unsigned	attempt;	/* failures since the last reset */
	unsigned	jitter_pct;	/* 0..100: delay is reduced by up to this much */
	uint32_t	seed;		/* private PRNG state for jitter */
};

void		backoff_init(struct backoff *, uint64_t base_us, uint64_t max_us,
		    unsigned jitter_pct);
/* The delay to wait before the next attempt; counts one failure. */
uint64_t	backoff_next(struct backoff *);
/* The delay backoff_next would return, without counting a failure. */
uint64_t	backoff_peek(const struct backoff *);
void		backoff_reset(struct backoff *);

#endif
