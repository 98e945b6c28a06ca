/* SPDX-License-Identifier: Apache-2.0 */
/*
 * testlib - helpers shared by the unit tests that run a libevent loop
 * against real servers (test_pgc, test_rds, test_link): the loop and a
 * ticker that proves it keeps running, free loopback ports, a captured
 * log, server processes, and a watch on a client's state changes.  Every
 * name starts with tl_.  Failures are cmocka assertions.
 */
#ifndef TENANTD_TESTLIB_H
#define TENANTD_TESTLIB_H

#include <sys/types.h>

#include <stdint.h>

#include "util.h"

struct event_base;

extern struct event_base	*tl_base;
extern unsigned			 tl_ticks;	/* every 10 ms while looping */

/*
 * Group setup and teardown for cmocka_run_group_tests: the log at info
 * level, the server that tl_server names (started once for all tests,
 * stopped at the end), and tl_base.
 */
void	 tl_server(int (*start)(void), void (*stop)(void));
int	 tl_setup(void **);
int	 tl_teardown(void **);

/* Make tl_base with its ticker; free both. */
void	 tl_loop_new(void);
void	 tl_loop_free(void);
/* Run the loop for ms milliseconds. */
void	 tl_spin(unsigned ms);
void	 tl_loop_once(void);

/* Run the loop until cond holds, for ms milliseconds at most. */
#define TL_WAIT_FOR(cond, ms) do {					\
	uint64_t dl_ = now_mono_us() + (uint64_t)(ms) * 1000;		\
	while (!(cond) && now_mono_us() < dl_)				\
		tl_loop_once();						\
} while (0)

/* A loopback port nobody listens on right now. */
int	 tl_free_port(void);
/* A loopback socket that listens, and never accepts; its port in port. */
int	 tl_listen(int *port);

/* Send log lines to a memory file, count some of them, log to stderr. */
void	 tl_log_capture(void);
int	 tl_log_count(const char *name, const char *what);
void	 tl_log_release(void);

/*
 * Run argv ($PATH searched) in a child, output appended to out, as uid and
 * gid unless uid is (uid_t)-1, killed when the test dies.  Wait for it to
 * take requests, as ready(arg) tells: 0, or -1 when it does not within ms
 * or exits (*pid is then -1).  Send it sig, reap it, set *pid to -1.
 */
pid_t	 tl_spawn(char *const argv[], const char *out, uid_t, gid_t);
int	 tl_wait_ready(pid_t *pid, unsigned ms, int (*ready)(void *),
	    void *arg);
void	 tl_kill(pid_t *pid, int sig);

/* What a state change of a client is. */
enum tl_change {
	TL_DOWN,
	TL_ATTEMPT,
	TL_UP,
};

/* A client's state changes, and when each attempt started. */
struct tl_watch {
	int		 state;		/* the client's enum */
	int		 ups, downs, attempts;
	uint64_t	 start, first_down;
	uint64_t	 at[64];
	int		 free_on_down;	/* free it from its state callback */
	int		 freed;
};

void	 tl_watch_init(struct tl_watch *, int state);
/* Count a change; 1 when the callback should free the client now. */
int	 tl_watch_note(struct tl_watch *, int state, enum tl_change);
/* Never up, retried with growing delays, the loop ran since ticks0. */
void	 tl_assert_retrying(const struct tl_watch *, unsigned ticks0);
/* Down for the first time after a 200 ms connect timeout, never up. */
void	 tl_assert_timed_out(const struct tl_watch *);

#endif
