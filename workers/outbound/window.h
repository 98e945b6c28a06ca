/* SPDX-License-Identifier: Apache-2.0 */
/*
 * window - dialling windows in a time zone (window.c).
 */
#ifndef TENANTD_OB_WINDOW_H
#define TENANTD_OB_WINDOW_H

#include <time.h>

int	 window_tz_valid(const char *tz);
int	 window_sod(const char *tz, time_t t);
int	 window_in(int sod, int from, int till);
time_t	 window_next_at(const char *tz, time_t after, int sod);
void	 window_reset(void);

#endif
