/* Setting up the library a process uses: libgit2's options, tfgit's HTTP(S) streams and the CA
 * they trust. */
#include <stdio.h>
#include <string.h>

#include <git2.h>

#include "net/httpstream.h"
#include "net/keepalive.h"
#include "net/sshkeep.h"
#include "op.h"

/* The private CA the TLS context trusts now ("" : none); "\001": no context yet. */
static char trusted_ca[4096] = "\001";

int tfgit_tls_trust(const char *ca_file)
{
	const char *want = ca_file ? ca_file : "";
	if (!strcmp(trusted_ca, want))
		return 0;
	keepalive_close_all(); /* what they trusted is no longer what is trusted */
	if (strlen(want) >= sizeof(trusted_ca) || httpstream_setup(ca_file) < 0) {
		trusted_ca[0] = '\001';
		trusted_ca[1] = '\0';
		return TFGIT_ERROR;
	}
	snprintf(trusted_ca, sizeof(trusted_ca), "%s", want);
	return 0;
}

const char *tls_trusted_ca(void)
{
	return trusted_ca;
}

int tfgit_init(const char *ca_file)
{
	if (git_libgit2_init() < 0)
		return TFGIT_ERROR;
	/* tfgit's own HTTP(S) streams (no redirect is followed) and their TLS trust */
	trusted_ca[0] = '\001';
	trusted_ca[1] = '\0';
	if (tfgit_tls_trust(ca_file) < 0)
		return TFGIT_ERROR;
	/* an object is hashed once, when it is written; reading it (for the push, a GET) does not
	 * hash it again. Reads still check each object's zlib checksum, and the stage (stage.c)
	 * keeps only whole files. A cache on a disk turns the check back on (cache_open) */
	git_libgit2_opts(GIT_OPT_ENABLE_STRICT_HASH_VERIFICATION, 0);
	/* repositories are named by the operator's allowlist, and may belong to the git user */
	git_libgit2_opts(GIT_OPT_SET_OWNER_VALIDATION, 0);
	/* a server reads no user's or system git configuration: only the repositories' own */
	static const int levels[] = {GIT_CONFIG_LEVEL_SYSTEM, GIT_CONFIG_LEVEL_XDG,
				     GIT_CONFIG_LEVEL_GLOBAL, GIT_CONFIG_LEVEL_PROGRAMDATA};
	for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++)
		git_libgit2_opts(GIT_OPT_SET_SEARCH_PATH, levels[i], "");
	return 0;
}

void tfgit_shutdown(void)
{
	keepalive_close_all();
	sshkeep_close_all();
	httpstream_teardown();
	trusted_ca[0] = '\001';
	trusted_ca[1] = '\0';
	git_libgit2_shutdown();
}
