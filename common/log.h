/* SPDX-License-Identifier: Apache-2.0 */
/*
 * log - one log line per call, logfmt or JSON, tagged with the process role
 * ("master", "metrics", ...).  Written with a single write(2) so that lines
 * from several processes sharing one file never interleave.
 */
#ifndef TENANTD_LOG_H
#define TENANTD_LOG_H

#include <stdarg.h>

enum log_level {
	LOG_LVL_ERROR = 0,
	LOG_LVL_WARN,
	LOG_LVL_INFO,
	LOG_LVL_DEBUG,
};

enum log_format {
	LOG_FMT_LOGFMT = 0,
	LOG_FMT_JSON,
};

void	 log_init(const char *role, enum log_level, enum log_format);
void	 log_set_role(const char *role);
void	 log_set_level(enum log_level);
void	 log_set_format(enum log_format);
/* Make fd the log destination (dup'ed); -1 means stderr. */
void	 log_set_fd(int fd);
int	 log_get_fd(void);
/* Open (or reopen) path in append mode; returns the new fd or -1. */
int	 log_open_file(const char *path);

int	 log_level_parse(const char *, enum log_level *);
const char *log_level_name(enum log_level);
int	 log_format_parse(const char *, enum log_format *);
const char *log_format_name(enum log_format);

void	 log_warn(const char *, ...) __attribute__((format(printf, 1, 2)));
void	 log_warnx(const char *, ...) __attribute__((format(printf, 1, 2)));
void	 log_info(const char *, ...) __attribute__((format(printf, 1, 2)));
void	 log_debug(const char *, ...) __attribute__((format(printf, 1, 2)));
void	 fatal(const char *, ...)
	    __attribute__((format(printf, 1, 2), noreturn));
void	 fatalx(const char *, ...)
	    __attribute__((format(printf, 1, 2), noreturn));

#endif
