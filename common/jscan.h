/* SPDX-License-Identifier: Apache-2.0 */
/*
 * jscan - one pass over the text of a JSON object: is it valid JSON (RFC
 * 8259, UTF-8), and where are the top-level members asked for?  No
 * allocation, so that a worker can look at an event's few fields and
 * pass its text on without building a tree.
 */
#ifndef TENANTD_JSCAN_H
#define TENANTD_JSCAN_H

#include <stddef.h>

enum jscan_type {
	JSCAN_ABSENT = 0,
	JSCAN_STRING,		/* val..val+len: the characters, no escapes */
	JSCAN_STRING_ESCAPED,	/* val..val+len: as written, with escapes */
	JSCAN_NUMBER,
	JSCAN_OTHER,		/* object, array, true, false, null */
};

struct jscan_field {
	const char	*key;		/* asked for */
	enum jscan_type	 type;		/* found */
	const char	*val;
	size_t		 len;
};

#define JSCAN_DEPTH_MAX	64

/*
 * 0 if text is one JSON object (whitespace around it allowed) whose
 * top-level members named in f[] each appear at most once; their types
 * and values are filled in.  -1 otherwise.
 */
int	jscan_object(const char *text, size_t len, struct jscan_field *f,
	    size_t nf);

#endif
