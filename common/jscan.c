/* SPDX-License-Identifier: Apache-2.0 */
/*
 * jscan - a recursive-descent checker over a cursor; the top level notes
 * the members asked for.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jscan.h"

struct cur {
	const unsigned char	*p;
	const unsigned char	*end;
};

static int	value(struct cur *, int depth, enum jscan_type *,
		    const char **, size_t *);

static void
ws(struct cur *c)
{
	while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' ||
	    *c->p == '\n' || *c->p == '\r'))
		c->p++;
}

static int
hex4(struct cur *c, unsigned *u)
{
	int	i;

	*u = 0;
	for (i = 0; i < 4; i++, c->p++) {
		if (c->p >= c->end)
			return -1;
		*u <<= 4;
		if (*c->p >= '0' && *c->p <= '9')
			*u |= *c->p - '0';
		else if ((*c->p | 0x20) >= 'a' && (*c->p | 0x20) <= 'f')
			*u |= (*c->p | 0x20) - 'a' + 10;
		else
			return -1;
	}
	return 0;
}

/* utf8 - one multi-byte character, shortest form, no surrogates */
static int
utf8(struct cur *c)
{
	unsigned	b = *c->p, cp, n, i;

	if (b >= 0xc2 && b <= 0xdf)
		n = 1, cp = b & 0x1f;
	else if (b >= 0xe0 && b <= 0xef)
		n = 2, cp = b & 0x0f;
	else if (b >= 0xf0 && b <= 0xf4)
		n = 3, cp = b & 0x07;
	else
		return -1;
	if (c->end - c->p <= (long)n)
		return -1;
	for (i = 1; i <= n; i++) {
		if ((c->p[i] & 0xc0) != 0x80)
			return -1;
		cp = cp << 6 | (c->p[i] & 0x3f);
	}
	if ((n == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (n == 3 && (cp < 0x10000 || cp > 0x10ffff)))
		return -1;
	c->p += n + 1;
	return 0;
}

/* string - c->p at the opening quote */
static int
string(struct cur *c, int *escaped)
{
	unsigned	u, lo;

	*escaped = 0;
	c->p++;
	while (c->p < c->end) {
		if (*c->p == '"') {
			c->p++;
			return 0;
		}
		if (*c->p < 0x20)
			return -1;
		if (*c->p >= 0x80) {
			if (utf8(c) == -1)
				return -1;
			continue;
		}
		if (*c->p != '\\') {
			c->p++;
			continue;
		}
		*escaped = 1;
		if (++c->p >= c->end)
			return -1;
		if (strchr("\"\\/bfnrt", *c->p) != NULL && *c->p != '\0') {
			c->p++;
			continue;
		}
		if (*c->p++ != 'u' || hex4(c, &u) == -1)
			return -1;
		if (u == 0 || (u >= 0xdc00 && u <= 0xdfff))
			return -1;	/* NUL, as jansson: refused */
		if (u >= 0xd800 && u <= 0xdbff) {	/* a pair */
			if (c->end - c->p < 6 || c->p[0] != '\\' ||
			    c->p[1] != 'u')
				return -1;
			c->p += 2;
			if (hex4(c, &lo) == -1 || lo < 0xdc00 || lo > 0xdfff)
				return -1;
		}
	}
	return -1;
}

static int
digits(struct cur *c)
{
	const unsigned char	*s = c->p;

	while (c->p < c->end && *c->p >= '0' && *c->p <= '9')
		c->p++;
	return c->p > s ? 0 : -1;
}

/*
 * number - JSON's grammar, and the ranges jansson takes: an integer fits
 * in 64 bits, a real does not overflow a double.
 */
static int
number(struct cur *c)
{
	const unsigned char	*s = c->p;
	char			 buf[1024];
	int			 real = 0, neg = 0;
	uint64_t		 v = 0;
	double			 d;
	size_t			 n;

	if (*c->p == '-') {
		neg = 1;
		c->p++;
	}
	if (c->p < c->end && *c->p == '0')
		c->p++;
	else if (digits(c) == -1)
		return -1;
	if (c->p < c->end && *c->p == '.') {
		c->p++;
		real = 1;
		if (digits(c) == -1)
			return -1;
	}
	if (c->p < c->end && (*c->p == 'e' || *c->p == 'E')) {
		c->p++;
		real = 1;
		if (c->p < c->end && (*c->p == '+' || *c->p == '-'))
			c->p++;
		if (digits(c) == -1)
			return -1;
	}
	if (!real) {
		for (s += neg; s < c->p; s++) {
			if (v > (UINT64_MAX - 9) / 10)
				return -1;
			v = v * 10 + (unsigned)(*s - '0');
		}
		return v > (uint64_t)INT64_MAX + (uint64_t)neg ? -1 : 0;
	}
	if ((n = (size_t)(c->p - s)) >= sizeof(buf))
		return -1;
	memcpy(buf, s, n);
	buf[n] = '\0';
	d = strtod(buf, NULL);
	return isinf(d) ? -1 : 0;
}

static int
literal(struct cur *c, const char *word)
{
	size_t	n = strlen(word);

	if ((size_t)(c->end - c->p) < n || memcmp(c->p, word, n) != 0)
		return -1;
	c->p += n;
	return 0;
}

/* members - an object or an array after its opening bracket */
static int
members(struct cur *c, int depth, int object, struct jscan_field *f,
    size_t nf)
{
	const unsigned char	*k;
	enum jscan_type		 t;
	const char		*v;
	size_t			 klen, vlen, i;
	int			 esc, first = 1;

	if (depth > JSCAN_DEPTH_MAX)
		return -1;
	for (;;) {
		ws(c);
		if (c->p >= c->end)
			return -1;
		if (*c->p == (object ? '}' : ']')) {
			c->p++;
			return 0;
		}
		if (!first) {
			if (*c->p++ != ',')
				return -1;
			ws(c);
			if (c->p >= c->end)
				return -1;
		}
		first = 0;
		k = NULL;
		klen = 0;
		esc = 0;
		if (object) {
			if (*c->p != '"')
				return -1;
			k = c->p + 1;
			if (string(c, &esc) == -1)
				return -1;
			klen = (size_t)(c->p - k - 1);
			ws(c);
			if (c->p >= c->end || *c->p++ != ':')
				return -1;
		}
		if (value(c, depth + 1, &t, &v, &vlen) == -1)
			return -1;
		if (f == NULL || esc)
			continue;
		for (i = 0; i < nf; i++)
			if (strlen(f[i].key) == klen &&
			    memcmp(f[i].key, k, klen) == 0) {
				if (f[i].type != JSCAN_ABSENT)
					return -1;	/* twice */
				f[i].type = t;
				f[i].val = v;
				f[i].len = vlen;
			}
	}
}

static int
value(struct cur *c, int depth, enum jscan_type *t, const char **v,
    size_t *len)
{
	const unsigned char	*s;
	int			 esc;

	ws(c);
	if (c->p >= c->end)
		return -1;
	s = c->p;
	*t = JSCAN_OTHER;
	switch (*c->p) {
	case '"':
		if (string(c, &esc) == -1)
			return -1;
		*t = esc ? JSCAN_STRING_ESCAPED : JSCAN_STRING;
		*v = (const char *)s + 1;
		*len = (size_t)(c->p - s - 2);
		return 0;
	case '{':
	case '[':
		c->p++;
		if (members(c, depth, *s == '{', NULL, 0) == -1)
			return -1;
		break;
	case 't':
		if (literal(c, "true") == -1)
			return -1;
		break;
	case 'f':
		if (literal(c, "false") == -1)
			return -1;
		break;
	case 'n':
		if (literal(c, "null") == -1)
			return -1;
		break;
	default:
		if (*c->p != '-' && (*c->p < '0' || *c->p > '9'))
			return -1;
		if (number(c) == -1)
			return -1;
		*t = JSCAN_NUMBER;
	}
	*v = (const char *)s;
	*len = (size_t)(c->p - s);
	return 0;
}

int
jscan_object(const char *text, size_t len, struct jscan_field *f, size_t nf)
{
	struct cur	c = { (const unsigned char *)text,
			    (const unsigned char *)text + len };
	size_t		i;

	for (i = 0; i < nf; i++) {
		f[i].type = JSCAN_ABSENT;
		f[i].val = NULL;
		f[i].len = 0;
	}
	ws(&c);
	if (c.p >= c.end || *c.p++ != '{')
		return -1;
	if (members(&c, 1, 1, f, nf) == -1)
		return -1;
	ws(&c);
	return c.p == c.end ? 0 : -1;
}
