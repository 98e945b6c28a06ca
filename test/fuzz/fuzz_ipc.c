/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_ipc - libFuzzer target for the IPC frame parser.  The input is read
 * as a stream of frames in each direction, frame after frame while they
 * parse; every accepted frame must lie inside the input and match its
 * header, and every refusal must be one of the documented codes.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ipc.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* check_frame - what ipc_parse promises about an accepted frame */
static void
check_frame(const uint8_t *buf, size_t len, const struct ipc_msg *m,
    size_t used)
{
	volatile uint8_t	sum = 0;
	uint32_t		i;

	if (used != IPC_HDR_LEN + (size_t)m->len || used > len ||
	    m->data != buf + IPC_HDR_LEN || m->fd != -1 ||
	    (m->flags & ~IPC_F_FD) != 0 || m->len > IPC_PAYLOAD_MAX ||
	    strcmp(ipc_type_name(m->type), "unknown") == 0)
		abort();
	/* Touch the payload: a sanitizer sees a frame past the input. */
	for (i = 0; i < m->len; i++)
		sum += m->data[i];
	(void)sum;
}

/* run - parse frames in one direction until one does not parse */
static void
run(const uint8_t *data, size_t size, enum ipc_dir dir)
{
	struct ipc_msg		m;
	enum ipc_parse_rc	rc;
	size_t			off = 0, used;

	for (;;) {
		rc = ipc_parse(data + off, size - off, dir, &m, &used);
		if (rc != IPC_PARSE_OK)
			break;
		check_frame(data + off, size - off, &m, used);
		off += used;
	}
	if (rc > IPC_PARSE_BAD_FLAGS || ipc_parse_error(rc) == NULL)
		abort();
	if (rc == IPC_PARSE_MORE && size - off >= IPC_HDR_LEN &&
	    m.len <= size - off - IPC_HDR_LEN)
		abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	run(data, size, IPC_TO_WORKER);
	run(data, size, IPC_TO_MASTER);
	return 0;
}
