/* The per-remote bare cache repository, and the flock that serialises all workers on it. */
#ifndef TFGIT_CACHE_H
#define TFGIT_CACHE_H

#include <git2.h>

typedef struct {
	int lockfd;           /* flock(LOCK_EX) held until cache_free() */
	git_repository *repo; /* bare, no working tree */
	char path[4096];
} cache;

/* Takes the repository's exclusive flock (blocking), then opens the cache, creating it or
 * rebuilding it when it cannot be opened. *out is freed with cache_free(). */
int cache_open(cache **out, const char *cache_dir, const char *url);

/* Throws the cache repository away and creates an empty one, keeping the flock. */
int cache_reset(cache *c);

/* Closes the repository and releases the flock; accepts NULL. */
void cache_free(cache *c);

#endif
