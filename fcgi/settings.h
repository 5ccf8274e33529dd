/* Server settings, read once from TFGIT_* environment variables at start. */
#ifndef TFGIT_SETTINGS_H
#define TFGIT_SETTINGS_H

#include <stddef.h>

#include "../core/tfgit.h"

struct settings {
	const char *default_repository; /* NULL when unset */
	const char *default_ref;
	const char *allowed_repos;      /* URL patterns; NULL: only the default repository */
	const char *allowed_states;     /* TFGIT_ALLOWED_STATES globs; NULL: any */
	const char *allowed_refs;       /* TFGIT_ALLOWED_REFS globs; NULL: any */
	const char *acl_file;           /* TFGIT_ACL_FILE; NULL: no access control */
	size_t max_body;
	const char *ca_file;            /* TFGIT_SSL_CA_FILE */
	long max_requests;              /* TFGIT_MAX_REQUESTS: a worker's requests before it is replaced */
	tfgit_store store;
	char email[320];
};

/* Fills s from the environment; -1 with a message on stderr when a value is unusable. */
int settings_load(struct settings *s);

/* 1 when the request may use this repository: the default one named exactly (as given), or
 * resolved (a checked URL, local paths resolved) matching TFGIT_ALLOWED_REPOS. */
int settings_repository_allowed(const struct settings *s, const char *given, const char *resolved);

#endif
