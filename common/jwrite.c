/* SPDX-License-Identifier: Apache-2.0 */
/*
 * jwrite - appends copy bytes; jw_str escapes what JSON requires (the
 * quote, the backslash, control characters) and passes UTF-8 through.
 */
#include <stdlib.h>
#include <string.h>

#include "jwrite.h"
#include "util.h"

/* jw_init - an empty text in buf */
void
jw_init(struct jw *w, char *buf, size_t cap)
{
	w->p = w->own = buf;
	w->cap = w->owncap = cap;
	w->n = 0;
	w->p[0] = '\0';
}

/* jw_free - the heap buffer, if there is one */
void
jw_free(struct jw *w)
{
	if (w->p != w->own)
		free(w->p);
	w->p = w->own;
	w->cap = w->owncap;
	w->n = 0;
	w->p[0] = '\0';
}

/* room - make space for n more bytes and the NUL */
static void
room(struct jw *w, size_t n)
{
	char	*np;
	size_t	 cap;

	if (w->n + n + 1 <= w->cap)
		return;
	cap = (w->n + n + 1) * 2;
	if (w->p == w->own) {
		np = xmalloc(cap);
		memcpy(np, w->p, w->n);
	} else
		np = xrealloc(w->p, cap);
	w->p = np;
	w->cap = cap;
}

/* jw_raw - bytes as they are */
void
jw_raw(struct jw *w, const char *s, size_t n)
{
	room(w, n);
	memcpy(w->p + w->n, s, n);
	w->n += n;
	w->p[w->n] = '\0';
}

/* jw_str - a JSON string */
void
jw_str(struct jw *w, const char *s)
{
	static const char	 hex[] = "0123456789ABCDEF";
	const char		*run;
	char			 esc[7];
	unsigned char		 c;

	jw_raw(w, "\"", 1);
	for (run = s; (c = (unsigned char)*s) != '\0'; s++) {
		if (c >= 0x20 && c != '"' && c != '\\')
			continue;
		jw_raw(w, run, (size_t)(s - run));
		run = s + 1;
		esc[0] = '\\';
		switch (c) {
		case '"':	esc[1] = '"'; break;
		case '\\':	esc[1] = '\\'; break;
		case '\b':	esc[1] = 'b'; break;
		case '\f':	esc[1] = 'f'; break;
		case '\n':	esc[1] = 'n'; break;
		case '\r':	esc[1] = 'r'; break;
		case '\t':	esc[1] = 't'; break;
		default:
			memcpy(esc + 1, "u00", 3);
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			jw_raw(w, esc, 6);
			continue;
		}
		jw_raw(w, esc, 2);
	}
	jw_raw(w, run, (size_t)(s - run));
	jw_raw(w, "\"", 1);
}

/* jw_int - a decimal integer */
void
jw_int(struct jw *w, long long v)
{
	char			 buf[24], *p = buf + sizeof(buf);
	unsigned long long	 u = v < 0 ? 0ULL - (unsigned long long)v :
				    (unsigned long long)v;

	do
		*--p = (char)('0' + u % 10);
	while ((u /= 10) != 0);
	if (v < 0)
		*--p = '-';
	jw_raw(w, p, (size_t)(buf + sizeof(buf) - p));
}
