/* A state's history on its branch: the versions a state had (commits of the branch that hold
 * it), read from the cache after a fetch. Shared by the HTTP front (GET …&version=) and the
 * operators' command. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "crypt.h"
#include "internal.h"
#include "lockinfo.h"
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
	rc = op_state_content(o, git_tree_entry_id(e), git_commit_id(c), what);
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

/* list (n of *cap elements of size bytes used) with room for one more; NULL when out of
 * memory (list unchanged, still the caller's). */
static void *room_for_one(void *list, size_t *cap, size_t n, size_t size)
{
	if (n < *cap)
		return list;
	size_t ncap = *cap ? *cap * 2 : 32;
	void *l = realloc(list, ncap * size);
	if (l)
		*cap = ncap;
	return l;
}

/* A trailer's value ("Name: value" on its own line of message) into out; empty when absent. */
static void trailer(char *out, size_t outlen, const char *message, const char *name)
{
	size_t n = strlen(name);
	out[0] = '\0';
	for (const char *p = message; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
		if (!strncmp(p, name, n) && p[n] == ':' && p[n + 1] == ' ') {
			size_t len = strcspn(p + n + 2, "\n");
			snprintf(out, outlen, "%.*s", (int)(len < outlen ? len : outlen - 1), p + n + 2);
			return;
		}
	}
}

/* serial and lineage of a state's clear text (-1 and "" when absent): one pass, no tree; the
 * rest of its top-level fields in *top. */
static void state_fields(const tfgit_buf *b, long long *serial, char *lineage, size_t len, state_top *top)
{
	char num[32];
	*serial = -1;
	lineage[0] = '\0';
	memset(top, 0, sizeof(*top));
	state_top_scan(top, b->ptr, b->size);
	if (json_span_text(num, sizeof(num), top->serial) == 1)
		*serial = strtoll(num, NULL, 10);
	if (json_span_text(lineage, len, top->lineage) < 0)
		lineage[0] = '\0';
}

/* The clear text of a state's blob (path: the state's, for the codec); 0 or -1. */
static int clear_text(tfgit_buf *b, op *o, const git_oid *blob, const char *path)
{
	tfgit_result scratch = {0};
	int ok = op_blob_bytes(b, o, blob, o->store->max_blob, path) == 0 &&
		 crypt_open(b, &o->store->crypt, path, &scratch) >= 0;
	tfgit_result_free(&scratch);
	if (!ok)
		tfgit_buf_free(b);
	return ok ? 0 : -1;
}

/* The state's blob in commit c (NULL when absent). */
static int blob_in(git_oid *out, git_commit *c, const char *state)
{
	git_tree *tree = NULL;
	git_tree_entry *e = NULL;
	int found = git_commit_tree(&tree, c) == 0 && git_tree_entry_bypath(&e, tree, state) == 0 &&
		    git_tree_entry_type(e) == GIT_OBJECT_BLOB;
	if (found)
		git_oid_cpy(out, git_tree_entry_id(e));
	git_tree_entry_free(e);
	git_tree_free(tree);
	git_error_clear();
	return found;
}

/* 1 when commit c changed path against parent (its first parent; NULL for a root commit):
 * added, changed or removed. *present says whether c holds it, its blob in *mine. */
static int touched(git_commit *c, git_commit *parent, const char *path, git_oid *mine, int *present)
{
	git_oid theirs;
	*present = blob_in(mine, c, path);
	int had = parent && blob_in(&theirs, parent, path);
	return (*present || had) && !(*present && had && git_oid_equal(mine, &theirs));
}

/* A walk of the branch from tip, newest first. */
static int walk_newest_first(git_revwalk **walk, op *o, const git_oid *tip)
{
	int rc;
	if ((rc = git_revwalk_new(walk, o->cache->repo)) < 0 ||
	    (rc = git_revwalk_sorting(*walk, GIT_SORT_TOPOLOGICAL | GIT_SORT_TIME)) < 0 ||
	    (rc = git_revwalk_push(*walk, tip)) < 0)
		return git_failure(o->r, rc, "walking the branch's history");
	return 0;
}

/* c and its first parent (NULL for a root commit); -1 when c cannot be read. */
static int commit_and_parent(git_commit **c, git_commit **parent, op *o, const git_oid *id)
{
	*parent = NULL;
	if (git_commit_lookup(c, o->cache->repo, id) < 0)
		return -1;
	if (git_commit_parentcount(*c) > 0 && git_commit_parent(parent, *c, 0) < 0)
		*parent = NULL;
	return 0;
}

static void version_of(tfgit_version *v, op *o, git_commit *c, const git_oid *blob)
{
	const char *msg = git_commit_message(c);
	state_top top;
	memset(v, 0, sizeof(*v));
	git_oid_tostr(v->commit, sizeof(v->commit), git_commit_id(c));
	v->time = (long long)git_commit_time(c);
	trailer(v->who, sizeof(v->who), msg, "Who");
	trailer(v->lock_id, sizeof(v->lock_id), msg, "Lock-ID");
	trailer(v->operation, sizeof(v->operation), msg, "Operation");
	v->serial = -1;
	if (!blob) {
		v->deleted = 1;
		return;
	}
	tfgit_buf b = {0};
	if (clear_text(&b, o, blob, o->t->state) == 0) {
		v->size = b.size;
		state_fields(&b, &v->serial, v->lineage, sizeof(v->lineage), &top);
	}
	tfgit_buf_free(&b);
}

struct history_ctx {
	tfgit_version *list;
	size_t n, cap;
	size_t skip, limit, total;
	int with_changes;
	git_oid *blobs;     /* each listed version's blob (and, at n, the one before the last) */
	int older;          /* blobs[n] holds the version before the last listed: 1, 0 none, -1 deleted */
};

/* Keeps the version c (blob: NULL when c removed the state) when it falls in the page. */
static int keep_version(struct history_ctx *h, op *o, git_commit *c, const git_oid *blob)
{
	size_t idx = h->total++;
	if (idx < h->skip || idx > h->skip + h->limit || (idx == h->skip + h->limit && !h->with_changes))
		return 0;
	git_oid *b = realloc(h->blobs, (h->n + 1) * sizeof(*b));
	if (!b)
		return TFGIT_ERROR;
	h->blobs = b;
	memset(&h->blobs[h->n], 0, sizeof(git_oid));
	if (blob)
		git_oid_cpy(&h->blobs[h->n], blob);
	if (idx == h->skip + h->limit) { /* only what the last listed version is compared with */
		h->older = blob ? 1 : -1;
		return 0;
	}
	tfgit_version *grown = room_for_one(h->list, &h->cap, h->n, sizeof(*grown));
	if (!grown)
		return TFGIT_ERROR;
	h->list = grown;
	version_of(&h->list[h->n++], o, c, blob);
	return 0;
}

/* Each listed version's changes against the version before it (none before the first: all
 * added; a removal: all removed). Each blob is read once more, one or two in memory. */
static void compare_versions(struct history_ctx *h, op *o)
{
	tfgit_buf cur = {0}, prev = {0};
	static const char empty[] = "{}";
	int cur_ok = h->n && !h->list[0].deleted ? clear_text(&cur, o, &h->blobs[0], o->t->state) == 0 : 1;
	for (size_t i = 0; i < h->n; i++) {
		int before = i + 1 < h->n ? (h->list[i + 1].deleted ? -1 : 1) : h->older;
		int prev_ok = before == 1 ? clear_text(&prev, o, &h->blobs[i + 1], o->t->state) == 0 : 1;
		tfgit_version *v = &h->list[i];
		if (cur_ok && prev_ok)
			v->compared = tfgit_state_diff(before == 1 ? prev.ptr : empty, before == 1 ? prev.size : 2,
						       v->deleted ? empty : cur.ptr, v->deleted ? 2 : cur.size,
						       &v->changes, &v->nchanges) == 0;
		tfgit_buf_free(&cur);
		cur = prev; /* the version before is the next one's own */
		memset(&prev, 0, sizeof(prev));
		cur_ok = prev_ok;
	}
	tfgit_buf_free(&cur);
}

/* The commits of the branch that changed the state (its blob differs from the first parent's). */
static int history_attempt(op *o, void *ctx)
{
	struct history_ctx *h = ctx;
	git_commit *tip = NULL;
	git_revwalk *walk = NULL;
	git_oid tip_id, id;
	int rc = op_read_tip(&tip, &tip_id, o);
	tfgit_versions_free(h->list, h->n); /* a retried attempt starts over */
	free(h->blobs);
	h->list = NULL;
	h->blobs = NULL;
	h->n = h->cap = h->total = 0;
	h->older = 0;
	if (rc < 0 || !tip)
		goto done;
	if ((rc = walk_newest_first(&walk, o, &tip_id)) < 0)
		goto done;
	while (rc == 0 && git_revwalk_next(&id, walk) == 0) {
		git_commit *c = NULL, *parent = NULL;
		git_oid mine;
		int has;
		if (commit_and_parent(&c, &parent, o, &id) < 0)
			break;
		if (touched(c, parent, o->t->state, &mine, &has))
			rc = keep_version(h, o, c, has ? &mine : NULL);
		git_commit_free(c);
		git_commit_free(parent);
	}
	git_error_clear();
	if (rc == 0 && h->with_changes)
		compare_versions(h, o);
done:
	git_revwalk_free(walk);
	git_commit_free(tip);
	return rc;
}

int tfgit_history_page(tfgit_result *out, const tfgit_store *store, const tfgit_target *t, size_t skip,
		       size_t limit, tfgit_version **list, size_t *n, size_t *total)
{
	struct history_ctx h = {0};
	h.skip = skip;
	h.limit = limit;
	h.with_changes = 1;
	int rc = op_run(out, store, t, 0, history_attempt, &h);
	free(h.blobs);
	if (rc < 0) {
		tfgit_versions_free(h.list, h.n);
		h.list = NULL;
		h.n = h.total = 0;
	}
	*list = h.list;
	*n = h.n;
	*total = h.total;
	return rc;
}

int tfgit_history(tfgit_result *out, const tfgit_store *store, const tfgit_target *t,
		  tfgit_version **list, size_t *n)
{
	struct history_ctx h = {0};
	h.limit = (size_t)-1 / 2;
	int rc = op_run(out, store, t, 0, history_attempt, &h);
	free(h.blobs);
	*list = h.list;
	*n = rc < 0 ? 0 : h.n;
	return rc;
}

void tfgit_versions_free(tfgit_version *list, size_t n)
{
	for (size_t i = 0; list && i < n; i++)
		free(list[i].changes);
	free(list);
}

/* Locks */

struct locks_ctx {
	op *o;
	tfgit_lock_entry *list;
	size_t n, cap;
	int rc;
};

static int lock_ref(const char *name, const git_oid *oid, void *payload)
{
	struct locks_ctx *l = payload;
	op *o = l->o;
	const char *state = name + strlen("refs/heads/locks/");
	char path[1200];
	git_commit *c = NULL;
	git_tree *tree = NULL;
	git_tree_entry *e = NULL;
	tfgit_buf raw = {0};
	lockinfo info;
	if (session_fetch(o->sess, name, o->r) < 0 || git_commit_lookup(&c, o->cache->repo, oid) < 0)
		return 0; /* gone meanwhile, or unreadable: not listed */
	tfgit_lock_entry *grown = room_for_one(l->list, &l->cap, l->n, sizeof(*grown));
	if (!grown) {
		git_commit_free(c);
		l->rc = TFGIT_ERROR;
		return 1;
	}
	l->list = grown;
	tfgit_lock_entry *x = &l->list[l->n++];
	memset(x, 0, sizeof(*x));
	snprintf(x->state, sizeof(x->state), "%s", state);
	x->time = (long long)git_commit_time(c);
	snprintf(path, sizeof(path), "%s.lock", state);
	if (git_commit_tree(&tree, c) == 0 && git_tree_entry_bypath(&e, tree, path) == 0 &&
	    op_blob_bytes(&raw, o, git_tree_entry_id(e), LOCK_BODY_MAX, "a lock file") == 0 &&
	    lockinfo_parse(&info, raw.ptr, raw.size) == 0) {
		snprintf(x->id, sizeof(x->id), "%.255s", info.id);
		snprintf(x->who, sizeof(x->who), "%.255s", info.who);
		snprintf(x->operation, sizeof(x->operation), "%.255s", info.operation);
		json_tokener *tok = json_tokener_new();
		json_object *obj = tok ? json_tokener_parse_ex(tok, raw.ptr, (int)raw.size) : NULL, *v;
		if (json_object_object_get_ex(obj, "Created", &v) && json_object_is_type(v, json_type_string))
			snprintf(x->created, sizeof(x->created), "%.63s", json_object_get_string(v));
		json_object_put(obj);
		json_tokener_free(tok);
	}
	git_error_clear();
	tfgit_buf_free(&raw);
	git_tree_entry_free(e);
	git_tree_free(tree);
	git_commit_free(c);
	return 0;
}

static int locks_attempt(op *o, void *ctx)
{
	struct locks_ctx *l = ctx;
	l->o = o;
	l->n = 0;
	l->rc = 0;
	session_each_ref(o->sess, "refs/heads/locks/", lock_ref, l);
	o->r->message[0] = '\0'; /* a lock gone between advertisement and fetch is not an error */
	return l->rc;
}

int tfgit_locks(tfgit_result *out, const tfgit_store *store, const tfgit_target *t,
		tfgit_lock_entry **list, size_t *n)
{
	struct locks_ctx l = {0};
	int rc = op_run(out, store, t, 0, locks_attempt, &l);
	*list = l.list;
	*n = rc < 0 ? 0 : l.n;
	return rc;
}

/* States */

struct states_ctx {
	op *o;
	tfgit_state_entry *list;
	size_t n, cap;
	int rc;
};

static int state_file(const char *root, const git_tree_entry *e, void *payload)
{
	struct states_ctx *st = payload;
	op *o = st->o;
	git_filemode_t mode = git_tree_entry_filemode(e);
	tfgit_buf b = {0};
	state_top top;
	char path[1200];
	if (mode != GIT_FILEMODE_BLOB && mode != GIT_FILEMODE_BLOB_EXECUTABLE)
		return 0;
	snprintf(path, sizeof(path), "%s%s", root, git_tree_entry_name(e));
	if (clear_text(&b, o, git_tree_entry_id(e), path) == 0 && json_is_state(b.ptr, b.size)) {
		tfgit_state_entry *grown = room_for_one(st->list, &st->cap, st->n, sizeof(*grown));
		if (!grown) {
			st->rc = TFGIT_ERROR;
			tfgit_buf_free(&b);
			return -1;
		}
		st->list = grown;
		tfgit_state_entry *x = &st->list[st->n++];
		memset(x, 0, sizeof(*x));
		snprintf(x->state, sizeof(x->state), "%.1099s", path);
		state_fields(&b, &x->serial, x->lineage, sizeof(x->lineage), &top);
		if (json_span_text(x->terraform_version, sizeof(x->terraform_version), top.terraform_version) < 0)
			x->terraform_version[0] = '\0';
		x->resources = json_span_count(top.resources);
	}
	tfgit_buf_free(&b);
	return 0;
}

static int by_state(const void *a, const void *b)
{
	return strcmp((*(tfgit_state_entry *const *)a)->state, (*(tfgit_state_entry *const *)b)->state);
}

/* The states still without a last change that commit c (first parent: parent) changed get c
 * as theirs. Only the subtrees c changed are compared (a tree diff), so the walk costs what
 * the history changed, not states x commits. by_path: the pending states sorted by path. */
static size_t last_changes_in(op *o, git_commit *c, git_commit *parent, tfgit_state_entry **by_path, size_t n)
{
	git_tree *tree = NULL, *ptree = NULL;
	git_diff *diff = NULL;
	git_diff_options opts;
	size_t found = 0;
	git_diff_options_init(&opts, GIT_DIFF_OPTIONS_VERSION);
	opts.flags = GIT_DIFF_SKIP_BINARY_CHECK;
	if (git_commit_tree(&tree, c) < 0 || (parent && git_commit_tree(&ptree, parent) < 0) ||
	    git_diff_tree_to_tree(&diff, o->cache->repo, ptree, tree, &opts) < 0)
		goto done;
	for (size_t i = 0; i < git_diff_num_deltas(diff); i++) {
		const git_diff_delta *d = git_diff_get_delta(diff, i);
		if (d->status == GIT_DELTA_DELETED)
			continue;
		tfgit_state_entry key, *k = &key, **hit;
		snprintf(key.state, sizeof(key.state), "%s", d->new_file.path);
		hit = bsearch(&k, by_path, n, sizeof(*by_path), by_state);
		if (hit && !(*hit)->last.commit[0]) {
			version_of(&(*hit)->last, o, c, NULL);
			(*hit)->last.deleted = 0;
			found++;
		}
	}
done:
	git_error_clear();
	git_diff_free(diff);
	git_tree_free(ptree);
	git_tree_free(tree);
	return found;
}

static int states_attempt(op *o, void *ctx)
{
	struct states_ctx *st = ctx;
	struct locks_ctx locks = {0};
	git_commit *tip = NULL;
	git_tree *tree = NULL;
	git_revwalk *walk = NULL;
	tfgit_state_entry **by_path = NULL;
	git_oid tip_id, id;
	size_t pending;
	st->o = o;
	st->n = 0;
	int rc = op_read_tip(&tip, &tip_id, o);
	if (rc < 0 || !tip)
		goto done;
	if ((rc = git_commit_tree(&tree, tip)) < 0 || git_tree_walk(tree, GIT_TREEWALK_PRE, state_file, st) < 0) {
		rc = st->rc < 0 ? st->rc : git_failure(o->r, rc, "reading the branch");
		goto done;
	}
	/* each state's last change: the newest commit that changed its blob */
	pending = st->n;
	by_path = malloc((st->n ? st->n : 1) * sizeof(*by_path));
	if (!by_path || walk_newest_first(&walk, o, &tip_id) < 0)
		pending = 0; /* listed without their last change */
	for (size_t i = 0; by_path && i < st->n; i++)
		by_path[i] = &st->list[i];
	if (pending)
		qsort(by_path, st->n, sizeof(*by_path), by_state);
	while (pending && git_revwalk_next(&id, walk) == 0) {
		git_commit *c = NULL, *parent = NULL;
		if (commit_and_parent(&c, &parent, o, &id) < 0)
			break;
		size_t found = last_changes_in(o, c, parent, by_path, st->n);
		pending -= found < pending ? found : pending;
		git_commit_free(c);
		git_commit_free(parent);
	}
	git_error_clear();
	/* and its lock */
	locks.o = o;
	session_each_ref(o->sess, "refs/heads/locks/", lock_ref, &locks);
	o->r->message[0] = '\0';
	for (size_t i = 0; i < st->n; i++)
		for (size_t k = 0; k < locks.n; k++)
			if (!strcmp(st->list[i].state, locks.list[k].state)) {
				st->list[i].locked = 1;
				st->list[i].lock = locks.list[k];
			}
	free(locks.list);
done:
	free(by_path);
	git_revwalk_free(walk);
	git_tree_free(tree);
	git_commit_free(tip);
	return rc;
}

int tfgit_states(tfgit_result *out, const tfgit_store *store, const tfgit_target *t,
		 tfgit_state_entry **list, size_t *n)
{
	struct states_ctx st = {0};
	int rc = op_run(out, store, t, 0, states_attempt, &st);
	*list = st.list;
	*n = rc < 0 ? 0 : st.n;
	return rc;
}
