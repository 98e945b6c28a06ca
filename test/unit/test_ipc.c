/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_ipc - the master <-> worker channel.  First the pure frame parser
 * against the catalogue (direction, type, bounds, flags, partial frames,
 * garbage), then two ipc_chan ends of a real socketpair on one event_base:
 * frames both ways, a file descriptor passed by SCM_RIGHTS, bursts, a large
 * payload, a peer writing garbage and a peer closing.
 */
#include <sys/socket.h>

#include <dirent.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <event2/event.h>

#include "ipc.h"
#include "log.h"
#include "util.h"

#define WAIT_MS		3000	/* generous: valgrind is slow */
#define BURST		2000
#define BIG_LEN		(512 * 1024)

/*
 * The pure parser.
 */

/* mkframe - header plus len bytes of payload (pattern) into buf */
static size_t
mkframe(uint8_t *buf, uint16_t type, uint16_t flags, uint32_t len)
{
	uint32_t	i;

	ipc_header(buf, type, flags, len);
	for (i = 0; i < len; i++)
		buf[IPC_HDR_LEN + i] = (uint8_t)('a' + i % 26);
	return IPC_HDR_LEN + len;
}

/* parse - ipc_parse over a frame built by mkframe */
static enum ipc_parse_rc
parse(uint16_t type, uint16_t flags, uint32_t len, enum ipc_dir dir)
{
	static uint8_t	buf[IPC_HDR_LEN + 8192];
	struct ipc_msg	m;
	size_t		used = 0, n;

	n = mkframe(buf, type, flags, len);
	return ipc_parse(buf, n, dir, &m, &used);
}

struct good {
	uint16_t	type;
	enum ipc_dir	dir;
	uint32_t	len;
	uint16_t	flags;
};

static const struct good goods[] = {
	{ IPC_CONF, IPC_TO_WORKER, 100, 0 },
	{ IPC_CONF, IPC_TO_WORKER, 1, 0 },
	{ IPC_COMMIT, IPC_TO_WORKER, 0, 0 },
	{ IPC_ABORT, IPC_TO_WORKER, 0, 0 },
	{ IPC_SHUTDOWN, IPC_TO_WORKER, 4, 0 },
	{ IPC_LOG_REOPEN, IPC_TO_WORKER, 0, IPC_F_FD },
	{ IPC_LISTEN, IPC_TO_WORKER, 0, IPC_F_FD },
	{ IPC_READY, IPC_TO_MASTER, 0, 0 },
	{ IPC_RELOAD_ACK, IPC_TO_MASTER, 0, 0 },
	{ IPC_RELOAD_NACK, IPC_TO_MASTER, 17, 0 },
	{ IPC_RELOAD_NACK, IPC_TO_MASTER, 4096, 0 },
	{ IPC_HEARTBEAT, IPC_TO_MASTER, 0, 0 },
	{ IPC_FATAL, IPC_TO_MASTER, 1, 0 },
	{ IPC_FATAL, IPC_TO_MASTER, 4096, 0 },
};

static void
test_parse_valid(void **state)
{
	uint8_t		buf[IPC_HDR_LEN + 4096 + 3];
	struct ipc_msg	m;
	size_t		i, n, used;

	for (i = 0; i < NELEM(goods); i++) {
		n = mkframe(buf, goods[i].type, goods[i].flags, goods[i].len);
		/* Trailing bytes of a next frame are not consumed. */
		memcpy(buf + n, "xyz", 3);
		used = 0;
		m.fd = 42;
		assert_int_equal(ipc_parse(buf, n + 3, goods[i].dir, &m, &used),
		    IPC_PARSE_OK);
		assert_int_equal(used, n);
		assert_int_equal(m.type, goods[i].type);
		assert_int_equal(m.flags, goods[i].flags);
		assert_int_equal(m.len, goods[i].len);
		assert_ptr_equal(m.data, buf + IPC_HDR_LEN);
		assert_int_equal(m.fd, -1);
	}
}

static void
test_parse_wrong_direction(void **state)
{
	size_t	i;

	for (i = 0; i < NELEM(goods); i++)
		assert_int_equal(parse(goods[i].type, goods[i].flags,
		    goods[i].len, goods[i].dir == IPC_TO_WORKER ?
		    IPC_TO_MASTER : IPC_TO_WORKER), IPC_PARSE_BAD_TYPE);
}

static void
test_parse_unknown_type(void **state)
{
	static const uint16_t	bad[] = { 0, 7, 8, 63, 69, 70, 128, 0x4547,
	    0xffff };
	size_t			i;

	for (i = 0; i < NELEM(bad); i++) {
		assert_int_equal(parse(bad[i], 0, 0, IPC_TO_WORKER),
		    IPC_PARSE_BAD_TYPE);
		assert_int_equal(parse(bad[i], 0, 0, IPC_TO_MASTER),
		    IPC_PARSE_BAD_TYPE);
	}
}

static void
test_parse_truncated(void **state)
{
	uint8_t		buf[IPC_HDR_LEN + 64];
	struct ipc_msg	m;
	size_t		n, k, used = 777;

	/* Header cut short: even zero bytes is just "more". */
	n = mkframe(buf, IPC_HEARTBEAT, 0, 0);
	for (k = 0; k < n; k++)
		assert_int_equal(ipc_parse(buf, k, IPC_TO_MASTER, &m, &used),
		    IPC_PARSE_MORE);
	/* Payload cut short. */
	n = mkframe(buf, IPC_FATAL, 0, 50);
	for (k = IPC_HDR_LEN; k < n; k++)
		assert_int_equal(ipc_parse(buf, k, IPC_TO_MASTER, &m, &used),
		    IPC_PARSE_MORE);
	n = mkframe(buf, IPC_SHUTDOWN, 0, 4);
	for (k = 0; k < n; k++)
		assert_int_equal(ipc_parse(buf, k, IPC_TO_WORKER, &m, &used),
		    IPC_PARSE_MORE);
	assert_int_equal(used, 777);
	assert_int_equal(ipc_parse(buf, n, IPC_TO_WORKER, &m, &used),
	    IPC_PARSE_OK);
	assert_int_equal(used, n);
}

static void
test_parse_too_big(void **state)
{
	uint8_t		hdr[IPC_HDR_LEN];
	struct ipc_msg	m;
	size_t		used;

	/* Judged on the header alone: the payload is never waited for. */
	ipc_header(hdr, IPC_CONF, 0, UINT32_MAX);
	assert_int_equal(ipc_parse(hdr, sizeof(hdr), IPC_TO_WORKER, &m, &used),
	    IPC_PARSE_TOO_BIG);
	ipc_header(hdr, IPC_CONF, 0, IPC_PAYLOAD_MAX + 1);
	assert_int_equal(ipc_parse(hdr, sizeof(hdr), IPC_TO_WORKER, &m, &used),
	    IPC_PARSE_TOO_BIG);
	ipc_header(hdr, IPC_CONF, 0, IPC_PAYLOAD_MAX);
	assert_int_equal(ipc_parse(hdr, sizeof(hdr), IPC_TO_WORKER, &m, &used),
	    IPC_PARSE_MORE);
	ipc_header(hdr, IPC_FATAL, 0, UINT32_MAX);
	assert_int_equal(ipc_parse(hdr, sizeof(hdr), IPC_TO_MASTER, &m, &used),
	    IPC_PARSE_TOO_BIG);
	assert_int_equal(parse(IPC_FATAL, 0, 4097, IPC_TO_MASTER),
	    IPC_PARSE_TOO_BIG);
	assert_int_equal(parse(IPC_RELOAD_NACK, 0, 4097, IPC_TO_MASTER),
	    IPC_PARSE_TOO_BIG);
	assert_int_equal(parse(IPC_SHUTDOWN, 0, 5, IPC_TO_WORKER),
	    IPC_PARSE_TOO_BIG);
	assert_int_equal(parse(IPC_COMMIT, 0, 1, IPC_TO_WORKER),
	    IPC_PARSE_TOO_BIG);
	assert_int_equal(parse(IPC_HEARTBEAT, 0, 1, IPC_TO_MASTER),
	    IPC_PARSE_TOO_BIG);
	assert_int_equal(parse(IPC_LISTEN, IPC_F_FD, 1, IPC_TO_WORKER),
	    IPC_PARSE_TOO_BIG);
}

static void
test_parse_too_short(void **state)
{
	assert_int_equal(parse(IPC_CONF, 0, 0, IPC_TO_WORKER),
	    IPC_PARSE_BAD_LEN);
	assert_int_equal(parse(IPC_SHUTDOWN, 0, 0, IPC_TO_WORKER),
	    IPC_PARSE_BAD_LEN);
	assert_int_equal(parse(IPC_SHUTDOWN, 0, 3, IPC_TO_WORKER),
	    IPC_PARSE_BAD_LEN);
	assert_int_equal(parse(IPC_RELOAD_NACK, 0, 0, IPC_TO_MASTER),
	    IPC_PARSE_BAD_LEN);
	assert_int_equal(parse(IPC_FATAL, 0, 0, IPC_TO_MASTER),
	    IPC_PARSE_BAD_LEN);
}

static void
test_parse_bad_flags(void **state)
{
	/* An fd where none belongs. */
	assert_int_equal(parse(IPC_COMMIT, IPC_F_FD, 0, IPC_TO_WORKER),
	    IPC_PARSE_BAD_FLAGS);
	assert_int_equal(parse(IPC_CONF, IPC_F_FD, 10, IPC_TO_WORKER),
	    IPC_PARSE_BAD_FLAGS);
	assert_int_equal(parse(IPC_HEARTBEAT, IPC_F_FD, 0, IPC_TO_MASTER),
	    IPC_PARSE_BAD_FLAGS);
	/* No fd where one is required. */
	assert_int_equal(parse(IPC_LISTEN, 0, 0, IPC_TO_WORKER),
	    IPC_PARSE_BAD_FLAGS);
	assert_int_equal(parse(IPC_LOG_REOPEN, 0, 0, IPC_TO_WORKER),
	    IPC_PARSE_BAD_FLAGS);
	/* Unknown flags, with or without the fd flag. */
	assert_int_equal(parse(IPC_READY, 0x0002, 0, IPC_TO_MASTER),
	    IPC_PARSE_BAD_FLAGS);
	assert_int_equal(parse(IPC_READY, 0x8000, 0, IPC_TO_MASTER),
	    IPC_PARSE_BAD_FLAGS);
	assert_int_equal(parse(IPC_LISTEN, IPC_F_FD | 0x0100, 0,
	    IPC_TO_WORKER), IPC_PARSE_BAD_FLAGS);
}

static void
test_parse_sequence(void **state)
{
	uint8_t		buf[256];
	struct ipc_msg	m;
	size_t		n = 0, off = 0, used;
	uint32_t	d = 1500;
	static const uint16_t want[] = { IPC_CONF, IPC_COMMIT, IPC_SHUTDOWN };
	int		i = 0;

	n += mkframe(buf + n, IPC_CONF, 0, 33);
	n += mkframe(buf + n, IPC_COMMIT, 0, 0);
	ipc_header(buf + n, IPC_SHUTDOWN, 0, 4);
	memcpy(buf + n + IPC_HDR_LEN, &d, 4);
	n += IPC_HDR_LEN + 4;
	while (ipc_parse(buf + off, n - off, IPC_TO_WORKER, &m, &used) ==
	    IPC_PARSE_OK) {
		assert_int_equal(m.type, want[i++]);
		off += used;
	}
	assert_int_equal(i, 3);
	assert_int_equal(off, n);
	memcpy(&d, m.data, 4);
	assert_int_equal(d, 1500);
}

/* test_parse_garbage - random bytes never pass as a frame they are not */
static void
test_parse_garbage(void **state)
{
	static const char	text[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
	uint8_t			buf[64];
	struct ipc_msg		m;
	enum ipc_parse_rc	rc;
	uint32_t		x = 12345;
	size_t			used, i, k, ok = 0;

	assert_int_equal(ipc_parse((const uint8_t *)text, sizeof(text) - 1,
	    IPC_TO_WORKER, &m, &used), IPC_PARSE_BAD_TYPE);
	for (k = 0; k < 100000; k++) {
		for (i = 0; i < sizeof(buf); i++) {
			x ^= x << 13;
			x ^= x >> 17;
			x ^= x << 5;
			buf[i] = (uint8_t)x;
		}
		/* Make some headers plausible to reach the later checks. */
		if (k % 2) {
			buf[0] = (uint8_t)(k % 12 + (k % 4 ? 0 : 63));
			buf[1] = 0;
		}
		rc = ipc_parse(buf, sizeof(buf), k % 3 ? IPC_TO_WORKER :
		    IPC_TO_MASTER, &m, &used);
		assert_in_range(rc, IPC_PARSE_OK, IPC_PARSE_BAD_FLAGS);
		if (rc == IPC_PARSE_OK) {
			ok++;
			assert_int_equal(used, IPC_HDR_LEN + m.len);
			assert_true(used <= sizeof(buf));
			assert_true(m.flags == 0 || m.flags == IPC_F_FD);
		}
	}
	assert_true(ok < 1000);
}

static void
test_names(void **state)
{
	assert_string_equal(ipc_type_name(IPC_CONF), "conf");
	assert_string_equal(ipc_type_name(IPC_HEARTBEAT), "heartbeat");
	assert_string_equal(ipc_type_name(999), "unknown");
	assert_string_equal(ipc_parse_error(IPC_PARSE_TOO_BIG),
	    "oversized payload");
	assert_string_equal(ipc_parse_error(IPC_PARSE_BAD_TYPE),
	    "unexpected message type");
}

/*
 * Two channel ends on one event_base.
 */

struct got {
	uint16_t	 type;
	uint32_t	 len;
	uint8_t		*data;
	int		 fd;
};

struct end {
	struct ipc_chan	*ch;
	struct got	*msgs;
	size_t		 nmsgs;
	int		 closes;
	char		 why[128];
};

struct fx {
	struct event_base	*base;
	struct end		 master;	/* receives IPC_TO_MASTER */
	struct end		 worker;	/* receives IPC_TO_WORKER */
	int			 nfds;	/* open fds before the test */
	int			 raw;	/* peer socket of a lone end */
};

/* count_fds - open descriptors of this process */
static int
count_fds(void)
{
	DIR		*d = opendir("/proc/self/fd");
	struct dirent	*e;
	int		 n = 0;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL)
		n += e->d_name[0] != '.';
	closedir(d);
	return n - 1;	/* the directory itself */
}

static void
on_msg(struct ipc_chan *ch, struct ipc_msg *m, void *arg)
{
	struct end	*e = arg;
	struct got	*g;

	e->msgs = xrealloc(e->msgs, (e->nmsgs + 1) * sizeof(*e->msgs));
	g = &e->msgs[e->nmsgs++];
	g->type = m->type;
	g->len = m->len;
	g->data = xmalloc(m->len + 1);
	memcpy(g->data, m->data, m->len);
	g->fd = m->fd;
}

static void
on_close(struct ipc_chan *ch, const char *why, void *arg)
{
	struct end	*e = arg;

	e->closes++;
	snprintf(e->why, sizeof(e->why), "%s", why);
}

/* pump - run the loop for up to 2 ms */
static void
pump(struct fx *fx)
{
	struct timeval	tv = { 0, 2000 };

	event_base_loopexit(fx->base, &tv);
	event_base_loop(fx->base, 0);
}

#define WAIT_UNTIL(fx, cond) do {					\
	uint64_t _end = now_mono_us() + WAIT_MS * 1000;			\
	while (!(cond) && now_mono_us() < _end)				\
		pump(fx);						\
	assert_true(cond);						\
} while (0)

static int
setup(void **state)
{
	struct fx	*fx = xcalloc(1, sizeof(*fx));
	int		 sv[2];

	fx->nfds = count_fds();
	fx->base = event_base_new();
	assert_non_null(fx->base);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
	    sv), 0);
	fx->master.ch = ipc_chan_new(fx->base, sv[0], IPC_TO_MASTER, on_msg,
	    on_close, &fx->master);
	fx->worker.ch = ipc_chan_new(fx->base, sv[1], IPC_TO_WORKER, on_msg,
	    on_close, &fx->worker);
	fx->raw = -1;
	*state = fx;
	return 0;
}

/* setup_lone - only the worker end; the test writes raw bytes to raw */
static int
setup_lone(void **state)
{
	struct fx	*fx = xcalloc(1, sizeof(*fx));
	int		 sv[2];

	fx->nfds = count_fds();
	fx->base = event_base_new();
	assert_non_null(fx->base);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0,
	    sv), 0);
	fx->worker.ch = ipc_chan_new(fx->base, sv[1], IPC_TO_WORKER, on_msg,
	    on_close, &fx->worker);
	fx->raw = sv[0];
	*state = fx;
	return 0;
}

static void
end_clear(struct end *e)
{
	size_t	i;

	for (i = 0; i < e->nmsgs; i++) {
		free(e->msgs[i].data);
		if (e->msgs[i].fd != -1)
			close(e->msgs[i].fd);
	}
	free(e->msgs);
	ipc_chan_free(e->ch);
}

/* teardown - frees everything and checks that no descriptor leaked */
static int
teardown(void **state)
{
	struct fx	*fx = *state;
	int		 nfds = fx->nfds;

	end_clear(&fx->master);
	end_clear(&fx->worker);
	if (fx->raw != -1)
		close(fx->raw);
	event_base_free(fx->base);
	free(fx);
	assert_int_equal(count_fds(), nfds);
	return 0;
}

static void
test_chan_both_ways(void **state)
{
	struct fx	*fx = *state;
	static const char conf[] = "tenant = { id = \"x\"; };";
	uint32_t	 deadline = 2500, d;

	assert_int_equal(ipc_send(fx->master.ch, IPC_CONF, conf,
	    sizeof(conf) - 1, -1), 0);
	assert_int_equal(ipc_send(fx->master.ch, IPC_SHUTDOWN, &deadline,
	    sizeof(deadline), -1), 0);
	assert_int_equal(ipc_send(fx->worker.ch, IPC_READY, NULL, 0, -1), 0);
	assert_int_equal(ipc_send(fx->worker.ch, IPC_FATAL, "boom", 4, -1), 0);
	WAIT_UNTIL(fx, fx->worker.nmsgs == 2 && fx->master.nmsgs == 2);
	pump(fx);
	assert_int_equal(fx->worker.nmsgs, 2);
	assert_int_equal(fx->master.nmsgs, 2);
	assert_int_equal(fx->worker.msgs[0].type, IPC_CONF);
	assert_int_equal(fx->worker.msgs[0].len, sizeof(conf) - 1);
	assert_memory_equal(fx->worker.msgs[0].data, conf, sizeof(conf) - 1);
	assert_int_equal(fx->worker.msgs[1].type, IPC_SHUTDOWN);
	memcpy(&d, fx->worker.msgs[1].data, 4);
	assert_int_equal(d, 2500);
	assert_int_equal(fx->master.msgs[0].type, IPC_READY);
	assert_int_equal(fx->master.msgs[0].len, 0);
	assert_int_equal(fx->master.msgs[1].type, IPC_FATAL);
	assert_memory_equal(fx->master.msgs[1].data, "boom", 4);
	assert_int_equal(fx->master.msgs[1].fd, -1);
	assert_int_equal(fx->master.closes + fx->worker.closes, 0);
}

static void
test_chan_fd(void **state)
{
	struct fx	*fx = *state;
	char		 buf[32];
	int		 p[2], fd;

	assert_int_equal(pipe(p), 0);
	assert_int_equal(ipc_send(fx->master.ch, IPC_LOG_REOPEN, NULL, 0,
	    p[1]), 0);
	/* ipc_send duplicated it: ours can go at once. */
	close(p[1]);
	WAIT_UNTIL(fx, fx->worker.nmsgs == 1);
	assert_int_equal(fx->worker.msgs[0].type, IPC_LOG_REOPEN);
	fd = fx->worker.msgs[0].fd;
	assert_true(fd > 2);
	/* The received fd is the pipe's write end: write through it. */
	assert_int_equal(write(fd, "through", 7), 7);
	close(fd);
	fx->worker.msgs[0].fd = -1;
	assert_int_equal(read(p[0], buf, sizeof(buf)), 7);
	assert_memory_equal(buf, "through", 7);
	/* No copy of the write end is left anywhere: EOF. */
	assert_int_equal(read(p[0], buf, sizeof(buf)), 0);
	close(p[0]);
}

static void
test_chan_fd_and_frames_interleaved(void **state)
{
	struct fx	*fx = *state;
	char		 buf[8];
	int		 p[2][2], i;

	for (i = 0; i < 2; i++)
		assert_int_equal(pipe(p[i]), 0);
	ipc_send(fx->master.ch, IPC_COMMIT, NULL, 0, -1);
	ipc_send(fx->master.ch, IPC_LISTEN, NULL, 0, p[0][1]);
	ipc_send(fx->master.ch, IPC_ABORT, NULL, 0, -1);
	ipc_send(fx->master.ch, IPC_LOG_REOPEN, NULL, 0, p[1][1]);
	WAIT_UNTIL(fx, fx->worker.nmsgs == 4);
	assert_int_equal(fx->worker.msgs[0].fd, -1);
	assert_int_equal(fx->worker.msgs[2].fd, -1);
	/* Each descriptor arrives with its own frame. */
	for (i = 0; i < 2; i++) {
		struct got *g = &fx->worker.msgs[1 + 2 * i];

		assert_int_equal(write(g->fd, i ? "B" : "A", 1), 1);
		assert_int_equal(read(p[i][0], buf, 1), 1);
		assert_int_equal(buf[0], i ? 'B' : 'A');
		close(p[i][0]);
		close(p[i][1]);
	}
}

static void
test_chan_burst(void **state)
{
	struct fx	*fx = *state;
	char		 text[32];
	uint32_t	 i, v;
	int		 n;

	for (i = 0; i < BURST; i++) {
		assert_int_equal(ipc_send(fx->master.ch, IPC_SHUTDOWN, &i,
		    sizeof(i), -1), 0);
		n = snprintf(text, sizeof(text), "nack %u", i);
		assert_int_equal(ipc_send(fx->worker.ch, IPC_RELOAD_NACK, text,
		    (size_t)n, -1), 0);
	}
	WAIT_UNTIL(fx, fx->worker.nmsgs == BURST && fx->master.nmsgs == BURST);
	for (i = 0; i < BURST; i++) {
		memcpy(&v, fx->worker.msgs[i].data, 4);
		assert_int_equal(v, i);
		n = snprintf(text, sizeof(text), "nack %u", i);
		assert_int_equal(fx->master.msgs[i].len, n);
		assert_memory_equal(fx->master.msgs[i].data, text, (size_t)n);
	}
}

static void
test_chan_large(void **state)
{
	struct fx	*fx = *state;
	uint8_t		*big = xmalloc(BIG_LEN);
	size_t		 i;
	int		 k;

	for (i = 0; i < BIG_LEN; i++)
		big[i] = (uint8_t)(i * 7 + i / 251);
	/* Three in a row overflow the socket buffer: queued, in order. */
	for (k = 0; k < 3; k++) {
		big[0] = (uint8_t)k;
		assert_int_equal(ipc_send(fx->master.ch, IPC_CONF, big, BIG_LEN,
		    -1), 0);
	}
	assert_int_equal(ipc_send(fx->master.ch, IPC_COMMIT, NULL, 0, -1), 0);
	WAIT_UNTIL(fx, fx->worker.nmsgs == 4);
	for (k = 0; k < 3; k++) {
		big[0] = (uint8_t)k;
		assert_int_equal(fx->worker.msgs[k].type, IPC_CONF);
		assert_int_equal(fx->worker.msgs[k].len, BIG_LEN);
		assert_memory_equal(fx->worker.msgs[k].data, big, BIG_LEN);
	}
	assert_int_equal(fx->worker.msgs[3].type, IPC_COMMIT);
	free(big);
}

static void
test_send_limits(void **state)
{
	struct fx	*fx = *state;

	assert_int_equal(ipc_send(fx->master.ch, IPC_CONF, "",
	    IPC_PAYLOAD_MAX + 1, -1), -1);
	/* A bad descriptor cannot be duplicated: refused, nothing queued. */
	assert_int_equal(ipc_send(fx->master.ch, IPC_LISTEN, NULL, 0, 9999),
	    -1);
	ipc_send(fx->master.ch, IPC_COMMIT, NULL, 0, -1);
	WAIT_UNTIL(fx, fx->worker.nmsgs == 1);
	assert_int_equal(fx->worker.msgs[0].type, IPC_COMMIT);
}

/* A frame type the receiver must not get closes the channel. */
static void
test_chan_wrong_direction(void **state)
{
	struct fx	*fx = *state;

	ipc_send(fx->master.ch, IPC_COMMIT, NULL, 0, -1);
	ipc_send(fx->master.ch, IPC_HEARTBEAT, NULL, 0, -1);
	ipc_send(fx->master.ch, IPC_COMMIT, NULL, 0, -1);
	WAIT_UNTIL(fx, fx->worker.closes == 1);
	assert_string_equal(fx->worker.why, "unexpected message type");
	assert_int_equal(fx->worker.nmsgs, 1);
	/* Closed once; a closed channel refuses to send. */
	pump(fx);
	assert_int_equal(fx->worker.closes, 1);
	assert_int_equal(ipc_send(fx->worker.ch, IPC_READY, NULL, 0, -1), -1);
}

/* raw_write - bytes straight onto the lone end's peer socket */
static void
raw_write(struct fx *fx, const void *p, size_t n)
{
	assert_int_equal(write(fx->raw, p, n), (ssize_t)n);
}

static void
test_chan_garbage(void **state)
{
	struct fx	*fx = *state;

	raw_write(fx, "garbage, not a frame at all\n", 28);
	WAIT_UNTIL(fx, fx->worker.closes == 1);
	assert_string_equal(fx->worker.why, "unexpected message type");
	assert_int_equal(fx->worker.nmsgs, 0);
}

static void
test_chan_huge_header(void **state)
{
	struct fx	*fx = *state;
	uint8_t		 hdr[IPC_HDR_LEN];

	/* 4 GB announced: refused at once, not waited for. */
	ipc_header(hdr, IPC_CONF, 0, UINT32_MAX);
	raw_write(fx, hdr, sizeof(hdr));
	WAIT_UNTIL(fx, fx->worker.closes == 1);
	assert_string_equal(fx->worker.why, "oversized payload");
}

static void
test_chan_missing_fd(void **state)
{
	struct fx	*fx = *state;
	uint8_t		 hdr[IPC_HDR_LEN];

	/* The flag is set but no descriptor travels with the bytes. */
	ipc_header(hdr, IPC_LISTEN, IPC_F_FD, 0);
	raw_write(fx, hdr, sizeof(hdr));
	WAIT_UNTIL(fx, fx->worker.closes == 1);
	assert_string_equal(fx->worker.why, "frame announces a missing fd");
	assert_int_equal(fx->worker.nmsgs, 0);
}

static void
test_chan_split_frame(void **state)
{
	struct fx	*fx = *state;
	uint8_t		 buf[IPC_HDR_LEN + 4];
	uint32_t	 d = 77;
	size_t		 i;

	/* One byte at a time: the frame is delivered whole, once. */
	ipc_header(buf, IPC_SHUTDOWN, 0, 4);
	memcpy(buf + IPC_HDR_LEN, &d, 4);
	for (i = 0; i < sizeof(buf); i++) {
		raw_write(fx, buf + i, 1);
		pump(fx);
		assert_int_equal(fx->worker.nmsgs, i + 1 == sizeof(buf));
	}
	memcpy(&d, fx->worker.msgs[0].data, 4);
	assert_int_equal(d, 77);
	assert_int_equal(fx->worker.closes, 0);
}

static void
test_chan_peer_close(void **state)
{
	struct fx	*fx = *state;
	uint8_t		 hdr[IPC_HDR_LEN];

	ipc_header(hdr, IPC_COMMIT, 0, 0);
	raw_write(fx, hdr, sizeof(hdr));
	close(fx->raw);
	fx->raw = -1;
	WAIT_UNTIL(fx, fx->worker.closes == 1);
	/* What came before the close is still delivered. */
	assert_int_equal(fx->worker.nmsgs, 1);
	assert_int_equal(fx->worker.msgs[0].type, IPC_COMMIT);
	assert_string_equal(fx->worker.why, "peer closed the channel");
	pump(fx);
	assert_int_equal(fx->worker.closes, 1);
}

static void
test_chan_peer_free(void **state)
{
	struct fx	*fx = *state;

	ipc_chan_free(fx->master.ch);
	fx->master.ch = NULL;
	WAIT_UNTIL(fx, fx->worker.closes == 1);
	assert_string_equal(fx->worker.why, "peer closed the channel");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_valid),
		cmocka_unit_test(test_parse_wrong_direction),
		cmocka_unit_test(test_parse_unknown_type),
		cmocka_unit_test(test_parse_truncated),
		cmocka_unit_test(test_parse_too_big),
		cmocka_unit_test(test_parse_too_short),
		cmocka_unit_test(test_parse_bad_flags),
		cmocka_unit_test(test_parse_sequence),
		cmocka_unit_test(test_parse_garbage),
		cmocka_unit_test(test_names),
		cmocka_unit_test_setup_teardown(test_chan_both_ways, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_chan_fd, setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_chan_fd_and_frames_interleaved, setup, teardown),
		cmocka_unit_test_setup_teardown(test_chan_burst, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_chan_large, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_send_limits, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_chan_wrong_direction,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_chan_garbage, setup_lone,
		    teardown),
		cmocka_unit_test_setup_teardown(test_chan_huge_header,
		    setup_lone, teardown),
		cmocka_unit_test_setup_teardown(test_chan_missing_fd,
		    setup_lone, teardown),
		cmocka_unit_test_setup_teardown(test_chan_split_frame,
		    setup_lone, teardown),
		cmocka_unit_test_setup_teardown(test_chan_peer_close,
		    setup_lone, teardown),
		cmocka_unit_test_setup_teardown(test_chan_peer_free, setup,
		    teardown),
	};

	log_init("test", LOG_LVL_ERROR, LOG_FMT_LOGFMT);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
