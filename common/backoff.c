/* SPDX-License-Identifier: Apache-2.0 */
/*
 * backoff - capped exponential backoff.  Delay n is base * 2^n, capped at
 * max, less a random jitter so that many clients that lost the same server
 * do not all come back in the same millisecond.
 */
#include <stdint.h>

#include "backoff.h"

/* backoff_init - set up a backoff; jitter_pct 0 makes it deterministic */
void
backoff_init(struct backoff *b, uint64_t base_us, uint64_t max_us,
    unsigned jitter_pct)
{
	b->base_us = base_us;
	b->max_us = max_us < base_us ? base_us : max_us;
	b->attempt = 0;
	b->jitter_pct = jitter_pct > 100 ? 100 : jitter_pct;
	b->seed = (uint32_t)(uintptr_t)b ^ 0x9e3779b9u;
}

/* backoff_peek - the un-jittered delay of the next attempt */
uint64_t
backoff_peek(const struct backoff *b)
{
	uint64_t	d = b->base_us;
	unsigned	i;

	for (i = 0; i < b->attempt && d < b->max_us; i++)
		d = d > b->max_us / 2 ? b->max_us : d * 2;
	return d > b->max_us ? b->max_us : d;
}

/* backoff_next - the delay before the next attempt, counting a failure */
uint64_t
backoff_next(struct backoff *b)
{
	uint64_t	d = backoff_peek(b);

	if (b->attempt < 64)
		b->attempt++;
	if (b->jitter_pct > 0 && d > 0) {
		/* xorshift32: jitter needs no quality, only no shared state */
		b->seed ^= b->seed << 13;
		b->seed ^= b->seed >> 17;
		b->seed ^= b->seed << 5;
		d -= (d * b->jitter_pct / 100) * (b->seed % 1000) / 1000;
	}
	return d;
}

/* backoff_reset - forget past failures after a success */
void
backoff_reset(struct backoff *b)
{
	b->attempt = 0;
}
