/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ewt - expected wait in a virtual queue (docs/routing.md, "Expected
 * wait"), as URS's web API names the ways to estimate it:
 *
 *   urs	from the queue's recent flow: the mean time between the last
 *		32 interactions that left it for an agent, times the
 *		position;
 *   urs2	from handle time and agents: the mean handle time of the
 *		last 32 interactions of the queue (accepted to completed),
 *		times the position, over the agents logged in who fit what
 *		waits in the queue (every agent logged in, when nothing
 *		waits).
 *
 * -1 when there is not enough to say (fewer than two departures; no
 * handle time or no agent).  Every instance counts what its event stream
 * shows, which is the same for all.
 *
 * What it touches: memory.
 */
#include <string.h>

#include "util.h"
#include "routing_int.h"

#define RING	32

void
ewt_left(struct vq *q, uint64_t at_ms)
{
	q->left_ms[q->nleft % RING] = at_ms;
	q->nleft++;
}

void
ewt_handled(struct vq *q, double seconds)
{
	q->handle[q->nhandle % RING] = seconds;
	q->nhandle++;
}

/* flow - the mean time between departures, or -1 */
static double
flow(const struct vq *q)
{
	unsigned	n = q->nleft < RING ? q->nleft : RING;
	uint64_t	first, last;

	if (n < 2)
		return -1;
	last = q->left_ms[(q->nleft - 1) % RING];
	first = q->left_ms[(q->nleft - n) % RING];
	return last > first ? (last - first) / 1000.0 / (n - 1) : 0;
}

static int
same(const struct target *a, const struct target *b)
{
	return a->kind == b->kind && a->dbid == b->dbid && (a->text == NULL ?
	    b->text == NULL : b->text != NULL && strcmp(a->text, b->text) ==
	    0);
}

/*
 * ewt_agents - for each distinct target of the queue's live interactions
 * (their first: the steps widen it later), the agents it fits; the most.
 * The interactions of a queue mostly share a few targets: each is counted
 * once (up to TARGETS of them).
 */
#define TARGETS	16
unsigned
ewt_agents(const struct vq *q, unsigned *free_now)
{
	static const struct target	 any = { TG_ANY, 0, NULL, NULL };
	const struct target		*seen[TARGETS];
	const struct ix			*x;
	unsigned			 n, f, best = 0, best_free = 0;
	size_t				 ns = 0, i;

	if (TAILQ_EMPTY(&q->list))
		return pool_count(&any, free_now);
	TAILQ_FOREACH(x, &q->list, entry) {
		for (i = 0; i < ns && !same(seen[i], &x->steps[0].t); i++)
			;
		if (i < ns)
			continue;
		if (ns == TARGETS)
			break;
		seen[ns++] = &x->steps[0].t;
		if ((n = pool_count(&x->steps[0].t, &f)) > best) {
			best = n;
			best_free = f;
		}
	}
	if (free_now != NULL)
		*free_now = best_free;
	return best;
}

double
ewt(const struct vq *q, unsigned pos, enum ewt_kind kind)
{
	unsigned	n, i, agents;
	double		gap, sum = 0;

	if (pos == 0)
		return 0;
	switch (kind) {
	case EWT_URS:
		if ((gap = flow(q)) < 0)
			return -1;
		return gap * pos;
	case EWT_URS2:
		n = q->nhandle < RING ? q->nhandle : RING;
		if (n == 0 || (agents = ewt_agents(q, NULL)) == 0)
			return -1;
		for (i = 0; i < n; i++)
			sum += q->handle[i];
		return sum / n * pos / agents;
	case EWT_STAT:
		return statlink_ewt(q, pos);
	}
	return -1;
}
