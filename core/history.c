/* A state's history on its branch: the versions a state had (commits of the branch that hold
 * it), read from the cache after a fetch. Shared by the HTTP front (GET …&version=) and the
 * operators' command. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "crypt/crypt.h"
#include "internal.h"
#include "format/lockinfo.h"
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
	tfgit_target at = {o->t->url, o->t->ref, path}; /* bound to the branch read */
	int ok = op_blob_bytes(b, o, blob, o->store->max_blob, path) == 0 &&
		 crypt_open(b, &o->store->crypt, &at, &scratch) >= 0;
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

#define CHANGES_LISTED 200 /* per version on a state's page; the rest are counted */

struct history_ctx {
	tfgit_version *list;
	size_t n, cap;
	size_t skip, limit, total;
	int with_changes;
	git_oid *blobs;     /* each listed version's blob (and, at n, the one before the last) */
	int older;          /* blobs[n] holds the version before the last listed: 1, 0 none, -1 deleted */
	tfgit_lock_entry lock; /* with changes: the state's lock, when locked */
	int locked;
};

static int current_and_lock(op *o, git_commit *tip, const git_oid *tip_id, struct history_ctx *h);

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
						       CHANGES_LISTED, &v->changes, &v->nchanges, &v->changes_total) == 0;
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
	/* a commit changed the state when its blob differs from its first parent's; the parent's
	 * blob, looked up once, is the next commit's own in a linear history */
	git_oid next_id, next_blob;
	int next_known = 0, next_has = 0;
	while (rc == 0 && git_revwalk_next(&id, walk) == 0) {
		git_commit *c = NULL, *parent = NULL;
		git_oid mine, theirs = {{0}};
		int has, had = 0;
		if (git_commit_lookup(&c, o->cache->repo, &id) < 0)
			break;
		if (next_known && git_oid_equal(&id, &next_id)) {
			has = next_has;
			git_oid_cpy(&mine, &next_blob);
		} else {
			has = blob_in(&mine, c, o->t->state);
		}
		next_known = git_commit_parentcount(c) > 0 && git_commit_parent(&parent, c, 0) == 0;
		if (next_known) {
			had = next_has = blob_in(&theirs, parent, o->t->state);
			git_oid_cpy(&next_id, git_commit_id(parent));
			git_oid_cpy(&next_blob, &theirs);
		}
		if ((has || had) && !(has && had && git_oid_equal(&mine, &theirs)))
			rc = keep_version(h, o, c, has ? &mine : NULL);
		git_commit_free(c);
		git_commit_free(parent);
	}
	git_error_clear();
	if (rc == 0 && h->with_changes) {
		compare_versions(h, o);
		rc = current_and_lock(o, tip, &tip_id, h);
	}
done:
	git_revwalk_free(walk);
	git_commit_free(tip);
	return rc;
}

int tfgit_history_page(tfgit_result *out, const tfgit_store *store, const tfgit_target *t, size_t skip,
		       size_t limit, tfgit_version **list, size_t *n, size_t *total, tfgit_lock_entry *lock,
		       int *locked)
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
	*lock = h.lock;
	*locked = rc < 0 ? 0 : h.locked;
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
		tfgit_diff_free(list[i].changes, list[i].nchanges);
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

/* The state as the branch holds it now (o->r->content, empty when it no longer does) and its
 * lock, for a state's page: read in the same session as its versions. */
static int current_and_lock(op *o, git_commit *tip, const git_oid *tip_id, struct history_ctx *h)
{
	struct locks_ctx l = {0};
	git_oid blob, lock_tip;
	char what[1200];
	int rc;
	if (blob_in(&blob, tip, o->t->state)) {
		snprintf(what, sizeof(what), "state %s (TFGIT_MAX_BODY)", o->t->state);
		if ((rc = op_state_content(o, &blob, tip_id, what)) < 0)
			return rc;
	}
	l.o = o;
	if (session_ref(&lock_tip, o->sess, o->lockref) == 0 && lock_ref(o->lockref, &lock_tip, &l) == 0 && l.n) {
		h->lock = l.list[0];
		h->locked = 1;
	}
	free(l.list);
	git_error_clear();
	o->r->message[0] = '\0';
	return l.rc;
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

/* The states still without a last change that commit c (tree: its tree, ptree its first
 * parent's, NULL for a root commit) changed get c as theirs. Only the subtrees c changed are
 * compared (a tree diff), so the walk costs what the history changed, not states x commits.
 * by_path: the states sorted by path. */
static size_t last_changes_in(op *o, git_commit *c, git_tree *tree, git_tree *ptree, tfgit_state_entry **by_path,
			      size_t n)
{
	git_diff *diff = NULL;
	git_diff_options opts;
	size_t found = 0;
	git_diff_options_init(&opts, GIT_DIFF_OPTIONS_VERSION);
	opts.flags = GIT_DIFF_SKIP_BINARY_CHECK;
	if (git_diff_tree_to_tree(&diff, o->cache->repo, ptree, tree, &opts) < 0)
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
	return found;
}

/* The last changes a process found for a branch (a pool worker lists the same branch again
 * and again): the tip they were found at, each state's last change. A later listing walks
 * only the commits since (tip not moved: none) and takes the rest from here. Commits never
 * change, so this cannot go stale: a tip that is not a descendant is walked in full. */
static struct {
	char *key; /* the repository and the branch */
	git_oid tip;
	tfgit_state_entry *list; /* sorted by path; only state and last are kept */
	size_t n;
} memo;

/* Walks from tip (hiding since, when given) until every pending state has its last change,
 * reading each commit's tree once (it is the next commit's parent tree). */
static size_t walk_last_changes(op *o, const git_oid *tip, const git_oid *since, tfgit_state_entry **by_path,
				size_t n, size_t pending)
{
	git_revwalk *walk = NULL;
	git_tree *next_tree = NULL;
	git_oid id, next_id;
	if (walk_newest_first(&walk, o, tip) < 0 || (since && git_revwalk_hide(walk, since) < 0)) {
		git_revwalk_free(walk);
		git_error_clear();
		return pending;
	}
	while (pending && git_revwalk_next(&id, walk) == 0) {
		git_commit *c = NULL, *parent = NULL;
		git_tree *tree = NULL, *ptree = NULL;
		if (git_commit_lookup(&c, o->cache->repo, &id) < 0)
			break;
		if (next_tree && git_oid_equal(&id, &next_id)) {
			tree = next_tree;
			next_tree = NULL;
		} else if (git_commit_tree(&tree, c) < 0) {
			git_commit_free(c);
			break;
		}
		git_tree_free(next_tree);
		next_tree = NULL;
		if (git_commit_parentcount(c) > 0 && git_commit_parent(&parent, c, 0) == 0 &&
		    git_commit_tree(&ptree, parent) == 0) {
			git_oid_cpy(&next_id, git_commit_id(parent));
			next_tree = ptree;
		}
		size_t found = last_changes_in(o, c, tree, ptree, by_path, n);
		pending -= found < pending ? found : pending;
		git_tree_free(tree);
		git_commit_free(parent);
		git_commit_free(c);
	}
	git_tree_free(next_tree);
	git_revwalk_free(walk);
	git_error_clear();
	return pending;
}

/* Each listed state's last change: from the commits since the process's last listing of the
 * branch, then from that listing, then (states it did not know) from the whole history. */
static void last_changes(op *o, const git_oid *tip, tfgit_state_entry **by_path, size_t n, const char *key)
{
	size_t pending = n;
	int incremental = memo.key && !strcmp(memo.key, key) &&
			  (git_oid_equal(&memo.tip, tip) || git_graph_descendant_of(o->cache->repo, tip, &memo.tip) == 1);
	git_error_clear();
	if (incremental) {
		pending = walk_last_changes(o, tip, &memo.tip, by_path, n, pending);
		for (size_t i = 0; i < n && pending; i++) {
			if (by_path[i]->last.commit[0])
				continue;
			tfgit_state_entry *hit = NULL;
			for (size_t lo = 0, hi = memo.n; lo < hi && !hit;) {
				size_t mid = (lo + hi) / 2;
				int cmp = strcmp(by_path[i]->state, memo.list[mid].state);
				if (!cmp)
					hit = &memo.list[mid];
				else if (cmp < 0)
					hi = mid;
				else
					lo = mid + 1;
			}
			if (hit && hit->last.commit[0]) {
				by_path[i]->last = hit->last;
				pending--;
			}
		}
	}
	if (pending)
		walk_last_changes(o, tip, NULL, by_path, n, pending);
	/* kept for the next listing */
	tfgit_state_entry *copy = malloc((n ? n : 1) * sizeof(*copy));
	char *k = strdup(key);
	if (!copy || !k) {
		free(copy);
		free(k);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		memset(&copy[i], 0, sizeof(copy[i]));
		snprintf(copy[i].state, sizeof(copy[i].state), "%s", by_path[i]->state);
		copy[i].last = by_path[i]->last;
	}
	free(memo.list);
	free(memo.key);
	memo.list = copy;
	memo.n = n;
	memo.key = k;
	git_oid_cpy(&memo.tip, tip);
}

static int states_attempt(op *o, void *ctx)
{
	struct states_ctx *st = ctx;
	struct locks_ctx locks = {0};
	git_commit *tip = NULL;
	git_tree *tree = NULL;
	tfgit_state_entry **by_path = NULL;
	git_oid tip_id;
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
	by_path = malloc((st->n ? st->n : 1) * sizeof(*by_path));
	if (by_path) {
		char key[4400];
		snprintf(key, sizeof(key), "%s\n%s", o->t->url, o->t->ref);
		for (size_t i = 0; i < st->n; i++)
			by_path[i] = &st->list[i];
		if (st->n)
			qsort(by_path, st->n, sizeof(*by_path), by_state);
		last_changes(o, &tip_id, by_path, st->n, key);
	}
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
