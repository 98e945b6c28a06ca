/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_routing_rtev - the routing worker's in-place reading of a routing
 * event (workers/routing/rtev.c): the events store.c's scripts write, read
 * field for field as jansson reads them; the document's exact span, with
 * braces, brackets and quotes inside its strings; what it refuses (an
 * escape in a field it copies, a fraction, a field too long, a truncated
 * or trailing text, no document); and a property test: random events
 * (fields in any order, whitespace, unknown fields, nested userData) read
 * the same as jansson reads them, or refused, never read differently
 * (a fixed seed, so a failure repeats).
 */
#include "../../workers/routing/rtev.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

/* expect - what jansson reads of text, in the same form */
static int
expect(const char *text, struct rtev *e, char **doc)
{
	json_t		*o = json_loads(text, 0, NULL), *d;
	const char	*s;

	memset(e, 0, sizeof(*e));
	*doc = NULL;
	if (o == NULL)
		return -1;
#define S(k, f)	if ((s = json_string_value(json_object_get(o, k))) != NULL) \
		snprintf(e->f, sizeof(e->f), "%s", s)
#define I(k, f)	e->f = json_integer_value(json_object_get(o, k))
	S("type", type);
	S("id", id);
	S("state", state);
	S("dn", dn);
	I("at", at);
	I("created", created);
	I("seq", seq);
	I("agent", agent);
	I("until", until);
	I("skip", skip);
	I("skipUntil", skipu);
	d = json_object_get(o, "interaction");
	e->vq = json_integer_value(json_object_get(d, "vq"));
	if (json_is_object(d))
		*doc = json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(o);
	return 0;
}

/* same - rtev_parse's reading of text is jansson's */
static void
same(const char *text)
{
	struct rtev	 a, b;
	char		*want, *got;
	json_t		*d;

	assert_int_equal(rtev_parse(text, strlen(text), &a), 0);
	assert_int_equal(expect(text, &b, &want), 0);
	assert_string_equal(a.type, b.type);
	assert_string_equal(a.id, b.id);
	assert_string_equal(a.state, b.state);
	assert_string_equal(a.dn, b.dn);
	assert_true(a.at == b.at && a.created == b.created && a.seq == b.seq);
	assert_true(a.agent == b.agent && a.until == b.until);
	assert_true(a.skip == b.skip && a.skipu == b.skipu && a.vq == b.vq);
	/* the span is the document, whole */
	d = json_loadb(a.doc, a.doclen, 0, NULL);
	assert_non_null(d);
	got = json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS);
	assert_non_null(want);
	assert_string_equal(got, want);
	free(got);
	free(want);
	json_decref(d);
}

static void
refused(const char *text)
{
	struct rtev	e;

	assert_int_equal(rtev_parse(text, strlen(text), &e), -1);
}

static const char reserved_ev[] =
    "{\"type\":\"reserved\",\"id\":\"d66826b5-bda2-44b5-88ca-fef1598146f3\","
    "\"state\":\"reserved\",\"at\":1796565785137,\"created\":1796565785133,"
    "\"seq\":17,\"agent\":9,\"dn\":\"5001\",\"until\":1796565815137,"
    "\"skip\":4,\"skipUntil\":1796565795137,\"interaction\":{\"id\":"
    "\"d66826b5-bda2-44b5-88ca-fef1598146f3\",\"virtualQueue\":\"8001\","
    "\"vq\":24,\"target\":\"Sales>=1\",\"strategy\":\"LongestIdle\","
    "\"priority\":0,\"timeout\":3600,\"userData\":{\"CustomerId\":\"C9\"}}}";

static void
t_store_events(void **state)
{
	struct rtev	e;
	const char	*d;

	same(reserved_ev);
	assert_int_equal(rtev_parse(reserved_ev, strlen(reserved_ev), &e), 0);
	assert_string_equal(e.type, "reserved");
	assert_int_equal(e.agent, 9);
	assert_int_equal(e.vq, 24);
	assert_int_equal(e.skipu, 1796565795137LL);
	d = strstr(reserved_ev, "\"interaction\":") + 14;
	assert_ptr_equal(e.doc, d);
	assert_int_equal(e.doclen, strlen(d) - 1);
	/* queued, with the extras the scripts add; ended */
	same("{\"type\":\"queued\",\"id\":\"rp-0001-1700000000000-0\",\"state\":"
	    "\"queued\",\"at\":5,\"created\":5,\"seq\":1,\"restored\":true,"
	    "\"interaction\":{\"id\":\"x\",\"vq\":7,\"connId\":\"0001\"}}");
	same("{\"type\":\"rejected\",\"id\":\"a\",\"state\":\"queued\",\"at\":9,"
	    "\"created\":1,\"seq\":0,\"from\":3,\"fromDN\":\"5003\","
	    "\"interaction\":{\"vq\":1}}");
	same("{\"type\":\"completed\",\"id\":\"a\",\"state\":\"completed\","
	    "\"at\":9,\"created\":1,\"seq\":2,\"agent\":3,\"dn\":\"5003\","
	    "\"until\":0,\"interaction\":{}}");
}

static void
t_document_span(void **state)
{
	/* braces, brackets and quotes inside the document's strings */
	same("{\"type\":\"updated\",\"id\":\"a\",\"state\":\"queued\","
	    "\"interaction\":{\"vq\":3,\"target\":\"\\\"Tier 1\\\" > 2\","
	    "\"steps\":[{\"after\":30,\"target\":{\"agentGroup\":5}}],"
	    "\"userData\":{\"a}\":\"]}{[\",\"b\\\\\":[1,{\"c\":\"\\\"}\"}],"
	    "\"n\":null,\"f\":1.5e3}}}");
	/* whitespace anywhere jansson takes it */
	same(" {\n \"type\" : \"queued\" ,\t\"id\":\"a\",\"state\":\"queued\","
	    "\"at\" : -1 , \"interaction\" : { \"vq\" : 2 } }\r\n");
}

static void
t_refused(void **state)
{
	/* an escape in a field it copies: jansson's */
	refused("{\"type\":\"queued\",\"id\":\"a\\\"b\",\"state\":\"queued\","
	    "\"interaction\":{\"vq\":1}}");
	refused("{\"type\":\"queued\",\"id\":\"a\",\"dn\":\"\\u0035\","
	    "\"interaction\":{\"vq\":1}}");
	/* a key with an escape, at the top or in the document */
	refused("{\"ty\\u0070e\":\"queued\",\"id\":\"a\",\"interaction\":{}}");
	refused("{\"type\":\"queued\",\"id\":\"a\",\"interaction\":{\"v\\u0071\":1}}");
	/* numbers that are not plain integers */
	refused("{\"type\":\"queued\",\"id\":\"a\",\"at\":1.5,\"interaction\":{}}");
	refused("{\"type\":\"queued\",\"id\":\"a\",\"at\":1e3,\"interaction\":{}}");
	refused("{\"type\":\"queued\",\"id\":\"a\",\"at\":99999999999999999999,"
	    "\"interaction\":{}}");
	refused("{\"type\":\"queued\",\"id\":\"a\",\"agent\":null,"
	    "\"interaction\":{}}");
	refused("{\"type\":\"queued\",\"id\":\"a\",\"interaction\":{\"vq\":\"1\"}}");
	/* no document, no type, no id; a document that is not an object */
	refused("{\"type\":\"queued\",\"id\":\"a\"}");
	refused("{\"id\":\"a\",\"interaction\":{}}");
	refused("{\"type\":\"queued\",\"interaction\":{}}");
	refused("{\"type\":\"queued\",\"id\":\"a\",\"interaction\":[1]}");
	/* too long for its field */
	{
		char	buf[400];

		snprintf(buf, sizeof(buf), "{\"type\":\"queued\",\"id\":\"%0200d\","
		    "\"interaction\":{}}", 1);
		refused(buf);
	}
	/* malformed: truncated, trailing, unbalanced, a raw control byte */
	refused("");
	refused("[]");
	refused("{\"type\":\"queued\",\"id\":\"a\",\"interaction\":{\"vq\":1}");
	refused("{\"type\":\"queued\",\"id\":\"a\",\"interaction\":{}} x");
	refused("{\"type\":\"queued\",\"id\":\"a\",\"interaction\":{\"u\":\"}}");
	refused("{\"type\":\"queued\",\"id\":\"a\" \"interaction\":{}}");
	refused("{\"type\":\"que\nued\",\"id\":\"a\",\"interaction\":{}}");
	refused("{\"type\":\"queued\",\"id\":\"a\",\"interaction\":{},}");
}

/* ---- property: random events read as jansson reads them ---- */

static uint64_t	rng = 0x9e3779b97f4a7c15ULL;

static unsigned
rnd(unsigned n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (unsigned)(rng % n);
}

static void
ws(char **p)
{
	static const char *const w[] = { "", "", "", " ", "\n", "\t ", "\r\n" };

	*p += sprintf(*p, "%s", w[rnd(7)]);
}

/* a string: mostly plain, sometimes with what needs escaping */
static void
rstr(char **p, int plain)
{
	static const char *const parts[] = { "a", "5001", "-", "}", "{", "]",
	    "[", ",", ":", " ", "\\\"", "\\\\", "\\u00e9", "\\n" };
	int	 n = 1 + (int)rnd(6), i;

	*p += sprintf(*p, "\"");
	for (i = 0; i < n; i++)
		*p += sprintf(*p, "%s", parts[plain ? rnd(2) : rnd(14)]);
	*p += sprintf(*p, "\"");
}

static void
rvalue(char **p, int depth)
{
	int	i, n;

	switch (depth > 2 ? rnd(3) : rnd(6)) {
	case 0:
		rstr(p, 0);
		break;
	case 1:
		*p += sprintf(*p, "%d", (int)rnd(100000) - 50);
		break;
	case 2:
		*p += sprintf(*p, "%s", rnd(2) ? "true" : "null");
		break;
	case 3:
		*p += sprintf(*p, "%d.%de%d", (int)rnd(100), (int)rnd(10),
		    (int)rnd(3));
		break;
	case 4:
		*p += sprintf(*p, "[");
		for (n = (int)rnd(4), i = 0; i < n; i++) {
			if (i > 0)
				*p += sprintf(*p, ",");
			rvalue(p, depth + 1);
		}
		*p += sprintf(*p, "]");
		break;
	default:
		*p += sprintf(*p, "{");
		for (n = (int)rnd(4), i = 0; i < n; i++) {
			if (i > 0)
				*p += sprintf(*p, ",");
			*p += sprintf(*p, "\"k%d\":", i);
			rvalue(p, depth + 1);
		}
		*p += sprintf(*p, "}");
		break;
	}
}

static void
t_random(void **state)
{
	static const char *const strs[] = { "type", "id", "state", "dn" };
	static const char *const ints[] = { "at", "created", "seq", "agent",
	    "until", "skip", "skipUntil" };
	char		 buf[8192], *p;
	int		 k, i, n, order[13], ok = 0, tmp, j;
	struct rtev	 e;

	for (k = 0; k < 20000; k++) {
		p = buf;
		*p++ = '{';
		for (i = 0; i < 13; i++)
			order[i] = i;
		for (i = 12; i > 0; i--) {
			j = (int)rnd((unsigned)i + 1);
			tmp = order[i];
			order[i] = order[j];
			order[j] = tmp;
		}
		for (n = 0, i = 0; i < 13; i++) {
			if (order[i] >= 2 && rnd(4) == 0)
				continue;	/* type and id always */
			if (n++ > 0)
				*p++ = ',';
			ws(&p);
			if (order[i] < 4) {
				p += sprintf(p, "\"%s\":", strs[order[i]]);
				ws(&p);
				rstr(&p, rnd(8) != 0);
			} else if (order[i] < 11) {
				p += sprintf(p, "\"%s\":", ints[order[i] - 4]);
				ws(&p);
				if (rnd(20) == 0)
					rvalue(&p, 3);
				else
					p += sprintf(p, "%lld", (long long)rnd(
					    1u << 31) * 1000 - 5);
			} else if (order[i] == 11) {
				p += sprintf(p, "\"interaction\":{\"vq\":%d,"
				    "\"userData\":", (int)rnd(1000));
				rvalue(&p, 0);
				p += sprintf(p, "}");
			} else {
				p += sprintf(p, "\"from\":");
				rvalue(&p, 0);
			}
			ws(&p);
		}
		p += sprintf(p, "}");
		if (rtev_parse(buf, strlen(buf), &e) == 0) {
			same(buf);
			ok++;
		}
	}
	/* most of them are read in place */
	assert_true(ok > 20000 / 4);
}

/* cut - the document without its field key, as rtev_doc_cut places it */
static void
cut(const char *doc, const char *key, const char *want)
{
	size_t	from, to;
	char	buf[256];

	if (want == NULL) {
		assert_int_equal(rtev_doc_cut(doc, strlen(doc), key, &from,
		    &to), -1);
		return;
	}
	assert_int_equal(rtev_doc_cut(doc, strlen(doc), key, &from, &to), 0);
	snprintf(buf, sizeof(buf), "%.*s%s", (int)from, doc, doc + to);
	assert_string_equal(buf, want);
}

static void
t_doc_cut(void **state)
{
	cut("{\"id\":\"a\",\"vq\":24,\"x\":1}", "vq", "{\"id\":\"a\",\"x\":1}");
	cut("{\"vq\":24,\"x\":1}", "vq", "{\"x\":1}");
	cut("{\"id\":\"a\",\"vq\":24}", "vq", "{\"id\":\"a\"}");
	cut("{\"vq\":24}", "vq", "{}");
	cut("{ \"id\" : \"a\" , \"vq\" : 24 }", "vq", "{ \"id\" : \"a\"  }");
	/* a nested vq is not the document's */
	cut("{\"u\":{\"vq\":1},\"vq\":2}", "vq", "{\"u\":{\"vq\":1}}");
	cut("{\"u\":{\"vq\":1}}", "vq", NULL);
	cut("{\"id\":\"a\"", "vq", NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_store_events),
		cmocka_unit_test(t_document_span),
		cmocka_unit_test(t_refused),
		cmocka_unit_test(t_random),
		cmocka_unit_test(t_doc_cut),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
