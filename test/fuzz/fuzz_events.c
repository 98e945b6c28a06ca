/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_events - libFuzzer over what the events worker parses from its
 * clients: each line of the input is decoded as the session protocol does
 * and, when it names a call or agent request, checked as the worker checks
 * it before anything reaches the voice side.  Besides crashes and leaks it
 * checks: a request that passes has its DN and every field its definition
 * needs, as non-empty strings without NUL bytes, and a userData object
 * within the limit; a refusal has a code and a message that make a valid
 * EventError line.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sess.h"
#include "../../workers/events/request.c"

#define USER_DATA_MAX	256

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static void
check(int ok)
{
	if (!ok)
		__builtin_trap();
}

/* field_ok - a non-empty string without NUL, as the voice side gets it */
static int
field_ok(const json_t *req, const char *key)
{
	const json_t	*v = json_object_get(req, key);

	return json_is_string(v) && json_string_length(v) > 0 &&
	    strlen(json_string_value(v)) == json_string_length(v);
}

static void
one(const char *line, size_t len)
{
	const struct request_def	*d;
	struct sess_request		 r;
	struct evreq_error		 err;
	const char			*code;
	char				 msg[256], *text;
	json_t				*e, *ud;
	size_t				 n;

	if (sess_decode(line, len, &r, &code, msg, sizeof(msg)) == -1)
		return;
	if ((d = evreq_find(r.name)) == NULL) {
		check(evreq_check_dn(r.obj, &err) == 0 || err.code != NULL);
		sess_request_clear(&r);
		return;
	}
	memset(&err, 0, sizeof(err));
	if (evreq_check(d, r.obj, USER_DATA_MAX, &err) == 0) {
		check(field_ok(r.obj, "dn"));
		check(json_string_length(json_object_get(r.obj, "dn")) <=
		    EVREQ_DN_MAX);
		check(!(d->need & N_CONN) || field_ok(r.obj, "connId"));
		check(!(d->need & N_DEST) || field_ok(r.obj, "destination"));
		check(!(d->need & N_AGENT) || field_ok(r.obj, "agentId"));
		check(!(d->need & N_CONSULT) || field_ok(r.obj,
		    "consultConnId"));
		ud = json_object_get(r.obj, "userData");
		check(!(d->need & N_DATA) || json_is_object(ud));
		if (ud != NULL) {
			text = json_dumps(ud, JSON_COMPACT);
			check(text != NULL && strlen(text) <= USER_DATA_MAX);
			free(text);
		}
	} else {
		check(err.code != NULL && err.code[0] != '\0');
		check(memchr(err.message, '\0', sizeof(err.message)) != NULL);
		e = sess_error_new(r.ref, err.code, err.message);
		text = sess_encode(e, &n);
		check(text != NULL && n > 0 && text[n - 1] == '\n');
		free(text);
		json_decref(e);
	}
	sess_request_clear(&r);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char	*p = (const char *)data, *nl;
	size_t		 left = size;

	while (left > 0) {
		nl = memchr(p, '\n', left);
		one(p, nl != NULL ? (size_t)(nl - p) : left);
		if (nl == NULL)
			break;
		left -= (size_t)(nl - p) + 1;
		p = nl + 1;
	}
	return 0;
}
