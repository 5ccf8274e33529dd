/* Locks: the branch locks/<state> whose commit carries <state>.lock, created only if absent. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "batch.h"
#include "internal.h"
#include "op.h"

struct lock_ctx {
	const char *body;
	size_t len;
	lockinfo info;
	int force;
};

/* The lock branch and the state's path must not collide with the remote's branches and the
 * branch's tree: a lock that could never lead to a write is refused before it is taken. */
static int lock_collision(op *o)
{
	git_commit *tip = NULL;
	git_tree *tree = NULL;
	git_oid tip_id;
	int rc = op_ref_collision(o, o->lockref, "lock branch");
	if (rc == 0 && (rc = op_read_tip(&tip, &tip_id, o)) == 0 && tip) {
		if ((rc = git_commit_tree(&tree, tip)) < 0)
			rc = git_failure(o->r, rc, "reading the branch tip's tree");
		else
			rc = op_tree_collision(o, tree);
	}
	git_tree_free(tree);
	git_commit_free(tip);
	/* Terraform prints a LOCK's 409 body as lock info: the collision goes in its Info */
	if (rc == TFGIT_EEXISTS && op_lock_json(&o->r->holder, o->r->message, 1) < 0)
		return TFGIT_ERROR;
	return rc;
}

/* Seconds since the lock was taken: its commit's time, which tfgit set when it took the lock
 * (the lock info's "Created" is the client's clock). -1 when unknown. */
static long lock_age(op *o, const lock_state *ls)
{
	git_commit *c = NULL;
	long age = -1;
	if (git_commit_lookup(&c, o->cache->repo, &ls->commit) == 0)
		age = (long)(time(NULL) - (time_t)git_commit_time(c));
	git_error_clear();
	git_commit_free(c);
	return age;
}

static int lock_attempt(op *o, void *ctx)
{
	struct lock_ctx *l = ctx;
	lock_state ls;
	git_oid blob, commit;
	char message[4096];
	long age = 0;
	int rc = op_read_lock(&ls, o);
	if (rc < 0)
		goto done;
	if (!ls.held && (rc = lock_collision(o)) < 0)
		goto done;
	if (ls.held) {
		if (strcmp(ls.info.id, l->info.id) == 0) {
			rc = 0; /* Terraform re-sends LOCK after a 5xx: the holder keeps it */
			goto done;
		}
		if (!o->store->lock_ttl || (age = lock_age(o, &ls)) <= o->store->lock_ttl) {
			o->r->holder = ls.raw;
			ls.raw.ptr = NULL;
			result_message(o->r, "state %s is already locked by ID \"%s\" (%s)", o->t->state,
				       ls.info.id, ls.info.who[0] ? ls.info.who : "unknown");
			rc = TFGIT_ELOCKED;
			goto done;
		}
		/* TFGIT_LOCK_TTL: an expired lock is replaced below, compare-and-swap */
	}
	if ((rc = git_blob_create_from_buffer(&blob, o->cache->repo, l->body, l->len)) < 0) {
		rc = git_failure(o->r, rc, "storing the lock");
		goto done;
	}
	git_tree_update upd = {.action = GIT_TREE_UPDATE_UPSERT, .filemode = GIT_FILEMODE_BLOB,
			       .path = o->lockpath};
	git_oid_cpy(&upd.id, &blob);
	op_message(message, sizeof(message), "Lock", o->t->state, &l->info, NULL);
	if ((rc = op_commit(&commit, o, NULL, 0, NULL, &upd, 1, message)) < 0)
		goto done;
	/* create only: the remote refuses when another contender created it first. A takeover
	 * replaces the expired lock's commit only while it is still the branch's tip: of two
	 * contenders one wins, the other finds the winner's fresh lock on its next attempt. */
	rc = session_push(o->sess, o->lockref, ls.held ? &ls.commit : NULL, &commit, ls.held, o->r);
	if (rc == 0)
		o->r->changed = 1;
	if (rc == 0 && ls.held && o->note) /* in a batch: logged once the push applied it */
		snprintf(o->note, o->notelen, "lock of %s taken over from expired lock %.*s (age %ld s > "
			 "TFGIT_LOCK_TTL=%ld s)", o->t->state, (int)ls.raw.size, ls.raw.ptr ? ls.raw.ptr : "",
			 age, o->store->lock_ttl);
	else if (rc == 0 && ls.held)
		core_log("lock of %s taken over from expired lock %.*s (age %ld s > TFGIT_LOCK_TTL=%ld s)",
			 o->t->state, (int)ls.raw.size, ls.raw.ptr ? ls.raw.ptr : "", age, o->store->lock_ttl);
done:
	lock_state_free(&ls);
	return rc;
}

int tfgit_lock(tfgit_result *out, const tfgit_store *store, const tfgit_target *t,
	       const char *body, size_t len)
{
	lockinfo info;
	batch_request q = {.kind = BATCH_LOCK, .body = body, .len = len};
	if (lockinfo_parse(&info, body, len) < 0 || !info.id[0]) {
		result_message(out, "the LOCK body must be Terraform lock info JSON with a non-empty ID");
		return TFGIT_EINVALID;
	}
	return batch_run(out, store, t, &q);
}

static int unlock_attempt(op *o, void *ctx)
{
	struct lock_ctx *l = ctx;
	lock_state ls;
	int rc = op_read_lock(&ls, o);
	if (rc < 0 || !ls.held)
		goto done; /* no lock: nothing to do */
	if (!l->force && strcmp(ls.info.id, l->info.id) != 0) {
		result_message(o->r, "state %s is locked by ID \"%s\", not \"%s\"", o->t->state,
			       ls.info.id, l->info.id);
		rc = TFGIT_ELOCKED;
	} else if (l->force && !o->store->allow_force_unlock) {
		result_message(o->r, "force-unlock is disabled on this server (TFGIT_FORCE_UNLOCK=0); "
			       "state %s stays locked (by %s)", o->t->state, ls.info.who[0] ? ls.info.who : "unknown");
		rc = TFGIT_EFORBIDDEN;
	} else {
		rc = session_push(o->sess, o->lockref, &ls.commit, NULL, 0, o->r);
		if (rc == 0) {
			o->r->changed = 1;
			o->r->forced = l->force;
		}
	}
	if (rc == TFGIT_ELOCKED || rc == TFGIT_EFORBIDDEN || o->r->forced) {
		tfgit_buf_free(&o->r->holder);
		o->r->holder = ls.raw;
		ls.raw.ptr = NULL;
	}
done:
	lock_state_free(&ls);
	return rc;
}

int tfgit_unlock(tfgit_result *out, const tfgit_store *store, const tfgit_target *t,
		 const char *body, size_t len)
{
	lockinfo info;
	batch_request q = {.kind = BATCH_UNLOCK, .body = body, .len = len};
	if (!tfgit_unlock_is_force(body, len) && lockinfo_parse(&info, body, len) < 0) {
		result_message(out, "the UNLOCK body must be empty or Terraform lock info JSON");
		return TFGIT_EINVALID;
	}
	return batch_run(out, store, t, &q);
}

/* A LOCK or UNLOCK checked by tfgit_lock or tfgit_unlock, run (alone or in a batch). */
int lock_request_attempt(op *o, void *ctx)
{
	const batch_request *q = ctx;
	struct lock_ctx l = {.body = q->body, .len = q->len};
	if (q->kind == BATCH_UNLOCK && (l.force = tfgit_unlock_is_force(q->body, q->len)))
		return unlock_attempt(o, &l);
	if (lockinfo_parse(&l.info, q->body, q->len) < 0)
		return TFGIT_EINVALID;
	return q->kind == BATCH_LOCK ? lock_attempt(o, &l) : unlock_attempt(o, &l);
}
