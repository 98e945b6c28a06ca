/* SPDX-License-Identifier: Apache-2.0 */
/*
 * strmap - FNV-1a over the key, its high half folded into the low,
 * picks a bucket; a bucket is a list.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "strmap.h"
#include "util.h"

/* hash - of a key */
static size_t
hash(const char *s)
{
	uint64_t	h = 1469598103934665603ULL;

	while (*s != '\0')
		h = (h ^ (unsigned char)*s++) * 1099511628211ULL;
	return (size_t)(h ^ (h >> 32));
}

/* slot - the link that points at key's entry, or the NULL ending its
 * bucket */
static struct strmap_entry **
slot(const struct strmap *m, const char *key, size_t h)
{
	struct strmap_entry	**p;

	for (p = &m->b[h & (m->nb - 1)]; *p != NULL; p = &(*p)->next)
		if ((*p)->hash == h && strcmp((*p)->key, key) == 0)
			break;
	return p;
}

/* strmap_get - the value under key, or NULL */
void *
strmap_get(const struct strmap *m, const char *key)
{
	struct strmap_entry	*e;

	if (m->nb == 0)
		return NULL;
	e = *slot(m, key, hash(key));
	return e != NULL ? e->val : NULL;
}

/* grow - twice the buckets, every entry relinked */
static void
grow(struct strmap *m)
{
	struct strmap_entry	**nb, *e, *next;
	size_t			  n = m->nb ? m->nb * 2 : 64, i, h;

	nb = xcalloc(n, sizeof(*nb));
	for (i = 0; i < m->nb; i++)
		for (e = m->b[i]; e != NULL; e = next) {
			next = e->next;
			h = e->hash & (n - 1);
			e->next = nb[h];
			nb[h] = e;
		}
	free(m->b);
	m->b = nb;
	m->nb = n;
}

/* strmap_put - key now maps to val */
void *
strmap_put(struct strmap *m, const char *key, void *val)
{
	struct strmap_entry	**p, *e;
	void			 *old;
	size_t			  h = hash(key), len;

	if (m->nb > 0 && (e = *slot(m, key, h)) != NULL) {
		old = e->val;
		e->val = val;
		return old;
	}
	if (m->n + 1 > m->nb)
		grow(m);
	p = slot(m, key, h);
	len = strlen(key) + 1;
	e = xmalloc(sizeof(*e) + len);
	memcpy(e->key, key, len);
	e->hash = h;
	e->val = val;
	e->next = NULL;
	*p = e;
	m->n++;
	return NULL;
}

/* strmap_del - key maps to nothing */
void *
strmap_del(struct strmap *m, const char *key)
{
	struct strmap_entry	**p, *e;
	void			 *v;

	if (m->nb == 0 || (e = *(p = slot(m, key, hash(key)))) == NULL)
		return NULL;
	*p = e->next;
	v = e->val;
	free(e);
	m->n--;
	return v;
}

/* strmap_each - f on every key and value, in no order */
void
strmap_each(const struct strmap *m, void (*f)(const char *, void *, void *),
    void *arg)
{
	struct strmap_entry	*e, *next;
	size_t			 i;

	for (i = 0; i < m->nb; i++)
		for (e = m->b[i]; e != NULL; e = next) {
			next = e->next;
			f(e->key, e->val, arg);
		}
}

/* strmap_clear - an empty map */
void
strmap_clear(struct strmap *m)
{
	struct strmap_entry	*e, *next;
	size_t			 i;

	for (i = 0; i < m->nb; i++)
		for (e = m->b[i]; e != NULL; e = next) {
			next = e->next;
			free(e);
		}
	free(m->b);
	memset(m, 0, sizeof(*m));
}
