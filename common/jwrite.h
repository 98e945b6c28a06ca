/* SPDX-License-Identifier: Apache-2.0 */
/*
 * jwrite - JSON text written straight into a buffer, for the lines a
 * worker sends many times a second: no tree, no format string.  The
 * buffer starts as the caller's and moves to the heap if it must grow.
 * Strings are escaped as jansson writes them (JSON_COMPACT).
 */
#ifndef TENANTD_JWRITE_H
#define TENANTD_JWRITE_H

#include <stddef.h>

struct jw {
	char	*p;		/* the text, NUL-terminated */
	size_t	 n;
	size_t	 cap;
	char	*own;		/* the caller's buffer */
	size_t	 owncap;
};

/* Start writing into buf (cap bytes, at least 1). */
void	jw_init(struct jw *, char *buf, size_t cap);
/* Free the heap copy, if the text outgrew the caller's buffer; the
 * writer is empty again, on the caller's buffer. */
void	jw_free(struct jw *);
void	jw_raw(struct jw *, const char *, size_t);
/* A literal: jw_lit(w, "{\"a\":") */
#define jw_lit(w, s)	jw_raw((w), (s), sizeof(s) - 1)
/* A string, quoted and escaped. */
void	jw_str(struct jw *, const char *);
void	jw_int(struct jw *, long long);

#endif
