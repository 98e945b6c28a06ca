/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_outbound_csv - the outbound worker's record formats
 * (workers/outbound/csv.c): the streaming CSV reader fed whole and byte
 * by byte, line numbers, quotes, CRLF, limits and recovery after a bad
 * record; NDJSON lines; every column check; headers; records into COPY
 * text lines, with ids drawn and chains defaulted.
 */
#include "../../workers/outbound/csv.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

/* What the reader handed over, as text: "line:f1|f2" or "line!error". */
struct seen {
	char	text[16][256];
	size_t	n;
};

static int
seen_cb(const struct csv_row *r, void *arg)
{
	struct seen	*s = arg;
	char		*t = s->text[s->n++];
	size_t		 i;
	int		 n;

	assert_true(s->n <= 16);
	if (r->error != NULL) {
		snprintf(t, 256, "%zu!%s", r->line, r->error);
		return 0;
	}
	n = snprintf(t, 256, "%zu:", r->line);
	for (i = 0; i < r->n; i++)
		n += snprintf(t + n, 256 - (size_t)n, "%s%.*s", i ? "|" : "",
		    (int)r->f[i].len, r->f[i].s);
	return 0;
}

/* read_all - in one piece and byte by byte: the same records */
static void
read_all(enum csv_mode mode, const char *in, struct seen *s)
{
	struct seen	 t;
	struct csv	*c;
	size_t		 i;

	memset(s, 0, sizeof(*s));
	memset(&t, 0, sizeof(t));
	c = csv_new(mode);
	assert_int_equal(csv_feed(c, in, strlen(in), seen_cb, s), 0);
	assert_int_equal(csv_finish(c, seen_cb, s), 0);
	csv_free(c);
	c = csv_new(mode);
	for (i = 0; in[i] != '\0'; i++)
		assert_int_equal(csv_feed(c, in + i, 1, seen_cb, &t), 0);
	assert_int_equal(csv_finish(c, seen_cb, &t), 0);
	csv_free(c);
	assert_int_equal(s->n, t.n);
	for (i = 0; i < s->n; i++)
		assert_string_equal(s->text[i], t.text[i]);
}

static void
test_csv_basic(void **state)
{
	struct seen	s;

	read_all(CSV_RFC4180, "a,b,c\n1,2,3\r\n\n,,\n4,5,6", &s);
	assert_int_equal(s.n, 4);
	assert_string_equal(s.text[0], "1:a|b|c");
	assert_string_equal(s.text[1], "2:1|2|3");
	assert_string_equal(s.text[2], "4:||");
	assert_string_equal(s.text[3], "5:4|5|6");
}

static void
test_csv_quotes(void **state)
{
	struct seen	s;

	read_all(CSV_RFC4180, "\"x,y\",\"say \"\"hi\"\"\"\n"
	    "\"two\nlines\r\nhere\",z\n\"\"\nlast,\"\"\n", &s);
	assert_int_equal(s.n, 4);
	assert_string_equal(s.text[0], "1:x,y|say \"hi\"");
	assert_string_equal(s.text[1], "2:two\nlines\r\nhere|z");
	assert_string_equal(s.text[2], "5:");
	assert_string_equal(s.text[3], "6:last|");
}

static void
test_csv_errors(void **state)
{
	struct seen	s;

	/* Each bad record is reported on its first line; reading goes on. */
	read_all(CSV_RFC4180, "a\"b,c\nok,1\n\"x\"y,2\n\"multi\nline\"z\n"
	    "fine,3\nbare\rcr\nend,4\n\"open", &s);
	assert_int_equal(s.n, 8);
	assert_string_equal(s.text[0], "1!a quote inside an unquoted field");
	assert_string_equal(s.text[1], "2:ok|1");
	assert_string_equal(s.text[2], "3!a character after a closing quote");
	assert_string_equal(s.text[3], "4!a character after a closing quote");
	assert_string_equal(s.text[4], "6:fine|3");
	assert_string_equal(s.text[5],
	    "7!a carriage return without a line feed");
	assert_string_equal(s.text[6], "8:end|4");
	assert_string_equal(s.text[7], "9!a quoted field is not closed");
}

static void
test_csv_limits(void **state)
{
	struct seen	 s;
	char		*big = xmalloc(CSV_ROW_MAX + 100);
	size_t		 n = 0, i;

	n += (size_t)sprintf(big, "x\n\"");
	for (i = 0; i < CSV_FIELD_MAX + 1; i++)
		big[n++] = i % 100 == 0 ? '\n' : 'a';
	n += (size_t)sprintf(big + n, "\"\ny\n");
	big[n] = '\0';
	read_all(CSV_RFC4180, big, &s);
	assert_int_equal(s.n, 3);
	assert_string_equal(s.text[0], "1:x");
	assert_string_equal(s.text[1], "2!a field longer than 8192 bytes");
	assert_int_equal(atoi(s.text[2]), 2 + 82 + 1);
	assert_string_equal(strchr(s.text[2], ':'), ":y");
	n = 0;
	for (i = 0; i < CSV_FIELDS_MAX + 1; i++)
		big[n++] = ',';
	big[n++] = '\n';
	big[n] = '\0';
	read_all(CSV_RFC4180, big, &s);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.text[0], "1!more than 256 fields");
	free(big);
}

static void
test_lines(void **state)
{
	struct seen	s;

	read_all(CSV_LINES, "{\"a\":1}\r\n\n  \n{\"b\":\n2}\n{\"c\":3}", &s);
	assert_int_equal(s.n, 4);
	assert_string_equal(s.text[0], "1:{\"a\":1}");
	assert_string_equal(s.text[1], "4:{\"b\":");
	assert_string_equal(s.text[2], "5:2}");
	assert_string_equal(s.text[3], "6:{\"c\":3}");
}

/* ok - the value passes, as want */
static void
ok(const struct csv_col *c, const char *in, const char *want)
{
	char	out[CSV_FIELD_MAX + 16], why[200];
	size_t	n;

	assert_int_equal(csv_value(c, in, strlen(in), out, &n, why,
	    sizeof(why)), 0);
	out[n] = '\0';
	assert_string_equal(out, want);
}

/* bad - the value is refused, saying why */
static void
bad(const struct csv_col *c, const char *in, const char *why_has)
{
	char	out[CSV_FIELD_MAX + 16], why[200];
	size_t	n;

	assert_int_equal(csv_value(c, in, strlen(in), out, &n, why,
	    sizeof(why)), -1);
	assert_non_null(strstr(why, why_has));
}

static const struct csv_col *
col(const char *name)
{
	int	i = csv_reserved(name);

	assert_true(i >= 0 && (size_t)i < csv_nmandatory);
	return &csv_mandatory[i];
}

static void
test_values(void **state)
{
	struct csv_col	vc = { "note", CT_VARCHAR, 3, CK_NONE, 0, NULL, 1 };
	struct csv_col	fc = { "score", CT_FLOAT, 0, CK_NONE, 0, NULL, 1 };
	struct csv_col	dc = { "due", CT_DATETIME, 0, CK_NONE, 0, NULL, 1 };
	char		out[64], why[200];
	size_t		n = 0;

	ok(col("record_id"), "+42", "42");
	bad(col("record_id"), "0", "out of range");
	bad(col("record_id"), "2147483648", "out of range");
	bad(col("record_id"), "12a", "not an integer");
	bad(col("record_id"), "-", "not an integer");
	ok(col("contact_info"), "+1 (555) 010-99.12", "+15550109912");
	bad(col("contact_info"), "555-CALL", "not a phone number");
	bad(col("contact_info"), "1+2", "not a phone number");
	bad(col("contact_info"), "()", "needs digits");
	ok(col("record_type"), "7", "7");
	bad(col("record_type"), "8", "out of range (0 to 7)");
	bad(col("record_status"), "10", "(0 to 9)");
	bad(col("contact_info_type"), "12", "(0 to 11)");
	ok(col("call_result"), "53", "53");
	bad(col("call_result"), "54", "(0 to 53)");
	bad(col("call_result"), "-1", "out of range");
	ok(col("daily_from"), "86399", "86399");
	bad(col("daily_till"), "86400", "(0 to 86399)");
	bad(col("tz_dbid"), "0", "out of range");
	ok(col("agent_id"), "ag\xc3\xa9nt", "ag\xc3\xa9nt");
	bad(col("agent_id"), "\xff", "UTF-8");
	ok(&vc, "\xc3\xa9\xc3\xa9\xc3\xa9", "\xc3\xa9\xc3\xa9\xc3\xa9");
	bad(&vc, "abcd", "longer than 3 characters");
	ok(&fc, "-1.5e3", "-1.5e3");
	bad(&fc, "nan", "not a number");
	bad(&fc, "1e999", "not a number");
	ok(&dc, "2024-02-29", "2024-02-29+00");
	ok(&dc, "2024-05-01T09:30:00Z", "2024-05-01T09:30:00Z");
	ok(&dc, "2024-05-01 09:30:00.250+02:00", "2024-05-01 09:30:00.250+02:00");
	ok(&dc, "2024-05-01T09:30", "2024-05-01T09:30+00");
	bad(&dc, "2023-02-29", "ISO 8601");
	bad(&dc, "2024-13-01", "ISO 8601");
	bad(&dc, "2024-05-01T24:00", "ISO 8601");
	bad(&dc, "yesterday", "ISO 8601");
	bad(&dc, "2024-05-01T09:30:00+2", "ISO 8601");
	/* Empty: the default, an error, or NULL. */
	assert_int_equal(csv_value(col("record_status"), "", 0, out, &n, why,
	    sizeof(why)), 0);
	assert_true(n == 1 && out[0] == '1');
	assert_int_equal(csv_value(col("contact_info"), "", 0, out, &n, why,
	    sizeof(why)), -1);
	assert_int_equal(csv_value(col("call_time"), "", 0, out, &n, why,
	    sizeof(why)), 1);
	assert_int_equal(csv_reserved("lease_until"), (int)csv_nmandatory);
	assert_int_equal(csv_reserved("customer_id"), -1);
}

static int
tz_ok(long long dbid, void *arg)
{
	return dbid == 7;
}

/* a list of the mandatory columns and one custom field */
static struct csv_col	cols[32];

static void
map_init(struct csv_map *m)
{
	memcpy(cols, csv_mandatory, csv_nmandatory * sizeof(*cols));
	cols[csv_nmandatory] = (struct csv_col){ "customer_id", CT_VARCHAR,
	    16, CK_NONE, 0, NULL, 1 };
	memset(m, 0, sizeof(*m));
	m->cols = cols;
	m->ncols = csv_nmandatory + 1;
	m->tz_ok = tz_ok;
}

static void
test_header(void **state)
{
	struct csv_field	f[3] = { { "contact_info", 12 },
				    { "CUSTOMER_ID", 11 }, { "lease_owner", 11 } };
	struct csv_map		m;
	char			why[200];

	map_init(&m);
	assert_int_equal(csv_header(&m, f, 2, why, sizeof(why)), 0);
	assert_int_equal(m.nat, 2);
	assert_int_equal(m.at[0], 1);
	assert_int_equal(m.at[1], (int)csv_nmandatory);
	assert_int_equal(csv_header(&m, f, 3, why, sizeof(why)), -1);
	assert_string_equal(why, "unknown column \"lease_owner\"");
	f[1] = f[0];
	assert_int_equal(csv_header(&m, f, 2, why, sizeof(why)), -1);
	assert_string_equal(why, "column \"contact_info\" is there twice");
}

/* rj - csv_record_json of a string (len 0: its length) */
static int
rj(const struct csv_map *m, const char *s, size_t len, long long *next,
    struct csv_buf *out, char *why, size_t whylen)
{
	return csv_record_json(m, s, len ? len : strlen(s), next, out, why,
	    whylen);
}

static void
test_record(void **state)
{
	struct csv_field	h[3] = { { "contact_info", 12 },
				    { "customer_id", 11 }, { "tz_dbid", 7 } };
	struct csv_field	r[3] = { { "555 01", 6 }, { "a\tb\\c", 5 },
				    { "7", 1 } };
	struct csv_buf		out = { 0 };
	struct csv_map		m;
	long long		next = 100;
	char			why[200];
	const char		*want = "100\t55501\t1\t2\t1\t28\t0\t\\N\t\\N\t"
				    "\\N\t\\N\t7\t\\N\t\\N\t100\t0\t\\N\t\\N\t"
				    "\\N\t\\N\t\\N\ta\\tb\\\\c\n";

	map_init(&m);
	assert_int_equal(csv_header(&m, h, 3, why, sizeof(why)), 0);
	assert_int_equal(csv_record(&m, r, 3, &next, &out, why, sizeof(why)),
	    0);
	assert_int_equal(next, 101);
	assert_int_equal(out.len, strlen(want));
	assert_memory_equal(out.p, want, out.len);
	r[2].s = "8";
	assert_int_equal(csv_record(&m, r, 3, &next, &out, why, sizeof(why)),
	    -1);
	assert_string_equal(why, "tz_dbid: no TimeZone with dbid 8");
	assert_int_equal(out.len, strlen(want));	/* unchanged */
	assert_int_equal(csv_record(&m, r, 2, &next, &out, why, sizeof(why)),
	    -1);
	assert_string_equal(why, "2 fields where the header has 3");
	out.len = 0;
	assert_int_equal(rj(&m, "{\"record_id\": 5, \"contact_info\""
	    ": \"+44\", \"chain_n\": null, \"customer_id\": 12}", 0, &next,
	    &out, why, sizeof(why)), 0);
	assert_int_equal(next, 101);
	assert_true(out.len > 12 && memcmp(out.p, "5\t+44\t", 6) == 0);
	assert_non_null(strstr(out.p, "\t5\t0\t"));	/* chain_id, chain_n */
	assert_int_equal(rj(&m, "{\"phone\": 1}", 0, &next,
	    &out, why, sizeof(why)), -1);
	assert_string_equal(why, "unknown column \"phone\"");
	assert_int_equal(rj(&m, "{\"contact_info\": true}", 0,
	    &next, &out, why, sizeof(why)), -1);
	assert_string_equal(why, "contact_info: must be a string, a number "
	    "or null");
	assert_int_equal(rj(&m, "[1]", 0, &next, &out, why,
	    sizeof(why)), -1);
	assert_int_equal(rj(&m, "{\"contact_info\": \"5\", "
	    "\"record_type\": 9}", 0, &next, &out, why, sizeof(why)), -1);
	assert_string_equal(why, "record_type: 9 is out of range (0 to 7)");
	assert_int_equal(rj(&m, "{", 0, &next, &out, why,
	    sizeof(why)), -1);
	assert_non_null(strstr(why, "malformed JSON"));
	csv_buf_free(&out);
}

static void
test_copy_text(void **state)
{
	struct csv_buf	b = { 0 };
	char		s[] = "a\\\\b\\tc\\nd\\N";

	csv_copy_text(&b, "x\ty\nz\\", 6);
	assert_int_equal(b.len, 9);
	assert_memory_equal(b.p, "x\\ty\\nz\\\\", 9);
	b.len = 0;
	csv_copy_text(&b, NULL, 0);
	assert_memory_equal(b.p, "\\N", 2);
	assert_int_equal(csv_copy_unescape(s, strlen(s)), 8);
	assert_memory_equal(s, "a\\b\tc\ndN", 8);
	b.len = 0;
	csv_quote(&b, "plain", 5);
	csv_quote(&b, "a,\"b\"", 5);
	csv_quote(&b, "", 0);
	assert_int_equal(b.len, 5 + 9 + 2);
	assert_memory_equal(b.p, "plain\"a,\"\"b\"\"\"\"\"", b.len);
	csv_buf_free(&b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_csv_basic),
		cmocka_unit_test(test_csv_quotes),
		cmocka_unit_test(test_csv_errors),
		cmocka_unit_test(test_csv_limits),
		cmocka_unit_test(test_lines),
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_header),
		cmocka_unit_test(test_record),
		cmocka_unit_test(test_copy_text),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
