/* The stage: where the objects tfgit creates (blobs, trees, commits) are written, hashed once
 * and not compressed, until cache maintenance (maint.c) packs them; and the object database a
 * cache repository uses, which writes only there.
 *
 * libgit2 writes a loose object compressed (zlib), reads it back whole and inflates it for the
 * push, which compresses it again, and verifies its hash on every read. A state on its way to
 * the push is instead written here as it is: <repo>/tfgit-stage/<40 hex>, git's loose header
 * ("blob 123" and a NUL) then the object's bytes, written under a temporary name and renamed
 * (a file there is always whole; a full filesystem leaves nothing behind), and read with one
 * read() into the buffer libgit2 then owns: a large state is held once, and compressed once,
 * by the push. The stage's file list is kept in memory, sorted: a lookup of any other object
 * costs a binary search, not a system call. All of it runs under the repository's flock. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <git2/sys/odb_backend.h>

#include "stage.h"

/* above the packs' (2) and loose objects' (1): the first backend that can write gets writes */
#define STAGE_PRIORITY 10
#define PACK_PRIORITY 2
#define LOOSE_PRIORITY 1
#define HEADER_MAX 64

struct stage {
	git_odb_backend parent;
	char dir[4096];
	git_oid *ids; /* sorted */
	size_t n, cap;
	unsigned long long bytes;
	int verify; /* on a disk: each read is checked against its id (a staged file has no checksum) */
	int damaged; /* a staged file was found damaged (and removed) */
};

static int full; /* stage_was_full */

static int cmp_oid(const void *a, const void *b)
{
	return git_oid_cmp(a, b);
}

static long find(const stage *st, const git_oid *id)
{
	const git_oid *hit = st->n ? bsearch(id, st->ids, st->n, sizeof(*id), cmp_oid) : NULL;
	return hit ? (long)(hit - st->ids) : -1;
}

static int remember(stage *st, const git_oid *id)
{
	if (st->n == st->cap) {
		size_t ncap = st->cap ? st->cap * 2 : 32;
		git_oid *n = realloc(st->ids, ncap * sizeof(*n));
		if (!n) {
			git_error_set_oom();
			return -1;
		}
		st->ids = n;
		st->cap = ncap;
	}
	size_t i = 0;
	while (i < st->n && git_oid_cmp(&st->ids[i], id) < 0)
		i++;
	memmove(&st->ids[i + 1], &st->ids[i], (st->n - i) * sizeof(*id));
	git_oid_cpy(&st->ids[i], id);
	st->n++;
	return 0;
}

static void forget(stage *st, long i)
{
	memmove(&st->ids[i], &st->ids[i + 1], (st->n - (size_t)i - 1) * sizeof(*st->ids));
	st->n--;
}

static void path_of(char *out, size_t outlen, const stage *st, const git_oid *id)
{
	char hex[GIT_OID_HEXSZ + 1];
	snprintf(out, outlen, "%s/%s", st->dir, git_oid_tostr(hex, sizeof(hex), id));
}

/* Opens a staged object: its fd, size, type and where its bytes begin. GIT_ENOTFOUND when it
 * is not staged; -1 (error set) when it cannot be read or is damaged (then it is removed: the
 * object is missing, which the operation treats as a damaged cache). */
static int open_object(stage *st, const git_oid *id, int *fd, size_t *size, git_object_t *type,
		       size_t *offset)
{
	char path[4200], hdr[HEADER_MAX + 1];
	struct stat sb;
	long i = find(st, id);
	if (i < 0)
		return GIT_ENOTFOUND;
	path_of(path, sizeof(path), st, id);
	*fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (*fd < 0) {
		if (errno == ENOENT) {
			forget(st, i);
			return GIT_ENOTFOUND;
		}
		git_error_set(GIT_ERROR_OS, "reading staged object %s", path);
		return -1;
	}
	ssize_t got = pread(*fd, hdr, HEADER_MAX, 0);
	char *nul = got > 0 ? memchr(hdr, '\0', (size_t)got) : NULL;
	char *sp = nul ? memchr(hdr, ' ', (size_t)(nul - hdr)) : NULL;
	char *end = NULL;
	if (sp) {
		*sp = '\0';
		*type = git_object_string2type(hdr);
		*size = (size_t)strtoull(sp + 1, &end, 10);
		*offset = (size_t)(nul - hdr) + 1;
	}
	if (!sp || end != nul || *type == GIT_OBJECT_INVALID || fstat(*fd, &sb) < 0 ||
	    (unsigned long long)sb.st_size != *offset + (unsigned long long)*size) {
		close(*fd);
		*fd = -1;
		unlink(path);
		forget(st, i);
		st->damaged = 1;
		git_error_set(GIT_ERROR_ODB, "staged object %s is damaged (removed)", path);
		return -1;
	}
	return 0;
}

static int stage_read(void **out, size_t *len, git_object_t *type, git_odb_backend *b, const git_oid *id)
{
	stage *st = (stage *)b;
	size_t size, off, done = 0;
	int fd, err = open_object(st, id, &fd, &size, type, &off);
	if (err < 0)
		return err;
	char *buf = git_odb_backend_data_alloc(b, size + 1);
	if (!buf) {
		close(fd);
		git_error_set_oom();
		return -1;
	}
	while (done < size) {
		ssize_t got = pread(fd, buf + done, size - done, (off_t)(off + done));
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			git_error_set(GIT_ERROR_OS, "reading a staged object");
			close(fd);
			git_odb_backend_data_free(b, buf);
			return -1;
		}
		done += (size_t)got;
	}
	buf[size] = '\0';
	close(fd);
	git_oid got;
	if (st->verify && (git_odb_hash(&got, buf, size, *type) < 0 || !git_oid_equal(&got, id))) {
		char path[4200];
		path_of(path, sizeof(path), st, id);
		unlink(path);
		long i = find(st, id);
		if (i >= 0)
			forget(st, i);
		st->damaged = 1;
		git_odb_backend_data_free(b, buf);
		git_error_set(GIT_ERROR_ODB, "staged object %s does not match its id: damaged (removed)", path);
		return -1;
	}
	*out = buf;
	*len = size;
	return 0;
}

static int stage_read_header(size_t *len, git_object_t *type, git_odb_backend *b, const git_oid *id)
{
	size_t off;
	int fd, err = open_object((stage *)b, id, &fd, len, type, &off);
	if (err == 0)
		close(fd);
	return err;
}

static int stage_exists(git_odb_backend *b, const git_oid *id)
{
	return find((stage *)b, id) >= 0;
}

/* The one staged object whose id begins with the len hex digits of short_id. */
static int stage_exists_prefix(git_oid *out, git_odb_backend *b, const git_oid *short_id, size_t len)
{
	stage *st = (stage *)b;
	size_t hits = 0;
	for (size_t i = 0; i < st->n; i++) {
		if (git_oid_ncmp(&st->ids[i], short_id, len) == 0) {
			if (hits++)
				break;
			git_oid_cpy(out, &st->ids[i]);
		}
	}
	if (hits > 1) {
		git_error_set(GIT_ERROR_ODB, "ambiguous object prefix");
		return GIT_EAMBIGUOUS;
	}
	return hits ? 0 : GIT_ENOTFOUND;
}

static int stage_read_prefix(git_oid *out_id, void **out, size_t *len, git_object_t *type,
			     git_odb_backend *b, const git_oid *short_id, size_t n)
{
	git_oid id;
	int err = stage_exists_prefix(&id, b, short_id, n);
	if (err == 0 && (err = stage_read(out, len, type, b, &id)) == 0)
		git_oid_cpy(out_id, &id);
	return err;
}

int core_write_all(int fd, const void *data, size_t n)
{
	const char *p = data;
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int stage_write(git_odb_backend *b, const git_oid *id, const void *data, size_t len, git_object_t type)
{
	stage *st = (stage *)b;
	char path[4200], tmp[4200], hdr[HEADER_MAX];
	if (find(st, id) >= 0)
		return 0;
	int hlen = snprintf(hdr, sizeof(hdr), "%s %zu", git_object_type2string(type), len);
	path_of(path, sizeof(path), st, id);
	snprintf(tmp, sizeof(tmp), "%s/tmp-XXXXXX", st->dir);
	int fd = -1, ok = (mkdir(st->dir, 0700) == 0 || errno == EEXIST) &&
			  (fd = mkostemp(tmp, O_CLOEXEC)) >= 0 &&
			  core_write_all(fd, hdr, (size_t)hlen + 1) == 0 && core_write_all(fd, data, len) == 0;
	int e = errno;
	if (fd >= 0 && close(fd) < 0 && ok) {
		ok = 0;
		e = errno;
	}
	if (ok && rename(tmp, path) < 0) {
		ok = 0;
		e = errno;
	}
	if (!ok) {
		if (fd >= 0)
			unlink(tmp); /* nothing half-written stays */
		if (e == ENOSPC || e == EDQUOT)
			full = 1;
		errno = e;
		git_error_set(GIT_ERROR_OS, "writing an object into the cache (%s)", st->dir);
		return -1;
	}
	if (remember(st, id) < 0) {
		unlink(path);
		return -1;
	}
	st->bytes += len;
	return 0;
}

/* A streamed write (git_blob_create_from_buffer writes through a stream): straight into the
 * temporary file. Without it libgit2 would buffer a copy of the whole object first. */
struct stage_stream {
	git_odb_stream parent;
	int fd;
	char tmp[4200];
	size_t size;
};

static int stream_failed(struct stage_stream *ss, int e)
{
	if (e == ENOSPC || e == EDQUOT)
		full = 1;
	errno = e;
	git_error_set(GIT_ERROR_OS, "writing an object into the cache (%s)", ((stage *)ss->parent.backend)->dir);
	return -1;
}

static int stream_write(git_odb_stream *s, const char *data, size_t len)
{
	struct stage_stream *ss = (struct stage_stream *)s;
	if (ss->fd < 0 || core_write_all(ss->fd, data, len) < 0)
		return stream_failed(ss, ss->fd < 0 ? EIO : errno);
	return 0;
}

static int stream_finalize(git_odb_stream *s, const git_oid *id)
{
	struct stage_stream *ss = (struct stage_stream *)s;
	stage *st = (stage *)s->backend;
	char path[4200];
	int fd = ss->fd;
	ss->fd = -1;
	if (find(st, id) >= 0) {
		close(fd);
		return 0; /* stream_free removes the temporary file */
	}
	path_of(path, sizeof(path), st, id);
	if (close(fd) < 0 || rename(ss->tmp, path) < 0)
		return stream_failed(ss, errno);
	ss->tmp[0] = '\0';
	if (remember(st, id) < 0) {
		unlink(path);
		return -1;
	}
	st->bytes += ss->size;
	return 0;
}

static void stream_free(git_odb_stream *s)
{
	struct stage_stream *ss = (struct stage_stream *)s;
	if (ss->fd >= 0)
		close(ss->fd);
	if (ss->tmp[0])
		unlink(ss->tmp); /* nothing half-written stays */
	free(ss);
}

static int stage_writestream(git_odb_stream **out, git_odb_backend *b, git_object_size_t size, git_object_t type)
{
	stage *st = (stage *)b;
	char hdr[HEADER_MAX];
	struct stage_stream *ss = calloc(1, sizeof(*ss));
	if (!ss) {
		git_error_set_oom();
		return -1;
	}
	ss->fd = -1;
	ss->size = (size_t)size;
	ss->parent.backend = b;
	ss->parent.mode = GIT_STREAM_WRONLY;
	ss->parent.write = stream_write;
	ss->parent.finalize_write = stream_finalize;
	ss->parent.free = stream_free;
	int hlen = snprintf(hdr, sizeof(hdr), "%s %llu", git_object_type2string(type), (unsigned long long)size);
	snprintf(ss->tmp, sizeof(ss->tmp), "%s/tmp-XXXXXX", st->dir);
	if ((mkdir(st->dir, 0700) < 0 && errno != EEXIST) || (ss->fd = mkostemp(ss->tmp, O_CLOEXEC)) < 0) {
		int e = errno;
		ss->tmp[0] = '\0';
		stream_failed(ss, e);
		stream_free(&ss->parent);
		return -1;
	}
	if (core_write_all(ss->fd, hdr, (size_t)hlen + 1) < 0) {
		stream_failed(ss, errno);
		stream_free(&ss->parent);
		return -1;
	}
	*out = &ss->parent;
	return 0;
}

static int stage_foreach(git_odb_backend *b, git_odb_foreach_cb cb, void *payload)
{
	stage *st = (stage *)b;
	for (size_t i = 0; i < st->n; i++) {
		int rc = cb(&st->ids[i], payload);
		if (rc)
			return rc;
	}
	return 0;
}

static void stage_free(git_odb_backend *b)
{
	stage *st = (stage *)b;
	free(st->ids);
	free(st);
}

/* Reads the stage's directory: its objects, and temporary files a killed process left. */
static int stage_scan(stage *st)
{
	DIR *d = opendir(st->dir);
	struct dirent *e;
	git_oid id;
	char path[4200];
	struct stat sb;
	if (!d)
		return errno == ENOENT ? 0 : -1;
	while ((e = readdir(d)) != NULL) {
		if (snprintf(path, sizeof(path), "%s/%s", st->dir, e->d_name) >= (int)sizeof(path))
			continue;
		if (!strncmp(e->d_name, "tmp-", 4)) {
			unlink(path);
			continue;
		}
		if (strlen(e->d_name) != GIT_OID_HEXSZ || git_oid_fromstr(&id, e->d_name) < 0)
			continue;
		if (st->n == st->cap) {
			size_t ncap = st->cap ? st->cap * 2 : 32;
			git_oid *n = realloc(st->ids, ncap * sizeof(*n));
			if (!n) {
				closedir(d);
				return -1;
			}
			st->ids = n;
			st->cap = ncap;
		}
		git_oid_cpy(&st->ids[st->n++], &id);
		if (stat(path, &sb) == 0)
			st->bytes += (unsigned long long)sb.st_size;
	}
	closedir(d);
	git_error_clear();
	if (st->n)
		qsort(st->ids, st->n, sizeof(*st->ids), cmp_oid);
	return 0;
}

/* A loose-object backend that only reads: libgit2 would write loose objects through it when
 * the stage cannot (a full filesystem), and maint.c writes the few it keeps itself. */
struct read_only {
	git_odb_backend parent;
	git_odb_backend *inner;
};

static int ro_read(void **out, size_t *len, git_object_t *type, git_odb_backend *b, const git_oid *id)
{
	git_odb_backend *in = ((struct read_only *)b)->inner;
	return in->read(out, len, type, in, id);
}

static int ro_read_prefix(git_oid *out_id, void **out, size_t *len, git_object_t *type, git_odb_backend *b,
			  const git_oid *short_id, size_t n)
{
	git_odb_backend *in = ((struct read_only *)b)->inner;
	return in->read_prefix(out_id, out, len, type, in, short_id, n);
}

static int ro_read_header(size_t *len, git_object_t *type, git_odb_backend *b, const git_oid *id)
{
	git_odb_backend *in = ((struct read_only *)b)->inner;
	return in->read_header(len, type, in, id);
}

static int ro_exists(git_odb_backend *b, const git_oid *id)
{
	git_odb_backend *in = ((struct read_only *)b)->inner;
	return in->exists(in, id);
}

static int ro_exists_prefix(git_oid *out, git_odb_backend *b, const git_oid *short_id, size_t n)
{
	git_odb_backend *in = ((struct read_only *)b)->inner;
	return in->exists_prefix(out, in, short_id, n);
}

static int ro_foreach(git_odb_backend *b, git_odb_foreach_cb cb, void *payload)
{
	git_odb_backend *in = ((struct read_only *)b)->inner;
	return in->foreach(in, cb, payload);
}

static void ro_free(git_odb_backend *b)
{
	git_odb_backend *in = ((struct read_only *)b)->inner;
	in->free(in);
	free(b);
}

static int read_only_loose(git_odb_backend **out, const char *objects)
{
	struct read_only *ro = calloc(1, sizeof(*ro));
	if (!ro) {
		git_error_set_oom();
		return -1;
	}
	int err = git_odb_backend_loose(&ro->inner, objects, -1, 0, 0, 0);
	if (err < 0) {
		free(ro);
		return err;
	}
	git_odb_init_backend(&ro->parent, GIT_ODB_BACKEND_VERSION);
	ro->parent.read = ro_read;
	ro->parent.read_prefix = ro_read_prefix;
	ro->parent.read_header = ro_read_header;
	ro->parent.exists = ro_exists;
	ro->parent.exists_prefix = ro_exists_prefix;
	ro->parent.foreach = ro_foreach;
	ro->parent.free = ro_free;
	*out = &ro->parent;
	return 0;
}

int stage_odb(git_odb **out, stage **stp, const char *repo_path, int verify)
{
	git_odb *odb = NULL;
	git_odb_backend *pack = NULL, *loose = NULL;
	stage *st = NULL;
	char objects[4200];
	size_t n = strlen(repo_path);
	const char *sep = n && repo_path[n - 1] == '/' ? "" : "/";
	int err;
	*out = NULL;
	snprintf(objects, sizeof(objects), "%s%sobjects", repo_path, sep);
	if ((err = git_odb_new(&odb)) < 0)
		return err;
	if ((err = git_odb_backend_pack(&pack, objects)) < 0 || (err = git_odb_add_backend(odb, pack, PACK_PRIORITY)) < 0)
		goto fail;
	pack = NULL;
	if ((err = read_only_loose(&loose, objects)) < 0 || (err = git_odb_add_backend(odb, loose, LOOSE_PRIORITY)) < 0)
		goto fail;
	((struct read_only *)loose)->inner->odb = odb;
	loose = NULL;
	err = -1;
	if (!(st = calloc(1, sizeof(*st)))) {
		git_error_set_oom();
		goto fail;
	}
	snprintf(st->dir, sizeof(st->dir), "%s%s%s", repo_path, sep, STAGE_DIR);
	st->verify = verify;
	git_odb_init_backend(&st->parent, GIT_ODB_BACKEND_VERSION);
	st->parent.read = stage_read;
	st->parent.read_prefix = stage_read_prefix;
	st->parent.read_header = stage_read_header;
	st->parent.write = stage_write;
	st->parent.writestream = stage_writestream;
	st->parent.exists = stage_exists;
	st->parent.exists_prefix = stage_exists_prefix;
	st->parent.foreach = stage_foreach;
	st->parent.free = stage_free;
	if (stage_scan(st) < 0) {
		git_error_set(GIT_ERROR_OS, "reading %s", st->dir);
		goto fail;
	}
	if ((err = git_odb_add_backend(odb, &st->parent, STAGE_PRIORITY)) < 0)
		goto fail;
	if (stp)
		*stp = st;
	*out = odb;
	return 0;
fail:
	if (st)
		stage_free(&st->parent);
	if (pack)
		pack->free(pack);
	if (loose)
		loose->free(loose);
	git_odb_free(odb);
	return err < 0 ? err : -1;
}

size_t stage_count(const stage *st)
{
	return st ? st->n : 0;
}

const git_oid *stage_id(const stage *st, size_t i)
{
	return &st->ids[i];
}

unsigned long long stage_bytes(const stage *st)
{
	return st ? st->bytes : 0;
}

int stage_damaged(const stage *st)
{
	return st && st->damaged;
}

int stage_clear(stage *st)
{
	char path[4200];
	int rc = 0;
	while (st->n) {
		path_of(path, sizeof(path), st, &st->ids[st->n - 1]);
		if (unlink(path) < 0 && errno != ENOENT) {
			git_error_set(GIT_ERROR_OS, "removing %s", path);
			rc = -1;
			break;
		}
		st->n--;
	}
	if (!st->n)
		st->bytes = 0;
	return rc;
}

int stage_was_full(int clear)
{
	int was = full;
	if (clear)
		full = 0;
	return was;
}
