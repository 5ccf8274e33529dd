/* The per-remote bare cache repository, the flock that serialises all workers on it, and the
 * bound on how many (or how large) caches are kept.
 *
 * Layer: store/ is the host's cache: the cache directory itself (cachedir.c, its lowest file),
 * one bare repository per remote and its flock (cache.c), the stage new objects are written to
 * (stage.c), its maintenance (maint.c, packwrite.c) and the states known by blob id (known.c).
 * It may call net/, format/ and the shared core; it reports what the operations count (a cache
 * made: cache->created; evictions: cache_evict's result) instead of counting itself. */
#ifndef TFGIT_CACHE_H
#define TFGIT_CACHE_H

#include <git2.h>

#include "cachedir.h"
#include "stage.h"

typedef struct {
	int lockfd;           /* flock(LOCK_EX) held until cache_free() */
	git_repository *repo; /* bare, no working tree */
	stage *stage;         /* where repo writes objects (stage.c) */
	int created;          /* made by this open: cache_discard() if the remote cannot be reached */
	int shared;           /* a local remote's objects are an alternate of repo already */
	char path[4096];      /* <dir>/<hash>.git */
	char lockpath[4096];  /* <dir>/<hash>.flock; its mtime is the entry's last use */
} cache;

/* The path of url's entry in cache_dir with suffix added ("<dir>/<hash><suffix>": ".git",
 * ".flock", ".q" for group commit's queue). 0, or -1 when it does not fit. */
int cache_entry_path(char *out, size_t outlen, const char *cache_dir, const char *url, const char *suffix);

/* Removes from a group commit queue (qdir, batch.c) what nobody waits for any more: a request
 * (r.<id>, c.<id>) whose waiter is gone (its flock on the file is free) with its answer, an
 * answer (a.<id>) whose claim its waiter removed, an unfinished answer (w.<id>). Only for the
 * holder of the repository's flock: no leader writes meanwhile. */
void cache_queue_sweep(const char *qdir);

/* Takes the repository's exclusive flock, waiting at most queue_seconds (0: the operation's
 * own deadline; -1: not at all, TFGIT_EBUSY at once) while another request holds it, then opens the cache, creating it or
 * rebuilding it when it cannot be opened. The cache directory is made (or kept) 0700; it and
 * the flock file must belong to this user and be writable by no one else (why names the path
 * and the reason of a refusal). 0, TFGIT_EBUSY after queue_seconds, TFGIT_ETIMEOUT,
 * TFGIT_ENOSPACE or TFGIT_ERROR. *out is freed with cache_free(). */
int cache_open(cache **out, const char *cache_dir, const char *url, int queue_seconds, char *why,
	       size_t whylen);

/* Throws the cache repository away and creates an empty one, keeping the flock. */
int cache_reset(cache *c);

/* Removes the entry (repository and flock file) and frees c: nothing is kept of a remote that
 * could not be reached. Waiters on the old flock notice it is gone and start again. */
void cache_discard(cache *c);

/* Closes the repository and releases the flock; accepts NULL. */
void cache_free(cache *c);

/* 1 when the cache filesystem is full: an object write failed for want of space during this
 * operation (stage.c), or dir's filesystem has less than 1 MiB or no inode left. */
int cache_full(const char *dir);

/* Evicts the least recently used entries of cache_dir until at most max_count remain and
 * they take at most max_bytes (0: no such bound). An entry in use (flock held) is skipped.
 * Returns how many were evicted (the operations count them: metrics). */
size_t cache_evict(const char *cache_dir, long max_count, long long max_bytes);

#endif
