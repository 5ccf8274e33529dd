/* Kept connections and the push request made on them (keepalive.h).
 *
 * Bounds: at most KEEP_ORIGINS connections per process (one per server), each idle at most
 * KEEP_IDLE_MS and used for at most KEEP_USES requests; a connection is kept only after its
 * answer was read to the last byte (httpresponse.c frames it) and the server did not say
 * "close". A kept connection the server closed meanwhile is found readable before it is used
 * (httpstream_idle) and replaced; one it closes as the request goes out fails before any answer
 * byte, and the caller may make the request again (keepalive_closed_under). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "deadline.h"
#include "httpresponse.h"
#include "httpstream.h"
#include "keepalive.h"

#define KEEP_ORIGINS 4
#define KEEP_IDLE_MS 30000
#define KEEP_USES 500
#define DRAIN_MAX 65536 /* what is left of an answer after its use is read, up to this: then closed */
static const struct {
	const char *path, *request, *result, *extra;
} services[] = {
	[KEEPALIVE_RECEIVE_PACK] = {"/git-receive-pack", "application/x-git-receive-pack-request",
				    "application/x-git-receive-pack-result", ""},
	[KEEPALIVE_UPLOAD_PACK_V2] = {"/git-upload-pack", "application/x-git-upload-pack-request",
				      "application/x-git-upload-pack-result", "Git-Protocol: version=2\r\n"},
};

static struct kept {
	git_stream *st;
	char origin[300];
	long long since; /* idle since, ms */
	int uses;
} kept[KEEP_ORIGINS];

struct keepalive_request {
	git_smart_subtransport_stream parent; /* first: libgit2's stream shape */
	git_stream *st;
	char origin[300];
	int uses;
	keepalive_service service;
	int reused;
	int ended;       /* the request's last chunk went out */
	int answered;    /* a byte of the answer came */
	int checked;     /* its status and type */
	int complete;    /* read to its last byte */
	int failed;
	http_response resp;
	const char *pending; /* body bytes read and not yet handed out (into in) */
	size_t pendlen;
	char in[16384];
	size_t inlen, inoff;
};

static void close_stream(git_stream *st)
{
	if (st) {
		st->close(st);
		st->free(st);
	}
}

/* The kept connection to origin, if it is still fit for a request; it leaves the pool. */
static git_stream *take(const char *origin, int *uses)
{
	long long now = core_now_ms();
	for (size_t i = 0; i < KEEP_ORIGINS; i++) {
		struct kept *k = &kept[i];
		if (!k->st || strcmp(k->origin, origin))
			continue;
		git_stream *st = k->st;
		int fit = now - k->since <= KEEP_IDLE_MS && k->uses < KEEP_USES && httpstream_idle(st);
		k->st = NULL;
		if (fit) {
			*uses = k->uses;
			return st;
		}
		close_stream(st);
	}
	return NULL;
}

/* Keeps st for origin, in place of the one idle longest. */
static void give(git_stream *st, const char *origin, int uses)
{
	struct kept *slot = &kept[0];
	for (size_t i = 0; i < KEEP_ORIGINS; i++) {
		if (!kept[i].st || !strcmp(kept[i].origin, origin)) {
			slot = &kept[i];
			break;
		}
		if (kept[i].since < slot->since)
			slot = &kept[i];
	}
	close_stream(slot->st);
	slot->st = st;
	snprintf(slot->origin, sizeof(slot->origin), "%s", origin);
	slot->since = core_now_ms();
	slot->uses = uses;
}

static int send_all(keepalive_request *q, const char *data, size_t len)
{
	while (len) {
		ssize_t n = q->st->write(q->st, data, len, 0);
		if (n <= 0) {
			q->failed = 1;
			if (n == 0)
				git_error_set(GIT_ERROR_NET, "the connection to the repository closed");
			return -1;
		}
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

/* A chunk of the body: its size line, its bytes and their line end in one write (a write that
 * starts a request is recognised by its first bytes; a chunk starts with hex digits). */
static int write_chunk(git_smart_subtransport_stream *stream, const char *buf, size_t len)
{
	keepalive_request *q = (keepalive_request *)stream;
	if (q->failed || q->ended) {
		git_error_set(GIT_ERROR_NET, "the push request is over");
		return -1;
	}
	if (len == 0)
		return 0;
	char *chunk = malloc(len + 24);
	if (!chunk) {
		git_error_set_oom();
		return -1;
	}
	int n = snprintf(chunk, 24, "%zx\r\n", len);
	memcpy(chunk + n, buf, len);
	memcpy(chunk + n + len, "\r\n", 2);
	int err = send_all(q, chunk, (size_t)n + len + 2);
	free(chunk);
	return err;
}

/* The answer's status and type, once its headers are read: 0, or -1 (not a push result). */
static int check_answer(keepalive_request *q)
{
	if (q->resp.status != 200) {
		git_error_set(GIT_ERROR_NET, "the repository answered HTTP %d to %s", q->resp.status,
			      services[q->service].path + 1);
		return -1;
	}
	const char *want = services[q->service].result;
	if (strncasecmp(q->resp.content_type, want, strlen(want)) != 0) {
		git_error_set(GIT_ERROR_NET, "the repository's answer to %s is not %s", services[q->service].path + 1, want);
		return -1;
	}
	return 0;
}

static int read_body(git_smart_subtransport_stream *stream, char *buf, size_t size, size_t *got)
{
	keepalive_request *q = (keepalive_request *)stream;
	*got = 0;
	if (q->failed)
		return -1;
	if (!q->ended) {
		q->ended = 1;
		if (send_all(q, "0\r\n\r\n", 5) < 0)
			return -1;
	}
	for (;;) {
		if (q->pendlen) {
			size_t k = q->pendlen < size ? q->pendlen : size;
			memcpy(buf, q->pending, k);
			q->pending += k;
			q->pendlen -= k;
			*got = k;
			return 0;
		}
		if (q->complete)
			return 0; /* *got = 0: the end of the body */
		if (q->inoff == q->inlen) {
			ssize_t n = q->st->read(q->st, q->in, sizeof(q->in));
			if (n < 0) {
				q->failed = 1;
				return -1;
			}
			q->inlen = (size_t)n;
			q->inoff = 0;
			q->answered |= n > 0;
		}
		size_t used, blen;
		const char *body;
		hr_event e = hr_feed(&q->resp, q->in + q->inoff, q->inlen - q->inoff, &used, &body, &blen);
		q->inoff += used;
		if (e == HR_ERROR) {
			q->failed = 1;
			git_error_set(GIT_ERROR_NET, "the repository's answer to %s: %s", services[q->service].path + 1,
				      q->resp.why);
			return -1;
		}
		if (!q->checked && hr_headers_read(&q->resp)) {
			q->checked = 1;
			if (check_answer(q) < 0) {
				q->failed = 1;
				return -1;
			}
		}
		if (e == HR_DONE || hr_complete(&q->resp))
			q->complete = 1; /* the last body bytes may come with the end: no read waits */
		if (e == HR_BODY) {
			q->pending = body;
			q->pendlen = blen;
		}
	}
}

static void free_request(git_smart_subtransport_stream *stream)
{
	(void)stream; /* keepalive_done frees it */
}

int keepalive_post(keepalive_request **out, keepalive_service service, const char *header, int lax,
		   keepalive_cert_fn check, void *payload)
{
	char head[4096];
	keepalive_request *q = calloc(1, sizeof(*q));
	*out = NULL;
	if (!q) {
		git_error_set_oom();
		return -1;
	}
	q->parent.read = read_body;
	q->parent.write = write_chunk;
	q->parent.free = free_request;
	q->service = service;
	hr_init(&q->resp);
	int n = httpstream_request_head(head, sizeof(head), "POST", services[service].path);
	size_t len = n == 0 ? strlen(head) : 0;
	if (n < 0 || httpstream_origin(q->origin, sizeof(q->origin) - 8) < 0 ||
	    snprintf(head + len, sizeof(head) - len,
		     "User-Agent: git/2.0 (tfgit)\r\nContent-Type: %s\r\nAccept: %s\r\n%sTransfer-Encoding: chunked\r\n"
		     "%s%s\r\n", services[service].request, services[service].result, services[service].extra,
		     header ? header : "", header ? "\r\n" : "") >= (int)(sizeof(head) - len)) {
		explicit_bzero(head, sizeof(head));
		free(q);
		git_error_set(GIT_ERROR_NET, "the request does not fit");
		return -1;
	}
	if (lax) /* what a connection accepted without verifying serves only what may do that */
		strcat(q->origin, " lax");
	if ((q->st = take(q->origin, &q->uses)) != NULL) {
		q->reused = 1;
	} else {
		int err = httpstream_open(&q->st);
		if (err == GIT_ECERTIFICATE) {
			git_cert *cert = NULL;
			char host[300];
			snprintf(host, sizeof(host), "%s", strstr(q->origin, "://") + 3);
			*strrchr(host, ':') = '\0';
			err = q->st->certificate(&cert, q->st) < 0 || !check || check(cert, 0, host, payload) != 0 ? -1 : 0;
			if (err < 0 && !git_error_last())
				git_error_set(GIT_ERROR_SSL, "the TLS certificate of %s is not valid", host);
		}
		if (err < 0) {
			close_stream(q->st);
			explicit_bzero(head, sizeof(head));
			free(q);
			return -1;
		}
	}
	q->uses++;
	/* the header block in one write, as httpstream.c requires of a request */
	if (send_all(q, head, strlen(head)) < 0) {
		explicit_bzero(head, sizeof(head));
		*out = q;
		return -1;
	}
	explicit_bzero(head, sizeof(head));
	*out = q;
	return 0;
}

git_smart_subtransport_stream *keepalive_stream(keepalive_request *q)
{
	return &q->parent;
}

int keepalive_closed_under(const keepalive_request *q)
{
	return q && q->reused && q->failed && !q->answered;
}

int keepalive_status(const keepalive_request *q)
{
	return q && hr_headers_read(&q->resp) ? q->resp.status : 0;
}

void keepalive_done(keepalive_request *q)
{
	if (!q)
		return;
	/* the rest of a whole answer (a flush after the report) is read, so the next starts clean */
	char scratch[512];
	size_t got = 0, drained = 0;
	while (!q->failed && q->ended && !q->complete && !deadline_passed() && drained < DRAIN_MAX) {
		if (read_body(&q->parent, scratch, sizeof(scratch), &got) < 0)
			break;
		drained += got;
	}
	int whole = !q->failed && q->complete && q->resp.keep && q->inoff == q->inlen && !q->pendlen;
	if (whole)
		give(q->st, q->origin, q->uses);
	else
		close_stream(q->st);
	free(q);
}

void keepalive_close_all(void)
{
	for (size_t i = 0; i < KEEP_ORIGINS; i++) {
		close_stream(kept[i].st);
		kept[i].st = NULL;
	}
}
