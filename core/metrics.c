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
#include "store/cachedir.h"
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
};

/* The file's layout: only ever grown by a new file name (METRICS_FILE). */
struct layout {
	uint64_t magic;
	uint64_t size;    /* sizeof(struct layout) */
	uint64_t created; /* Unix time the file was made: the counters' start */
	uint64_t counters[COUNTERS_MAX];
	uint64_t remote_us;
	uint64_t latency_us;            /* sum of request durations */
	uint64_t latency[NBOUNDS + 1];  /* per bucket, not cumulative; the last is above 60 s */
	uint64_t requests[NMETHODS][STATUS_MAX];
};

static struct layout *shared;
static char shared_dir[4096];

/* The file's blocks are really there (posix_fallocate: a no-op where they are): 1, or 0 when
 * the filesystem has no room for them. */
static int blocks_allocated(int fd)
{
	int e = posix_fallocate(fd, 0, sizeof(struct layout));
	if (e == 0 || e == EOPNOTSUPP || e == EINVAL)
		return 1;
	errno = e;
	return 0;
}

/* The counters' file in dfd: opened, or made complete under a private name and then linked into
 * place (two processes making it at once: one link wins, the other opens the winner's). */
static int open_file(int dfd, char *why, size_t whylen)
{
	for (int tries = 0; tries < 5; tries++) {
		int fd = openat(dfd, METRICS_FILE, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
		if (fd >= 0 || errno != ENOENT) {
			if (fd < 0)
				snprintf(why, whylen, "%s: %s", METRICS_FILE, errno == ELOOP ?
					 "a symlink (never followed)" : strerror(errno));
			return fd;
		}
		char tmp[96];
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		snprintf(tmp, sizeof(tmp), "%s.%ld.%ld.%d", METRICS_FILE, (long)getpid(), (long)ts.tv_nsec, tries);
		int t = openat(dfd, tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (t < 0)
			continue;
		/* every byte written, not a sparse ftruncate: a page first touched through the mapping
		 * on a full filesystem (tmpfs) would be SIGBUS, not an error */
		static struct layout head;
		head.magic = METRICS_MAGIC;
		head.size = sizeof(struct layout);
		head.created = (uint64_t)time(NULL);
		int ok = pwrite(t, &head, sizeof(head), 0) == (ssize_t)sizeof(head) && blocks_allocated(t);
		int linked = ok ? linkat(dfd, tmp, dfd, METRICS_FILE, 0) : -1;
		int e = errno;
		unlinkat(dfd, tmp, 0);
		if (linked == 0)
			return t;
		close(t);
		if (!ok || e != EEXIST) {
			snprintf(why, whylen, "%s cannot be made: %s", METRICS_FILE, strerror(e));
			return -1;
		}
	}
	snprintf(why, whylen, "%s cannot be made", METRICS_FILE);
	return -1;
}

int metrics_open(const char *cache_dir, char *why, size_t whylen)
{
	struct stat st;
	if (shared && !strcmp(shared_dir, cache_dir))
		return 0;
	if (shared) {
		munmap(shared, sizeof(*shared));
		shared = NULL;
	}
	int dfd = cache_dir_open(cache_dir, why, whylen); /* the cache's own rule */
	if (dfd < 0)
		return -1;
	int fd = open_file(dfd, why, whylen);
	close(dfd);
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 022) ||
	    st.st_size != (off_t)sizeof(struct layout)) {
		snprintf(why, whylen, "%s/%s must be a file of %zu bytes belonging to this user and "
			 "writable by no one else (remove it: it is made again)", cache_dir, METRICS_FILE,
			 sizeof(struct layout));
		close(fd);
		return -1;
	}
	if (st.st_mode & 077)
		fchmod(fd, 0600);
	if (!blocks_allocated(fd)) {
		snprintf(why, whylen, "%s/%s: no room for its blocks: %s", cache_dir, METRICS_FILE, strerror(ENOSPC));
		close(fd);
		return -1;
	}
	void *m = mmap(NULL, sizeof(struct layout), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (m == MAP_FAILED) {
		snprintf(why, whylen, "%s/%s cannot be mapped: %s", cache_dir, METRICS_FILE, strerror(errno));
		return -1;
	}
	struct layout *l = m;
	if (l->magic != METRICS_MAGIC || l->size != sizeof(struct layout)) {
		snprintf(why, whylen, "%s/%s is not tfgit's counters file (remove it: it is made again)",
			 cache_dir, METRICS_FILE);
		munmap(m, sizeof(struct layout));
		return -1;
	}
	shared = l;
	snprintf(shared_dir, sizeof(shared_dir), "%s", cache_dir);
	return 0;
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
		(unsigned long long)shared->created);
	if (fclose(f) != 0) {
		free(text);
		return -1;
	}
	out->ptr = text;
	out->size = size;
	return 0;
}
