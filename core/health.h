/* The deep health probe (…/health?deep=1): an operation like any other, reading refs only. */
#ifndef TFGIT_HEALTH_H
#define TFGIT_HEALTH_H

#include "tfgit.h"

/* Opens the repository's cache (flock) and connects to url, reading its advertised refs
 * (ls-remote), nothing fetched, within the store's TFGIT_REMOTE_TIMEOUT. *branch_found:
 * whether ref exists there. 0 or a tfgit code, r->message saying why. */
int tfgit_ping(tfgit_result *r, const tfgit_store *store, const char *url, const char *ref,
	       int *branch_found);

#endif
