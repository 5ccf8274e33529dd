/* Cache maintenance: what an operation staged is packed, packs are merged and repacked from
 * the refs (what no ref reaches is dropped), a local remote's cache keeps no objects. */
#ifndef TFGIT_MAINT_H
#define TFGIT_MAINT_H

/* A blob larger than this is kept as a loose object of its own (compressed once, never
 * re-packed, never a delta: reading it costs its size and its compressed size, no base). */
#define MAINT_BIG_OBJECT (8u << 20)
/* More packs than this are merged (or the repository repacked from its refs). */
#define MAINT_PACKS_MAX 16
/* An empty file in a cache repository made (or repacked) by this version: without it, a
 * cache of an earlier one (loose objects everywhere) is repacked from its refs once. */
#define MAINT_MARKER "tfgit-maintained"

/* Runs the maintenance of the cache repository at path, under its flock held by the caller;
 * local: the remote is a local repository, whose cache needs no object of its own. Bounded by
 * what is there to do: the objects staged by the operation, and (amortised) a merge or repack
 * when packs pile up. Never removes anything before what replaces it is fully written and
 * indexed; on any failure (a full filesystem) it stops and leaves the cache as it was. 0, or
 * -1 after logging why. */
int maint_run(const char *path, int local);

#endif
