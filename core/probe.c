/* tfgit doctor's proofs: a write that leaves no trace, and every state of a branch opened. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypt/crypt.h"
#include "format/lockinfo.h"
#include "internal.h"
#include "op.h"
#include "probe.h"

#define DIRS_MAX 20000 /* directories a local repository's probe visits, at most */
#define DEPTH_MAX 64

/* 16 hex digits of the kernel's randomness into out (17 bytes). */
static int random_hex(char *out)
{
	unsigned char b[8];
	if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b))
		return -1;
	for (size_t i = 0; i < sizeof(b); i++)
		snprintf(out + 2 * i, 3, "%02x", b[i]);
	return 0;
}

/* A new file in dir, removed at once: what a ref's lock file or a new object needs. */
static int dir_takes_file(const char *dir, tfgit_result *r)
{
	char hex[17], path[4400];
	struct stat st;
	if (random_hex(hex) < 0 || snprintf(path, sizeof(path), "%s/.tfgit-doctor-%s.lock", dir, hex) >= (int)sizeof(path)) {
		result_message(r, "cannot name a probe file in %s", dir);
		return TFGIT_ERROR;
	}
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		int e = errno;
		if (stat(dir, &st) == 0)
			result_message(r, "no file can be created in %s: %s (the directory belongs to uid %ld, mode "
				       "0%o; this process is uid %ld)", dir, strerror(e), (long)st.st_uid,
				       (unsigned)st.st_mode & 07777, (long)geteuid());
		else
			result_message(r, "no file can be created in %s: %s", dir, strerror(e));
		return e == ENOSPC || e == EDQUOT ? TFGIT_ENOSPACE : TFGIT_EDENIED;
	}
	close(fd);
	if (unlink(path) < 0) {
		result_message(r, "the probe file %s could not be removed: %s", path, strerror(errno));
		return TFGIT_ERROR;
	}
	return 0;
}

/* dir and every directory below it (not through symlinks), each taking a file. */
static int tree_takes_files(const char *dir, int depth, size_t *visited, tfgit_result *r)
{
	int rc = dir_takes_file(dir, r);
	DIR *d = rc == 0 && depth < DEPTH_MAX ? opendir(dir) : NULL;
	struct dirent *e;
	struct stat st;
	char sub[4400];
	while (rc == 0 && d && (e = readdir(d)) && ++*visited < DIRS_MAX) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") ||
		    snprintf(sub, sizeof(sub), "%s/%s", dir, e->d_name) >= (int)sizeof(sub))
			continue;
		if (lstat(sub, &st) == 0 && S_ISDIR(st.st_mode))
			rc = tree_takes_files(sub, depth + 1, visited, r);
	}
	if (d)
		closedir(d);
	return rc;
}

/* The directories of a local repository a write creates files in. */
static int local_writable(const char *path, tfgit_result *r)
{
	char dir[4200];
	size_t visited = 0;
	int rc = dir_takes_file(path, r); /* packed-refs.lock, when an UNLOCK removes a packed ref */
	snprintf(dir, sizeof(dir), "%s/objects", path);
	if (rc == 0)
		rc = dir_takes_file(dir, r); /* a new object's temporary file */
	DIR *d = rc == 0 ? opendir(dir) : NULL;
	struct dirent *e;
	while (rc == 0 && d && (e = readdir(d))) {
		char fan[4400];
		/* objects/xx, where new loose objects are renamed to */
		if (strlen(e->d_name) == 2 && strspn(e->d_name, "0123456789abcdef") == 2 &&
		    snprintf(fan, sizeof(fan), "%s/%s", dir, e->d_name) < (int)sizeof(fan))
			rc = dir_takes_file(fan, r);
	}
	if (d)
		closedir(d);
	snprintf(dir, sizeof(dir), "%s/refs", path);
	if (rc == 0)
		rc = dir_takes_file(dir, r);
	snprintf(dir, sizeof(dir), "%s/refs/heads", path);
	if (rc == 0)
		rc = tree_takes_files(dir, 0, &visited, r); /* branches, lock branches and their directories */
	return rc;
}

struct write_probe {
	char *name;
	size_t namelen;
	int *left;
	int *atomic;
	git_oid at;
	char branch[1100];
};

static int first_branch(const char *name, const git_oid *oid, void *ctx)
{
	struct write_probe *p = ctx;
	git_oid_cpy(&p->at, oid);
	snprintf(p->branch, sizeof(p->branch), "%s", name);
	return 1;
}

static int write_attempt(op *o, void *ctx)
{
	struct write_probe *p = ctx;
	char hex[17];
	int rc;
	*p->atomic = session_atomic(o->sess);
	if (session_ref(&p->at, o->sess, o->ref) == 0)
		snprintf(p->branch, sizeof(p->branch), "%s", o->ref);
	else if ((rc = session_each_ref(o->sess, "refs/heads/", first_branch, p)) <= 0)
		return rc; /* 0: no branch, the push connection was all */
	git_error_clear();
	/* a smart remote's push sends what the cache holds: the tip, fetched as a GET would */
	if ((rc = session_fetch(o->sess, p->branch, o->r)) < 0)
		return rc;
	if (random_hex(hex) < 0) {
		result_message(o->r, "no randomness for the probe ref's name");
		return TFGIT_ERROR;
	}
	snprintf(p->name, p->namelen, "%s%s", PROBE_REF_PREFIX, hex);
	/* with the branch asserted, as a write asserts its lock. TFGIT_ECONFLICT (the name is
	 * taken, the branch moved): op_run tries again, under a new name */
	if ((rc = session_assert(o->sess, p->branch, &p->at)) < 0 ||
	    (rc = session_push(o->sess, p->name, NULL, &p->at, 0, o->r)) < 0)
		return rc;
	/* deleted on a new session, which has seen it made: its value is checked on deletion */
	*p->left = 1;
	if ((rc = op_connect(o)) == 0 && (rc = session_push(o->sess, p->name, &p->at, NULL, 0, o->r)) == 0)
		*p->left = 0;
	else if (rc == TFGIT_ECONFLICT) { /* never made again under another name */
		result_message(o->r, "%s no longer holds the value it was made with", p->name);
		rc = TFGIT_ERROR;
	}
	return rc;
}

int tfgit_probe_write(tfgit_result *r, const tfgit_store *store, const tfgit_target *t, char *probe,
		      size_t probelen, int *left, int *atomic)
{
	const char *path = t->url[0] == '/' ? t->url : !strncmp(t->url, "file://", 7) ? t->url + 7 : NULL;
	tfgit_target at = {t->url, t->ref, "tfgit-doctor"}; /* op_run names a lock branch after it */
	struct write_probe p = {.name = probe, .namelen = probelen, .left = left, .atomic = atomic};
	*left = 0;
	*atomic = 0;
	if (probelen)
		*probe = '\0';
	int rc = path ? local_writable(path, r) : 0;
	if (rc == 0)
		rc = op_run(r, store, &at, 1, write_attempt, &p);
	char dir[4200];
	/* libgit2 leaves the directory the ref was made in (so does git's receive-pack) */
	if (path && probelen && *probe && !*left &&
	    snprintf(dir, sizeof(dir), "%s/%.*s", path, (int)strlen(PROBE_REF_PREFIX) - 1, PROBE_REF_PREFIX) < (int)sizeof(dir))
		rmdir(dir); /* not when another probe's ref is there (not empty) */
	return rc;
}

struct states_probe {
	op *o;
	size_t max, opened, unchecked, n, cap;
	tfgit_probe_failure *fails;
	int found, rc;
};

/* 1 when a blob that does not open is a state's: tfgit's sealed format, binary bytes (another
 * way's ciphertext) or a clear-text state; 0 for other files (text, JSON that is no state). */
static int holds_state(const tfgit_buf *b)
{
	if (b->size >= 8 && !memcmp(b->ptr, "TFGITENC", 8))
		return 1;
	for (size_t i = 0; i < b->size && i < 8000; i++) {
		unsigned char c = (unsigned char)b->ptr[i];
		if (c == 0x7f || (c < 0x20 && c != '\t' && c != '\n' && c != '\r' && c != '\f'))
			return 1;
	}
	return json_is_state(b->ptr, b->size);
}

static int failed(struct states_probe *sp, const char *path, const char *message)
{
	if (sp->n == sp->cap) {
		size_t cap = sp->cap ? 2 * sp->cap : 8;
		tfgit_probe_failure *grown = realloc(sp->fails, cap * sizeof(*grown));
		if (!grown) {
			sp->rc = TFGIT_ERROR;
			return -1;
		}
		sp->fails = grown;
		sp->cap = cap;
	}
	tfgit_probe_failure *f = &sp->fails[sp->n++];
	snprintf(f->state, sizeof(f->state), "%.1099s", path);
	snprintf(f->message, sizeof(f->message), "%s", message);
	return 0;
}

static int state_file(const char *root, const git_tree_entry *e, void *payload)
{
	struct states_probe *sp = payload;
	op *o = sp->o;
	git_filemode_t mode = git_tree_entry_filemode(e);
	tfgit_buf b = {0};
	tfgit_result scratch = {0};
	char path[1200];
	if (mode != GIT_FILEMODE_BLOB && mode != GIT_FILEMODE_BLOB_EXECUTABLE)
		return 0;
	if (sp->opened + sp->n >= sp->max) {
		sp->unchecked++;
		return 0;
	}
	snprintf(path, sizeof(path), "%s%s", root, git_tree_entry_name(e));
	tfgit_target at = {o->t->url, o->t->ref, path}; /* bound to the branch read, as a GET's */
	int rc = op_blob_bytes(&b, o, git_tree_entry_id(e), o->store->max_blob, path);
	if (rc == 0) {
		int state = holds_state(&b);
		rc = crypt_open(&b, &o->store->crypt, &at, &scratch);
		if (rc >= 0 && json_is_state(b.ptr, b.size))
			sp->opened++;
		else if (rc < 0 && state)
			rc = failed(sp, path, scratch.message);
		else
			rc = 0;
	} else if (rc == TFGIT_ETOOLARGE) { /* a GET of it is refused too */
		rc = failed(sp, path, o->r->message);
		o->r->message[0] = '\0';
	}
	tfgit_buf_free(&b);
	tfgit_result_free(&scratch);
	if (rc < 0 && !sp->rc)
		sp->rc = rc;
	return rc < 0 ? -1 : 0;
}

static int states_attempt(op *o, void *ctx)
{
	struct states_probe *sp = ctx;
	git_commit *tip = NULL;
	git_tree *tree = NULL;
	git_oid tip_id;
	sp->o = o;
	sp->opened = sp->unchecked = sp->n = 0;
	sp->rc = 0;
	int rc = op_read_tip(&tip, &tip_id, o);
	sp->found = tip != NULL;
	if (rc < 0 || !tip)
		goto done;
	if ((rc = git_commit_tree(&tree, tip)) < 0 || git_tree_walk(tree, GIT_TREEWALK_PRE, state_file, sp) < 0)
		rc = sp->rc < 0 ? sp->rc : git_failure(o->r, rc, "reading the branch");
done:
	git_tree_free(tree);
	git_commit_free(tip);
	return rc;
}

int tfgit_probe_states(tfgit_result *r, const tfgit_store *store, const tfgit_target *t, size_t max,
		       int *found, size_t *opened, size_t *unchecked, tfgit_probe_failure **fails,
		       size_t *nfails)
{
	tfgit_target at = {t->url, t->ref, "tfgit-doctor"};
	struct states_probe sp = {.max = max};
	int rc = op_run(r, store, &at, 0, states_attempt, &sp);
	*found = sp.found;
	*opened = sp.opened;
	*unchecked = sp.unchecked;
	*fails = sp.fails;
	*nfails = rc < 0 ? 0 : sp.n;
	return rc;
}
