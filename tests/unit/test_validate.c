/* Unit tests of the allowlists: state paths, branch names, repositories, redaction. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <git2.h>

#include "../../core/tfgit.h"

static void state_paths(void **st)
{
	(void)st;
	const char *good[] = {"terraform.tfstate", "envs/prod/terraform.tfstate", "a.b/c-d_e",
			      "x.lock.tfstate", "dir.git2/x"};
	const char *bad[] = {"", "/abs", "a//b", "a/./b", "a/../b", "..", ".", "a/", ".git/x",
			     "a/.Git", "x.lock", "a/b.lock", "tab\there", "new\nline", "back\\slash"};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		assert_int_equal(tfgit_state_path_check(good[i]), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(tfgit_state_path_check(bad[i]), TFGIT_EINVALID);
	char longp[1100];
	memset(longp, 'a', sizeof(longp) - 1);
	longp[sizeof(longp) - 1] = '\0';
	assert_int_equal(tfgit_state_path_check(longp), TFGIT_EINVALID);
	assert_int_equal(tfgit_state_path_check(NULL), TFGIT_EINVALID);
}

static void refs(void **st)
{
	(void)st;
	assert_int_equal(tfgit_ref_check("master", "a.tfstate"), 0);
	assert_int_equal(tfgit_ref_check("feature/x", "envs/a.tfstate"), 0);
	assert_int_equal(tfgit_ref_check("bad..ref", "a"), TFGIT_EINVALID);
	assert_int_equal(tfgit_ref_check("with space", "a"), TFGIT_EINVALID);
	assert_int_equal(tfgit_ref_check("locks/x", "a"), TFGIT_EINVALID);
	/* a branch that would be the directory of every lock branch */
	assert_int_equal(tfgit_ref_check("locks", "a"), TFGIT_EINVALID);
	assert_int_equal(tfgit_ref_check("locks", NULL), TFGIT_EINVALID);
	assert_int_equal(tfgit_ref_check("Locks", "a"), TFGIT_EINVALID);
	assert_int_equal(tfgit_ref_check("LOCKS/x", NULL), TFGIT_EINVALID);
	assert_int_equal(tfgit_ref_check("locksmith", "a"), 0);
	assert_int_equal(tfgit_ref_check("team/locks", "a"), 0);
	assert_int_equal(tfgit_ref_check("x.lock", "a"), TFGIT_EINVALID);
	assert_int_equal(tfgit_ref_check("", "a"), TFGIT_EINVALID);
	/* a state whose lock branch would be no valid branch name */
	assert_int_equal(tfgit_ref_check("master", "a~1"), TFGIT_EINVALID);
	assert_int_equal(tfgit_ref_check("master", "a:b"), TFGIT_EINVALID);
}

static void redaction(void **st)
{
	(void)st;
	char out[256];
	tfgit_url_redact(out, sizeof(out), "https://user:s3cret@host/x.git");
	assert_string_equal(out, "https://***@host/x.git");
	tfgit_url_redact(out, sizeof(out), "https://tok@host/a@b.git");
	assert_string_equal(out, "https://***@host/a@b.git");
	tfgit_url_redact(out, sizeof(out), "https://host/x.git");
	assert_string_equal(out, "https://host/x.git");
	tfgit_url_redact(out, sizeof(out), "/srv/x.git");
	assert_string_equal(out, "/srv/x.git");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(state_paths),     cmocka_unit_test(refs),
		cmocka_unit_test(redaction),
	};
	git_libgit2_init();
	int rc = cmocka_run_group_tests_name("validate", tests, NULL, NULL);
	git_libgit2_shutdown();
	return rc;
}
