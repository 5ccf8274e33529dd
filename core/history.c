/* A state's history on its branch: the versions a state had (commits of the branch that hold
 * it), read from the cache after a fetch. Shared by the HTTP front (GET …&version=) and the
 * operators' command. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "crypt.h"
#include "internal.h"
#include "op.h"

/* The commit version names on the branch: 0, ENOTFOUND (no such commit of this branch),
 * EINVALID (not 7 to 40 hex digits, or ambiguous). */
static int find_version(git_commit **out, op *o, const git_oid *tip_id, const char *version)
{
	size_t n = strlen(version);
	git_oid id;
	*out = NULL;
	for (size_t i = 0; i < n; i++)
		if (!isxdigit((unsigned char)version[i]))
			n = 0;
	if (n < 7 || n > GIT_OID_HEXSZ) {
		result_message(o->r, "version must be a commit id: 7 to 40 hex digits");
		return TFGIT_EINVALID;
	}
	int err = git_oid_fromstrn(&id, version, n);
	if (err == 0)
		err = git_commit_lookup_prefix(out, o->cache->repo, &id, n);
	if (err == GIT_EAMBIGUOUS) {
		git_error_clear();
		result_message(o->r, "version %s is ambiguous: give more digits", version);
		return TFGIT_EINVALID;
	}
	if (err < 0 || !(git_oid_equal(git_commit_id(*out), tip_id) ||
			 git_graph_descendant_of(o->cache->repo, tip_id, git_commit_id(*out)) == 1)) {
		git_error_clear();
		git_commit_free(*out);
		*out = NULL;
		result_message(o->r, "%s is not a version of branch %s", version, o->t->ref);
		return TFGIT_ENOTFOUND;
	}
	return 0;
}

static int version_attempt(op *o, void *ctx)
{
	const char *version = ctx;
	git_commit *tip = NULL, *c = NULL;
	git_tree *tree = NULL;
	git_tree_entry *e = NULL;
	git_oid tip_id, plain_id;
	char what[1200];
	int rc = op_read_tip(&tip, &tip_id, o);
	if (rc < 0)
		goto done;
	if (!tip) {
		result_message(o->r, "branch %s does not exist yet", o->t->ref);
		rc = TFGIT_ENOTFOUND;
		goto done;
	}
	if ((rc = find_version(&c, o, &tip_id, version)) < 0)
		goto done;
	if ((rc = git_commit_tree(&tree, c)) < 0) {
		rc = git_failure(o->r, rc, "reading the version's tree");
		goto done;
	}
	git_filemode_t mode;
	if (git_tree_entry_bypath(&e, tree, o->t->state) < 0 ||
	    ((mode = git_tree_entry_filemode(e)) != GIT_FILEMODE_BLOB && mode != GIT_FILEMODE_BLOB_EXECUTABLE)) {
		git_error_clear();
		result_message(o->r, "version %s holds no state %s", version, o->t->state);
		rc = TFGIT_ENOTFOUND;
		goto done;
	}
	snprintf(what, sizeof(what), "state %s at %s (TFGIT_MAX_BODY)", o->t->state, version);
	rc = op_blob_bytes(&o->r->content, o, git_tree_entry_id(e), o->store->max_blob, what);
	if (rc == 0 && (rc = crypt_open(&o->r->content, &o->store->crypt, o->t->state, o->r)) >= 0) {
		rc = 0;
		if (git_odb_hash(&plain_id, o->r->content.ptr, o->r->content.size, GIT_OBJECT_BLOB) == 0)
			git_oid_tostr(o->r->blob_id, sizeof(o->r->blob_id), &plain_id);
		git_oid_tostr(o->r->version, sizeof(o->r->version), git_commit_id(c));
	}
done:
	git_tree_entry_free(e);
	git_tree_free(tree);
	git_commit_free(c);
	git_commit_free(tip);
	return rc;
}

int tfgit_state_get_version(tfgit_result *out, const tfgit_store *store, const tfgit_target *t,
			    const char *version)
{
	return op_run(out, store, t, 0, version_attempt, (void *)version);
}
