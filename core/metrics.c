/* Counters shared by every process that serves from one cache directory, whatever started it:
 * a pool's workers, mod_fcgid's processes, CGI runs. They share only the cache directory, so
 * the counters live in a file there, <cache dir>/.metrics-v1, of a fixed layout, mapped
 * MAP_SHARED and updated with atomic adds (no lock, no lost update, no torn counter). A new
 * layout gets a new file name, so processes of two versions never read each other's. */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "internal.h"
#include "mapped.h"
#include "metrics.h"

#define METRICS_FILE ".metrics-v1"
#define METRICS_MAGIC 0x31766d7469676674ULL /* "tfgitmv1" */
#define COUNTERS_MAX 16 /* room for new counters without a new layout */
#define STATUS_MAX 600

static const char *const methods[] = {"GET", "POST", "PUT", "DELETE", "LOCK", "UNLOCK", "OTHER"};
#define NMETHODS (sizeof(methods) / sizeof(methods[0]))
/* request latency buckets, seconds: 5 ms to a minute (TFGIT_REMOTE_TIMEOUT's default) */
static const double bounds[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
#define NBOUNDS (sizeof(bounds) / sizeof(bounds[0]))

static const struct {
	const char *name, *help;
} counter_names[METRIC_COUNT] = {
	[METRIC_LOCK_CONFLICTS] = {"tfgit_lock_conflicts_total", "LOCK requests refused with 409: another ID holds the lock."},
	[METRIC_CAS_RETRIES] = {"tfgit_cas_retries_total", "Compare-and-swap attempts after a lost race (the branch moved)."},
	[METRIC_CACHE_CLONES] = {"tfgit_cache_clones_total", "Cache entries made for a repository not in the cache."},
	[METRIC_CACHE_EVICTIONS] = {"tfgit_cache_evictions_total", "Cache entries evicted (TFGIT_CACHE_MAX)."},
	[METRIC_REMOTE_ROUND_TRIPS] = {"tfgit_remote_round_trips_total", "Connections and transfers with remote repositories."},
	[METRIC_BATCHES] = {"tfgit_group_commit_batches_total", "Group commit: batches that served two requests or more in one session."},
	[METRIC_BATCHED_REQUESTS] = {"tfgit_group_commit_requests_total", "Group commit: the requests those batches served."},
	[METRIC_TWO_STEP_WRITES] = {"tfgit_two_step_writes_total", "Writes under a lock pushed without it: the repository does not advertise atomic pushes, so the lock was checked, then the state pushed (two steps)."},
	[METRIC_DIRECT_PUSHES] = {"tfgit_direct_pushes_total", "Writes (LOCK, UNLOCK, POST, DELETE) to an http(s) repository applied by one push request built from the cache's view, without reading the advertisement first (TFGIT_KEEP_CONNECTIONS)."},
	[METRIC_DIRECT_FALLBACKS] = {"tfgit_direct_push_fallbacks_total", "Direct pushes that were not applied (the cache's view was stale: another writer moved a ref; the server refused or closed): the write was done again after reading the advertisement."},
};

/* The file's layout: only ever grown by a new file name (METRICS_FILE). */
struct layout {
	struct mapped_head head; /* created: the counters' start */
	uint64_t counters[COUNTERS_MAX];
	uint64_t remote_us;
	uint64_t latency_us;            /* sum of request durations */
	uint64_t latency[NBOUNDS + 1];  /* per bucket, not cumulative; the last is above 60 s */
	uint64_t requests[NMETHODS][STATUS_MAX];
};

static struct mapped file;
static struct layout *shared; /* file's map */

int metrics_open(const char *cache_dir, char *why, size_t whylen)
{
	int rc = mapped_keep(&file, cache_dir, METRICS_FILE, METRICS_MAGIC, sizeof(struct layout), why, whylen);
	shared = file.map;
	return rc;
}

static void add(uint64_t *at, uint64_t n)
{
	__atomic_fetch_add(at, n, __ATOMIC_RELAXED);
}

static uint64_t get(const uint64_t *at)
{
	return __atomic_load_n(at, __ATOMIC_RELAXED);
}

void metrics_add(enum metric m, unsigned long long n)
{
	if (shared && m >= 0 && m < METRIC_COUNT && n)
		add(&shared->counters[m], n);
}

void metrics_request(const char *method, int status, double ms, double remote_ms)
{
	size_t i = 0, b = 0;
	if (!shared)
		return;
	while (i < NMETHODS - 1 && (!method || strcmp(methods[i], method) != 0))
		i++;
	if (status < 100 || status >= STATUS_MAX)
		status = 500;
	while (b < NBOUNDS && ms / 1e3 > bounds[b])
		b++;
	add(&shared->latency[b], 1);
	add(&shared->latency_us, ms > 0 ? (uint64_t)(ms * 1e3) : 0);
	add(&shared->requests[i][status], 1);
	if (remote_ms > 0)
		add(&shared->remote_us, (uint64_t)(remote_ms * 1e3));
}

int metrics_render(tfgit_buf *out)
{
	char *text = NULL;
	size_t size = 0;
	out->ptr = NULL;
	out->size = 0;
	if (!shared)
		return -1;
	FILE *f = open_memstream(&text, &size);
	if (!f)
		return -1;
	fprintf(f, "# HELP tfgit_requests_total Requests answered (Terraform's addresses, not /metrics or /health), by method and status.\n"
		   "# TYPE tfgit_requests_total counter\n");
	for (size_t m = 0; m < NMETHODS; m++)
		for (int s = 0; s < STATUS_MAX; s++) {
			uint64_t v = get(&shared->requests[m][s]);
			if (v)
				fprintf(f, "tfgit_requests_total{method=\"%s\",status=\"%d\"} %llu\n", methods[m], s,
					(unsigned long long)v);
		}
	fprintf(f, "# HELP tfgit_request_duration_seconds Time from a request's start to its answer.\n"
		   "# TYPE tfgit_request_duration_seconds histogram\n");
	uint64_t cum = 0;
	for (size_t b = 0; b <= NBOUNDS; b++) {
		cum += get(&shared->latency[b]);
		if (b < NBOUNDS)
			fprintf(f, "tfgit_request_duration_seconds_bucket{le=\"%g\"} %llu\n", bounds[b],
				(unsigned long long)cum);
		else
			fprintf(f, "tfgit_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n", (unsigned long long)cum);
	}
	fprintf(f, "tfgit_request_duration_seconds_sum %.6f\n", (double)get(&shared->latency_us) / 1e6);
	fprintf(f, "tfgit_request_duration_seconds_count %llu\n", (unsigned long long)cum);
	for (int c = 0; c < METRIC_COUNT; c++)
		fprintf(f, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", counter_names[c].name, counter_names[c].help,
			counter_names[c].name, counter_names[c].name, (unsigned long long)get(&shared->counters[c]));
	fprintf(f, "# HELP tfgit_remote_seconds_total Time requests spent connecting to and transferring with remotes.\n"
		   "# TYPE tfgit_remote_seconds_total counter\ntfgit_remote_seconds_total %.6f\n",
		(double)get(&shared->remote_us) / 1e6);
	fprintf(f, "# HELP tfgit_metrics_created_timestamp_seconds When these counters started (their file was made).\n"
		   "# TYPE tfgit_metrics_created_timestamp_seconds gauge\ntfgit_metrics_created_timestamp_seconds %llu\n",
		(unsigned long long)shared->head.created);
	if (fclose(f) != 0) {
		free(text);
		return -1;
	}
	out->ptr = text;
	out->size = size;
	return 0;
}
