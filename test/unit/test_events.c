/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_events - the pure parts of the events worker: the set of event
 * ids that drops an event delivered already (checked against a plain
 * model, with eviction of the oldest), stream ids as numbers, the
 * reading of a stream entry's "event" field, and the checking of call and
 * agent requests (workers/events/request.c).
 */
#include "../../common/seen.c"
#include "../../workers/events/request.c"
#include "../../common/voice.c"
#include "../../common/jscan.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

static void
test_seen_basic(void **state)
{
	struct seen	*s = seen_new(3, 1);

	assert_true(seen_add(s, "a"));
	assert_false(seen_add(s, "a"));
	assert_true(seen_add(s, "b"));
	assert_true(seen_add(s, "c"));
	assert_true(seen_has(s, "a"));
	assert_true(seen_add(s, "d"));		/* "a" is forgotten */
	assert_false(seen_has(s, "a"));
	assert_true(seen_has(s, "b"));
	assert_true(seen_has(s, "d"));
	assert_true(seen_add(s, "a"));
	assert_false(seen_has(s, "b"));
	seen_free(s);
}

/* The set knows exactly the last cap distinct ids added. */
static void
test_seen_model(void **state)
{
	enum { CAP = 500, IDS = 3000, STEPS = 40000 };
	static char	 ring[CAP][16];
	struct seen	*s = seen_new(CAP, 0);
	unsigned	 r = 7;
	size_t		 next = 0, n = 0, i, k;
	char		 id[16];
	int		 in;

	for (k = 0; k < STEPS; k++) {
		r = r * 1103515245 + 12345;
		snprintf(id, sizeof(id), "e%u", (r >> 8) % IDS);
		for (i = 0, in = 0; i < n; i++)
			if (strcmp(ring[i], id) == 0)
				in = 1;
		assert_int_equal(seen_has(s, id), in);
		assert_int_equal(seen_add(s, id), !in);
		if (!in) {
			snprintf(ring[next], sizeof(ring[next]), "%s", id);
			next = (next + 1) % CAP;
			if (n < CAP)
				n++;
		}
	}
	for (i = 0; i < n; i++)
		assert_true(seen_has(s, ring[i]));
	seen_free(s);
}

/*
 * Ids are kept as digests: long ids that differ only in their last byte,
 * or only in length, stay apart, and 300,000 distinct ids of the shapes
 * the voice side writes are each new once.
 */
static void
test_seen_digests(void **state)
{
	struct seen	*s = seen_new(65536, 1);
	char		 id[129];
	size_t		 i;

	memset(id, 'x', 128);
	id[128] = '\0';
	assert_true(seen_add(s, id));
	id[127] = 'y';
	assert_true(seen_add(s, id));
	assert_false(seen_add(s, id));
	id[127] = '\0';
	assert_true(seen_add(s, id));
	assert_true(seen_add(s, ""));
	assert_false(seen_add(s, ""));
	for (i = 0; i < 300000; i++) {
		snprintf(id, sizeof(id), i % 2 ? "sim:eu:%zu" :
		    "%08zx-0000-4000-8000-%012zx", i, i * 7919);
		assert_true(seen_add(s, id));
	}
	/* the last 65,536 are known, the ones before forgotten */
	snprintf(id, sizeof(id), "sim:eu:%zu", (size_t)299999);
	assert_true(seen_has(s, id));
	snprintf(id, sizeof(id), "sim:eu:%zu", (size_t)1);
	assert_false(seen_has(s, id));
	seen_free(s);
}

static void
test_sid(void **state)
{
	struct sid	a, b;
	char		buf[64];

	assert_int_equal(sid_parse("1764140000000-3", &a), 0);
	assert_true(a.ms == 1764140000000ULL && a.seq == 3);
	assert_int_equal(sid_parse("17", &b), 0);
	assert_true(b.ms == 17 && b.seq == 0);
	assert_true(sid_cmp(&a, &b) > 0 && sid_cmp(&b, &a) < 0);
	assert_int_equal(sid_parse("9-10", &b), 0);
	assert_int_equal(sid_parse("9-9", &a), 0);
	assert_true(sid_cmp(&a, &b) < 0);	/* numbers, not text */
	assert_int_equal(sid_cmp(&a, &a), 0);
	sid_format(&b, buf, sizeof(buf));
	assert_string_equal(buf, "9-10");
	assert_int_equal(sid_parse("", &a), -1);
	assert_int_equal(sid_parse("-1", &a), -1);
	assert_int_equal(sid_parse("1-", &a), -1);
	assert_int_equal(sid_parse("1-2-3", &a), -1);
	assert_int_equal(sid_parse("x", &a), -1);
	assert_int_equal(sid_parse(NULL, &a), -1);
}

/* entry - a fake XREAD entry's field array */
static redisReply *
entry(const char *field, const char *value)
{
	redisReply	*f = calloc(1, sizeof(*f)), **e = calloc(2, sizeof(*e));

	f->type = REDIS_REPLY_ARRAY;
	f->elements = 2;
	f->element = e;
	e[0] = calloc(1, sizeof(**e));
	e[0]->type = REDIS_REPLY_STRING;
	e[0]->str = strdup(field);
	e[0]->len = strlen(field);
	e[1] = calloc(1, sizeof(**e));
	e[1]->type = REDIS_REPLY_STRING;
	e[1]->str = strdup(value);
	e[1]->len = strlen(value);
	return f;
}

static void
entry_free(redisReply *f)
{
	size_t	i;

	for (i = 0; i < f->elements; i++) {
		free(f->element[i]->str);
		free(f->element[i]);
	}
	free(f->element);
	free(f);
}

static void
test_read_entry(void **state)
{
	struct voice_event	 ev;
	const char		*why;
	redisReply		*f;

	memset(&ev, 0, sizeof(ev));
	f = entry("event", "{\"event\":\"EventRinging\",\"eventId\":\"x-1\","
	    "\"thisDN\":\"5001\",\"time\":1764140000123,\"userData\":{\"a\":[1,"
	    "{\"b\":null}]}}");
	assert_int_equal(voice_read_entry(f, &ev, &why), 0);
	assert_null(ev.obj);			/* no tree needed */
	assert_string_equal(ev.name, "EventRinging");
	assert_string_equal(ev.event_id, "x-1");
	assert_string_equal(ev.dn, "5001");
	assert_string_equal(ev.request_id, "");
	assert_true(ev.has_time && ev.time_ms == 1764140000123LL);
	assert_ptr_equal(ev.raw, f->element[1]->str);
	assert_int_equal(ev.raw_len, strlen(f->element[1]->str));
	assert_non_null(voice_event_json(&ev));
	assert_string_equal(json_string_value(json_object_get(ev.obj,
	    "thisDN")), "5001");
	json_decref(ev.obj);
	entry_free(f);

	/* Escapes: the tree decides, and the fields come out unescaped. */
	memset(&ev, 0, sizeof(ev));
	f = entry("event", "{ \"event\" : \"EventUserEvent\", \"eventId\": "
	    "\"a\\u0041\", \"thisDN\": \"50\\\"1\", \"requestId\": \"r-1\" }");
	assert_int_equal(voice_read_entry(f, &ev, &why), 0);
	assert_non_null(ev.obj);
	assert_string_equal(ev.event_id, "aA");
	assert_string_equal(ev.dn, "50\"1");
	assert_string_equal(ev.request_id, "r-1");
	assert_false(ev.has_time);
	json_decref(ev.obj);
	entry_free(f);

	/* Not events. */
	{
		static const char *const bad[] = {
			"{\"event\":\"EventRinging\"}",		/* no eventId */
			"{\"event\":1,\"eventId\":\"x\"}",
			"[1]",
			"{\"event\":\"E\",\"eventId\":\"a\",\"eventId\":\"b\"}",
			"{\"event\":\"E\",\"eventId\":\"a\"",	/* cut */
			"{\"event\":\"E\",\"eventId\":\"a\",}",
			"{\"event\":\"E\",\"eventId\":\"\"}",
			"{\"event\":\"E\",\"eventId\":\"a\",\"x\":01}",
			"{\"event\":\"E\",\"eventId\":\"a\\u0000\"}",
			"{\"event\":\"E\",\"eventId\":\"\xc3\x28\"}", /* UTF-8 */
			"{\"event\":\"E\",\"eventId\":\"a\"} x",
			NULL
		};
		size_t	i;

		for (i = 0; bad[i] != NULL; i++) {
			memset(&ev, 0, sizeof(ev));
			f = entry("event", bad[i]);
			if (voice_read_entry(f, &ev, &why) != -1)
				fail_msg("accepted: %s", bad[i]);
			assert_null(ev.obj);
			entry_free(f);
		}
	}
	f = entry("data", "{\"event\":\"E\",\"eventId\":\"a\"}");
	assert_int_equal(voice_read_entry(f, &ev, &why), -1);
	assert_non_null(strstr(why, "no \"event\" field"));
	entry_free(f);
	assert_int_equal(voice_read_entry(NULL, &ev, &why), -1);
}

/* jscan agrees with jansson on what is a JSON object, member by member */
static void
test_jscan(void **state)
{
	static const char *const texts[] = {
		"{}", " { \"a\" : [ 1 , 2.5e-3 , -0 , true , false , null ] } ",
		"{\"k\":\"\\ud83d\\ude00\"}", "{\"k\":\"\xf0\x9f\x98\x80\"}",
		"{\"k\":\"\\ud83d\"}", "{\"k\":1.}", "{\"k\":.5}",
		"{\"k\":\"\t\"}", "{\"k\":[}", "{\"k\":{\"k\":{}}}", "{\"k\"}",
		"{\"k\":tru}", "{\"k\":\"\xe0\x80\x80\"}", "{\"k\":-}",
		"{\"k\":1e+}", "{\"k\":\"\\x\"}", "{,}", "{\"a\":1,,\"b\":2}", NULL
	};
	struct jscan_field	 f[] = { { "a", 0, NULL, 0 } };
	json_t			*j;
	size_t			 i;
	int			 ok;

	for (i = 0; texts[i] != NULL; i++) {
		j = json_loads(texts[i], 0, NULL);
		ok = jscan_object(texts[i], strlen(texts[i]), f, 1) == 0;
		if (ok != (j != NULL && json_is_object(j)))
			fail_msg("jscan %s, jansson %s: %s", ok ? "takes" :
			    "refuses", j != NULL ? "takes" : "refuses", texts[i]);
		json_decref(j);
	}
	assert_int_equal(jscan_object("{\"a\":\"x\",\"b\":{\"a\":1}}", 21, f,
	    1), 0);
	assert_int_equal(f[0].type, JSCAN_STRING);
	assert_int_equal(f[0].len, 1);
	assert_int_equal(f[0].val[0], 'x');
}

/* req - a request from JSON text (the test's own, always valid) */
static json_t *
req(const char *text)
{
	json_t	*j = json_loads(text, JSON_ALLOW_NUL, NULL);

	assert_non_null(j);
	return j;
}

/* check - evreq_check of name on text: the code, or NULL when it passes */
static const char *
check(const char *name, const char *text, struct evreq_error *err)
{
	const struct request_def	*d = evreq_find(name);
	json_t				*j = req(text);
	int				 rc;

	assert_non_null(d);
	rc = evreq_check(d, j, 64, err);
	json_decref(j);
	return rc == 0 ? NULL : err->code;
}

/* test_request_needs - every request: what it needs, and nothing more */
static void
test_request_needs(void **state)
{
	static const struct {
		const char	*name, *good, *missing;
	} t[] = {
		{ "RequestAgentLogin", "{\"dn\":\"1\",\"agentId\":\"a\"}",
		    "agentId" },
		{ "RequestAgentLogout", "{\"dn\":\"1\"}", NULL },
		{ "RequestMakeCall", "{\"dn\":\"1\",\"destination\":\"2\"}",
		    "destination" },
		{ "RequestAnswerCall", "{\"dn\":\"1\",\"connId\":\"c\"}",
		    "connId" },
		{ "RequestCompleteTransfer", "{\"dn\":\"1\",\"connId\":\"c\","
		    "\"consultConnId\":\"k\"}", "consultConnId" },
		{ "RequestAttachUserData", "{\"dn\":\"1\",\"connId\":\"c\","
		    "\"userData\":{}}", "userData" },
		{ "RequestSendUserEvent", "{\"dn\":\"1\",\"userData\":{}}",
		    "userData" },
	};
	struct evreq_error	 err;
	json_t			*j;
	size_t			 i;

	for (i = 0; i < NELEM(t); i++) {
		if (check(t[i].name, t[i].good, &err) != NULL)
			fail_msg("%s refused: %s", t[i].name, err.message);
		if (t[i].missing == NULL)
			continue;
		j = req(t[i].good);
		json_object_del(j, t[i].missing);
		assert_int_equal(evreq_check(evreq_find(t[i].name), j, 64,
		    &err), -1);
		assert_string_equal(err.code, SESS_ERR_BAD_ARGUMENT);
		assert_non_null(strstr(err.message, t[i].missing));
		json_decref(j);
	}
	assert_null(evreq_find("RequestNothing"));
	assert_null(evreq_find("RequestRegisterAddress"));	/* not sent on */
}

/* test_request_fields - the shape of every field, and the limits */
static void
test_request_fields(void **state)
{
	static const struct {
		const char	*text, *code, *names;
	} t[] = {
		{ "{}", SESS_ERR_BAD_ARGUMENT, "dn" },
		{ "{\"dn\":\"\"}", SESS_ERR_BAD_ARGUMENT, "dn" },
		{ "{\"dn\":5001}", SESS_ERR_BAD_ARGUMENT, "dn" },
		{ "{\"dn\":\"1234567890123456789012345678901234567890123456"
		    "789012345678901234\"}", SESS_ERR_BAD_ARGUMENT, "dn" },
		{ "{\"dn\":\"a\\u0000b\"}", SESS_ERR_BAD_ARGUMENT, "dn" },
		{ "{\"dn\":\"1\",\"workMode\":\"Lunch\"}",
		    SESS_ERR_BAD_ARGUMENT, "workMode" },
		{ "{\"dn\":\"1\",\"reason\":[]}", SESS_ERR_BAD_ARGUMENT,
		    "reason" },
		{ "{\"dn\":\"1\",\"userData\":[1]}", SESS_ERR_BAD_ARGUMENT,
		    "userData" },
		{ "{\"dn\":\"1\",\"userData\":{\"k\":\"0123456789012345678"
		    "901234567890123456789012345678901234567890\"}}",
		    "UserDataTooLarge", "userData" },
		{ "{\"dn\":\"1\",\"keys\":\"k\"}", SESS_ERR_BAD_ARGUMENT,
		    "keys" },
		{ "{\"dn\":\"1\",\"keys\":[\"a\",2]}", SESS_ERR_BAD_ARGUMENT,
		    "keys" },
		{ "{\"dn\":\"1\",\"workMode\":\"AfterCallWork\","
		    "\"reason\":\"r\",\"keys\":[\"a\"],\"userData\":{}}",
		    NULL, NULL },
	};
	struct evreq_error	 err;
	const char		*code;
	size_t			 i;

	for (i = 0; i < NELEM(t); i++) {
		code = check("RequestAgentLogout", t[i].text, &err);
		if (t[i].code == NULL) {
			if (code != NULL)
				fail_msg("%s refused: %s", t[i].text,
				    err.message);
			continue;
		}
		if (code == NULL || strcmp(code, t[i].code) != 0)
			fail_msg("%s: want %s, got %s", t[i].text, t[i].code,
			    code != NULL ? code : "a pass");
		if (strstr(err.message, t[i].names) == NULL)
			fail_msg("%s: the message does not name %s: %s",
			    t[i].text, t[i].names, err.message);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_seen_basic),
		cmocka_unit_test(test_seen_model),
		cmocka_unit_test(test_seen_digests),
		cmocka_unit_test(test_sid),
		cmocka_unit_test(test_read_entry),
		cmocka_unit_test(test_jscan),
		cmocka_unit_test(test_request_needs),
		cmocka_unit_test(test_request_fields),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
