/* SPDX-License-Identifier: Apache-2.0 */
/*
 * testlib - the loop, ports, log capture, server processes and state
 * watch that several unit tests share (testlib.h).
 */
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <fcntl.h>
#include <grp.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "log.h"
#include "testlib.h"
#include "util.h"

struct event_base	*tl_base;
unsigned		 tl_ticks;

static struct event	*tick;
static int		 logfd = -1;
static int		(*server_start)(void);
static void		(*server_stop)(void);

/* tl_server - the server that the tests of a group share */
void
tl_server(int (*start)(void), void (*stop)(void))
{
	server_start = start;
	server_stop = stop;
}

/* tl_setup - log, start the server, make the loop */
int
tl_setup(void **state)
{
	log_init("test", LOG_LVL_INFO, LOG_FMT_LOGFMT);
	if (server_start != NULL && server_start() == -1)
		return -1;
	tl_loop_new();
	return 0;
}

/* tl_teardown - stop the server, free the loop */
int
tl_teardown(void **state)
{
	if (server_stop != NULL)
		server_stop();
	tl_loop_free();
	return 0;
}

/* tl_on_tick - a timer that only proves the loop keeps running */
static void
tl_on_tick(evutil_socket_t fd, short what, void *arg)
{
	tl_ticks++;
}

/* tl_loop_new - the loop, ticking every 10 ms */
void
tl_loop_new(void)
{
	tl_base = event_base_new();
	tick = event_new(tl_base, -1, EV_PERSIST, tl_on_tick, NULL);
	event_add(tick, &(struct timeval){ 0, 10000 });
}

/* tl_loop_free - the loop and its ticker */
void
tl_loop_free(void)
{
	if (tick != NULL)
		event_free(tick);
	if (tl_base != NULL)
		event_base_free(tl_base);
	tick = NULL;
	tl_base = NULL;
}

/* tl_loop_once - one turn of the loop, waiting for an event */
void
tl_loop_once(void)
{
	event_base_loop(tl_base, EVLOOP_ONCE);
}

/* tl_spin - run the loop for ms milliseconds */
void
tl_spin(unsigned ms)
{
	uint64_t	dl = now_mono_us() + ms * 1000ULL;

	while (now_mono_us() < dl)
		tl_loop_once();
}

/* tl_bind - a loopback TCP socket bound to a port of the kernel's choice */
static int
tl_bind(int *port)
{
	struct sockaddr_in	sin;
	socklen_t		len = sizeof(sin);
	int			fd;

	*port = -1;
	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		return -1;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sin, &len) == 0)
		*port = ntohs(sin.sin_port);
	return fd;
}

/* tl_free_port - a loopback port nobody listens on right now */
int
tl_free_port(void)
{
	int	fd, port;

	if ((fd = tl_bind(&port)) != -1)
		close(fd);
	return port;
}

/* tl_listen - a listening loopback socket that nobody accepts from */
int
tl_listen(int *port)
{
	int	fd = tl_bind(port);

	assert_true(fd != -1 && *port != -1);
	assert_int_equal(listen(fd, 16), 0);
	return fd;
}

/* tl_log_capture - send log lines to a memory file from now on */
void
tl_log_capture(void)
{
	logfd = memfd_create("log", 0);
	assert_true(logfd != -1);
	log_set_fd(logfd);
}

/* tl_log_count - lines of the captured log about client name, holding what */
int
tl_log_count(const char *name, const char *what)
{
	struct stat	 st;
	char		*buf, *line, *save = NULL, *a;
	int		 n = 0;

	a = xasprintf("msg=\"%s: ", name);
	assert_int_equal(fstat(logfd, &st), 0);
	buf = xcalloc(1, (size_t)st.st_size + 1);
	assert_int_equal(pread(logfd, buf, (size_t)st.st_size, 0),
	    st.st_size);
	for (line = strtok_r(buf, "\n", &save); line != NULL;
	    line = strtok_r(NULL, "\n", &save))
		if (strstr(line, a) != NULL && strstr(line, what) != NULL)
			n++;
	free(buf);
	free(a);
	return n;
}

/* tl_log_release - log to stderr again */
void
tl_log_release(void)
{
	log_set_fd(-1);
	if (logfd != -1)
		close(logfd);
	logfd = -1;
}

/* tl_spawn - run a server in a child that dies with the test */
pid_t
tl_spawn(char *const argv[], const char *out, uid_t uid, gid_t gid)
{
	pid_t	parent = getpid(), pid;
	int	fd;

	if ((pid = fork()) != 0)
		return pid;
	if (uid != (uid_t)-1 && (setgroups(0, NULL) == -1 ||
	    setgid(gid) == -1 || setuid(uid) == -1))
		_exit(126);
	/* after setuid, which clears it */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(1);
	if ((fd = open(out, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
	    0600)) != -1) {
		dup2(fd, 1);
		dup2(fd, 2);
	}
	execvp(argv[0], argv);
	_exit(127);
}

/* tl_wait_ready - poll a starting server until it takes requests */
int
tl_wait_ready(pid_t *pid, unsigned ms, int (*ready)(void *), void *arg)
{
	uint64_t	dl = now_mono_us() + ms * 1000ULL;

	while (now_mono_us() < dl) {
		if (waitpid(*pid, NULL, WNOHANG) == *pid) {
			*pid = -1;
			return -1;
		}
		if (ready(arg))
			return 0;
		usleep(20000);
	}
	return -1;
}

/* tl_kill - stop a server with sig and reap it */
void
tl_kill(pid_t *pid, int sig)
{
	if (*pid > 0) {
		kill(*pid, sig);
		waitpid(*pid, NULL, 0);
	}
	*pid = -1;
}

/* tl_watch_init - a fresh watch on a client in state, starting now */
void
tl_watch_init(struct tl_watch *w, int state)
{
	memset(w, 0, sizeof(*w));
	w->state = state;
	w->start = now_mono_us();
}

/* tl_watch_note - count a state change, and when attempts start */
int
tl_watch_note(struct tl_watch *w, int state, enum tl_change what)
{
	w->state = state;
	if (what == TL_UP)
		w->ups++;
	else if (what == TL_DOWN && w->downs++ == 0)
		w->first_down = now_mono_us();
	else if (what == TL_ATTEMPT && w->attempts < 64)
		w->at[w->attempts++] = now_mono_us();
	if (what != TL_DOWN || !w->free_on_down || w->freed)
		return 0;
	w->freed = 1;
	return 1;
}

/* tl_assert_retrying - never up, and retried with a growing backoff */
void
tl_assert_retrying(const struct tl_watch *w, unsigned ticks0)
{
	assert_int_equal(w->ups, 0);
	assert_true(w->attempts >= 4);
	assert_true(tl_ticks - ticks0 >= 20);
	/* each delay at least 1.6 times the one before, until the cap */
	assert_true(w->at[2] - w->at[1] > w->at[1] - w->at[0]);
	assert_true(w->at[w->attempts - 1] - w->at[w->attempts - 2] >=
	    100000);
}

/* tl_assert_timed_out - the first attempt ended by the 200 ms timeout */
void
tl_assert_timed_out(const struct tl_watch *w)
{
	assert_int_equal(w->ups, 0);
	assert_int_equal(w->downs, 1);
	assert_true(w->first_down - w->start >= 190000);
	assert_true(w->first_down - w->start < 1500000);
}
