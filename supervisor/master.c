/* SPDX-License-Identifier: Apache-2.0 */
/*
 * master - supervise one process per enabled worker class.
 *
 * The master never touches PostgreSQL, Redis or Kafka and never blocks.
 * Its signal handlers are libevent signal events.  It handles from workers:
 * ready, reload_ack, reload_nack, heartbeat, fatal.
 *
 * Restarts: a worker that dies after it was ready is restarted at once the
 * first time, then with a capped exponential backoff until it has stayed up
 * for STABLE_US.  A worker that dies before it was ready is throttled: its
 * next start waits throttle_delay, doubling each time, up to
 * restart_delay_max.  Exit status 2 means a bad configuration: the worker is
 * marked failed and started again only by a reload.
 *
 * Reload (HUP) is a transaction, as in relayd: parse the file into a new
 * configuration; bind any new listening address; send the normalized text to
 * every worker; only when every worker acknowledged does the master commit
 * (workers swap configurations, get new sockets, removed workers stop, added
 * ones start).  Any failure aborts and nothing changes.
 */
#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>

#include "backoff.h"
#include "ipc.h"
#include "log.h"
#include "master.h"
#include "metrics.h"
#include "net.h"
#include "notify.h"
#include "proctitle.h"
#include "util.h"
#include "worker.h"
#include "../workers/config/config_worker.h"
#include "../workers/events/events_worker.h"
#include "../workers/stats/stats_worker.h"
#include "../workers/outbound/outbound_worker.h"
#include "../workers/routing/routing_worker.h"
#include "../workers/metrics/metrics_worker.h"

#define STABLE_US		(10 * 1000000ULL)
#define CRASH_BACKOFF_BASE_US	(100 * 1000ULL)
#define RELOAD_TIMEOUT_S	5
#define FAST_STOP_KILL_S	2
#define LISTEN_BACKLOG		511
#define REGISTRY_SERIES		8192

enum reload_phase { RELOAD_IDLE, RELOAD_PREPARE };

struct proc {
	enum worker_class	 cls;
	pid_t			 pid;
	struct ipc_chan		*chan;
	int			 listen_fd;	/* the master's copy */
	int			 next_fd;	/* bound during a reload */
	int			 wanted;	/* should be running */
	int			 awaiting_ack;	/* reload prepare sent */
	int			 early_deaths;	/* in a row, before ready */
	int			 crashes;	/* after ready, since stable */
	struct backoff		 backoff;
	struct event		*ev_start;
	struct metric		*m_restarts;
	struct proc_status	*st;		/* in shared memory */
};

static const struct worker_ops *const worker_ops[WORKER_MAX] = {
	[WORKER_METRICS] = &metrics_worker_ops,
	[WORKER_CONFIG] = &config_worker_ops,
	[WORKER_EVENTS] = &events_worker_ops,
	[WORKER_STATS] = &stats_worker_ops,
	[WORKER_OUTBOUND] = &outbound_worker_ops,
	[WORKER_ROUTING] = &routing_worker_ops,
};

static struct event_base	*base;
static struct conf		*conf;
static struct conf		*next_conf;	/* during a reload */
static struct proc		 procs[WORKER_MAX];
static struct event		*ev_sig[6], *ev_tick, *ev_watchdog;
static struct event		*ev_reload_timeout, *ev_kill;
static enum reload_phase	 reload_phase;
static int			 stopping;	/* 0, 1 graceful, 2 fast */
static int			 announced_ready;
static struct metric		*m_reload_ok, *m_reload_failed;

static void	proc_start(struct proc *);
static void	proc_schedule(struct proc *, uint64_t delay_us);
static void	reload_abort(const char *why);
static void	maybe_finish_stop(void);


static const char *
pname(const struct proc *p)
{
	return conf_worker_name(p->cls);
}

/* set_state - publish a worker's state for the metrics worker */
static void
set_state(struct proc *p, enum proc_state s)
{
	p->st->state = s;
}

/* status_line - "STATUS=" text for systemd */
static void
notify_status(const char *what)
{
	char	buf[256];
	size_t	n = 0;
	int	i, ready = 0, total = 0;

	for (i = 0; i < WORKER_MAX; i++) {
		if (!procs[i].wanted)
			continue;
		total++;
		ready += procs[i].st->state == PROC_READY;
	}
	n = (size_t)snprintf(buf, sizeof(buf), "%s; %d of %d workers ready",
	    what, ready, total);
	(void)n;
	notify_send("STATUS=%s", buf);
}

/* all_ready - every wanted worker serves */
static int
all_ready(void)
{
	int	i;

	for (i = 0; i < WORKER_MAX; i++)
		if (procs[i].wanted && procs[i].st->state != PROC_READY)
			return 0;
	return 1;
}

/* child_close_fds - keep only what this worker needs across fork */
static void
child_close_fds(int keep1, int keep2)
{
	DIR		*d;
	struct dirent	*de;
	int		 fd, logfd = log_get_fd();

	if ((d = opendir("/proc/self/fd")) == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		fd = atoi(de->d_name);
		if (de->d_name[0] == '.' || fd <= 2 || fd == keep1 ||
		    fd == keep2 || fd == logfd || fd == dirfd(d))
			continue;
		close(fd);
	}
	closedir(d);
}

/* child_drop_privileges - become security.user once sockets are open */
static void
child_drop_privileges(void)
{
	struct passwd	*pw;
	struct group	*gr;
	gid_t		 gid;

	if (geteuid() != 0 || conf->user == NULL)
		return;
	if ((pw = getpwnam(conf->user)) == NULL)
		fatalx("security.user %s: no such user", conf->user);
	gid = pw->pw_gid;
	if (conf->group != NULL) {
		if ((gr = getgrnam(conf->group)) == NULL)
			fatalx("security.group %s: no such group", conf->group);
		gid = gr->gr_gid;
	}
	if (initgroups(pw->pw_name, gid) == -1 ||
	    setresgid(gid, gid, gid) == -1 ||
	    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) == -1)
		fatal("cannot drop privileges to %s", conf->user);
	prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
}

/* child_main - the forked side: become the worker */
static void
child_main(struct proc *p, int chan_fd)
{
	/* ^C in a terminal reaches every process: only the master acts. */
	static const int ignored[] = { SIGHUP, SIGINT, SIGQUIT, SIGUSR1 };
	static const int dfl[] = { SIGTERM, SIGCHLD, SIGPIPE };
	sigset_t	 set;
	size_t		 i;
	int		 lfd;

	/*
	 * The master's loop must not leak into the worker: give it private
	 * kernel objects first, so that freeing it cannot touch the master's.
	 */
	if (event_reinit(base) == 0)
		event_base_free(base);
	base = NULL;
	for (i = 0; i < NELEM(ignored); i++)
		signal(ignored[i], SIG_IGN);
	for (i = 0; i < NELEM(dfl); i++)
		signal(dfl[i], SIG_DFL);
	sigemptyset(&set);
	sigprocmask(SIG_SETMASK, &set, NULL);
	lfd = p->listen_fd;
	child_close_fds(chan_fd, lfd);
	child_drop_privileges();
	worker_run(p->cls, worker_ops[p->cls], conf, chan_fd, lfd);
}

static void	on_msg(struct ipc_chan *, struct ipc_msg *, void *);
static void	on_chan_close(struct ipc_chan *, const char *, void *);

/* proc_start - fork the worker of p */
static void
proc_start(struct proc *p)
{
	char	labels[64];
	int	sv[2];
	pid_t	pid;

	if (p->m_restarts == NULL) {
		snprintf(labels, sizeof(labels), "worker=\"%s\"", pname(p));
		p->m_restarts = metrics_counter("tenantd_worker_restarts_total",
		    "Times the master restarted a worker after it died.",
		    labels);
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == -1) {
		log_warn("socketpair for %s", pname(p));
		proc_schedule(p, 1000000);
		return;
	}
	if ((pid = fork()) == -1) {
		log_warn("fork %s", pname(p));
		close(sv[0]);
		close(sv[1]);
		proc_schedule(p, 1000000);
		return;
	}
	if (pid == 0) {
		close(sv[0]);
		child_main(p, sv[1]);
	}
	close(sv[1]);
	p->pid = pid;
	p->chan = ipc_chan_new(base, sv[0], IPC_TO_MASTER, on_msg,
	    on_chan_close, p);
	p->st->pid = pid;
	p->st->started_us = p->st->heartbeat_us = now_mono_us();
	p->st->ready_us = 0;
	set_state(p, PROC_STARTING);
	log_info("started worker %s (pid %ld)", pname(p), (long)pid);
}

static void
on_start_timer(evutil_socket_t fd, short what, void *arg)
{
	struct proc	*p = arg;

	if (p->wanted && p->pid == 0 && !stopping)
		proc_start(p);
}

/* proc_schedule - start p after delay_us */
static void
proc_schedule(struct proc *p, uint64_t delay_us)
{
	struct timeval	tv = util_tv_us(delay_us);

	set_state(p, PROC_BACKOFF);
	evtimer_add(p->ev_start, &tv);
}

/* restart_delay - how long to wait before starting p again */
static uint64_t
restart_delay(struct proc *p, int was_ready)
{
	uint64_t	d;

	if (!was_ready) {
		d = (uint64_t)(conf->throttle_delay * 1e6);
		if (p->early_deaths > 1)
			d <<= p->early_deaths - 1 > 16 ? 16 :
			    p->early_deaths - 1;
		if (d > (uint64_t)(conf->restart_delay_max * 1e6))
			d = (uint64_t)(conf->restart_delay_max * 1e6);
		return d;
	}
	if (p->crashes++ == 0)
		return 0;
	return backoff_next(&p->backoff);
}

/* proc_exited - decide what to do after a worker's death */
static void
proc_exited(struct proc *p, int status)
{
	int		 code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
	int		 was_ready = p->st->state == PROC_READY ||
			    (p->st->state == PROC_STOPPING && p->st->ready_us);
	uint64_t	 now = now_mono_us(), delay, ready_at = p->st->ready_us;
	char		 how[64];

	if (WIFSIGNALED(status))
		snprintf(how, sizeof(how), "killed by signal %d",
		    WTERMSIG(status));
	else
		snprintf(how, sizeof(how), "exited with status %d", code);
	/* Its last words (a fatal reason) may still wait in the channel. */
	ipc_drain(p->chan);
	ipc_chan_free(p->chan);
	p->chan = NULL;
	p->pid = 0;
	p->st->pid = 0;
	p->st->ready_us = 0;
	if (p->awaiting_ack)
		reload_abort("a worker died during the reload");
	if (stopping || !p->wanted) {
		log_info("worker %s %s", pname(p), how);
		set_state(p, PROC_STOPPED);
		if (!p->wanted && p->listen_fd != -1) {
			close(p->listen_fd);
			p->listen_fd = -1;
		}
		return;
	}
	if (code == 2) {
		log_warnx("worker %s exited with status 2 (bad configuration); "
		    "not restarting it until the next reload", pname(p));
		set_state(p, PROC_FAILED);
		return;
	}
	if (was_ready) {
		p->early_deaths = 0;
		if (now - ready_at > STABLE_US) {
			p->crashes = 0;
			backoff_reset(&p->backoff);
		}
	} else
		p->early_deaths++;
	delay = restart_delay(p, was_ready);
	metric_inc(p->m_restarts);
	p->st->restarts++;
	if (was_ready)
		log_warnx("worker %s %s; restarting in %.3fs", pname(p), how,
		    (double)delay / 1e6);
	else
		log_warnx("worker %s %s before it was ready (%d in a row); "
		    "throttled: next start in %.3fs", pname(p), how,
		    p->early_deaths, (double)delay / 1e6);
	if (delay == 0) {
		set_state(p, PROC_BACKOFF);
		proc_start(p);
	} else
		proc_schedule(p, delay);
}

/* reap - collect every dead child; as PID 1 that includes orphans */
static void
reap(void)
{
	pid_t	pid;
	int	status, i;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (i = 0; i < WORKER_MAX; i++)
			if (procs[i].pid == pid) {
				proc_exited(&procs[i], status);
				break;
			}
		if (i == WORKER_MAX)
			log_debug("reaped process %ld", (long)pid);
	}
	maybe_finish_stop();
}

/* stop_all - ask every worker to stop; fast: TERM now, KILL soon */
static void
stop_all(int fast)
{
	struct timeval	 tv;
	uint32_t	 deadline = (uint32_t)(conf->stop_timeout * 1000);
	int		 i;

	if (stopping >= (fast ? 2 : 1))
		return;
	stopping = fast ? 2 : 1;
	notify_send("STOPPING=1");
	notify_status(fast ? "stopping now" : "stopping");
	log_info("%s stop", fast ? "fast" : "graceful");
	if (reload_phase != RELOAD_IDLE)
		reload_abort("stopping");
	for (i = 0; i < WORKER_MAX; i++) {
		struct proc *p = &procs[i];

		evtimer_del(p->ev_start);
		if (p->pid == 0)
			continue;
		set_state(p, PROC_STOPPING);
		if (fast)
			kill(p->pid, SIGTERM);
		else
			ipc_send(p->chan, IPC_SHUTDOWN, &deadline,
			    sizeof(deadline), -1);
	}
	tv = fast ? util_tv(FAST_STOP_KILL_S) : util_tv(conf->stop_timeout + 1);
	evtimer_add(ev_kill, &tv);
	maybe_finish_stop();
}

/* on_kill - workers that outlived their deadline are killed */
static void
on_kill(evutil_socket_t fd, short what, void *arg)
{
	int	i;

	for (i = 0; i < WORKER_MAX; i++)
		if (procs[i].pid != 0) {
			log_warnx("worker %s did not stop in time; killing it",
			    pname(&procs[i]));
			kill(procs[i].pid, SIGKILL);
		}
}

/* maybe_finish_stop - leave the loop once every worker is gone */
static void
maybe_finish_stop(void)
{
	int	i;

	if (!stopping)
		return;
	for (i = 0; i < WORKER_MAX; i++)
		if (procs[i].pid != 0)
			return;
	event_base_loopbreak(base);
}

/* reopen_logs - USR1: reopen the file and hand it to every worker */
static void
reopen_logs(void)
{
	int	fd, i;

	if (conf->log_file == NULL) {
		log_info("USR1: logging to standard error; nothing to reopen");
		return;
	}
	if ((fd = log_open_file(conf->log_file)) == -1) {
		log_warn("USR1: cannot reopen %s", conf->log_file);
		return;
	}
	log_set_fd(fd);
	for (i = 0; i < WORKER_MAX; i++)
		if (procs[i].chan != NULL)
			ipc_send(procs[i].chan, IPC_LOG_REOPEN, NULL, 0, fd);
	close(fd);
	log_info("log file reopened");
}

/* reload_finish - common end of a reload */
static void
reload_finish(void)
{
	reload_phase = RELOAD_IDLE;
	evtimer_del(ev_reload_timeout);
	if (stopping)
		return;
	notify_send("READY=1");
	notify_status("serving");
}

/* reload_abort - drop the new configuration; nothing changed */
static void
reload_abort(const char *why)
{
	int	i;

	for (i = 0; i < WORKER_MAX; i++) {
		struct proc *p = &procs[i];

		if (p->chan != NULL && (p->awaiting_ack || next_conf != NULL))
			ipc_send(p->chan, IPC_ABORT, NULL, 0, -1);
		p->awaiting_ack = 0;
		if (p->next_fd != -1)
			close(p->next_fd);
		p->next_fd = -1;
	}
	conf_free(next_conf);
	next_conf = NULL;
	metric_inc(m_reload_failed);
	metrics_status()->reloads_failed++;
	log_warnx("reload failed, keeping the running configuration: %s", why);
	reload_finish();
}

/* apply_master_conf - the parts of a configuration the master uses */
static void
apply_master_conf(const struct conf *old)
{
	int	fd;

	log_set_level(conf->log_level);
	log_set_format(conf->log_format);
	if (conf->log_file != NULL && (old == NULL || old->log_file == NULL ||
	    strcmp(old->log_file, conf->log_file) != 0)) {
		if ((fd = log_open_file(conf->log_file)) == -1)
			log_warn("cannot open log file %s", conf->log_file);
		else {
			log_set_fd(fd);
			close(fd);
		}
	} else if (conf->log_file == NULL && old != NULL &&
	    old->log_file != NULL)
		log_set_fd(-1);
}

/* reload_commit - every worker acknowledged: switch over */
static void
reload_commit(void)
{
	struct conf	*old = conf;
	int		 i, logfd;

	conf = next_conf;
	next_conf = NULL;
	apply_master_conf(old);
	/* Workers follow the master to a new file, or back to stderr. */
	logfd = (old->log_file == NULL) != (conf->log_file == NULL) ||
	    (conf->log_file != NULL && strcmp(old->log_file,
	    conf->log_file) != 0) ? log_get_fd() : -1;
	for (i = 0; i < WORKER_MAX; i++) {
		struct proc *p = &procs[i];
		int enabled = conf->workers[i].enabled;

		p->awaiting_ack = 0;
		if (p->next_fd != -1) {
			if (p->chan != NULL)
				ipc_send(p->chan, IPC_LISTEN, NULL, 0,
				    p->next_fd);
			if (p->listen_fd != -1)
				close(p->listen_fd);
			p->listen_fd = p->next_fd;
			p->next_fd = -1;
		}
		p->backoff.max_us = (uint64_t)(conf->restart_delay_max * 1e6);
		if (p->chan != NULL && enabled) {
			ipc_send(p->chan, IPC_COMMIT, NULL, 0, -1);
			if (logfd != -1)
				ipc_send(p->chan, IPC_LOG_REOPEN, NULL, 0,
				    logfd);
		}
		p->st->enabled = enabled;
		if (p->wanted && !enabled) {
			uint32_t d = (uint32_t)(conf->stop_timeout * 1000);

			p->wanted = 0;
			evtimer_del(p->ev_start);
			log_info("worker %s removed; stopping it", pname(p));
			if (p->chan != NULL) {
				set_state(p, PROC_STOPPING);
				ipc_send(p->chan, IPC_SHUTDOWN, &d, sizeof(d),
				    -1);
			} else {
				set_state(p, PROC_STOPPED);
				close(p->listen_fd);
				p->listen_fd = -1;
			}
		} else if (enabled && (!p->wanted ||
		    p->st->state == PROC_FAILED)) {
			p->wanted = 1;
			p->early_deaths = p->crashes = 0;
			log_info("worker %s added", pname(p));
			proc_start(p);
		}
	}
	conf_free(old);
	metric_inc(m_reload_ok);
	metrics_status()->reloads_ok++;
	log_info("reload complete");
	reload_finish();
}

/* reload_bind - open the sockets the new configuration needs */
static int
reload_bind(char *why, size_t len)
{
	int	i;

	for (i = 0; i < WORKER_MAX; i++) {
		const struct conf_worker *nw = &next_conf->workers[i];
		struct proc *p = &procs[i];

		if (!nw->enabled || (p->listen_fd != -1 &&
		    conf_addr_equal(&nw->listen, &conf->workers[i].listen)))
			continue;
		if ((p->next_fd = net_listen(&nw->listen, LISTEN_BACKLOG)) ==
		    -1) {
			snprintf(why, len, "workers.%s: cannot listen on "
			    "%s:%d: %s", pname(p), nw->listen.host,
			    nw->listen.port, strerror(errno));
			return -1;
		}
	}
	return 0;
}

static void
on_reload_timeout(evutil_socket_t fd, short what, void *arg)
{
	reload_abort("a worker did not answer the reload in time");
}

/* reload - HUP: begin a reload transaction */
static void
reload(void)
{
	struct timeval	 tv = util_tv(RELOAD_TIMEOUT_S);
	char		 err[CONF_ERR_MAX], *text;
	int		 i, waiting = 0;

	if (stopping)
		return;
	if (reload_phase != RELOAD_IDLE) {
		log_warnx("HUP: a reload is already in progress; ignored");
		return;
	}
	log_info("HUP: reloading %s", conf->path);
	notify_send("RELOADING=1\nMONOTONIC_USEC=%llu",
	    (unsigned long long)now_mono_us());
	reload_phase = RELOAD_PREPARE;
	if ((next_conf = conf_load(conf->path, err, sizeof(err))) == NULL ||
	    reload_bind(err, sizeof(err)) == -1) {
		reload_abort(err);
		return;
	}
	text = conf_dump(next_conf);
	for (i = 0; i < WORKER_MAX; i++) {
		struct proc *p = &procs[i];

		if (p->chan == NULL || !next_conf->workers[i].enabled ||
		    p->st->state == PROC_STOPPING)
			continue;
		if (ipc_send(p->chan, IPC_CONF, text, strlen(text), -1) == 0) {
			p->awaiting_ack = 1;
			waiting++;
		}
	}
	free(text);
	if (waiting == 0)
		reload_commit();
	else
		evtimer_add(ev_reload_timeout, &tv);
}

/* on_ack - one worker accepted the prepared configuration */
static void
on_ack(struct proc *p)
{
	int	i;

	if (!p->awaiting_ack)
		return;
	p->awaiting_ack = 0;
	for (i = 0; i < WORKER_MAX; i++)
		if (procs[i].awaiting_ack)
			return;
	reload_commit();
}

/* on_msg - dispatch one message from a worker */
static void
on_msg(struct ipc_chan *ch, struct ipc_msg *m, void *arg)
{
	struct proc	*p = arg;
	char		 text[4097];

	p->st->heartbeat_us = now_mono_us();
	switch (m->type) {
	case IPC_HEARTBEAT:
		break;
	case IPC_READY:
		if (p->st->state == PROC_STARTING) {
			set_state(p, PROC_READY);
			p->st->ready_us = now_mono_us();
			p->early_deaths = 0;
			log_info("worker %s ready (pid %ld, %.1f ms after "
			    "start)", pname(p), (long)p->pid,
			    (double)(p->st->ready_us - p->st->started_us) /
			    1000);
		}
		if (all_ready()) {
			if (!announced_ready)
				notify_send("READY=1");
			announced_ready = 1;
			notify_status("serving");
		}
		break;
	case IPC_RELOAD_ACK:
		on_ack(p);
		break;
	case IPC_RELOAD_NACK:
		snprintf(text, sizeof(text), "worker %s refused it: %.*s",
		    pname(p), (int)m->len, (const char *)m->data);
		if (p->awaiting_ack)
			reload_abort(text);
		break;
	case IPC_FATAL:
		log_warnx("worker %s reports: %.*s", pname(p), (int)m->len,
		    (const char *)m->data);
		break;
	}
}

/* on_chan_close - a worker closed its channel or sent garbage */
static void
on_chan_close(struct ipc_chan *ch, const char *why, void *arg)
{
	struct proc	*p = arg;

	/* Its death is handled when it is reaped; make sure it dies. */
	if (p->pid != 0 && strcmp(why, "peer closed the channel") != 0) {
		log_warnx("worker %s: bad message (%s); killing it", pname(p),
		    why);
		kill(p->pid, SIGKILL);
	}
}

/* on_tick - heartbeat check: a silent worker is killed and restarted */
static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
	uint64_t	now = now_mono_us();
	uint64_t	limit = (uint64_t)(conf->heartbeat_timeout * 1e6);
	int		i;

	metrics_status()->master.heartbeat_us = now;
	for (i = 0; i < WORKER_MAX; i++) {
		struct proc *p = &procs[i];

		if (p->pid == 0 || now - p->st->heartbeat_us <= limit)
			continue;
		log_warnx("worker %s (pid %ld) sent no heartbeat for %.1fs; "
		    "killing it", pname(p), (long)p->pid,
		    (double)(now - p->st->heartbeat_us) / 1e6);
		p->st->heartbeat_us = now;	/* kill once */
		kill(p->pid, SIGKILL);
	}
}

/* on_watchdog - ping systemd only while every worker heartbeats */
static void
on_watchdog(evutil_socket_t fd, short what, void *arg)
{
	uint64_t	now = now_mono_us();
	uint64_t	limit = (uint64_t)(conf->heartbeat_timeout * 1e6);
	int		i;

	for (i = 0; i < WORKER_MAX; i++)
		if (procs[i].pid != 0 && now - procs[i].st->heartbeat_us >
		    limit)
			return;
	notify_send("WATCHDOG=1");
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	switch (sig) {
	case SIGHUP:
		reload();
		break;
	case SIGTERM:
	case SIGINT:
		stop_all(stopping != 0);
		break;
	case SIGQUIT:
		stop_all(1);
		break;
	case SIGUSR1:
		reopen_logs();
		break;
	case SIGCHLD:
		reap();
		break;
	}
}

/* open_listeners - bind every enabled worker's address before forking */
static int
open_listeners(void)
{
	int	i;

	for (i = 0; i < WORKER_MAX; i++) {
		struct conf_worker *w = &conf->workers[i];

		if (!w->enabled)
			continue;
		if ((procs[i].listen_fd = net_listen(&w->listen,
		    LISTEN_BACKLOG)) == -1) {
			log_warn("workers.%s: cannot listen on %s:%d",
			    conf_worker_name(i), w->listen.host,
			    w->listen.port);
			return -1;
		}
	}
	return 0;
}

/* setup - loop, signals, registry, process table */
static int
setup(void)
{
	static const int sigs[] = { SIGHUP, SIGTERM, SIGINT, SIGQUIT, SIGUSR1,
	    SIGCHLD };
	struct timeval	 tv;
	size_t		 i;

	signal(SIGPIPE, SIG_IGN);
	if ((base = event_base_new()) == NULL)
		fatalx("event_base_new");
	for (i = 0; i < NELEM(sigs); i++) {
		ev_sig[i] = evsignal_new(base, sigs[i], on_signal, NULL);
		evsignal_add(ev_sig[i], NULL);
	}
	if (metrics_init(REGISTRY_SERIES) == -1)
		fatal("cannot map the metrics registry");
	metrics_status()->master.pid = getpid();
	metrics_status()->master.started_us = now_mono_us();
	metrics_status()->master.heartbeat_us = now_mono_us();
	metrics_status()->master.state = PROC_READY;
	m_reload_ok = metrics_counter("tenantd_reloads_total",
	    "Configuration reloads by result.", "result=\"ok\"");
	m_reload_failed = metrics_counter("tenantd_reloads_total",
	    "Configuration reloads by result.", "result=\"failed\"");
	metric_set(metrics_gauge("tenantd_build_info", "Version of tenantd.",
	    "version=\"" TENANTD_VERSION "\""), 1);
	for (i = 0; i < WORKER_MAX; i++) {
		struct proc *p = &procs[i];

		p->cls = (enum worker_class)i;
		p->listen_fd = p->next_fd = -1;
		p->st = &metrics_status()->workers[i];
		p->ev_start = evtimer_new(base, on_start_timer, p);
		backoff_init(&p->backoff, CRASH_BACKOFF_BASE_US,
		    (uint64_t)(conf->restart_delay_max * 1e6), 20);
	}
	ev_tick = event_new(base, -1, EV_PERSIST, on_tick, NULL);
	tv = util_tv(0.25);
	event_add(ev_tick, &tv);
	ev_reload_timeout = evtimer_new(base, on_reload_timeout, NULL);
	ev_kill = evtimer_new(base, on_kill, NULL);
	if (notify_watchdog_usec() > 0) {
		ev_watchdog = event_new(base, -1, EV_PERSIST, on_watchdog,
		    NULL);
		tv = util_tv_us(notify_watchdog_usec() / 2);
		event_add(ev_watchdog, &tv);
	}
	return open_listeners();
}

/* teardown - free what the master holds, for clean leak checks */
static void
teardown(void)
{
	size_t	i;

	for (i = 0; i < WORKER_MAX; i++) {
		ipc_chan_free(procs[i].chan);
		if (procs[i].listen_fd != -1)
			close(procs[i].listen_fd);
		if (procs[i].ev_start != NULL)
			event_free(procs[i].ev_start);
	}
	for (i = 0; i < NELEM(ev_sig); i++)
		if (ev_sig[i] != NULL)
			event_free(ev_sig[i]);
	event_free(ev_tick);
	event_free(ev_reload_timeout);
	event_free(ev_kill);
	if (ev_watchdog != NULL)
		event_free(ev_watchdog);
	event_base_free(base);
	conf_free(next_conf);
	conf_free(conf);
	metrics_fini();
}

/* master_run - start the workers and supervise them until stopped */
int
master_run(struct conf *c)
{
	int	i, fd;

	conf = c;
	notify_init();
	log_init("master", conf->log_level, conf->log_format);
	if (conf->log_file != NULL) {
		if ((fd = log_open_file(conf->log_file)) == -1)
			fatal("cannot open log file %s", conf->log_file);
		log_set_fd(fd);
		close(fd);
	}
	proctitle_set("tenantd: master -c %s", conf->path);
	if (setup() == -1) {
		teardown();
		return 1;
	}
	log_info("tenantd %s starting for tenant %s (%s)", TENANTD_VERSION,
	    conf->tenant_name, conf->tenant_id);
	notify_status("starting");
	for (i = 0; i < WORKER_MAX; i++) {
		procs[i].wanted = conf->workers[i].enabled;
		procs[i].st->enabled = procs[i].wanted;
		if (procs[i].wanted)
			proc_start(&procs[i]);
	}
	event_base_dispatch(base);
	log_info("stopped");
	teardown();
	return 0;
}
