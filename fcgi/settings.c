/* Server settings, read once from TFGIT_* environment variables at start. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "settings.h"

static const char *env_or(const char *name, const char *fallback)
{
	const char *v = getenv(name);
	return v && *v ? v : fallback;
}

static int env_flag(const char *name, int fallback, int *out)
{
	const char *v = getenv(name);
	if (!v || !*v)
		*out = fallback;
	else if (!strcmp(v, "1") || !strcasecmp(v, "true") || !strcasecmp(v, "yes") || !strcasecmp(v, "on"))
		*out = 1;
	else if (!strcmp(v, "0") || !strcasecmp(v, "false") || !strcasecmp(v, "no") || !strcasecmp(v, "off"))
		*out = 0;
	else {
		fprintf(stderr, "tfgit: %s=%s is not a boolean (use 1 or 0)\n", name, v);
		return -1;
	}
	return 0;
}

/* A whole number from lo to hi; -1 with a message. */
static int number_setting(const char *name, const char *fallback, unsigned long long lo,
			  unsigned long long hi, unsigned long long *out)
{
	const char *v = env_or(name, fallback);
	char *end;
	errno = 0;
	*out = strtoull(v, &end, 10);
	if (errno || *end || *v == '-' || *out < lo || *out > hi) {
		fprintf(stderr, "tfgit: %s=%s is not a number from %llu to %llu\n", name, v, lo, hi);
		return -1;
	}
	return 0;
}

/* TFGIT_CACHE_MAX: a number of repositories, or a size with a K, M or G suffix. */
static int cache_max(struct settings *s)
{
	const char *v = env_or("TFGIT_CACHE_MAX", "0");
	char *end;
	errno = 0;
	unsigned long long n = strtoull(v, &end, 10);
	int shift = !*end ? -1 : !strcasecmp(end, "K") ? 10 : !strcasecmp(end, "M") ? 20 :
		    !strcasecmp(end, "G") ? 30 : -2;
	if (errno || *v == '-' || shift == -2 || n > (1ULL << 40)) {
		fprintf(stderr, "tfgit: TFGIT_CACHE_MAX=%s: give a number of repositories (50) or a size "
				"(512M, 2G)\n", v);
		return -1;
	}
	if (shift < 0)
		s->store.cache_max_count = (long)n;
	else
		s->store.cache_max_bytes = (long long)(n << shift);
	return 0;
}

/* Notes every secret of the settings (so no message shows it) and checks the patterns. */
static int secrets_and_patterns(struct settings *s)
{
	char why[512];
	tfgit_secret_note(s->store.remote.password);
	tfgit_secret_note(s->store.remote.token);
	if (s->default_repository) {
		if (tfgit_repository_check(s->default_repository, 1, why, sizeof(why)) < 0) {
			fprintf(stderr, "tfgit: TFGIT_DEFAULT_REPOSITORY: %s\n", why);
			return -1;
		}
		/* a password in the URL, as written and %-decoded */
		const char *at = strrchr(s->default_repository, '@');
		const char *scheme = strstr(s->default_repository, "://");
		const char *colon = scheme ? strchr(scheme + 3, ':') : NULL;
		if (at && colon && colon < at) {
			char pw[512] = "", dec[512] = "";
			size_t n = (size_t)(at - colon - 1), o = 0;
			snprintf(pw, sizeof(pw), "%.*s", (int)(n < sizeof(pw) ? n : sizeof(pw) - 1), colon + 1);
			for (size_t i = 0; pw[i] && o + 1 < sizeof(dec); i++) {
				unsigned int c;
				if (pw[i] == '%' && sscanf(pw + i + 1, "%2x", &c) == 1 && pw[i + 1] && pw[i + 2]) {
					dec[o++] = (char)c;
					i += 2;
				} else {
					dec[o++] = pw[i];
				}
			}
			dec[o] = '\0';
			tfgit_secret_note(pw);
			tfgit_secret_note(dec);
		}
	}
	if (s->allowed_repos && tfgit_patterns_check(s->allowed_repos, why, sizeof(why)) < 0) {
		fprintf(stderr, "tfgit: TFGIT_ALLOWED_REPOS: %s\n", why);
		return -1;
	}
	return 0;
}

int settings_load(struct settings *s)
{
	char host[256] = "localhost";
	memset(s, 0, sizeof(*s));
	s->default_repository = env_or("TFGIT_DEFAULT_REPOSITORY", NULL);
	s->default_ref = env_or("TFGIT_DEFAULT_REF", "master");
	s->allowed_repos = env_or("TFGIT_ALLOWED_REPOS", NULL);
	s->allowed_states = env_or("TFGIT_ALLOWED_STATES", NULL);
	s->allowed_refs = env_or("TFGIT_ALLOWED_REFS", NULL);
	s->acl_file = env_or("TFGIT_ACL_FILE", NULL);
	s->store.cache_dir = env_or("TFGIT_CACHE_DIR", "/dev/shm/tfgit");
	s->store.author_name = env_or("TFGIT_AUTHOR_NAME", "tfgit");
	gethostname(host, sizeof(host) - 1);
	snprintf(s->email, sizeof(s->email), "tfgit@%s", host);
	s->store.author_email = env_or("TFGIT_AUTHOR_EMAIL", s->email);
	if (env_flag("TFGIT_REQUIRE_LOCK", 1, &s->store.require_lock) < 0 ||
	    env_flag("TFGIT_FORCE_UNLOCK", 1, &s->store.allow_force_unlock) < 0)
		return -1;
	tfgit_remote_opts *r = &s->store.remote;
	r->username = env_or("GIT_USERNAME", NULL);
	r->password = env_or("GIT_PASSWORD", NULL);
	r->password_file = env_or("GIT_PASSWORD_FILE", NULL);
	r->token = env_or("GITHUB_TOKEN", NULL);
	r->token_file = env_or("GITHUB_TOKEN_FILE", NULL);
	r->netrc = env_or("TFGIT_NETRC", NULL);
	r->ssh_key = env_or("SSH_PRIVATE_KEY", NULL);
	r->known_hosts = env_or("TFGIT_SSH_KNOWN_HOSTS", NULL);
	s->ca_file = env_or("TFGIT_SSL_CA_FILE", NULL);
	if (env_flag("TFGIT_SSL_NO_VERIFY", 0, &r->tls_no_verify) < 0)
		return -1;
	const char *strict = env_or("StrictHostKeyChecking", "yes");
	if (!strcasecmp(strict, "yes"))
		r->host_key_check = HOSTKEY_STRICT;
	else if (!strcasecmp(strict, "no"))
		r->host_key_check = HOSTKEY_OFF;
	else if (!strcasecmp(strict, "accept-new"))
		r->host_key_check = HOSTKEY_ACCEPT_NEW;
	else {
		fprintf(stderr, "tfgit: StrictHostKeyChecking=%s: use yes, no or accept-new\n", strict);
		return -1;
	}
	char *end;
	const char *timeout = env_or("TFGIT_REMOTE_TIMEOUT", "60");
	long t = strtol(timeout, &end, 10);
	if (*end || t < 0 || t > 86400) {
		fprintf(stderr, "tfgit: TFGIT_REMOTE_TIMEOUT=%s is not a number of seconds\n", timeout);
		return -1;
	}
	r->timeout = (int)t;
	const char *maxreq = env_or("TFGIT_MAX_REQUESTS", "10000");
	s->max_requests = strtol(maxreq, &end, 10);
	if (*end || s->max_requests < 0) {
		fprintf(stderr, "tfgit: TFGIT_MAX_REQUESTS=%s is not a number (0: no limit)\n", maxreq);
		return -1;
	}
	if (r->tls_no_verify)
		fprintf(stderr, "tfgit: WARNING: TFGIT_SSL_NO_VERIFY=1: TLS certificates of remotes are "
				"not verified; anyone in between can read and change your state\n");
	if (r->host_key_check == HOSTKEY_OFF)
		fprintf(stderr, "tfgit: WARNING: StrictHostKeyChecking=no: SSH host keys are not "
				"checked; anyone in between can read and change your state\n");
	const char *max = env_or("TFGIT_MAX_BODY", "67108864");
	errno = 0;
	unsigned long long v = strtoull(max, &end, 10);
	if (errno || *end || v == 0) {
		fprintf(stderr, "tfgit: TFGIT_MAX_BODY=%s is not a positive number of bytes\n", max);
		return -1;
	}
	s->max_body = (size_t)v;
	s->store.max_blob = s->max_body;
	r->max_object = s->max_body;
	if (number_setting("TFGIT_QUEUE_TIMEOUT", "10", 0, 86400, &v) < 0)
		return -1;
	s->store.queue_timeout = (int)v;
	if (cache_max(s) < 0 || secrets_and_patterns(s) < 0)
		return -1;
	if (tfgit_ref_check(s->default_ref, NULL) < 0) {
		fprintf(stderr, "tfgit: TFGIT_DEFAULT_REF=%s is not a valid branch name\n", s->default_ref);
		return -1;
	}
	return 0;
}

int settings_repository_allowed(const struct settings *s, const char *given, const char *resolved)
{
	if (s->default_repository && strcmp(given, s->default_repository) == 0)
		return 1;
	return s->allowed_repos && tfgit_repository_allowed(resolved, s->allowed_repos);
}
