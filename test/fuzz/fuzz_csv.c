/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_csv - libFuzzer over the outbound worker's record reader
 * (workers/outbound/csv.c): the input read as CSV and as NDJSON lines,
 * once whole and once in pieces cut where its first bytes say, must give
 * the same records with the same line numbers, each within its limits;
 * the first record is taken as a header and the others as records of a
 * list, as an import does, and each line made must end the way COPY
 * needs.
 */
#include "../../workers/outbound/csv.c"

#include <stdint.h>

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

struct run {
	unsigned long	 hash;
	size_t		 rows;
	size_t		 last_line;
	struct csv_map	 map;
	int		 header;
	long long	 next;
	struct csv_buf	 out;
};

static void
check(int ok)
{
	if (!ok)
		__builtin_trap();
}

static int
row_cb(const struct csv_row *r, void *arg)
{
	struct run	*u = arg;
	char		 why[300];
	size_t		 i, k, before;

	check(r->line >= u->last_line);
	u->last_line = r->line;
	u->hash = u->hash * 31 + r->line + (r->error != NULL);
	u->rows++;
	check(r->n <= CSV_FIELDS_MAX);
	for (i = 0; i < r->n; i++) {
		check(r->f[i].len <= CSV_FIELD_MAX || u->map.ncols == 0);
		for (k = 0; k < r->f[i].len; k++)
			u->hash = u->hash * 131 + (unsigned char)r->f[i].s[k];
	}
	if (r->error != NULL || u->map.ncols == 0)
		return 0;
	if (!u->header) {
		u->header = csv_header(&u->map, r->f, r->n, why,
		    sizeof(why)) == 0;
		return 0;
	}
	before = u->out.len;
	if (csv_record(&u->map, r->f, r->n, &u->next, &u->out, why,
	    sizeof(why)) == 0)
		check(u->out.len > before && u->out.p[u->out.len - 1] == '\n' &&
		    memchr(u->out.p + before, '\n', u->out.len - before - 1) ==
		    NULL);
	else
		check(u->out.len == before && why[0] != '\0');
	u->out.len = 0;
	return 0;
}

static void
run(enum csv_mode mode, const char *s, size_t size, size_t cut,
    struct run *u, int records)
{
	struct csv	*c = csv_new(mode);
	size_t		 at;

	memset(u, 0, sizeof(*u));
	if (records) {
		u->map.cols = csv_mandatory;
		u->map.ncols = csv_nmandatory;
		u->next = 1;
	}
	for (at = 0; at < size; at += cut)
		check(csv_feed(c, s + at, size - at < cut ? size - at : cut,
		    row_cb, u) == 0);
	check(csv_finish(c, row_cb, u) == 0);
	csv_free(c);
	csv_buf_free(&u->out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char	*s = (const char *)data;
	struct run	 a, b;
	size_t		 cut = size > 0 ? 1 + data[0] % 7 : 1;

	run(CSV_RFC4180, s, size, size + 1, &a, 1);
	run(CSV_RFC4180, s, size, cut, &b, 0);
	check(a.hash == b.hash && a.rows == b.rows);
	run(CSV_LINES, s, size, size + 1, &a, 0);
	run(CSV_LINES, s, size, cut, &b, 0);
	check(a.hash == b.hash && a.rows == b.rows);
	return 0;
}
