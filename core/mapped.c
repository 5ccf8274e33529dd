/* A file of the cache directory mapped shared by every process serving from it (mapped.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mapped.h"
#include "store/cachedir.h"

/* The file's blocks are really there (posix_fallocate: a no-op where they are): 1, or 0 when
 * the filesystem has no room for them. */
static int blocks_allocated(int fd, size_t size)
{
	int e = posix_fallocate(fd, 0, (off_t)size);
	if (e == 0 || e == EOPNOTSUPP || e == EINVAL)
		return 1;
	errno = e;
	return 0;
}

/* name in dfd: opened, or made complete under a private name and then linked into place (two
 * processes making it at once: one link wins, the other opens the winner's). */
static int open_file(int dfd, const char *name, uint64_t magic, size_t size, char *why, size_t whylen)
{
	for (int tries = 0; tries < 5; tries++) {
		int fd = openat(dfd, name, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
		if (fd >= 0 || errno != ENOENT) {
			if (fd < 0)
				snprintf(why, whylen, "%s: %s", name, errno == ELOOP ?
					 "a symlink (never followed)" : strerror(errno));
			return fd;
		}
		char tmp[160];
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		snprintf(tmp, sizeof(tmp), "%s.%ld.%ld.%d", name, (long)getpid(), (long)ts.tv_nsec, tries);
		int t = openat(dfd, tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (t < 0)
			continue;
		/* every byte written, not a sparse ftruncate: a page first touched through the mapping
		 * on a full filesystem (tmpfs) would be SIGBUS, not an error */
		struct mapped_head *head = calloc(1, size);
		int ok = head != NULL;
		if (ok) {
			head->magic = magic;
			head->size = size;
			head->created = (uint64_t)time(NULL);
			ok = pwrite(t, head, size, 0) == (ssize_t)size && blocks_allocated(t, size);
		}
		int linked = ok ? linkat(dfd, tmp, dfd, name, 0) : -1;
		int e = head ? errno : ENOMEM;
		free(head);
		unlinkat(dfd, tmp, 0);
		if (linked == 0)
			return t;
		close(t);
		if (!ok || e != EEXIST) {
			snprintf(why, whylen, "%s cannot be made: %s", name, strerror(e));
			return -1;
		}
	}
	snprintf(why, whylen, "%s cannot be made", name);
	return -1;
}

int mapped_open(void **map, const char *cache_dir, const char *name, uint64_t magic, size_t size,
		char *why, size_t whylen)
{
	struct stat st;
	*map = NULL;
	int dfd = cache_dir_open(cache_dir, why, whylen); /* the cache's own rule */
	if (dfd < 0)
		return -1;
	int fd = open_file(dfd, name, magic, size, why, whylen);
	close(dfd);
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 022) ||
	    st.st_size != (off_t)size) {
		snprintf(why, whylen, "%s/%s must be a file of %zu bytes belonging to this user and "
			 "writable by no one else (remove it: it is made again)", cache_dir, name, size);
		close(fd);
		return -1;
	}
	if (st.st_mode & 077)
		fchmod(fd, 0600);
	if (!blocks_allocated(fd, size)) {
		snprintf(why, whylen, "%s/%s: no room for its blocks: %s", cache_dir, name, strerror(ENOSPC));
		close(fd);
		return -1;
	}
	void *m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (m == MAP_FAILED) {
		snprintf(why, whylen, "%s/%s cannot be mapped: %s", cache_dir, name, strerror(errno));
		return -1;
	}
	const struct mapped_head *h = m;
	if (h->magic != magic || h->size != size) {
		snprintf(why, whylen, "%s/%s is not tfgit's file of that name (remove it: it is made again)",
			 cache_dir, name);
		munmap(m, size);
		return -1;
	}
	*map = m;
	return 0;
}

int mapped_keep(struct mapped *m, const char *cache_dir, const char *name, uint64_t magic, size_t size,
		char *why, size_t whylen)
{
	if (m->map && !strcmp(m->dir, cache_dir))
		return 0;
	if (m->map) {
		munmap(m->map, size);
		m->map = NULL;
	}
	if (mapped_open(&m->map, cache_dir, name, magic, size, why, whylen) < 0)
		return -1;
	snprintf(m->dir, sizeof(m->dir), "%s", cache_dir);
	return 0;
}
