/* The per-remote bare cache repository, the flock that serialises all workers on it, and the
 * bound on how many (or how large) caches are kept.
 *
 * An entry is <hash>.git and <hash>.flock. Entries are removed (a remote that could not be
 * reached, eviction) only by a holder of their flock, which unlinks the flock file last; so a
 * waiter that gets the flock checks that its descriptor is still the file at that path, and
 * starts again when it is not. */
#define _XOPEN_SOURCE 700
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/vfs.h>
#include <linux/magic.h>
#include <unistd.h>

#include <openssl/evp.h>

#include <git2/sys/repository.h>

#include "cache.h"
#include "cachedir.h"
#include "../net/deadline.h"
#include "../internal.h"
#include "maint.h"
#include "stage.h"
#include "../tfgit.h"

#define EVICT_MAX 4096

static int private_dir(const char *dir, char *why, size_t whylen)
{
	int fd = cache_dir_open(dir, why, whylen);
	if (fd < 0)
		return fd;
	close(fd);
	return 0;
}

/* The cache is named by the URL without credentials, so a token never shows in a path. */
static int cache_name(char out[65], const char *url)
{
	char clean[4096];
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	tfgit_url_redact(clean, sizeof(clean), url);
	if (!EVP_Digest(clean, strlen(clean), md, &mdlen, EVP_sha256(), NULL))
		return -1;
	for (unsigned int i = 0; i < 16 && i < mdlen; i++)
		sprintf(out + 2 * i, "%02x", md[i]);
	return 0;
}

int cache_entry_path(char *out, size_t outlen, const char *cache_dir, const char *url, const char *suffix)
{
	char name[65] = {0};
	if (cache_name(name, url) < 0)
		return -1;
	return snprintf(out, outlen, "%s/%s%s", cache_dir, name, suffix) < (int)outlen ? 0 : -1;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int remove_tree(const char *path)
{
	if (access(path, F_OK) != 0)
		return 0;
	return nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* The repository's objects are written to its stage (stage.c), never as loose objects. */
static int use_stage(cache *c)
{
	git_odb *odb = NULL;
	int err = stage_odb(&odb, &c->stage, c->path, !cache_in_memory(c->path));
	if (err == 0)
		err = git_repository_set_odb(c->repo, odb);
	git_odb_free(odb);
	return err;
}

/* What cache_reset set aside, had it been stopped half-way. */
static void remove_kept_stage(const char *path)
{
	char kept[4200];
	snprintf(kept, sizeof(kept), "%s.stage", path);
	remove_tree(kept);
}

/* Whether the waiter of the queued request at path is gone: it holds a flock on its file for as
 * long as it waits (batch.c). */
static int waiter_gone(const char *path)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC), gone = 0;
	if (fd >= 0) {
		gone = flock(fd, LOCK_EX | LOCK_NB) == 0;
		close(fd);
	}
	return gone;
}

void cache_queue_sweep(const char *qdir)
{
	DIR *d = opendir(qdir);
	struct dirent *e;
	char path[4400], other[4400];
	struct stat st;
	if (!d)
		return;
	while ((e = readdir(d)) != NULL) {
		const char *nm = e->d_name;
		if (strlen(nm) < 3 || nm[1] != '.' || !strchr("rcaw", nm[0]) ||
		    snprintf(path, sizeof(path), "%s/%s", qdir, nm) >= (int)sizeof(path))
			continue;
		snprintf(other, sizeof(other), "%s/%c.%s", qdir, nm[0] == 'a' ? 'c' : 'a', nm + 2);
		if (nm[0] == 'w' || (nm[0] == 'a' && lstat(other, &st) < 0)) {
			unlink(path);
		} else if ((nm[0] == 'r' || nm[0] == 'c') && waiter_gone(path)) {
			unlink(path); /* the claim first: an answer without it is left over */
			unlink(other);
		}
	}
	closedir(d);
}

/* The group commit queue beside an entry (<hash>.q, batch.c) goes with it when no request waits
 * in it: a waiter that finds it gone is served alone (batch_run). */
static void remove_queue(const char *path)
{
	char q[4200];
	size_t len = strlen(path);
	if (len < 4 || strcmp(path + len - 4, ".git") || len + 16 > sizeof(q))
		return;
	snprintf(q, sizeof(q), "%.*s.q", (int)(len - 4), path);
	cache_queue_sweep(q);
	static const char *const files[] = {"turn", "last"}; /* the queue's own files */
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		char f[4300];
		snprintf(f, sizeof(f), "%s/%s", q, files[i]);
		unlink(f);
	}
	rmdir(q);
}

static int open_or_init(cache *c)
{
	int err = git_repository_open_bare(&c->repo, c->path);
	if (err == 0 && (err = use_stage(c)) == 0)
		return 0;
	if (err == 0)
		err = -1;
	if (err != GIT_ENOTFOUND)
		core_log("cache %s cannot be opened (%s): rebuilding it", c->path,
			 git_error_last() ? git_error_last()->message : "unknown");
	c->created = err == GIT_ENOTFOUND;
	return cache_reset(c);
}

int cache_reset(cache *c)
{
	char stage_dir[4200], kept[4200];
	int damaged = stage_damaged(c->stage);
	git_repository_free(c->repo);
	c->repo = NULL;
	c->stage = NULL;
	c->shared = 0;
	/* what the operation staged survives a rebuild: a state whose body is gone already (the
	 * core frees a large body once it is staged) is still there to push; unless a staged file
	 * was found damaged: the rest may name what it lost (a commit without its blob), which a
	 * fetch would then take for present */
	snprintf(stage_dir, sizeof(stage_dir), "%s/%s", c->path, STAGE_DIR);
	snprintf(kept, sizeof(kept), "%s.stage", c->path);
	remove_tree(kept);
	int keep = !damaged && rename(stage_dir, kept) == 0;
	if (remove_tree(c->path) < 0)
		return git_failure(NULL, -1, "cache removal");
	int err = git_repository_init(&c->repo, c->path, 1);
	if (err < 0)
		return git_failure(NULL, err, "cache creation");
	if (keep && rename(kept, stage_dir) < 0)
		remove_tree(kept);
	/* made by this version: maintenance need not look for an older one's loose objects */
	snprintf(kept, sizeof(kept), "%s/%s", c->path, MAINT_MARKER);
	int fd = open(kept, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd >= 0)
		close(fd);
	if ((err = use_stage(c)) < 0)
		return git_failure(NULL, err, "cache creation");
	return 0;
}

/* 1 when fd is still the file at path (not removed or replaced since it was opened). */
static int still_there(int fd, const char *path)
{
	struct stat a, b;
	return fstat(fd, &a) == 0 && lstat(path, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

/* Opens and flocks c->lockpath, waiting at most queue_seconds. */
static int take_flock(cache *c, int queue_seconds, char *why, size_t whylen)
{
	struct stat st;
	for (;;) {
		c->lockfd = open(c->lockpath, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (c->lockfd < 0 || fstat(c->lockfd, &st) < 0) {
			int e = errno;
			if (e == EACCES && lstat(c->lockpath, &st) == 0 && st.st_uid != geteuid())
				snprintf(why, whylen, "%s is not a file of this process's user (uid %ld) writable "
					 "by it alone: refused", c->lockpath, (long)geteuid());
			else
				snprintf(why, whylen, "%s: %s", c->lockpath, e == ELOOP ? "a symlink (not followed)" :
					 strerror(e));
			errno = e;
			core_log("cache lock %s", why);
			return errno == ENOSPC ? TFGIT_ENOSPACE : TFGIT_ERROR;
		}
		if (st.st_uid != geteuid() || !S_ISREG(st.st_mode) || (st.st_mode & 022)) {
			snprintf(why, whylen, "%s is not a file of this process's user (uid %ld) writable by "
				 "it alone: refused", c->lockpath, (long)geteuid());
			core_log("cache lock %s", why);
			return TFGIT_ERROR;
		}
		deadline_wait_begin(queue_seconds);
		int rc = 0;
		while (flock(c->lockfd, LOCK_EX | (queue_seconds < 0 ? LOCK_NB : 0)) < 0) {
			if (errno == EWOULDBLOCK && queue_seconds < 0) {
				rc = TFGIT_EBUSY; /* a try (group commit's waiters): held by another */
			} else if (errno != EINTR) {
				core_log("flock %s: %s", c->lockpath, strerror(errno));
				rc = TFGIT_ERROR;
			} else if (deadline_passed()) {
				rc = TFGIT_ETIMEOUT;
			} else if (deadline_wait_passed()) {
				rc = TFGIT_EBUSY;
			} else {
				continue;
			}
			break;
		}
		deadline_wait_end();
		if (rc < 0)
			return rc;
		if (still_there(c->lockfd, c->lockpath)) {
			futimens(c->lockfd, NULL); /* the entry's last use, for eviction */
			return 0;
		}
		close(c->lockfd); /* the entry was removed while we waited: a new one */
		c->lockfd = -1;
	}
}

int cache_open(cache **out, const char *cache_dir, const char *url, int queue_seconds, char *why,
	       size_t whylen)
{
	char name[65] = {0};
	int rc = TFGIT_ERROR;
	cache *c = calloc(1, sizeof(*c));
	*out = NULL;
	if (!c)
		return TFGIT_ERROR;
	c->lockfd = -1;
	snprintf(why, whylen, "%s", tfgit_strerror(TFGIT_ERROR));
	if ((rc = private_dir(cache_dir, why, whylen)) < 0)
		goto done;
	/* an object is hashed once, when it is written, and libgit2 does not hash it again when
	 * it reads it (tfgit_init) where the cache is in memory; on a disk, which may change a
	 * file's bytes, every object read is checked against its id */
	git_libgit2_opts(GIT_OPT_ENABLE_STRICT_HASH_VERIFICATION, !cache_in_memory(cache_dir));
	rc = TFGIT_ERROR;
	if (cache_name(name, url) < 0)
		goto done;
	snprintf(c->path, sizeof(c->path), "%s/%s.git", cache_dir, name);
	snprintf(c->lockpath, sizeof(c->lockpath), "%s/%s.flock", cache_dir, name);
	if ((rc = take_flock(c, queue_seconds, why, whylen)) < 0 || (rc = open_or_init(c)) < 0)
		goto done;
	*out = c;
	return 0;
done:
	cache_free(c);
	return rc;
}

void cache_discard(cache *c)
{
	if (!c)
		return;
	git_repository_free(c->repo);
	c->repo = NULL;
	if (remove_tree(c->path) < 0)
		core_log("cache %s could not be removed: %s", c->path, strerror(errno));
	remove_kept_stage(c->path);
	remove_queue(c->path);
	unlink(c->lockpath); /* last, while the flock is held */
	cache_free(c);
}

void cache_free(cache *c)
{
	if (!c)
		return;
	git_repository_free(c->repo);
	if (c->lockfd >= 0)
		close(c->lockfd); /* releases the flock */
	free(c);
}

int cache_full(const char *dir)
{
	struct statvfs sv;
	if (stage_was_full(0))
		return 1;
	return statvfs(dir, &sv) == 0 && ((unsigned long long)sv.f_bavail * sv.f_frsize < (1ULL << 20) ||
					  (sv.f_files && !sv.f_favail));
}

/* Eviction */

struct entry {
	char name[80]; /* <hash> */
	struct timespec used;
	long long bytes;
};

static long long tree_bytes;

static int add_bytes(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)path;
	(void)flag;
	(void)ftw;
	tree_bytes += (long long)sb->st_blocks * 512;
	return 0;
}

static int older(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;
	if (x->used.tv_sec != y->used.tv_sec)
		return x->used.tv_sec < y->used.tv_sec ? -1 : 1;
	return x->used.tv_nsec < y->used.tv_nsec ? -1 : x->used.tv_nsec > y->used.tv_nsec;
}

/* Removes one entry if nobody uses it: 1 removed, 0 skipped. */
static int evict_one(const char *dir, const struct entry *e)
{
	cache c = {.lockfd = -1};
	snprintf(c.path, sizeof(c.path), "%s/%s.git", dir, e->name);
	snprintf(c.lockpath, sizeof(c.lockpath), "%s/%s.flock", dir, e->name);
	c.lockfd = open(c.lockpath, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (c.lockfd < 0)
		return 0;
	if (flock(c.lockfd, LOCK_EX | LOCK_NB) < 0 || !still_there(c.lockfd, c.lockpath)) {
		close(c.lockfd);
		return 0;
	}
	if (remove_tree(c.path) < 0) {
		core_log("cache eviction of %s failed: %s", c.path, strerror(errno));
		close(c.lockfd);
		return 0;
	}
	remove_kept_stage(c.path);
	remove_queue(c.path);
	unlink(c.lockpath);
	close(c.lockfd);
	core_log("cache %s evicted (least recently used, TFGIT_CACHE_MAX)", c.path);
	return 1;
}

size_t cache_evict(const char *cache_dir, long max_count, long long max_bytes)
{
	struct entry *es = NULL;
	size_t n = 0, cap = 0, evicted = 0;
	long long total = 0;
	struct dirent *d;
	DIR *dir = opendir(cache_dir);
	if (!dir || (max_count <= 0 && max_bytes <= 0))
		goto done;
	while ((d = readdir(dir)) != NULL && n < EVICT_MAX) {
		size_t len = strlen(d->d_name);
		char path[4096];
		struct stat st;
		if (len < 7 || len >= 80 || strcmp(d->d_name + len - 6, ".flock") != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", cache_dir, d->d_name);
		if (lstat(path, &st) < 0)
			continue;
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 64;
			struct entry *ne = realloc(es, ncap * sizeof(*ne));
			if (!ne)
				goto done;
			es = ne;
			cap = ncap;
		}
		struct entry *e = &es[n++];
		snprintf(e->name, sizeof(e->name), "%.*s", (int)(len - 6), d->d_name);
		e->used = st.st_mtim;
		e->bytes = 0;
		if (max_bytes > 0) {
			snprintf(path, sizeof(path), "%s/%s.git", cache_dir, e->name);
			tree_bytes = 0;
			nftw(path, add_bytes, 16, FTW_PHYS);
			e->bytes = tree_bytes;
			total += tree_bytes;
		}
	}
	if (n) /* es is NULL when there is no entry: qsort may not be given NULL */
		qsort(es, n, sizeof(*es), older);
	size_t left = n;
	for (size_t i = 0; i < n; i++) {
		if ((max_count <= 0 || (long)left <= max_count) && (max_bytes <= 0 || total <= max_bytes))
			break;
		if (evict_one(cache_dir, &es[i])) {
			evicted++;
			left--;
			total -= es[i].bytes;
		}
	}
done:
	if (dir)
		closedir(dir);
	free(es);
	return evicted;
}
