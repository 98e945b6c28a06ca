/* SPDX-License-Identifier: Apache-2.0 */
/*
 * idmap - Fibonacci hashing (the top bits of key * 2^64/phi) picks the
 * home slot; a key lives at its home or after it, with no empty slot
 * between.  Removal shifts back the keys after the hole that could sit in
 * it, so that stays true.
 */
#include <stdlib.h>

#include "idmap.h"
#include "log.h"
#include "util.h"

/* home - where key would sit with no collision: the top bits of the
 * product, which every bit of the key reaches */
static size_t
home(const struct idmap *m, uint64_t key)
{
	return (size_t)((key * 0x9e3779b97f4a7c15ULL) >>
	    (64 - __builtin_ctzll((unsigned long long)m->cap)));
}

/* find - the slot holding key, or the empty slot where it would go */
static size_t
find(const struct idmap *m, uint64_t key)
{
	size_t	i = home(m, key);

	while (m->s[i].key != 0 && m->s[i].key != key)
		i = (i + 1) & (m->cap - 1);
	return i;
}

/* idmap_get - the value under key, or NULL */
void *
idmap_get(const struct idmap *m, uint64_t key)
{
	if (m->n == 0 || key == 0)
		return NULL;
	return m->s[find(m, key)].val;
}

/* grow - twice the slots, every key placed again */
static void
grow(struct idmap *m)
{
	struct idmap_slot	*old = m->s;
	size_t			 ncap = m->cap ? m->cap * 2 : 16, i, oldcap = m->cap;

	m->s = xcalloc(ncap, sizeof(*m->s));
	m->cap = ncap;
	for (i = 0; i < oldcap; i++)
		if (old[i].key != 0)
			m->s[find(m, old[i].key)] = old[i];
	free(old);
}

/* idmap_put - key now maps to val */
void *
idmap_put(struct idmap *m, uint64_t key, void *val)
{
	size_t	 i;
	void	*prev;

	if (key == 0)
		fatalx("idmap: key 0");
	if (m->cap > 0 && m->s[i = find(m, key)].key != 0) {
		prev = m->s[i].val;
		m->s[i].val = val;
		return prev;
	}
	if (2 * (m->n + 1) > m->cap)
		grow(m);
	i = find(m, key);
	m->s[i].key = key;
	m->s[i].val = val;
	m->n++;
	return NULL;
}

/* idmap_del - key maps to nothing */
void *
idmap_del(struct idmap *m, uint64_t key)
{
	size_t	 i, j, k, mask;
	void	*prev;

	if (m->n == 0 || key == 0 || m->s[i = find(m, key)].key == 0)
		return NULL;
	prev = m->s[i].val;
	mask = m->cap - 1;
	m->s[i].key = 0;
	m->s[i].val = NULL;
	m->n--;
	for (j = (i + 1) & mask; m->s[j].key != 0; j = (j + 1) & mask) {
		k = home(m, m->s[j].key);
		/* Move j into the hole i unless its home lies in (i, j]. */
		if ((j > i && (k <= i || k > j)) || (j < i && k <= i && k > j)) {
			m->s[i] = m->s[j];
			m->s[j].key = 0;
			m->s[j].val = NULL;
			i = j;
		}
	}
	return prev;
}

/* idmap_each - f on every key and value, in no order */
void
idmap_each(const struct idmap *m, void (*f)(uint64_t, void *, void *),
    void *arg)
{
	size_t	i;

	for (i = 0; i < m->cap; i++)
		if (m->s[i].key != 0)
			f(m->s[i].key, m->s[i].val, arg);
}

/* idmap_clear - an empty map */
void
idmap_clear(struct idmap *m)
{
	free(m->s);
	m->s = NULL;
	m->cap = m->n = 0;
}
