/* One request: its parameters copied out of the server's environment, its body, its outcome. */
#include <stdlib.h>
#include <string.h>

#include <fcgiapp.h>

#include "request.h"

/* A parameter's copy; NULL when absent (or empty, where empty means absent). */
static char *param_dup(char **envp, const char *name, int keep_empty)
{
	const char *v = FCGX_GetParam(name, envp);
	return v && (keep_empty || *v) ? strdup(v) : NULL;
}

/* GitLab's layout: the lock address is the state's address with /lock appended. The web
 * server says which path was asked for: PATH_INFO below a script (Apache), else the path
 * (nginx's DOCUMENT_URI, or REQUEST_URI without its query). */
static int is_lock_address(char **envp, int *unknown)
{
	static const char suffix[] = "/lock";
	const char *p = FCGX_GetParam("PATH_INFO", envp);
	*unknown = 0;
	if (p && *p) {
		*unknown = strcmp(p, suffix) != 0; /* a typo must not reach the state's address */
		return !*unknown;
	}
	size_t n;
	if ((p = FCGX_GetParam("DOCUMENT_URI", envp)) && *p)
		n = strlen(p);
	else if ((p = FCGX_GetParam("REQUEST_URI", envp)) && *p)
		n = strcspn(p, "?");
	else
		return 0;
	return n >= sizeof(suffix) - 1 && !memcmp(p + n - (sizeof(suffix) - 1), suffix, sizeof(suffix) - 1);
}

int request_init(struct request *req, char **envp, const struct request_io *io)
{
	memset(req, 0, sizeof(*req));
	clock_gettime(CLOCK_MONOTONIC, &req->start);
	req->io = *io;
	req->content_length = -1;
	req->method = param_dup(envp, "REQUEST_METHOD", 1);
	req->query_string = param_dup(envp, "QUERY_STRING", 1);
	req->content_md5 = param_dup(envp, "HTTP_CONTENT_MD5", 1);
	req->remote_user = param_dup(envp, "REMOTE_USER", 0);
	req->remote_addr = param_dup(envp, "REMOTE_ADDR", 0);
	req->lock_address = is_lock_address(envp, &req->unknown_address);
	const char *cl = FCGX_GetParam("CONTENT_LENGTH", envp);
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
		int got = req->io.read(req->io.ctx, req->body + req->body_len,
				       (int)(room > 1 << 20 ? 1 << 20 : room));
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
	return 0;
}

void request_free(struct request *req)
{
	free(req->method);
	free(req->query_string);
	free(req->content_md5);
	free(req->remote_user);
	free(req->remote_addr);
	free(req->body);
	query_free(&req->q);
	tfgit_result_free(&req->result);
	memset(req, 0, sizeof(*req));
}
