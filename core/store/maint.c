/* Cache maintenance: what an operation staged is packed, packs are merged and repacked from
 * the refs (what no ref reaches is dropped), a local remote's cache keeps no objects.
 *
 * At the end of every operation, under the repository's flock (op.c):
 *  1. the objects the operation staged (stage.c) go into one new pack, those larger than
 *     MAINT_BIG_OBJECT into loose objects of their own (compressed once: libgit2 1.5 cannot
 *     copy packed data, so a large state in a pack would be inflated and compressed again by
 *     every repack); then the stage is emptied;
 *  2. with more than MAINT_PACKS_MAX packs: when the packs besides the largest weigh at least
 *     half of it, the repository is repacked from its refs into one pack (what no ref reaches:
 *     old lock commits, versions replaced by amend, lost races, is dropped with the packs and
 *     loose objects it replaces); otherwise the packs besides the largest are merged into one.
 *     Repacking costs what the repository weighs, and it happens once the rest has grown to half
 *     of it: its cost per byte written stays bounded, as with git's geometric repacking;
 *  3. a local remote's cache (read through an in-memory alternate of the remote, never written
 *     into it here) keeps none of its own objects: the remote holds all it needs.
 * Nothing is removed before the pack that replaces it is fully written and indexed (libgit2's
 * indexer names the files only once they are whole, and removes its temporary file when it
 * fails); a failure (a full filesystem) stops the maintenance and leaves the cache as it was. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>

#include <git2.h>
#include <git2/sys/odb_backend.h>

#include "../internal.h"
#include "maint.h"
#include "packwrite.h"
#include "stage.h"

typedef struct {
	git_repository *repo;
	git_odb *odb;
	stage *st;
	git_odb_backend *loose; /* writes the big blobs kept loose */
	char path[4096];
	char objects[4200];
	char packdir[4300];
} maint;

struct pack {
	char name[128]; /* pack-<hex> */
	long long size; /* of the .pack */
};

/* A set of object ids (open addressing). */
typedef struct {
	git_oid *slots;
	unsigned char *used;
	size_t cap, n;
} oidset;

static size_t oid_hash(const git_oid *id)
{
	size_t h;
	memcpy(&h, id->id, sizeof(h));
	return h;
}

static int oidset_grow(oidset *s)
{
	oidset g = {0};
	g.cap = s->cap ? s->cap * 2 : 1024;
	g.slots = malloc(g.cap * sizeof(*g.slots));
	g.used = calloc(g.cap, 1);
	if (!g.slots || !g.used) {
		free(g.slots);
		free(g.used);
		git_error_set_oom();
		return -1;
	}
	for (size_t i = 0; i < s->cap; i++) {
		if (!s->used[i])
			continue;
		size_t j = oid_hash(&s->slots[i]) & (g.cap - 1);
		while (g.used[j])
			j = (j + 1) & (g.cap - 1);
		g.used[j] = 1;
		git_oid_cpy(&g.slots[j], &s->slots[i]);
	}
	g.n = s->n;
	free(s->slots);
	free(s->used);
	*s = g;
	return 0;
}

static int oidset_has(const oidset *s, const git_oid *id)
{
	if (!s->cap)
		return 0;
	for (size_t j = oid_hash(id) & (s->cap - 1); s->used[j]; j = (j + 1) & (s->cap - 1))
		if (git_oid_equal(&s->slots[j], id))
			return 1;
	return 0;
}

/* 1 added, 0 already there, -1 out of memory. */
static int oidset_add(oidset *s, const git_oid *id)
{
	if (oidset_has(s, id))
		return 0;
	if ((s->n + 1) * 2 > s->cap && oidset_grow(s) < 0)
		return -1;
	size_t j = oid_hash(id) & (s->cap - 1);
	while (s->used[j])
		j = (j + 1) & (s->cap - 1);
	s->used[j] = 1;
	git_oid_cpy(&s->slots[j], id);
	s->n++;
	return 1;
}

static void oidset_free(oidset *s)
{
	free(s->slots);
	free(s->used);
	memset(s, 0, sizeof(*s));
}

static int fail(const char *what)
{
	const git_error *e = git_error_last();
	core_log("cache maintenance: %s failed: %s", what, e && e->message ? e->message : "unknown error");
	git_error_clear();
	return -1;
}

/* The pack settings of libgit2 1.5's pack builder: a blob over MAINT_BIG_OBJECT is never a
 * delta candidate (1.5 reads that threshold from pack.deltaCacheSize, a typo for
 * core.bigFileThreshold), and the delta window holds at most 64 MiB. Written once. */
static void pack_settings(maint *m)
{
	static const struct {
		const char *name;
		int64_t value;
	} want[] = {{"pack.deltaCacheSize", MAINT_BIG_OBJECT}, {"pack.windowMemory", 64 << 20}};
	git_config *cfg = NULL;
	int64_t v;
	if (git_repository_config(&cfg, m->repo) < 0) {
		git_error_clear();
		return;
	}
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		if (git_config_get_int64(&v, cfg, want[i].name) < 0 || v != want[i].value)
			git_config_set_int64(cfg, want[i].name, want[i].value);
	git_config_free(cfg);
	git_error_clear();
}

static int maint_open(maint *m, git_repository *repo, stage *st, const char *path)
{
	memset(m, 0, sizeof(*m));
	m->repo = repo;
	m->st = st;
	snprintf(m->path, sizeof(m->path), "%s", path);
	snprintf(m->objects, sizeof(m->objects), "%s/objects", path);
	snprintf(m->packdir, sizeof(m->packdir), "%s/pack", m->objects);
	if (git_repository_odb(&m->odb, repo) < 0)
		return fail("opening the cache");
	return 0;
}

static void maint_close(maint *m)
{
	if (m->loose)
		m->loose->free(m->loose);
	git_odb_free(m->odb);
	memset(m, 0, sizeof(*m));
}

/* The blob id as a loose object of its own, read from wherever it is now (the stage, a pack
 * that is about to go). Its id is known: not hashed again. */
static int keep_loose(maint *m, const git_oid *id)
{
	git_odb_object *obj = NULL;
	if (!m->loose && git_odb_backend_loose(&m->loose, m->objects, -1, 0, 0, 0) < 0)
		return -1;
	if (m->loose->exists(m->loose, id))
		return 0;
	int err = git_odb_read(&obj, m->odb, id);
	if (err == 0)
		err = m->loose->write(m->loose, id, git_odb_object_data(obj), git_odb_object_size(obj),
				      git_odb_object_type(obj));
	git_odb_object_free(obj);
	return err;
}

/* Writes pb's objects as a new pack (none when pb is empty): its name in name ("" if none). */
static int write_pack(maint *m, git_packbuilder *pb, char *name, size_t namelen)
{
	name[0] = '\0';
	if (!git_packbuilder_object_count(pb))
		return 0;
	if (git_packbuilder_write(pb, m->packdir, 0, NULL, NULL) < 0)
		return -1;
	snprintf(name, namelen, "pack-%s", git_packbuilder_name(pb));
	return 0;
}

/* Adds id (a blob or a tree's object) to pb, or, a blob over MAINT_BIG_OBJECT, to bigs. */
static int add_object(maint *m, git_packbuilder *pb, oidset *bigs, const git_oid *id, const char *name)
{
	size_t size;
	git_object_t type;
	int err = git_odb_read_header(&size, &type, m->odb, id);
	if (err < 0)
		return err;
	if (type == GIT_OBJECT_BLOB && size > MAINT_BIG_OBJECT)
		return oidset_add(bigs, id) < 0 ? -1 : 0;
	return git_packbuilder_insert(pb, id, name);
}

/* Step 1: the staged objects into a new pack (the big blobs loose), then the stage emptied.
 * The pack is written by packwrite.c: each object compressed once, fast (merges compress
 * again, with deltas), and not hashed again. */
static int pack_stage(maint *m)
{
	size_t n = stage_count(m->st), small = 0;
	git_oid *ids = calloc(n, sizeof(*ids));
	char name[128];
	int rc = -1;
	if (!ids) {
		git_error_set_oom();
		goto done;
	}
	for (size_t i = 0; i < n; i++) {
		const git_oid *id = stage_id(m->st, i);
		size_t size;
		git_object_t type;
		if (git_odb_read_header(&size, &type, m->odb, id) < 0)
			goto done;
		if (type == GIT_OBJECT_BLOB && size > MAINT_BIG_OBJECT) {
			if (keep_loose(m, id) < 0)
				goto done;
		} else {
			git_oid_cpy(&ids[small++], id);
		}
	}
	if ((small && pack_write(name, sizeof(name), m->odb, m->packdir, ids, small, Z_BEST_SPEED) < 0) ||
	    stage_clear(m->st) < 0 || git_odb_refresh(m->odb) < 0)
		goto done;
	rc = 0;
done:
	free(ids);
	return rc < 0 ? fail("packing the new objects") : 0;
}

/* Whether the pack directory holds name with its extension replaced by ext. */
static int sibling(maint *m, const char *name, size_t stem, const char *ext)
{
	char path[4500];
	struct stat sb;
	snprintf(path, sizeof(path), "%s/%.*s%s", m->packdir, (int)stem, name, ext);
	return stat(path, &sb) == 0;
}

/* The packs (with an index) of the repository, the largest first; what a killed process left
 * there is removed: temporary files, a pack without its index (killed between the renames of
 * packwrite.c, or in remove_pack), an index without its pack (libgit2's indexer names the
 * index first). */
static int list_packs(maint *m, struct pack **out, size_t *n)
{
	DIR *d = opendir(m->packdir);
	struct dirent *e;
	struct stat sb;
	char path[4500];
	size_t cap = 0;
	*out = NULL;
	*n = 0;
	if (!d)
		return errno == ENOENT ? 0 : -1;
	while ((e = readdir(d)) != NULL) {
		size_t len = strlen(e->d_name);
		if (snprintf(path, sizeof(path), "%s/%s", m->packdir, e->d_name) >= (int)sizeof(path))
			continue;
		if (!strncmp(e->d_name, "pack_git2_", 10) || !strncmp(e->d_name, "tmp-tfgit-", 10) || (len > 5 && !strcmp(e->d_name + len - 5, ".lock"))) {
			unlink(path);
			continue;
		}
		if (len > 10 && len <= 100 && !strncmp(e->d_name, "pack-", 5) && !strcmp(e->d_name + len - 5, ".pack") &&
		    !sibling(m, e->d_name, len - 5, ".idx")) {
			unlink(path);
			continue;
		}
		if (len < 10 || len > 100 || strncmp(e->d_name, "pack-", 5) || strcmp(e->d_name + len - 4, ".idx"))
			continue;
		char pack[4500];
		snprintf(pack, sizeof(pack), "%s/%.*s.pack", m->packdir, (int)(len - 4), e->d_name);
		if (stat(pack, &sb) < 0) {
			if (errno == ENOENT)
				unlink(path); /* an index without its pack */
			continue;
		}
		if (*n == cap) {
			cap = cap ? cap * 2 : 16;
			struct pack *p = realloc(*out, cap * sizeof(*p));
			if (!p) {
				closedir(d);
				return -1;
			}
			*out = p;
		}
		snprintf((*out)[*n].name, sizeof((*out)[*n].name), "%.*s", (int)(len - 4), e->d_name);
		(*out)[*n].size = (long long)sb.st_size;
		(*n)++;
	}
	closedir(d);
	for (size_t i = 1; i < *n; i++) /* the largest first */
		for (size_t j = i; j > 0 && (*out)[j].size > (*out)[j - 1].size; j--) {
			struct pack t = (*out)[j];
			(*out)[j] = (*out)[j - 1];
			(*out)[j - 1] = t;
		}
	return 0;
}

/* Removes a pack: its index first, so that no index ever names a missing pack. */
static void remove_pack(maint *m, const char *name)
{
	char path[4500];
	static const char *const ext[] = {".idx", ".pack", ".rev", ".keep"};
	for (size_t i = 0; i < sizeof(ext) / sizeof(ext[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s%s", m->packdir, name, ext[i]);
		if (unlink(path) < 0 && errno != ENOENT)
			core_log("cache maintenance: %s cannot be removed: %s", path, strerror(errno));
	}
}

/* Removes every loose object but those in keep (NULL: none kept), and libgit2's temporary
 * object files. */
static void remove_loose(maint *m, const oidset *keep)
{
	DIR *d = opendir(m->objects), *sub;
	struct dirent *e, *f;
	char dir[4500], path[4600], hex[GIT_OID_HEXSZ + 1];
	git_oid id;
	if (!d)
		return;
	while ((e = readdir(d)) != NULL) {
		int fan = strlen(e->d_name) == 2 && strspn(e->d_name, "0123456789abcdef") == 2;
		snprintf(dir, sizeof(dir), "%s/%s", m->objects, e->d_name);
		if (!strncmp(e->d_name, "tmp_object", 10)) {
			unlink(dir);
			continue;
		}
		if (!fan || !(sub = opendir(dir)))
			continue;
		int left = 0;
		while ((f = readdir(sub)) != NULL) {
			if (f->d_name[0] == '.')
				continue;
			if (snprintf(path, sizeof(path), "%s/%s", dir, f->d_name) >= (int)sizeof(path))
				continue;
			if (snprintf(hex, sizeof(hex), "%s%s", e->d_name, f->d_name) == GIT_OID_HEXSZ &&
			    git_oid_fromstr(&id, hex) == 0 && keep && oidset_has(keep, &id)) {
				left = 1;
				continue;
			}
			if (unlink(path) < 0)
				left = 1;
		}
		closedir(sub);
		if (!left)
			rmdir(dir);
	}
	closedir(d);
	git_error_clear();
}

struct walk {
	maint *m;
	git_packbuilder *pb;
	oidset seen, bigs;
};

/* A tree and what it holds, each object once; big blobs are noted, not packed. */
static int add_tree(struct walk *w, const git_oid *id, const char *name)
{
	git_tree *tree = NULL;
	int rc = oidset_add(&w->seen, id);
	if (rc <= 0)
		return rc;
	if ((rc = git_packbuilder_insert(w->pb, id, name)) < 0 || (rc = git_tree_lookup(&tree, w->m->repo, id)) < 0)
		return rc;
	for (size_t i = 0, n = git_tree_entrycount(tree); rc == 0 && i < n; i++) {
		const git_tree_entry *e = git_tree_entry_byindex(tree, i);
		const git_oid *eid = git_tree_entry_id(e);
		if (git_tree_entry_type(e) == GIT_OBJECT_TREE)
			rc = add_tree(w, eid, git_tree_entry_name(e));
		else if (git_tree_entry_type(e) == GIT_OBJECT_BLOB && (rc = oidset_add(&w->seen, eid)) > 0)
			rc = add_object(w->m, w->pb, &w->bigs, eid, git_tree_entry_name(e));
		if (rc > 0)
			rc = 0;
	}
	git_tree_free(tree);
	return rc;
}

/* Step 2, repack: everything the refs reach into one pack (big blobs loose), then every other
 * pack and loose object removed. */
static int repack(maint *m, const struct pack *packs, size_t npacks)
{
	struct walk w = {m, NULL, {0}, {0}};
	git_revwalk *walk = NULL;
	git_commit *c = NULL;
	git_oid id;
	char name[128];
	int rc = -1;
	if (git_packbuilder_new(&w.pb, m->repo) < 0 || git_revwalk_new(&walk, m->repo) < 0)
		goto done;
	git_revwalk_sorting(walk, GIT_SORT_TIME);
	if (git_revwalk_push_glob(walk, "refs/*") < 0)
		goto done;
	while ((rc = git_revwalk_next(&id, walk)) == 0) {
		if ((rc = git_packbuilder_insert(w.pb, &id, NULL)) < 0 || (rc = git_commit_lookup(&c, m->repo, &id)) < 0 ||
		    (rc = add_tree(&w, git_commit_tree_id(c), NULL)) < 0)
			goto done;
		git_commit_free(c);
		c = NULL;
	}
	if (rc != GIT_ITEROVER)
		goto done;
	rc = -1;
	for (size_t i = 0; i < w.bigs.cap; i++)
		if (w.bigs.used[i] && keep_loose(m, &w.bigs.slots[i]) < 0)
			goto done;
	if (write_pack(m, w.pb, name, sizeof(name)) < 0)
		goto done;
	/* the new pack is whole and indexed: what it replaces can go */
	for (size_t i = 0; i < npacks; i++)
		if (strcmp(packs[i].name, name))
			remove_pack(m, packs[i].name);
	remove_loose(m, &w.bigs);
	core_log("cache %s repacked from its refs: %zu objects in one pack, %zu large blobs loose, "
		 "%zu packs replaced", m->path, git_packbuilder_object_count(w.pb), w.bigs.n, npacks);
	rc = 0;
done:
	git_commit_free(c);
	git_revwalk_free(walk);
	git_packbuilder_free(w.pb);
	oidset_free(&w.seen);
	oidset_free(&w.bigs);
	return rc < 0 ? fail("repacking") : 0;
}

static int collect(const git_oid *id, void *payload)
{
	return oidset_add(payload, id) < 0 ? -1 : 0;
}

/* Step 2, merge: every object of the packs [from, npacks) into one pack (big blobs loose),
 * written by packwrite.c (fast, no deltas: deltas are found when the repository is repacked). */
static int merge(maint *m, const struct pack *packs, size_t from, size_t npacks)
{
	git_odb_backend *one = NULL;
	oidset ids = {0};
	git_oid *list = NULL;
	size_t n = 0;
	char path[4500], name[128];
	int rc = -1;
	for (size_t i = from; i < npacks; i++) {
		snprintf(path, sizeof(path), "%s/%s.idx", m->packdir, packs[i].name);
		if (git_odb_backend_one_pack(&one, path) < 0 || one->foreach(one, collect, &ids) < 0)
			goto done;
		one->free(one);
		one = NULL;
	}
	if (!(list = calloc(ids.n ? ids.n : 1, sizeof(*list)))) {
		git_error_set_oom();
		goto done;
	}
	for (size_t i = 0; i < ids.cap; i++) {
		size_t size;
		git_object_t type;
		if (!ids.used[i])
			continue;
		if (git_odb_read_header(&size, &type, m->odb, &ids.slots[i]) < 0)
			goto done;
		if (type == GIT_OBJECT_BLOB && size > MAINT_BIG_OBJECT) {
			if (keep_loose(m, &ids.slots[i]) < 0)
				goto done;
		} else {
			git_oid_cpy(&list[n++], &ids.slots[i]);
		}
	}
	if (n && pack_write(name, sizeof(name), m->odb, m->packdir, list, n, Z_BEST_SPEED) < 0)
		goto done;
	if (!n)
		name[0] = '\0';
	for (size_t i = from; i < npacks; i++)
		if (strcmp(packs[i].name, name))
			remove_pack(m, packs[i].name);
	rc = 0;
done:
	if (one)
		one->free(one);
	free(list);
	oidset_free(&ids);
	return rc < 0 ? fail("merging packs") : 0;
}

/* A local remote's cache: nothing of its own is needed once the operation is over. */
static int drop_all(maint *m)
{
	struct pack *packs = NULL;
	size_t n = 0;
	if (stage_clear(m->st) < 0)
		return fail("emptying the stage");
	if (list_packs(m, &packs, &n) == 0)
		for (size_t i = 0; i < n; i++)
			remove_pack(m, packs[i].name);
	free(packs);
	remove_loose(m, NULL);
	return 0;
}

static int marked(maint *m, int make)
{
	char path[4200];
	snprintf(path, sizeof(path), "%s/%s", m->path, MAINT_MARKER);
	if (!make)
		return access(path, F_OK) == 0;
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd >= 0)
		close(fd);
	return fd >= 0;
}

int maint_run(git_repository *repo, stage *st, const char *path, int local)
{
	maint m;
	struct pack *packs = NULL;
	size_t n = 0;
	int rc = maint_open(&m, repo, st, path), first = !marked(&m, 0);
	if (rc < 0)
		goto done;
	if (local) {
		/* only an earlier version's cache holds objects of its own */
		rc = first ? drop_all(&m) : stage_clear(m.st) < 0 ? fail("emptying the stage") : 0;
		if (rc == 0 && first)
			marked(&m, 1);
		goto done;
	}
	/* the stage is packed once it holds enough to be worth a pack (or a large object) */
	if (stage_count(m.st) >= MAINT_STAGE_OBJECTS || stage_bytes(m.st) >= MAINT_STAGE_BYTES) {
		/* on a disk, reading a staged object checks it against its id (stage.c): one that
		 * does not match is not packed, and the cache is thrown away */
		if ((rc = pack_stage(&m)) < 0) {
			if (stage_damaged(m.st))
				rc = MAINT_DAMAGED;
			goto done;
		}
	}
	if (list_packs(&m, &packs, &n) < 0) {
		rc = -1;
		goto done;
	}
	/* the smallest packs that weigh at least half as much as the next larger one are merged,
	 * so that sizes at least double from one pack to the next larger (a binary counter: an
	 * object is merged again each time what is newer than it has grown to its size, log2 of
	 * the history's growth in all); when that takes every pack, the repository is repacked
	 * from its refs instead, which also drops what no ref reaches */
	size_t from = n;
	long long sum = 0;
	while (from > 0 && (from == n || packs[from - 1].size < 2 * sum))
		sum += packs[--from].size;
	if (n - from < 2)
		from = n; /* one pack alone: nothing to merge */
	if (first || n > MAINT_PACKS_MAX || (from < n && from == 0)) {
		pack_settings(&m);
		/* what the refs reach of the stage goes into the new pack: the rest is garbage */
		if ((rc = repack(&m, packs, n)) == 0 && stage_clear(m.st) < 0)
			rc = fail("emptying the stage");
		if (rc == 0 && first)
			marked(&m, 1);
	} else if (from + 1 < n) {
		pack_settings(&m);
		rc = merge(&m, packs, from, n);
	}
done:
	free(packs);
	maint_close(&m);
	return rc;
}
