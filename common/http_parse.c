/* SPDX-License-Identifier: Apache-2.0 */
/*
 * http_parse - the pure half of common/http.c: a request's head parsed
 * from bytes (request line, headers, how its body is framed), the sniff
 * that tells HTTP from the session protocol on a shared port, and reading
 * a parsed request (headers, the query, the path) and status texts.
 * Nothing here holds state or does I/O: fuzz_http drives it directly.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http.h"
#include "http_int.h"
#include "util.h"

/* is_tchar - RFC 9110 token characters */
static int
is_tchar(int c)
{
	return isalnum(c) || (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* find_eol - end of the line at p: index of '\n', or -1 */
static ssize_t
find_eol(const char *p, size_t len)
{
	const char	*nl = memchr(p, '\n', len);

	return nl == NULL ? -1 : nl - p;
}

/* parse_request_line - "METHOD SP target SP HTTP/1.x" */
static int
parse_request_line(const char *p, size_t n, struct http_request *r)
{
	const char	*sp1, *sp2;
	size_t		 i;

	if (n > 0 && p[n - 1] == '\r')
		n--;
	if ((sp1 = memchr(p, ' ', n)) == NULL || sp1 == p)
		return 400;
	for (i = 0; p + i < sp1; i++)
		if (!is_tchar((unsigned char)p[i]))
			return 400;
	if ((sp2 = memchr(sp1 + 1, ' ', n - (size_t)(sp1 + 1 - p))) == NULL ||
	    sp2 == sp1 + 1)
		return 400;
	r->method = p;
	r->method_len = (size_t)(sp1 - p);
	r->target = sp1 + 1;
	r->target_len = (size_t)(sp2 - r->target);
	if (r->target[0] != '/' && !(r->target_len == 1 && r->target[0] == '*'))
		return 400;
	for (i = 0; i < r->target_len; i++)
		if ((unsigned char)r->target[i] <= 0x20 ||
		    (unsigned char)r->target[i] >= 0x7f)
			return 400;
	r->path_len = r->target_len;
	for (i = 0; i < r->target_len; i++)
		if (r->target[i] == '?') {
			r->path_len = i;
			break;
		}
	if ((size_t)(p + n - (sp2 + 1)) != 8 ||
	    memcmp(sp2 + 1, "HTTP/1.", 7) != 0)
		return (size_t)(p + n - (sp2 + 1)) >= 5 &&
		    memcmp(sp2 + 1, "HTTP/", 5) == 0 ? 505 : 400;
	if (sp2[8] != '0' && sp2[8] != '1')
		return 505;
	r->minor = sp2[8] - '0';
	return 0;
}

/* parse_header - "name: value" with optional whitespace around value */
static int
parse_header(const char *p, size_t n, struct http_request *r)
{
	struct http_header	*h;
	const char		*colon, *v, *e;
	size_t			 i;

	if (n > 0 && p[n - 1] == '\r')
		n--;
	if (r->nheaders == HTTP_HEADERS_MAX)
		return 431;
	if ((colon = memchr(p, ':', n)) == NULL || colon == p)
		return 400;
	for (i = 0; p + i < colon; i++)
		if (!is_tchar((unsigned char)p[i]))
			return 400;
	for (v = colon + 1, e = p + n; v < e && (*v == ' ' || *v == '\t'); v++)
		;
	while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
		e--;
	for (i = 0; v + i < e; i++)
		if (v[i] == '\0' || v[i] == '\r')
			return 400;
	h = &r->headers[r->nheaders++];
	h->name = p;
	h->name_len = (size_t)(colon - p);
	h->value = v;
	h->value_len = (size_t)(e - v);
	return 0;
}

/* header_has_token - does a comma-separated header value contain tok? */
static int
header_has_token(const char *v, size_t len, const char *tok)
{
	size_t	tl = strlen(tok), i = 0, s;

	while (i < len) {
		while (i < len && (v[i] == ' ' || v[i] == ','))
			i++;
		s = i;
		while (i < len && v[i] != ',' && v[i] != ' ')
			i++;
		if (i - s == tl && strncasecmp(v + s, tok, tl) == 0)
			return 1;
	}
	return 0;
}

/*
 * chunked_only - a Transfer-Encoding header: one, saying "chunked", on
 * HTTP/1.1, without Content-Length (which could be read otherwise by
 * someone in between: request smuggling)
 */
static int
chunked_only(struct http_request *r, const char *v, size_t len)
{
	int	k, n = 0;

	for (k = 0; k < r->nheaders; k++)
		if (r->headers[k].name_len == 17 && strncasecmp(
		    r->headers[k].name, "Transfer-Encoding", 17) == 0)
			n++;
	if (n > 1 || len != 7 || strncasecmp(v, "chunked", 7) != 0)
		return 501;
	if (r->minor == 0 || http_header(r, "Content-Length", &len) != NULL)
		return 400;
	r->chunked = 1;
	return 0;
}

/* body_length - check Content-Length and Transfer-Encoding */
static int
body_length(struct http_request *r, size_t max_body, size_t *out)
{
	const char	*v;
	size_t		 len, i, cl = 0;
	int		 seen = 0, k;

	*out = 0;
	if ((v = http_header(r, "Transfer-Encoding", &len)) != NULL)
		return chunked_only(r, v, len);
	for (k = 0; k < r->nheaders; k++) {
		struct http_header *h = &r->headers[k];

		if (h->name_len != 14 ||
		    strncasecmp(h->name, "Content-Length", 14) != 0)
			continue;
		v = h->value;
		if (h->value_len == 0 || h->value_len > 15)
			return 400;
		for (len = 0, i = 0; i < h->value_len; i++) {
			if (!isdigit((unsigned char)v[i]))
				return 400;
			len = len * 10 + (size_t)(v[i] - '0');
		}
		if (seen && len != cl)
			return 400;
		seen = 1;
		cl = len;
	}
	if (cl > max_body)
		return 413;
	*out = cl;
	return 0;
}

/* http_parse_request - parse one request at the start of buf */
enum http_parse_rc
http_parse_request(const char *buf, size_t len, size_t max_body,
    struct http_request *r, size_t *used, int *status)
{
	const char	*v;
	size_t		 off = 0, body, vlen;
	ssize_t		 eol;
	int		 st;

	memset(r, 0, sizeof(*r));
	/* Tolerate empty lines before a request (RFC 9112 2.2). */
	while (off < len && (buf[off] == '\r' || buf[off] == '\n'))
		off++;
	if ((eol = find_eol(buf + off, len - off)) == -1)
		goto more;
	if ((st = parse_request_line(buf + off, (size_t)eol, r)) != 0)
		goto error;
	off += (size_t)eol + 1;
	for (;;) {
		if ((eol = find_eol(buf + off, len - off)) == -1)
			goto more;
		if (eol == 0 || (eol == 1 && buf[off] == '\r'))
			break;
		if (buf[off] == ' ' || buf[off] == '\t') {
			st = 400;	/* obsolete line folding */
			goto error;
		}
		if ((st = parse_header(buf + off, (size_t)eol, r)) != 0)
			goto error;
		off += (size_t)eol + 1;
		if (off > HTTP_HEADER_BYTES_MAX) {
			st = 431;
			goto error;
		}
	}
	off += (size_t)eol + 1;
	/* The same limit whether the header section came in one piece or not. */
	if (off > HTTP_HEADER_BYTES_MAX) {
		st = 431;
		goto error;
	}
	if ((st = body_length(r, max_body, &body)) != 0)
		goto error;
	v = http_header(r, "Connection", &vlen);
	r->keep_alive = r->minor == 1 ? !(v && header_has_token(v, vlen,
	    "close")) : (v && header_has_token(v, vlen, "keep-alive"));
	r->body_len = body;		/* known before the body is here */
	if (r->chunked || len - off < body) {
		*used = off + body;	/* what the whole request needs */
		return HTTP_PARSE_MORE;
	}
	r->body = buf + off;
	*used = off + body;
	return HTTP_PARSE_OK;
more:
	*used = 0;		/* the headers are not all here */
	if (len > HTTP_HEADER_BYTES_MAX) {
		*status = 431;
		return HTTP_PARSE_ERROR;
	}
	return HTTP_PARSE_MORE;
error:
	*status = st;
	return HTTP_PARSE_ERROR;
}

/* http_sniff - does a connection's first data begin an HTTP request? */
enum http_sniff
http_sniff(const void *buf, size_t len)
{
	static const char *const methods[] = { "GET ", "HEAD ", "POST ",
	    "PUT ", "PATCH ", "DELETE ", "OPTIONS " };
	size_t	i, n;
	int	more = 0;

	if (len == 0)
		return HTTP_SNIFF_MORE;
	for (i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
		n = strlen(methods[i]);
		if (memcmp(buf, methods[i], len < n ? len : n) != 0)
			continue;
		if (len >= n)
			return HTTP_SNIFF_HTTP;
		more = 1;
	}
	return more ? HTTP_SNIFF_MORE : HTTP_SNIFF_OTHER;
}

/* http_request_copy - see http.h; pointers are rebased into the copy */
struct http_request *
http_request_copy(const struct http_request *r)
{
	struct http_request	*c;
	size_t			 body = r->body != NULL ? r->body_len : 0;
	size_t			 n = sizeof(*c) + r->method_len +
				    r->target_len + body + 3;
	char			*p;
	int			 i;

	for (i = 0; i < r->nheaders; i++)
		n += r->headers[i].name_len + r->headers[i].value_len + 2;
	c = xmalloc(n);
	*c = *r;
	p = (char *)(c + 1);
#define COPY(dst, src, len) do {					\
	if ((len) > 0)							\
		memcpy(p, (src), (len));				\
	p[len] = '\0';							\
	(dst) = p;							\
	p += (len) + 1;							\
} while (0)
	COPY(c->method, r->method, r->method_len);
	COPY(c->target, r->target, r->target_len);
	if (r->body != NULL)
		COPY(c->body, r->body, r->body_len);
	for (i = 0; i < r->nheaders; i++) {
		COPY(c->headers[i].name, r->headers[i].name,
		    r->headers[i].name_len);
		COPY(c->headers[i].value, r->headers[i].value,
		    r->headers[i].value_len);
	}
#undef COPY
	return c;
}

/* http_header - the first header called name */
const char *
http_header(const struct http_request *r, const char *name, size_t *len)
{
	size_t	n = strlen(name);
	int	i;

	for (i = 0; i < r->nheaders; i++)
		if (r->headers[i].name_len == n &&
		    strncasecmp(r->headers[i].name, name, n) == 0) {
			*len = r->headers[i].value_len;
			return r->headers[i].value;
		}
	return NULL;
}

int
http_method_is(const struct http_request *r, const char *m)
{
	return r->method_len == strlen(m) && memcmp(r->method, m,
	    r->method_len) == 0;
}

/* decode - percent-decode s[0..n) into out; -1 if malformed or too long */
static int
decode(const char *s, size_t n, char *out, size_t outlen)
{
	size_t	i, o = 0;
	int	hi, lo;

	for (i = 0; i < n; i++) {
		if (o + 1 >= outlen)
			return -1;
		if (s[i] == '+')
			out[o++] = ' ';
		else if (s[i] != '%')
			out[o++] = s[i];
		else {
			if (i + 2 >= n)
				return -1;
			if ((hi = http_hexval((unsigned char)s[i + 1])) < 0 ||
			    (lo = http_hexval((unsigned char)s[i + 2])) < 0 ||
			    (hi == 0 && lo == 0))
				return -1;
			out[o++] = (char)(hi << 4 | lo);
			i += 2;
		}
	}
	out[o] = '\0';
	return 0;
}

/* http_query - one query parameter of the request target */
int
http_query(const struct http_request *r, const char *name, char *out,
    size_t outlen)
{
	const char	*q = r->target + r->path_len, *end = r->target +
			    r->target_len, *amp, *eq;
	size_t		 nl = strlen(name);

	if (q == end)
		return 0;
	for (q++; q < end; q = amp + 1) {
		if ((amp = memchr(q, '&', (size_t)(end - q))) == NULL)
			amp = end;
		eq = memchr(q, '=', (size_t)(amp - q));
		if ((size_t)((eq ? eq : amp) - q) == nl &&
		    memcmp(q, name, nl) == 0) {
			if (eq == NULL)
				return decode("", 0, out, outlen) == 0 ? 1 : -1;
			return decode(eq + 1, (size_t)(amp - eq - 1), out,
			    outlen) == 0 ? 1 : -1;
		}
	}
	return 0;
}

/* http_query_next - the parameter at *pos, and advance */
int
http_query_next(const struct http_request *r, size_t *pos, char *key,
    size_t keylen, char *val, size_t vallen)
{
	const char	*q = r->target + r->path_len + 1, *end = r->target +
			    r->target_len, *amp, *eq;

	if (r->path_len == r->target_len)
		return 0;
	for (q += *pos; q < end && *q == '&'; q++)
		;
	if (q >= end)
		return 0;
	if ((amp = memchr(q, '&', (size_t)(end - q))) == NULL)
		amp = end;
	*pos = (size_t)(amp - (r->target + r->path_len + 1));
	if ((eq = memchr(q, '=', (size_t)(amp - q))) == NULL)
		eq = amp;
	if (decode(q, (size_t)(eq - q), key, keylen) == -1 ||
	    decode(eq == amp ? eq : eq + 1, eq == amp ? 0 :
	    (size_t)(amp - eq - 1), val, vallen) == -1)
		return -1;
	return 1;
}

int
http_path_is(const struct http_request *r, const char *p)
{
	return r->path_len == strlen(p) && memcmp(r->target, p,
	    r->path_len) == 0;
}

const char *
http_status_text(int status)
{
	switch (status) {
	case 200: return "OK";
	case 201: return "Created";
	case 204: return "No Content";
	case 304: return "Not Modified";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 410: return "Gone";
	case 411: return "Length Required";
	case 412: return "Precondition Failed";
	case 413: return "Content Too Large";
	case 422: return "Unprocessable Content";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 503: return "Service Unavailable";
	case 505: return "HTTP Version Not Supported";
	default: return "Unknown";
	}
}
