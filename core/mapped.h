/* Files of the cache directory that every process serving from it maps shared (a pool's
 * workers, mod_fcgid's processes, CGI runs): the counters (metrics.c) and the last failed
 * requests (failures.c). Each has a fixed layout that begins with a mapped_head; a new layout
 * gets a new file name, so processes of two versions never read each other's. */
#ifndef TFGIT_MAPPED_H
#define TFGIT_MAPPED_H

#include <stddef.h>
#include <stdint.h>

struct mapped_head {
	uint64_t magic;
	uint64_t size;    /* the layout's size: the file's */
	uint64_t created; /* Unix time the file was made */
};

/* Maps <cache_dir>/name (size bytes, beginning with a mapped_head of magic) into *map,
 * creating the directory (0700) and the file when missing: made complete (zeros, its head
 * filled) under a private name, then linked into place, so processes starting together agree
 * on one file. Both must belong to this user and be writable by no one else (the file is made
 * 0600), and the file is never followed through a symlink. 0, or -1 with the reason in why.
 * munmap(*map, size) releases it. */
int mapped_open(void **map, const char *cache_dir, const char *name, uint64_t magic, size_t size,
		char *why, size_t whylen);

/* A file kept mapped for the process's life, remapped when the cache directory changes. */
struct mapped {
	void *map; /* NULL until mapped_keep succeeded */
	char dir[4096];
};

/* m mapped as mapped_open maps it: at once when it already is, for cache_dir. 0, or -1 with the
 * reason in why (m is then unmapped). */
int mapped_keep(struct mapped *m, const char *cache_dir, const char *name, uint64_t magic, size_t size,
		char *why, size_t whylen);

#endif
