/* Counters every process serving from one cache directory shares (a pool's workers, mod_fcgid's
 * processes, CGI runs): a fixed-layout file <cache dir>/.metrics-v1 mapped MAP_SHARED and
 * updated with atomic adds. It only counts: the layers below report what it counts to the
 * operations (a cache made or evicted, a round trip), which add it here. */
#ifndef TFGIT_METRICS_H
#define TFGIT_METRICS_H

#include "tfgit.h"

enum metric {
	METRIC_LOCK_CONFLICTS,    /* a LOCK answered 409 */
	METRIC_CAS_RETRIES,       /* compare-and-swap attempts after the first (result.attempts - 1) */
	METRIC_CACHE_CLONES,      /* a cache entry made for a repository (core/store/cache.c) */
	METRIC_CACHE_EVICTIONS,   /* a cache entry evicted (core/store/cache.c) */
	METRIC_REMOTE_ROUND_TRIPS, /* connections and transfers with remotes */
	METRIC_BATCHES,           /* group commit: batches of two requests or more (core/batch.c) */
	METRIC_BATCHED_REQUESTS,  /* the requests those batches served */
	METRIC_TWO_STEP_WRITES,   /* a write under a lock sent without it: the server lacks "atomic" */
	METRIC_DIRECT_PUSHES,     /* a write applied by one push from the cache's view (warm session) */
	METRIC_DIRECT_FALLBACKS,  /* one that was not (a stale view, a refusal): done again after the
				   * advertisement */
	METRIC_COUNT
};

/* Maps <cache_dir>/.metrics-v1, creating the directory (0700) and the file (0600) when missing;
 * both must belong to this user and be writable by no one else, and the file is never followed
 * through a symlink. Kept mapped for the process's life (remapped when cache_dir changes).
 * 0, or -1 with the reason in why. */
int metrics_open(const char *cache_dir, char *why, size_t whylen);

/* Adds n to a counter; nothing when no file is mapped (the admin command, a failed open). */
void metrics_add(enum metric m, unsigned long long n);
static inline void metrics_count(enum metric m) { metrics_add(m, 1); }

/* One answered request: method (unknown ones counted as OTHER), status, its duration, and the
 * time it spent in remotes. */
void metrics_request(const char *method, int status, double ms, double remote_ms);

/* The counters in Prometheus' text format (version 0.0.4) into out (freed by tfgit_buf_free).
 * 0, or -1 when no file is mapped or out of memory. */
int metrics_render(tfgit_buf *out);

#endif
