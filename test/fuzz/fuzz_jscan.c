/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_jscan - libFuzzer over common/jscan.c, the checker the events and
 * stats workers pass voice events through without parsing them: it must
 * take exactly the JSON objects jansson takes (nested no deeper than its
 * limit), and the top-level members it reports must be the ones jansson
 * finds, with the same string values.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "jscan.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
check(int ok)
{
	if (!ok)
		__builtin_trap();
}

/* depth - how deep brackets nest, outside strings */
static int
depth(const char *s, size_t len)
{
	int	d = 0, max = 0, in = 0;
	size_t	i;

	for (i = 0; i < len; i++) {
		if (in) {
			if (s[i] == '\\')
				i++;
			else if (s[i] == '"')
				in = 0;
		} else if (s[i] == '"')
			in = 1;
		else if (s[i] == '{' || s[i] == '[') {
			if (++d > max)
				max = d;
		} else if (s[i] == '}' || s[i] == ']')
			d--;
	}
	return max;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char		*s = (const char *)data;
	struct jscan_field	 f[] = { { "event", 0, NULL, 0 },
				    { "id", 0, NULL, 0 } };
	json_t			*j, *v;
	size_t			 i;
	int			 ok;

	ok = jscan_object(s, size, f, 2) == 0;
	j = json_loadb(s, size, JSON_DECODE_ANY, NULL);
	if (memchr(s, '\0', size) != NULL)	/* jansson stops there */
		check(!ok);
	else if (depth(s, size) <= JSCAN_DEPTH_MAX) {
		/* jscan refuses a member asked for twice; jansson keeps the
		 * last: the one case where they may differ. */
		if (ok)
			check(json_is_object(j));
		else if (json_is_object(j)) {
			check(memmem(s, size, "\"event\"", 7) != NULL ||
			    memmem(s, size, "\"id\"", 4) != NULL);
		}
	} else
		check(!ok);
	for (i = 0; ok && i < 2; i++) {
		v = json_object_get(j, f[i].key);
		if (f[i].type == JSCAN_ABSENT)
			continue;
		check(v != NULL);
		if (f[i].type == JSCAN_STRING)
			check(json_is_string(v) && json_string_length(v) ==
			    f[i].len && memcmp(json_string_value(v), f[i].val,
			    f[i].len) == 0);
		if (f[i].type == JSCAN_NUMBER)
			check(json_is_number(v));
	}
	json_decref(j);
	return 0;
}
