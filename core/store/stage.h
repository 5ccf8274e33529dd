/* The stage: where the objects tfgit creates (blobs, trees, commits) are written, hashed once
 * and not compressed, until cache maintenance (maint.c) packs them; and the object database a
 * cache repository uses, which writes only there. */
#ifndef TFGIT_STAGE_H
#define TFGIT_STAGE_H

#include <git2.h>

/* <repo>/STAGE_DIR/<40 hex>: the staged objects */
#define STAGE_DIR "tfgit-stage"

typedef struct stage stage;

/* Writes all n bytes of p to fd (retrying short writes and EINTR): 0, or -1 with errno set. */
int core_write_all(int fd, const void *p, size_t n);

/* The object database of the cache repository at repo_path (<dir>/<hash>.git): the stage
 * first, then its packs, then its loose objects (read only: libgit2 never writes one there).
 * *st (may be NULL) is the stage inside it, valid while the database lives. verify: a staged
 * object read is checked against its id (a cache on a disk; the caller knows where it is).
 * *out is freed with git_odb_free. */
int stage_odb(git_odb **out, stage **st, const char *repo_path, int verify);

/* The staged objects: how many, the i-th one's id (sorted), their bytes in all. */
size_t stage_count(const stage *st);
const git_oid *stage_id(const stage *st, size_t i);
unsigned long long stage_bytes(const stage *st);

/* 1 when a staged object was found damaged (and removed): what is left of the stage may name
 * objects it no longer holds (a commit without its blob), and is not to be kept. */
int stage_damaged(const stage *st);

/* Removes every staged object (after maintenance stored them elsewhere). 0, or -1 with a
 * libgit2 error set. */
int stage_clear(stage *st);

/* 1 when an object write failed for want of space (ENOSPC or EDQUOT) since the flag was last
 * cleared (clear: clear it now). */
int stage_was_full(int clear);

#endif
