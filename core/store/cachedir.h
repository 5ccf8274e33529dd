/* The cache directory itself (TFGIT_CACHE_DIR): private to this user, in memory or not. */
#ifndef TFGIT_CACHEDIR_H
#define TFGIT_CACHEDIR_H

#include <stddef.h>

/* The cache directory dir, every missing directory of it made 0700; dir itself (not followed
 * through a symlink) must be ours and writable by no one else, and is made 0700. Its open fd,
 * or TFGIT_ENOSPACE / TFGIT_ERROR with the reason, naming the path, in why. */
int cache_dir_open(const char *dir, char *why, size_t whylen);

/* Whether dir is in memory (tmpfs, ramfs): what is written there never reaches a disk. */
int cache_in_memory(const char *dir);

#endif
