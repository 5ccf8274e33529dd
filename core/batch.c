/* Group commit: the requests waiting for one repository on one host, served together by
 * whichever of them gets the repository's flock, in one advertisement and one push.
 *
 * The queue is a directory beside the repository's flock, <cache dir>/<entry>.q, private like
 * the cache (pool workers, mod_fcgid processes and CGI runs share nothing else). A request is
 * a file there, named by its arrival (the monotonic clock, the pid, a counter), under these
 * names in turn:
 *   r.<id>  queued: written without a name (O_TMPFILE) and linked whole. Its own process, the
 *           waiter, holds a flock on it, taken before it had a name, for as long as it waits: a
 *           leader tells a live waiter from a dead one by that alone. The waiter may withdraw
 *           it (unlink) when TFGIT_QUEUE_TIMEOUT passes;
 *   c.<id>  claimed by a leader (a rename: of a claim and a withdrawal exactly one succeeds);
 *   a.<id>  its answer, written by the leader as w.<id> and renamed; the waiter reads it, then
 *           removes c.<id> and a.<id>, in that order (a claim found without its answer is an
 *           orphan, an answer without its claim is left over).
 *   turn    written by whoever releases the flock: the waiters' cue to try for it;
 *   last    the last batch's demand and time, for the next leader's batching window (window()).
 * Only the holder of the flock claims, answers, and removes other processes' files. A leader
 * keeps the flock until every request it claimed is answered, so a claimed, unanswered request
 * that the next holder finds is an orphan of a leader that died: it is run again. Every kind
 * of request may run twice (a LOCK by the ID that holds it, the same POST, an UNLOCK of a lock
 * that is gone change nothing), but a force-unlock, which could remove a lock taken since: that
 * one is answered 503 (try again) instead.
 *
 * Waiters wait in poll() on an inotify watch of the directory (their answer, or turn), and try
 * the flock at least every PROBE_MS: a leader that dies leaves no event.
 *
 * A leader takes every queued request whose settings are its own (a fingerprint of the store
 * and the URL), up to BATCH_MAX: they run under its settings. Each runs through the attempt
 * function it would run alone, in arrival order (GETs first: they are answered from the
 * advertisement), on one deferred session (remote.c): a push is recorded and shown to the
 * requests after it, so a branch moves by one commit per state written, and a LOCK after
 * another of the same state sees it held. One push then carries every ref update, each
 * compare-and-swap from the advertised value; a request's verdict comes from the updates it
 * read or made: applied (its answer stands), lost (it runs again on a new session, with the
 * others that lost), or refused: a server refuses a push whole (a pre-receive hook) or a ref
 * that several requests moved, so a refused request whose push carried others' updates runs
 * again alone, one push each, and only a refusal of its own is its answer. A request whose
 * answer depends on no update of the batch is answered before the push; none is pushed once the
 * batch's deadline has passed (each is answered that nothing was done).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "batch.h"
#include "crypt/crypt.h"
#include "net/deadline.h"
#include "internal.h"
#include "store/maint.h"
#include "metrics.h"
#include "net/sockets.h"

#define QUEUE_MAGIC "tfgit-queue 1\n"
#define ANSWER_MAGIC "tfgit-answer 1\n"
#define BATCH_MAX 128                /* requests one leader takes */
#define BATCH_BYTES_MAX (64u << 20)  /* and their bodies' bytes */
#define PROBE_MS 100                 /* a waiter tries the flock at least this often */
#define SLACK_MS 2000                /* a claimed request's waiter waits this long past its deadline */
#define DEADLINE_MIN_MS 1000         /* a request with less time left is not claimed, */
#define DEADLINE_SHARE 2             /* nor one with less than 1/this of TFGIT_REMOTE_TIMEOUT */
#define WINDOW_MAX_MS 20             /* the longest a leader waits for the last batch's clients */
#define ID_LEN 64

static int is_writer(batch_kind k)
{
	return k != BATCH_GET;
}

static op_attempt_fn attempt_for(batch_kind k)
{
	return k == BATCH_LOCK || k == BATCH_UNLOCK ? lock_request_attempt : state_request_attempt;
}

/* op_run's mode for a request served alone. */
static int mode_of(batch_kind k)
{
	return k == BATCH_GET ? OP_READ_BRANCH : is_writer(k);
}

static int attempt_any(op *o, void *ctx)
{
	const batch_request *q = ctx;
	return attempt_for(q->kind)(o, ctx);
}

/* The settings a request runs under, and its repository: requests of one batch share them. */
static void fp_str(EVP_MD_CTX *c, const char *v)
{
	if (v)
		EVP_DigestUpdate(c, v, strlen(v) + 1);
	else
		EVP_DigestUpdate(c, "\377", 1);
}

static void fp_num(EVP_MD_CTX *c, long long v)
{
	char b[32];
	snprintf(b, sizeof(b), "%lld", v);
	fp_str(c, b);
}

static int fingerprint(char out[65], const tfgit_store *s, const char *url)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;
	const tfgit_remote_opts *r = &s->remote;
	const tfgit_crypt *k = &s->crypt;
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	if (!c || !EVP_DigestInit_ex(c, EVP_sha256(), NULL)) {
		EVP_MD_CTX_free(c);
		return -1;
	}
	fp_str(c, QUEUE_MAGIC);
	fp_str(c, url);
	fp_str(c, s->cache_dir);
	fp_str(c, s->author_name);
	fp_str(c, s->author_email);
	fp_num(c, s->require_lock);
	fp_num(c, s->allow_force_unlock);
	fp_num(c, (long long)s->max_blob);
	fp_num(c, s->lock_ttl);
	fp_num(c, s->lineage_guard);
	fp_str(c, r->username);
	fp_str(c, r->password);
	fp_str(c, r->password_file);
	fp_str(c, r->token);
	fp_str(c, r->token_file);
	fp_str(c, r->netrc);
	fp_str(c, r->ssh_key);
	fp_str(c, r->known_hosts);
	fp_num(c, r->host_key_check);
	fp_num(c, r->tls_no_verify);
	fp_num(c, (long long)r->max_object);
	fp_num(c, r->timeout); /* a batch ends by its members' deadlines: one budget for all */
	fp_str(c, getenv("SSH_AUTH_SOCK")); /* an agent's keys are credentials too */
	fp_str(c, tls_trusted_ca());
	fp_str(c, k->passphrase);
	fp_str(c, k->key_files);
	fp_str(c, k->encrypt_cmd);
	fp_str(c, k->decrypt_cmd);
	fp_num(c, k->filter_timeout);
	fp_num(c, k->migrate);
	fp_str(c, k->repository_ids);
	fp_num(c, k->refuse_v1);
	fp_num(c, s->remote.keep_connections);
	int ok = EVP_DigestFinal_ex(c, md, &n);
	EVP_MD_CTX_free(c);
	if (!ok)
		return -1;
	for (unsigned int i = 0; i < 32 && i < n; i++)
		sprintf(out + 2 * i, "%02x", md[i]);
	return 0;
}

/* Whether q may go through the queue: clear text (a state sent or read) is written to the
 * queue's files only where it never reaches a disk when states are encrypted at rest. */
static int eligible(const tfgit_store *store, const batch_request *q)
{
	if (!store->group_commit || q->len > BATCH_BODY_MAX)
		return 0;
	if ((q->kind == BATCH_GET || q->kind == BATCH_PUT) && crypt_enabled(&store->crypt))
		return cache_in_memory(store->cache_dir);
	return 1;
}

static int force_unlock(const batch_request *q)
{
	return q->kind == BATCH_UNLOCK && tfgit_unlock_is_force(q->body, q->len);
}

/* The waiter: its request's file and the watch on the queue */

typedef struct {
	char qdir[4200];
	char id[ID_LEN];
	int fd;  /* t./r./c.<id>, flocked while we wait */
	int ino; /* inotify on qdir */
} waiter;

static void qpath(char *out, size_t outlen, const char *qdir, char kind, const char *id)
{
	snprintf(out, outlen, "%s/%c.%s", qdir, kind, id);
}

/* The queue directory, made when missing: ours alone, like the cache directory it is in. */
static int queue_dir(char *qdir, size_t len, const tfgit_store *store, const char *url)
{
	char why[400];
	struct stat st;
	int dfd = cache_dir_open(store->cache_dir, why, sizeof(why));
	if (dfd < 0)
		return -1;
	close(dfd);
	if (cache_entry_path(qdir, len, store->cache_dir, url, ".q") < 0 ||
	    (mkdir(qdir, 0700) < 0 && errno != EEXIST))
		return -1;
	int fd = open(qdir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int ok = fstat(fd, &st) == 0 && st.st_uid == geteuid() && !(st.st_mode & 077);
	close(fd);
	return ok ? 0 : -1;
}

static void waiter_close(waiter *w)
{
	if (w->fd >= 0)
		close(w->fd);
	if (w->ino >= 0)
		close(w->ino);
	w->fd = w->ino = -1;
}

/* Writes the request into a file without a name (O_TMPFILE), flocked, and links it as r.<id>:
 * it is queued whole, already marked as waited for. 0 or -1. */
static int enqueue(waiter *w, const char *fp, const tfgit_target *t, const batch_request *q,
		   long long deadline)
{
	static unsigned counter;
	struct timespec ts;
	char path[4400], head[512];
	clock_gettime(CLOCK_MONOTONIC, &ts);
	snprintf(w->id, sizeof(w->id), "%010lld%09ld.%ld.%u", (long long)ts.tv_sec, ts.tv_nsec,
		 (long)getpid(), counter++);
	w->fd = open(w->qdir, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
	if (w->fd < 0)
		return -1;
	size_t reflen = strlen(t->ref), statelen = strlen(t->state);
	long long idlen = q->lock_id ? (long long)strlen(q->lock_id) : -1;
	int n = snprintf(head, sizeof(head), "%s%s\n%d %d %lld %ld %zu %zu %lld %zu\n", QUEUE_MAGIC, fp,
			 (int)q->kind, q->amend, deadline, (long)getpid(), reflen, statelen, idlen, q->len);
	if (flock(w->fd, LOCK_EX) < 0 || core_write_all(w->fd, head, (size_t)n) < 0 ||
	    core_write_all(w->fd, t->ref, reflen) < 0 || core_write_all(w->fd, t->state, statelen) < 0 ||
	    (idlen > 0 && core_write_all(w->fd, q->lock_id, (size_t)idlen) < 0) ||
	    (q->len && core_write_all(w->fd, q->body, q->len) < 0))
		return -1;
	char self[64];
	snprintf(self, sizeof(self), "/proc/self/fd/%d", w->fd);
	qpath(path, sizeof(path), w->qdir, 'r', w->id);
	return linkat(AT_FDCWD, self, AT_FDCWD, path, AT_SYMLINK_FOLLOW);
}

/* Takes the request back while it is unclaimed: 1 done, 0 already claimed. */
static int withdraw(waiter *w)
{
	char path[4400];
	qpath(path, sizeof(path), w->qdir, 'r', w->id);
	return unlink(path) == 0;
}

static int exists(const char *qdir, char kind, const char *id)
{
	char path[4400];
	struct stat st;
	qpath(path, sizeof(path), qdir, kind, id);
	return lstat(path, &st) == 0;
}

/* Answers */

/* Writes m's answer as w.<id>, renamed a.<id>. A failure (a full filesystem) leaves the request
 * claimed and unanswered: its waiter takes it over once the flock is free. */
static void answer_write(const char *qdir, const char *id, int rc, const tfgit_result *r)
{
	char path[4400], to[4400], head[512];
	qpath(path, sizeof(path), qdir, 'w', id);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		core_log("group commit: the answer of %s cannot be written: %s", id, strerror(errno));
		return;
	}
	size_t mlen = strlen(r->message);
	int n = snprintf(head, sizeof(head), "%s%d %d %d %d %d %zu %zu %zu\n%s %s\n", ANSWER_MAGIC, rc,
			 r->changed, r->forced, r->attempts, r->batch, mlen, r->holder.size, r->content.size,
			 r->blob_id[0] ? r->blob_id : "-", r->version[0] ? r->version : "-");
	int bad = core_write_all(fd, head, (size_t)n) < 0 || core_write_all(fd, r->message, mlen) < 0 ||
		  (r->holder.size && core_write_all(fd, r->holder.ptr, r->holder.size) < 0) ||
		  (r->content.size && core_write_all(fd, r->content.ptr, r->content.size) < 0);
	if (close(fd) < 0)
		bad = 1;
	qpath(to, sizeof(to), qdir, 'a', id);
	if (bad || rename(path, to) < 0) {
		core_log("group commit: the answer of %s cannot be written: %s", id, strerror(errno));
		unlink(path);
	}
}

static int buf_copy(tfgit_buf *b, const char *p, size_t n)
{
	if (!n)
		return 0;
	if (!(b->ptr = malloc(n)))
		return -1;
	memcpy(b->ptr, p, n);
	b->size = n;
	return 0;
}

/* Reads a.<id> into r and its code into *rc; removes the request's files. 0, or -1 when the
 * answer cannot be read (it is then taken as missing). */
static int answer_read(waiter *w, tfgit_result *r, int *rc)
{
	char path[4400];
	struct stat st;
	void *map = MAP_FAILED;
	int ok = 0;
	qpath(path, sizeof(path), w->qdir, 'a', w->id);
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) == 0 && st.st_size > 0)
		map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (map == MAP_FAILED)
		return -1;
	/* three lines (the magic, the numbers, the ids), then the message, the holder, the content */
	const char *p = map, *end = p + st.st_size, *body = p;
	for (int lines = 0; lines < 3 && body < end; body++)
		lines += *body == '\n';
	size_t hlen = (size_t)(body - p);
	char head[512];
	int changed, forced, attempts, batch;
	size_t mlen, holdlen, clen;
	char blob[41], version[41];
	if (hlen < sizeof(head) && hlen > strlen(ANSWER_MAGIC) && !memcmp(p, ANSWER_MAGIC, strlen(ANSWER_MAGIC))) {
		memcpy(head, p, hlen);
		head[hlen] = '\0';
		ok = sscanf(head + strlen(ANSWER_MAGIC), "%d %d %d %d %d %zu %zu %zu\n%40s %40s", rc, &changed,
			    &forced, &attempts, &batch, &mlen, &holdlen, &clen, blob, version) == 10 &&
		     mlen < sizeof(r->message) && (size_t)(end - body) == mlen + holdlen + clen;
	}
	if (ok) {
		tfgit_result_free(r);
		memset(r, 0, sizeof(*r));
		r->changed = changed;
		r->forced = forced;
		r->attempts = attempts;
		r->batch = batch;
		if (strcmp(blob, "-"))
			snprintf(r->blob_id, sizeof(r->blob_id), "%s", blob);
		if (strcmp(version, "-"))
			snprintf(r->version, sizeof(r->version), "%s", version);
		memcpy(r->message, body, mlen);
		r->message[mlen] = '\0';
		ok = buf_copy(&r->holder, body + mlen, holdlen) == 0 &&
		     buf_copy(&r->content, body + mlen + holdlen, clen) == 0;
	}
	munmap(map, (size_t)st.st_size);
	if (!ok) {
		tfgit_result_free(r);
		memset(r, 0, sizeof(*r));
		core_log("group commit: the answer of %s is not readable", w->id);
		return -1;
	}
	/* the claim first, then the answer: a claim without an answer is an orphan to the next
	 * holder of the flock, an answer without a claim is left over */
	char claimed[4400];
	qpath(claimed, sizeof(claimed), w->qdir, 'c', w->id);
	unlink(claimed);
	unlink(path);
	return 0;
}

/* The leader */

typedef struct {
	char id[ID_LEN];
	int own;               /* the leader's own request */
	int orphan;            /* claimed by a leader that died */
	batch_request q;
	tfgit_target t;
	char *strings;         /* ref, state and lock ID of another process's request */
	void *map;             /* its file, mapped: the body */
	size_t maplen;
	tfgit_result res, *r;  /* r: the caller's result for our own, else &res */
	long long deadline;
	int rc, done, retry, refetched;
	int solo;              /* refused in a push that carried others' updates: runs alone next */
	int two_step;          /* its write went without its lock (no "atomic"): counted once applied */
	int skip;              /* not in this round (another request's solo round) */
	char note[4096];       /* a log line that holds once its update is applied (op.note) */
} member;

static void member_free(member *m)
{
	if (m->map)
		munmap(m->map, m->maplen);
	free(m->strings);
	if (!m->own)
		tfgit_result_free(&m->res);
	m->map = NULL;
	m->strings = NULL;
}

/* Parses another process's request file (mapped) into m. 0, or -1 when it is not one this
 * leader can serve (another format, other settings, malformed). */
static int member_parse(member *m, const char *fp, const char *url)
{
	const char *p = m->map, *end = p + m->maplen;
	size_t ml = strlen(QUEUE_MAGIC);
	if (m->maplen < ml + 66 || memcmp(p, QUEUE_MAGIC, ml) || memcmp(p + ml, fp, 64) || p[ml + 64] != '\n')
		return -1;
	p += ml + 65;
	const char *nl = memchr(p, '\n', (size_t)(end - p));
	char line[256];
	if (!nl || nl - p >= (long)sizeof(line))
		return -1;
	memcpy(line, p, (size_t)(nl - p));
	line[nl - p] = '\0';
	int kind, amend;
	long long deadline, idlen;
	long pid;
	size_t reflen, statelen, len;
	if (sscanf(line, "%d %d %lld %ld %zu %zu %lld %zu", &kind, &amend, &deadline, &pid, &reflen,
		   &statelen, &idlen, &len) != 8 || kind < BATCH_GET || kind > BATCH_UNLOCK || idlen < -1 ||
	    reflen > 4096 || statelen > 4096 || idlen > 4096)
		return -1;
	p = nl + 1;
	size_t need = reflen + statelen + (idlen > 0 ? (size_t)idlen : 0);
	if ((size_t)(end - p) != need + len)
		return -1;
	if (!(m->strings = malloc(need + 3)))
		return -1;
	char *s = m->strings;
	memcpy(s, p, reflen);
	s[reflen] = '\0';
	memcpy(s + reflen + 1, p + reflen, statelen);
	s[reflen + 1 + statelen] = '\0';
	char *id = s + reflen + statelen + 2;
	if (idlen > 0)
		memcpy(id, p + reflen + statelen, (size_t)idlen);
	id[idlen > 0 ? idlen : 0] = '\0';
	if (strlen(s) != reflen || strlen(s + reflen + 1) != statelen || strlen(id) != (size_t)(idlen > 0 ? idlen : 0))
		return -1; /* a NUL inside */
	m->t.url = url;
	m->t.ref = s;
	m->t.state = s + reflen + 1;
	m->q.kind = (batch_kind)kind;
	m->q.amend = amend;
	m->q.lock_id = idlen >= 0 ? id : NULL;
	m->q.body = len ? p + need : "";
	m->q.len = len;
	m->deadline = deadline;
	m->r = &m->res;
	return 0;
}

typedef struct {
	const tfgit_store *store;
	const tfgit_target *t; /* the leader's own: its URL is every member's */
	cache *cache;
	const char *qdir;
	char fp[65];
	member *m;
	size_t n, cap;
	size_t bytes;
	int local;             /* the remote is a local repository (for the cache's maintenance) */
	char (*reads)[1100];   /* a batch of GETs: the branches they read (full names) */
	const char **readp;
	int warm_rounds;       /* rounds on a warm session: no attempt of a member's */
} batch;

static int member_add(batch *b, member **out)
{
	if (b->n == b->cap) {
		size_t ncap = b->cap ? b->cap * 2 : 16;
		member *nm = realloc(b->m, ncap * sizeof(*nm));
		if (!nm)
			return -1;
		b->m = nm;
		b->cap = ncap;
	}
	*out = &b->m[b->n++];
	memset(*out, 0, sizeof(**out));
	return 0;
}

static int by_id(const void *a, const void *b)
{
	return strcmp(((const member *)a)->id, ((const member *)b)->id);
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Whether m has too little time left to join the batch: the batch ends by its members' earliest
 * deadline, so one that waited long in the queue would cut every other short. It stays queued
 * (it may lead a batch of its own, or time out). */
static int short_of_time(const batch *b, const member *m, long long now)
{
	long long left = m->deadline - now, need = DEADLINE_MIN_MS;
	if (b->store->remote.timeout > 0 && b->store->remote.timeout * 1000LL / DEADLINE_SHARE > need)
		need = b->store->remote.timeout * 1000LL / DEADLINE_SHARE;
	return m->deadline && left < need;
}

/* Takes another process's queued request r.<id> (or the orphan c.<id>) as a candidate of the
 * batch, not yet claimed; what is left behind (a dead waiter's files) is removed. */
static void candidate(batch *b, const char *name, long long now)
{
	char path[4400], to[4400];
	const char *id = name + 2;
	int orphan = name[0] == 'c';
	struct stat st;
	snprintf(path, sizeof(path), "%s/%s", b->qdir, name);
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return;
	if (flock(fd, LOCK_EX | LOCK_NB) == 0) { /* its waiter is gone: nobody wants the answer */
		unlink(path);
		qpath(to, sizeof(to), b->qdir, 'a', id);
		unlink(to);
		close(fd);
		return;
	}
	member *m = NULL;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 || b->n >= BATCH_MAX ||
	    member_add(b, &m) < 0) {
		close(fd);
		return;
	}
	snprintf(m->id, sizeof(m->id), "%s", id);
	m->orphan = orphan;
	m->maplen = (size_t)st.st_size;
	m->map = mmap(NULL, m->maplen, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (m->map == MAP_FAILED)
		m->map = NULL;
	/* not ours to serve (other settings: its own process will lead), too late, or too much */
	if (!m->map || member_parse(m, b->fp, b->t->url) < 0 || short_of_time(b, m, now) ||
	    b->bytes + m->q.len > BATCH_BYTES_MAX) {
		member_free(m);
		b->n--;
		return;
	}
	b->bytes += m->q.len;
}

/* Claims the candidates (an orphan is claimed already): a rename, which fails for one its
 * waiter withdrew meanwhile (dropped); one left with too little time is not claimed. */
static void claim_all(batch *b)
{
	char path[4400], to[4400];
	size_t kept = 0;
	long long now = core_now_ms();
	for (size_t i = 0; i < b->n; i++) {
		member *m = &b->m[i];
		if (!m->own && short_of_time(b, m, now)) { /* the advertisement took its time */
			member_free(m);
			continue;
		}
		if (!m->own && !m->orphan) {
			qpath(path, sizeof(path), b->qdir, 'r', m->id);
			qpath(to, sizeof(to), b->qdir, 'c', m->id);
			if (rename(path, to) < 0) {
				member_free(m);
				continue;
			}
		}
		b->m[kept++] = *m;
	}
	b->n = kept;
}

/* Lets the candidates go unclaimed: they stay queued, for the next holder of the flock. */
static void drop_candidates(batch *b)
{
	size_t kept = 0;
	for (size_t i = 0; i < b->n; i++) {
		if (b->m[i].own)
			b->m[kept++] = b->m[i];
		else
			member_free(&b->m[i]);
	}
	b->n = kept;
}

/* Reads the queue: the candidates this leader can serve, orphans among them, once what dead
 * waiters and leaders left is removed. */
static void gather(batch *b, const char *own_id)
{
	cache_queue_sweep(b->qdir); /* what dead waiters and leaders left */
	DIR *d = opendir(b->qdir);
	struct dirent *e;
	char **names = NULL;
	size_t n = 0, cap = 0;
	long long now = core_now_ms();
	if (!d)
		return;
	while ((e = readdir(d)) != NULL) {
		const char *nm = e->d_name;
		if (strlen(nm) < 3 || nm[1] != '.' || !strchr("rc", nm[0]))
			continue;
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 32;
			char **nn = realloc(names, ncap * sizeof(*nn));
			if (!nn)
				break;
			names = nn;
			cap = ncap;
		}
		if (!(names[n] = strdup(nm)))
			break;
		n++;
	}
	closedir(d);
	qsort(names, n, sizeof(*names), name_cmp);
	for (size_t i = 0; i < n; i++) {
		const char *nm = names[i], *id = nm + 2;
		/* ours, or answered (its waiter, alive, reads it): not a candidate */
		if (!(own_id && !strcmp(id, own_id)) && !(nm[0] == 'c' && exists(b->qdir, 'a', id)))
			candidate(b, nm, now);
		free(names[i]);
	}
	free(names);
}

/* The member's result back to its waiter (or, for our own, left in place). */
static void finish(batch *b, member *m, int rc)
{
	if (rc < 0 && rc != TFGIT_ETIMEOUT && deadline_passed()) {
		result_message(m->r, "the operation did not finish within %d s (TFGIT_REMOTE_TIMEOUT)",
			       b->store->remote.timeout);
		rc = TFGIT_ETIMEOUT;
	}
	if (rc < 0)
		m->r->changed = 0;
	else if (m->note[0])
		core_log("%s", m->note);
	m->rc = rc;
	m->done = 1;
	m->r->batch = (int)b->n;
	m->r->led = m->own;
	if (!m->own) {
		answer_write(b->qdir, m->id, rc, m->r);
		member_free(m);
	}
}

static void finish_all(batch *b, int rc, const char *message)
{
	for (size_t i = 0; i < b->n; i++) {
		member *m = &b->m[i];
		if (m->done)
			continue;
		if (message && message != m->r->message)
			snprintf(m->r->message, sizeof(m->r->message), "%s", message);
		finish(b, m, rc);
	}
}

/* The round's members: after a refusal, the first that is to run alone runs alone (the others
 * skip the round). How many take part; *push: whether one of them writes. */
static size_t plan_round(batch *b, int *push)
{
	size_t live = 0;
	member *alone = NULL;
	*push = 0;
	for (size_t i = 0; i < b->n; i++)
		if (!b->m[i].done && b->m[i].solo && !alone)
			alone = &b->m[i];
	for (size_t i = 0; i < b->n; i++) {
		member *m = &b->m[i];
		m->retry = 0;
		m->skip = alone && m != alone;
		if (!m->done && !m->skip) {
			live++;
			*push |= is_writer(m->q.kind);
		}
	}
	return live;
}

/* Too many rounds: every member still waiting is told the branch kept changing. */
static void give_up(batch *b, int attempt)
{
	for (size_t i = 0; i < b->n; i++)
		if (!b->m[i].done)
			result_message(b->m[i].r, "branch %s kept changing on the remote during %d attempts; try again",
				       b->m[i].t.ref, attempt - 1);
	finish_all(b, TFGIT_ECONFLICT, NULL);
}

/* One member's attempt on the round's session; 1 when the cache looks damaged (the round is to
 * start again on a fresh copy, once). A member whose answer depends on no update of the batch
 * is answered at once. */
static int attempt_member(batch *b, const op *base, size_t i, int attempt, int rebuilt)
{
	member *m = &b->m[i];
	int wrote, depends;
	char why[8];
	op o = *base;
	o.t = &m->t;
	o.r = m->r;
	m->note[0] = '\0';
	o.note = m->note;
	o.notelen = sizeof(m->note);
	op_names(&o);
	op_result_reset(m->r, attempt - b->warm_rounds);
	session_track(base->sess, i);
	m->rc = attempt_for(m->q.kind)(&o, &m->q);
	m->two_step = o.two_step;
	if (session_warm(base->sess)) {
		/* from the cache's view: only an update the push applies makes an answer */
		session_verdict(base->sess, i, &wrote, &depends, why, sizeof(why));
		if (m->rc != 0 || !wrote) {
			m->retry = 1;
			metrics_count(METRIC_DIRECT_FALLBACKS);
		}
		return 0;
	}
	if (m->rc == TFGIT_ERROR && m->r->damaged && !rebuilt && !deadline_passed()) {
		core_log("cache %s failed (%s): rebuilding it from the remote", b->cache->path, m->r->message);
		return 1;
	}
	if (m->rc == TFGIT_EUNREACHABLE && m->r->transient && !m->refetched && !deadline_passed()) {
		core_log("%s: trying once more", m->r->message);
		m->refetched = 1;
		m->retry = 1;
	} else if (m->rc == TFGIT_ECONFLICT) {
		m->retry = 1;
	} else {
		session_verdict(base->sess, i, &wrote, &depends, why, sizeof(why));
		if (!depends)
			finish(b, m, m->rc); /* nothing of the batch's updates in it */
	}
	return 0;
}

/* Every member's attempt, GETs first (they read the advertisement only, and are answered at
 * once); 1 when the round is to start again on a rebuilt cache. */
static int attempt_members(batch *b, const op *base, int attempt, int rebuilt)
{
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < b->n; i++) {
			member *m = &b->m[i];
			if (m->done || m->skip || (pass == 0) != (m->q.kind == BATCH_GET))
				continue;
			if (attempt_member(b, base, i, attempt, rebuilt))
				return 1;
		}
	return 0;
}

/* Too late to push: each waiter is answered that nothing was done, truthfully (a push now could
 * land after a waiter gave up on its answer); those waiting for a round of their own too. */
static void too_late(batch *b)
{
	for (size_t i = 0; i < b->n; i++) {
		member *m = &b->m[i];
		if (m->done)
			continue;
		result_message(m->r, "the operation did not finish within %d s (TFGIT_REMOTE_TIMEOUT); "
			       "nothing was changed", b->store->remote.timeout);
		finish(b, m, TFGIT_ETIMEOUT);
	}
}

/* Each member's verdict from the push's per-ref report. A server that refuses a push refuses it
 * whole (a pre-receive hook), or a ref several requests moved (one commit each on a branch): a
 * refusal of an update that others' changes shared is no answer to any one of them; each runs
 * again alone (*solos counts those rounds). 1 when a member lost a compare-and-swap (the next
 * round backs off). */
static int judge_push(batch *b, session *sess, size_t *solos)
{
	size_t writers = 0;
	int lost = 0, wrote, depends;
	for (size_t i = 0; i < b->n; i++) {
		char why[8];
		if (!b->m[i].done && !b->m[i].skip && !b->m[i].retry) {
			session_verdict(sess, i, &wrote, &depends, why, sizeof(why));
			writers += wrote;
		}
	}
	for (size_t i = 0; i < b->n; i++) {
		member *m = &b->m[i];
		char why[sizeof(m->r->message)];
		if (m->done || m->skip)
			continue;
		if (m->retry) {
			lost = 1;
			continue;
		}
		int v = session_verdict(sess, i, &wrote, &depends, why, sizeof(why));
		if (session_warm(sess)) {
			/* from the cache's view: applied, or done again after the advertisement */
			if (v == 0 && wrote && m->rc == 0) {
				metrics_count(METRIC_DIRECT_PUSHES);
				finish(b, m, m->rc);
			} else {
				metrics_count(METRIC_DIRECT_FALLBACKS);
				m->retry = 1;
			}
			continue;
		}
		if (v == TFGIT_ECONFLICT) {
			m->retry = lost = 1;
		} else if (v < 0 && wrote && writers > 1 && !m->solo) {
			m->solo = m->retry = 1;
			(*solos)++;
		} else if (v < 0) {
			snprintf(m->r->message, sizeof(m->r->message), "%s", why);
			finish(b, m, v);
		} else {
			if (m->rc == 0 && m->two_step)
				metrics_count(METRIC_TWO_STEP_WRITES);
			finish(b, m, m->rc);
		}
	}
	return lost;
}

/* Runs the members' attempts on one deferred session (base's, open for the first round); the
 * ones that lost a compare-and-swap again on a new session, at most OP_MAX_ATTEMPTS times (and
 * a round more for each that runs alone after a refusal). */
static void run(batch *b, op *opened)
{
	op base = *opened;
	tfgit_result scratch = {0};
	int rebuilt = 0, push;
	size_t solos = 0;
	base.r = &scratch;
	for (int attempt = 1; plan_round(b, &push); attempt++) {
		if (attempt > OP_MAX_ATTEMPTS + (int)solos + b->warm_rounds) {
			give_up(b, attempt);
			break;
		}
		op_result_reset(&scratch, attempt);
		int rc = 0;
		if (!base.sess || (push && !base.for_push)) { /* a push session serves GETs too */
			base.for_push = push;
			rc = op_connect(&base);
		}
		if (rc < 0) {
			finish_all(b, rc, scratch.message);
			break;
		}
		b->local = session_is_local(base.sess);
		session_defer(base.sess);
		if (attempt_members(b, &base, attempt, rebuilt)) {
			/* the cache may be damaged: a fresh copy, once, and the round again */
			rebuilt = 1;
			session_free(base.sess);
			base.sess = NULL;
			if ((rc = cache_reset(b->cache)) < 0) {
				git_failure(&scratch, rc, "rebuilding the cache");
				finish_all(b, rc, scratch.message);
				break;
			}
			attempt--;
			continue;
		}
		if (deadline_passed()) {
			too_late(b);
			break;
		}
		if (op_window_hook)
			op_window_hook();
		(void)session_push_pending(base.sess, &scratch); /* a failed push is in every verdict */
		int was_warm = session_warm(base.sess);
		int lost = judge_push(b, base.sess, &solos);
		session_free(base.sess); /* the next round looks at the remote again */
		base.sess = NULL;
		b->warm_rounds += was_warm; /* its retries lost no race: no pause, and no attempt spent */
		if (lost && !was_warm)
			op_backoff(attempt);
	}
	session_free(base.sess);
	opened->sess = NULL;
	tfgit_result_free(&scratch);
}

static int count_queued(const char *qdir)
{
	DIR *d = opendir(qdir);
	struct dirent *e;
	int n = 0;
	while (d && (e = readdir(d)) != NULL)
		n += e->d_name[0] == 'r' && e->d_name[1] == '.';
	if (d)
		closedir(d);
	return n;
}

/* The batching window. The clients a batch served are answered together at its end, and most
 * send their next request a moment later; a leader that started at once would take only the
 * requests that were already waiting, and the clients would settle into two halves served in
 * turn (two clients: one at a time, for ever). So the last batch notes its demand: the requests
 * it served and those that queued meanwhile. When that was more than one, the next leader waits
 * until as many are queued, at most an eighth of the last batch's time and WINDOW_MAX_MS.
 * Liveness only: whatever comes later waits for the next batch. A single client (a demand of
 * one) never waits. */
static void window(waiter *w)
{
	char path[4400], text[96], buf[4096];
	long long demand = 0, end = 0, took = 0;
	snprintf(path, sizeof(path), "%s/last", w->qdir);
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return;
	ssize_t got = read(fd, text, sizeof(text) - 1);
	close(fd);
	if (got <= 0)
		return;
	text[got] = '\0';
	long long now = core_now_ms(), limit;
	if (sscanf(text, "%lld %lld %lld", &demand, &end, &took) != 3 || demand < 2 || now - end > 1000)
		return;
	limit = took / 8 < WINDOW_MAX_MS ? took / 8 : WINDOW_MAX_MS;
	long long until = now + limit;
	while (count_queued(w->qdir) < demand && (now = core_now_ms()) < until) {
		struct pollfd pfd = {w->ino, POLLIN, 0};
		if (poll(&pfd, 1, (int)(until - now)) > 0)
			while (read(w->ino, buf, sizeof(buf)) > 0)
				;
	}
}

/* Notes the batch's demand (the requests it served and those queued meanwhile) and its time, for
 * the next leader's window. */
static void note_batch(const char *qdir, size_t n, long long began)
{
	char path[4400], text[96];
	long long now = core_now_ms();
	snprintf(path, sizeof(path), "%s/last", qdir);
	int len = snprintf(text, sizeof(text), "%zu %lld %lld\n", n + (size_t)count_queued(qdir), now,
			   now - began);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd >= 0) {
		if (core_write_all(fd, text, (size_t)len) < 0)
			core_log("group commit: %s cannot be written: %s", path, strerror(errno));
		close(fd);
	}
}

/* Our request as the batch's first member, claimed like the others (so no later holder of the
 * flock takes it); NULL when out of memory. *claim: the path of its claim, removed at the end. */
static member *enlist_own(batch *b, waiter *w, tfgit_result *r, const tfgit_target *t, const batch_request *q,
			  long long deadline, char *claim, size_t claimlen)
{
	member *own = NULL;
	char path[4400];
	if (member_add(b, &own) < 0)
		return NULL;
	snprintf(own->id, sizeof(own->id), "%s", w->id);
	own->own = 1;
	own->q = *q;
	own->t = *t;
	own->r = r;
	own->deadline = deadline;
	own->orphan = !exists(w->qdir, 'r', w->id);
	qpath(path, sizeof(path), w->qdir, 'r', w->id);
	qpath(claim, claimlen, w->qdir, 'c', w->id);
	rename(path, claim);
	return own;
}

/* The candidates: what was queued before the advertisement is asked for, so that it is read
 * after each of them arrived. They are claimed once it has come: while the remote does not
 * answer, they stay queued, and give up at their TFGIT_QUEUE_TIMEOUT as they would behind a
 * request alone (a hanging remote holds one worker, not the pool). 0, or the code of the
 * failed connection (its message in r). */
static int connect_batch(batch *b, op *base, const char *own_id, tfgit_result *r)
{
	int rc;
	gather(b, own_id);
	qsort(b->m, b->n, sizeof(*b->m), by_id); /* arrival order */
	base->may_warm = 1; /* a batch of writes only: a read is answered from the advertisement */
	for (size_t i = 0; i < b->n; i++) {
		base->for_push |= is_writer(b->m[i].q.kind);
		base->may_warm &= is_writer(b->m[i].q.kind);
	}
	/* a batch of reads: their branches alone (ls-refs), when the server speaks protocol v2 */
	if (!base->for_push && (b->reads = calloc(b->n, sizeof(*b->reads))) != NULL &&
	    (b->readp = calloc(b->n, sizeof(*b->readp))) != NULL) {
		size_t k = 0;
		for (size_t i = 0; i < b->n; i++) {
			snprintf(b->reads[k], sizeof(b->reads[k]), "refs/heads/%s", b->m[i].t.ref);
			int seen = 0;
			for (size_t j = 0; j < k; j++)
				seen |= !strcmp(b->reads[j], b->reads[k]);
			if (!seen)
				b->readp[k] = b->reads[k], k++;
		}
		base->read_refs = b->readp;
		base->nread_refs = k;
	}
	if (git_signature_now(&base->sig, b->store->author_name, b->store->author_email) < 0)
		rc = git_failure(base->r, -1, "making the commit signature");
	else
		rc = op_connect(base);
	if (rc < 0) {
		drop_candidates(b);
		snprintf(r->message, sizeof(r->message), "%s", base->r->message);
	} else {
		claim_all(b);
	}
	return rc;
}

/* The batch ends by the earliest deadline of its requests: each is answered within its own
 * (ours, when it has too little time left, is not run: it would cut the others short). Then
 * what cannot run is answered: all but ours when the connection failed (rc < 0), an orphaned
 * force-unlock (whether it ran is unknown). */
static void arm_deadline(batch *b, int rc, tfgit_result *r)
{
	long long first = 0, now = core_now_ms();
	for (size_t i = 0; i < b->n; i++) {
		member *m = &b->m[i];
		m->r = m->own ? r : &m->res;
		if (rc == 0 && m->own && m->deadline && m->deadline - now < DEADLINE_MIN_MS) {
			result_message(r, "the operation did not finish within %d s (TFGIT_REMOTE_TIMEOUT)",
				       b->store->remote.timeout);
			finish(b, m, TFGIT_ETIMEOUT);
		} else if (m->deadline && (!first || m->deadline < first)) {
			first = m->deadline;
		}
	}
	if (first && rc == 0)
		deadline_start_ms(first - core_now_ms() > 1 ? (long)(first - core_now_ms()) : 1);
	for (size_t i = 0; i < b->n; i++) {
		member *m = &b->m[i];
		if (m->done)
			continue;
		if (rc < 0) { /* ours alone: the others stayed queued */
			finish(b, m, rc);
		} else if (m->orphan && force_unlock(&m->q)) {
			result_message(m->r, "the process serving this force-unlock ended before answering; whether "
				       "it removed the lock is unknown: look, and try again");
			finish(b, m, TFGIT_EBUSY);
		} else if (m->orphan) {
			core_log("group commit: running %s again: the process that took it ended before answering "
				 "(or could not write the answer)", m->id);
		}
	}
}

/* The cache after the batch, still under the flock: nothing kept of a remote that could not be
 * reached (as op_run), else its maintenance (as op_end); then the flock goes to the next. */
static void release_cache(cache *c, int rc, const tfgit_result *r, int local, const tfgit_store *store,
			  const tfgit_target *t)
{
	int created = c->created;
	if (rc < 0 && created && (rc == TFGIT_EUNREACHABLE || rc == TFGIT_EDENIED || rc == TFGIT_ETIMEOUT) &&
	    !r->changed)
		cache_discard(c);
	else if (maint_run(c->repo, c->stage, c->path, local) == MAINT_DAMAGED)
		cache_discard(c);
	else
		cache_free(c);
	op_queue_turn(store->cache_dir, t->url);
	op_evict(store, created);
}

/* We hold the flock (c): serve our request and every compatible one queued, answer them all,
 * release the flock. Returns our request's code, its result in r. */
static int lead(waiter *w, cache *c, tfgit_result *r, const tfgit_store *store, const tfgit_target *t,
		const batch_request *q, const char *fp, long long deadline)
{
	batch b = {.store = store, .t = t, .cache = c, .qdir = w->qdir};
	char claim[4400];
	snprintf(b.fp, sizeof(b.fp), "%s", fp);
	/* no sockets_remember() here: batch_run's, before the cache was opened, holds. Made now,
	 * it would count a descriptor libgit2 has open and closes later as old, and the remote's
	 * socket that reuses its number could not be cut at the deadline. */
	window(w);
	long long began = core_now_ms();
	if (!enlist_own(&b, w, r, t, q, deadline, claim, sizeof(claim))) {
		free(b.m);
		cache_free(c);
		op_queue_turn(store->cache_dir, t->url);
		return TFGIT_ERROR;
	}
	tfgit_result scratch = {0};
	op base = {.store = store, .t = t, .cache = c, .r = &scratch};
	int rc = connect_batch(&b, &base, w->id, r);
	arm_deadline(&b, rc, r);
	if (rc == 0)
		run(&b, &base);
	session_free(base.sess);
	git_signature_free(base.sig);
	tfgit_result_free(&scratch);
	note_batch(w->qdir, b.n, began);
	if (b.n > 1) {
		metrics_count(METRIC_BATCHES);
		metrics_add(METRIC_BATCHED_REQUESTS, b.n);
	}
	/* our claim goes while we hold the flock: found after, it would pass for an orphan */
	unlink(claim);
	for (size_t i = 0; i < b.n; i++)
		if (b.m[i].own)
			rc = b.m[i].rc;
	for (size_t i = 0; i < b.n; i++)
		member_free(&b.m[i]);
	free(b.m);
	free(b.reads);
	free(b.readp);
	release_cache(c, rc, r, b.local, store, t);
	return rc;
}

/* Whether the waiter stops waiting now: still queued past its queue or operation deadline (it
 * withdraws), or claimed by a leader late past its deadline. 0 to go on waiting; else the code
 * to answer (EBUSY, ETIMEOUT), its message in r. */
static int gives_up(waiter *w, tfgit_result *r, const tfgit_store *store, long long deadline,
		    long long queue_deadline, int queued, long long now)
{
	int late = deadline_passed() || (deadline && now >= deadline);
	if (queued && ((queue_deadline && now >= queue_deadline) || late) && withdraw(w)) {
		if (late) {
			result_message(r, "the operation did not finish within %d s (TFGIT_REMOTE_TIMEOUT)",
				       store->remote.timeout);
			return TFGIT_ETIMEOUT;
		}
		result_message(r, "the repository is busy: another request has held it for "
			       "TFGIT_QUEUE_TIMEOUT (%d s); try again", store->queue_timeout);
		return TFGIT_EBUSY;
	}
	if (!queued && deadline && now >= deadline + SLACK_MS) {
		/* claimed, and its leader is late past our deadline: we stop waiting (the leader answers
		 * nobody; the next holder of the flock removes the files) */
		char path[4400];
		qpath(path, sizeof(path), w->qdir, 'c', w->id);
		unlink(path);
		result_message(r, "the operation did not finish within %d s (TFGIT_REMOTE_TIMEOUT)",
			       store->remote.timeout);
		return TFGIT_ETIMEOUT;
	}
	return 0;
}

/* Waits up to wait ms for the queue directory's events: *probe when the flock was released
 * ("turn"), *look when our answer was written (both on an overflow). */
static void watch(waiter *w, long long wait, int *probe, int *look)
{
	char buf[4096];
	struct pollfd pfd = {w->ino, POLLIN, 0};
	int ready = poll(&pfd, 1, (int)(wait < 1 ? 1 : wait));
	*probe = *look = 0;
	if (ready <= 0)
		return;
	ssize_t n;
	while ((n = read(w->ino, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + n;) {
			struct inotify_event *ev = (struct inotify_event *)p;
			if (ev->len && !strcmp(ev->name, "turn"))
				*probe = 1;
			else if (ev->len && ev->name[0] == 'a' && !strcmp(ev->name + 2, w->id))
				*look = 1;
			else if (ev->mask & IN_Q_OVERFLOW)
				*probe = *look = 1;
			p += sizeof(*ev) + ev->len;
		}
	}
}

/* Waits for the request's answer, or for the flock to lead a batch with it. */
static int wait_answer(waiter *w, tfgit_result *r, const tfgit_store *store, const tfgit_target *t,
		       const batch_request *q, const char *fp, long long deadline, long long queue_deadline)
{
	char why[400] = "";
	int rc, probe = 1, look = 1;
	long long looked = 0;
	for (;;) {
		/* at least every PROBE_MS, whatever else the directory's events say */
		if (core_now_ms() - looked >= PROBE_MS)
			probe = look = 1;
		if (probe)
			looked = core_now_ms();
		if (look && exists(w->qdir, 'a', w->id) && answer_read(w, r, &rc) == 0)
			return rc;
		long long now = core_now_ms();
		int queued = exists(w->qdir, 'r', w->id);
		if ((rc = gives_up(w, r, store, deadline, queue_deadline, queued, now)) != 0)
			return rc;
		if (probe) {
			cache *c = NULL;
			rc = cache_open(&c, store->cache_dir, t->url, -1, why, sizeof(why));
			if (rc == 0 && c->created)
				metrics_count(METRIC_CACHE_CLONES);
			if (rc == 0) {
				if (exists(w->qdir, 'a', w->id) && answer_read(w, r, &rc) == 0) {
					cache_free(c);
					op_queue_turn(store->cache_dir, t->url);
					return rc;
				}
				return lead(w, c, r, store, t, q, fp, deadline);
			}
			if (rc != TFGIT_EBUSY && withdraw(w)) {
				if (rc == TFGIT_ETIMEOUT)
					result_message(r, "the operation did not finish within %d s (TFGIT_REMOTE_TIMEOUT); "
						       "nothing was changed", store->remote.timeout);
				else
					result_message(r, "the cache for this repository is not usable: %s", why);
				return rc;
			} /* else claimed meanwhile: its leader answers */
		}
		long long wait = PROBE_MS;
		if (queue_deadline && queued && queue_deadline - now < wait)
			wait = queue_deadline - now;
		if (deadline && deadline - now < wait && deadline > now)
			wait = deadline - now;
		watch(w, wait, &probe, &look);
	}
}

int batch_run(tfgit_result *r, const tfgit_store *store, const tfgit_target *t, const batch_request *q)
{
	waiter w = {.fd = -1, .ino = -1};
	char fp[65];
	if (!eligible(store, q) || queue_dir(w.qdir, sizeof(w.qdir), store, t->url) < 0 ||
	    fingerprint(fp, store, t->url) < 0)
		return op_run(r, store, t, mode_of(q->kind), attempt_any, (void *)q);
	/* the watch before the request is queued: no event after it is missed */
	w.ino = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (w.ino < 0 ||
	    inotify_add_watch(w.ino, w.qdir, IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE | IN_ONLYDIR) < 0) {
		waiter_close(&w); /* no inotify (a limit reached): alone, as before */
		return op_run(r, store, t, mode_of(q->kind), attempt_any, (void *)q);
	}
	sockets_remember();
	deadline_start(store->remote.timeout);
	long long start = core_now_ms();
	long long deadline = store->remote.timeout ? start + store->remote.timeout * 1000LL : 0;
	long long queue_deadline = store->queue_timeout ? start + store->queue_timeout * 1000LL : 0;
	if (enqueue(&w, fp, t, q, deadline) < 0) {
		core_log("group commit: the request cannot be queued in %s (%s): served alone", w.qdir,
			 strerror(errno));
		waiter_close(&w);
		deadline_stop();
		return op_run(r, store, t, mode_of(q->kind), attempt_any, (void *)q);
	}
	int rc = wait_answer(&w, r, store, t, q, fp, deadline, queue_deadline);
	/* our files: gone whatever happened (a leader's claim of ours ended with its answer) */
	char path[4400];
	const char kinds[] = {'r', 'c', 'a'}; /* c before a: see answer_read */
	for (size_t i = 0; i < sizeof(kinds); i++) {
		qpath(path, sizeof(path), w.qdir, kinds[i], w.id);
		unlink(path);
	}
	waiter_close(&w);
	deadline_stop();
	return rc;
}
