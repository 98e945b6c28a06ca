/* SPDX-License-Identifier: Apache-2.0 */
/*
 * window - dialling windows in a record's time zone (docs/outbound.md,
 * "Which records are dialled"): the time of day in an IANA zone, whether
 * it lies in a window, and the next time a time of day comes round.  The
 * C library's zone rules do the work (localtime_r, mktime), so daylight
 * saving, southern-hemisphere zones and zones without it are right as the
 * system's tzdata has them.  Pure but for the process's TZ, which is
 * switched per call and always put back to UTC.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include "window.h"

static char	cur[128] = "";

/* use - make tz the zone of localtime_r and mktime */
static void
use(const char *tz)
{
	if (strcmp(cur, tz) == 0)
		return;
	snprintf(cur, sizeof(cur), "%s", tz);
	setenv("TZ", tz, 1);
	tzset();
}

/* window_tz_valid - tz names a zone of the system's tzdata */
int
window_tz_valid(const char *tz)
{
	char		path[256];
	struct stat	st;

	if (tz == NULL || *tz == '\0' || strlen(tz) > 100 || *tz == '/' ||
	    strstr(tz, "..") != NULL ||
	    strspn(tz, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789/_+-") != strlen(tz))
		return 0;
	if (strcmp(tz, "UTC") == 0)
		return 1;
	snprintf(path, sizeof(path), "/usr/share/zoneinfo/%s", tz);
	return stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
	    access(path, R_OK) == 0;
}

/* window_sod - seconds after local midnight in tz at t (-1: bad zone) */
int
window_sod(const char *tz, time_t t)
{
	struct tm	tm;

	if (!window_tz_valid(tz))
		return -1;
	use(tz);
	if (localtime_r(&t, &tm) == NULL)
		return -1;
	return tm.tm_hour * 3600 + tm.tm_min * 60 + tm.tm_sec;
}

/*
 * window_in - sod lies in the window [from, till): a window whose end is
 * before its start goes over midnight; from == till is the whole day.
 */
int
window_in(int sod, int from, int till)
{
	if (from == till)
		return 1;
	if (from < till)
		return sod >= from && sod < till;
	return sod >= from || sod < till;
}

/*
 * window_next_at - the first time after `after` at which the local time in
 * tz is sod: of a repeated hour, its first reading; on a day whose clocks
 * skip that time, mktime's reading of it (02:30 on a spring-forward day
 * is 03:30 of the new offset); (time_t)-1 on a bad zone.
 */
time_t
window_next_at(const char *tz, time_t after, int sod)
{
	struct tm	tm, chk;
	time_t		t, best;
	int		day, isdst;

	if (!window_tz_valid(tz) || sod < 0 || sod > 86399)
		return (time_t)-1;
	use(tz);
	for (day = 0; day < 3; day++) {
		best = (time_t)-1;
		/* Both readings of the wall time: a repeated hour has two. */
		for (isdst = -1; isdst <= 1; isdst++) {
			if (localtime_r(&after, &tm) == NULL)
				return (time_t)-1;
			tm.tm_mday += day;
			tm.tm_hour = sod / 3600;
			tm.tm_min = sod / 60 % 60;
			tm.tm_sec = sod % 60;
			tm.tm_isdst = isdst;
			if ((t = mktime(&tm)) == (time_t)-1 || t <= after)
				continue;
			if (isdst >= 0 && (localtime_r(&t, &chk) == NULL ||
			    chk.tm_hour * 3600 + chk.tm_min * 60 +
			    chk.tm_sec != sod))
				continue;
			if (best == (time_t)-1 || t < best)
				best = t;
		}
		if (best != (time_t)-1)
			return best;
	}
	return (time_t)-1;
}

/* window_reset - back to UTC (the worker's zone between calls) */
void
window_reset(void)
{
	use("UTC");
}
