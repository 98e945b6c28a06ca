/* SPDX-License-Identifier: Apache-2.0 */
/*
 * notify - send READY=1, RELOADING=1, STOPPING=1, WATCHDOG=1 and STATUS=
 * to the service manager.  The socket path may be abstract ("@name").
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "notify.h"

static struct sockaddr_un	notify_addr;
static socklen_t		notify_len;
static uint64_t			watchdog_usec;

/* notify_init - remember where to send, and whether a watchdog is wanted */
void
notify_init(void)
{
	const char	*path = getenv("NOTIFY_SOCKET"), *wd, *wpid;
	size_t		 n;

	notify_len = 0;
	watchdog_usec = 0;
	if (path != NULL && (path[0] == '/' || path[0] == '@') &&
	    (n = strlen(path)) < sizeof(notify_addr.sun_path)) {
		memset(&notify_addr, 0, sizeof(notify_addr));
		notify_addr.sun_family = AF_UNIX;
		memcpy(notify_addr.sun_path, path, n);
		if (path[0] == '@')
			notify_addr.sun_path[0] = '\0';
		notify_len = (socklen_t)(offsetof(struct sockaddr_un,
		    sun_path) + n);
	}
	wd = getenv("WATCHDOG_USEC");
	wpid = getenv("WATCHDOG_PID");
	if (wd != NULL && (wpid == NULL || atol(wpid) == (long)getpid()))
		watchdog_usec = strtoull(wd, NULL, 10);
}

uint64_t
notify_watchdog_usec(void)
{
	return notify_len != 0 ? watchdog_usec : 0;
}

/* notify_send - one datagram; failures are logged at debug level only */
int
notify_send(const char *fmt, ...)
{
	char	buf[1024];
	va_list	ap;
	int	fd, n;

	if (notify_len == 0)
		return 0;
	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(buf))
		return -1;
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) == -1)
		return -1;
	n = (int)sendto(fd, buf, (size_t)n, MSG_NOSIGNAL,
	    (struct sockaddr *)&notify_addr, notify_len);
	close(fd);
	if (n < 0)
		log_debug("notify: sendto: %m");
	return n < 0 ? -1 : 0;
}
