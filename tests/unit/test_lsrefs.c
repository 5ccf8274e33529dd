/* Unit tests of protocol v2's ls-refs as tfgit writes and reads it: the request names each
 * branch as a ref-prefix, and an answer counts only once its flush arrived. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../core/net/lsrefs.h"
#include "../../core/net/pktline.h"

static void writes_the_command_and_a_prefix_per_name(void **st)
{
	(void)st;
	const char *names[] = {"refs/heads/master", "refs/heads/locks/app.tfstate"};
	char *out = NULL;
	size_t len = 0;
	assert_int_equal(lsrefs_request(&out, &len, names, 2), 0);
	const char *want = "0014command=ls-refs\n0010agent=tfgit\n0001"
			   "0021ref-prefix refs/heads/master\n002cref-prefix refs/heads/locks/app.tfstate\n0000";
	assert_int_equal(len, strlen(want));
	assert_memory_equal(out, want, len);
	free(out);
	const char *bad[] = {"refs/heads/a\nref-prefix refs/heads/b"};
	assert_int_equal(lsrefs_request(&out, &len, bad, 1), -1); /* no second line smuggled in */
	assert_int_equal(lsrefs_request(&out, &len, names, 0), -1);
}

struct seen {
	int n;
	char last[64];
};

static void each(const char *name, const git_oid *oid, void *ctx)
{
	struct seen *s = ctx;
	(void)oid;
	s->n++;
	strncpy(s->last, name, sizeof(s->last) - 1);
}

static void reads_lines_until_the_flush(void **st)
{
	(void)st;
	const char *answer = "003f1111111111111111111111111111111111111111 refs/heads/master\n"
			     "00522222222222222222222222222222222222222222 refs/heads/main symref-target:refs/x\n0000";
	char why[128];
	struct seen s = {0, ""};
	size_t len = strlen(answer), pos = 0;
	assert_int_equal(lsrefs_parse(answer, len - 4, NULL, NULL, why, sizeof(why)), 0); /* no flush yet */
	assert_int_equal(lsrefs_parse(answer, len, each, &s, why, sizeof(why)), 1);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.last, "refs/heads/main"); /* the attributes are not part of the name */
	/* scanned piece by piece: the flush is found once, where it is */
	assert_int_equal(pktline_to_flush(answer, 10, &pos), PKT_MORE);
	assert_int_equal(pktline_to_flush(answer, len - 2, &pos), PKT_MORE);
	assert_int_equal(pktline_to_flush(answer, len, &pos), PKT_FLUSH);
	assert_int_equal(pos, len);
}

static void refuses_what_is_no_answer(void **st)
{
	(void)st;
	char why[128];
	const char *bad[] = {
		"0016ERR access denied\n",
		"001bnot an id refs/heads/x\n0000",
		"002d1111111111111111111111111111111111111111\n0000",
		"00521111111111111111111111111111111111111111111111111111111111111111 refs/heads/x\n0000",
		"zzzz",
		"0001",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (lsrefs_parse(bad[i], strlen(bad[i]), NULL, NULL, why, sizeof(why)) != -1)
			fail_msg("accepted: %s", bad[i]);
	}
	assert_non_null(strstr((lsrefs_parse(bad[0], strlen(bad[0]), NULL, NULL, why, sizeof(why)), why), "access denied"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(writes_the_command_and_a_prefix_per_name),
		cmocka_unit_test(reads_lines_until_the_flush),
		cmocka_unit_test(refuses_what_is_no_answer),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
