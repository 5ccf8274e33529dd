/* Writes objects whose ids are known into a new pack and its index, without hashing them again
 * (libgit2's pack builder hands every pack to its indexer, which inflates and hashes each
 * object once more, and compresses at zlib's default level).
 *
 * Git's pack format, version 2: "PACK", the version and the object count, then per object its
 * type and size (a varint) and its zlib stream, then the SHA-1 of all that. The index, version
 * 2: a fan-out table, the sorted ids, each object's CRC-32 (of its header and stream) and
 * offset (a second table of 8-byte offsets past 2 GiB), the pack's checksum, then its own.
 * Both are written under temporary names in the pack directory; the pack is renamed first, the
 * index last: readers look for indexes, so a pack is seen only whole. The only hashing is
 * those two checksums, over the compressed bytes. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <zlib.h>

#include "../internal.h"
#include "packwrite.h"
#include "stage.h"

#define BUF 65536

struct out {
	int fd;
	char tmp[4200];
	unsigned char buf[BUF];
	size_t used;
	unsigned long long off; /* bytes written so far */
	EVP_MD_CTX *sha;
	int failed;
};

struct entry {
	git_oid id;
	uint32_t crc;
	unsigned long long off;
};

static int flush_out(struct out *o)
{
	if (core_write_all(o->fd, o->buf, o->used) < 0) {
		o->failed = 1;
		return -1;
	}
	o->used = 0;
	return 0;
}

/* Appends to the file and its checksum. */
static int put(struct out *o, const void *p, size_t n)
{
	const unsigned char *c = p;
	if (!EVP_DigestUpdate(o->sha, p, n))
		return -1;
	o->off += n;
	while (n) {
		size_t room = BUF - o->used, k = n < room ? n : room;
		memcpy(o->buf + o->used, c, k);
		o->used += k;
		c += k;
		n -= k;
		if (o->used == BUF && flush_out(o) < 0)
			return -1;
	}
	return 0;
}

static int open_out(struct out *o, const char *packdir)
{
	memset(o, 0, sizeof(*o));
	o->fd = -1;
	snprintf(o->tmp, sizeof(o->tmp), "%s/tmp-tfgit-XXXXXX", packdir);
	if (!(o->sha = EVP_MD_CTX_new()) || !EVP_DigestInit_ex(o->sha, EVP_sha1(), NULL))
		return -1;
	o->fd = mkostemp(o->tmp, O_CLOEXEC);
	if (o->fd < 0)
		o->tmp[0] = '\0';
	return o->fd < 0 ? -1 : 0;
}

/* Writes out what is buffered and the checksum (also into sum); 0 or -1. */
static int close_out(struct out *o, unsigned char sum[20])
{
	unsigned int len = 0;
	if (!EVP_DigestFinal_ex(o->sha, sum, &len) || len != 20)
		return -1;
	/* the checksum itself is not part of what it sums */
	size_t room = BUF - o->used;
	if (room < 20 && flush_out(o) < 0)
		return -1;
	memcpy(o->buf + o->used, sum, 20);
	o->used += 20;
	o->off += 20;
	if (flush_out(o) < 0)
		return -1;
	int fd = o->fd;
	o->fd = -1;
	if (fchmod(fd, 0400) < 0 || close(fd) < 0)
		return -1;
	return 0;
}

static void drop_out(struct out *o)
{
	int e = errno;
	if (o->fd >= 0)
		close(o->fd);
	if (o->tmp[0])
		unlink(o->tmp);
	EVP_MD_CTX_free(o->sha);
	memset(o, 0, sizeof(*o));
	errno = e;
}

static void be32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static int by_id(const void *a, const void *b)
{
	return git_oid_cmp(&((const struct entry *)a)->id, &((const struct entry *)b)->id);
}

/* One object: its header and zlib stream; its CRC-32 into e->crc. */
static int put_object(struct out *o, z_stream *z, struct entry *e, git_odb *odb)
{
	git_odb_object *obj = NULL;
	unsigned char hdr[16], zout[BUF];
	int rc = -1;
	if (git_odb_read(&obj, odb, &e->id) < 0)
		return -1;
	size_t size = git_odb_object_size(obj), n = 0, s = size;
	e->off = o->off;
	hdr[n++] = (unsigned char)(((unsigned)git_odb_object_type(obj) << 4) | (s & 15));
	for (s >>= 4; s; s >>= 7) {
		hdr[n - 1] |= 0x80;
		hdr[n++] = (unsigned char)(s & 0x7f);
	}
	uLong crc = crc32(0L, hdr, (uInt)n);
	if (put(o, hdr, n) < 0 || deflateReset(z) != Z_OK)
		goto done;
	const unsigned char *in = git_odb_object_data(obj);
	size_t left = size;
	int flush;
	do {
		/* at most 1 GiB at a time: avail_in is an unsigned int */
		uInt chunk = left > (1u << 30) ? 1u << 30 : (uInt)left;
		z->next_in = (Bytef *)in;
		z->avail_in = chunk;
		in += chunk;
		left -= chunk;
		flush = left ? Z_NO_FLUSH : Z_FINISH;
		int zr;
		do {
			z->next_out = zout;
			z->avail_out = sizeof(zout);
			zr = deflate(z, flush);
			if (zr == Z_STREAM_ERROR)
				goto done;
			size_t got = sizeof(zout) - z->avail_out;
			crc = crc32(crc, zout, (uInt)got);
			if (put(o, zout, got) < 0)
				goto done;
		} while (z->avail_out == 0 || (flush == Z_FINISH && zr != Z_STREAM_END));
	} while (flush != Z_FINISH);
	e->crc = (uint32_t)crc;
	rc = 0;
done:
	git_odb_object_free(obj);
	return rc;
}

static int write_index(struct out *o, struct entry *es, size_t n, const unsigned char packsum[20])
{
	unsigned char b[8];
	uint32_t fan[256] = {0};
	size_t big = 0;
	for (size_t i = 0; i < n; i++)
		fan[es[i].id.id[0]]++;
	for (int i = 1; i < 256; i++)
		fan[i] += fan[i - 1];
	if (put(o, "\377tOc\0\0\0\2", 8) < 0)
		return -1;
	for (int i = 0; i < 256; i++) {
		be32(b, fan[i]);
		if (put(o, b, 4) < 0)
			return -1;
	}
	for (size_t i = 0; i < n; i++)
		if (put(o, es[i].id.id, GIT_OID_RAWSZ) < 0)
			return -1;
	for (size_t i = 0; i < n; i++) {
		be32(b, es[i].crc);
		if (put(o, b, 4) < 0)
			return -1;
	}
	for (size_t i = 0; i < n; i++) {
		be32(b, es[i].off < 0x80000000ULL ? (uint32_t)es[i].off : (uint32_t)(0x80000000u | big++));
		if (put(o, b, 4) < 0)
			return -1;
	}
	for (size_t i = 0; i < n; i++) {
		if (es[i].off < 0x80000000ULL)
			continue;
		be32(b, (uint32_t)(es[i].off >> 32));
		be32(b + 4, (uint32_t)es[i].off);
		if (put(o, b, 8) < 0)
			return -1;
	}
	return put(o, packsum, 20);
}

int pack_write(char *name, size_t namelen, git_odb *odb, const char *packdir, const git_oid *ids,
	       size_t n, int level)
{
	struct out pack, idx;
	struct entry *es = calloc(n ? n : 1, sizeof(*es));
	unsigned char packsum[20], idxsum[20], head[12];
	char hex[41], path[4300];
	z_stream z;
	int zok = 0, rc = -1;
	memset(&pack, 0, sizeof(pack));
	memset(&idx, 0, sizeof(idx));
	pack.fd = idx.fd = -1;
	memset(&z, 0, sizeof(z));
	if (!es) {
		git_error_set_oom();
		return -1;
	}
	if (deflateInit(&z, level) != Z_OK)
		goto done;
	zok = 1;
	if (open_out(&pack, packdir) < 0)
		goto fail_os;
	memcpy(head, "PACK\0\0\0\2", 8);
	be32(head + 8, (uint32_t)n);
	if (put(&pack, head, 12) < 0)
		goto fail_os;
	for (size_t i = 0; i < n; i++) {
		git_oid_cpy(&es[i].id, &ids[i]);
		if (put_object(&pack, &z, &es[i], odb) < 0) {
			if (pack.failed)
				goto fail_os;
			if (!git_error_last())
				git_error_set(GIT_ERROR_ZLIB, "compressing an object for the cache's pack");
			goto done;
		}
	}
	if (close_out(&pack, packsum) < 0)
		goto fail_os;
	qsort(es, n, sizeof(*es), by_id);
	if (open_out(&idx, packdir) < 0 || write_index(&idx, es, n, packsum) < 0 || close_out(&idx, idxsum) < 0)
		goto fail_os;
	for (int i = 0; i < 20; i++)
		snprintf(hex + 2 * i, 3, "%02x", packsum[i]);
	snprintf(name, namelen, "pack-%s", hex);
	snprintf(path, sizeof(path), "%s/%s.pack", packdir, name);
	if (rename(pack.tmp, path) < 0)
		goto fail_os;
	pack.tmp[0] = '\0';
	snprintf(path, sizeof(path), "%s/%s.idx", packdir, name);
	if (rename(idx.tmp, path) < 0) {
		int e = errno;
		snprintf(path, sizeof(path), "%s/%s.pack", packdir, name);
		unlink(path);
		errno = e;
		goto fail_os;
	}
	idx.tmp[0] = '\0';
	rc = 0;
	goto done;
fail_os:
	git_error_set(GIT_ERROR_OS, "writing a pack into the cache (%s)", packdir);
done:
	if (zok)
		deflateEnd(&z);
	drop_out(&pack);
	drop_out(&idx);
	free(es);
	return rc;
}
