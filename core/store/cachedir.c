/* The cache directory itself: made and checked private to this user, and whether it is in
 * memory. store/'s lowest file: what the counters (metrics.c) and the settings need of the
 * cache directory, without the cache above it. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <linux/magic.h>
#include <unistd.h>

#include "cachedir.h"
#include "../internal.h"

static int refuse_foreign(const char *dir, const struct stat *st, char *why, size_t whylen)
{
	snprintf(why, whylen, "%s belongs to uid %ld, not to this process's user (uid %ld): "
		 "set TFGIT_CACHE_DIR to a directory of your own", dir, (long)st->st_uid, (long)geteuid());
	core_log("cache directory: %s", why);
	return TFGIT_ERROR;
}

int cache_dir_open(const char *dir, char *why, size_t whylen)
{
	char tmp[4096];
	struct stat st;
	if (snprintf(tmp, sizeof(tmp), "%s", dir) >= (int)sizeof(tmp))
		return TFGIT_ERROR;
	for (char *p = tmp + 1;; p++) {
		if (*p && *p != '/')
			continue;
		char end = *p;
		*p = '\0';
		if (mkdir(tmp, 0700) < 0 && errno != EEXIST) {
			snprintf(why, whylen, "%s cannot be made: %s", tmp, strerror(errno));
			return errno == ENOSPC ? TFGIT_ENOSPACE : TFGIT_ERROR;
		}
		if (!end)
			break;
		*p = '/';
	}
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) < 0) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		/* what is in the way, for the message: the checks below are made on what was opened */
		if (e == EACCES && lstat(dir, &st) == 0 && st.st_uid != geteuid())
			return refuse_foreign(dir, &st, why, whylen);
		snprintf(why, whylen, "%s: %s", dir, e == ELOOP || e == ENOTDIR ?
			 "not a directory (a symlink is not followed)" : strerror(e));
		core_log("cache directory: %s", why);
		return TFGIT_ERROR;
	}
	int rc = 0;
	if (st.st_uid != geteuid()) {
		close(fd);
		return refuse_foreign(dir, &st, why, whylen);
	}
	if (st.st_mode & 022) {
		/* others could have put anything in it: a flock held forever, a planted repository */
		snprintf(why, whylen, "%s is writable by %s: refused (remove it, or make it 0700 "
			 "and check what it holds)", dir, st.st_mode & 002 ? "every user" : "its group");
		rc = TFGIT_ERROR;
	} else if ((st.st_mode & 077) && fchmod(fd, 0700) < 0) {
		snprintf(why, whylen, "%s is readable by other users and cannot be made private: %s", dir,
			 strerror(errno));
		rc = TFGIT_ERROR;
	}
	if (rc < 0) {
		close(fd);
		core_log("cache directory: %s", why);
		return rc;
	}
	return fd;
}

int cache_in_memory(const char *dir)
{
	struct statfs fs;
	return statfs(dir, &fs) == 0 && (fs.f_type == TMPFS_MAGIC || fs.f_type == RAMFS_MAGIC);
}
