/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_sess - libFuzzer over the session protocol's pure parsers: the
 * input is a client's byte stream, cut into lines by sess_frame_next and
 * decoded by sess_decode, as the server does.  Besides crashes and leaks it
 * checks what the server relies on: framing never reads or skips past the
 * buffer, a line never exceeds max_line, a decoded request has a name and
 * a valid ref, and whatever the server sends back (the request re-encoded,
 * an EventError with the decoder's message) is one valid JSON line.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "sess.h"

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

/* check - an invariant the server relies on */
static void
check(int ok)
{
	if (!ok)
		__builtin_trap();
}

/* check_line - one encoded event: a JSON object, then one '\n' */
static void
check_line(const json_t *event)
{
	char		*line;
	size_t		 len;
	json_t		*back;

	line = sess_encode(event, &len);
	check(line != NULL && len > 0 && len == strlen(line));
	check(memchr(line, '\n', len) == line + len - 1);
	back = json_loadb(line, len, 0, NULL);
	check(back != NULL && json_equal(back, event));
	json_decref(back);
	free(line);
}

/* one_line - decode a line as the server would */
static void
one_line(const char *line, size_t len)
{
	struct sess_request	 rq;
	const char		*code = NULL;
	char			 msg[512];
	json_t			*e;

	if (sess_line_blank(line, len))
		return;
	if (sess_decode(line, len, &rq, &code, msg, sizeof(msg)) == 0) {
		check(rq.obj != NULL && rq.name != NULL && rq.name[0] != '\0');
		check(rq.ref == SESS_NOREF ||
		    (rq.ref >= 0 && rq.ref <= SESS_REF_MAX));
		check_line(rq.obj);
		sess_request_clear(&rq);
		return;
	}
	check(rq.obj == NULL && code != NULL);
	e = sess_error_new(rq.ref, code, msg);
	check_line(e);
	json_decref(e);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char	*buf = (const char *)data;
	size_t		 max_line, off = 0, line_len, used;

	if (size < 1)
		return 0;
	log_init("fuzz", LOG_LVL_ERROR, LOG_FMT_LOGFMT);
	/* the first byte picks a small limit, so TOO_LONG is reached too */
	max_line = data[0] < 16 ? 4096 : data[0];
	buf++, size--;
	for (;;) {
		switch (sess_frame_next(buf + off, size - off, max_line,
		    &line_len, &used)) {
		case SESS_FRAME_LINE:
			check(line_len <= max_line && used > line_len &&
			    used <= size - off && used - line_len <= 2);
			check(buf[off + used - 1] == '\n');
			one_line(buf + off, line_len);
			off += used;
			break;
		case SESS_FRAME_MORE:
			check(size - off <= max_line + 1);
			return 0;
		case SESS_FRAME_TOO_LONG:
			return 0;
		}
	}
}
