/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_routing_expr - libFuzzer over the routing worker's skill
 * expressions (common/expr.c).  The input, as a C string, is
 * compiled against a fixed skill table.  Refused: the message is valid
 * printable UTF-8, the position within the text, and a tiny message
 * buffer gives the same answer.  Compiled: the skill list holds distinct
 * ids of the table, and against a few agents (one drawn from the input)
 * a match is 0 or 1 and depends on the named skills only, the score is -1
 * or a level of a named skill, and an expression that needs a skill
 * never matches an agent without any.
 */
#include "../../common/expr.c"

#include <stdint.h>

int	LLVMFuzzerTestOneInput(const uint8_t *, size_t);

static const char *const names[] = {
	"Sales", "English", "Support", "French", "Tier1", "Tier2", "Tier 1",
	"true", "a", "b", "c", "5", "x\"y",
};
#define NNAMES	((int)NELEM(names))

struct agent {
	int	level[NNAMES];
};

static void
check(int ok)
{
	if (!ok)
		__builtin_trap();
}

static int
skill_cb(const char *name, size_t len, void *arg)
{
	int	 i;

	for (i = 0; i < NNAMES; i++)
		if (strlen(names[i]) == len && memcmp(names[i], name, len) == 0)
			return i;
	return -1;
}

static int
level_cb(int skill, void *arg)
{
	const struct agent	*a = arg;

	check(skill >= 0 && skill < NNAMES);
	return a->level[skill];
}

/* printable - valid UTF-8 without control bytes, NUL-terminated */
static int
printable(const char *s)
{
	size_t	 len = strlen(s), i = 0, n;

	while (i < len) {
		n = u8len((const unsigned char *)s + i, len - i);
		if (n == 0 || (unsigned char)s[i] < 0x20 ||
		    (unsigned char)s[i] == 0x7f)
			return 0;
		i += n;
	}
	return 1;
}

static void
refused(const char *text, const char *err, size_t pos)
{
	char	 tiny[8];
	size_t	 pos2 = 0;

	check(err[0] != '\0' && printable(err));
	check(strlen(err) < REXPR_ERR_MAX - 1);
	check(pos <= strnlen(text, REXPR_TEXT_MAX));
	check(rexpr_compile(text, skill_cb, NULL, tiny, sizeof(tiny),
	    &pos2) == NULL);
	check(pos2 == pos && printable(tiny));
}

/* evaluate - one agent, and the same with every unnamed skill changed */
static void
evaluate(const struct rexpr *e, struct agent *a, const int *named,
    size_t n)
{
	struct agent	 b = *a;
	size_t		 k;
	int		 m, s, i, is_named, seen = 0;

	m = rexpr_match(e, level_cb, a);
	check(m == 0 || m == 1);
	s = rexpr_score(e, level_cb, a);
	if (s != -1) {
		for (k = 0; k < n; k++)
			seen |= a->level[named[k]] == s;
		check(s >= 0 && seen);
	}
	for (i = 0; i < NNAMES; i++) {
		for (k = 0, is_named = 0; k < n; k++)
			is_named |= named[k] == i;
		if (!is_named)
			b.level[i] = b.level[i] < 0 ? 3 : -1;
	}
	check(rexpr_match(e, level_cb, &b) == m);
}

static void
compiled(const struct rexpr *e, const uint8_t *data, size_t size)
{
	static const int	 fixed[][NNAMES] = {
		{ -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1 },
		{ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 },
		{ 10, 5, -1, 7, 1, -1, 3, 0, 2, -1, 9, 4, 6 },
		{ 1000000, -1, 1000001, 1, -1, 2, -1, 3, -1, 4, -1, 5, -1 },
	};
	struct agent	 a;
	const int	*ids;
	size_t		 n, i, k;

	ids = rexpr_skills(e, &n);
	check(n <= REXPR_OPERANDS_MAX && n <= (size_t)NNAMES);
	for (i = 0; i < n; i++) {
		check(ids[i] >= 0 && ids[i] < NNAMES);
		for (k = 0; k < i; k++)
			check(ids[k] != ids[i]);
	}
	for (i = 0; i < NELEM(fixed); i++) {
		memcpy(a.level, fixed[i], sizeof(a.level));
		evaluate(e, &a, ids, n);
		/* fixed[0] has no skill at all. */
		check(i > 0 || !rexpr_needs_skill(e) ||
		    rexpr_match(e, level_cb, &a) == 0);
	}
	for (i = 0; i < (size_t)NNAMES; i++)
		a.level[i] = size > i ? (int)(data[size - 1 - i] % 13) - 2 :
		    -1;
	evaluate(e, &a, ids, n);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rexpr	*e;
	char		*text, err[REXPR_ERR_MAX];
	size_t		 pos = 0;

	/* Exactly the input and its NUL: a read past it is caught. */
	text = xmalloc(size + 1);
	memcpy(text, data, size);
	text[size] = '\0';
	e = rexpr_compile(text, skill_cb, NULL, err, sizeof(err), &pos);
	if (e == NULL)
		refused(text, err, pos);
	else
		compiled(e, data, size);
	rexpr_free(e);
	free(text);
	return 0;
}
