/* Server settings: each looked up in the request's server variables (nginx fastcgi_param,
 * Apache SetEnv, .htaccess), then the process environment, then a settings file: TFGIT_CONFIG's,
 * or else the first of <home>/.config/tfgit/tfgit.conf and $(SYSCONFDIR)/tfgit/tfgit.conf. */
#ifndef TFGIT_SETTINGS_H
#define TFGIT_SETTINGS_H

#include <stddef.h>

#include "tfgit.h"

struct settings {
	const char *default_repository; /* NULL when unset */
	const char *default_ref;
	const char *allowed_repos;      /* URL patterns; NULL: only the default repository */
	const char *allowed_states;     /* TFGIT_ALLOWED_STATES globs; NULL: any */
	const char *allowed_refs;       /* TFGIT_ALLOWED_REFS globs; NULL: any */
	const char *acl_file;           /* TFGIT_ACL_FILE; NULL: no access control */
	size_t max_body;
	const char *ca_file;            /* TFGIT_SSL_CA_FILE */
	long max_requests;              /* TFGIT_MAX_REQUESTS: a pool worker's requests before it is replaced */
	int log_json;                   /* TFGIT_LOG_FORMAT=json: one JSON object a request line */
	tfgit_store store;
	/* owned: the values read from TFGIT_CONFIG, and defaults made at load */
	char *file_text;
	size_t file_size;
	char email[320];
	char cache_dir[4096];
	char cache_fallback[512]; /* why the default /dev/shm/tfgit-<uid> is not the cache; "" when it is */
	char config_file[4096];   /* the settings file read (TFGIT_CONFIG's, or the one found); "" when none */
};

/* Fills s; params are the request's server variables ("NAME=value", NULL-terminated; NULL at
 * start-up), which must outlive s. warn: print the warnings of unsafe settings (start-up).
 * -1 with the reason in why (never a secret) when a value is unusable. Free with
 * settings_free(), also after a failure. */
int settings_load(struct settings *s, char **params, int warn, char *why, size_t whylen);
void settings_free(struct settings *s);

/* The settings file of installs, $(SYSCONFDIR)/tfgit/tfgit.conf, as built in. */
const char *settings_system_file(void);

/* 1 when the request may use this repository: the default one named exactly (as given), or
 * resolved (a checked URL, local paths resolved) matching TFGIT_ALLOWED_REPOS. */
int settings_repository_allowed(const struct settings *s, const char *given, const char *resolved);

/* The repository, branch and state a request or an admin command names, checked alike for
 * both fronts: the repository parsed, then resolved and matched (the default one, or
 * TFGIT_ALLOWED_REPOS), the state path and the branch (never locks or locks/…) valid, both
 * within TFGIT_ALLOWED_STATES and TFGIT_ALLOWED_REFS. repository or ref NULL or "": the
 * defaults; state NULL: a branch. Fills t (its url is url, the repository as used).
 * TFGIT_OK; TFGIT_EINVALID (malformed) or TFGIT_EFORBIDDEN (not allowed here), the reason in
 * why. */
int settings_target(const struct settings *s, const char *repository, const char *ref, const char *state,
		    tfgit_target *t, char *url, size_t urllen, char *why, size_t whylen);

#endif
