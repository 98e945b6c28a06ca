/* SPDX-License-Identifier: Apache-2.0 */
/*
 * util - allocation helpers that abort on failure, clocks, small file reads.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/random.h>

#include "log.h"
#include "util.h"

/* xmalloc - malloc that never returns NULL */
void *
xmalloc(size_t n)
{
	void	*p = malloc(n ? n : 1);

	if (p == NULL)
		fatal("malloc %zu", n);
	return p;
}

/* xcalloc - calloc that never returns NULL */
void *
xcalloc(size_t n, size_t size)
{
	void	*p = calloc(n ? n : 1, size ? size : 1);

	if (p == NULL)
		fatal("calloc %zu*%zu", n, size);
	return p;
}

/* xrealloc - realloc that never returns NULL */
void *
xrealloc(void *p, size_t n)
{
	void	*q = realloc(p, n ? n : 1);

	if (q == NULL)
		fatal("realloc %zu", n);
	return q;
}

/* xstrdup - strdup that never returns NULL */
char *
xstrdup(const char *s)
{
	char	*p = strdup(s);

	if (p == NULL)
		fatal("strdup");
	return p;
}

/* xasprintf - allocate a formatted string */
char *
xasprintf(const char *fmt, ...)
{
	va_list	 ap;
	char	*s;
	int	 r;

	va_start(ap, fmt);
	r = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (r < 0)
		fatal("vasprintf");
	return s;
}

/* now_mono_us - monotonic clock, for timeouts and uptimes */
uint64_t
now_mono_us(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* now_wall_us - wall clock, for timestamps people read */
uint64_t
now_wall_us(void)
{
	struct timespec	ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/*
 * util_read_file - read a small file such as a secret.  Returns a NUL
 * terminated copy without trailing newlines, or NULL with *err set to errno
 * (EFBIG when the file is larger than max).
 */
char *
util_read_file(const char *path, size_t max, int *err)
{
	char	*buf;
	size_t	 len = 0;
	ssize_t	 n;
	int	 fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		*err = errno;
		return NULL;
	}
	buf = xmalloc(max + 1);
	while ((n = read(fd, buf + len, max + 1 - len)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		len += (size_t)n;
		if (len > max)
			break;
	}
	if (n < 0 || len > max) {
		*err = n < 0 ? errno : EFBIG;
		close(fd);
		free(buf);
		return NULL;
	}
	close(fd);
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		len--;
	buf[len] = '\0';
	return buf;
}

/* util_tv - seconds (not negative) as a timeval */
struct timeval
util_tv(double seconds)
{
	return util_tv_us(seconds > 0 ? (uint64_t)(seconds * 1e6 + 0.5) : 0);
}

/* util_tv_us - microseconds as a timeval */
struct timeval
util_tv_us(uint64_t us)
{
	struct timeval	tv;

	tv.tv_sec = (time_t)(us / 1000000);
	tv.tv_usec = (suseconds_t)(us % 1000000);
	return tv;
}

/* util_uuid - a random (version 4) UUID, 36 characters and a NUL */
void
util_uuid(char out[37])
{
	unsigned char	b[16];

	if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b))
		fatal("getrandom");
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
	    "%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2], b[3], b[4], b[5],
	    b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
}
