/* One FastCGI request: its parameters copied out of libfcgi, its body, its outcome. */
#include <stdlib.h>
#include <string.h>

#include "request.h"

static char *param_dup(FCGX_Request *fcgi, const char *name)
{
	const char *v = FCGX_GetParam(name, fcgi->envp);
	return v ? strdup(v) : NULL;
}

int request_init(struct request *req, FCGX_Request *fcgi)
{
	memset(req, 0, sizeof(*req));
	clock_gettime(CLOCK_MONOTONIC, &req->start);
	req->fcgi = fcgi;
	req->content_length = -1;
	req->method = param_dup(fcgi, "REQUEST_METHOD");
	req->query_string = param_dup(fcgi, "QUERY_STRING");
	req->content_md5 = param_dup(fcgi, "HTTP_CONTENT_MD5");
	const char *cl = FCGX_GetParam("CONTENT_LENGTH", fcgi->envp);
	if (cl && *cl) {
		char *end;
		long long v = strtoll(cl, &end, 10);
		if (!*end && v >= 0)
			req->content_length = v;
	}
	if (!req->method)
		req->method = strdup("");
	return req->method ? 0 : -1;
}

/* Grows req->body to hold at least need bytes, never past limit; 0, 1 when limit is reached,
 * -1 when out of memory. */
static int body_reserve(struct request *req, size_t *cap, size_t need, size_t limit)
{
	if (req->body && need <= *cap)
		return 0;
	size_t ncap = *cap ? *cap : 65536;
	while (ncap < need)
		ncap *= 2;
	if (ncap > limit)
		ncap = limit;
	if (ncap < need)
		return 1;
	char *nb = realloc(req->body, ncap);
	if (!nb)
		return -1;
	req->body = nb;
	*cap = ncap;
	return 0;
}

int request_read_body(struct request *req, size_t max)
{
	/* room for max + 1 bytes (one more than allowed tells "too large") and a NUL */
	size_t cap = 0, limit = max + 2;
	if (req->content_length >= 0 && (unsigned long long)req->content_length > max)
		return 1;
	if (req->content_length > 0) /* nginx says how much: one allocation, and a byte to see the end */
		cap = (size_t)req->content_length + 2;
	for (;;) {
		int rc = body_reserve(req, &cap, req->body_len + 2, limit);
		if (rc != 0)
			return rc;
		size_t room = cap - 1 - req->body_len;
		int got = FCGX_GetStr(req->body + req->body_len, (int)(room > 1 << 20 ? 1 << 20 : room),
				      req->fcgi->in);
		if (got < 0)
			return -1;
		if (got == 0)
			break;
		req->body_len += (size_t)got;
		if (req->body_len > max)
			return 1;
	}
	if (req->body)
		req->body[req->body_len] = '\0';
	return FCGX_GetError(req->fcgi->in) ? -1 : 0;
}

void request_free(struct request *req)
{
	free(req->method);
	free(req->query_string);
	free(req->content_md5);
	free(req->body);
	query_free(&req->q);
	tfgit_result_free(&req->result);
	memset(req, 0, sizeof(*req));
}
