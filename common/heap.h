/* SPDX-License-Identifier: Apache-2.0 */
/*
 * heap - a binary min-heap of nodes embedded in the caller's structures,
 * by a 64-bit key (a deadline in ms, say).  A node knows its own place,
 * so it is moved or taken out in O(log n) without a search.  For timers
 * counted in the hundreds of thousands, where a walk over all of them on
 * every tick would cost more than the work it finds.
 */
#ifndef TENANTD_HEAP_H
#define TENANTD_HEAP_H

#include <stddef.h>
#include <stdint.h>

struct heap_node {
	uint64_t	 key;
	size_t		 at;		/* its index + 1; 0: not in a heap */
};

struct heap {
	struct heap_node **v;
	size_t		 n, cap;
};

/* Put n in at key, or move it there when it is in already. */
void		 heap_set(struct heap *, struct heap_node *n, uint64_t key);
/* Take n out (nothing when it is not in). */
void		 heap_del(struct heap *, struct heap_node *n);
/* The node with the smallest key, NULL when empty. */
struct heap_node *heap_top(const struct heap *);
/* Forget every node (their at made 0) and free the array. */
void		 heap_clear(struct heap *);

#define heap_in(n)	((n)->at != 0)

#endif
