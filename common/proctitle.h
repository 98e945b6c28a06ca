/* SPDX-License-Identifier: Apache-2.0 */
/*
 * proctitle - set the process title that ps(1) shows ("tenantd: metrics"),
 * by reusing the memory of argv and environ, as nginx and PostgreSQL do.
 */
#ifndef TENANTD_PROCTITLE_H
#define TENANTD_PROCTITLE_H

/* Call once from main before anything reads environ or argv again. */
void	proctitle_init(int argc, char **argv);
void	proctitle_set(const char *fmt, ...)
	    __attribute__((format(printf, 1, 2)));

#endif
