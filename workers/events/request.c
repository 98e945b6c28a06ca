/* SPDX-License-Identifier: Apache-2.0 */
/*
 * request - one table of requests and what each needs; the optional
 * fields are checked for every request alike.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "request.h"
#include "sess.h"
#include "util.h"

static const struct request_def requests[] = {
	{ "RequestAgentLogin",		N_AGENT },
	{ "RequestAgentLogout",		0 },
	{ "RequestAgentReady",		0 },
	{ "RequestAgentNotReady",	0 },
	{ "RequestMakeCall",		N_DEST },
	{ "RequestAnswerCall",		N_CONN },
	{ "RequestReleaseCall",		N_CONN },
	{ "RequestHoldCall",		N_CONN },
	{ "RequestRetrieveCall",	N_CONN },
	{ "RequestInitiateTransfer",	N_CONN | N_DEST },
	{ "RequestCompleteTransfer",	N_CONN | N_CONSULT },
	{ "RequestSingleStepTransfer",	N_CONN | N_DEST },
	{ "RequestInitiateConference",	N_CONN | N_DEST },
	{ "RequestCompleteConference",	N_CONN | N_CONSULT },
	{ "RequestAttachUserData",	N_CONN | N_DATA },
	{ "RequestUpdateUserData",	N_CONN | N_DATA },
	{ "RequestDeleteUserData",	N_CONN },
	{ "RequestSendUserEvent",	N_DATA },
};

static const char *const work_modes[] = { "Unknown", "AutoIn", "ManualIn",
    "AfterCallWork", "AuxWork", NULL };

const struct request_def *
evreq_find(const char *name)
{
	size_t	i;

	for (i = 0; i < NELEM(requests); i++)
		if (strcmp(requests[i].name, name) == 0)
			return &requests[i];
	return NULL;
}

static int
req_fail(struct evreq_error *err, const char *code, const char *fmt, ...)
{
	va_list	ap;

	err->code = code;
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
	return -1;
}

/* req_string - a string of 1..max bytes, or absent when optional */
static int
req_string(const json_t *req, const char *key, int required, size_t max,
    struct evreq_error *err)
{
	const json_t	*v = json_object_get(req, key);

	if (v == NULL && !required)
		return 0;
	if (!json_is_string(v) || json_string_length(v) == 0 ||
	    json_string_length(v) > max ||
	    strlen(json_string_value(v)) != json_string_length(v))
		return req_fail(err, SESS_ERR_BAD_ARGUMENT, "%s: %s a string of 1 "
		    "to %zu bytes", key, v == NULL ? "needs" : "must be", max);
	return 0;
}

int
evreq_check_dn(const json_t *req, struct evreq_error *err)
{
	return req_string(req, "dn", 1, EVREQ_DN_MAX, err);
}

int
evreq_check(const struct request_def *d, const json_t *req,
    size_t user_data_max, struct evreq_error *err)
{
	const json_t	*v, *k;
	const char	*s;
	char		*t;
	size_t		 i, len;

	if (evreq_check_dn(req, err) == -1 ||
	    req_string(req, "connId", d->need & N_CONN, 64, err) == -1 ||
	    req_string(req, "consultConnId", d->need & N_CONSULT, 64, err) == -1 ||
	    req_string(req, "destination", d->need & N_DEST, 64, err) == -1 ||
	    req_string(req, "agentId", d->need & N_AGENT, 127, err) == -1 ||
	    req_string(req, "otherDN", 0, 64, err) == -1 ||
	    req_string(req, "reason", 0, 128, err) == -1 ||
	    req_string(req, "password", 0, 256, err) == -1 ||
	    req_string(req, "workMode", 0, 32, err) == -1)
		return -1;
	if ((s = json_string_value(json_object_get(req, "workMode"))) != NULL) {
		for (i = 0; work_modes[i] != NULL; i++)
			if (strcmp(work_modes[i], s) == 0)
				break;
		if (work_modes[i] == NULL)
			return req_fail(err, SESS_ERR_BAD_ARGUMENT, "workMode: one of "
			    "Unknown, AutoIn, ManualIn, AfterCallWork, AuxWork");
	}
	v = json_object_get(req, "userData");
	if ((d->need & N_DATA) && v == NULL)
		return req_fail(err, SESS_ERR_BAD_ARGUMENT, "userData: needs an "
		    "object");
	if (v != NULL) {
		if (!json_is_object(v))
			return req_fail(err, SESS_ERR_BAD_ARGUMENT, "userData: must "
			    "be an object");
		t = json_dumps(v, JSON_COMPACT);
		len = t != NULL ? strlen(t) : 0;
		free(t);
		if (len > user_data_max)
			return req_fail(err, "UserDataTooLarge", "userData: %zu "
			    "bytes, more than the %zu allowed", len,
			    user_data_max);
	}
	v = json_object_get(req, "keys");
	if (v != NULL) {
		if (!json_is_array(v))
			return req_fail(err, SESS_ERR_BAD_ARGUMENT, "keys: must be "
			    "an array of strings");
		json_array_foreach(v, i, k)
			if (!json_is_string(k))
				return req_fail(err, SESS_ERR_BAD_ARGUMENT, "keys: "
				    "must be an array of strings");
	}
	return 0;
}
