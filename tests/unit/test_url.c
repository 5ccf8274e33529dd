/* Unit tests of repository URLs: parsed before they are matched, and matched part by part. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../core/tfgit.h"
#include "../../core/net/url.h"

static int check(const char *url)
{
	char why[256];
	return tfgit_repository_check(url, 0, why, sizeof(why));
}

static void accepts_usual_urls(void **st)
{
	(void)st;
	const char *good[] = {"/srv/git/state.git", "/srv/git/state.git/", "file:///srv/x.git",
			      "https://git.example.org/org/state.git", "http://h:8080/x.git",
			      "ssh://git@host:2222/org/x.git", "git://host/x.git", "git@host:org/x.git",
			      "git@host:/srv/x.git", "host:x.git", "https://[::1]:8443/x.git",
			      "https://h/a%20b.git", "https://h/%41.git"};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		if (check(good[i]) != 0)
			fail_msg("refused: %s", good[i]);
	}
}

static void refuses_what_could_lead_elsewhere(void **st)
{
	(void)st;
	const char *bad[] = {"", "relative/x.git", "/srv/../etc", "/srv/./x", "/srv//x",
			     "file://relative", "https://host", "https://-oProxyCommand/x",
			     "ssh://-oProxyCommand=x/y", "-oProxyCommand=x:y", "git@-host:x",
			     "host:-x", "host:../x", "host:/../x", "host://x", "/a b", "/a\tb", "ftp://host/x", "/",
			     /* percent-encoded /, \ and . (the server decodes them) */
			     "http://h/allowed/..%2Fother.git", "http://h/allowed/%2e%2e/other.git",
			     "http://h/allowed/x%2Fy.git", "http://h/allowed/x%5Cy.git", "http://h/a/%252F.git",
			     "http://h/a/%00.git", "http://h/a/%zz.git", "http://h/a/%2",
			     /* userinfo: credentials come from the settings; the host is after the last @ */
			     "http://allowed:x@other:8080/allowed/r.git", "http://user@h/x.git",
			     "https://u:p@h/x.git", "git://u@h/x.git", "ssh://u:p@h/x.git", "http://a@b@h/x.git",
			     /* queries, fragments, odd hosts and ports, shell characters */
			     "http://h/x.git?a=b", "http://h/x.git#f", "http://h%2e/x.git", "http://h:0/x.git",
			     "http://h:65536/x.git", "http://h:80a/x.git", "http://h:/x.git",
			     "ssh://h/x';id;'.git", "git@h:x$(id).git", "/srv/x`id`.git", "/srv/a%2Fb",
			     "http://h/.git", "http://h/a\\b"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (check(bad[i]) != TFGIT_EINVALID)
			fail_msg("accepted: %s", bad[i]);
	}
}

static void credentials_only_for_the_operator(void **st)
{
	(void)st;
	char why[256];
	assert_int_equal(tfgit_repository_check("https://u:p@h/x.git", 1, why, sizeof(why)), 0);
	assert_int_equal(tfgit_repository_check("https://u:s3cr3t@h/x.git", 0, why, sizeof(why)),
			 TFGIT_EINVALID);
	assert_null(strstr(why, "s3cr3t")); /* the reason never echoes them */
}

static void matches_part_by_part(void **st)
{
	(void)st;
	const char *pats = "/srv/git/*.git  https://git.example.org/infra/* http://127.0.0.1:8080/allowed/*.git "
			   "git@host:infra/*.git ssh://git@host:*/x/*.git";
	assert_int_equal(tfgit_repository_allowed("/srv/git/a.git", pats), 1);
	assert_int_equal(tfgit_repository_allowed("/srv/git/sub/a.git", pats), 0);
	assert_int_equal(tfgit_repository_allowed("/srv/git/.hidden.git", pats), 0);
	assert_int_equal(tfgit_repository_allowed("https://git.example.org/infra/s.git", pats), 1);
	assert_int_equal(tfgit_repository_allowed("https://GIT.example.org:443/infra/s.git", pats), 1);
	assert_int_equal(tfgit_repository_allowed("https://git.example.org:444/infra/s.git", pats), 0);
	assert_int_equal(tfgit_repository_allowed("http://git.example.org/infra/s.git", pats), 0);
	assert_int_equal(tfgit_repository_allowed("https://git.example.org/other/s.git", pats), 0);
	assert_int_equal(tfgit_repository_allowed("https://git.example.org.evil/infra/s.git", pats), 0);
	/* '*' in a pattern no longer crosses '@' or ':' into another host */
	assert_int_equal(tfgit_repository_allowed("http://127.0.0.1:8080/allowed/r.git", pats), 1);
	assert_int_equal(tfgit_repository_allowed("http://127.0.0.1:9090/allowed/r.git", pats), 0);
	assert_int_equal(tfgit_repository_allowed("http://127.0.0.1:8080/allowed/sub/r.git", pats), 0);
	assert_int_equal(tfgit_repository_allowed("git@host:infra/s.git", pats), 1);
	assert_int_equal(tfgit_repository_allowed("other@host:infra/s.git", pats), 0);
	assert_int_equal(tfgit_repository_allowed("ssh://git@host:2222/x/s.git", pats), 1);
	assert_int_equal(tfgit_repository_allowed("ssh://root@host:2222/x/s.git", pats), 0);
	/* the %-decoded path is matched: what the server sees */
	assert_int_equal(tfgit_repository_allowed("http://127.0.0.1:8080/allowed/%72.git", pats), 1);
	assert_int_equal(tfgit_repository_allowed("/srv/git/a.git", ""), 0);
	assert_int_equal(tfgit_repository_allowed("/srv/git/a.git", NULL), 0);
	char why[256];
	assert_int_equal(tfgit_patterns_check(pats, why, sizeof(why)), 0);
	assert_int_equal(tfgit_patterns_check("/srv/* ftp://x/*", why, sizeof(why)), TFGIT_EINVALID);
}

/* A symlink inside an allowed directory cannot lead out of it. */
/* Every spelling of one remote is one URL: one cache entry, one flock, one connection. */
static void urls_have_one_spelling(void **st)
{
	(void)st;
	static const char *const same[] = {"http://Git.Example.org/allowed/r.git", "http://git.example.org:80/allowed/r.git/",
					   "http://git.example.org/allowed/r.gi%74", "http://git.example.org/%61llowed/r.git"};
	char first[512], out[512];
	for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
		assert_int_equal(tfgit_repository_resolve(out, sizeof(out), same[i]), 0);
		if (i == 0)
			snprintf(first, sizeof(first), "%s", out);
		assert_string_equal(out, first);
	}
	assert_string_equal(first, "http://git.example.org:80/allowed/r.git");
	assert_int_equal(tfgit_repository_resolve(out, sizeof(out), "https://h/a%20b/%c3%a9.git"), 0);
	assert_string_equal(out, "https://h:443/a%20b/%C3%A9.git");
	assert_int_equal(tfgit_repository_resolve(out, sizeof(out), "ssh://git@H.example:2222/infra/s.git/"), 0);
	assert_string_equal(out, "ssh://git@h.example:2222/infra/s.git");
	assert_int_equal(tfgit_repository_resolve(out, sizeof(out), "git@host:infra/s.git"), 0);
	assert_string_equal(out, "git@host:infra/s.git");
}

static void local_paths_are_resolved(void **st)
{
	(void)st;
	char dir[] = "/tmp/tfgit-url.XXXXXX", path[256], link[256], resolved[512], pats[300];
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/allowed", dir);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/other.git", dir);
	assert_int_equal(mkdir(path, 0700), 0);
	snprintf(link, sizeof(link), "%s/allowed/link.git", dir);
	assert_int_equal(symlink(path, link), 0);
	snprintf(pats, sizeof(pats), "%s/allowed/*.git", dir);
	assert_int_equal(tfgit_repository_resolve(resolved, sizeof(resolved), link), 0);
	assert_string_equal(resolved, path);
	assert_int_equal(tfgit_repository_allowed(resolved, pats), 0);
	/* its identity (what a sealed state is bound to) is the real path, however it is named */
	char id[512], want[300], url[300];
	snprintf(want, sizeof(want), "%s/other.git", dir);
	assert_int_equal(tfgit_repository_identity(id, sizeof(id), link), 0);
	assert_string_equal(id, want);
	snprintf(url, sizeof(url), "file://%s/", path);
	assert_int_equal(tfgit_repository_identity(id, sizeof(id), url), 0);
	assert_string_equal(id, want);
	/* a repository that does not exist yet resolves to itself */
	snprintf(path, sizeof(path), "%s/allowed/new.git", dir);
	assert_int_equal(tfgit_repository_resolve(resolved, sizeof(resolved), path), 0);
	assert_string_equal(resolved, path);
	assert_int_equal(tfgit_repository_allowed(resolved, pats), 1);
	unlink(link);
	snprintf(path, sizeof(path), "%s/other.git", dir);
	rmdir(path);
	snprintf(path, sizeof(path), "%s/allowed", dir);
	rmdir(path);
	rmdir(dir);
}

/* What a sealed state is bound to: one identity per repository, whatever its spelling, and
 * never a credential. */
static void identities_are_normalised(void **st)
{
	(void)st;
	static const char *const same[] = {"https://git.example.org/infra/state.git", "https://Git.Example.org/infra/state.git",
					   "https://u:secret@git.example.org:443/infra/state.git/",
					   "https://git.example.org/infra/stat%65.git"};
	char out[512];
	for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
		assert_int_equal(tfgit_repository_identity(out, sizeof(out), same[i]), 0);
		assert_string_equal(out, "https://git.example.org/infra/state.git");
	}
	static const char *const pairs[][2] = {
		{"http://h:8080/x.git", "http://h:8080/x.git"},
		{"http://h:80/x.git", "http://h/x.git"},
		{"ssh://git@H:2222/org/x.git/", "ssh://git@h:2222/org/x.git"},
		{"ssh://git@h:22/org/x.git", "ssh://git@h/org/x.git"},
		{"ssh://h/org/x", "ssh://h/org/x"},
		{"git@host:org/x.git", "git@host:org/x.git"},
		{"git://host/x.git", "git://host/x.git"},
		{"https://h/a%20b.git", "https://h/a%20b.git"},
		{"https://[::1]:8443/x.git", "https://[::1]:8443/x.git"},
		{"https://h/a.git.git", "https://h/a.git.git"},
	};
	for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
		assert_int_equal(tfgit_repository_identity(out, sizeof(out), pairs[i][0]), 0);
		assert_string_equal(out, pairs[i][1]);
	}
	/* another port or scheme is another repository */
	char a[512];
	assert_int_equal(tfgit_repository_identity(a, sizeof(a), "https://h/x.git"), 0);
	assert_int_equal(tfgit_repository_identity(out, sizeof(out), "https://h:8443/x.git"), 0);
	assert_string_not_equal(a, out);
	assert_int_equal(tfgit_repository_identity(out, sizeof(out), "http://h/x.git"), 0);
	assert_string_not_equal(a, out);
	assert_int_equal(tfgit_repository_identity(out, sizeof(out), "https://h/X.git"), 0);
	assert_string_not_equal(a, out);
	/* a and a.git may be two repositories (git http-backend, a local or ssh path) */
	assert_int_equal(tfgit_repository_identity(out, sizeof(out), "https://h/x"), 0);
	assert_string_not_equal(a, out);
	/* an ssh login picks the repository when the path is relative to its home */
	assert_int_equal(tfgit_repository_identity(a, sizeof(a), "alice@host:infra"), 0);
	assert_int_equal(tfgit_repository_identity(out, sizeof(out), "bob@host:infra"), 0);
	assert_string_not_equal(a, out);
	assert_int_equal(tfgit_repository_identity(a, sizeof(a), "ssh://alice@host/~/infra"), 0);
	assert_int_equal(tfgit_repository_identity(out, sizeof(out), "ssh://bob@host/~/infra"), 0);
	assert_string_not_equal(a, out);
	assert_int_equal(tfgit_repository_identity(out, sizeof(out), "ftp://h/x.git"), TFGIT_EINVALID);
	assert_int_equal(tfgit_repository_identity(out, 8, "https://h/long/path.git"), TFGIT_EINVALID);
	/* a local path's: local_paths_are_resolved */
}

static void repository_ids_map_one_repository_each(void **st)
{
	(void)st;
	char why[512], out[512];
	const char *ids = "https://new.example/infra.git=infra-prod git@host:org/x.git=https://old.example/x "
			  "/srv/git/a=b=c";
	assert_int_equal(tfgit_repository_ids_check(ids, why, sizeof(why)), 0);
	/* any spelling of the URL finds its entry */
	assert_int_equal(tfgit_repository_id(out, sizeof(out), "https://u:p@NEW.example/infra.git/", ids), 0);
	assert_string_equal(out, "infra-prod");
	assert_int_equal(tfgit_repository_id(out, sizeof(out), "ssh://git@host/org/x.git", ids), 0);
	assert_string_equal(out, "ssh://git@host/org/x.git"); /* another spelling of a path: another repository */
	assert_int_equal(tfgit_repository_id(out, sizeof(out), "git@host:org/x.git", ids), 0);
	assert_string_equal(out, "https://old.example/x");
	assert_int_equal(tfgit_repository_id(out, sizeof(out), "git@host:org/x", ids), 0);
	assert_string_equal(out, "git@host:org/x"); /* without .git: another repository */
	assert_int_equal(tfgit_repository_id(out, sizeof(out), "/srv/git/a=b", ids), 0);
	assert_string_equal(out, "c"); /* split at the last '=' */
	/* a repository without an entry keeps its own identity */
	assert_int_equal(tfgit_repository_id(out, sizeof(out), "https://new.example/other.git", ids), 0);
	assert_string_equal(out, "https://new.example/other.git");
	assert_int_equal(tfgit_repository_id(out, sizeof(out), "https://new.example/other.git", NULL), 0);
	assert_string_equal(out, "https://new.example/other.git");
	/* malformed, or one ID for two repositories, or two for one: refused, naming why */
	static const char *const bad[] = {
		"https://h/x.git", "=id", "https://h/x.git=", "https://h/x.git=a b=c",
		"https://h/x.git=id https://h/y.git=id", "https://h/x.git=a https://H/x.git/=b",
		"https://u:p@h/x.git=id", "ftp://h/x=id", "https://h/x.git=id;rm", "https://h/x.git=id\\"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why[0] = '\0';
		if (tfgit_repository_ids_check(bad[i], why, sizeof(why)) != TFGIT_EINVALID)
			fail_msg("accepted: %s", bad[i]);
		if (!why[0])
			fail_msg("no reason for: %s", bad[i]);
		if (strstr(why, "secret") || strstr(why, "u:p"))
			fail_msg("the reason shows a credential: %s", why);
	}
	char big[300];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	char entry[400];
	snprintf(entry, sizeof(entry), "https://h/x.git=%s", big);
	assert_int_equal(tfgit_repository_ids_check(entry, why, sizeof(why)), TFGIT_EINVALID);
}

static void names_are_globbed(void **st)
{
	(void)st;
	assert_int_equal(tfgit_name_allowed("envs/prod.tfstate", "envs/*.tfstate"), 1);
	assert_int_equal(tfgit_name_allowed("envs/a/prod.tfstate", "envs/*.tfstate"), 0);
	assert_int_equal(tfgit_name_allowed("main.tf.json", "envs/*.tfstate other"), 0);
	assert_int_equal(tfgit_name_allowed("anything", NULL), 1);
}

static void log_lines_cannot_be_forged(void **st)
{
	(void)st;
	char out[64];
	tfgit_escape(out, sizeof(out), "a\nb\r\x1b[2J\\c", 10);
	assert_string_equal(out, "a\\nb\\r\\x1b[2J\\\\c");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(accepts_usual_urls),
		cmocka_unit_test(refuses_what_could_lead_elsewhere),
		cmocka_unit_test(credentials_only_for_the_operator),
		cmocka_unit_test(matches_part_by_part),
		cmocka_unit_test(urls_have_one_spelling),
		cmocka_unit_test(local_paths_are_resolved),
		cmocka_unit_test(identities_are_normalised),
		cmocka_unit_test(repository_ids_map_one_repository_each),
		cmocka_unit_test(names_are_globbed),
		cmocka_unit_test(log_lines_cannot_be_forged),
	};
	return cmocka_run_group_tests_name("url", tests, NULL, NULL);
}
