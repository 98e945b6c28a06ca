/* SPDX-License-Identifier: Apache-2.0 */
/*
 * csv - the calling lists' record formats, pure (no socket, no database,
 * no cache): a streaming reader of RFC 4180 CSV and of NDJSON lines, the
 * columns of a list (docs/outbound.md) with the check of one value
 * against its column, and the making of one COPY text line from a record.
 */
#ifndef TENANTD_OB_CSV_H
#define TENANTD_OB_CSV_H

#include <stddef.h>

#include <jansson.h>

#define CSV_FIELDS_MAX		256	/* fields in a record */
#define CSV_FIELD_MAX		8192	/* bytes in a field */
#define CSV_ROW_MAX		65536	/* bytes in a record, or an NDJSON line */
#define CSV_NAME_MAX		64

/* ---- the reader ---- */

struct csv_field {
	const char	*s;
	size_t		 len;
};

/* One record: its fields, or why it is bad (error not NULL). */
struct csv_row {
	size_t			 line;	/* the physical line it starts on */
	const struct csv_field	*f;
	size_t			 n;
	const char		*error;
};

/* Return 0 to go on, -1 to stop the feed (csv_feed then returns -1). */
typedef int	 csv_row_cb(const struct csv_row *, void *);

enum csv_mode {
	CSV_RFC4180 = 0,	/* fields; quotes, "" and newlines in quotes */
	CSV_LINES,		/* NDJSON: each non-blank line one field */
};

struct csv;
struct csv	*csv_new(enum csv_mode);
void		 csv_free(struct csv *);
/* Feed bytes in any pieces; rows are handed to cb as they complete. */
int		 csv_feed(struct csv *, const char *, size_t, csv_row_cb *,
		    void *);
/* The end of the input: the last record if it had no line end. */
int		 csv_finish(struct csv *, csv_row_cb *, void *);
/* Lines seen so far (the last one counted even without its end). */
size_t		 csv_lines(const struct csv *);

/* ---- columns ---- */

enum csv_type {
	CT_INT = 0,
	CT_VARCHAR,
	CT_CHAR,
	CT_FLOAT,
	CT_DATETIME,
};

enum csv_check {
	CK_NONE = 0,
	CK_ID,			/* 1 .. 2^31-1 */
	CK_NONNEG,		/* 0 .. 2^31-1 */
	CK_PHONE,
	CK_CONTACT_TYPE,	/* 0 .. 11 */
	CK_RECORD_TYPE,		/* 0 .. 7 */
	CK_RECORD_STATUS,	/* 0 .. 9 */
	CK_CALL_RESULT,		/* 0 .. 53 */
	CK_TIME_OF_DAY,		/* 0 .. 86399 */
	CK_TZ,			/* a TimeZone dbid: the caller checks it exists */
};

struct csv_col {
	char		 name[CSV_NAME_MAX];
	enum csv_type	 type;
	int		 length;	/* varchar, char */
	enum csv_check	 check;
	int		 notnull;	/* an empty value takes def, else error */
	const char	*def;		/* the default as text, or NULL */
	int		 custom;	/* a Format's field */
};

/* The mandatory columns, in their order, with lease_* left out. */
extern const struct csv_col	 csv_mandatory[];
extern const size_t		 csv_nmandatory;
#define CSV_COL_RECORD_ID	0
#define CSV_COL_CHAIN_ID	14

/* The SQL type of a column: "varchar(128)", "integer", ... into buf. */
const char	*csv_sql_type(const struct csv_col *, char *buf, size_t);
/* A mandatory column (or lease_*) named so: its index, else -1. */
int		 csv_reserved(const char *name);

/*
 * Check s (len bytes) against c.  0: out (at least len + 8 bytes) holds
 * the value as PostgreSQL must get it, *outlen its length: a phone
 * without its separators, a datetime with its offset (UTC when none).
 * -1: why says what is wrong, without the column's name.
 */
int		 csv_value(const struct csv_col *, const char *s, size_t len,
		    char *out, size_t *outlen, char *why, size_t whylen);
/* A JSON value as the text csv_value takes (*s is NULL for null). */
int		 csv_json_text(const json_t *, char *buf, size_t buflen,
		    const char **s, size_t *len);

/* ---- records into COPY ---- */

struct csv_buf {
	char		*p;
	size_t		 len;
	size_t		 cap;
};
void		 csv_buf_add(struct csv_buf *, const void *, size_t);
void		 csv_buf_free(struct csv_buf *);

/* tz_ok(dbid, arg): 1 when a TimeZone with that dbid exists. */
typedef int	 csv_tz_cb(long long, void *);

/*
 * A body's columns: the list's (every one a client sees, in table order),
 * and, for a CSV body, where each field of its header goes.
 */
struct csv_map {
	const struct csv_col	*cols;
	size_t			 ncols;
	int			 at[CSV_FIELDS_MAX];	/* header field: column */
	size_t			 nat;
	csv_tz_cb		*tz_ok;
	void			*tz_arg;
};

/* Map a CSV header row onto the columns; -1 with why (naming it). */
int		 csv_header(struct csv_map *, const struct csv_field *,
		    size_t n, char *why, size_t whylen);
/*
 * One record (CSV fields in header order, or an NDJSON object) as one
 * COPY text line of every column, appended to out.  A record without a
 * record_id gets *next_id, and *next_id grows; a chain_id left out is
 * the record_id.  -1 with why (naming the column), out unchanged.
 */
int		 csv_record(const struct csv_map *, const struct csv_field *,
		    size_t n, long long *next_id, struct csv_buf *out,
		    char *why, size_t whylen);
int		 csv_record_json(const struct csv_map *, const char *line,
		    size_t len, long long *next_id, struct csv_buf *out,
		    char *why, size_t whylen);
/* s as COPY text, appended to out ("\N" for NULL). */
void		 csv_copy_text(struct csv_buf *, const char *s, size_t len);
/* Undo COPY text escapes in place; the new length. */
size_t		 csv_copy_unescape(char *s, size_t len);
/* s as a CSV field, quoted when it must be. */
void		 csv_quote(struct csv_buf *, const char *s, size_t len);

#endif
