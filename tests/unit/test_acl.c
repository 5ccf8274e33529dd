/* Unit tests of access control: the grants file's rules, its parse errors, and reload on change. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../core/acl.h"
#include "../../core/tfgit.h"

static char dir[] = "/tmp/tfgit-acl-XXXXXX";
static char path[sizeof(dir) + 16];
static char err[8192];

static const char *at(const char *name)
{
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return path;
}

static void put(const char *name, const char *text)
{
	FILE *f = fopen(at(name), "w");
	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
	assert_int_equal(fclose(f), 0);
}

/* The grants of text, which must parse. */
static acl *load(const char *text)
{
	acl *a = NULL;
	put("acl", text);
	err[0] = '\0';
	assert_int_equal(acl_load(&a, at("acl"), err, sizeof(err)), 0);
	assert_non_null(a);
	assert_string_equal(err, "");
	return a;
}

/* text must not parse; err must be "<file>:<line>: <reason>" (line 0: "<file>: <reason>"). */
static void refused(const char *name, const char *text, int line, const char *reason)
{
	char want[512];
	acl *a = (acl *)1;
	if (text)
		put(name, text);
	if (line)
		snprintf(want, sizeof(want), "%s:%d: %s", at(name), line, reason);
	else
		snprintf(want, sizeof(want), "%s: %s", at(name), reason);
	assert_int_equal(acl_load(&a, at(name), err, sizeof(err)), TFGIT_EINVALID);
	assert_null(a);
	assert_string_equal(err, want);
}

/* A test matcher: "pre*" matches what starts with "pre", anything else only itself. */
static int match(const char *pattern, const char *url)
{
	size_t n = strlen(pattern);
	if (n && pattern[n - 1] == '*')
		return strncmp(url, pattern, n - 1) == 0;
	return strcmp(url, pattern) == 0;
}

static int allows(const acl *a, const char *user, int right, const char *url, const char *state)
{
	return acl_allows(a, user, right, url, state, match);
}

static void each_right_alone(void **st)
{
	(void)st;
	acl *a = load("r read * *\nw write * *\nl lock * *\nf force-unlock * *\n");
	const char *users[] = {"r", "w", "l", "f"};
	const int rights[] = {ACL_READ, ACL_WRITE, ACL_LOCK, ACL_FORCE_UNLOCK};
	for (size_t u = 0; u < 4; u++)
		for (size_t r = 0; r < 4; r++)
			assert_int_equal(allows(a, users[u], rights[r], "/x.git", "s"), u == r);
	assert_int_equal(allows(a, "r", 0, "/x.git", "s"), 0); /* no right asked is none granted */
	assert_int_equal(allows(a, "nobody", ACL_READ, "/x.git", "s"), 0);
	acl_free(a);
	assert_string_equal(acl_right_name(ACL_READ), "read");
	assert_string_equal(acl_right_name(ACL_WRITE), "write");
	assert_string_equal(acl_right_name(ACL_LOCK), "lock");
	assert_string_equal(acl_right_name(ACL_FORCE_UNLOCK), "force-unlock");
	assert_string_equal(acl_right_name(0), "unknown");
	acl_free(NULL);
}

static void all_and_lists(void **st)
{
	(void)st;
	acl *a = load("root all * *\nbob read,lock * *\n");
	const int rights[] = {ACL_READ, ACL_WRITE, ACL_LOCK, ACL_FORCE_UNLOCK};
	for (size_t r = 0; r < 4; r++) {
		assert_int_equal(allows(a, "root", rights[r], "/x.git", "s"), 1);
		assert_int_equal(allows(a, "bob", rights[r], "/x.git", "s"),
				 rights[r] == ACL_READ || rights[r] == ACL_LOCK);
	}
	assert_int_equal(allows(a, "bob", ACL_READ | ACL_LOCK, "/x.git", "s"), 1);
	assert_int_equal(allows(a, "bob", ACL_READ | ACL_WRITE, "/x.git", "s"), 0);
	acl_free(a);
}

static void any_user_is_not_anonymous(void **st)
{
	(void)st;
	acl *a = load("* read * *\nanonymous lock * *\n");
	assert_int_equal(allows(a, "alice", ACL_READ, "/x.git", "s"), 1);
	assert_int_equal(allows(a, NULL, ACL_READ, "/x.git", "s"), 0);
	assert_int_equal(allows(a, "", ACL_READ, "/x.git", "s"), 0);
	assert_int_equal(allows(a, NULL, ACL_LOCK, "/x.git", "s"), 1);
	assert_int_equal(allows(a, "", ACL_LOCK, "/x.git", "s"), 1);
	assert_int_equal(allows(a, "alice", ACL_LOCK, "/x.git", "s"), 0);
	acl_free(a);
	/* a named user is matched exactly, not as a prefix */
	a = load("alice read * *\n");
	assert_int_equal(allows(a, "alice", ACL_READ, "/x.git", "s"), 1);
	assert_int_equal(allows(a, "alicex", ACL_READ, "/x.git", "s"), 0);
	assert_int_equal(allows(a, "alic", ACL_READ, "/x.git", "s"), 0);
	assert_int_equal(allows(a, NULL, ACL_READ, "/x.git", "s"), 0);
	acl_free(a);
}

static void repositories(void **st)
{
	(void)st;
	acl *a = load("any read * *\npat read /srv/git/* *\nexact read git://h/x.git *\n");
	assert_int_equal(allows(a, "any", ACL_READ, "https://h/whatever.git", "s"), 1);
	assert_int_equal(allows(a, "pat", ACL_READ, "/srv/git/a.git", "s"), 1);
	assert_int_equal(allows(a, "pat", ACL_READ, "/srv/other/a.git", "s"), 0);
	assert_int_equal(allows(a, "exact", ACL_READ, "git://h/x.git", "s"), 1);
	assert_int_equal(allows(a, "exact", ACL_READ, "git://h/y.git", "s"), 0);
	/* without a matcher only "*" grants */
	assert_int_equal(acl_allows(a, "pat", ACL_READ, "/srv/git/a.git", "s", NULL), 0);
	assert_int_equal(acl_allows(a, "any", ACL_READ, "/srv/git/a.git", "s", NULL), 1);
	acl_free(a);
}

static void state_prefixes(void **st)
{
	(void)st;
	acl *a = load("dir read * envs/\nbare read * envs\nany read * *\n");
	assert_int_equal(allows(a, "dir", ACL_READ, "/x.git", "envs/prod.tfstate"), 1);
	assert_int_equal(allows(a, "dir", ACL_READ, "/x.git", "envs/a/b.tfstate"), 1);
	assert_int_equal(allows(a, "dir", ACL_READ, "/x.git", "envsx.tfstate"), 0);
	assert_int_equal(allows(a, "dir", ACL_READ, "/x.git", "other/envs/p.tfstate"), 0);
	assert_int_equal(allows(a, "bare", ACL_READ, "/x.git", "envs/prod.tfstate"), 1);
	assert_int_equal(allows(a, "bare", ACL_READ, "/x.git", "envsx.tfstate"), 1); /* hence the '/' */
	assert_int_equal(allows(a, "bare", ACL_READ, "/x.git", "env"), 0);
	assert_int_equal(allows(a, "any", ACL_READ, "/x.git", "a/b/c.tfstate"), 1);
	acl_free(a);
}

static void any_line_may_grant(void **st)
{
	(void)st;
	/* the first line for bob does not grant a write; a later one does, only on its prefix */
	acl *a = load("bob read * *\nalice all * *\nbob write /srv/git/* envs/\n");
	assert_int_equal(allows(a, "bob", ACL_WRITE, "/srv/git/a.git", "envs/p.tfstate"), 1);
	assert_int_equal(allows(a, "bob", ACL_WRITE, "/srv/git/a.git", "p.tfstate"), 0);
	assert_int_equal(allows(a, "bob", ACL_WRITE, "/elsewhere.git", "envs/p.tfstate"), 0);
	assert_int_equal(allows(a, "bob", ACL_READ, "/elsewhere.git", "p.tfstate"), 1);
	acl_free(a);
}

/* A branch's page: some state of the repository granted, whichever. */
static void some_state_of_a_repository(void **st)
{
	(void)st;
	acl *a = load("bob read /srv/git/a* envs/\nbob write /srv/git/b.git *\nanonymous read /pub* public/\n");
	assert_int_equal(acl_allows_some(a, "bob", ACL_READ, "/srv/git/a.git", match), 1);
	assert_int_equal(acl_allows_some(a, "bob", ACL_READ, "/srv/git/b.git", match), 0); /* write only */
	assert_int_equal(acl_allows_some(a, "bob", ACL_READ, "/srv/git/c.git", match), 0);
	assert_int_equal(acl_allows_some(a, "eve", ACL_READ, "/srv/git/a.git", match), 0);
	assert_int_equal(acl_allows_some(a, NULL, ACL_READ, "/pub.git", match), 1);
	assert_int_equal(acl_allows_some(a, NULL, ACL_READ, "/srv/git/a.git", match), 0);
	assert_int_equal(acl_allows_some(NULL, "bob", ACL_READ, "/srv/git/a.git", match), 0);
	acl_free(a);
}

static void comments_and_blank_lines(void **st)
{
	(void)st;
	acl *a = load("# user rights repository states\n"
		      "\n"
		      "   \t \n"
		      "  # indented comment, with 1 2 3 4 5 6 words\n"
		      "alice read * *   # trailing comment\n"
		      "bob\tread\t*\tteam#1/\r\n"
		      "carol read * *#not-a-comment\n"
		      "dave write * *"); /* no newline at the end */
	assert_int_equal(allows(a, "alice", ACL_READ, "/x.git", "s"), 1);
	assert_int_equal(allows(a, "bob", ACL_READ, "/x.git", "team#1/s"), 1); /* '#' inside is literal */
	assert_int_equal(allows(a, "bob", ACL_READ, "/x.git", "team"), 0);
	assert_int_equal(allows(a, "carol", ACL_READ, "/x.git", "*#not-a-comment"), 1);
	assert_int_equal(allows(a, "carol", ACL_READ, "/x.git", "s"), 0);
	assert_int_equal(allows(a, "dave", ACL_WRITE, "/x.git", "s"), 1);
	assert_int_equal(allows(a, "user", ACL_READ, "/x.git", "s"), 0);
	acl_free(a);
	a = load(""); /* an empty file is valid and grants nothing */
	assert_int_equal(allows(a, "alice", ACL_READ, "/x.git", "s"), 0);
	acl_free(a);
}

static void parse_errors(void **st)
{
	(void)st;
	refused("acl", "alice read *\n", 1, "3 fields, expected 4: user rights repository states");
	refused("acl", "# c\n\nalice read * * extra\n", 3, "5 fields, expected 4: user rights repository states");
	refused("acl", "alice read * * # ok\nbob\n", 2, "1 fields, expected 4: user rights repository states");
	refused("acl", "alice read,admin * *\n", 1, "unknown right 'admin'");
	refused("acl", "alice READ * *\n", 1, "unknown right 'READ'");
	refused("acl", "alice , * *\n", 1, "empty right in ','");
	refused("acl", "alice read, * *\n", 1, "empty right in 'read,'");
	refused("acl", "alice read,,write * *\n", 1, "empty right in 'read,,write'");
	refused("acl", "alice read * *\nbob read * s\001x\n", 2, "control character");
	put("acl", "alice read * *\nbob read * s");
	FILE *f = fopen(at("acl"), "a");
	fputc('\0', f);
	fputs("x\n", f);
	fclose(f);
	refused("acl", NULL, 2, "control character"); /* a NUL does not cut the line short */

	/* 4096 bytes is the longest line, its newline not counted; one more is refused */
	char line[4200];
	memset(line, ' ', sizeof(line));
	memcpy(line, "alice read * *", 14);
	strcpy(line + 4096, "\n");
	acl *a = load(line);
	assert_int_equal(allows(a, "alice", ACL_READ, "/x.git", "s"), 1);
	acl_free(a);
	line[4096] = ' ';
	strcpy(line + 4097, "\n");
	refused("acl", line, 1, "line longer than 4096 bytes");
	line[4097] = '\0'; /* the last line, without a newline */
	refused("acl", line, 1, "line longer than 4096 bytes");
	char text[4300];
	snprintf(text, sizeof(text), "# ok\n%s", line);
	refused("acl", text, 2, "line longer than 4096 bytes");

	refused("missing", NULL, 0, "No such file or directory");
	assert_int_equal(mkdir(at("sub"), 0700), 0);
	refused("sub", NULL, 0, "not a regular file");
	assert_int_equal(mkfifo(at("fifo"), 0600), 0);
	refused("fifo", NULL, 0, "not a regular file"); /* and did not block opening it */
	if (geteuid() != 0) { /* root reads any file */
		put("secret", "alice read * *\n");
		assert_int_equal(chmod(at("secret"), 0), 0);
		refused("secret", NULL, 0, "Permission denied");
	}
}

/* Writes text to name and sets its mtime to sec (a different mtime than any write before). */
static void put_at(const char *name, const char *text, time_t sec)
{
	put(name, text);
	struct timespec times[2] = {{sec, 0}, {sec, 0}};
	assert_int_equal(utimensat(AT_FDCWD, at(name), times, 0), 0);
}

static void reloads_when_changed(void **st)
{
	(void)st;
	const acl *a = NULL, *b = NULL;
	put_at("acl", "alice read * *\n", 1000000000);
	assert_int_equal(acl_get(&a, at("acl"), err, sizeof(err)), 0);
	assert_int_equal(allows(a, "alice", ACL_READ, "/x.git", "s"), 1);
	assert_int_equal(acl_get(&b, at("acl"), err, sizeof(err)), 0);
	assert_ptr_equal(a, b); /* unchanged: the cached entry */

	/* rewritten in place: same inode, same size, only the content and mtime differ */
	put_at("acl", "alice lock * *\n", 1000000001);
	assert_int_equal(acl_get(&a, at("acl"), err, sizeof(err)), 0);
	assert_int_equal(allows(a, "alice", ACL_READ, "/x.git", "s"), 0);
	assert_int_equal(allows(a, "alice", ACL_LOCK, "/x.git", "s"), 1);

	/* only the nanoseconds of the mtime differ */
	put("acl", "alice read * *\n");
	struct timespec times[2] = {{1000000001, 5}, {1000000001, 5}};
	assert_int_equal(utimensat(AT_FDCWD, at("acl"), times, 0), 0);
	assert_int_equal(acl_get(&a, at("acl"), err, sizeof(err)), 0);
	assert_int_equal(allows(a, "alice", ACL_READ, "/x.git", "s"), 1);

	/* broken: an error, and the old grants are gone; fixed: granted again */
	put_at("acl", "alice read *\n", 1000000002);
	assert_int_equal(acl_get(&a, at("acl"), err, sizeof(err)), TFGIT_EINVALID);
	assert_null(a);
	assert_int_equal(acl_get(&a, at("acl"), err, sizeof(err)), TFGIT_EINVALID);
	put_at("acl", "bob read * *\n", 1000000003);
	assert_int_equal(acl_get(&a, at("acl"), err, sizeof(err)), 0);
	assert_int_equal(allows(a, "bob", ACL_READ, "/x.git", "s"), 1);

	/* another path is another file; a removed file is an error */
	put_at("acl2", "carol read * *\n", 1000000003);
	assert_int_equal(acl_get(&a, at("acl2"), err, sizeof(err)), 0);
	assert_int_equal(allows(a, "carol", ACL_READ, "/x.git", "s"), 1);
	assert_int_equal(allows(a, "bob", ACL_READ, "/x.git", "s"), 0);
	assert_int_equal(unlink(at("acl2")), 0);
	assert_int_equal(acl_get(&a, at("acl2"), err, sizeof(err)), TFGIT_EINVALID);
	assert_null(a);
	acl_cache_free();
	acl_cache_free();
}

static int setup(void **st)
{
	(void)st;
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **st)
{
	(void)st;
	const char *files[] = {"acl", "acl2", "fifo", "secret"};
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		unlink(at(files[i]));
	rmdir(at("sub"));
	return rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(each_right_alone),    cmocka_unit_test(all_and_lists),
		cmocka_unit_test(any_user_is_not_anonymous), cmocka_unit_test(repositories),
		cmocka_unit_test(state_prefixes),      cmocka_unit_test(any_line_may_grant),
		cmocka_unit_test(some_state_of_a_repository),
		cmocka_unit_test(comments_and_blank_lines), cmocka_unit_test(parse_errors),
		cmocka_unit_test(reloads_when_changed),
	};
	return cmocka_run_group_tests_name("acl", tests, setup, teardown);
}
