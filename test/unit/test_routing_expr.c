/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_routing_expr - the routing worker's skill expressions
 * (common/expr.c): each operand and comparison, the rule that an
 * agent lacking a skill satisfies no comparison, precedence and
 * parentheses, spellings (&&, ||, ==, whitespace, quoted and UTF-8
 * names, true), every error with its position, the limits, the score,
 * the skill list, messages that stay printable UTF-8; and a property
 * test: random expressions printed, compiled, and evaluated over random
 * agents against a reference evaluator of the tree they were printed from
 * (a fixed seed, so a failure repeats).
 */
#include "../../common/expr.c"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

/* The skill table: an id is the index. */
static const char *const skill_names[] = {
	"Sales",		/* 0 */
	"English",		/* 1 */
	"Support",		/* 2 */
	"French",		/* 3 */
	"Tier1",		/* 4 */
	"Tier2",		/* 5 */
	"Tier 1",		/* 6 */
	"true",			/* 7: only when quoted */
	"say \"hi\"",		/* 8 */
	"back\\slash",		/* 9 */
	"Espa\xc3\xb1ol",	/* 10 */
	"a.b-c_d",		/* 11 */
	"5",			/* 12 */
};
#define NSKILLS	((int)NELEM(skill_names))

struct agent {
	int	level[NSKILLS];		/* -1: lacks it */
};

static int
skill_cb(const char *name, size_t len, void *arg)
{
	int	 i;

	for (i = 0; i < NSKILLS; i++)
		if (strlen(skill_names[i]) == len &&
		    memcmp(skill_names[i], name, len) == 0)
			return i;
	return -1;
}

static int
level_cb(int skill, void *arg)
{
	const struct agent	*a = arg;

	assert_true(skill >= 0 && skill < NSKILLS);
	return a->level[skill];
}

/* agent - from "Sales:5,Tier 1:2" (an empty spec: no skill at all) */
static struct agent
agent(const char *spec)
{
	struct agent	 a;
	const char	*s = spec, *colon;
	char		*end;
	int		 i, id;

	for (i = 0; i < NSKILLS; i++)
		a.level[i] = -1;
	while (*s != '\0') {
		colon = strchr(s, ':');
		assert_non_null(colon);
		id = skill_cb(s, (size_t)(colon - s), NULL);
		assert_true(id >= 0);
		a.level[id] = (int)strtol(colon + 1, &end, 10);
		s = *end == ',' ? end + 1 : end;
	}
	return a;
}

/* compile - text that must compile */
static struct rexpr *
compile(const char *text)
{
	struct rexpr	*e;
	char		 err[REXPR_ERR_MAX];
	size_t		 pos;

	e = rexpr_compile(text, skill_cb, NULL, err, sizeof(err), &pos);
	if (e == NULL)
		fail_msg("\"%s\": %s", text, err);
	return e;
}

/* match - whether the agent spec matches text */
static int
match(const char *text, const char *spec)
{
	struct rexpr	*e = compile(text);
	struct agent	 a = agent(spec);
	int		 m;

	m = rexpr_match(e, level_cb, &a);
	rexpr_free(e);
	assert_true(m == 0 || m == 1);
	return m;
}

static int
score(const char *text, const char *spec)
{
	struct rexpr	*e = compile(text);
	struct agent	 a = agent(spec);
	int		 s;

	s = rexpr_score(e, level_cb, &a);
	rexpr_free(e);
	return s;
}

/* bad - text that must not compile, with this message and position */
static void
bad(const char *text, const char *msg, size_t want)
{
	struct rexpr	*e;
	char		 err[REXPR_ERR_MAX];
	size_t		 pos = 9999;

	e = rexpr_compile(text, skill_cb, NULL, err, sizeof(err), &pos);
	if (e != NULL)
		fail_msg("\"%s\" compiled", text);
	if (strcmp(err, msg) != 0 || pos != want)
		fail_msg("\"%s\": \"%s\" at %zu, want \"%s\" at %zu", text,
		    err, pos, msg, want);
}

/* utf8_ok - the whole string is valid UTF-8 without control bytes */
static int
utf8_ok(const char *s)
{
	size_t	 len = strlen(s), i = 0, n;

	while (i < len) {
		n = u8len((const unsigned char *)s + i, len - i);
		if (n == 0 || (unsigned char)s[i] < 0x20)
			return 0;
		i += n;
	}
	return 1;
}

/* ---- operands and comparisons ---- */

static void
test_has(void **state)
{
	assert_int_equal(match("Sales", "Sales:5"), 1);
	assert_int_equal(match("Sales", "Sales:0"), 1);
	assert_int_equal(match("Sales", ""), 0);
	assert_int_equal(match("Sales", "English:3,Support:0"), 0);
	assert_int_equal(match("!Sales", ""), 1);
	assert_int_equal(match("!Sales", "Sales:0"), 0);
}

/* Each comparison with 5, for levels 4, 5, 6 and an agent lacking it. */
static void
test_comparisons(void **state)
{
	static const struct {
		const char	*text;
		int		 want[4];
	} t[] = {
		{ "Sales=5",	{ 0, 1, 0, 0 } },
		{ "Sales==5",	{ 0, 1, 0, 0 } },
		{ "Sales!=5",	{ 1, 0, 1, 0 } },
		{ "Sales<5",	{ 1, 0, 0, 0 } },
		{ "Sales<=5",	{ 1, 1, 0, 0 } },
		{ "Sales>5",	{ 0, 0, 1, 0 } },
		{ "Sales>=5",	{ 0, 1, 1, 0 } },
	};
	static const char *const agents[4] = {
		"Sales:4", "Sales:5", "Sales:6", "English:5,Support:1",
	};
	size_t	 i, k;

	for (i = 0; i < NELEM(t); i++)
		for (k = 0; k < 4; k++)
			if (match(t[i].text, agents[k]) != t[i].want[k])
				fail_msg("%s for %s: want %d", t[i].text,
				    agents[k], t[i].want[k]);
}

/* The edges of the level range, and levels the callback gives past it. */
static void
test_level_edges(void **state)
{
	assert_int_equal(match("Sales<0", "Sales:0"), 0);
	assert_int_equal(match("Sales<0", ""), 0);
	assert_int_equal(match("Sales<=0", "Sales:0"), 1);
	assert_int_equal(match("Sales>=0", "Sales:0"), 1);
	assert_int_equal(match("Sales>=0", ""), 0);
	assert_int_equal(match("Sales!=0", "Sales:0"), 0);
	assert_int_equal(match("Sales!=0", "Sales:1"), 1);
	assert_int_equal(match("Sales=0", "Sales:0"), 1);
	assert_int_equal(match("Sales=1000000", "Sales:1000000"), 1);
	assert_int_equal(match("Sales>1000000", "Sales:1000000"), 0);
	assert_int_equal(match("Sales>1000000", "Sales:1000001"), 1);
	assert_int_equal(match("Sales>=000007", "Sales:7"), 1);
	/* Any negative level is "lacks it". */
	assert_int_equal(match("Sales<3", "Sales:-5"), 0);
	assert_int_equal(match("Sales", "Sales:-2"), 0);
	assert_int_equal(score("Sales", "Sales:-2"), -1);
	/* Lacking it, the comparison is false, so its negation true. */
	assert_int_equal(match("!Sales<3", ""), 1);
	assert_int_equal(match("!(Sales!=3)", ""), 1);
	assert_int_equal(match("!Sales>3", "Sales:4"), 0);
	assert_int_equal(match("!Sales>3", "Sales:3"), 1);
}

/* ---- operators ---- */

/*
 * TRUTH(e) - e's truth table over x, y, z (whether the agent has Sales,
 * English, Support): bit n for the agent n stands for.
 */
#define TRUTH(e) ({							\
	unsigned	 m_ = 0, n_, x, y, z;				\
									\
	for (n_ = 0; n_ < 8; n_++) {					\
		x = n_ & 1, y = (n_ >> 1) & 1, z = (n_ >> 2) & 1;	\
		(void)x, (void)y, (void)z;				\
		m_ |= (unsigned)!!(e) << n_;				\
	}								\
	m_;								\
})

static void
test_precedence(void **state)
{
	const struct {
		const char	*text;
		unsigned	 want;
	} t[] = {
		{ "Sales | English & Support",	TRUTH(x || (y && z)) },
		{ "Sales & English | Support",	TRUTH((x && y) || z) },
		{ "(Sales | English) & Support", TRUTH((x || y) && z) },
		{ "Sales & (English | Support)", TRUTH(x && (y || z)) },
		{ "!Sales & English",		TRUTH(!x && y) },
		{ "!Sales | English",		TRUTH(!x || y) },
		{ "!(Sales | English)",		TRUTH(!(x || y)) },
		{ "!(Sales & English) | Support", TRUTH(!(x && y) || z) },
		{ "!Sales & !English | Support", TRUTH((!x && !y) || z) },
		{ "!!Sales",			TRUTH(x) },
		{ "!!!Sales",			TRUTH(!x) },
		{ "Sales & !English & !!Support", TRUTH(x && !y && z) },
		{ "Sales | English | Support",	TRUTH(x || y || z) },
		{ "((Sales))",			TRUTH(x) },
		{ "true",			TRUTH(1) },
		{ "!true",			TRUTH(0) },
		{ "true & Support",		TRUTH(z) },
		{ "!true | Sales",		TRUTH(x) },
		{ "Sales | true & !Sales",	TRUTH(1) },
	};
	struct rexpr	*e;
	struct agent	 a;
	size_t		 i;
	unsigned	 n;

	for (i = 0; i < NELEM(t); i++) {
		e = compile(t[i].text);
		for (n = 0; n < 8; n++) {
			a = agent("");
			a.level[0] = n & 1 ? 2 : -1;
			a.level[1] = n & 2 ? 0 : -1;
			a.level[2] = n & 4 ? 9 : -1;
			if ((unsigned)rexpr_match(e, level_cb, &a) !=
			    (t[i].want >> n & 1))
				fail_msg("%s with Sales %u English %u "
				    "Support %u: want %u", t[i].text, n & 1,
				    n >> 1 & 1, n >> 2 & 1, t[i].want >> n & 1);
		}
		rexpr_free(e);
	}
}

/* Other spellings give the same program's answers. */
static void
test_spellings(void **state)
{
	static const char *const same[][2] = {
		{ "Sales&&English||Support", "Sales & English | Support" },
		{ "Sales>=5&English>3|Support",
		  "Sales >= 5 & English > 3 | Support" },
		{ " \t\r\n Sales\n>=\t5\r\n&\nEnglish ", "Sales>=5&English" },
		{ "Sales==3", "Sales = 3" },
		{ "!(Tier1 | Tier2) & (French >= 7)",
		  "!Tier1&!Tier2&French>=7" },
		{ "\"Sales\" > 2", "Sales>2" },
		{ "! ! Sales", "Sales" },
		{ "!!(Sales|English)", "(Sales||English)" },
	};
	static const char *const agents[] = {
		"", "Sales:5", "Sales:5,English:4", "English:4,Support:0",
		"Sales:3", "French:7", "French:7,Tier2:1", "Tier1:0",
		"French:6", "Sales:5,English:3,Support:0", "Sales:2,English:9",
	};
	size_t	 i, k;

	for (i = 0; i < NELEM(same); i++)
		for (k = 0; k < NELEM(agents); k++)
			if (match(same[i][0], agents[k]) !=
			    match(same[i][1], agents[k]))
				fail_msg("\"%s\" and \"%s\" differ for %s",
				    same[i][0], same[i][1], agents[k]);
	assert_int_equal(match("Sales >= 5 & English > 3 | Support",
	    "Sales:5,English:4"), 1);
	assert_int_equal(match("Sales >= 5 & English > 3 | Support",
	    "Sales:5,English:3"), 0);
	assert_int_equal(match("Sales >= 5 & English > 3 | Support",
	    "Support:0"), 1);
	assert_int_equal(match("!(Tier1 | Tier2) & (French >= 7)",
	    "French:7"), 1);
	assert_int_equal(match("!(Tier1 | Tier2) & (French >= 7)",
	    "French:9,Tier1:0"), 0);
}

static void
test_names(void **state)
{
	assert_int_equal(match("\"Tier 1\">2", "Tier 1:3"), 1);
	assert_int_equal(match("\"Tier 1\">2", "Tier1:3"), 0);
	assert_int_equal(match("Tier1>2", "Tier 1:3"), 0);
	assert_int_equal(match("\"true\"", ""), 0);
	assert_int_equal(match("\"true\"", "true:0"), 1);
	assert_int_equal(match("\"true\" = 4", "true:4"), 1);
	assert_int_equal(match("true", ""), 1);
	assert_int_equal(match("\"say \\\"hi\\\"\"", "say \"hi\":1"), 1);
	assert_int_equal(match("\"back\\\\slash\">=1", "back\\slash:1"), 1);
	assert_int_equal(match("Espa\xc3\xb1ol>=3", "Espa\xc3\xb1ol:3"), 1);
	assert_int_equal(match("\"Espa\xc3\xb1ol\"", "Espa\xc3\xb1ol:0"), 1);
	assert_int_equal(match("a.b-c_d=2", "a.b-c_d:2"), 1);
	assert_int_equal(match("5>=5", "5:5"), 1);
	assert_int_equal(match("5>=5", "5:4"), 0);
	assert_int_equal(match("(Sales)&(\"Tier 1\")", "Sales:1,Tier 1:1"),
	    1);
}

/* ---- errors ---- */

static void
test_errors(void **state)
{
	static const struct {
		const char	*text;
		const char	*msg;
		size_t		 pos;
	} t[] = {
		{ "", "empty expression", 0 },
		{ " \t\r\n ", "empty expression", 0 },
		{ "Sales &", "expected a skill name at 7", 7 },
		{ "Sales & | English", "expected a skill name at 8", 8 },
		{ "Sales &&& English", "expected a skill name at 8", 8 },
		{ "&Sales", "expected a skill name at 0", 0 },
		{ "()", "expected a skill name at 1", 1 },
		{ "!", "expected a skill name at 1", 1 },
		{ "!=5", "expected a skill name at 1", 1 },
		{ "Sales | #", "expected a skill name at 8", 8 },
		{ "Sales | >3", "expected a skill name at 8", 8 },
		{ "Salse", "unknown skill \"Salse\" at 0", 0 },
		{ "Sales & \"Tier  1\" > 2",
		  "unknown skill \"Tier  1\" at 8", 8 },
		{ "TRUE", "unknown skill \"TRUE\" at 0", 0 },
		{ "(Sales & English", "unbalanced parenthesis at 0", 0 },
		{ "Sales & (English | (Support)",
		  "unbalanced parenthesis at 8", 8 },
		{ "Sales)", "unbalanced parenthesis at 5", 5 },
		{ "(Sales) & English) | Support",
		  "unbalanced parenthesis at 17", 17 },
		{ "(Sales English)", "expected &, | or ) at 7", 7 },
		{ "Sales >= x", "expected an integer level after >= at 9",
		  9 },
		{ "Sales >=", "expected an integer level after >= at 8", 8 },
		{ "Sales=-1", "expected an integer level after = at 6", 6 },
		{ "Sales==+1", "expected an integer level after == at 7", 7 },
		{ "Sales>5.5", "expected an integer level after > at 6", 6 },
		{ "Sales<3x", "expected an integer level after < at 6", 6 },
		{ "Sales<=3\"", "expected an integer level after <= at 7",
		  7 },
		{ "Sales<>5", "expected an integer level after < at 6", 6 },
		{ "Sales != = 5", "expected an integer level after != at 9",
		  9 },
		{ "Sales>1000001", "level over 1000000 at 6", 6 },
		{ "Sales>99999999999999999999999",
		  "level over 1000000 at 6", 6 },
		/* 2^64: wraps to 0 in 64-bit arithmetic. */
		{ "Sales>18446744073709551616", "level over 1000000 at 6", 6 },
		{ "Sales English", "trailing input at 6", 6 },
		{ "Sales>3>4", "trailing input at 7", 7 },
		{ "Sales & English | Support Tier1", "trailing input at 26",
		  26 },
		{ "Sales !English", "trailing input at 6", 6 },
		{ "Sales (English)", "trailing input at 6", 6 },
		{ "\"Sales", "unterminated quoted name at 0", 0 },
		{ "Sales | \"ab\\", "unterminated quoted name at 8", 8 },
		{ "\"\"", "empty skill name at 0", 0 },
		{ "Sales | \"\" > 1", "empty skill name at 8", 8 },
		{ "\"a\\nb\"",
		  "bad escape in a quoted name (only \\\" and \\\\) at 2", 2 },
		{ "true > 3", "true cannot be compared at 5", 5 },
		{ "Sales>3 & true=x", "true cannot be compared at 14", 14 },
		/* Left to right: the first fault is reported. */
		{ "Salse > x", "unknown skill \"Salse\" at 0", 0 },
		{ "(Sales > x", "expected an integer level after > at 9", 9 },
	};
	size_t	 i;

	for (i = 0; i < NELEM(t); i++)
		bad(t[i].text, t[i].msg, t[i].pos);
}

/* Messages stay printable UTF-8 whatever the name, and fit their buffer. */
static void
test_messages(void **state)
{
	char		 text[512], err[REXPR_ERR_MAX], small[24];
	size_t		 pos, i;
	struct rexpr	*e;

	bad("\"a\x01" "b\xff\xc3\"", "unknown skill \"a?b??\" at 0", 0);
	bad("\"ab\xed\xa0\x80\"", "unknown skill \"ab???\" at 0", 0);
	bad("Fran\xc3\xa7" "ais", "unknown skill \"Fran\xc3\xa7" "ais\" at 0",
	    0);
	bad("\xe2\x82", "unknown skill \"??\" at 0", 0);
	bad("\"say \\\"ho\\\"\"", "unknown skill \"say \\\"ho\\\"\" at 0", 0);
	bad("\"x\\\\y\"", "unknown skill \"x\\\\y\" at 0", 0);

	/* A long name is cut after 64 bytes, never inside a character. */
	memset(text, 'x', 200);
	text[200] = '\0';
	snprintf(err, sizeof(err), "unknown skill \"%.64s...\" at 0", text);
	bad(text, err, 0);
	memset(text, 'x', 63);
	memcpy(text + 63, "\xc3\xa9yz", 5);
	snprintf(err, sizeof(err), "unknown skill \"%.63s...\" at 0", text);
	bad(text, err, 0);

	/* A buffer too small: cut, still valid UTF-8. */
	for (i = 0; i < 40; i++)
		memcpy(text + 2 * i, "\xc3\xa9", 2);
	text[80] = '\0';
	for (i = 1; i <= sizeof(small); i++) {
		memset(small, 'Z', sizeof(small));
		e = rexpr_compile(text, skill_cb, NULL, small, i, &pos);
		assert_null(e);
		assert_non_null(memchr(small, '\0', i));
		assert_true(utf8_ok(small));
		assert_true(strlen(small) <= i - 1);
	}

	/* No buffer, no position: still refused, nothing written. */
	assert_null(rexpr_compile("Sales &", skill_cb, NULL, NULL, 0, NULL));
	assert_null(rexpr_compile("Sales", NULL, NULL, err, 0, NULL));
	assert_null(rexpr_compile(NULL, skill_cb, NULL, err, sizeof(err),
	    &pos));
	assert_string_equal(err, "empty expression");
}

/* ---- limits ---- */

/* depth nested parentheses around Sales, each opened by "!(" or "(". */
static char *
nested(int depth, const char *open)
{
	size_t	 o = strlen(open);
	char	*s = xmalloc((size_t)depth * (o + 1) + 6);
	size_t	 n = 0;
	int	 i;

	for (i = 0; i < depth; i++, n += o)
		memcpy(s + n, open, o);
	memcpy(s + n, "Sales", 5);
	n += 5;
	for (i = 0; i < depth; i++)
		s[n++] = ')';
	s[n] = '\0';
	return s;
}

static void
test_depth(void **state)
{
	char	*s, *two;
	char	 msg[64];

	s = nested(REXPR_DEPTH_MAX, "(");
	assert_int_equal(match(s, "Sales:1"), 1);
	assert_int_equal(match(s, ""), 0);
	free(s);
	s = nested(REXPR_DEPTH_MAX + 1, "(");
	snprintf(msg, sizeof(msg), "expression too deeply nested at %d",
	    REXPR_DEPTH_MAX);
	bad(s, msg, REXPR_DEPTH_MAX);
	free(s);
	/* ! costs no depth: 64 levels of !( are fine, an even number. */
	s = nested(REXPR_DEPTH_MAX, "!(");
	assert_int_equal(match(s, "Sales:1"), 1);
	free(s);
	s = nested(REXPR_DEPTH_MAX + 1, "!(");
	snprintf(msg, sizeof(msg), "expression too deeply nested at %d",
	    2 * REXPR_DEPTH_MAX + 1);
	bad(s, msg, 2 * REXPR_DEPTH_MAX + 1);
	free(s);
	/* Depth comes back down: 64 deep twice side by side is fine. */
	s = nested(REXPR_DEPTH_MAX, "(");
	two = xasprintf("%s & %s", s, s);
	assert_int_equal(match(two, "Sales:0"), 1);
	free(two);
	free(s);
}

/*
 * The deepest stack the evaluation can need: at each of the 64 levels an
 * | and an & wait for their right operands (131 values).
 */
static void
test_stack(void **state)
{
	char	 s[REXPR_TEXT_MAX + 1];
	size_t	 n = 0;
	int	 i;

	for (i = 0; i < REXPR_DEPTH_MAX; i++)
		n += (size_t)snprintf(s + n, sizeof(s) - n,
		    "Sales|English&(");
	n += (size_t)snprintf(s + n, sizeof(s) - n, "Sales|English&Support");
	for (i = 0; i < REXPR_DEPTH_MAX; i++)
		s[n++] = ')';
	s[n] = '\0';
	assert_int_equal(match(s, "English:1,Support:1"), 1);
	assert_int_equal(match(s, "Sales:1"), 1);
	assert_int_equal(match(s, "English:1"), 0);
	assert_int_equal(match(s, "Support:1"), 0);
	assert_int_equal(score(s, "English:1,Support:4"), 4);
}

static void
test_length(void **state)
{
	char	*s = xmalloc(REXPR_TEXT_MAX + 2);
	size_t	 i;

	/* 4096 bytes: Sales, then spaces. */
	memset(s, ' ', REXPR_TEXT_MAX + 1);
	memcpy(s, "Sales", 5);
	s[REXPR_TEXT_MAX] = '\0';
	assert_int_equal(match(s, "Sales:0"), 1);
	s[REXPR_TEXT_MAX] = ' ';
	s[REXPR_TEXT_MAX + 1] = '\0';
	bad(s, "expression too long (over 4096 bytes) at 4096",
	    REXPR_TEXT_MAX);
	/* A run of 4095 ! then 5: one NOT, no depth. */
	for (i = 0; i < REXPR_TEXT_MAX - 1; i++)
		s[i] = '!';
	memcpy(s + REXPR_TEXT_MAX - 1, "5", 2);
	assert_int_equal(match(s, ""), 1);
	assert_int_equal(match(s, "5:0"), 0);
	/* A quoted name of 4094 bytes: unknown, shown cut. */
	s[0] = '"';
	memset(s + 1, 'y', REXPR_TEXT_MAX - 2);
	memcpy(s + REXPR_TEXT_MAX - 1, "\"", 2);
	bad(s, "unknown skill \"" "yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy"
	    "yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy...\" at 0", 0);
	free(s);
}

static void
test_operands(void **state)
{
	char		 s[REXPR_TEXT_MAX + 1], msg[64];
	struct rexpr	*e;
	const int	*ids;
	size_t		 n = 0;
	int		 i;

	for (i = 0; i < REXPR_OPERANDS_MAX; i++)
		n += (size_t)snprintf(s + n, sizeof(s) - n, "%sSales>%d",
		    i ? "|" : "", i);
	assert_int_equal(match(s, "Sales:256"), 1);
	assert_int_equal(match(s, "Sales:1"), 1);
	assert_int_equal(match(s, "Sales:0"), 0);
	assert_int_equal(match(s, "English:300"), 0);
	snprintf(msg, sizeof(msg), "too many operands (over 256) at %zu",
	    n + 1);
	snprintf(s + n, sizeof(s) - n, "|true");
	bad(s, msg, n + 1);
	/* The same many names, and the skill list still holds them once. */
	n = 0;
	for (i = 0; i < REXPR_OPERANDS_MAX; i++)
		n += (size_t)snprintf(s + n, sizeof(s) - n, "%s%s",
		    i ? "&" : "", skill_names[i % 6]);
	e = compile(s);
	ids = rexpr_skills(e, &n);
	assert_int_equal(n, 6);
	for (i = 0; i < 6; i++)
		assert_int_equal(ids[i], i);
	rexpr_free(e);
}

/* ---- score, skills ---- */

static void
test_score(void **state)
{
	const char	*ex = "Sales>=5 & English>3 | Support";

	assert_int_equal(score(ex, "Sales:7,English:4"), 7);
	assert_int_equal(score(ex, "Sales:1,English:4,Support:9"), 9);
	assert_int_equal(score(ex, ""), -1);
	assert_int_equal(score(ex, "French:10"), -1);
	/* A comparison the agent fails still names the skill. */
	assert_int_equal(score("Sales>5 | English", "Sales:3,English:1"), 3);
	assert_int_equal(score("Sales", "Sales:0"), 0);
	/* Not under an (odd number of) !. */
	assert_int_equal(score("Sales & !Tier1", "Sales:2,Tier1:9"), 2);
	assert_int_equal(score("!(Tier1 | Tier2) & (French >= 7)",
	    "French:8,Tier1:10,Tier2:10"), 8);
	assert_int_equal(score("!Sales", "Sales:4"), -1);
	assert_int_equal(score("!!Sales", "Sales:4"), 4);
	assert_int_equal(score("!(!Sales)", "Sales:4"), 4);
	assert_int_equal(score("!(English & !Sales)", "Sales:4,English:9"),
	    4);
	/* A skill both negated and not is scored. */
	assert_int_equal(score("Sales | !Sales", "Sales:6"), 6);
	assert_int_equal(score("!Sales | Sales", "Sales:6"), 6);
	assert_int_equal(score("true", "Sales:6"), -1);
	assert_int_equal(score("true | Sales", "Sales:6"), 6);
}

static void
test_skills(void **state)
{
	static const struct {
		const char	*text;
		int		 ids[4];
		size_t		 n;
		int		 needs;
	} t[] = {
		{ "Sales", { 0 }, 1, 1 },
		{ "Sales & English | !Sales | Tier1>3 | true",
		  { 0, 1, 4 }, 3, 0 },
		{ "true", { 0 }, 0, 0 },
		{ "!Sales", { 0 }, 1, 0 },
		{ "Sales | English", { 0, 1 }, 2, 1 },
		{ "Sales | !English", { 0, 1 }, 2, 0 },
		{ "Sales<3", { 0 }, 1, 1 },
		{ "Sales!=3", { 0 }, 1, 1 },
		{ "!Sales>3", { 0 }, 1, 0 },
		{ "Sales & true", { 0 }, 1, 1 },
		{ "Sales | true", { 0 }, 1, 0 },
		{ "!true | Tier2", { 5 }, 1, 1 },
		{ "!(Tier1 | Tier2) & (French >= 7)", { 4, 5, 3 }, 3, 1 },
	};
	struct rexpr	*e;
	const int	*ids;
	size_t		 i, k, n;

	for (i = 0; i < NELEM(t); i++) {
		e = compile(t[i].text);
		ids = rexpr_skills(e, &n);
		if (n != t[i].n)
			fail_msg("%s: %zu skills", t[i].text, n);
		for (k = 0; k < n; k++)
			assert_int_equal(ids[k], t[i].ids[k]);
		if (rexpr_needs_skill(e) != t[i].needs)
			fail_msg("%s: needs_skill %d", t[i].text,
			    rexpr_needs_skill(e));
		rexpr_free(e);
	}
	rexpr_free(NULL);
}

/* ---- the property test ---- */

#define PT_EXPRS	3000
#define PT_AGENTS	24
#define PT_NODES	512

enum pt_kind { PT_TRUE, PT_LEAF, PT_NOT, PT_AND, PT_OR };
enum pt_cmp { PC_HAS, PC_EQ, PC_EQ2, PC_NE, PC_LT, PC_LE, PC_GT, PC_GE };

static const char *const pt_cmps[] = {
	"", "=", "==", "!=", "<", "<=", ">", ">=",
};
/* The skills the trees use: plain, spaced, UTF-8. */
static const int	 pt_skills[] = { 0, 1, 2, 6, 10 };

struct pt_node {
	enum pt_kind	 kind;
	int		 skill;
	enum pt_cmp	 cmp;
	int		 level;
	struct pt_node	*a, *b;
};

struct pt {
	uint64_t	 rng;
	struct pt_node	 node[PT_NODES];
	size_t		 nnodes;
	char		 text[REXPR_TEXT_MAX + 1];
	size_t		 len;
	int		 order[NSKILLS];	/* skills as printed, once */
	size_t		 norder;
};

static unsigned
pt_rand(struct pt *t, unsigned n)
{
	t->rng ^= t->rng << 13;
	t->rng ^= t->rng >> 7;
	t->rng ^= t->rng << 17;
	return (unsigned)(t->rng >> 11) % n;
}

static struct pt_node *
pt_gen(struct pt *t, int depth)
{
	struct pt_node	*n = &t->node[t->nnodes++];
	unsigned	 r = depth == 0 ? 0 : pt_rand(t, 10);

	memset(n, 0, sizeof(*n));
	if (r < 3) {
		n->kind = pt_rand(t, 12) == 0 ? PT_TRUE : PT_LEAF;
		n->skill = pt_skills[pt_rand(t, NELEM(pt_skills))];
		n->cmp = pt_rand(t, NELEM(pt_cmps));
		n->level = (int)pt_rand(t, 7);
		return n;
	}
	n->kind = r < 5 ? PT_NOT : r < 8 ? PT_AND : PT_OR;
	n->a = pt_gen(t, depth - 1);
	if (n->kind != PT_NOT)
		n->b = pt_gen(t, depth - 1);
	return n;
}

static void
pt_put(struct pt *t, const char *s)
{
	size_t	 n = strlen(s);

	assert_true(t->len + n <= REXPR_TEXT_MAX);
	memcpy(t->text + t->len, s, n + 1);
	t->len += n;
}

/* pt_ws - some whitespace, or none */
static void
pt_ws(struct pt *t)
{
	static const char *const ws_[] = { "", "", "", " ", "\t", "\n", "  " };

	pt_put(t, ws_[pt_rand(t, NELEM(ws_))]);
}

static void
pt_name(struct pt *t, int skill)
{
	const char	*s = skill_names[skill];
	size_t		 i;

	for (i = 0; i < t->norder; i++)
		if (t->order[i] == skill)
			break;
	if (i == t->norder)
		t->order[t->norder++] = skill;
	if (strchr(s, ' ') == NULL && pt_rand(t, 3) != 0) {
		pt_put(t, s);
		return;
	}
	pt_put(t, "\"");
	pt_put(t, s);
	pt_put(t, "\"");
}

static int
pt_prec(const struct pt_node *n)
{
	return n->kind == PT_OR ? 1 : n->kind == PT_AND ? 2 :
	    n->kind == PT_NOT ? 3 : 4;
}

/* pt_print - n as text, in parentheses when its place needs them (and
 * sometimes when it does not) */
static void
pt_print(struct pt *t, const struct pt_node *n, int need)
{
	char	 num[16];
	int	 paren = pt_prec(n) < need || pt_rand(t, 10) == 0;

	pt_ws(t);
	if (paren)
		pt_put(t, "(");
	switch (n->kind) {
	case PT_TRUE:
		pt_put(t, "true");
		break;
	case PT_LEAF:
		pt_name(t, n->skill);
		if (n->cmp != PC_HAS) {
			pt_ws(t);
			pt_put(t, pt_cmps[n->cmp]);
			pt_ws(t);
			snprintf(num, sizeof(num), "%0*d",
			    (int)pt_rand(t, 3) + 1, n->level);
			pt_put(t, num);
		}
		break;
	case PT_NOT:
		pt_put(t, "!");
		pt_print(t, n->a, 3);
		break;
	case PT_AND:
	case PT_OR:
		pt_print(t, n->a, pt_prec(n));
		pt_ws(t);
		pt_put(t, n->kind == PT_AND ? (pt_rand(t, 2) ? "&" : "&&") :
		    (pt_rand(t, 2) ? "|" : "||"));
		/* The right operand in parentheses if it is the same
		 * operator: the text parses back to this very tree. */
		pt_print(t, n->b, pt_prec(n) + 1);
		break;
	}
	pt_ws(t);
	if (paren)
		pt_put(t, ")");
}

static int
pt_match(const struct pt_node *n, const struct agent *a)
{
	int	 lv;

	switch (n->kind) {
	case PT_TRUE:
		return 1;
	case PT_NOT:
		return !pt_match(n->a, a);
	case PT_AND:
		return pt_match(n->a, a) && pt_match(n->b, a);
	case PT_OR:
		return pt_match(n->a, a) || pt_match(n->b, a);
	case PT_LEAF:
		break;
	}
	lv = a->level[n->skill];
	if (lv < 0)
		return 0;
	switch (n->cmp) {
	case PC_HAS:	return 1;
	case PC_EQ:
	case PC_EQ2:	return lv == n->level;
	case PC_NE:	return lv != n->level;
	case PC_LT:	return lv < n->level;
	case PC_LE:	return lv <= n->level;
	case PC_GT:	return lv > n->level;
	case PC_GE:	return lv >= n->level;
	}
	return -1;
}

static void
pt_score(const struct pt_node *n, const struct agent *a, int neg, int *best)
{
	switch (n->kind) {
	case PT_TRUE:
		return;
	case PT_NOT:
		pt_score(n->a, a, !neg, best);
		return;
	case PT_AND:
	case PT_OR:
		pt_score(n->a, a, neg, best);
		pt_score(n->b, a, neg, best);
		return;
	case PT_LEAF:
		if (!neg && a->level[n->skill] > *best)
			*best = a->level[n->skill];
		return;
	}
}

static void
pt_agent(struct pt *t, struct agent *a)
{
	int	 i;

	for (i = 0; i < NSKILLS; i++)
		a->level[i] = pt_rand(t, 3) == 0 ? -1 : (int)pt_rand(t, 7);
}

static void
test_property(void **state)
{
	struct pt		*t = xcalloc(1, sizeof(*t));
	const struct pt_node	*root;
	struct rexpr		*e;
	struct agent		 a, none = agent("");
	const int		*ids;
	size_t			 n, k;
	int			 i, j, best, matched = 0, total = 0;

	t->rng = 0x7e4a47d5eedULL;
	for (i = 0; i < PT_EXPRS; i++) {
		t->nnodes = t->len = t->norder = 0;
		t->text[0] = '\0';
		root = pt_gen(t, (int)pt_rand(t, 7));
		pt_print(t, root, 0);
		e = compile(t->text);
		ids = rexpr_skills(e, &n);
		if (n != t->norder)
			fail_msg("%s: %zu skills, want %zu", t->text, n,
			    t->norder);
		for (k = 0; k < n; k++)
			assert_int_equal(ids[k], t->order[k]);
		assert_int_equal(rexpr_needs_skill(e), !pt_match(root, &none));
		for (j = 0; j < PT_AGENTS; j++) {
			pt_agent(t, &a);
			if (rexpr_match(e, level_cb, &a) != pt_match(root, &a))
				fail_msg("%s: match %d for agent %d", t->text,
				    rexpr_match(e, level_cb, &a), j);
			best = -1;
			pt_score(root, &a, 0, &best);
			if (rexpr_score(e, level_cb, &a) != best)
				fail_msg("%s: score %d, want %d", t->text,
				    rexpr_score(e, level_cb, &a), best);
			matched += pt_match(root, &a);
			total++;
		}
		rexpr_free(e);
	}
	/* The trees are neither all true nor all false. */
	assert_true(matched > total / 10 && matched < total * 9 / 10);
	free(t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_has),
		cmocka_unit_test(test_comparisons),
		cmocka_unit_test(test_level_edges),
		cmocka_unit_test(test_precedence),
		cmocka_unit_test(test_spellings),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_messages),
		cmocka_unit_test(test_depth),
		cmocka_unit_test(test_stack),
		cmocka_unit_test(test_length),
		cmocka_unit_test(test_operands),
		cmocka_unit_test(test_score),
		cmocka_unit_test(test_skills),
		cmocka_unit_test(test_property),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
