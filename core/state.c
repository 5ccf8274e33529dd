/* Reading, writing and deleting a state file on its branch. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "crypt/crypt.h"
#include "internal.h"
#include "store/known.h"
#include "op.h"

/* The tip's tree, checked against the state's path (op_tree_collision), and the entry at the
 * state's path: *found 0 when there is none. *tree is NULL when the branch does not exist. */
static int state_entry(git_tree_entry **entry, git_tree **tree, op *o, git_commit *tip)
{
	*entry = NULL;
	*tree = NULL;
	if (!tip)
		return 0;
	int rc = git_commit_tree(tree, tip);
	if (rc < 0)
		return git_failure(o->r, rc, "reading the branch tip's tree");
	if ((rc = op_tree_collision(o, *tree)) < 0)
		return rc;
	rc = git_tree_entry_bypath(entry, *tree, o->t->state);
	if (rc == GIT_ENOTFOUND) {
		git_error_clear();
		return 0;
	}
	return rc < 0 ? git_failure(o->r, rc, "reading the state") : 0;
}

/* A regular file: symbolic links and submodules are never states. */
static int regular_file(op *o, const git_tree_entry *e)
{
	git_filemode_t m = git_tree_entry_filemode(e);
	if (m == GIT_FILEMODE_BLOB || m == GIT_FILEMODE_BLOB_EXECUTABLE)
		return 0;
	result_message(o->r, "%s on branch %s is a %s, not a state file", o->t->state, o->t->ref,
		       m == GIT_FILEMODE_LINK ? "symbolic link" : "submodule");
	return TFGIT_EEXISTS;
}

static int get_attempt(op *o, void *ctx)
{
	(void)ctx;
	git_commit *tip = NULL;
	git_tree *tree = NULL;
	git_tree_entry *e = NULL;
	git_oid tip_id;
	char what[1200];
	int rc = op_read_tip(&tip, &tip_id, o);
	if (rc < 0)
		goto done;
	if (!tip) {
		result_message(o->r, "branch %s does not exist yet", o->t->ref);
		rc = TFGIT_ENOTFOUND;
		goto done;
	}
	if ((rc = state_entry(&e, &tree, o, tip)) < 0)
		goto done;
	if (!e) {
		result_message(o->r, "no state %s on branch %s yet", o->t->state, o->t->ref);
		rc = TFGIT_ENOTFOUND;
		goto done;
	}
	if ((rc = regular_file(o, e)) < 0)
		goto done;
	snprintf(what, sizeof(what), "state %s (TFGIT_MAX_BODY)", o->t->state);
	rc = op_state_content(o, git_tree_entry_id(e), &tip_id, what);
done:
	git_tree_entry_free(e);
	git_tree_free(tree);
	git_commit_free(tip);
	return rc;
}

int tfgit_state_get(tfgit_result *out, const tfgit_store *store, const tfgit_target *t)
{
	batch_request q = {.kind = BATCH_GET};
	return batch_run(out, store, t, &q);
}

struct write_ctx {
	const char *lock_id;
	const char *body; /* NULL: delete */
	size_t len;
	int amend;
	tfgit_buf *owned; /* the caller's body, freed once stored (tfgit_state_put_owned) */
	char *summary;    /* then body: its top-level fields (state_summary) */
	int stored;       /* blob holds the (clear-text) body, in the cache */
	git_oid blob;
};

/* Past this size a body handed over is freed once stored in the cache. */
#define RELEASE_MIN (1 << 20)

/* Once the state is stored in the cache, a large body handed over by the caller is freed:
 * what is left to read in it (the lineage for the guard, the serial and Terraform version
 * for the trailers) is kept as a small JSON object of those top-level fields, and the push
 * reads the state from the cache while the body no longer takes its size in memory. */
static void release_body(struct write_ctx *w)
{
	state_top f;
	if (!w->owned || w->owned->ptr != w->body || w->len < RELEASE_MIN)
		return;
	state_top_scan(&f, w->body, w->len);
	const json_span spans[] = {f.serial, f.terraform_version, f.lineage};
	const char *names[] = {"serial", "terraform_version", "lineage"};
	size_t need = 3;
	for (size_t i = 0; i < 3; i++) {
		if (spans[i].len > 4096)
			return; /* not worth it: kept as it is */
		need += spans[i].len + 24;
	}
	char *s = malloc(need);
	if (!s)
		return;
	size_t n = (size_t)snprintf(s, need, "{");
	for (size_t i = 0; i < 3; i++)
		if (spans[i].len)
			n += (size_t)snprintf(s + n, need - n, "%s\"%s\":%.*s", n > 1 ? "," : "", names[i],
					      (int)spans[i].len, spans[i].ptr);
	snprintf(s + n, need - n, "}");
	free(w->owned->ptr);
	w->owned->ptr = NULL;
	w->owned->size = 0;
	w->body = w->summary = s;
	w->len = strlen(s);
}

/* What is at the path may be replaced or deleted only when it is a Terraform state: a POST
 * naming main.tf.json or a pipeline file changes nothing. Its clear text (decrypted) is left
 * in *old for the caller to compare with the new state; 1 when it was stored encrypted, 0 in
 * clear text, or an error. top_only: the caller reads only the old state's lineage, and
 * without encryption a state known by its blob id (known.c) is not read: *old is then a
 * small JSON object holding its lineage. */
static int replaceable(op *o, const git_tree_entry *e, tfgit_buf *old, int top_only)
{
	char what[1200], lineage[600];
	int rc = regular_file(o, e);
	if (rc < 0)
		return rc;
	int clear = !crypt_enabled(&o->store->crypt);
	if (top_only && clear && known_state(o->cache->path, git_tree_entry_id(e), lineage, sizeof(lineage))) {
		size_t need = strlen(lineage) + 16;
		if (!(old->ptr = malloc(need)))
			return TFGIT_ERROR;
		old->size = (size_t)snprintf(old->ptr, need, lineage[0] ? "{\"lineage\":%s}" : "{}", lineage);
		return 0;
	}
	snprintf(what, sizeof(what), "the file at %s", o->t->state);
	int sealed = 0;
	rc = op_blob_bytes(old, o, git_tree_entry_id(e), o->store->max_blob, what);
	/* encrypted or not, what is compared and checked is the clear text (unencrypted, any
	 * file: one that is not a state is refused below) */
	if (rc == 0 && crypt_enabled(&o->store->crypt) &&
	    (rc = sealed = crypt_open(old, &o->store->crypt, o->t, o->r)) > 0)
		rc = 0;
	if (rc == 0 && !json_is_state(old->ptr, old->size)) {
		result_message(o->r, "%s on branch %s is not a Terraform state (no top-level serial and "
			       "lineage): tfgit does not overwrite or delete it", o->t->state,
			       o->t->ref);
		rc = TFGIT_EEXISTS;
	} else if (rc == 0 && clear) {
		state_top f;
		state_top_scan(&f, old->ptr, old->size);
		known_state_add(o->cache->path, git_tree_entry_id(e), f.lineage);
	} else if (rc == TFGIT_ETOOLARGE) {
		rc = TFGIT_EEXISTS;
	}
	return rc < 0 ? rc : sealed;
}

/* TFGIT_LINEAGE_GUARD: a state replaces the stored one (its clear text, old) only when both
 * have the same top-level lineage; EEXISTS naming both otherwise. A stored state without a
 * lineage (OpenTofu's encrypted form may lack one) is not guarded. */
static int same_lineage(op *o, const tfgit_buf *old, const char *body, size_t len)
{
	state_top was, now;
	char a[1024], b[1024];
	state_top_scan(&was, old->ptr, old->size);
	state_top_scan(&now, body, len);
	int fa = json_span_text(a, sizeof(a), was.lineage), fb = json_span_text(b, sizeof(b), now.lineage);
	if (fa < 0 || (fa == 1 && !a[0]))
		return 0;
	/* the raw forms when one is too long to be compared decoded */
	if (fa == 1 && fb == 1 ? !strcmp(a, b)
			       : was.lineage.len == now.lineage.len &&
					 !memcmp(was.lineage.ptr, now.lineage.ptr, now.lineage.len))
		return 0;
	char ea[128], eb[128];
	tfgit_escape(ea, sizeof(ea), a, strlen(a));
	tfgit_escape(eb, sizeof(eb), b, strlen(b));
	/* the lineages first: a long path is what gets cut */
	result_message(o->r, "lineage mismatch: the stored state has lineage \"%s\", the state sent has "
		       "%s%s%s; TFGIT_LINEAGE_GUARD=1 refuses replacing state %s on branch %s by another "
		       "state", ea, fb < 0 ? "" : "lineage \"", fb < 0 ? "none" : eb, fb < 0 ? "" : "\"",
		       o->t->state, o->t->ref);
	return TFGIT_EEXISTS;
}

/* The blob of a clear-text state (encryption off): made once and the body then let go; found
 * again in the cache on a later attempt (the body may be gone by then). */
static int clear_blob(op *o, struct write_ctx *w, git_oid *blob)
{
	int rc;
	if (w->stored) {
		git_odb *odb = NULL;
		int present = git_repository_odb(&odb, o->cache->repo) == 0 && git_odb_exists(odb, &w->blob);
		git_odb_free(odb);
		if (!present) {
			result_message(o->r, "the state stored in the cache was lost (the cache was rebuilt); "
				       "send it again");
			return TFGIT_ERROR;
		}
		git_oid_cpy(blob, &w->blob);
		return 0;
	}
	if ((rc = git_blob_create_from_buffer(blob, o->cache->repo, w->body, w->len)) < 0)
		return git_failure(o->r, rc, "storing the state");
	w->stored = 1;
	git_oid_cpy(&w->blob, blob);
	release_body(w);
	return 0;
}

/* A POST's change of the tree at e's path (e NULL: no file there yet): the state's blob, sealed
 * when encryption is on, in *blob; *old the clear text it replaces. 1 when what is stored is
 * already this state (a repeated POST: Terraform retries after a 5xx) and nothing is to be
 * written; 0; or an error. */
static int post_blob(op *o, struct write_ctx *w, const git_tree_entry *e, git_oid *blob, tfgit_buf *old)
{
	const tfgit_crypt *c = &o->store->crypt;
	tfgit_buf stored = {0};
	int rc, was_sealed = 0;
	if (!crypt_enabled(c)) {
		if ((rc = clear_blob(o, w, blob)) < 0)
			return rc;
		if (e && git_oid_equal(blob, git_tree_entry_id(e)) && regular_file(o, e) == 0)
			return 1;
	}
	if (e && (rc = was_sealed = replaceable(o, e, old, !crypt_enabled(c))) < 0)
		return rc;
	if (e && o->store->lineage_guard && (rc = same_lineage(o, old, w->body, w->len)) < 0)
		return rc;
	if (!crypt_enabled(c))
		return 0;
	/* clear texts compared (a fresh nonce makes every ciphertext new), and the stored form too:
	 * a migration rewrites an unchanged state */
	int sealing = c->migrate != CRYPT_MIGRATE_DECRYPT;
	if (e && was_sealed == sealing && old->size == w->len && !memcmp(old->ptr, w->body, w->len))
		return 1;
	if ((rc = crypt_seal(&stored, c, o->t, w->body, w->len, o->r)) == 0 &&
	    (rc = git_blob_create_from_buffer(blob, o->cache->repo, stored.ptr, stored.size)) < 0)
		rc = git_failure(o->r, rc, "storing the state");
	tfgit_buf_free(&stored);
	return rc;
}

/* The tree's change and the commit's message for a POST (w->body) or a DELETE; 1 when there is
 * nothing to write (the same state again, nothing to delete). */
static int change_of(op *o, struct write_ctx *w, const git_tree_entry *e, const lock_state *ls,
		     git_tree_update *upd, git_oid *blob, tfgit_buf *old, char *message, size_t msglen)
{
	int rc;
	upd->path = o->t->state;
	if (w->body) {
		if ((rc = post_blob(o, w, e, blob, old)) != 0)
			return rc;
		upd->action = GIT_TREE_UPDATE_UPSERT;
		git_oid_cpy(&upd->id, blob);
		upd->filemode = GIT_FILEMODE_BLOB;
		op_state_message(message, msglen, "Update", o->t->state, &ls->info, w->lock_id, w->body, w->len);
		return 0;
	}
	if (!e)
		return 1; /* nothing to delete */
	if ((rc = replaceable(o, e, old, 0)) < 0)
		return rc;
	upd->action = GIT_TREE_UPDATE_REMOVE;
	/* the version deleted: its serial and Terraform version */
	op_state_message(message, msglen, "Delete", o->t->state, &ls->info, w->lock_id, old->ptr, old->size);
	return 0;
}

static int write_attempt(op *o, void *ctx)
{
	struct write_ctx *w = ctx;
	lock_state ls;
	git_commit *tip = NULL;
	git_tree *tree = NULL;
	git_tree_entry *e = NULL;
	git_tree_update upd = {0};
	git_oid tip_id, blob, commit;
	tfgit_buf old = {0};
	char message[4096];
	/* POST and DELETE follow one rule: the holder's ID, or no lock when none is required */
	int rc = op_check_writer(&ls, o, w->lock_id, o->store->require_lock);
	if (rc < 0 || (rc = op_read_tip(&tip, &tip_id, o)) < 0 || (rc = state_entry(&e, &tree, o, tip)) < 0)
		goto done;
	if (!tip && (rc = op_ref_collision(o, o->ref, "branch")) < 0)
		goto done;
	if ((rc = change_of(o, w, e, &ls, &upd, &blob, &old, message, sizeof(message))) != 0)
		goto done; /* 1: nothing to write */
	int amend = w->body && w->amend && tip && op_is_own_update(o, tip, message);
	if ((rc = op_commit(&commit, o, tip, amend, tree, &upd, 1, message)) < 0)
		goto done;
	/* amend is a forced update, still from the tip this session saw: compare-and-swap, with
	 * the lock that allowed it asserted in the same atomic push */
	rc = op_push_under_lock(o, tip ? &tip_id : NULL, &commit, amend, &ls);
	if (rc == 0)
		o->r->changed = 1;
	if (rc == 0 && w->body && !crypt_enabled(&o->store->crypt)) {
		state_top f; /* the body was checked to be a state (json_state_check) */
		state_top_scan(&f, w->body, w->len);
		known_state_add(o->cache->path, &blob, f.lineage);
	}
done:
	tfgit_buf_free(&old);
	git_tree_entry_free(e);
	git_tree_free(tree);
	git_commit_free(tip);
	lock_state_free(&ls);
	return rc < 0 ? rc : 0;
}

int state_request_attempt(op *o, void *ctx)
{
	const batch_request *q = ctx;
	if (q->kind == BATCH_GET)
		return get_attempt(o, NULL);
	struct write_ctx w = {.lock_id = q->lock_id, .body = q->kind == BATCH_PUT ? q->body : NULL,
			      .len = q->len, .amend = q->amend};
	return write_attempt(o, &w);
}

int tfgit_state_put(tfgit_result *out, const tfgit_store *store, const tfgit_target *t,
		    const char *lock_id, const char *body, size_t len, int amend)
{
	batch_request q = {.kind = BATCH_PUT, .lock_id = lock_id, .body = body, .len = len, .amend = amend};
	if (!body || !len)
		return TFGIT_EINVALID;
	return batch_run(out, store, t, &q);
}

int tfgit_state_put_owned(tfgit_result *out, const tfgit_store *store, const tfgit_target *t,
			  const char *lock_id, tfgit_buf *body, int amend)
{
	struct write_ctx w = {.lock_id = lock_id, .body = body->ptr, .len = body->size, .amend = amend,
			      .owned = body};
	if (!body->ptr || !body->size)
		return TFGIT_EINVALID;
	/* a body group commit takes is written with the others (it stays the caller's); a larger
	 * one runs alone, and is freed once staged */
	if (store->group_commit && body->size <= BATCH_BODY_MAX)
		return tfgit_state_put(out, store, t, lock_id, body->ptr, body->size, amend);
	int rc = op_run(out, store, t, 1, write_attempt, &w);
	free(w.summary);
	return rc;
}

int tfgit_state_delete(tfgit_result *out, const tfgit_store *store, const tfgit_target *t,
		       const char *lock_id)
{
	batch_request q = {.kind = BATCH_DELETE, .lock_id = lock_id};
	return batch_run(out, store, t, &q);
}
