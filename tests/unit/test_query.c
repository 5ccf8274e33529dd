/* Unit tests of the query-string parser. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "../../fcgi/query.h"

static void parses_in_any_order_and_escaping(void **st)
{
	(void)st;
	struct query a, b;
	char err[128];
	assert_int_equal(query_parse(&a, "type=git&repository=%2Fsrv%2Fa.git&ref=main&state=a%2Fb.tfstate", err, sizeof(err)), 0);
	assert_int_equal(query_parse(&b, "ID=x-1&ref=main&repository=/srv/a.git&state=a/b.tfstate&type=git", err, sizeof(err)), 0);
	assert_string_equal(a.repository, "/srv/a.git");
	assert_string_equal(b.repository, "/srv/a.git");
	assert_string_equal(a.state, b.state);
	assert_null(a.id);
	assert_string_equal(b.id, "x-1");
	query_free(&a);
	query_free(&b);
}

static void decodes_plus_and_hex(void **st)
{
	(void)st;
	struct query q;
	char err[128];
	assert_int_equal(query_parse(&q, "state=a+b%2dc%41", err, sizeof(err)), 0);
	assert_string_equal(q.state, "a b-cA");
	query_free(&q);
}

static void ignores_unknown_keys_and_empty_pairs(void **st)
{
	(void)st;
	struct query q;
	char err[128];
	assert_int_equal(query_parse(&q, "&&foo=bar&state=s&x", err, sizeof(err)), 0);
	assert_string_equal(q.state, "s");
	query_free(&q);
}

static void refuses_bad_input(void **st)
{
	(void)st;
	struct query q;
	char err[128];
	const char *bad[] = {"state=a%00b", "state=%zz", "state=abc%4", "state=a&state=b", "ID=1&ID=1",
			     "st%ate=x"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		assert_int_equal(query_parse(&q, bad[i], err, sizeof(err)), -1);
		assert_true(err[0] != '\0');
		assert_null(q.state);
	}
	static char huge[QUERY_MAX + 10];
	memset(huge, 'a', sizeof(huge) - 1);
	assert_int_equal(query_parse(&q, huge, err, sizeof(err)), -1);
}

static void key_without_value_is_empty(void **st)
{
	(void)st;
	struct query q;
	char err[128];
	assert_int_equal(query_parse(&q, "amend&state=", err, sizeof(err)), 0);
	assert_string_equal(q.amend, "");
	assert_string_equal(q.state, "");
	query_free(&q);
}

static void booleans(void **st)
{
	(void)st;
	assert_int_equal(query_bool(NULL), 0);
	assert_int_equal(query_bool(""), 0);
	assert_int_equal(query_bool("false"), 0);
	assert_int_equal(query_bool("TRUE"), 1);
	assert_int_equal(query_bool("true"), 1);
	assert_int_equal(query_bool("yes"), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(parses_in_any_order_and_escaping),
		cmocka_unit_test(decodes_plus_and_hex),
		cmocka_unit_test(ignores_unknown_keys_and_empty_pairs),
		cmocka_unit_test(refuses_bad_input),
		cmocka_unit_test(key_without_value_is_empty),
		cmocka_unit_test(booleans),
	};
	return cmocka_run_group_tests_name("query", tests, NULL, NULL);
}
