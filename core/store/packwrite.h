/* Writes objects whose ids are known into a new pack and its index, without hashing them again
 * (libgit2's pack builder hands every pack to its indexer, which inflates and hashes each
 * object once more, and compresses at zlib's default level). */
#ifndef TFGIT_PACKWRITE_H
#define TFGIT_PACKWRITE_H

#include <git2.h>

/* The n objects ids (read from odb, whole, one at a time) into packdir/pack-<hex>.pack and
 * .idx, compressed at zlib level; the pack is named last by its index appearing, once both are
 * whole. name: "pack-<hex>". 0, or -1 with a libgit2 error set (GIT_ERROR_OS: errno's reason,
 * "No space left on device") and nothing left behind. */
int pack_write(char *name, size_t namelen, git_odb *odb, const char *packdir, const git_oid *ids,
	       size_t n, int level);

#endif
