/* SPDX-License-Identifier: Apache-2.0 */
/*
 * offload - a mutex-and-condition queue feeds the threads; a finished job
 * goes back through a pipe the loop reads, one pointer per job, so no
 * libevent call is ever made off the loop's thread.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"
#include "offload.h"
#include "util.h"

#define THREADS_MAX	8

struct job {
	struct job	*next;
	offload_fn	*fn;
	offload_done_fn	*done;
	void		*arg;
};

static pthread_mutex_t	 lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t	 cond = PTHREAD_COND_INITIALIZER;
static struct job	*head, *tail;
static pthread_t	 threads[THREADS_MAX];
static int		 nthreads, stopping, cancelled;
static int		 pipefd[2] = { -1, -1 };
static struct event	*ev_done;

/* run - a pool thread: take jobs until told to stop */
static void *
run(void *unused)
{
	struct job	*j;

	for (;;) {
		pthread_mutex_lock(&lock);
		while (head == NULL && !stopping)
			pthread_cond_wait(&cond, &lock);
		if (stopping) {
			pthread_mutex_unlock(&lock);
			return NULL;
		}
		j = head;
		if ((head = j->next) == NULL)
			tail = NULL;
		pthread_mutex_unlock(&lock);
		j->fn(j->arg);
		/* A pointer is less than PIPE_BUF: the write is atomic. */
		while (write(pipefd[1], &j, sizeof(j)) == -1 && errno == EINTR)
			;
	}
}

/* on_done - finished jobs, back on the loop */
static void
on_done(evutil_socket_t fd, short what, void *unused)
{
	struct job	*j;
	ssize_t		 n;

	while ((n = read(fd, &j, sizeof(j))) == (ssize_t)sizeof(j) ||
	    (n == -1 && errno == EINTR)) {
		if (n == -1)
			continue;
		j->done(j->arg);
		free(j);
	}
}

void
offload_init(struct event_base *base, int n)
{
	int	i;

	if (pipe2(pipefd, O_CLOEXEC) == -1)
		fatal("offload: pipe");
	fcntl(pipefd[0], F_SETFL, O_NONBLOCK);
	ev_done = event_new(base, pipefd[0], EV_READ | EV_PERSIST, on_done,
	    NULL);
	event_add(ev_done, NULL);
	nthreads = n < 1 ? 1 : n > THREADS_MAX ? THREADS_MAX : n;
	stopping = 0;
	for (i = 0; i < nthreads; i++)
		if (pthread_create(&threads[i], NULL, run, NULL) != 0)
			fatalx("offload: pthread_create");
}

void
offload(offload_fn *fn, offload_done_fn *done, void *arg)
{
	struct job	*j = xcalloc(1, sizeof(*j));

	j->fn = fn;
	j->done = done;
	j->arg = arg;
	pthread_mutex_lock(&lock);
	if (tail != NULL)
		tail->next = j;
	else
		head = j;
	tail = j;
	pthread_cond_signal(&cond);
	pthread_mutex_unlock(&lock);
}

int
offload_cancelled(void)
{
	return cancelled;
}

void
offload_fini(void)
{
	struct job	*j;
	int		 i;

	if (nthreads == 0)
		return;
	pthread_mutex_lock(&lock);
	stopping = 1;
	pthread_cond_broadcast(&cond);
	pthread_mutex_unlock(&lock);
	for (i = 0; i < nthreads; i++)
		pthread_join(threads[i], NULL);
	nthreads = 0;
	/* Finished work still gets its answer. */
	on_done(pipefd[0], EV_READ, NULL);
	/* Work that did not start goes back undone, so its owner frees it. */
	cancelled = 1;
	while ((j = head) != NULL) {
		head = j->next;
		j->done(j->arg);
		free(j);
	}
	cancelled = 0;
	tail = NULL;
	event_free(ev_done);
	ev_done = NULL;
	close(pipefd[0]);
	close(pipefd[1]);
	pipefd[0] = pipefd[1] = -1;
}
