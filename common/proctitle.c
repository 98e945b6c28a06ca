/* SPDX-License-Identifier: Apache-2.0 */
/*
 * proctitle - argv[0] and the environment strings that follow it in memory
 * form one contiguous area; the environment is copied elsewhere so that the
 * whole area can hold the new title.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>

#include "proctitle.h"
#include "util.h"

extern char	**environ;

static char	*title_start;
static size_t	 title_len;
/*
 * The environment copy.  environ points to it too, but glibc's exit-time
 * cleanup (run by valgrind) sets environ to NULL: without a reference of
 * our own the copy would be reported lost.  "used" keeps the store.
 */
static char	**env_copy __attribute__((used));

/* proctitle_init - move environ away and claim argv's memory */
void
proctitle_init(int argc, char **argv)
{
	char	*end = argv[0] + strlen(argv[0]);
	char	**env;
	int	 i, n;

	for (i = 1; i < argc && argv[i] == end + 1; i++)
		end = argv[i] + strlen(argv[i]);
	for (n = 0; environ[n] != NULL; n++)
		;
	for (i = 0; i < n && environ[i] == end + 1; i++)
		end = environ[i] + strlen(environ[i]);
	env = xcalloc((size_t)n + 1, sizeof(char *));
	for (i = 0; i < n; i++)
		env[i] = xstrdup(environ[i]);
	environ = env_copy = env;
	for (i = 1; i < argc; i++)
		argv[i] = xstrdup(argv[i]);
	title_start = argv[0];
	title_len = (size_t)(end - argv[0]);
}

/* proctitle_set - overwrite the title; it is cut to the space available */
void
proctitle_set(const char *fmt, ...)
{
	char	buf[256];
	va_list	ap;
	size_t	n;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	prctl(PR_SET_NAME, buf, 0, 0, 0);
	if (title_start == NULL)
		return;
	n = strlen(buf);
	if (n >= title_len)
		n = title_len - 1;
	memset(title_start, 0, title_len);
	memcpy(title_start, buf, n);
}
