/* SPDX-License-Identifier: Apache-2.0 */
/*
 * rtev - the fields of a routing event that queue.c applies, read
 * straight from the event's text (store.c's scripts write it: flat
 * fields, then "interaction", the stored document).
 *
 * Every instance applies every event of the stream, four or more per
 * routing; building a jansson tree of each, the document included, only
 * to read a dozen fields was the largest part of that (benchmark 10b).
 * So this reads the top-level fields in place and gives the document's
 * span, which the caller parses only when it needs it (a new interaction,
 * an update).  Anything it does not expect (an escape in a string, a
 * number that is not an integer, a field too long, a malformed text) makes
 * it give up, and the caller parses the event with jansson as before: it
 * never guesses.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "routing_int.h"

static const char *
skip_ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' ||
	    *p == '\r'))
		p++;
	return p;
}

/* skip_string - p at a quote: past the closing one, or NULL; *esc is set
 * when the string holds an escape */
static const char *
skip_string(const char *p, const char *end, int *esc)
{
	for (p++; p < end; p++) {
		if (*p == '\\') {
			*esc = 1;
			if (++p >= end)
				return NULL;
		} else if (*p == '"')
			return p + 1;
		else if ((unsigned char)*p < 0x20)
			return NULL;
	}
	return NULL;
}

/* skip_value - past one value, or NULL.  An object or array is only
 * balanced here (its strings skipped whole); jansson checks it when the
 * caller parses it. */
static const char *
skip_value(const char *p, const char *end)
{
	int	depth = 0, esc = 0;

	if (p >= end)
		return NULL;
	if (*p == '"')
		return skip_string(p, end, &esc);
	if (*p != '{' && *p != '[') {
		while (p < end && *p != ',' && *p != '}' && *p != ']' &&
		    *p != ' ' && *p != '\t' && *p != '\n' && *p != '\r')
			p++;
		return p;
	}
	while (p < end) {
		if (*p == '"') {
			if ((p = skip_string(p, end, &esc)) == NULL)
				return NULL;
			continue;
		}
		if (*p == '{' || *p == '[')
			depth++;
		else if ((*p == '}' || *p == ']') && --depth == 0)
			return p + 1;
		p++;
	}
	return NULL;
}

typedef int	 field_cb(void *, const char *k, size_t kl, const char *v,
		    const char *vend);

/* each - f on every top-level field of the object in [p, end); -1 when
 * it is not one, or f said so */
static int
each(const char *p, const char *end, field_cb *f, void *arg)
{
	const char	*k, *v, *q;
	int		 esc = 0;

	p = skip_ws(p, end);
	if (p >= end || *p != '{')
		return -1;
	p = skip_ws(p + 1, end);
	if (p < end && *p == '}')
		return skip_ws(p + 1, end) == end ? 0 : -1;
	for (;;) {
		if (p >= end || *p != '"')
			return -1;
		k = p + 1;
		if ((q = skip_string(p, end, &esc)) == NULL || esc)
			return -1;
		p = skip_ws(q, end);
		if (p >= end || *p != ':')
			return -1;
		v = skip_ws(p + 1, end);
		if ((p = skip_value(v, end)) == NULL || p == v)
			return -1;
		if (f(arg, k, (size_t)(q - 1 - k), v, p) == -1)
			return -1;
		p = skip_ws(p, end);
		if (p < end && *p == ',') {
			p = skip_ws(p + 1, end);
			continue;
		}
		if (p < end && *p == '}')
			return skip_ws(p + 1, end) == end ? 0 : -1;
		return -1;
	}
}

/* str - a string without escapes into buf: 0, or -1 */
static int
str(const char *v, const char *vend, char *buf, size_t len)
{
	size_t	n;
	int	esc = 0;

	if (*v != '"' || skip_string(v, vend, &esc) != vend || esc)
		return -1;
	n = (size_t)(vend - v - 2);
	if (n >= len)
		return -1;
	memcpy(buf, v + 1, n);
	buf[n] = '\0';
	return 0;
}

/* integer - an integer: 0, or -1 (a fraction, an exponent, too big) */
static int
integer(const char *v, const char *vend, long long *out)
{
	char		 buf[24], *e;
	size_t		 n = (size_t)(vend - v);
	const char	*p;

	if (n == 0 || n >= sizeof(buf))
		return -1;
	for (p = *v == '-' ? v + 1 : v; p < vend; p++)
		if (*p < '0' || *p > '9')
			return -1;
	memcpy(buf, v, n);
	buf[n] = '\0';
	errno = 0;
	*out = strtoll(buf, &e, 10);
	return errno != 0 || *e != '\0' ? -1 : 0;
}

#define KEY(s)	(kl == sizeof(s) - 1 && memcmp(k, s, kl) == 0)

static int
doc_field(void *arg, const char *k, size_t kl, const char *v, const char *vend)
{
	struct rtev	*e = arg;

	if (KEY("vq"))
		return integer(v, vend, &e->vq);
	return 0;
}

static int
ev_field(void *arg, const char *k, size_t kl, const char *v, const char *vend)
{
	struct rtev	*e = arg;

	if (KEY("type"))
		return str(v, vend, e->type, sizeof(e->type));
	if (KEY("id"))
		return str(v, vend, e->id, sizeof(e->id));
	if (KEY("state"))
		return str(v, vend, e->state, sizeof(e->state));
	if (KEY("dn"))
		return str(v, vend, e->dn, sizeof(e->dn));
	if (KEY("at"))
		return integer(v, vend, &e->at);
	if (KEY("created"))
		return integer(v, vend, &e->created);
	if (KEY("seq"))
		return integer(v, vend, &e->seq);
	if (KEY("agent"))
		return integer(v, vend, &e->agent);
	if (KEY("until"))
		return integer(v, vend, &e->until);
	if (KEY("skip"))
		return integer(v, vend, &e->skip);
	if (KEY("skipUntil"))
		return integer(v, vend, &e->skipu);
	if (KEY("interaction")) {
		if (*v != '{')
			return -1;
		e->doc = v;
		e->doclen = (size_t)(vend - v);
		e->vq = 0;
		return each(v, vend, doc_field, e);
	}
	return 0;
}

/*
 * rtev_parse - the event in text: 0, or -1 when it is not one this reads
 * (the caller then asks jansson).  Absent fields are 0 or "", as
 * jansson's getters give them; e->doc points into text.
 */
int
rtev_parse(const char *text, size_t len, struct rtev *e)
{
	memset(e, 0, sizeof(*e));
	if (each(text, text + len, ev_field, e) == -1 || e->doc == NULL ||
	    e->type[0] == '\0' || e->id[0] == '\0')
		return -1;
	return 0;
}

struct cut {
	const char	*key;
	size_t		 keylen;
	const char	*from, *to;
};

static int
cut_field(void *arg, const char *k, size_t kl, const char *v, const char *vend)
{
	struct cut	*c = arg;

	if (kl == c->keylen && memcmp(k, c->key, kl) == 0) {
		c->from = k - 1;
		c->to = vend;
	}
	return 0;
}

/*
 * rtev_doc_cut - where the document's field key is, with the comma that
 * joins it to the others: doc[*from, *to) taken out leaves the document
 * without it.  0, or -1 when it has no such field or is not read here.
 */
int
rtev_doc_cut(const char *doc, size_t len, const char *key, size_t *from,
    size_t *to)
{
	struct cut	 c = { key, strlen(key), NULL, NULL };
	const char	*end = doc + len, *p;

	if (each(doc, end, cut_field, &c) == -1 || c.from == NULL)
		return -1;
	p = skip_ws(c.to, end);
	if (*p == ',')
		c.to = skip_ws(p + 1, end);
	else {
		/* the last field: take the comma before it, if any */
		for (p = c.from; p > doc && p[-1] != ',' && p[-1] != '{'; p--)
			;
		if (p > doc && p[-1] == ',')
			c.from = p - 1;
	}
	*from = (size_t)(c.from - doc);
	*to = (size_t)(c.to - doc);
	return 0;
}
