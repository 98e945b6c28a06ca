/* SPDX-License-Identifier: Apache-2.0 */
/*
 * log - logfmt or JSON lines on stderr or a file.  Every line carries a UTC
 * timestamp, the level, the process role and pid.  log_warn and fatal append
 * the errno text; fatal and fatalx exit with status 1.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define LOG_LINE_MAX	4096

static char		 log_role[32] = "tenantd";
static enum log_level	 log_level = LOG_LVL_INFO;
static enum log_format	 log_format = LOG_FMT_LOGFMT;
static int		 log_fd = -1;	/* -1: stderr */

static const char *const level_names[] = { "error", "warn", "info", "debug" };
static const char *const format_names[] = { "logfmt", "json" };

/* log_init - set role, level and format; the destination stays stderr */
void
log_init(const char *role, enum log_level level, enum log_format format)
{
	log_set_role(role);
	log_level = level;
	log_format = format;
}

void
log_set_role(const char *role)
{
	snprintf(log_role, sizeof(log_role), "%s", role);
}

void
log_set_level(enum log_level level)
{
	log_level = level;
}

void
log_set_format(enum log_format format)
{
	log_format = format;
}

/* log_set_fd - log to a copy of fd from now on; -1 returns to stderr */
void
log_set_fd(int fd)
{
	int	nfd = -1;

	if (fd != -1 && (nfd = fcntl(fd, F_DUPFD_CLOEXEC, 3)) == -1)
		return;
	if (log_fd != -1)
		close(log_fd);
	log_fd = nfd;
}

int
log_get_fd(void)
{
	return log_fd == -1 ? STDERR_FILENO : log_fd;
}

/* log_open_file - open a log file for appending, for log_set_fd */
int
log_open_file(const char *path)
{
	return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
}

int
log_level_parse(const char *s, enum log_level *out)
{
	size_t	i;

	for (i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
		if (strcmp(s, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	return -1;
}

const char *
log_level_name(enum log_level l)
{
	return level_names[l];
}

int
log_format_parse(const char *s, enum log_format *out)
{
	if (strcmp(s, "logfmt") == 0)
		*out = LOG_FMT_LOGFMT;
	else if (strcmp(s, "json") == 0)
		*out = LOG_FMT_JSON;
	else
		return -1;
	return 0;
}

const char *
log_format_name(enum log_format f)
{
	return format_names[f];
}

/* escape - copy s into out quoting '"', '\\' and control characters */
static size_t
escape(char *out, size_t cap, const char *s)
{
	size_t	n = 0;

	for (; *s != '\0' && n + 7 < cap; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\') {
			out[n++] = '\\';
			out[n++] = (char)c;
		} else if (c == '\n') {
			out[n++] = '\\';
			out[n++] = 'n';
		} else if (c < 0x20) {
			n += (size_t)snprintf(out + n, cap - n, "\\u%04x", c);
		} else
			out[n++] = (char)c;
	}
	return n;
}

/* log_msg - format and write one line */
static void
log_msg(enum log_level level, const char *fmt, va_list ap)
{
	char		 msg[LOG_LINE_MAX], line[LOG_LINE_MAX * 2], ts[40];
	struct timeval	 tv;
	struct tm	 tm;
	size_t		 n;
	int		 saved = errno;

	if (level > log_level)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	n = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(ts + n, sizeof(ts) - n, ".%03ldZ", (long)tv.tv_usec / 1000);
	if (log_format == LOG_FMT_JSON)
		n = (size_t)snprintf(line, sizeof(line),
		    "{\"ts\":\"%s\",\"level\":\"%s\",\"role\":\"%s\","
		    "\"pid\":%ld,\"msg\":\"", ts, level_names[level], log_role,
		    (long)getpid());
	else
		n = (size_t)snprintf(line, sizeof(line),
		    "ts=%s level=%s role=%s pid=%ld msg=\"", ts,
		    level_names[level], log_role, (long)getpid());
	if (n > sizeof(line) / 2)	/* cannot be, with a role of 32 bytes */
		n = sizeof(line) / 2;
	n += escape(line + n, sizeof(line) - n - 3, msg);
	if (log_format == LOG_FMT_JSON)
		line[n++] = '"', line[n++] = '}';
	else
		line[n++] = '"';
	line[n++] = '\n';
	while (write(log_get_fd(), line, n) < 0 && errno == EINTR)
		;	/* any other failure: nowhere left to say it */
	errno = saved;
}

/* log_line - log_msg with variadic arguments */
static void
log_line(enum log_level level, const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_msg(level, fmt, ap);
	va_end(ap);
}

/* log_errno - log a message followed by the text of err, when set */
static void
log_errno(enum log_level level, int err, const char *fmt, va_list ap)
{
	char	buf[LOG_LINE_MAX];

	if (level > log_level)
		return;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	if (err != 0)
		log_line(level, "%s: %s", buf, strerror(err));
	else
		log_line(level, "%s", buf);
}

void
log_warn(const char *fmt, ...)
{
	va_list	ap;
	int	err = errno;

	va_start(ap, fmt);
	log_errno(LOG_LVL_WARN, err, fmt, ap);
	va_end(ap);
	errno = err;
}

void
log_warnx(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_msg(LOG_LVL_WARN, fmt, ap);
	va_end(ap);
}

void
log_info(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_msg(LOG_LVL_INFO, fmt, ap);
	va_end(ap);
}

void
log_debug(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_msg(LOG_LVL_DEBUG, fmt, ap);
	va_end(ap);
}

/* fatal - log with the errno text and exit; for broken invariants only */
void
fatal(const char *fmt, ...)
{
	va_list	ap;
	int	err = errno;

	va_start(ap, fmt);
	log_errno(LOG_LVL_ERROR, err, fmt, ap);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list	ap;

	va_start(ap, fmt);
	log_msg(LOG_LVL_ERROR, fmt, ap);
	va_end(ap);
	exit(1);
}
