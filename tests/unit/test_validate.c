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
	assert_int_equal(tfgit_ref_check("x.lock", "a"), TFGIT_EINVALID);
	assert_int_equal(tfgit_ref_check("", "a"), TFGIT_EINVALID);
	/* a state whose lock branch would be no valid branch name */
	assert_int_equal(tfgit_ref_check("master", "a~1"), TFGIT_EINVALID);
	assert_int_equal(tfgit_ref_check("master", "a:b"), TFGIT_EINVALID);
}

static void repositories(void **st)
{
	(void)st;
	const char *good[] = {"/srv/git/state.git", "/srv/git/state.git/", "file:///srv/x.git",
			      "https://git.example.org/org/state.git", "http://h:8080/x.git",
			      "ssh://git@host:2222/org/x.git", "git://host/x.git", "git@host:org/x.git", "git@host:/srv/x.git",
			      "host:x.git"};
	const char *bad[] = {"", "relative/x.git", "/srv/../etc", "/srv/./x", "/srv//x",
			     "file://relative", "https://host", "https://-oProxyCommand/x",
			     "ssh://-oProxyCommand=x/y", "-oProxyCommand=x:y", "git@-host:x",
			     "host:-x", "host:../x", "host:/../x", "host://x", "/a b", "/a\tb", "ftp://host/x", "/"};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		assert_int_equal(tfgit_repository_check(good[i]), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(tfgit_repository_check(bad[i]), TFGIT_EINVALID);
	}
}

static void allowlist(void **st)
{
	(void)st;
	const char *pats = "/srv/git/*.git  https://git.example.org/infra/*";
	assert_int_equal(tfgit_repository_allowed("/srv/git/a.git", pats), 1);
	assert_int_equal(tfgit_repository_allowed("/srv/git/sub/a.git", pats), 0);
	assert_int_equal(tfgit_repository_allowed("https://git.example.org/infra/s.git", pats), 1);
	assert_int_equal(tfgit_repository_allowed("https://git.example.org/other/s.git", pats), 0);
	assert_int_equal(tfgit_repository_allowed("/srv/git/a.git", ""), 0);
	assert_int_equal(tfgit_repository_allowed("/srv/git/a.git", NULL), 0);
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
		cmocka_unit_test(repositories),    cmocka_unit_test(allowlist),
		cmocka_unit_test(redaction),
	};
	git_libgit2_init();
	int rc = cmocka_run_group_tests_name("validate", tests, NULL, NULL);
	git_libgit2_shutdown();
	return rc;
}
