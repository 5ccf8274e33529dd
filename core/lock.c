/* Locks: the branch locks/<state> whose commit carries <state>.lock, created only if absent. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

static int lock_attempt(op *o, void *ctx)
{
	struct lock_ctx *l = ctx;
	lock_state ls;
	git_oid blob, commit;
	char message[4096];
	int rc = op_read_lock(&ls, o);
	if (rc < 0)
		goto done;
	if (!ls.held && (rc = lock_collision(o)) < 0)
		goto done;
	if (ls.held) {
		if (strcmp(ls.info.id, l->info.id) == 0) {
			rc = 0; /* Terraform re-sends LOCK after a 5xx: the holder keeps it */
		} else {
			o->r->holder = ls.raw;
			ls.raw.ptr = NULL;
			result_message(o->r, "state %s is already locked by ID \"%s\" (%s)", o->t->state,
				       ls.info.id, ls.info.who[0] ? ls.info.who : "unknown");
			rc = TFGIT_ELOCKED;
		}
		goto done;
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
	/* create only: the remote refuses when another contender created it first */
	rc = session_push(o->sess, o->lockref, NULL, &commit, 0, o->r);
	if (rc == 0)
		o->r->changed = 1;
done:
	lock_state_free(&ls);
	return rc;
}

int tfgit_lock(tfgit_result *out, const tfgit_store *store, const tfgit_target *t,
	       const char *body, size_t len)
{
	struct lock_ctx l = {.body = body, .len = len};
	if (lockinfo_parse(&l.info, body, len) < 0 || !l.info.id[0]) {
		result_message(out, "the LOCK body must be Terraform lock info JSON with a non-empty ID");
		return TFGIT_EINVALID;
	}
	return op_run(out, store, t, 1, lock_attempt, &l);
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
	struct lock_ctx l = {.body = body, .len = len};
	l.force = tfgit_unlock_is_force(body, len);
	if (!l.force && lockinfo_parse(&l.info, body, len) < 0) {
		result_message(out, "the UNLOCK body must be empty or Terraform lock info JSON");
		return TFGIT_EINVALID;
	}
	return op_run(out, store, t, 1, unlock_attempt, &l);
}
