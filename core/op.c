/* One core operation on one repository: the flock-held cache, a session with the remote, and
 * the reads and commit building that state.c and lock.c share. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <fcntl.h>
#include <unistd.h>

#include <json-c/json.h>

#include "net/deadline.h"
#include "net/sockets.h"
#include "crypt/crypt.h"
#include "internal.h"
#include "metrics.h"
#include "store/maint.h"
#include "op.h"
#include "store/stage.h"

int op_connect(op *o)
{
	session_free(o->sess);
	o->sess = NULL;
	int may_warm = o->may_warm; /* once: a warm attempt that did not stand is redone for real */
	o->may_warm = 0;
	/* a write to a warm cache: one push from its view, no advertisement (checked by the push) */
	if (may_warm && o->for_push && o->store->remote.keep_connections && !o->cache->created) {
		int rc = session_open_warm(&o->sess, o->cache->repo, o->t->url, &o->store->remote);
		if (rc <= 0)
			return rc;
	}
	/* a read of named branches: those refs alone, on a kept connection */
	if (!o->for_push && o->nread_refs && o->store->remote.keep_connections && !o->cache->created) {
		int rc = session_open_refs(&o->sess, o->cache->repo, o->t->url, &o->store->remote, o->read_refs,
					   o->nread_refs);
		if (rc <= 0)
			return rc;
	}
	int rc = session_open(&o->sess, o->cache->repo, o->t->url, o->for_push, &o->store->remote, o->r);
	if (rc == 0 && !o->cache->shared && (rc = session_share_objects(o->sess)) == 0)
		o->cache->shared = 1;
	return rc;
}

void op_names(op *o)
{
	snprintf(o->ref, sizeof(o->ref), "refs/heads/%s", o->t->ref);
	snprintf(o->lockref, sizeof(o->lockref), "refs/heads/locks/%s", o->t->state);
	snprintf(o->lockpath, sizeof(o->lockpath), "%s.lock", o->t->state);
}

static int op_begin(op *o)
{
	const tfgit_target *t = o->t;
	int rc;
	char why[400] = "";
	op_names(o);
	if (git_signature_now(&o->sig, o->store->author_name, o->store->author_email) < 0)
		return git_failure(o->r, -1, "making the commit signature");
	if ((rc = cache_open(&o->cache, o->store->cache_dir, t->url, o->store->queue_timeout, why,
			     sizeof(why))) < 0) {
		if (rc == TFGIT_EBUSY)
			result_message(o->r, "the repository is busy: another request has held it for "
				       "TFGIT_QUEUE_TIMEOUT (%d s); try again", o->store->queue_timeout);
		else if (rc == TFGIT_ETIMEOUT)
			result_message(o->r, "the operation did not finish within %d s (TFGIT_REMOTE_TIMEOUT): "
				       "another request held the repository; nothing was changed", o->store->remote.timeout);
		else
			result_message(o->r, "the cache for this repository is not usable: %s", why);
		return rc;
	}
	if (o->cache->created)
		metrics_count(METRIC_CACHE_CLONES);
	rc = op_connect(o);
	if (rc < 0 && o->cache->created) {
		/* nothing is kept of a remote that could not be reached */
		cache_discard(o->cache);
		o->cache = NULL;
	}
	return rc;
}

void op_evict(const tfgit_store *store, int created)
{
	static time_t last;
	time_t now = time(NULL);
	if (!store->cache_max_count && !store->cache_max_bytes)
		return;
	if (!created && (!store->cache_max_bytes || now - last < 30))
		return;
	last = now;
	metrics_add(METRIC_CACHE_EVICTIONS, cache_evict(store->cache_dir, store->cache_max_count, store->cache_max_bytes));
}

static void op_end(op *o)
{
	int local = session_is_local(o->sess);
	session_free(o->sess);
	/* still under the flock: what the operation wrote is packed (maint.c) */
	if (o->cache && o->cache->repo &&
	    maint_run(o->cache->repo, o->cache->stage, o->cache->path, local) == MAINT_DAMAGED) {
		cache_discard(o->cache); /* the next request clones it again */
		o->cache = NULL;
	}
	cache_free(o->cache);
	git_signature_free(o->sig);
	memset(o, 0, sizeof(*o));
}

void op_backoff(int attempt)
{
	long cap_us = 1000L << (attempt < 6 ? attempt : 6); /* 2 ms, 4 ms, ... 64 ms */
	struct timespec ts = {0, (random() % cap_us) * 1000L};
	nanosleep(&ts, NULL);
}

int op_warm_verdict(op *o, int applied)
{
	if (applied) {
		metrics_count(METRIC_DIRECT_PUSHES);
		return 1;
	}
	metrics_count(METRIC_DIRECT_FALLBACKS);
	op_result_reset(o->r, o->r->attempts); /* what the attempt left goes: another answers */
	return 0;
}

void op_result_reset(tfgit_result *r, int attempt)
{
	tfgit_result_free(r);
	memset(r, 0, sizeof(*r));
	r->attempts = attempt;
}

int op_run(tfgit_result *r, const tfgit_store *store, const tfgit_target *t, int for_push,
	   op_attempt_fn fn, void *ctx)
{
	op o = {.store = store, .t = t, .r = r, .for_push = for_push == 1, .may_warm = 1};
	if (for_push == OP_READ_BRANCH) {
		o.own_ref[0] = o.ref; /* filled by op_begin */
		o.read_refs = o.own_ref;
		o.nread_refs = 1;
	}
	int rebuilt = 0, refetched = 0;
	/* bounds everything, the wait for the repository's flock included */
	sockets_remember();
	deadline_start(store->remote.timeout);
	stage_was_full(1);
	int rc = op_begin(&o);
	for (int attempt = 1; rc == 0; attempt++) {
		r->attempts = attempt;
		rc = fn(&o, ctx);
		if (session_warm(o.sess) && !op_warm_verdict(&o, rc == 0 && session_applied(o.sess))) {
			/* the answer came from the cache's view and no push of it was applied: it is no
			 * answer. Again, after the advertisement (not a lost race: no pause) */
			attempt--;
			rc = deadline_passed() ? TFGIT_ERROR : op_connect(&o); /* the end says: timed out */
			continue;
		}
		if (rc == TFGIT_ERROR && r->damaged && !rebuilt && o.cache && !deadline_passed() &&
		    !cache_full(store->cache_dir)) {
			/* a local failure: the cache may be damaged (a truncated pack, missing
			 * objects). Throw it away and start again from a fresh copy, once. */
			core_log("cache %s failed (%s): rebuilding it from the remote", o.cache->path,
				 r->message);
			rebuilt = 1;
			r->damaged = 0;
			session_free(o.sess); /* it holds the cache repository that goes */
			o.sess = NULL;
			if ((rc = cache_reset(o.cache)) == 0)
				rc = op_connect(&o);
			if (rc == 0)
				r->message[0] = '\0';
			continue;
		}
		if (rc == TFGIT_EUNREACHABLE && r->transient && !refetched && !deadline_passed()) {
			/* a fetch cut short (nothing was changed by it): once more, on a new connection */
			core_log("%s: trying once more", r->message);
			refetched = 1;
			r->transient = 0;
			r->message[0] = '\0';
			rc = op_connect(&o);
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
		op_backoff(attempt);
		rc = op_connect(&o);
	}
	if ((rc == TFGIT_ERROR || rc == TFGIT_EUNREACHABLE) && cache_full(store->cache_dir)) {
		/* what failed was a write into a full cache (not every libgit2 path says so; a fetch
		 * whose pack cannot be stored may read as a broken transfer) */
		char was[sizeof(r->message)];
		snprintf(was, sizeof(was), "%s", r->message[0] ? r->message : "no space left");
		core_log("the cache filesystem (%s) is full: %s", store->cache_dir, was);
		result_message(r, "the cache filesystem is full: %s", was);
		rc = TFGIT_ENOSPACE;
	}
	int created = o.cache && o.cache->created;
	op_end(&o);
	if (store->group_commit)
		op_queue_turn(store->cache_dir, t->url); /* requests queued meanwhile: the flock is free */
	op_evict(store, created);
	deadline_stop();
	if (rc < 0 && rc != TFGIT_ETIMEOUT && deadline_passed()) {
		result_message(r, "the operation did not finish within %d s (TFGIT_REMOTE_TIMEOUT)",
			       store->remote.timeout);
		rc = TFGIT_ETIMEOUT;
	}
	return rc;
}

void op_queue_turn(const char *cache_dir, const char *url)
{
	char path[4200];
	if (cache_entry_path(path, sizeof(path), cache_dir, url, ".q/turn") < 0)
		return;
	/* closing it written is the event the waiters' inotify watches for; no directory (no
	 * request ever queued): nothing to do */
	int fd = open(path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd >= 0)
		close(fd);
}

/* The object id, read whole unless its header says it is over max (then never inflated):
 * 0, TFGIT_ETOOLARGE or a failure, each with its message in o->r. */
static int read_bounded(git_odb_object **obj, op *o, const git_oid *id, size_t max, const char *what)
{
	git_odb *odb = NULL;
	git_object_t type;
	size_t size = 0;
	*obj = NULL;
	int err = git_repository_odb(&odb, o->cache->repo);
	if (err == 0 && (err = git_odb_read_header(&size, &type, odb, id)) == 0 && type != GIT_OBJECT_BLOB) {
		git_error_set_str(GIT_ERROR_OBJECT, "the object is not a blob");
		err = GIT_EINVALID;
	}
	if (err == 0 && size <= max)
		err = git_odb_read(obj, odb, id);
	git_odb_free(odb);
	if (err < 0)
		return git_failure(o->r, err, "reading a blob");
	if (size > max) {
		result_message(o->r, "%s is %zu bytes, more than this server reads (%zu)", what, size, max);
		return TFGIT_ETOOLARGE;
	}
	return 0;
}

int op_blob_bytes(tfgit_buf *out, op *o, const git_oid *id, size_t max, const char *what)
{
	git_odb_object *obj;
	int rc = read_bounded(&obj, o, id, max, what);
	if (rc < 0)
		return rc;
	size_t n = git_odb_object_size(obj);
	out->ptr = malloc(n ? n : 1);
	if (out->ptr) {
		memcpy(out->ptr, git_odb_object_data(obj), n);
		out->size = n;
	}
	git_odb_object_free(obj);
	return out->ptr ? 0 : TFGIT_ERROR;
}

/* Like op_blob_bytes, without the copy: r->content points into the object, which the result
 * keeps (r->content_owner) and tfgit_result_free releases. A GET holds the state once. */
static int op_blob_view(op *o, const git_oid *id, size_t max, const char *what)
{
	git_odb_object *obj;
	int rc = read_bounded(&obj, o, id, max, what);
	if (rc < 0)
		return rc;
	result_content_free(o->r);
	o->r->content_owner = obj;
	o->r->content.ptr = (char *)git_odb_object_data(obj);
	o->r->content.size = git_odb_object_size(obj);
	return 0;
}

int op_state_content(op *o, const git_oid *blob, const git_oid *commit, const char *what)
{
	git_oid plain_id;
	git_oid_tostr(o->r->version, sizeof(o->r->version), commit);
	/* decrypting makes a copy anyway; without encryption the state is not copied */
	int rc = crypt_enabled(&o->store->crypt) ? op_blob_bytes(&o->r->content, o, blob, o->store->max_blob, what)
						 : op_blob_view(o, blob, o->store->max_blob, what);
	if (rc == 0)
		rc = crypt_open(&o->r->content, &o->store->crypt, o->t, o->r);
	if (rc < 0)
		return rc;
	/* what Terraform gets is the clear text: its ETag is that text's blob id */
	if (rc == 0)
		git_oid_cpy(&plain_id, blob);
	else if (git_odb_hash(&plain_id, o->r->content.ptr, o->r->content.size, GIT_OBJECT_BLOB) < 0)
		return git_failure(o->r, -1, "hashing the state");
	git_oid_tostr(o->r->blob_id, sizeof(o->r->blob_id), &plain_id);
	return 0;
}

void lock_state_free(lock_state *ls)
{
	tfgit_buf_free(&ls->raw);
	memset(ls, 0, sizeof(*ls));
}

int op_lock_json(tfgit_buf *out, const char *info, int with_error)
{
	json_object *obj = json_object_new_object();
	const char *empty[] = {"ID", "Operation", "Who", "Version", "Path"};
	for (size_t i = 0; i < sizeof(empty) / sizeof(empty[0]); i++)
		json_object_object_add(obj, empty[i], json_object_new_string(""));
	json_object_object_add(obj, "Info", json_object_new_string(info));
	json_object_object_add(obj, "Created", json_object_new_string("0001-01-01T00:00:00Z"));
	if (with_error)
		json_object_object_add(obj, "error", json_object_new_string(info));
	size_t len = 0;
	const char *text = json_object_to_json_string_length(obj, JSON_C_TO_STRING_PLAIN, &len);
	tfgit_buf_free(out);
	out->ptr = text ? strdup(text) : NULL;
	out->size = out->ptr ? len : 0;
	json_object_put(obj);
	return out->ptr ? 0 : TFGIT_ERROR;
}

/* A lock whose file is missing or not lock JSON still holds the state; the client is shown
 * lock JSON that says so, since Terraform can only print lock JSON. */
static int unreadable_lock(lock_state *ls, op *o)
{
	char info[1400];
	snprintf(info, sizeof(info), "branch locks/%s holds no readable %s (missing, not lock JSON or "
		 "over 64 KiB)", o->t->state, o->lockpath);
	memset(&ls->info, 0, sizeof(ls->info));
	return op_lock_json(&ls->raw, info, 0);
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
	rc = op_blob_bytes(&ls->raw, o, git_tree_entry_id(e), LOCK_BODY_MAX, "the lock file");
	if (rc == TFGIT_ETOOLARGE || (rc == 0 && lockinfo_parse(&ls->info, ls->raw.ptr, ls->raw.size) < 0))
		rc = unreadable_lock(ls, o); /* still held: only its holder's JSON is unknown */
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

void (*op_window_hook)(void);

int op_push_under_lock(op *o, const git_oid *old, const git_oid *new, int force, const lock_state *ls)
{
	/* unlocked in the cache's view: a ref cannot be asserted absent, so only an advertisement
	 * may say it (TFGIT_REQUIRE_LOCK=0, -lock=false) */
	if (session_warm(o->sess) && !(ls && ls->held))
		return TFGIT_ECONFLICT;
	int rc = ls && ls->held ? session_assert(o->sess, o->lockref, &ls->commit) : 0;
	if (op_window_hook && !session_deferred(o->sess))
		op_window_hook();
	if (rc == 0)
		rc = session_push(o->sess, o->ref, old, new, force, o->r);
	o->two_step = ls && ls->held && !session_atomic(o->sess);
	if (rc == 0 && o->two_step && !session_deferred(o->sess))
		metrics_count(METRIC_TWO_STEP_WRITES); /* applied; a batch counts from its verdict */
	return rc;
}

int op_assert_lock_of(op *o, const char *state)
{
	char lockref[1100];
	git_oid lock;
	if (snprintf(lockref, sizeof(lockref), "refs/heads/locks/%s", state) >= (int)sizeof(lockref))
		return TFGIT_EINVALID;
	int rc = session_ref(&lock, o->sess, lockref);
	if (rc == GIT_ENOTFOUND)
		return 0; /* not locked: nothing to hold on to (a ref cannot be asserted absent) */
	if (rc < 0)
		return git_failure(o->r, rc, "reading a lock branch");
	rc = session_assert(o->sess, lockref, &lock);
	o->two_step |= rc == 0 && !session_atomic(o->sess);
	return rc;
}

/* The empty tree, written into repo; caller frees *out. */
static int empty_tree(git_tree **out, git_repository *repo)
{
	git_treebuilder *tb = NULL;
	git_oid id;
	int err;
	if ((err = git_treebuilder_new(&tb, repo, NULL)) == 0 && (err = git_treebuilder_write(&id, tb)) == 0)
		err = git_tree_lookup(out, repo, &id);
	git_treebuilder_free(tb);
	return err;
}

/* The trailers a state's own content gives (op_state_message): they change with every version
 * of the state, so amend does not compare them. */
static const char *const state_trailers[] = {"Serial: ", "Terraform-Version: "};

/* The next line of a message after *p that amend compares: the subject, then the trailers but
 * blank lines and the state's own; NULL at the end. *len: its length. */
static const char *compared_line(const char **p, size_t *len, int subject)
{
	while (**p) {
		const char *line = *p, *nl = strchr(line, '\n');
		size_t n = nl ? (size_t)(nl - line) : strlen(line);
		*p = nl ? nl + 1 : line + n;
		int skip = !subject && n == 0;
		for (size_t i = 0; !subject && !skip && i < sizeof(state_trailers) / sizeof(state_trailers[0]); i++)
			skip = !strncmp(line, state_trailers[i], strlen(state_trailers[i]));
		if (!skip) {
			*len = n;
			return line;
		}
		subject = 0;
	}
	return NULL;
}

/* 1 when messages a and b say the same but for the state's own trailers. */
static int same_message(const char *a, const char *b)
{
	const char *la, *lb;
	size_t na = 0, nb = 0;
	for (int first = 1;; first = 0) {
		la = compared_line(&a, &na, first);
		lb = compared_line(&b, &nb, first);
		if (!la || !lb)
			return !la && !lb;
		if (na != nb || memcmp(la, lb, na))
			return 0;
	}
}

int op_is_own_update(op *o, git_commit *tip, const char *message)
{
	const git_signature *who = git_commit_committer(tip);
	git_commit *parent = NULL;
	git_tree *tree = NULL, *base = NULL;
	git_tree_entry *e = NULL;
	git_oid rebuilt;
	int own = 0;
	/* the same message but for the state's own trailers: the same state, and the same lock's
	 * ID, Who and Operation */
	if (!who || strcmp(who->name, o->store->author_name) || strcmp(who->email, o->store->author_email) ||
	    !same_message(git_commit_message(tip), message) || git_commit_parentcount(tip) > 1)
		return 0;
	/* it changed nothing but the state: its parent's tree with the state set is its tree */
	if (git_commit_tree(&tree, tip) < 0 || git_tree_entry_bypath(&e, tree, o->t->state) < 0)
		goto done;
	if (git_commit_parentcount(tip) == 1 ? git_commit_parent(&parent, tip, 0) < 0 ||
						   git_commit_tree(&base, parent) < 0
					     : empty_tree(&base, o->cache->repo) < 0)
		goto done;
	git_tree_update upd = {.action = GIT_TREE_UPDATE_UPSERT, .filemode = git_tree_entry_filemode(e),
			       .path = o->t->state};
	git_oid_cpy(&upd.id, git_tree_entry_id(e));
	own = git_tree_create_updated(&rebuilt, o->cache->repo, base, 1, &upd) == 0 &&
	      git_oid_equal(&rebuilt, git_commit_tree_id(tip));
done:
	git_error_clear();
	git_tree_entry_free(e);
	git_tree_free(base);
	git_tree_free(tree);
	git_commit_free(parent);
	return own;
}

int op_commit(git_oid *out, op *o, git_commit *parent, int amend, git_tree *base,
	      const git_tree_update *updates, size_t n, const char *message)
{
	git_repository *repo = o->cache->repo;
	git_tree *empty = NULL, *tree = NULL;
	git_oid tree_id;
	int err;
	if (!base) {
		if ((err = empty_tree(&empty, repo)) < 0)
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
	return err < 0 ? git_failure(o->r, err, "building the commit") : 0;
}

void op_message(char *out, size_t outlen, const char *subject, const char *state,
		const lockinfo *info, const char *lock_id)
{
	const char *id = info && info->id[0] ? info->id : lock_id;
	const char *names[] = {"Lock-ID", "Who", "Operation"};
	const char *values[] = {id, info ? info->who : NULL, info ? info->operation : NULL};
	char value[4 * LOCKINFO_FIELD_MAX + 8];
	size_t n = (size_t)snprintf(out, outlen, "%s %s\n", subject, state);
	int first = 1;
	for (size_t i = 0; i < 3 && n < outlen; i++) {
		if (!values[i] || !*values[i])
			continue;
		/* escaped: a newline in a client's field cannot add a trailer of its own */
		tfgit_escape(value, sizeof(value), values[i], strlen(values[i]));
		n += (size_t)snprintf(out + n, outlen - n, "%s%s: %s\n", first ? "\n" : "", names[i], value);
		first = 0;
	}
}

int op_tree_collision(op *o, git_tree *tree)
{
	const char *state = o->t->state;
	git_tree_entry *e = NULL;
	char prefix[1100];
	int rc = 0;
	if (!tree)
		return 0;
	/* a file at any directory of the path: the state would lie inside it */
	for (const char *slash = strchr(state, '/'); slash && rc == 0; slash = strchr(slash + 1, '/')) {
		snprintf(prefix, sizeof(prefix), "%.*s", (int)(slash - state), state);
		if (git_tree_entry_bypath(&e, tree, prefix) == 0 && git_tree_entry_type(e) != GIT_OBJECT_TREE) {
			result_message(o->r, "state %s would lie inside %s, which is a file on branch %s: a "
				       "state cannot be inside another state's path", state, prefix, o->t->ref);
			rc = TFGIT_EEXISTS;
		}
		git_tree_entry_free(e);
		e = NULL;
		if (rc == 0 && git_error_last())
			git_error_clear();
	}
	if (rc == 0 && git_tree_entry_bypath(&e, tree, state) == 0 &&
	    git_tree_entry_type(e) == GIT_OBJECT_TREE) {
		git_tree *sub = NULL;
		const char *child = "";
		if (git_tree_lookup(&sub, o->cache->repo, git_tree_entry_id(e)) == 0 && git_tree_entrycount(sub))
			child = git_tree_entry_name(git_tree_entry_byindex(sub, 0));
		result_message(o->r, "state %s is a directory on branch %s holding other files (%s/%s): a "
			       "state cannot hold other states", state, o->t->ref, state, child);
		git_tree_free(sub);
		rc = TFGIT_EEXISTS;
	}
	git_tree_entry_free(e);
	git_error_clear();
	return rc;
}

int op_ref_collision(op *o, const char *refname, const char *what)
{
	char other[1100];
	int rc = session_ref_collision(o->sess, refname, other, sizeof(other));
	if (rc <= 0)
		return rc;
	result_message(o->r, "%s %s collides with branch %s on the remote (one would be a directory "
		       "of the other)", what, refname + strlen("refs/heads/"), other + strlen("refs/heads/"));
	return TFGIT_EEXISTS;
}

void op_state_message(char *out, size_t outlen, const char *subject, const char *state,
		      const lockinfo *info, const char *lock_id, const char *json, size_t len)
{
	state_top f;
	char value[4 * LOCKINFO_FIELD_MAX + 8], text[LOCKINFO_FIELD_MAX + 1];
	op_message(out, outlen, subject, state, info, lock_id);
	if (!json)
		return;
	state_top_scan(&f, json, len); /* what it found, even in a body that is not a state */
	const json_span spans[] = {f.serial, f.terraform_version};
	size_t n = strlen(out);
	int first = !strstr(out, "\n\n"); /* no trailer yet: a blank line before the first */
	for (size_t i = 0; i < 2 && n < outlen; i++) {
		if (json_span_text(text, sizeof(text), spans[i]) < 0 || !text[0])
			continue;
		tfgit_escape(value, sizeof(value), text, strlen(text));
		n += (size_t)snprintf(out + n, outlen - n, "%s%s%s\n", first ? "\n" : "", state_trailers[i], value);
		first = 0;
	}
}
