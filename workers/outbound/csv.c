/* SPDX-License-Identifier: Apache-2.0 */
/*
 * csv - the calling lists' record formats, pure: what import.c, dnc.c and
 * records.c read from a client before anything reaches PostgreSQL.
 *
 *   the reader   RFC 4180 CSV fed in any pieces: quoted fields, "" for a
 *                quote, line ends (LF or CRLF) inside quotes, limits on a
 *                field and a record; each record knows the physical line
 *                it starts on; a bad record is reported and skipped, and
 *                reading goes on.  The same machine splits NDJSON lines.
 *   the columns  the mandatory columns of docs/outbound.md and the check
 *                of one value against its column (integers, enumerations
 *                in range, phone numbers, times of day, lengths, ISO 8601)
 *   COPY         one record as one line of COPY's text format, every
 *                column given (defaults filled in here)
 *
 * It touches nothing but its arguments; the cache (TimeZone dbids) is
 * asked through a callback.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "csv.h"
#include "util.h"

enum state {
	S_START = 0,	/* a field begins */
	S_UNQ,		/* in an unquoted field */
	S_Q,		/* in a quoted field */
	S_QQ,		/* a quote in a quoted field: the end, or "" */
	S_CR,		/* a CR outside quotes: LF must follow */
	S_SKIP,		/* a bad record: up to its end */
};

struct csv {
	enum csv_mode	 mode;
	enum state	 st;
	char		*buf;		/* the record's fields, end to end */
	size_t		 len;
	size_t		 off[CSV_FIELDS_MAX];
	size_t		 flen[CSV_FIELDS_MAX];
	size_t		 nf;
	size_t		 fstart;	/* where the current field starts */
	size_t		 line;		/* the physical line being read */
	size_t		 rline;		/* the line the record started on */
	int		 inrec;		/* a byte of the record was seen */
	const char	*error;
	int		 skip_quotes;	/* skipping: quotes still pair up */
	int		 skip_in;	/* skipping: inside quotes */
};

/* ---- the reader ---- */

struct csv *
csv_new(enum csv_mode mode)
{
	struct csv	*c = xcalloc(1, sizeof(*c));

	c->mode = mode;
	c->buf = xmalloc(CSV_ROW_MAX + 1);
	c->line = 1;
	return c;
}

void
csv_free(struct csv *c)
{
	if (c == NULL)
		return;
	free(c->buf);
	free(c);
}

size_t
csv_lines(const struct csv *c)
{
	return c->line;
}

/* reset - ready for the next record */
static void
reset(struct csv *c)
{
	c->st = S_START;
	c->len = c->nf = c->fstart = 0;
	c->inrec = 0;
	c->error = NULL;
	c->skip_quotes = c->skip_in = 0;
}

/* emit - the record (or its error) to cb, then the next one */
static int
emit(struct csv *c, csv_row_cb *cb, void *arg)
{
	struct csv_field	 f[CSV_FIELDS_MAX];
	struct csv_row		 r;
	size_t			 i;
	int			 rc;

	for (i = 0; i < c->nf; i++) {
		f[i].s = c->buf + c->off[i];
		f[i].len = c->flen[i];
	}
	r.line = c->rline;
	r.f = f;
	r.n = c->error != NULL ? 0 : c->nf;
	r.error = c->error;
	rc = cb(&r, arg);
	reset(c);
	return rc;
}

/* fail - the record is bad: skip to its end */
static void
fail(struct csv *c, const char *why, int quotes, int in)
{
	c->error = why;
	c->st = S_SKIP;
	c->skip_quotes = quotes;
	c->skip_in = in;
}

/* put - one byte of the current field */
static void
put(struct csv *c, char ch)
{
	if (c->len >= CSV_ROW_MAX)
		fail(c, "a record longer than 65536 bytes", 1,
		    c->st == S_Q);
	else if (c->len - c->fstart >= CSV_FIELD_MAX)
		fail(c, "a field longer than 8192 bytes", 1, c->st == S_Q);
	else
		c->buf[c->len++] = ch;
}

/* field_end - the current field is whole */
static void
field_end(struct csv *c)
{
	if (c->nf == CSV_FIELDS_MAX) {
		fail(c, "more than 256 fields", 0, 0);
		return;
	}
	c->off[c->nf] = c->fstart;
	c->flen[c->nf] = c->len - c->fstart;
	c->nf++;
	c->fstart = c->len;
	c->st = S_START;
}

/* record_end - a line end outside quotes; blank lines are no record */
static int
record_end(struct csv *c, csv_row_cb *cb, void *arg)
{
	if (!c->inrec) {
		reset(c);
		return 0;
	}
	field_end(c);
	if (c->error != NULL)
		c->st = S_SKIP;
	return emit(c, cb, arg);
}

/* step - one byte of CSV; -1 when cb asked to stop */
static int
step(struct csv *c, char ch, csv_row_cb *cb, void *arg)
{
	if (c->st != S_SKIP && !c->inrec && ch != '\n' && ch != '\r') {
		c->inrec = 1;
		c->rline = c->line;
	}
	switch (c->st) {
	case S_START:
		if (ch == '"')
			c->st = S_Q;
		else if (ch == ',')
			field_end(c);
		else if (ch == '\n')
			return record_end(c, cb, arg);
		else if (ch == '\r')
			c->st = S_CR;
		else {
			c->st = S_UNQ;
			put(c, ch);
		}
		break;
	case S_UNQ:
		if (ch == ',')
			field_end(c);
		else if (ch == '\n')
			return record_end(c, cb, arg);
		else if (ch == '\r')
			c->st = S_CR;
		else if (ch == '"')
			fail(c, "a quote inside an unquoted field", 0, 0);
		else
			put(c, ch);
		break;
	case S_Q:
		if (ch == '"')
			c->st = S_QQ;
		else
			put(c, ch);
		break;
	case S_QQ:
		if (ch == '"') {
			c->st = S_Q;
			put(c, ch);
		} else if (ch == ',')
			field_end(c);
		else if (ch == '\n')
			return record_end(c, cb, arg);
		else if (ch == '\r')
			c->st = S_CR;
		else
			fail(c, "a character after a closing quote", 0, 0);
		break;
	case S_CR:
		if (ch == '\n')
			return record_end(c, cb, arg);
		fail(c, "a carriage return without a line feed", 0, 0);
		break;
	case S_SKIP:
		if (c->skip_quotes && ch == '"')
			c->skip_in = !c->skip_in;
		else if (ch == '\n' && !c->skip_in)
			return emit(c, cb, arg);
		break;
	}
	return 0;
}

/* line_end - an NDJSON line is whole: hand it over unless blank */
static int
line_end(struct csv *c, csv_row_cb *cb, void *arg)
{
	size_t	i;

	if (c->st == S_SKIP)
		return emit(c, cb, arg);
	if (c->len > 0 && c->buf[c->len - 1] == '\r')
		c->len--;
	for (i = 0; i < c->len; i++)
		if (!isspace((unsigned char)c->buf[i]))
			break;
	if (i == c->len) {
		reset(c);
		return 0;
	}
	c->off[0] = 0;
	c->flen[0] = c->len;
	c->nf = 1;
	return emit(c, cb, arg);
}

/* step_line - one byte of NDJSON */
static int
step_line(struct csv *c, char ch, csv_row_cb *cb, void *arg)
{
	if (ch == '\n')
		return line_end(c, cb, arg);
	if (c->st == S_SKIP)
		return 0;
	if (!c->inrec) {
		c->inrec = 1;
		c->rline = c->line;
	}
	if (c->len >= CSV_ROW_MAX)
		fail(c, "a line longer than 65536 bytes", 0, 0);
	else
		c->buf[c->len++] = ch;
	return 0;
}

int
csv_feed(struct csv *c, const char *p, size_t n, csv_row_cb *cb, void *arg)
{
	size_t	i;
	int	rc;

	for (i = 0; i < n; i++) {
		if (c->mode == CSV_LINES)
			rc = step_line(c, p[i], cb, arg);
		else
			rc = step(c, p[i], cb, arg);
		if (p[i] == '\n')
			c->line++;
		if (rc != 0)
			return -1;
	}
	return 0;
}

int
csv_finish(struct csv *c, csv_row_cb *cb, void *arg)
{
	if (c->mode == CSV_LINES)
		return c->inrec ? line_end(c, cb, arg) : 0;
	if (!c->inrec && c->st != S_SKIP)
		return 0;
	if (c->st == S_Q) {
		c->error = "a quoted field is not closed";
		c->st = S_SKIP;
	}
	if (c->st == S_SKIP)
		return emit(c, cb, arg);
	return record_end(c, cb, arg);
}

/* ---- columns ---- */

const struct csv_col csv_mandatory[] = {
	{ "record_id", CT_INT, 0, CK_ID, 1, NULL, 0 },
	{ "contact_info", CT_VARCHAR, 128, CK_PHONE, 1, NULL, 0 },
	{ "contact_info_type", CT_INT, 0, CK_CONTACT_TYPE, 1, "1", 0 },
	{ "record_type", CT_INT, 0, CK_RECORD_TYPE, 1, "2", 0 },
	{ "record_status", CT_INT, 0, CK_RECORD_STATUS, 1, "1", 0 },
	{ "call_result", CT_INT, 0, CK_CALL_RESULT, 1, "28", 0 },
	{ "attempt", CT_INT, 0, CK_NONNEG, 1, "0", 0 },
	{ "dial_sched_time", CT_INT, 0, CK_NONNEG, 0, NULL, 0 },
	{ "call_time", CT_INT, 0, CK_NONNEG, 0, NULL, 0 },
	{ "daily_from", CT_INT, 0, CK_TIME_OF_DAY, 0, NULL, 0 },
	{ "daily_till", CT_INT, 0, CK_TIME_OF_DAY, 0, NULL, 0 },
	{ "tz_dbid", CT_INT, 0, CK_TZ, 0, NULL, 0 },
	{ "campaign_id", CT_INT, 0, CK_NONNEG, 0, NULL, 0 },
	{ "agent_id", CT_VARCHAR, 32, CK_NONE, 0, NULL, 0 },
	{ "chain_id", CT_INT, 0, CK_ID, 1, NULL, 0 },
	{ "chain_n", CT_INT, 0, CK_NONNEG, 1, "0", 0 },
	{ "group_id", CT_INT, 0, CK_NONNEG, 0, NULL, 0 },
	{ "app_id", CT_INT, 0, CK_NONNEG, 0, NULL, 0 },
	{ "treatments", CT_VARCHAR, 255, CK_NONE, 0, NULL, 0 },
	{ "media_ref", CT_INT, 0, CK_NONE, 0, NULL, 0 },
	{ "switch_id", CT_INT, 0, CK_NONNEG, 0, NULL, 0 },
};
const size_t csv_nmandatory = sizeof(csv_mandatory) / sizeof(csv_mandatory[0]);

const char *
csv_sql_type(const struct csv_col *c, char *buf, size_t len)
{
	switch (c->type) {
	case CT_INT:
		return "integer";
	case CT_FLOAT:
		return "double precision";
	case CT_DATETIME:
		return "timestamptz";
	case CT_CHAR:
		snprintf(buf, len, "char(%d)", c->length);
		return buf;
	case CT_VARCHAR:
		break;
	}
	snprintf(buf, len, "varchar(%d)", c->length);
	return buf;
}

int
csv_reserved(const char *name)
{
	size_t	i;

	for (i = 0; i < csv_nmandatory; i++)
		if (strcmp(csv_mandatory[i].name, name) == 0)
			return (int)i;
	if (strcmp(name, "lease_owner") == 0 ||
	    strcmp(name, "lease_until") == 0)
		return (int)csv_nmandatory;
	return -1;
}

/* utf8_chars - characters in valid UTF-8 without NUL, else -1 */
static long
utf8_chars(const unsigned char *s, size_t len)
{
	size_t	i = 0, k, n;
	long	chars = 0;

	while (i < len) {
		if (s[i] == 0)
			return -1;
		if (s[i] < 0x80)
			n = 1;
		else if ((s[i] & 0xe0) == 0xc0 && s[i] >= 0xc2)
			n = 2;
		else if ((s[i] & 0xf0) == 0xe0)
			n = 3;
		else if ((s[i] & 0xf8) == 0xf0 && s[i] <= 0xf4)
			n = 4;
		else
			return -1;
		if (i + n > len)
			return -1;
		for (k = 1; k < n; k++)
			if ((s[i + k] & 0xc0) != 0x80)
				return -1;
		if ((n == 3 && s[i] == 0xe0 && s[i + 1] < 0xa0) ||
		    (n == 3 && s[i] == 0xed && s[i + 1] >= 0xa0) ||
		    (n == 4 && s[i] == 0xf0 && s[i + 1] < 0x90) ||
		    (n == 4 && s[i] == 0xf4 && s[i + 1] >= 0x90))
			return -1;
		i += n;
		chars++;
	}
	return chars;
}

/* int_range - the bounds a check puts on an integer column */
static void
int_range(enum csv_check k, long long *lo, long long *hi)
{
	*lo = -2147483648LL;
	*hi = 2147483647LL;
	switch (k) {
	case CK_ID:
	case CK_TZ:
		*lo = 1;
		break;
	case CK_NONNEG:
		*lo = 0;
		break;
	case CK_CONTACT_TYPE:
		*lo = 0, *hi = 11;
		break;
	case CK_RECORD_TYPE:
		*lo = 0, *hi = 7;
		break;
	case CK_RECORD_STATUS:
		*lo = 0, *hi = 9;
		break;
	case CK_CALL_RESULT:
		*lo = 0, *hi = 53;
		break;
	case CK_TIME_OF_DAY:
		*lo = 0, *hi = 86399;
		break;
	default:
		break;
	}
}

/* check_int - a decimal integer in the column's range */
static int
check_int(const struct csv_col *c, const char *s, size_t len, char *out,
    size_t *outlen, char *why, size_t whylen)
{
	long long	v = 0, lo, hi;
	size_t		i = 0;
	int		neg = 0;

	if (i < len && (s[i] == '-' || s[i] == '+'))
		neg = s[i++] == '-';
	if (i == len || len - i > 12) {
		snprintf(why, whylen, "not an integer");
		return -1;
	}
	for (; i < len; i++) {
		if (s[i] < '0' || s[i] > '9') {
			snprintf(why, whylen, "not an integer");
			return -1;
		}
		v = v * 10 + (s[i] - '0');
	}
	if (neg)
		v = -v;
	int_range(c->check, &lo, &hi);
	if (v < lo || v > hi) {
		snprintf(why, whylen, "%lld is out of range (%lld to %lld)", v,
		    lo, hi);
		return -1;
	}
	*outlen = (size_t)snprintf(out, 24, "%lld", v);
	return 0;
}

/* check_float - a finite decimal number */
static int
check_float(const char *s, size_t len, char *out, size_t *outlen, char *why,
    size_t whylen)
{
	char	*end;
	double	 d;
	size_t	 i;

	for (i = 0; i < len; i++)
		if (strchr("0123456789+-.eE", s[i]) == NULL || s[i] == '\0')
			break;
	memcpy(out, s, len);
	out[len] = '\0';
	errno = 0;
	d = strtod(out, &end);
	if (i != len || len == 0 || *end != '\0' || !isfinite(d) ||
	    errno == ERANGE) {
		snprintf(why, whylen, "not a number");
		return -1;
	}
	*outlen = len;
	return 0;
}

/* check_phone - digits, an optional leading +; separators dropped */
static int
check_phone(const char *s, size_t len, char *out, size_t *outlen, char *why,
    size_t whylen)
{
	size_t	i, n = 0, digits = 0;

	for (i = 0; i < len; i++) {
		if (s[i] >= '0' && s[i] <= '9') {
			out[n++] = s[i];
			digits++;
		} else if (s[i] == '+' && n == 0)
			out[n++] = '+';
		else if (strchr(" -.()", s[i]) == NULL || s[i] == '\0') {
			snprintf(why, whylen, "not a phone number (digits and "
			    "an optional leading +; spaces, -, ., ( and ) are "
			    "dropped)");
			return -1;
		}
	}
	if (digits == 0 || n > 128) {
		snprintf(why, whylen, digits == 0 ? "a phone number needs "
		    "digits" : "a phone number longer than 128 characters");
		return -1;
	}
	*outlen = n;
	return 0;
}

/* digits - n decimal digits at s into *v */
static int
digits(const char *s, size_t len, size_t at, size_t n, int *v)
{
	size_t	i;

	if (at + n > len)
		return -1;
	*v = 0;
	for (i = at; i < at + n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		*v = *v * 10 + (s[i] - '0');
	}
	return 0;
}

/* iso_date - YYYY-MM-DD at s, a real day */
static int
iso_date(const char *s, size_t len)
{
	static const int	mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30,
				    31, 30, 31 };
	int			y, m, d, leap;

	if (digits(s, len, 0, 4, &y) || len < 10 || s[4] != '-' ||
	    digits(s, len, 5, 2, &m) || s[7] != '-' ||
	    digits(s, len, 8, 2, &d) || y < 1 || m < 1 || m > 12 || d < 1 ||
	    d > mdays[m - 1])
		return -1;
	leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	return m == 2 && d == 29 && !leap ? -1 : 0;
}

/* iso_zone - Z, or +HH, +HHMM, +HH:MM (or -) at s + i up to len */
static int
iso_zone(const char *s, size_t len, size_t i)
{
	int	h, m = 0;

	if (i == len)
		return 1;		/* none */
	if (s[i] == 'Z' || s[i] == 'z')
		return i + 1 == len ? 0 : -1;
	if ((s[i] != '+' && s[i] != '-') || digits(s, len, i + 1, 2, &h))
		return -1;
	i += 3;
	if (i < len && s[i] == ':')
		i++;
	if (i < len && digits(s, len, i, 2, &m) == 0)
		i += 2;
	return i == len && h <= 14 && m <= 59 ? 0 : -1;
}

/* check_datetime - ISO 8601: a date, a time, a zone (UTC when none) */
static int
check_datetime(const char *s, size_t len, char *out, size_t *outlen,
    char *why, size_t whylen)
{
	size_t	i = 10;
	int	h, mi, sec, z;

	if (iso_date(s, len) == -1)
		goto bad;
	if (i < len && (s[i] == 'T' || s[i] == 't' || s[i] == ' ')) {
		if (digits(s, len, i + 1, 2, &h) || i + 3 >= len ||
		    s[i + 3] != ':' || digits(s, len, i + 4, 2, &mi) ||
		    h > 23 || mi > 59)
			goto bad;
		i += 6;
		if (i < len && s[i] == ':') {
			if (digits(s, len, i + 1, 2, &sec) || sec > 60)
				goto bad;
			i += 3;
			if (i < len && (s[i] == '.' || s[i] == ',')) {
				if (++i == len || s[i] < '0' || s[i] > '9')
					goto bad;
				while (i < len && s[i] >= '0' && s[i] <= '9')
					i++;
			}
		}
	}
	if ((z = iso_zone(s, len, i)) == -1)
		goto bad;
	memcpy(out, s, len);
	if (i > 10 && out[10] == ',')
		out[10] = 'T';
	*outlen = len;
	if (z == 1) {
		memcpy(out + len, "+00", 3);
		*outlen += 3;
	}
	return 0;
bad:
	snprintf(why, whylen, "not an ISO 8601 date and time "
	    "(2024-05-01T09:30:00Z)");
	return -1;
}

int
csv_value(const struct csv_col *c, const char *s, size_t len, char *out,
    size_t *outlen, char *why, size_t whylen)
{
	long	chars;

	if (len == 0) {
		if (c->def != NULL) {
			*outlen = strlen(c->def);
			memcpy(out, c->def, *outlen);
			return 0;
		}
		if (c->notnull) {
			snprintf(why, whylen, "a value is required");
			return -1;
		}
		return 1;
	}
	switch (c->type) {
	case CT_INT:
		return check_int(c, s, len, out, outlen, why, whylen);
	case CT_FLOAT:
		return check_float(s, len, out, outlen, why, whylen);
	case CT_DATETIME:
		return check_datetime(s, len, out, outlen, why, whylen);
	case CT_VARCHAR:
	case CT_CHAR:
		break;
	}
	if ((chars = utf8_chars((const unsigned char *)s, len)) < 0) {
		snprintf(why, whylen, "not valid UTF-8 text");
		return -1;
	}
	if (c->check == CK_PHONE)
		return check_phone(s, len, out, outlen, why, whylen);
	if (chars > c->length) {
		snprintf(why, whylen, "longer than %d characters", c->length);
		return -1;
	}
	memcpy(out, s, len);
	*outlen = len;
	return 0;
}

int
csv_json_text(const json_t *v, char *buf, size_t buflen, const char **s,
    size_t *len)
{
	int	n;

	switch (json_typeof(v)) {
	case JSON_NULL:
		*s = NULL;
		*len = 0;
		return 0;
	case JSON_STRING:
		*s = json_string_value(v);
		*len = json_string_length(v);
		return 0;
	case JSON_INTEGER:
		n = snprintf(buf, buflen, "%" JSON_INTEGER_FORMAT,
		    json_integer_value(v));
		break;
	case JSON_REAL:
		n = snprintf(buf, buflen, "%.17g", json_real_value(v));
		break;
	default:
		return -1;
	}
	*s = buf;
	*len = (size_t)n;
	return 0;
}

/* ---- records into COPY ---- */

void
csv_buf_add(struct csv_buf *b, const void *p, size_t n)
{
	if (b->len + n > b->cap) {
		b->cap = b->cap ? b->cap : 4096;
		while (b->len + n > b->cap)
			b->cap *= 2;
		b->p = xrealloc(b->p, b->cap);
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

void
csv_buf_free(struct csv_buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

void
csv_copy_text(struct csv_buf *b, const char *s, size_t len)
{
	size_t	i, from = 0;
	char	esc[2] = { '\\', 0 };

	if (s == NULL) {
		csv_buf_add(b, "\\N", 2);
		return;
	}
	for (i = 0; i < len; i++) {
		switch (s[i]) {
		case '\\':
			esc[1] = '\\';
			break;
		case '\n':
			esc[1] = 'n';
			break;
		case '\r':
			esc[1] = 'r';
			break;
		case '\t':
			esc[1] = 't';
			break;
		default:
			continue;
		}
		csv_buf_add(b, s + from, i - from);
		csv_buf_add(b, esc, 2);
		from = i + 1;
	}
	csv_buf_add(b, s + from, len - from);
}

size_t
csv_copy_unescape(char *s, size_t len)
{
	static const char	from[] = "bfnrtv", to[] = "\b\f\n\r\t\v";
	const char		*p;
	size_t			 i, n = 0;

	for (i = 0; i < len; i++) {
		if (s[i] != '\\' || i + 1 == len) {
			s[n++] = s[i];
			continue;
		}
		i++;
		if ((p = strchr(from, s[i])) != NULL && s[i] != '\0')
			s[n++] = to[p - from];
		else
			s[n++] = s[i];
	}
	return n;
}

void
csv_quote(struct csv_buf *b, const char *s, size_t len)
{
	size_t	i, from = 0;

	if (len > 0 && memchr(s, '"', len) == NULL && memchr(s, ',', len) ==
	    NULL && memchr(s, '\n', len) == NULL && memchr(s, '\r', len) ==
	    NULL && s[0] != ' ' && s[len - 1] != ' ') {
		csv_buf_add(b, s, len);
		return;
	}
	csv_buf_add(b, "\"", 1);
	for (i = 0; i < len; i++)
		if (s[i] == '"') {
			csv_buf_add(b, s + from, i + 1 - from);
			csv_buf_add(b, "\"", 1);
			from = i + 1;
		}
	csv_buf_add(b, s + from, len - from);
	csv_buf_add(b, "\"", 1);
}

/* col_find - a column by name (case-insensitive), or -1 */
static int
col_find(const struct csv_map *m, const char *s, size_t len)
{
	size_t	i;

	for (i = 0; i < m->ncols; i++)
		if (strlen(m->cols[i].name) == len &&
		    strncasecmp(m->cols[i].name, s, len) == 0)
			return (int)i;
	return -1;
}

/* show - a name from a client, printable and short, for a message */
static void
show(char *dst, size_t dlen, const char *s, size_t len)
{
	size_t	i, n = 0;

	for (i = 0; i < len && n + 4 < dlen; i++)
		dst[n++] = (unsigned char)s[i] >= 0x20 && s[i] != 0x7f ?
		    s[i] : '?';
	if (i < len)
		dst[n++] = '.', dst[n++] = '.', dst[n++] = '.';
	dst[n] = '\0';
}

int
csv_header(struct csv_map *m, const struct csv_field *f, size_t n,
    char *why, size_t whylen)
{
	char	name[80];
	size_t	i, k;
	int	at;

	m->nat = 0;
	for (i = 0; i < n; i++) {
		show(name, sizeof(name), f[i].s, f[i].len);
		if ((at = col_find(m, f[i].s, f[i].len)) == -1) {
			snprintf(why, whylen, "unknown column \"%s\"", name);
			return -1;
		}
		for (k = 0; k < i; k++)
			if (m->at[k] == at) {
				snprintf(why, whylen, "column \"%s\" is there "
				    "twice", name);
				return -1;
			}
		m->at[m->nat++] = at;
	}
	return 0;
}

/*
 * emit_record - the line of every column from the values found (NULL and
 * absent alike take the column's default)
 */
static int
emit_record(const struct csv_map *m, const char **vals, const size_t *lens,
    long long *next_id, struct csv_buf *out, char *why, size_t whylen)
{
	char		 v[CSV_FIELD_MAX + 16], msg[200], rid[24] = "";
	size_t		 i, vlen, start = out->len;
	int		 rc, auto_id = 0;

	for (i = 0; i < m->ncols; i++) {
		if (i > 0)
			csv_buf_add(out, "\t", 1);
		if (i == CSV_COL_RECORD_ID && lens[i] == 0) {
			vlen = (size_t)snprintf(v, sizeof(v), "%lld", *next_id);
			auto_id = 1;
			rc = 0;
		} else if (i == CSV_COL_CHAIN_ID && lens[i] == 0) {
			vlen = strlen(rid);
			memcpy(v, rid, vlen + 1);
			rc = 0;
		} else if ((rc = csv_value(&m->cols[i], vals[i], lens[i], v,
		    &vlen, msg, sizeof(msg))) == -1)
			goto bad;
		if (rc == 0 && m->cols[i].check == CK_TZ && m->tz_ok != NULL &&
		    (v[vlen] = '\0', !m->tz_ok(atoll(v), m->tz_arg))) {
			snprintf(msg, sizeof(msg), "no TimeZone with dbid %.20s",
			    v);
			goto bad;
		}
		if (i == CSV_COL_RECORD_ID)
			snprintf(rid, sizeof(rid), "%.*s", (int)vlen, v);
		csv_copy_text(out, rc == 1 ? NULL : v, vlen);
	}
	csv_buf_add(out, "\n", 1);
	if (auto_id)
		(*next_id)++;
	return 0;
bad:
	out->len = start;
	snprintf(why, whylen, "%s: %s", m->cols[i].name, msg);
	return -1;
}

int
csv_record(const struct csv_map *m, const struct csv_field *f, size_t n,
    long long *next_id, struct csv_buf *out, char *why, size_t whylen)
{
	const char	*vals[CSV_FIELDS_MAX];
	size_t		 lens[CSV_FIELDS_MAX], i;

	if (n != m->nat) {
		snprintf(why, whylen, "%zu fields where the header has %zu", n,
		    m->nat);
		return -1;
	}
	for (i = 0; i < m->ncols; i++) {
		vals[i] = "";
		lens[i] = 0;
	}
	for (i = 0; i < n; i++) {
		vals[m->at[i]] = f[i].s;
		lens[m->at[i]] = f[i].len;
	}
	return emit_record(m, vals, lens, next_id, out, why, whylen);
}

/* json_values - an NDJSON object's members into vals, by column */
static int
json_values(const struct csv_map *m, const json_t *obj, const char **vals,
    size_t *lens, char (*bufs)[32], char *why, size_t whylen)
{
	const char	*k;
	const json_t	*v;
	char		 name[80];
	int		 at;

	json_object_foreach((json_t *)obj, k, v) {
		show(name, sizeof(name), k, strlen(k));
		if ((at = col_find(m, k, strlen(k))) == -1) {
			snprintf(why, whylen, "unknown column \"%s\"", name);
			return -1;
		}
		if (csv_json_text(v, bufs[at], 32, &vals[at], &lens[at]) ==
		    -1) {
			snprintf(why, whylen, "%s: must be a string, a number "
			    "or null", m->cols[at].name);
			return -1;
		}
		if (vals[at] == NULL)
			vals[at] = "";
	}
	return 0;
}

int
csv_record_json(const struct csv_map *m, const char *line, size_t len,
    long long *next_id, struct csv_buf *out, char *why, size_t whylen)
{
	const char	*vals[CSV_FIELDS_MAX];
	size_t		 lens[CSV_FIELDS_MAX], i;
	char		 bufs[CSV_FIELDS_MAX][32];
	json_error_t	 e;
	json_t		*j;
	int		 rc = -1;

	j = json_loadb(line, len, JSON_REJECT_DUPLICATES, &e);
	if (j == NULL) {
		snprintf(why, whylen, "malformed JSON at column %d: %s",
		    e.column, e.text);
		return -1;
	}
	if (!json_is_object(j)) {
		snprintf(why, whylen, "a line must be a JSON object");
		goto out;
	}
	for (i = 0; i < m->ncols; i++) {
		vals[i] = "";
		lens[i] = 0;
	}
	if (json_values(m, j, vals, lens, bufs, why, whylen) == 0)
		rc = emit_record(m, vals, lens, next_id, out, why, whylen);
out:
	json_decref(j);
	return rc;
}
