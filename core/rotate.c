/* Re-encryption of every state of a branch under the current settings: the newest key of
 * TFGIT_ENCRYPTION_KEYS after a rotation, or a migration to or from encryption done at once.
 * One commit for all, pushed as any write is (the remote's compare-and-swap). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypt/crypt.h"
#include "internal.h"
#include "op.h"

#define REWRITE_MAX 4096

struct rewrite {
	git_tree_update upd[REWRITE_MAX];
	char *paths[REWRITE_MAX];
	size_t n, unreadable;
	op *o;
	int rc;
};

/* What tfgit_reencrypt hands its attempt: who asked, and how many states it wrote. */
struct reencrypt_ctx {
	const char *who;
	size_t count;
};

/* Each regular file that crypt_stale() names is read (crypt_open) and sealed again. */
static int visit(const char *root, const git_tree_entry *e, void *payload)
{
	struct rewrite *w = payload;
	op *o = w->o;
	const tfgit_crypt *c = &o->store->crypt;
	git_filemode_t mode = git_tree_entry_filemode(e);
	tfgit_buf bytes = {0}, sealed = {0};
	tfgit_result scratch = {0};
	char path[2200];
	if (mode != GIT_FILEMODE_BLOB && mode != GIT_FILEMODE_BLOB_EXECUTABLE)
		return 0;
	snprintf(path, sizeof(path), "%s%s", root, git_tree_entry_name(e));
	if (!tfgit_name_allowed(path, o->store->allowed_states))
		return 0; /* not this server's to rewrite (TFGIT_ALLOWED_STATES) */
	if (op_blob_bytes(&bytes, o, git_tree_entry_id(e), o->store->max_blob, path) < 0 ||
	    !crypt_stale(c, bytes.ptr, bytes.size)) {
		tfgit_buf_free(&bytes);
		return 0;
	}
	git_oid id;
	tfgit_target at = {o->t->url, o->t->ref, path};
	if (crypt_open(&bytes, c, &at, &scratch) < 0 || !json_is_state(bytes.ptr, bytes.size)) {
		w->unreadable++; /* not a state this server can read: left as it is */
	} else if (w->n == REWRITE_MAX) {
		result_message(o->r, "more than %d states to re-encrypt in one commit", REWRITE_MAX);
		w->rc = TFGIT_ERROR;
	} else if ((w->rc = crypt_seal(&sealed, c, &at, bytes.ptr, bytes.size, o->r)) == 0 &&
		   (w->rc = git_blob_create_from_buffer(&id, o->cache->repo, sealed.ptr, sealed.size)) == 0 &&
		   (w->paths[w->n] = strdup(path))) {
		git_tree_update *u = &w->upd[w->n];
		u->action = GIT_TREE_UPDATE_UPSERT;
		u->filemode = mode;
		u->path = w->paths[w->n++];
		git_oid_cpy(&u->id, &id);
	} else if (w->rc == 0) {
		w->rc = TFGIT_ERROR;
	}
	tfgit_result_free(&scratch);
	tfgit_buf_free(&bytes);
	tfgit_buf_free(&sealed);
	return w->rc < 0 ? -1 : 0;
}

static int rewrite_attempt(op *o, void *ctx)
{
	struct reencrypt_ctx *asked = ctx;
	struct rewrite *w = calloc(1, sizeof(*w));
	git_commit *tip = NULL;
	git_tree *tree = NULL;
	git_oid tip_id, commit;
	char message[1400], who[1024];
	int rc;
	if (!w)
		return TFGIT_ERROR;
	w->o = o;
	if ((rc = op_read_tip(&tip, &tip_id, o)) < 0 || !tip)
		goto done;
	if ((rc = git_commit_tree(&tree, tip)) < 0) {
		rc = git_failure(o->r, rc, "reading the branch tip's tree");
		goto done;
	}
	if (git_tree_walk(tree, GIT_TREEWALK_PRE, visit, w) < 0 || w->rc < 0) {
		rc = w->rc < 0 ? w->rc : git_failure(o->r, -1, "reading the branch");
		goto done;
	}
	asked->count = w->n;
	if (w->n == 0) {
		result_message(o->r, "nothing to re-encrypt on branch %s (%zu file(s) left as they are: not "
			       "states this server can read)", o->t->ref, w->unreadable);
		goto done;
	}
	/* Who: the operator who ran it (escaped like a lock's Who: it adds no trailer of its own) */
	tfgit_escape(who, sizeof(who), asked->who, strlen(asked->who));
	snprintf(message, sizeof(message), "Re-encrypt %zu state%s\n\n%s%s%sOperation: re-encrypt\n", w->n,
		 w->n == 1 ? "" : "s", who[0] ? "Who: " : "", who, who[0] ? "\n" : "");
	if ((rc = op_commit(&commit, o, tip, 0, tree, w->upd, w->n, message)) < 0)
		goto done;
	/* each rewritten state's lock, when held, stands while the commit lands (a holder that
	 * lost it meanwhile to a force-unlock sees the branch as it was read) */
	for (size_t i = 0; rc == 0 && i < w->n; i++)
		rc = op_assert_lock_of(o, w->paths[i]);
	if (rc == 0)
		rc = session_push(o->sess, o->ref, &tip_id, &commit, 0, o->r);
	if (rc == 0) {
		o->r->changed = 1;
		result_message(o->r, "re-encrypted %zu state%s on branch %s in one commit%s", w->n,
			       w->n == 1 ? "" : "s", o->t->ref, w->unreadable ? " (some files left: unreadable)" : "");
	}
done:
	for (size_t i = 0; i < w->n; i++)
		free(w->paths[i]);
	free(w);
	git_tree_free(tree);
	git_commit_free(tip);
	return rc;
}

int tfgit_reencrypt(tfgit_result *out, const tfgit_store *store, const tfgit_target *t, const char *who,
		    size_t *count)
{
	struct reencrypt_ctx ctx = {who ? who : "", 0};
	int rc = op_run(out, store, t, 1, rewrite_attempt, &ctx);
	*count = ctx.count;
	return rc;
}
