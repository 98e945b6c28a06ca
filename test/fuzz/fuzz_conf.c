/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_conf - libFuzzer target for configuration loading.  The input, made
 * a C string, is loaded with conf_load_string; a refusal must say
 * "name:line: reason".  An accepted configuration is dumped, the dump must
 * load again (the master sends exactly this text to its workers) and dump
 * to the same text.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "log.h"

int		 LLVMFuzzerTestOneInput(const uint8_t *, size_t);
const char	*__lsan_default_suppressions(void);

/*
 * libconfig 1.5 leaks scanner strings on some syntax errors (a string still
 * open at the end of the input, a string token where none may stand): its
 * bug, not ours, and never on a file that loads.
 */
const char *
__lsan_default_suppressions(void)
{
	return "leak:libconfig.so\n";
}

/* check_error - "NAME:LINE: reason"; NAME is "fuzz" or an @include'd file */
static void
check_error(const char *err)
{
	const char	*p;
	char		*end;

	for (p = strchr(err, ':'); p != NULL; p = strchr(p + 1, ':')) {
		(void)strtoul(p + 1, &end, 10);
		if (end > p + 1 && p[1] >= '0' && p[1] <= '9' &&
		    strncmp(end, ": ", 2) == 0 && end[2] != '\0')
			return;
	}
	fprintf(stderr, "malformed error: %s\n", err);
	abort();
}

/* check_dump - the dump of c loads back and dumps the same */
static void
check_dump(const struct conf *c)
{
	char		 err[CONF_ERR_MAX];
	struct conf	*c2;
	char		*d1, *d2;

	d1 = conf_dump(c);
	if ((c2 = conf_load_string(d1, "dump", err, sizeof(err))) == NULL) {
		fprintf(stderr, "the dump does not load: %s\n%s", err, d1);
		abort();
	}
	d2 = conf_dump(c2);
	if (strcmp(d1, d2) != 0) {
		fprintf(stderr, "dumps differ:\n%s\n---\n%s", d1, d2);
		abort();
	}
	free(d1);
	free(d2);
	conf_free(c2);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int	 init;
	char		 err[CONF_ERR_MAX];
	char		*text;
	struct conf	*c;

	if (!init) {
		log_init("fuzz", LOG_LVL_ERROR, LOG_FMT_LOGFMT);
		init = 1;
	}
	if ((text = malloc(size + 1)) == NULL)
		abort();
	memcpy(text, data, size);
	text[size] = '\0';
	err[0] = '\0';
	if ((c = conf_load_string(text, "fuzz", err, sizeof(err))) == NULL)
		check_error(err);
	else {
		check_dump(c);
		conf_free(c);
	}
	free(text);
	return 0;
}
