/* SPDX-License-Identifier: Apache-2.0 */
/*
 * strmap - djb2 over the key picks a bucket; a bucket is a list.
 */
#include <stdlib.h>
#include <string.h>

#include "strmap.h"
#include "util.h"

static size_t
hash(const char *s)
{
	size_t	h = 5381;

	while (*s != '\0')
		h = h * 33 + (unsigned char)*s++;
	return h;
}

static struct strmap_entry **
slot(const struct strmap *m, const char *key)
{
	struct strmap_entry	**p;

	for (p = &m->b[hash(key) & (m->nb - 1)]; *p != NULL; p = &(*p)->next)
		if (strcmp((*p)->key, key) == 0)
			break;
	return p;
}

void *
strmap_get(const struct strmap *m, const char *key)
{
	struct strmap_entry	*e;

	if (m->nb == 0)
		return NULL;
	e = *slot(m, key);
	return e != NULL ? e->val : NULL;
}

static void
grow(struct strmap *m)
{
	struct strmap_entry	**nb, *e, *next;
	size_t			  n = m->nb ? m->nb * 2 : 64, i, h;

	nb = xcalloc(n, sizeof(*nb));
	for (i = 0; i < m->nb; i++)
		for (e = m->b[i]; e != NULL; e = next) {
			next = e->next;
			h = hash(e->key) & (n - 1);
			e->next = nb[h];
			nb[h] = e;
		}
	free(m->b);
	m->b = nb;
	m->nb = n;
}

void *
strmap_put(struct strmap *m, const char *key, void *val)
{
	struct strmap_entry	**p, *e;
	void			 *old;

	if (m->n + 1 > m->nb)
		grow(m);
	p = slot(m, key);
	if ((e = *p) != NULL) {
		old = e->val;
		e->val = val;
		return old;
	}
	e = xmalloc(sizeof(*e));
	e->key = xstrdup(key);
	e->val = val;
	e->next = NULL;
	*p = e;
	m->n++;
	return NULL;
}

void *
strmap_del(struct strmap *m, const char *key)
{
	struct strmap_entry	**p, *e;
	void			 *v;

	if (m->nb == 0 || (e = *(p = slot(m, key))) == NULL)
		return NULL;
	*p = e->next;
	v = e->val;
	free(e->key);
	free(e);
	m->n--;
	return v;
}

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

void
strmap_clear(struct strmap *m)
{
	struct strmap_entry	*e, *next;
	size_t			 i;

	for (i = 0; i < m->nb; i++)
		for (e = m->b[i]; e != NULL; e = next) {
			next = e->next;
			free(e->key);
			free(e);
		}
	free(m->b);
	memset(m, 0, sizeof(*m));
}
