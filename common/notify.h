/* SPDX-License-Identifier: Apache-2.0 */
/*
 * notify - the systemd notify protocol (sd_notify(3)) without libsystemd:
 * one datagram to $NOTIFY_SOCKET per message.  Every call is a no-op when
 * NOTIFY_SOCKET is not set.
 */
#ifndef TENANTD_NOTIFY_H
#define TENANTD_NOTIFY_H

#include <stdint.h>

/* Read NOTIFY_SOCKET and WATCHDOG_USEC; call once in the master. */
void		 notify_init(void);
/* Send "KEY=value\n..." text as given; 0 on success or when disabled. */
int		 notify_send(const char *fmt, ...)
		    __attribute__((format(printf, 1, 2)));
/* The watchdog interval systemd asked for, in microseconds, or 0. */
uint64_t	 notify_watchdog_usec(void);

#endif
