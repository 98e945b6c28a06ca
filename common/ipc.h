/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ipc - the master <-> worker channel: framed messages over a Unix
 * socketpair, with an optional file descriptor passed by SCM_RIGHTS, and the
 * one message catalogue both sides share.
 *
 * A frame is a fixed 8-byte header (type, flags, payload length, in host
 * order: both ends are the same binary on the same host) and the payload.
 */
#ifndef TENANTD_IPC_H
#define TENANTD_IPC_H

#include <stddef.h>
#include <stdint.h>

struct event_base;

enum ipc_type {
	/* master -> worker */
	IPC_CONF = 1,		/* reload, prepare: normalized config text */
	IPC_COMMIT,		/* reload: apply the prepared config */
	IPC_ABORT,		/* reload: drop the prepared config */
	IPC_SHUTDOWN,		/* stop: uint32 deadline in ms, 0 = fast */
	IPC_LOG_REOPEN,		/* fd: the log file, reopened by the master */
	IPC_LISTEN,		/* fd: a new listening socket */
	/* worker -> master */
	IPC_READY = 64,		/* serving clients */
	IPC_RELOAD_ACK,		/* prepared config accepted */
	IPC_RELOAD_NACK,	/* prepared config refused: reason text */
	IPC_HEARTBEAT,		/* alive; sent every heartbeat_interval */
	IPC_FATAL,		/* about to exit: reason text */
};

#define IPC_HDR_LEN	8
#define IPC_PAYLOAD_MAX	(1u << 20)
#define IPC_F_FD	0x0001	/* a file descriptor travels with the frame */

enum ipc_dir {
	IPC_TO_WORKER,
	IPC_TO_MASTER,
};

struct ipc_msg {
	uint16_t	 type;
	uint16_t	 flags;
	uint32_t	 len;
	const uint8_t	*data;		/* borrowed until the handler returns */
	int		 fd;		/* -1 unless IPC_F_FD */
};

enum ipc_parse_rc {
	IPC_PARSE_OK = 0,
	IPC_PARSE_MORE,		/* a partial frame: wait for more bytes */
	IPC_PARSE_BAD_TYPE,	/* unknown type, or wrong direction */
	IPC_PARSE_TOO_BIG,	/* payload over the type's limit */
	IPC_PARSE_BAD_LEN,	/* payload under the type's minimum */
	IPC_PARSE_BAD_FLAGS,	/* unknown flag, or fd where none belongs */
};

/*
 * Parse one frame from buf.  Pure: no I/O.  On IPC_PARSE_OK, *m describes
 * the frame (fd left at -1) and *used is the number of bytes it took.
 */
enum ipc_parse_rc ipc_parse(const uint8_t *buf, size_t len, enum ipc_dir,
		    struct ipc_msg *m, size_t *used);
/* Write the header of a frame into out (IPC_HDR_LEN bytes). */
void		 ipc_header(uint8_t *out, uint16_t type, uint16_t flags,
		    uint32_t len);
const char	*ipc_type_name(uint16_t);
const char	*ipc_parse_error(enum ipc_parse_rc);

/* A channel: one end of the socketpair on an event loop. */
struct ipc_chan;
typedef void	 ipc_msg_cb(struct ipc_chan *, struct ipc_msg *, void *);
/* Called once when the peer closes or sends a bad frame (why says which). */
typedef void	 ipc_close_cb(struct ipc_chan *, const char *why, void *);

struct ipc_chan	*ipc_chan_new(struct event_base *, int fd, enum ipc_dir in,
		    ipc_msg_cb *, ipc_close_cb *, void *);
void		 ipc_chan_free(struct ipc_chan *);
/* Queue a frame; fd (or -1) is duplicated, the caller keeps its own. */
int		 ipc_send(struct ipc_chan *, uint16_t type, const void *,
		    size_t, int fd);
/* Handle frames already received, without waiting: a dead peer's last. */
void		 ipc_drain(struct ipc_chan *);
/* Write queued frames synchronously, for the last word before exit. */
void		 ipc_flush(struct ipc_chan *);

#endif
