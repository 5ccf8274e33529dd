/* Unit tests of the command line an SSH channel runs: the repository's path quoted for the
 * remote shell as git quotes it, never cut short, no control character let through. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "../../core/net/sshkeep.h"
#include "../../core/net/url.h"

static int command_for(char *out, size_t outlen, const char *url)
{
	url_parts u;
	char why[256];
	assert_int_equal(url_parse(&u, url, 0, why, sizeof(why)), 0);
	return sshkeep_command(out, outlen, "git-receive-pack", &u);
}

static void quotes_the_path_as_git_does(void **st)
{
	(void)st;
	char out[512];
	assert_int_equal(command_for(out, sizeof(out), "ssh://git@example.com:2222/srv/git/state.git"), 0);
	assert_string_equal(out, "git-receive-pack '/srv/git/state.git'");
	assert_int_equal(command_for(out, sizeof(out), "git@example.com:team/state.git"), 0);
	assert_string_equal(out, "git-receive-pack 'team/state.git'");
	/* url_parse refuses such paths already; were one to pass, a quote and a ! stand outside
	 * the quotes, escaped, and $(…), `…` and ; are inert inside them: the shell sees one word */
	url_parts u;
	memset(&u, 0, sizeof(u));
	u.kind = URL_SCP;
	snprintf(u.path, sizeof(u.path), "srv/it's!;$(id)`id`.git");
	assert_int_equal(sshkeep_command(out, sizeof(out), "git-upload-pack", &u), 0);
	assert_string_equal(out, "git-upload-pack 'srv/it'\\''s'\\!';$(id)`id`.git'");
}

static void reads_home_relative_paths(void **st)
{
	(void)st;
	char out[512];
	assert_int_equal(command_for(out, sizeof(out), "ssh://git@example.com/~alice/state.git"), 0);
	assert_string_equal(out, "git-receive-pack '~alice/state.git'");
}

static void refuses_what_it_cannot_pass_whole(void **st)
{
	(void)st;
	char out[64], big[40];
	/* a path that does not fit is refused, never cut to another repository's name */
	assert_int_equal(command_for(out, sizeof(out), "ssh://git@example.com/srv/git/a-long-name-for-a-repository.git"), -1);
	url_parts u;
	memset(&u, 0, sizeof(u));
	u.kind = URL_SCP;
	snprintf(u.path, sizeof(u.path), "''''''''''''.git"); /* fits only unquoted */
	assert_int_equal(sshkeep_command(big, sizeof(big), "git-upload-pack", &u), -1);
	snprintf(u.path, sizeof(u.path), "repo\n.git");
	assert_int_equal(sshkeep_command(out, sizeof(out), "git-upload-pack", &u), -1);
	u.path[0] = '\0';
	assert_int_equal(sshkeep_command(out, sizeof(out), "git-upload-pack", &u), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(quotes_the_path_as_git_does),
		cmocka_unit_test(reads_home_relative_paths),
		cmocka_unit_test(refuses_what_it_cannot_pass_whole),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
