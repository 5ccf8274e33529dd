/* One request: its parameters copied out of the server's environment, its body, its outcome. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <unistd.h>

#include <fcgiapp.h>

#include "request.h"

/* A parameter's copy; NULL when absent (or empty, where empty means absent). */
static char *param_dup(char **envp, const char *name, int keep_empty)
{
	const char *v = FCGX_GetParam(name, envp);
	return v && (keep_empty || *v) ? strdup(v) : NULL;
}

struct server_info server_info = {"cgi", 1, 0};

/* The address asked for. The web server says which path was asked for: PATH_INFO below a script
 * (Apache), else the path (nginx's DOCUMENT_URI, or REQUEST_URI without its query), whose last
 * segment names the address (the location admits only those). */
static enum address address_of(char **envp)
{
	static const struct {
		const char *suffix;
		enum address address;
	} below[] = {{"/lock", LOCK_ADDRESS}, {"/metrics", METRICS_ADDRESS}, {"/health", HEALTH_ADDRESS},
		     {"/ui/", UI_REPOSITORY_ADDRESS}, {"/ui/state", UI_STATE_ADDRESS},
		     {"/ui/version", UI_VERSION_ADDRESS}, {"/ui/style.css", UI_STYLE_ADDRESS},
		     {"/ui", UI_BARE_ADDRESS}};
	const char *p = FCGX_GetParam("PATH_INFO", envp);
	size_t n;
	if (p && *p) {
		for (size_t i = 0; i < sizeof(below) / sizeof(below[0]); i++)
			if (!strcmp(p, below[i].suffix))
				return below[i].address;
		return UNKNOWN_ADDRESS; /* a typo must not reach the state's address */
	}
	if ((p = FCGX_GetParam("DOCUMENT_URI", envp)) && *p)
		n = strlen(p);
	else if ((p = FCGX_GetParam("REQUEST_URI", envp)) && *p)
		n = strcspn(p, "?");
	else
		return STATE_ADDRESS;
	for (size_t i = 0; i < sizeof(below) / sizeof(below[0]); i++) {
		size_t len = strlen(below[i].suffix);
		if (n >= len && !memcmp(p + n - len, below[i].suffix, len))
			return below[i].address;
	}
	return STATE_ADDRESS;
}

/* The first of the headers the cross-site check reads that the web server passed more than
 * once (nginx passes each copy as a variable of its own; one of them is all FCGX_GetParam
 * sees), else NULL. */
static const char *repeated_header(char **envp)
{
	static const char *const names[] = {"HTTP_ORIGIN=", "HTTP_SEC_FETCH_SITE=", "HTTP_CONTENT_TYPE="};
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		int n = 0;
		for (char **p = envp; p && *p; p++)
			n += strncmp(*p, names[i], strlen(names[i])) == 0;
		if (n > 1)
			return names[i];
	}
	return NULL;
}

/* How the client reached the web server: HTTPS=on (nginx's $https, Apache's mod_ssl), else
 * REQUEST_SCHEME, else plain HTTP. */
static const char *scheme_of(char **envp)
{
	const char *https = FCGX_GetParam("HTTPS", envp), *scheme = FCGX_GetParam("REQUEST_SCHEME", envp);
	if ((https && !strcasecmp(https, "on")) || (scheme && !strcasecmp(scheme, "https")))
		return "https";
	return "http";
}

/* 16 hex digits from the kernel's random source (a clock-and-pid mix if it fails). */
static void new_id(char out[17])
{
	unsigned char b[8];
	if (getrandom(b, sizeof(b), GRND_NONBLOCK) != (ssize_t)sizeof(b)) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		unsigned long long v = ((unsigned long long)ts.tv_nsec << 20) ^ (unsigned long long)ts.tv_sec ^
				       ((unsigned long long)getpid() << 40) ^ (unsigned long long)random();
		memcpy(b, &v, sizeof(b));
	}
	for (size_t i = 0; i < sizeof(b); i++)
		snprintf(out + 2 * i, 3, "%02x", b[i]);
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
	req->content_type = param_dup(envp, "CONTENT_TYPE", 0);
	req->origin = param_dup(envp, "HTTP_ORIGIN", 1);
	req->sec_fetch_site = param_dup(envp, "HTTP_SEC_FETCH_SITE", 1);
	req->host = param_dup(envp, "HTTP_HOST", 0);
	req->server_port = param_dup(envp, "SERVER_PORT", 0);
	req->scheme = scheme_of(envp);
	req->repeated = repeated_header(envp);
	req->address = address_of(envp);
	new_id(req->id);
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
	free(req->content_type);
	free(req->origin);
	free(req->sec_fetch_site);
	free(req->host);
	free(req->server_port);
	free(req->body);
	query_free(&req->q);
	tfgit_result_free(&req->result);
	memset(req, 0, sizeof(*req));
}
