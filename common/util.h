/* SPDX-License-Identifier: Apache-2.0 */
/*
 * util - allocation helpers that abort on failure, clocks, small string
 * helpers shared by every process.
 */
#ifndef TENANTD_UTIL_H
#define TENANTD_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/time.h>

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

void	*xmalloc(size_t);
void	*xcalloc(size_t, size_t);
void	*xrealloc(void *, size_t);
char	*xstrdup(const char *);
char	*xasprintf(const char *, ...) __attribute__((format(printf, 1, 2)));

/* Monotonic and wall clocks in microseconds. */
uint64_t	 now_mono_us(void);
uint64_t	 now_wall_us(void);

/* A duration as libevent wants it: from seconds, or from microseconds. */
struct timeval	 util_tv(double seconds);
struct timeval	 util_tv_us(uint64_t us);

/* Read a whole small file (secrets); trailing newlines are stripped. */
/* A random (version 4) UUID: 36 characters and a NUL. */
void	 util_uuid(char out[37]);
char	*util_read_file(const char *path, size_t max, int *err);

#endif
