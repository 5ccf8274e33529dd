/* Cache maintenance: what an operation staged is packed, packs are merged and repacked from
 * the refs (what no ref reaches is dropped), a local remote's cache keeps no objects. */
#ifndef TFGIT_MAINT_H
#define TFGIT_MAINT_H

#include <git2.h>

#include "stage.h"

/* A blob larger than this is kept as a loose object of its own (compressed once, never
 * re-packed, never a delta: reading it costs its size and its compressed size, no base). */
#define MAINT_BIG_OBJECT (8u << 20)
/* The stage is packed once it holds this many objects or bytes: a pack per operation would
 * cost more than the objects themselves (a few small ones each). */
#define MAINT_STAGE_OBJECTS 32
#define MAINT_STAGE_BYTES (1u << 20)
/* More packs than this are merged (or the repository repacked from its refs). */
#define MAINT_PACKS_MAX 16
/* An empty file in a cache repository made (or repacked) by this version: without it, a
 * cache of an earlier one (loose objects everywhere) is repacked from its refs once. */
#define MAINT_MARKER "tfgit-maintained"

/* Runs the maintenance of the cache repository repo at path (opened on stage_odb, whose stage
 * is st), under its flock held by the caller, after the operation (no other user of repo
 * remains; it is freed next: packs it had open may be gone); local: the remote is a local
 * repository, whose cache needs no object of its own (repo then has the remote as an
 * alternate: nothing is read through it here). Bounded by
 * what is there to do: the objects staged by the operation, and (amortised) a merge or repack
 * when packs pile up. Never removes anything before what replaces it is fully written and
 * indexed; on any failure (a full filesystem) it stops and leaves the cache as it was. 0, or
 * -1 after logging why, or MAINT_DAMAGED: a staged object does not match its id (a cache on a
 * disk, where a staged object is checked before it is packed), and the caller throws the cache
 * away (cache_discard). */
#define MAINT_DAMAGED 1
int maint_run(git_repository *repo, stage *st, const char *path, int local);

#endif
