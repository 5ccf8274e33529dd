/* The per-remote bare cache repository, and the flock that serialises all workers on it. */
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "cache.h"
#include "deadline.h"
#include "internal.h"
#include "tfgit.h"

static int mkdirs(const char *dir)
{
	char tmp[4096];
	if (snprintf(tmp, sizeof(tmp), "%s", dir) >= (int)sizeof(tmp))
		return -1;
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(tmp, 0700) < 0 && errno != EEXIST)
		return -1;
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

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int open_or_init(cache *c)
{
	int err = git_repository_open_bare(&c->repo, c->path);
	if (err == 0)
		return 0;
	if (err != GIT_ENOTFOUND)
		core_log("cache %s cannot be opened (%s): rebuilding it", c->path,
			 git_error_last() ? git_error_last()->message : "unknown");
	return cache_reset(c);
}

int cache_reset(cache *c)
{
	git_repository_free(c->repo);
	c->repo = NULL;
	if (access(c->path, F_OK) == 0 && nftw(c->path, rm_entry, 16, FTW_DEPTH | FTW_PHYS) < 0)
		return git_failure(NULL, -1, "cache removal");
	int err = git_repository_init(&c->repo, c->path, 1);
	if (err < 0)
		return git_failure(NULL, err, "cache creation");
	return 0;
}

int cache_open(cache **out, const char *cache_dir, const char *url)
{
	char name[65] = {0}, lockpath[4096 + 80];
	int rc = TFGIT_ERROR;
	cache *c = calloc(1, sizeof(*c));
	*out = NULL;
	if (!c)
		return TFGIT_ERROR;
	c->lockfd = -1;
	if (mkdirs(cache_dir) < 0) {
		core_log("cache directory %s: %s", cache_dir, strerror(errno));
		rc = errno == ENOSPC ? TFGIT_ENOSPACE : TFGIT_ERROR;
		goto done;
	}
	if (cache_name(name, url) < 0)
		goto done;
	snprintf(c->path, sizeof(c->path), "%s/%s.git", cache_dir, name);
	snprintf(lockpath, sizeof(lockpath), "%s/%s.flock", cache_dir, name);
	c->lockfd = open(lockpath, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (c->lockfd < 0) {
		core_log("cache lock %s: %s", lockpath, strerror(errno));
		rc = errno == ENOSPC ? TFGIT_ENOSPACE : TFGIT_ERROR;
		goto done;
	}
	while (flock(c->lockfd, LOCK_EX) < 0) {
		if (errno != EINTR || deadline_passed()) {
			core_log("flock %s: %s", lockpath, strerror(errno));
			goto done;
		}
	}
	rc = open_or_init(c);
	if (rc == 0) {
		*out = c;
		return 0;
	}
done:
	cache_free(c);
	return rc;
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
