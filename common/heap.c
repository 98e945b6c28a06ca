/* SPDX-License-Identifier: Apache-2.0 */
/* heap - see heap.h */
#include <stdlib.h>

#include "heap.h"
#include "util.h"

static void
place(struct heap *h, size_t i, struct heap_node *n)
{
	h->v[i] = n;
	n->at = i + 1;
}

static void
up(struct heap *h, size_t i)
{
	struct heap_node	*n = h->v[i];
	size_t			 p;

	while (i > 0 && h->v[p = (i - 1) / 2]->key > n->key) {
		place(h, i, h->v[p]);
		i = p;
	}
	place(h, i, n);
}

static void
down(struct heap *h, size_t i)
{
	struct heap_node	*n = h->v[i];
	size_t			 c;

	while ((c = 2 * i + 1) < h->n) {
		if (c + 1 < h->n && h->v[c + 1]->key < h->v[c]->key)
			c++;
		if (h->v[c]->key >= n->key)
			break;
		place(h, i, h->v[c]);
		i = c;
	}
	place(h, i, n);
}

void
heap_set(struct heap *h, struct heap_node *n, uint64_t key)
{
	uint64_t	old = n->key;

	n->key = key;
	if (n->at != 0) {
		if (key < old)
			up(h, n->at - 1);
		else if (key > old)
			down(h, n->at - 1);
		return;
	}
	if (h->n == h->cap) {
		h->cap = h->cap != 0 ? h->cap * 2 : 64;
		h->v = xrealloc(h->v, h->cap * sizeof(*h->v));
	}
	place(h, h->n++, n);
	up(h, h->n - 1);
}

void
heap_del(struct heap *h, struct heap_node *n)
{
	size_t			 i = n->at - 1;
	struct heap_node	*last;

	if (n->at == 0)
		return;
	n->at = 0;
	last = h->v[--h->n];
	if (i == h->n)
		return;
	place(h, i, last);
	if (i > 0 && h->v[(i - 1) / 2]->key > last->key)
		up(h, i);
	else
		down(h, i);
}

struct heap_node *
heap_top(const struct heap *h)
{
	return h->n > 0 ? h->v[0] : NULL;
}

void
heap_clear(struct heap *h)
{
	size_t	i;

	for (i = 0; i < h->n; i++)
		h->v[i]->at = 0;
	free(h->v);
	h->v = NULL;
	h->n = h->cap = 0;
}
