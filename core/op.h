/* One core operation on one repository: the flock-held cache, a session with the remote, and
 * the reads and commit building that state.c and lock.c share. */
#ifndef TFGIT_OP_H
#define TFGIT_OP_H

#include <git2.h>

#include "store/cache.h"
#include "format/lockinfo.h"
#include "net/remote.h"
#include "tfgit.h"

#define OP_MAX_ATTEMPTS 25
#define OP_READ_BRANCH 2 /* op_run's for_push: a read of the target's branch alone (a GET) */

typedef struct {
	const tfgit_store *store;
	const tfgit_target *t;
	tfgit_result *r;
	int for_push;
	cache *cache;
	session *sess;
	git_signature *sig;
	char ref[1100];      /* refs/heads/<ref> */
	char lockref[1100];  /* refs/heads/locks/<state> */
	char lockpath[1100]; /* <state>.lock */
	/* group commit: where an attempt leaves a log line that holds only once its update is
	 * applied (a lock taken over); NULL: log it at once */
	char *note;
	size_t notelen;
	int two_step; /* a write under a lock goes without it (no "atomic"): counted once applied */
	int may_warm; /* the next op_connect may open a warm session (one push from the cache's view) */
	/* a read of these branches only (full names): ls-refs on a kept connection when the
	 * server speaks protocol v2 (session_open_refs) */
	const char *const *read_refs;
	size_t nread_refs;
	const char *own_ref[1];
} op;

/* The lock read from the lock branch, as the session saw it. */
typedef struct {
	int held;
	git_oid commit; /* tip of the lock branch */
	lockinfo info;
	tfgit_buf raw;  /* the lock file's bytes */
} lock_state;

/* One attempt of an operation: 0 when done, TFGIT_ECONFLICT to be tried again on a fresh
 * session, another code to stop. */
typedef int (*op_attempt_fn)(op *o, void *ctx);

/* After an attempt on a warm session (session_open_warm): 1 when its push was applied (a direct
 * push: the answer stands); 0 otherwise (a fallback: the attempt's result is cleared for
 * another on a real session). */
int op_warm_verdict(op *o, int applied);

/* Empties r for another attempt, numbered attempt. */
void op_result_reset(tfgit_result *r, int attempt);

/* Opens the cache (flock held) and a session, then runs fn until it stops asking for another
 * attempt, at most OP_MAX_ATTEMPTS times; releases everything (and, with group commit, tells
 * the requests queued meanwhile that the repository is free: op_queue_turn). */
int op_run(tfgit_result *r, const tfgit_store *store, const tfgit_target *t, int for_push,
	   op_attempt_fn fn, void *ctx);

/* The pieces of op_run that group commit's leader (batch.c) runs itself. */
/* o->ref, o->lockref and o->lockpath from o->t. */
void op_names(op *o);
/* (Re)opens o->sess on o->cache: a fresh look at the remote's refs. */
int op_connect(op *o);
/* A short random pause before attempt + 1 after a lost compare-and-swap (liveness only). */
void op_backoff(int attempt);
/* Keeps the cache within TFGIT_CACHE_MAX: after a new entry, and (a size bound grows with
 * every write) at most every 30 s otherwise. */
void op_evict(const tfgit_store *store, int created);
/* Tells the requests queued for url's repository (batch.c) that its flock was released. */
void op_queue_turn(const char *cache_dir, const char *url);

/* The state's blob as Terraform gets it, into o->r->content: read (refused by its size over
 * TFGIT_MAX_BODY, what names it) and decrypted; o->r->blob_id is then the clear text's blob id
 * (the ETag) and o->r->version the commit it was read at. */
int op_state_content(op *o, const git_oid *blob, const git_oid *commit, const char *what);

/* Reads the lock branch; ls->raw is owned by the caller (lock_state_free). */
int op_read_lock(lock_state *ls, op *o);
void lock_state_free(lock_state *ls);

/* The branch tip; *tip is NULL when the branch does not exist. Caller frees *tip. */
int op_read_tip(git_commit **tip, git_oid *tip_id, op *o);

/* Gives a writer holding lock_id the right to change the state. ELOCKED (r->holder filled)
 * when another ID holds the lock, ENOLOCK when none does and one is required or lock_id was
 * given. ls is filled with the lock read. */
int op_check_writer(lock_state *ls, op *o, const char *lock_id, int required);

/* Pushes o->ref from old (NULL: absent) to new, compare-and-swap. When ls holds a lock (the
 * writer's, checked by op_check_writer), its lock branch goes in the same push, asserted
 * unchanged: the server applies the write only while that lock still stands (atomic push, or a
 * local remote's ref transaction). A server without "atomic" gets two steps (o->two_step),
 * counted once the push is applied (a batch's: by batch.c, from its verdict). */
int op_push_under_lock(op *o, const git_oid *old, const git_oid *new, int force, const lock_state *ls);

/* Tests only (tests/unit/test_window.c): called between a write's lock check and its push
 * (op_push_under_lock, a batch's push), where another host's force-unlock and LOCK would
 * land. NULL in the programs, which never set it. */
extern void (*op_window_hook)(void);

/* The lock of state (a path on o->ref), when one is held, asserted with the next push: a write
 * that changes several states (re-encryption) is applied only while each lock it saw stands
 * (o->two_step when the server lacks "atomic": the caller counts it once applied). */
int op_assert_lock_of(op *o, const char *state);

/* Builds a commit with base's tree (or an empty one) changed by updates: a child of parent,
 * or a replacement of parent when amend, or a root commit when parent is NULL. */
int op_commit(git_oid *out, op *o, git_commit *parent, int amend, git_tree *base,
	      const git_tree_update *updates, size_t n, const char *message);

/* Lock-info-shaped JSON (empty ID, info as Info, and as "error" too when with_error) into out,
 * for answers Terraform can only print as lock info. */
int op_lock_json(tfgit_buf *out, const char *info, int with_error);

/* 1 when tip is tfgit's own update of this state under the same lock (committer = the store's
 * author, message = message: subject and Lock-ID/Who/Operation trailers; the Serial and
 * Terraform-Version trailers, which change with every version, are not compared) that changed
 * nothing but the state: the only commit amend may replace. */
int op_is_own_update(op *o, git_commit *tip, const char *message);

/* Writes "Subject state\n\nLock-ID: …\nWho: …\nOperation: …\n" (known fields only, escaped as
 * the log escapes them) into out. */
void op_message(char *out, size_t outlen, const char *subject, const char *state,
		const lockinfo *info, const char *lock_id);

/* op_message followed by the audit trailers "Serial: …\nTerraform-Version: …\n" read from the
 * top-level "serial" and "terraform_version" of json, the state's clear text (those present,
 * escaped the same way; none when json is NULL). A bounded scan: no tree is built. */
void op_state_message(char *out, size_t outlen, const char *subject, const char *state,
		      const lockinfo *info, const char *lock_id, const char *json, size_t len);

/* Copies a blob's bytes into a new buffer; ETOOLARGE (message naming what) when its header
 * says it is larger than max, before anything is inflated. */
int op_blob_bytes(tfgit_buf *out, op *o, const git_oid *id, size_t max, const char *what);

/* EEXISTS (message naming the other path) when the state's path collides with tree: a file
 * at one of its directories, or a directory at its own path. 0 otherwise, or for no tree. */
int op_tree_collision(op *o, git_tree *tree);

/* EEXISTS (message naming the other branch) when a branch of the remote collides with refname
 * in git's ref store; what names refname's role ("lock branch", "branch"). */
int op_ref_collision(op *o, const char *refname, const char *what);

/* The private CA file remotes are trusted by now (tfgit_tls_trust), "" for none (init.c). */
const char *tls_trusted_ca(void);

#endif
