/* An HTTP/1.1 response read as it arrives (httpresponse.h); RFC 9112's framing, strictly: what
 * it cannot frame for certain is an error, and the connection is then not reused. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "httpresponse.h"

enum { P_STATUS, P_HEADERS, P_LENGTH, P_CHUNK_SIZE, P_CHUNK_DATA, P_CHUNK_END, P_TRAILERS, P_UNTIL_CLOSE,
       P_DONE, P_ERROR };

#define CHUNK_MAX (1LL << 40)

void hr_init(http_response *h)
{
	memset(h, 0, sizeof(*h));
	h->phase = P_STATUS;
	h->length = -1;
}

int hr_complete(const http_response *h)
{
	return h->phase == P_DONE;
}

int hr_headers_read(const http_response *h)
{
	return h->phase > P_HEADERS && h->phase != P_ERROR;
}

static hr_event failed(http_response *h, const char *why)
{
	h->phase = P_ERROR;
	h->why = why;
	h->keep = 0;
	return HR_ERROR;
}

/* Strips spaces and tabs on both ends of [*v, *v + *n). */
static void trim(const char **v, size_t *n)
{
	while (*n && (**v == ' ' || **v == '\t')) {
		(*v)++;
		(*n)--;
	}
	while (*n && ((*v)[*n - 1] == ' ' || (*v)[*n - 1] == '\t'))
		(*n)--;
}

/* 1 when the comma-separated list [v, v + n) holds token (any case). */
static int has_token(const char *v, size_t n, const char *token)
{
	size_t tl = strlen(token);
	while (n) {
		const char *comma = memchr(v, ',', n);
		size_t k = comma ? (size_t)(comma - v) : n;
		const char *t = v;
		size_t tn = k;
		trim(&t, &tn);
		if (tn == tl && !strncasecmp(t, token, tl))
			return 1;
		v += k;
		n -= k;
		if (n) {
			v++;
			n--;
		}
	}
	return 0;
}

/* The last token of a comma-separated list is "chunked": 1; another coding: -1; none: 0. */
static int last_is_chunked(const char *v, size_t n)
{
	const char *comma = NULL;
	for (size_t i = 0; i < n; i++)
		if (v[i] == ',')
			comma = v + i;
	const char *t = comma ? comma + 1 : v;
	size_t tn = n - (size_t)(t - v);
	trim(&t, &tn);
	if (tn == 7 && !strncasecmp(t, "chunked", 7))
		return 1;
	return tn || comma ? -1 : 0;
}

static hr_event status_line(http_response *h, const char *l, size_t n)
{
	/* HTTP/1.x SSS[ reason] */
	if (n < 12 || memcmp(l, "HTTP/1.", 7) || (l[7] != '0' && l[7] != '1') || l[8] != ' ' ||
	    l[9] < '1' || l[9] > '5' || l[10] < '0' || l[10] > '9' || l[11] < '0' || l[11] > '9' ||
	    (n > 12 && l[12] != ' '))
		return failed(h, "the answer is not an HTTP/1.x status line");
	h->status = (l[9] - '0') * 100 + (l[10] - '0') * 10 + (l[11] - '0');
	h->keep = l[7] == '1';
	h->chunked = 0;
	h->length = -1;
	h->content_type[0] = '\0';
	h->phase = P_HEADERS;
	return HR_MORE;
}

static hr_event end_of_headers(http_response *h)
{
	if (h->status >= 100 && h->status < 200) {
		if (h->status == 101)
			return failed(h, "the server switched protocols");
		h->phase = P_STATUS; /* an interim answer: the final one follows */
		return HR_MORE;
	}
	if (h->status == 204 || h->status == 304 || (!h->chunked && h->length == 0)) {
		h->phase = P_DONE;
		return HR_DONE;
	}
	if (h->chunked) {
		h->phase = P_CHUNK_SIZE;
	} else if (h->length > 0) {
		h->left = h->length;
		h->phase = P_LENGTH;
	} else {
		h->keep = 0; /* delimited by the close */
		h->phase = P_UNTIL_CLOSE;
	}
	return HR_MORE;
}

static hr_event header_line(http_response *h, const char *l, size_t n)
{
	if (n == 0)
		return end_of_headers(h);
	if (l[0] == ' ' || l[0] == '\t')
		return failed(h, "a folded header line");
	const char *colon = memchr(l, ':', n);
	if (!colon || colon == l)
		return failed(h, "a header line without a name");
	size_t nl = (size_t)(colon - l);
	for (size_t i = 0; i < nl; i++)
		if (l[i] <= ' ' || l[i] >= 0x7f)
			return failed(h, "a header name with spaces or control characters");
	const char *v = colon + 1;
	size_t vn = n - nl - 1;
	trim(&v, &vn);
	if (nl == 14 && !strncasecmp(l, "content-length", 14)) {
		long long len = 0;
		if (vn == 0 || vn > 15)
			return failed(h, "a Content-Length that is not a number");
		for (size_t i = 0; i < vn; i++) {
			if (v[i] < '0' || v[i] > '9')
				return failed(h, "a Content-Length that is not a number");
			len = len * 10 + (v[i] - '0');
		}
		if (h->length >= 0 && h->length != len)
			return failed(h, "two different Content-Length headers");
		h->length = len;
	} else if (nl == 17 && !strncasecmp(l, "transfer-encoding", 17)) {
		int c = last_is_chunked(v, vn);
		if (c < 0 || h->chunked)
			return failed(h, "a transfer coding other than chunked");
		h->chunked = c;
	} else if (nl == 10 && !strncasecmp(l, "connection", 10)) {
		if (has_token(v, vn, "close"))
			h->keep = 0;
	} else if (nl == 12 && !strncasecmp(l, "content-type", 12)) {
		size_t k = vn < sizeof(h->content_type) - 1 ? vn : sizeof(h->content_type) - 1;
		memcpy(h->content_type, v, k);
		h->content_type[k] = '\0';
	}
	if (h->chunked && h->length >= 0)
		h->keep = 0; /* both: the length is ignored, and the connection closed after */
	return HR_MORE;
}

static hr_event chunk_size_line(http_response *h, const char *l, size_t n)
{
	long long size = 0;
	size_t i = 0;
	for (; i < n; i++) {
		char c = l[i];
		int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
			: c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
		if (d < 0)
			break;
		size = size * 16 + d;
		if (size > CHUNK_MAX)
			return failed(h, "a chunk too large");
	}
	if (i == 0 || (i < n && l[i] != ';' && l[i] != ' ' && l[i] != '\t'))
		return failed(h, "a chunk size that is not hexadecimal");
	if (size == 0) {
		h->phase = P_TRAILERS;
	} else {
		h->left = size;
		h->phase = P_CHUNK_DATA;
	}
	return HR_MORE;
}

/* A whole line in h->line (the '\n' and a '\r' before it removed). */
static hr_event line_done(http_response *h)
{
	const char *l = h->line;
	size_t n = h->linelen;
	h->linelen = 0;
	if (n && l[n - 1] == '\r')
		n--;
	switch (h->phase) {
	case P_STATUS:
		return status_line(h, l, n);
	case P_HEADERS:
		return header_line(h, l, n);
	case P_CHUNK_SIZE:
		return chunk_size_line(h, l, n);
	case P_CHUNK_END:
		if (n)
			return failed(h, "a chunk longer than its size");
		h->phase = P_CHUNK_SIZE;
		return HR_MORE;
	case P_TRAILERS:
		if (n)
			return HR_MORE; /* a trailer: not read */
		h->phase = P_DONE;
		return HR_DONE;
	default:
		return failed(h, "an internal state");
	}
}

static int reads_lines(int phase)
{
	return phase == P_STATUS || phase == P_HEADERS || phase == P_CHUNK_SIZE || phase == P_CHUNK_END ||
	       phase == P_TRAILERS;
}

hr_event hr_feed(http_response *h, const char *in, size_t len, size_t *used, const char **body,
		 size_t *bodylen)
{
	size_t i = 0;
	*used = 0;
	*body = NULL;
	*bodylen = 0;
	if (h->phase == P_ERROR)
		return HR_ERROR;
	if (h->phase == P_DONE)
		return HR_DONE;
	if (len == 0) {
		if (h->phase == P_UNTIL_CLOSE) {
			h->phase = P_DONE;
			return HR_DONE;
		}
		return failed(h, "the connection ended before the answer was whole");
	}
	while (i < len) {
		if (reads_lines(h->phase)) {
			const char *nl = memchr(in + i, '\n', len - i);
			size_t k = nl ? (size_t)(nl - (in + i)) : len - i;
			if (h->linelen + k > HR_LINE_MAX - 1)
				return failed(h, "a line too long");
			if (h->phase == P_STATUS || h->phase == P_HEADERS || h->phase == P_TRAILERS) {
				h->header_bytes += k + (nl != NULL);
				if (h->header_bytes > HR_HEADERS_MAX)
					return failed(h, "headers too long");
			}
			memcpy(h->line + h->linelen, in + i, k);
			h->linelen += k;
			i += k;
			if (!nl)
				break;
			i++; /* the '\n' */
			hr_event e = line_done(h);
			if (e != HR_MORE) {
				*used = i;
				return e;
			}
			continue;
		}
		/* body bytes: P_LENGTH, P_CHUNK_DATA, P_UNTIL_CLOSE */
		size_t k = len - i;
		if (h->phase != P_UNTIL_CLOSE && (long long)k > h->left)
			k = (size_t)h->left;
		*body = in + i;
		*bodylen = k;
		i += k;
		if (h->phase != P_UNTIL_CLOSE) {
			h->left -= (long long)k;
			if (h->left == 0)
				h->phase = h->phase == P_LENGTH ? P_DONE : P_CHUNK_END;
		}
		*used = i;
		return HR_BODY;
	}
	*used = i;
	return HR_MORE;
}
