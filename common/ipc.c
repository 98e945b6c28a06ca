/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ipc - framing, the message catalogue and the event-driven channel.
 *
 * Every frame is checked against the catalogue before its handler sees it:
 * a type the receiving side must not get, a payload outside the type's
 * bounds or a file descriptor where none belongs closes the channel.  For
 * the worker that is the end (its master is gone or mad); the master kills
 * and restarts that worker.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "ipc.h"
#include "log.h"
#include "util.h"

#define FDQ_MAX		16
#define READ_CHUNK	65536

struct catalogue {
	uint16_t	 type;
	const char	*name;
	enum ipc_dir	 dir;
	uint32_t	 min_len;
	uint32_t	 max_len;
	int		 fd;		/* 1: fd required, 0: forbidden */
};

static const struct catalogue catalogue[] = {
	{ IPC_CONF, "conf", IPC_TO_WORKER, 1, IPC_PAYLOAD_MAX, 0 },
	{ IPC_COMMIT, "commit", IPC_TO_WORKER, 0, 0, 0 },
	{ IPC_ABORT, "abort", IPC_TO_WORKER, 0, 0, 0 },
	{ IPC_SHUTDOWN, "shutdown", IPC_TO_WORKER, 4, 4, 0 },
	{ IPC_LOG_REOPEN, "log_reopen", IPC_TO_WORKER, 0, 0, 1 },
	{ IPC_LISTEN, "listen", IPC_TO_WORKER, 0, 0, 1 },
	{ IPC_READY, "ready", IPC_TO_MASTER, 0, 0, 0 },
	{ IPC_RELOAD_ACK, "reload_ack", IPC_TO_MASTER, 0, 0, 0 },
	{ IPC_RELOAD_NACK, "reload_nack", IPC_TO_MASTER, 1, 4096, 0 },
	{ IPC_HEARTBEAT, "heartbeat", IPC_TO_MASTER, 0, 0, 0 },
	{ IPC_FATAL, "fatal", IPC_TO_MASTER, 1, 4096, 0 },
};

struct outmsg {
	TAILQ_ENTRY(outmsg)	 entry;
	uint8_t			*buf;
	size_t			 len;
	size_t			 off;
	int			 fd;
};

struct ipc_chan {
	int			 fd;
	enum ipc_dir		 in_dir;
	struct event		*ev_read;
	struct event		*ev_write;
	uint8_t			*in;
	size_t			 in_len;
	size_t			 in_cap;
	int			 fdq[FDQ_MAX];
	int			 nfdq;
	TAILQ_HEAD(, outmsg)	 out;
	ipc_msg_cb		*msg_cb;
	ipc_close_cb		*close_cb;
	void			*arg;
	int			 closed;
};

static const struct catalogue *
lookup(uint16_t type)
{
	size_t	i;

	for (i = 0; i < NELEM(catalogue); i++)
		if (catalogue[i].type == type)
			return &catalogue[i];
	return NULL;
}

/* ipc_type_name - a message type's name, for logs */
const char *
ipc_type_name(uint16_t type)
{
	const struct catalogue *c = lookup(type);

	return c != NULL ? c->name : "unknown";
}

const char *
ipc_parse_error(enum ipc_parse_rc rc)
{
	switch (rc) {
	case IPC_PARSE_OK: return "ok";
	case IPC_PARSE_MORE: return "truncated frame";
	case IPC_PARSE_BAD_TYPE: return "unexpected message type";
	case IPC_PARSE_TOO_BIG: return "oversized payload";
	case IPC_PARSE_BAD_LEN: return "payload too short";
	case IPC_PARSE_BAD_FLAGS: return "bad flags";
	}
	return "?";
}

/* ipc_header - encode a frame header */
void
ipc_header(uint8_t *out, uint16_t type, uint16_t flags, uint32_t len)
{
	memcpy(out, &type, 2);
	memcpy(out + 2, &flags, 2);
	memcpy(out + 4, &len, 4);
}

/* ipc_parse - check and decode one frame; see ipc.h */
enum ipc_parse_rc
ipc_parse(const uint8_t *buf, size_t len, enum ipc_dir dir, struct ipc_msg *m,
    size_t *used)
{
	const struct catalogue	*c;

	if (len < IPC_HDR_LEN)
		return IPC_PARSE_MORE;
	memcpy(&m->type, buf, 2);
	memcpy(&m->flags, buf + 2, 2);
	memcpy(&m->len, buf + 4, 4);
	m->data = buf + IPC_HDR_LEN;
	m->fd = -1;
	/* Judge the header before waiting for a payload it announces. */
	if ((c = lookup(m->type)) == NULL || c->dir != dir)
		return IPC_PARSE_BAD_TYPE;
	if (m->len > c->max_len)
		return IPC_PARSE_TOO_BIG;
	if (m->len < c->min_len)
		return IPC_PARSE_BAD_LEN;
	if ((m->flags & ~IPC_F_FD) != 0 || !!(m->flags & IPC_F_FD) != c->fd)
		return IPC_PARSE_BAD_FLAGS;
	if (len - IPC_HDR_LEN < m->len)
		return IPC_PARSE_MORE;
	*used = IPC_HDR_LEN + m->len;
	return IPC_PARSE_OK;
}

static void	chan_read(evutil_socket_t, short, void *);
static void	chan_write(evutil_socket_t, short, void *);

/* ipc_chan_new - wrap one end of a socketpair; in is what we may receive */
struct ipc_chan *
ipc_chan_new(struct event_base *base, int fd, enum ipc_dir in, ipc_msg_cb *mcb,
    ipc_close_cb *ccb, void *arg)
{
	struct ipc_chan	*ch = xcalloc(1, sizeof(*ch));

	evutil_make_socket_nonblocking(fd);
	ch->fd = fd;
	ch->in_dir = in;
	ch->msg_cb = mcb;
	ch->close_cb = ccb;
	ch->arg = arg;
	TAILQ_INIT(&ch->out);
	ch->ev_read = event_new(base, fd, EV_READ | EV_PERSIST, chan_read, ch);
	ch->ev_write = event_new(base, fd, EV_WRITE, chan_write, ch);
	if (ch->ev_read == NULL || ch->ev_write == NULL)
		fatalx("ipc: event_new");
	event_add(ch->ev_read, NULL);
	return ch;
}

static void
outmsg_free(struct outmsg *o)
{
	if (o->fd != -1)
		close(o->fd);
	free(o->buf);
	free(o);
}

/* ipc_chan_free - close the channel and drop what was not sent */
void
ipc_chan_free(struct ipc_chan *ch)
{
	struct outmsg	*o;
	int		 i;

	if (ch == NULL)
		return;
	event_free(ch->ev_read);
	event_free(ch->ev_write);
	while ((o = TAILQ_FIRST(&ch->out)) != NULL) {
		TAILQ_REMOVE(&ch->out, o, entry);
		outmsg_free(o);
	}
	for (i = 0; i < ch->nfdq; i++)
		close(ch->fdq[i]);
	close(ch->fd);
	free(ch->in);
	free(ch);
}

/* chan_close - report the end of the channel once */
static void
chan_close(struct ipc_chan *ch, const char *why)
{
	if (ch->closed)
		return;
	ch->closed = 1;
	event_del(ch->ev_read);
	event_del(ch->ev_write);
	ch->close_cb(ch, why, ch->arg);
}

/* send_one - write as much of the first queued frame as the socket takes */
static int
send_one(struct ipc_chan *ch, struct outmsg *o)
{
	struct msghdr	 mh;
	struct iovec	 iov;
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(sizeof(int))];
	}		 cm;
	ssize_t		 n;

	memset(&mh, 0, sizeof(mh));
	iov.iov_base = o->buf + o->off;
	iov.iov_len = o->len - o->off;
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	if (o->fd != -1 && o->off == 0) {
		memset(&cm, 0, sizeof(cm));
		mh.msg_control = cm.buf;
		mh.msg_controllen = sizeof(cm.buf);
		cm.hdr.cmsg_len = CMSG_LEN(sizeof(int));
		cm.hdr.cmsg_level = SOL_SOCKET;
		cm.hdr.cmsg_type = SCM_RIGHTS;
		memcpy(CMSG_DATA(&cm.hdr), &o->fd, sizeof(int));
	}
	if ((n = sendmsg(ch->fd, &mh, MSG_NOSIGNAL)) == -1)
		return errno == EAGAIN || errno == EINTR ? 0 : -1;
	o->off += (size_t)n;
	return 1;
}

/* drain - send queued frames until done or the socket is full */
static int
drain(struct ipc_chan *ch)
{
	struct outmsg	*o;
	int		 r;

	while ((o = TAILQ_FIRST(&ch->out)) != NULL) {
		if ((r = send_one(ch, o)) <= 0)
			return r;
		if (o->off == o->len) {
			TAILQ_REMOVE(&ch->out, o, entry);
			outmsg_free(o);
		}
	}
	return 1;
}

static void
chan_write(evutil_socket_t fd, short what, void *arg)
{
	struct ipc_chan	*ch = arg;
	int		 r = drain(ch);

	if (r == -1)
		chan_close(ch, strerror(errno));
	else if (r == 0)
		event_add(ch->ev_write, NULL);
}

/* ipc_send - queue a frame and try to write it now */
int
ipc_send(struct ipc_chan *ch, uint16_t type, const void *data, size_t len,
    int fd)
{
	struct outmsg	*o;
	int		 r;

	if (ch->closed || len > IPC_PAYLOAD_MAX)
		return -1;
	o = xcalloc(1, sizeof(*o));
	o->len = IPC_HDR_LEN + len;
	o->buf = xmalloc(o->len);
	ipc_header(o->buf, type, fd != -1 ? IPC_F_FD : 0, (uint32_t)len);
	if (len > 0)
		memcpy(o->buf + IPC_HDR_LEN, data, len);
	o->fd = fd == -1 ? -1 : fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (fd != -1 && o->fd == -1) {
		log_warn("ipc: dup");
		outmsg_free(o);
		return -1;
	}
	TAILQ_INSERT_TAIL(&ch->out, o, entry);
	if ((r = drain(ch)) == 0)
		event_add(ch->ev_write, NULL);
	return r == -1 ? -1 : 0;
}

/* ipc_flush - block until the queue is written, for a last message */
void
ipc_flush(struct ipc_chan *ch)
{
	int	flags = fcntl(ch->fd, F_GETFL);

	fcntl(ch->fd, F_SETFL, flags & ~O_NONBLOCK);
	drain(ch);
	fcntl(ch->fd, F_SETFL, flags);
}

/* recv_some - read bytes and any passed descriptors */
static ssize_t
recv_some(struct ipc_chan *ch)
{
	struct msghdr	 mh;
	struct iovec	 iov;
	struct cmsghdr	*c;
	union {
		struct cmsghdr	hdr;
		char		buf[CMSG_SPACE(sizeof(int) * FDQ_MAX)];
	}		 cm;
	ssize_t		 n;
	int		 i, nfd, fd;

	if (ch->in_cap - ch->in_len < READ_CHUNK) {
		ch->in_cap = ch->in_len + READ_CHUNK;
		ch->in = xrealloc(ch->in, ch->in_cap);
	}
	memset(&mh, 0, sizeof(mh));
	iov.iov_base = ch->in + ch->in_len;
	iov.iov_len = ch->in_cap - ch->in_len;
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	mh.msg_control = cm.buf;
	mh.msg_controllen = sizeof(cm.buf);
	if ((n = recvmsg(ch->fd, &mh, MSG_CMSG_CLOEXEC)) <= 0)
		return n;
	for (c = CMSG_FIRSTHDR(&mh); c != NULL; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		nfd = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		for (i = 0; i < nfd; i++) {
			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (ch->nfdq < FDQ_MAX)
				ch->fdq[ch->nfdq++] = fd;
			else
				close(fd);
		}
	}
	ch->in_len += (size_t)n;
	return n;
}

/* dispatch - hand every complete frame to the handler */
static void
dispatch(struct ipc_chan *ch)
{
	struct ipc_msg		 m;
	enum ipc_parse_rc	 rc;
	size_t			 off = 0, used;

	while (!ch->closed) {
		rc = ipc_parse(ch->in + off, ch->in_len - off, ch->in_dir, &m,
		    &used);
		if (rc == IPC_PARSE_MORE)
			break;
		if (rc != IPC_PARSE_OK) {
			chan_close(ch, ipc_parse_error(rc));
			return;
		}
		if (m.flags & IPC_F_FD) {
			if (ch->nfdq == 0) {
				chan_close(ch, "frame announces a missing fd");
				return;
			}
			m.fd = ch->fdq[0];
			memmove(ch->fdq, ch->fdq + 1,
			    sizeof(int) * (size_t)--ch->nfdq);
		}
		off += used;
		ch->msg_cb(ch, &m, ch->arg);
	}
	if (!ch->closed && off > 0) {
		memmove(ch->in, ch->in + off, ch->in_len - off);
		ch->in_len -= off;
	}
}

/* ipc_drain - read and dispatch what is buffered, until none is left */
void
ipc_drain(struct ipc_chan *ch)
{
	while (!ch->closed && recv_some(ch) > 0)
		dispatch(ch);
}

static void
chan_read(evutil_socket_t fd, short what, void *arg)
{
	struct ipc_chan	*ch = arg;
	ssize_t		 n = recv_some(ch);

	if (n == 0 || (n < 0 && errno == ECONNRESET))
		chan_close(ch, "peer closed the channel");
	else if (n < 0 && errno != EAGAIN && errno != EINTR)
		chan_close(ch, strerror(errno));
	else if (n > 0)
		dispatch(ch);
}
