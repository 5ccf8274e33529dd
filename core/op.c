/* One core operation on one repository: the flock-held cache, a session with the remote, and
 * the reads and commit building that state.c and lock.c share. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "deadline.h"
#include "sockets.h"
#include "internal.h"
#include "op.h"

/* (Re)opens the session: a fresh look at the remote's refs. */
static int op_connect(op *o)
{
	session_free(o->sess);
	o->sess = NULL;
	return session_open(&o->sess, o->cache->repo, o->t->url, o->for_push, &o->store->remote, o->r);
}

static int op_begin(op *o)
{
	const tfgit_target *t = o->t;
	int rc;
	snprintf(o->ref, sizeof(o->ref), "refs/heads/%s", t->ref);
	snprintf(o->lockref, sizeof(o->lockref), "refs/heads/locks/%s", t->state);
	snprintf(o->lockpath, sizeof(o->lockpath), "%s.lock", t->state);
	if (git_signature_now(&o->sig, o->store->author_name, o->store->author_email) < 0)
		return git_failure(o->r, -1, "making the commit signature");
	if ((rc = cache_open(&o->cache, o->store->cache_dir, t->url)) < 0) {
		result_message(o->r, "the cache for this repository is not usable: %s",
			       tfgit_strerror(rc));
		return rc;
	}
	return op_connect(o);
}

static void op_end(op *o)
{
	session_free(o->sess);
	cache_free(o->cache);
	git_signature_free(o->sig);
	memset(o, 0, sizeof(*o));
}

static void backoff(int attempt)
{
	long cap_us = 1000L << (attempt < 6 ? attempt : 6); /* 2 ms, 4 ms, ... 64 ms */
	struct timespec ts = {0, (random() % cap_us) * 1000L};
	nanosleep(&ts, NULL);
}

int op_run(tfgit_result *r, const tfgit_store *store, const tfgit_target *t, int for_push,
	   op_attempt_fn fn, void *ctx)
{
	op o = {.store = store, .t = t, .r = r, .for_push = for_push};
	int rebuilt = 0;
	/* bounds everything, the wait for the repository's flock included */
	sockets_remember();
	deadline_start(store->remote.timeout);
	int rc = op_begin(&o);
	for (int attempt = 1; rc == 0; attempt++) {
		r->attempts = attempt;
		rc = fn(&o, ctx);
		if (rc == TFGIT_ERROR && !rebuilt && o.cache && !deadline_passed()) {
			/* a local failure: the cache may be damaged (a truncated pack, missing
			 * objects). Throw it away and start again from a fresh copy, once. */
			core_log("cache %s failed (%s): rebuilding it from the remote", o.cache->path,
				 r->message);
			rebuilt = 1;
			session_free(o.sess); /* it holds the cache repository that goes */
			o.sess = NULL;
			if ((rc = cache_reset(o.cache)) == 0)
				rc = op_connect(&o);
			if (rc == 0)
				r->message[0] = '\0';
			continue;
		}
		if (rc != TFGIT_ECONFLICT)
			break;
		if (attempt >= OP_MAX_ATTEMPTS) {
			result_message(r, "branch %s kept changing on the remote during %d attempts; try again",
				       t->ref, attempt);
			break;
		}
		/* lost a compare-and-swap: look at the remote again, after a short random pause so
		 * that a steady stream of writers from another host cannot starve this one (this is
		 * liveness only: correctness is the remote's compare-and-swap) */
		backoff(attempt);
		rc = op_connect(&o);
	}
	op_end(&o);
	deadline_stop();
	if (rc < 0 && rc != TFGIT_ETIMEOUT && deadline_passed()) {
		result_message(r, "the operation did not finish within %d s (TFGIT_REMOTE_TIMEOUT)",
			       store->remote.timeout);
		rc = TFGIT_ETIMEOUT;
	}
	return rc;
}

int op_blob_bytes(tfgit_buf *out, git_repository *repo, const git_oid *id)
{
	git_blob *blob = NULL;
	int err = git_blob_lookup(&blob, repo, id);
	if (err < 0)
		return git_failure(NULL, err, "reading a blob");
	size_t n = (size_t)git_blob_rawsize(blob);
	out->ptr = malloc(n ? n : 1);
	if (out->ptr) {
		memcpy(out->ptr, git_blob_rawcontent(blob), n);
		out->size = n;
	}
	git_blob_free(blob);
	return out->ptr ? 0 : TFGIT_ERROR;
}

void lock_state_free(lock_state *ls)
{
	tfgit_buf_free(&ls->raw);
	memset(ls, 0, sizeof(*ls));
}

/* A lock whose file is missing or not lock JSON still holds the state; the client is shown
 * lock JSON that says so, since Terraform can only print lock JSON. */
static int unreadable_lock(lock_state *ls, op *o)
{
	char info[1400];
	snprintf(info, sizeof(info),
		 "{\"ID\":\"\",\"Operation\":\"\",\"Info\":\"branch locks/%s holds no readable %s\","
		 "\"Who\":\"\",\"Version\":\"\",\"Created\":\"0001-01-01T00:00:00Z\",\"Path\":\"\"}",
		 o->t->state, o->lockpath);
	tfgit_buf_free(&ls->raw);
	memset(&ls->info, 0, sizeof(ls->info));
	ls->raw.ptr = strdup(info);
	ls->raw.size = ls->raw.ptr ? strlen(info) : 0;
	return ls->raw.ptr ? 0 : TFGIT_ERROR;
}

int op_read_lock(lock_state *ls, op *o)
{
	git_commit *c = NULL;
	git_tree *tree = NULL;
	git_tree_entry *e = NULL;
	int rc;
	memset(ls, 0, sizeof(*ls));
	rc = session_ref(&ls->commit, o->sess, o->lockref);
	if (rc == GIT_ENOTFOUND)
		return 0;
	if (rc < 0)
		return git_failure(o->r, rc, "reading the lock branch");
	ls->held = 1;
	if ((rc = session_fetch(o->sess, o->lockref, o->r)) < 0)
		return rc;
	if ((rc = git_commit_lookup(&c, o->cache->repo, &ls->commit)) < 0 ||
	    (rc = git_commit_tree(&tree, c)) < 0) {
		rc = git_failure(o->r, rc, "reading the lock commit");
		goto done;
	}
	if (git_tree_entry_bypath(&e, tree, o->lockpath) < 0 ||
	    git_tree_entry_type(e) != GIT_OBJECT_BLOB) {
		git_error_clear();
		rc = unreadable_lock(ls, o);
		goto done;
	}
	if ((rc = op_blob_bytes(&ls->raw, o->cache->repo, git_tree_entry_id(e))) < 0)
		goto done;
	if (lockinfo_parse(&ls->info, ls->raw.ptr, ls->raw.size) < 0)
		rc = unreadable_lock(ls, o);
done:
	git_tree_entry_free(e);
	git_tree_free(tree);
	git_commit_free(c);
	return rc;
}

int op_read_tip(git_commit **tip, git_oid *tip_id, op *o)
{
	*tip = NULL;
	int rc = session_ref(tip_id, o->sess, o->ref);
	if (rc == GIT_ENOTFOUND)
		return 0;
	if (rc < 0)
		return git_failure(o->r, rc, "reading the branch");
	if ((rc = session_fetch(o->sess, o->ref, o->r)) < 0)
		return rc;
	rc = git_commit_lookup(tip, o->cache->repo, tip_id);
	return rc < 0 ? git_failure(o->r, rc, "reading the branch tip") : 0;
}

/* Hands the holder's lock JSON to the caller and says who holds it. */
static int locked_by_other(lock_state *ls, op *o)
{
	o->r->holder = ls->raw;
	ls->raw.ptr = NULL;
	ls->raw.size = 0;
	result_message(o->r, "state %s is locked by ID \"%s\" (%s, %s)", o->t->state, ls->info.id,
		       ls->info.who[0] ? ls->info.who : "unknown",
		       ls->info.operation[0] ? ls->info.operation : "unknown operation");
	return TFGIT_ELOCKED;
}

int op_check_writer(lock_state *ls, op *o, const char *lock_id, int required)
{
	int rc = op_read_lock(ls, o);
	if (rc < 0)
		return rc;
	if (ls->held) {
		if (lock_id && ls->info.id[0] && strcmp(lock_id, ls->info.id) == 0)
			return 0;
		return locked_by_other(ls, o);
	}
	if (lock_id && *lock_id) {
		result_message(o->r, "state %s is not locked: lock \"%s\" was released or force-unlocked",
			       o->t->state, lock_id);
		return TFGIT_ENOLOCK;
	}
	if (required) {
		result_message(o->r, "state %s must be locked before it is written: set lock_address "
			       "and unlock_address in the backend block", o->t->state);
		return TFGIT_ENOLOCK;
	}
	return 0;
}

int op_commit(git_oid *out, op *o, git_commit *parent, int amend, git_tree *base,
	      const git_tree_update *updates, size_t n, const char *message)
{
	git_repository *repo = o->cache->repo;
	git_treebuilder *tb = NULL;
	git_tree *empty = NULL, *tree = NULL;
	git_oid tree_id, empty_id;
	int err;
	if (!base) {
		if ((err = git_treebuilder_new(&tb, repo, NULL)) < 0 ||
		    (err = git_treebuilder_write(&empty_id, tb)) < 0 ||
		    (err = git_tree_lookup(&empty, repo, &empty_id)) < 0)
			goto done;
		base = empty;
	}
	if ((err = git_tree_create_updated(&tree_id, repo, base, n, updates)) < 0 ||
	    (err = git_tree_lookup(&tree, repo, &tree_id)) < 0)
		goto done;
	if (parent && amend) {
		err = git_commit_amend(out, parent, NULL, o->sig, o->sig, NULL, message, tree);
	} else {
		const git_commit *parents[] = {parent};
		err = git_commit_create(out, repo, NULL, o->sig, o->sig, NULL, message, tree,
					parent ? 1 : 0, parents);
	}
done:
	git_tree_free(tree);
	git_tree_free(empty);
	git_treebuilder_free(tb);
	return err < 0 ? git_failure(o->r, err, "building the commit") : 0;
}

void op_message(char *out, size_t outlen, const char *subject, const char *state,
		const lockinfo *info, const char *lock_id)
{
	const char *id = info && info->id[0] ? info->id : lock_id;
	const char *names[] = {"Lock-ID", "Who", "Operation"};
	const char *values[] = {id, info ? info->who : NULL, info ? info->operation : NULL};
	size_t n = (size_t)snprintf(out, outlen, "%s %s\n", subject, state);
	int first = 1;
	for (size_t i = 0; i < 3 && n < outlen; i++) {
		if (!values[i] || !*values[i])
			continue;
		n += (size_t)snprintf(out + n, outlen - n, "%s%s: %s\n", first ? "\n" : "", names[i],
				      values[i]);
		first = 0;
	}
}
