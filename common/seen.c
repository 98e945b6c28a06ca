/* SPDX-License-Identifier: Apache-2.0 */
/*
 * seen - ring[] holds the ids' digests in arrival order; slot[] maps a
 * digest to its ring position + 1 (0: empty), linear probing,
 * backward-shift deletion, kept at most half full.  A slot keeps 32 bits
 * of the digest too: a probe compares them before the ring entry, and a
 * shift needs no ring entry at all.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "seen.h"
#include "util.h"

#define PAGE	4096

struct digest {
	uint64_t	 a, b;
};

struct slot {
	uint32_t	 at;		/* ring position + 1; 0: empty */
	uint32_t	 hash;		/* the digest's low 32 bits */
};

struct seen {
	struct digest	*ring;
	size_t		 cap;
	size_t		 next;		/* where the next id goes */
	size_t		 count;
	struct slot	*slot;
	size_t		 nslots;
};

/* mix - splitmix64's finaliser: every input bit moves every output bit */
static uint64_t
mix(uint64_t h)
{
	h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ULL;
	h = (h ^ (h >> 27)) * 0x94d049bb133111ebULL;
	return h ^ (h >> 31);
}

/*
 * digest - two 64-bit hashes of id, of different constructions (FNV-1a;
 * a multiply-rotate over the bytes and the length), each finalised
 */
static struct digest
digest(const char *id)
{
	const unsigned char	*p = (const unsigned char *)id;
	uint64_t		 a = 1469598103934665603ULL;
	uint64_t		 b = 0x9e3779b97f4a7c15ULL;
	size_t			 n = 0;
	struct digest		 d;

	for (; *p != '\0'; p++, n++) {
		a = (a ^ *p) * 1099511628211ULL;
		b = (b + *p) * 0xff51afd7ed558ccdULL;
		b = (b << 31) | (b >> 33);
	}
	d.a = mix(a);
	d.b = mix(b ^ n);
	return d;
}

/* touch - make every page of p resident now */
static void
touch(void *p, size_t len)
{
	volatile char	*c = p;
	size_t		 i;

	for (i = 0; i < len; i += PAGE)
		c[i] = 0;
}

struct seen *
seen_new(size_t cap, int prefault)
{
	struct seen	*s = xcalloc(1, sizeof(*s));

	s->cap = cap > 0 ? cap : 1;
	s->ring = xcalloc(s->cap, sizeof(*s->ring));
	for (s->nslots = 16; s->nslots < 2 * s->cap; s->nslots *= 2)
		;
	s->slot = xcalloc(s->nslots, sizeof(*s->slot));
	if (prefault) {
		touch(s->ring, s->cap * sizeof(*s->ring));
		touch(s->slot, s->nslots * sizeof(*s->slot));
	}
	return s;
}

void
seen_free(struct seen *s)
{
	if (s == NULL)
		return;
	free(s->ring);
	free(s->slot);
	free(s);
}

/* find - the slot of digest d, or the empty slot where it would go */
static size_t
find(const struct seen *s, struct digest d)
{
	size_t			 i = (size_t)d.a & (s->nslots - 1);
	const struct digest	*r;

	for (; s->slot[i].at != 0; i = (i + 1) & (s->nslots - 1)) {
		if (s->slot[i].hash != (uint32_t)d.a)
			continue;
		r = &s->ring[s->slot[i].at - 1];
		if (r->a == d.a && r->b == d.b)
			break;
	}
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
	return s->slot[find(s, digest(id))].at != 0;
}

int
seen_add(struct seen *s, const char *id)
{
	struct digest	d = digest(id);
	size_t		i = find(s, d);

	if (s->slot[i].at != 0)
		return 0;
	if (s->count == s->cap) {		/* full: drop the oldest */
		forget(s, find(s, s->ring[s->next]));
		i = find(s, d);
	} else
		s->count++;
	s->ring[s->next] = d;
	s->slot[i].at = (uint32_t)s->next + 1;
	s->slot[i].hash = (uint32_t)d.a;
	s->next = (s->next + 1) % s->cap;
	return 1;
}
