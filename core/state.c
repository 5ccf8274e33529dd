/* Reading, writing and deleting a state file on its branch. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "op.h"

/* The blob id at path in commit's tree: 0, or GIT_ENOTFOUND. */
static int state_entry(git_oid *out, git_tree **tree, git_commit *commit, const char *path)
{
	git_tree_entry *e = NULL;
	int err = git_commit_tree(tree, commit);
	if (err < 0)
		return err;
	err = git_tree_entry_bypath(&e, *tree, path);
	if (err == 0 && git_tree_entry_type(e) != GIT_OBJECT_BLOB)
		err = GIT_ENOTFOUND;
	if (err == 0)
		git_oid_cpy(out, git_tree_entry_id(e));
	if (err == GIT_ENOTFOUND)
		git_error_clear();
	git_tree_entry_free(e);
	return err;
}

static int get_attempt(op *o, void *ctx)
{
	(void)ctx;
	git_commit *tip = NULL;
	git_tree *tree = NULL;
	git_oid tip_id, blob;
	int rc = op_read_tip(&tip, &tip_id, o);
	if (rc < 0)
		return rc;
	if (!tip) {
		result_message(o->r, "branch %s does not exist yet", o->t->ref);
		return TFGIT_ENOTFOUND;
	}
	rc = state_entry(&blob, &tree, tip, o->t->state);
	if (rc == GIT_ENOTFOUND) {
		result_message(o->r, "no state %s on branch %s yet", o->t->state, o->t->ref);
		rc = TFGIT_ENOTFOUND;
	} else if (rc < 0) {
		rc = git_failure(o->r, rc, "reading the state");
	} else {
		git_oid_tostr(o->r->blob_id, sizeof(o->r->blob_id), &blob);
		rc = op_blob_bytes(&o->r->content, o->cache->repo, &blob);
	}
	git_tree_free(tree);
	git_commit_free(tip);
	return rc;
}

int tfgit_state_get(tfgit_result *out, const tfgit_store *store, const tfgit_target *t)
{
	return op_run(out, store, t, 0, get_attempt, NULL);
}

struct write_ctx {
	const char *lock_id;
	const char *body; /* NULL: delete */
	size_t len;
	int amend;
};

static int write_attempt(op *o, void *ctx)
{
	struct write_ctx *w = ctx;
	lock_state ls;
	git_commit *tip = NULL;
	git_tree *tree = NULL;
	git_oid tip_id, current, blob, commit;
	char message[4096];
	int rc = op_check_writer(&ls, o, w->lock_id, w->body ? o->store->require_lock : 0);
	if (rc < 0 || (rc = op_read_tip(&tip, &tip_id, o)) < 0)
		goto done;
	int exists = 0;
	if (tip) {
		rc = state_entry(&current, &tree, tip, o->t->state);
		if (rc < 0 && rc != GIT_ENOTFOUND) {
			rc = git_failure(o->r, rc, "reading the state");
			goto done;
		}
		exists = rc == 0;
	}
	git_tree_update upd = {.path = o->t->state};
	if (w->body) {
		if ((rc = git_blob_create_from_buffer(&blob, o->cache->repo, w->body, w->len)) < 0) {
			rc = git_failure(o->r, rc, "storing the state");
			goto done;
		}
		/* a repeated POST (Terraform retries after a 5xx) must not make a second commit */
		if (exists && git_oid_equal(&blob, &current)) {
			rc = 0;
			goto done;
		}
		upd.action = GIT_TREE_UPDATE_UPSERT;
		git_oid_cpy(&upd.id, &blob);
		upd.filemode = GIT_FILEMODE_BLOB;
		op_message(message, sizeof(message), "Update", o->t->state, &ls.info, w->lock_id);
	} else {
		if (!exists) {
			rc = 0; /* nothing to delete */
			goto done;
		}
		upd.action = GIT_TREE_UPDATE_REMOVE;
		op_message(message, sizeof(message), "Delete", o->t->state, &ls.info, w->lock_id);
	}
	if ((rc = op_commit(&commit, o, tip, w->amend, tree, &upd, 1, message)) < 0)
		goto done;
	rc = session_push(o->sess, o->ref, tip ? &tip_id : NULL, &commit, w->amend && tip, o->r);
	if (rc == 0)
		o->r->changed = 1;
done:
	git_tree_free(tree);
	git_commit_free(tip);
	lock_state_free(&ls);
	return rc;
}

int tfgit_state_put(tfgit_result *out, const tfgit_store *store, const tfgit_target *t,
		    const char *lock_id, const char *body, size_t len, int amend)
{
	struct write_ctx w = {.lock_id = lock_id, .body = body, .len = len, .amend = amend};
	if (!body || !len)
		return TFGIT_EINVALID;
	return op_run(out, store, t, 1, write_attempt, &w);
}

int tfgit_state_delete(tfgit_result *out, const tfgit_store *store, const tfgit_target *t,
		       const char *lock_id)
{
	struct write_ctx w = {.lock_id = lock_id};
	return op_run(out, store, t, 1, write_attempt, &w);
}
