/* SPDX-License-Identifier: Apache-2.0 */
/*
 * seen - ring[] holds the ids in arrival order; slot[] maps a hash of an
 * id to its ring position + 1 (0: empty), linear probing, backward-shift
 * deletion, kept at most half full.  A slot keeps the id's hash too: a
 * probe compares it before the id, and a shift needs no id at all.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "seen.h"
#include "util.h"

struct slot {
	uint32_t	 at;		/* ring position + 1; 0: empty */
	uint32_t	 hash;
};

struct seen {
	char		**ring;
	size_t		  cap;
	size_t		  next;		/* where the next id goes */
	size_t		  count;
	struct slot	 *slot;
	size_t		  nslots;
};

/* hash - of an id */
static uint32_t
hash(const char *s)
{
	uint64_t	h = 1469598103934665603ULL;

	while (*s != '\0')
		h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
	return (uint32_t)(h ^ (h >> 32));
}

struct seen *
seen_new(size_t cap)
{
	struct seen	*s = xcalloc(1, sizeof(*s));

	s->cap = cap > 0 ? cap : 1;
	s->ring = xcalloc(s->cap, sizeof(*s->ring));
	for (s->nslots = 16; s->nslots < 2 * s->cap; s->nslots *= 2)
		;
	s->slot = xcalloc(s->nslots, sizeof(*s->slot));
	return s;
}

void
seen_free(struct seen *s)
{
	size_t	i;

	if (s == NULL)
		return;
	for (i = 0; i < s->cap; i++)
		free(s->ring[i]);
	free(s->ring);
	free(s->slot);
	free(s);
}

/* find - the slot of id (hash h), or the empty slot where it would go */
static size_t
find(const struct seen *s, const char *id, uint32_t h)
{
	size_t	i = h & (s->nslots - 1);

	while (s->slot[i].at != 0 && (s->slot[i].hash != h ||
	    strcmp(s->ring[s->slot[i].at - 1], id) != 0))
		i = (i + 1) & (s->nslots - 1);
	return i;
}

/* forget - empty slot i, shifting back the probes that passed it */
static void
forget(struct seen *s, size_t i)
{
	size_t	j, k, mask = s->nslots - 1;

	s->slot[i].at = 0;
	for (j = (i + 1) & mask; s->slot[j].at != 0; j = (j + 1) & mask) {
		k = s->slot[j].hash & mask;
		if ((j > i && (k <= i || k > j)) || (j < i && k <= i && k > j)) {
			s->slot[i] = s->slot[j];
			s->slot[j].at = 0;
			i = j;
		}
	}
}

int
seen_has(const struct seen *s, const char *id)
{
	return s->slot[find(s, id, hash(id))].at != 0;
}

int
seen_add(struct seen *s, const char *id)
{
	uint32_t	h = hash(id);
	size_t		i = find(s, id, h);

	if (s->slot[i].at != 0)
		return 0;
	if (s->ring[s->next] != NULL) {		/* full: drop the oldest */
		forget(s, find(s, s->ring[s->next], hash(s->ring[s->next])));
		free(s->ring[s->next]);
		i = find(s, id, h);
	} else
		s->count++;
	s->ring[s->next] = xstrdup(id);
	s->slot[i].at = (uint32_t)s->next + 1;
	s->slot[i].hash = h;
	s->next = (s->next + 1) % s->cap;
	return 1;
}
