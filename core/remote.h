/* One connection to a remote for one operation: the refs it advertised, object transfer into
 * the cache, and compare-and-swap ref updates. */
#ifndef TFGIT_REMOTE_H
#define TFGIT_REMOTE_H

#include <git2.h>

#include "tfgit.h"

typedef struct session session;

/* Connects to url (for_push: a receive-pack advertisement, else upload-pack) and records the
 * advertised refs. Local paths and file:// open the remote repository instead. */
int session_open(session **out, git_repository *cache, const char *url, int for_push,
		 const tfgit_remote_opts *opts, tfgit_result *r);

/* The value refname (full name) had when the session opened: 0, or GIT_ENOTFOUND. */
int session_ref(git_oid *out, session *s, const char *refname);

/* A local remote's objects become readable through the cache (an alternate, in memory only):
 * nothing is copied in, and a blob is read only when asked for. Once per cache repository;
 * 0 for smart remotes. */
int session_share_objects(session *s);

/* 1 when a ref of the remote collides with refname in git's ref store (one is a directory of
 * the other: locks/q and locks/q/x), its name in out; 0 when none does; a negative code. */
int session_ref_collision(session *s, const char *refname, char *out, size_t outlen);

/* Makes the advertised commit of refname, with its whole tree, present in the cache.
 * TFGIT_ECONFLICT when the remote moved on meanwhile (open a new session and retry). */
int session_fetch(session *s, const char *refname, tfgit_result *r);

/* Sets refname on the remote from old (NULL: it must not exist) to new (NULL: delete),
 * only if it still holds old. 0, TFGIT_ECONFLICT when it did not, or another code. */
int session_push(session *s, const char *refname, const git_oid *old, const git_oid *new,
		 int force, tfgit_result *r);

/* Calls fn for each ref of the remote whose name starts with prefix (a smart remote's
 * advertisement, a local remote's refs), until fn returns non-zero (returned). */
int session_each_ref(session *s, const char *prefix,
		     int (*fn)(const char *name, const git_oid *oid, void *ctx), void *ctx);

/* 1 when the remote is a local repository (a path, file://): opened in place, not fetched. */
int session_is_local(const session *s);

/* Accepts NULL. */
void session_free(session *s);

#endif
