/* The window between a write's lock check and its push, opened on purpose, on a local remote (a
 * bare repository by path, which tfgit changes through libgit2: no server, no hook can hold it).
 * Host A holds the lock and writes; op_window_hook runs between A's check and A's push and does
 * what host B would do there with git itself: force-unlock (the lock branch deleted) and LOCK
 * (made again, B's lock file). A's write must then fail as "locked by B" (409), with the branch
 * as it was: POST and DELETE, alone and through group commit's batch. Real git, real libgit2;
 * smart transports are tests/t-atomic.sh's. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../core/op.h"
#include "../../core/settings.h"
#include "../../core/tfgit.h"

static char dir[256], repo[300];
static int window_opened;

static void sh(const char *cmd)
{
	if (system(cmd) != 0)
		fail_msg("command failed: %s", cmd);
}

/* Output of cmd, first line, into out. */
static void sh_out(char *out, size_t outlen, const char *cmd)
{
	FILE *p = popen(cmd, "r");
	out[0] = '\0';
	if (!p || !fgets(out, (int)outlen, p))
		out[0] = '\0';
	if (p)
		pclose(p);
	out[strcspn(out, "\n")] = '\0';
}

/* Host B, in A's window: deletes A's lock of s.tfstate and makes its own, with git. */
static void host_b_takes_the_lock(void)
{
	char cmd[2048];
	window_opened++;
	snprintf(cmd, sizeof(cmd),
		 "set -e; G='git --git-dir=%s'; $G update-ref -d refs/heads/locks/s.tfstate; "
		 "b=$(printf '{\"ID\":\"host-b\",\"Who\":\"b\",\"Operation\":\"OperationTypeApply\"}' | $G hash-object -w --stdin); "
		 "t=$(printf '100644 blob %%s\\ts.tfstate.lock\\n' $b | $G mktree); "
		 "c=$(GIT_AUTHOR_NAME=b GIT_AUTHOR_EMAIL=b@b GIT_COMMITTER_NAME=b GIT_COMMITTER_EMAIL=b@b $G commit-tree -m lock $t); "
		 "$G update-ref refs/heads/locks/s.tfstate $c 0000000000000000000000000000000000000000",
		 repo);
	sh(cmd);
}

static struct settings s;

static void load(int group_commit)
{
	char why[512], cachedir[400];
	settings_free(&s);
	memset(&s, 0, sizeof(s));
	snprintf(cachedir, sizeof(cachedir), "%s/cache", dir);
	setenv("TFGIT_CACHE_DIR", cachedir, 1);
	setenv("TFGIT_DEFAULT_REPOSITORY", repo, 1);
	setenv("TFGIT_GROUP_COMMIT", group_commit ? "1" : "0", 1);
	if (settings_load(&s, NULL, 0, why, sizeof(why)) < 0)
		fail_msg("settings: %s", why);
}

static const tfgit_target target = {NULL, "master", "s.tfstate"};

/* A holds the lock and has written a first state: master's tip in tip. */
static void a_holds_and_wrote(char *tip, size_t tiplen)
{
	tfgit_target t = target;
	tfgit_result r = {0};
	char cmd[600];
	t.url = repo;
	snprintf(cmd, sizeof(cmd), "git --git-dir=%s update-ref -d refs/heads/locks/s.tfstate 2>/dev/null; true", repo);
	sh(cmd);
	const char *lock = "{\"ID\":\"host-a\",\"Who\":\"a\",\"Operation\":\"OperationTypeApply\"}";
	assert_int_equal(tfgit_lock(&r, &s.store, &t, lock, strlen(lock)), 0);
	tfgit_result_free(&r);
	memset(&r, 0, sizeof(r));
	const char *st = "{\"version\":4,\"serial\":1,\"lineage\":\"w\"}";
	assert_int_equal(tfgit_state_put(&r, &s.store, &t, "host-a", st, strlen(st), 0), 0);
	tfgit_result_free(&r);
	snprintf(cmd, sizeof(cmd), "git --git-dir=%s rev-parse master", repo);
	sh_out(tip, tiplen, cmd);
	assert_int_equal(strlen(tip), 40);
}

/* A writes (POST, or DELETE when body is NULL) while B takes the lock in its window. */
static void write_loses(int group_commit, const char *body)
{
	char before[64], after[64], holder[64], cmd[600];
	tfgit_target t = target;
	tfgit_result r = {0};
	t.url = repo;
	load(group_commit);
	a_holds_and_wrote(before, sizeof(before));
	window_opened = 0;
	op_window_hook = host_b_takes_the_lock;
	int rc = body ? tfgit_state_put(&r, &s.store, &t, "host-a", body, strlen(body), 0)
		      : tfgit_state_delete(&r, &s.store, &t, "host-a");
	op_window_hook = NULL;
	assert_true(window_opened >= 1);
	assert_int_equal(rc, TFGIT_ELOCKED); /* 409 */
	assert_non_null(r.holder.ptr);
	assert_non_null(strstr(r.holder.ptr, "host-b"));
	tfgit_result_free(&r);
	snprintf(cmd, sizeof(cmd), "git --git-dir=%s rev-parse master", repo);
	sh_out(after, sizeof(after), cmd);
	assert_string_equal(after, before); /* A's write did not land */
	snprintf(cmd, sizeof(cmd), "git --git-dir=%s show locks/s.tfstate:s.tfstate.lock | "
		 "sed 's/.*\"ID\":\"\\([^\"]*\\)\".*/\\1/'", repo);
	sh_out(holder, sizeof(holder), cmd);
	assert_string_equal(holder, "host-b");
}

static void post_alone(void **st)
{
	(void)st;
	write_loses(0, "{\"version\":4,\"serial\":2,\"lineage\":\"w\"}");
}

static void delete_alone(void **st)
{
	(void)st;
	write_loses(0, NULL);
}

static void post_in_a_batch(void **st)
{
	(void)st;
	write_loses(1, "{\"version\":4,\"serial\":2,\"lineage\":\"w\"}");
}

static void delete_in_a_batch(void **st)
{
	(void)st;
	write_loses(1, NULL);
}

/* Without the window, the same write lands: the test's set-up is not what refuses it. */
static void post_without_window(void **st)
{
	(void)st;
	char before[64], after[64], cmd[600];
	tfgit_target t = target;
	tfgit_result r = {0};
	t.url = repo;
	load(0);
	a_holds_and_wrote(before, sizeof(before));
	const char *body = "{\"version\":4,\"serial\":2,\"lineage\":\"w\"}";
	assert_int_equal(tfgit_state_put(&r, &s.store, &t, "host-a", body, strlen(body), 0), 0);
	tfgit_result_free(&r);
	snprintf(cmd, sizeof(cmd), "git --git-dir=%s rev-parse master", repo);
	sh_out(after, sizeof(after), cmd);
	assert_string_not_equal(after, before);
}

int main(void)
{
	char cmd[700];
	snprintf(dir, sizeof(dir), "%s/tfgit-window.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(dir))
		return 1;
	snprintf(repo, sizeof(repo), "%s/remote.git", dir);
	snprintf(cmd, sizeof(cmd), "git init -q --bare --initial-branch=master %s", repo);
	if (system(cmd) != 0 || tfgit_init(NULL) < 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(post_without_window), cmocka_unit_test(post_alone),
		cmocka_unit_test(delete_alone), cmocka_unit_test(post_in_a_batch),
		cmocka_unit_test(delete_in_a_batch),
	};
	int failed = cmocka_run_group_tests(tests, NULL, NULL);
	settings_free(&s);
	tfgit_shutdown();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	(void)system(cmd);
	return failed;
}
