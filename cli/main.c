/* tfgit: the operators' command, on the same core as tfgit.fcgi (no HTTP in between), with
 * the settings read as the program reads them (environment, then TFGIT_CONFIG). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../core/settings.h"
#include "../core/tfgit.h"

struct args {
	const char *command;
	const char *repository;
	const char *ref;
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: tfgit reencrypt [--repository URL] [--ref BRANCH]\n"
		"  reencrypt   writes again, in one commit, every state of the branch whose stored form\n"
		"              is stale under the encryption settings: sealed with an older key of\n"
		"              TFGIT_ENCRYPTION_KEYS (rotation), or clear text / encrypted while\n"
		"              TFGIT_ENCRYPTION_MIGRATE is set. Files it cannot read are left as they are.\n"
		"  --repository  default TFGIT_DEFAULT_REPOSITORY; another must match TFGIT_ALLOWED_REPOS\n"
		"  --ref         default TFGIT_DEFAULT_REF (master)\n"
		"Settings come from the environment and the file TFGIT_CONFIG names, as for tfgit.fcgi.\n"
		"Run it as the pool's user (sudo -u www-data tfgit ...): it shares the pool's cache.\n");
}

static int parse(struct args *a, int argc, char **argv)
{
	memset(a, 0, sizeof(*a));
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage(stdout);
			exit(0);
		} else if (!strcmp(argv[i], "--repository") && i + 1 < argc) {
			a->repository = argv[++i];
		} else if (!strcmp(argv[i], "--ref") && i + 1 < argc) {
			a->ref = argv[++i];
		} else if (!a->command && argv[i][0] != '-') {
			a->command = argv[i];
		} else {
			return -1;
		}
	}
	return a->command && !strcmp(a->command, "reencrypt") ? 0 : -1;
}

/* The repository as the FastCGI program would accept it; -1 with a message. */
static int target(tfgit_target *t, char *url, size_t urllen, const struct args *a, const struct settings *s)
{
	char why[512];
	const char *repo = a->repository ? a->repository : s->default_repository;
	if (!repo) {
		fprintf(stderr, "tfgit: give --repository, or set TFGIT_DEFAULT_REPOSITORY\n");
		return -1;
	}
	if (s->default_repository && !strcmp(repo, s->default_repository)) {
		snprintf(url, urllen, "%s", repo);
	} else if (tfgit_repository_check(repo, 0, why, sizeof(why)) < 0) {
		fprintf(stderr, "tfgit: --repository: %s\n", why);
		return -1;
	} else if (tfgit_repository_resolve(url, urllen, repo) < 0 || !settings_repository_allowed(s, repo, url)) {
		fprintf(stderr, "tfgit: --repository %s is not allowed (TFGIT_ALLOWED_REPOS)\n", repo);
		return -1;
	}
	t->url = url;
	t->ref = a->ref ? a->ref : s->default_ref;
	t->state = "";
	if (tfgit_ref_check(t->ref, NULL) < 0) {
		fprintf(stderr, "tfgit: --ref %s is not a valid branch name\n", t->ref);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct args a;
	struct settings s;
	tfgit_target t;
	tfgit_result r = {0};
	char why[640], url[4096];
	size_t count = 0;
	umask(077); /* the cache it shares with the pool holds states */
	if (parse(&a, argc, argv) < 0) {
		usage(stderr);
		return 2;
	}
	if (geteuid() == 0 && !getenv("TFGIT_ALLOW_ROOT")) {
		fprintf(stderr, "tfgit: refusing to run as root (the pool's cache would get root's files): "
				"sudo -u <the pool's user> tfgit ...\n");
		return 2;
	}
	if (tfgit_init(NULL) < 0)
		return 1;
	int rc = 2;
	if (settings_load(&s, NULL, 1, why, sizeof(why)) < 0)
		fprintf(stderr, "tfgit: %s\n", why);
	else if (tfgit_tls_trust(s.ca_file) < 0)
		fprintf(stderr, "tfgit: TFGIT_SSL_CA_FILE cannot be loaded\n");
	else if (target(&t, url, sizeof(url), &a, &s) == 0) {
		int err = tfgit_reencrypt(&r, &s.store, &t, &count);
		printf("%s\n", r.message[0] ? r.message : tfgit_strerror(err));
		rc = err < 0 ? 1 : 0;
	}
	tfgit_result_free(&r);
	settings_free(&s);
	tfgit_shutdown();
	return rc;
}
