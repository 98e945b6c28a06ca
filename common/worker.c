/* SPDX-License-Identifier: Apache-2.0 */
/*
 * worker - the worker side of the master <-> worker protocol.
 *
 * Handles from the master: conf (reload prepare), commit, abort, shutdown,
 * log_reopen, listen.  Sends: ready, reload_ack/nack, heartbeat, fatal.
 * When the channel closes the master is gone, and the worker exits at once.
 *
 * Fault injection for tests: TENANTD_FAULT=crash_at_start:<worker> exits
 * with status 1 before the worker is ready; exit2_at_start:<worker> exits
 * with status 2 (bad configuration).  docs/testing.md describes it.
 */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "ipc.h"
#include "log.h"
#include "proctitle.h"
#include "util.h"
#include "worker.h"

static void	on_msg(struct ipc_chan *, struct ipc_msg *, void *);
static void	on_close(struct ipc_chan *, const char *, void *);
static void	on_heartbeat(evutil_socket_t, short, void *);
static void	on_term(evutil_socket_t, short, void *);
static void	on_deadline(evutil_socket_t, short, void *);

static enum worker_class	 self;
static const struct worker_ops	*ops;
static struct event_base	*base;
static struct ipc_chan		*chan;
static struct conf		*conf;
static struct conf		*pending;	/* prepared by a reload */
static struct event		*ev_heartbeat, *ev_term, *ev_deadline;
static int			 stopping;

/* worker_run - set up the loop, start the worker, serve until told */
void
worker_run(enum worker_class cls, const struct worker_ops *o, struct conf *c,
    int chan_fd, int listen_fd)
{
	struct timeval	 tv;
	int		 rc;

	self = cls;
	ops = o;
	conf = c;
	proctitle_set("tenantd: %s", conf_worker_name(cls));
	log_set_role(conf_worker_name(cls));
	signal(SIGINT, SIG_IGN);	/* a terminal's ^C: the master decides */
	signal(SIGHUP, SIG_IGN);
	signal(SIGUSR1, SIG_IGN);
	signal(SIGQUIT, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	if ((base = event_base_new()) == NULL)
		fatalx("event_base_new");
	chan = ipc_chan_new(base, chan_fd, IPC_TO_WORKER, on_msg, on_close,
	    NULL);
	ev_term = evsignal_new(base, SIGTERM, on_term, NULL);
	evsignal_add(ev_term, NULL);
	ev_heartbeat = event_new(base, -1, EV_PERSIST, on_heartbeat, NULL);
	tv = util_tv(conf->heartbeat_interval);
	event_add(ev_heartbeat, &tv);
	ipc_send(chan, IPC_HEARTBEAT, NULL, 0, -1);
	{
		const char	*f = getenv("TENANTD_FAULT");
		char		 want[64];

		snprintf(want, sizeof(want), "crash_at_start:%s",
		    conf_worker_name(cls));
		if (f != NULL && strcmp(f, want) == 0)
			worker_fatalx(1, "fault injection: exiting before ready");
		snprintf(want, sizeof(want), "exit2_at_start:%s",
		    conf_worker_name(cls));
		if (f != NULL && strcmp(f, want) == 0)
			worker_fatalx(2, "fault injection: exiting with status 2");
	}
	if ((rc = ops->start(base, conf, listen_fd)) < 0)
		worker_fatalx(rc == -2 ? 2 : 1, "could not start%s",
		    rc == -2 ? ": bad configuration" : "");
	event_base_dispatch(base);
	worker_exit(0);
}

/* worker_ready - tell the master we serve */
void
worker_ready(void)
{
	ipc_send(chan, IPC_READY, NULL, 0, -1);
	log_info("ready");
}

const struct conf *
worker_conf(void)
{
	return conf;
}

/* worker_exit - free everything and exit */
void
worker_exit(int code)
{
	if (ops != NULL && ops->cleanup != NULL)
		ops->cleanup();
	if (chan != NULL) {
		ipc_flush(chan);
		ipc_chan_free(chan);
	}
	if (ev_heartbeat != NULL)
		event_free(ev_heartbeat);
	if (ev_term != NULL)
		event_free(ev_term);
	if (ev_deadline != NULL)
		event_free(ev_deadline);
	if (base != NULL)
		event_base_free(base);
	conf_free(pending);
	conf_free(conf);
	exit(code);
}

/* worker_fatalx - say why to the log and the master, then exit */
void
worker_fatalx(int code, const char *fmt, ...)
{
	char	why[1024];
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	log_warnx("%s", why);
	if (chan != NULL)
		ipc_send(chan, IPC_FATAL, why, strlen(why), -1);
	worker_exit(code);
}

static void
on_heartbeat(evutil_socket_t fd, short what, void *arg)
{
	ipc_send(chan, IPC_HEARTBEAT, NULL, 0, -1);
}

/* on_term - TERM sent to a worker directly: stop at once, cleanly */
static void
on_term(evutil_socket_t fd, short what, void *arg)
{
	log_info("terminated by signal");
	worker_exit(0);
}

static void
on_deadline(evutil_socket_t fd, short what, void *arg)
{
	log_warnx("graceful stop deadline passed; exiting");
	worker_exit(0);
}

/* on_close - the master is gone: nothing to serve for */
static void
on_close(struct ipc_chan *ch, const char *why, void *arg)
{
	log_warnx("channel to the master closed (%s); exiting", why);
	worker_exit(1);
}

/* reload_prepare - parse the master's configuration and ask the worker */
static void
reload_prepare(struct ipc_msg *m)
{
	char	 err[CONF_ERR_MAX], *text;

	conf_free(pending);
	text = xmalloc(m->len + 1);
	memcpy(text, m->data, m->len);
	text[m->len] = '\0';
	pending = conf_load_string(text, conf->path, err, sizeof(err));
	free(text);
	if (pending != NULL && ops->reload_check != NULL &&
	    ops->reload_check(pending, err, sizeof(err)) == -1) {
		conf_free(pending);
		pending = NULL;
	}
	if (pending == NULL) {
		ipc_send(chan, IPC_RELOAD_NACK, err, strlen(err), -1);
		return;
	}
	free(pending->path);
	pending->path = xstrdup(conf->path);
	ipc_send(chan, IPC_RELOAD_ACK, NULL, 0, -1);
}

/* reload_commit - swap in the prepared configuration */
static void
reload_commit(void)
{
	struct conf	*prev = conf;

	if (pending == NULL)
		return;
	conf = pending;
	pending = NULL;
	log_set_level(conf->log_level);
	log_set_format(conf->log_format);
	if (ops->reload_apply != NULL)
		ops->reload_apply(conf, prev);
	conf_free(prev);
	log_info("configuration reloaded");
}

/* shutdown - stop gracefully within the deadline, or at once */
static void
shutdown_worker(uint32_t deadline_ms)
{
	struct timeval	tv;

	if (deadline_ms == 0 || ops->stop == NULL)
		worker_exit(0);
	if (stopping)
		return;
	stopping = 1;
	log_info("stopping");
	tv = util_tv_us((uint64_t)deadline_ms * 1000);
	ev_deadline = evtimer_new(base, on_deadline, NULL);
	evtimer_add(ev_deadline, &tv);
	ops->stop();
}

/* on_msg - dispatch one message from the master */
static void
on_msg(struct ipc_chan *ch, struct ipc_msg *m, void *arg)
{
	uint32_t	deadline;

	switch (m->type) {
	case IPC_CONF:
		reload_prepare(m);
		break;
	case IPC_COMMIT:
		reload_commit();
		break;
	case IPC_ABORT:
		conf_free(pending);
		pending = NULL;
		break;
	case IPC_SHUTDOWN:
		memcpy(&deadline, m->data, sizeof(deadline));
		shutdown_worker(deadline);
		break;
	case IPC_LOG_REOPEN:
		log_set_fd(m->fd);
		close(m->fd);
		log_info("log file reopened");
		break;
	case IPC_LISTEN:
		if (ops->listen != NULL)
			ops->listen(m->fd);
		else
			close(m->fd);
		break;
	default:
		fatalx("unexpected message %s from the master",
		    ipc_type_name(m->type));
	}
}
