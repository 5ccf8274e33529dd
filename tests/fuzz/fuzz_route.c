/* Fuzz target: the whole request path of the front — query, method, REMOTE_USER and body
 * through parsing, validation, the allowlists, the ACL and the response — with the git
 * operations replaced by stubs (no remote). Input: "METHOD\nQUERY\nREMOTE_USER\nBODY"; its last byte picks the address
 * (state, /lock or one of the web view's) and the stubs' outcome.
 * Beyond not crashing it checks that a stub is reached only with a target that passed every
 * check, that every answer is a well-formed response whose error bodies are JSON, and that no
 * page of the web view carries markup from the data it shows (the stubs' names hold
 * "<script>" and quotes). */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "../../core/tfgit.h"
#include "../../fcgi/request.h"
#include "../../fcgi/route.h"
#include "../../core/settings.h"

#define OUT_MAX (1 << 20)

static struct {
	char buf[OUT_MAX];
	size_t len;
	const char *body;
	size_t body_len, body_pos;
	unsigned char pick; /* chooses the stubs' outcome */
	int reading;        /* a GET's stub: a read, which a cross-site request may make */
} io;

static int mem_read(void *ctx, char *buf, int n)
{
	(void)ctx;
	size_t left = io.body_len - io.body_pos;
	size_t k = (size_t)n < left ? (size_t)n : left;
	memcpy(buf, io.body + io.body_pos, k);
	io.body_pos += k;
	return (int)k;
}

static void mem_write(void *ctx, const char *buf, int n)
{
	(void)ctx;
	if (n > 0 && io.len + (size_t)n <= OUT_MAX) {
		memcpy(io.buf + io.len, buf, (size_t)n);
		io.len += (size_t)n;
	}
}

/* The core's operations, reached only with a checked target. */
static int stub(tfgit_result *out, const tfgit_target *t)
{
	char why[256];
	if (io.pick & 0x80 && !io.reading)
		abort(); /* a cross-site request changed something */
	if (!t->url || !t->ref || !t->state || tfgit_state_path_check(t->state) < 0 ||
	    tfgit_ref_check(t->ref, t->state) < 0 ||
	    (strcmp(t->url, "/srv/git/default.git") && tfgit_repository_check(t->url, 0, why, sizeof(why)) < 0))
		abort(); /* an unchecked target reached the core */
	static const int codes[] = {TFGIT_OK, TFGIT_ENOTFOUND, TFGIT_ELOCKED, TFGIT_ENOLOCK, TFGIT_EEXISTS,
				    TFGIT_EDENIED, TFGIT_EBUSY, TFGIT_ETOOLARGE, TFGIT_ERROR};
	int code = codes[io.pick % (sizeof(codes) / sizeof(codes[0]))];
	if (code == TFGIT_ELOCKED || code == TFGIT_EEXISTS) {
		out->holder.ptr = strdup("{\"ID\":\"x\"}");
		out->holder.size = out->holder.ptr ? 10 : 0;
	}
	if (code == TFGIT_OK && io.pick & 1) {
		out->content.ptr = strdup("{\"version\":4}");
		out->content.size = out->content.ptr ? 13 : 0;
	}
	snprintf(out->message, sizeof(out->message), "stub \"%s\"\n", t->state);
	return code;
}

int tfgit_state_get(tfgit_result *out, const tfgit_store *s, const tfgit_target *t)
{
	(void)s;
	io.reading = 1;
	return stub(out, t);
}

int tfgit_state_get_version(tfgit_result *out, const tfgit_store *s, const tfgit_target *t, const char *v)
{
	(void)s;
	if (!v || strlen(v) > 4096)
		abort(); /* the query parser bounds it */
	io.reading = 1;
	return stub(out, t);
}

int tfgit_state_put(tfgit_result *out, const tfgit_store *s, const tfgit_target *t, const char *id,
		    const char *body, size_t len, int amend)
{
	(void)s, (void)id, (void)amend;
	if (!body || !len)
		abort(); /* POST bodies are checked first */
	return stub(out, t);
}

int tfgit_state_put_owned(tfgit_result *out, const tfgit_store *s, const tfgit_target *t, const char *id,
			  tfgit_buf *body, int amend)
{
	(void)s, (void)id, (void)amend;
	if (!body->ptr || !body->size)
		abort(); /* POST bodies are checked first */
	return stub(out, t);
}

int tfgit_state_delete(tfgit_result *out, const tfgit_store *s, const tfgit_target *t, const char *id)
{
	(void)s, (void)id;
	return stub(out, t);
}

int tfgit_lock(tfgit_result *out, const tfgit_store *s, const tfgit_target *t, const char *body, size_t len)
{
	(void)s, (void)body;
	if (len > 65536)
		abort(); /* lock bodies are bounded */
	return stub(out, t);
}

int tfgit_unlock(tfgit_result *out, const tfgit_store *s, const tfgit_target *t, const char *body, size_t len)
{
	(void)s, (void)body;
	if (len > 65536)
		abort();
	return stub(out, t);
}

/* The web view's reads: a branch's target has no state. */
static void check_branch(const tfgit_target *t)
{
	char why[256];
	if (!t->url || !t->ref || tfgit_ref_check(t->ref, NULL) < 0 ||
	    (strcmp(t->url, "/srv/git/default.git") && tfgit_repository_check(t->url, 0, why, sizeof(why)) < 0))
		abort();
}

static const char hostile[] = "envs/<script>alert(1)</script>\"'&.tfstate";

int tfgit_states(tfgit_result *out, const tfgit_store *s, const tfgit_target *t, tfgit_state_entry **list, size_t *n)
{
	(void)s, (void)out;
	check_branch(t);
	*n = io.pick & 2 ? 2 : 0;
	*list = calloc(2, sizeof(**list));
	if (!*list)
		abort();
	for (size_t i = 0; i < 2; i++) {
		tfgit_state_entry *e = &(*list)[i];
		snprintf(e->state, sizeof(e->state), "%s", i ? "public/x.tfstate" : hostile);
		snprintf(e->terraform_version, sizeof(e->terraform_version), "<b>1.11</b>");
		snprintf(e->last.who, sizeof(e->last.who), "<img src=x onerror=alert(1)>");
		snprintf(e->last.lock_id, sizeof(e->last.lock_id), "the-lock\"><script>");
		e->locked = (int)i;
		snprintf(e->lock.id, sizeof(e->lock.id), "the-lock\"><script>");
		snprintf(e->lock.who, sizeof(e->lock.who), "<script>who</script>");
	}
	return io.pick & 4 ? TFGIT_ENOTFOUND : TFGIT_OK;
}

int tfgit_history_page(tfgit_result *out, const tfgit_store *s, const tfgit_target *t, size_t skip, size_t limit,
		       tfgit_version **list, size_t *n, size_t *total, tfgit_lock_entry *lock, int *locked)
{
	(void)s, (void)skip, (void)limit;
	memset(lock, 0, sizeof(*lock));
	*locked = io.pick & 8 ? 1 : 0;
	snprintf(lock->who, sizeof(lock->who), "<script>holder</script>");
	snprintf(lock->id, sizeof(lock->id), "\"><img src=x>");
	io.reading = 1;
	int rc = stub(out, t);
	*list = calloc(1, sizeof(**list));
	*n = *total = rc == TFGIT_OK && *list ? 1 : 0;
	if (*n) {
		tfgit_version *v = *list;
		snprintf(v->who, sizeof(v->who), "<script>x</script>");
		v->compared = 1;
		v->changes = calloc(1, sizeof(*v->changes));
		v->nchanges = v->changes_total = v->changes ? 1 : 0;
		if (v->changes) {
			v->changes->kind = '~';
			v->changes->address = strdup(hostile);
			v->changes->attributes = strdup("<script>");
		}
	}
	return rc;
}

void tfgit_versions_free(tfgit_version *list, size_t n)
{
	for (size_t i = 0; list && i < n; i++)
		tfgit_diff_free(list[i].changes, list[i].nchanges);
	free(list);
}

int tfgit_locks(tfgit_result *out, const tfgit_store *s, const tfgit_target *t, tfgit_lock_entry **list, size_t *n)
{
	(void)s, (void)out;
	check_branch(t);
	*list = NULL;
	*n = 0;
	return TFGIT_OK;
}

static struct settings cfg;

static char acl[] = "/tmp/tfgit-fuzz-acl.XXXXXX", cache[] = "/tmp/tfgit-fuzz-cache.XXXXXX";

/* Nothing of the run is left behind: the ACL file, the cache directory (the metrics and failures
 * files). */
static void teardown(void)
{
	char metrics[sizeof(cache) + 32];
	unlink(acl);
	snprintf(metrics, sizeof(metrics), "%s/.metrics-v1", cache);
	unlink(metrics);
	snprintf(metrics, sizeof(metrics), "%s/.failures-v1", cache); /* the failed requests' file */
	unlink(metrics);
	rmdir(cache);
}

static void setup(void)
{
	static int done;
	if (done)
		return;
	done = 1;
	if (!mkdtemp(cache))
		abort();
	setenv("TFGIT_CACHE_DIR", cache, 1);
	int fd = mkstemp(acl);
	atexit(teardown);
	const char *grants = "alice all * *\nbob read,lock http://127.0.0.1:*/allowed/*.git envs/\n"
			     "* read * public/\nanonymous read /srv/git/*.git *\n";
	if (fd < 0 || write(fd, grants, strlen(grants)) < 0)
		abort();
	close(fd);
	setenv("TFGIT_DEFAULT_REPOSITORY", "/srv/git/default.git", 1);
	setenv("TFGIT_ALLOWED_REPOS", "http://127.0.0.1:*/allowed/*.git /srv/git/*.git git@host:infra/*.git", 1);
	setenv("TFGIT_ALLOWED_STATES", "*.tfstate envs/* public/*", 1);
	setenv("TFGIT_ACL_FILE", acl, 1);
	setenv("TFGIT_MAX_BODY", "1048576", 1);
	char why[640];
	if (tfgit_init(NULL) < 0 || settings_load(&cfg, NULL, 0, why, sizeof(why)) < 0) /* libgit2 checks branch names */
		abort();
}

/* The response: a status line and headers; an error status carries a JSON body. */
static void check_response(void)
{
	int status = 0;
	if (io.len < 12 || sscanf(io.buf, "Status: %d ", &status) != 1 || status < 200 || status > 599)
		abort();
	const char *end = memmem(io.buf, io.len, "\r\n\r\n", 4);
	if (!end)
		abort();
	const char *body = end + 4;
	size_t len = io.len - (size_t)(body - io.buf);
	int html = memmem(io.buf, (size_t)(end - io.buf), "Content-Type: text/html", 23) != NULL;
	if (html && (memmem(body, len, "<script", 7) || memmem(body, len, "<img", 4) || memmem(body, len, "<b>", 3)))
		abort(); /* markup from the data reached a page */
	if (status >= 400) {
		json_object *obj = json_tokener_parse(len ? body : "");
		if (!obj || !json_object_is_type(obj, json_type_object))
			abort(); /* an error answer that is not JSON */
		json_object_put(obj);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in = malloc(size + 1), *line[3] = {0};
	if (!in)
		return 0;
	setup();
	memcpy(in, data, size);
	in[size] = '\0';
	char *p = in;
	for (int i = 0; i < 3; i++) {
		line[i] = p;
		char *nl = memchr(p, '\n', size - (size_t)(p - in));
		if (!nl) {
			free(in);
			return 0;
		}
		*nl = '\0';
		p = nl + 1;
	}
	char method[64], query[17000], user[300];
	snprintf(method, sizeof(method), "REQUEST_METHOD=%s", line[0]);
	snprintf(query, sizeof(query), "QUERY_STRING=%s", line[1]);
	snprintf(user, sizeof(user), "REMOTE_USER=%s", line[2]);
	memset(&io, 0, sizeof(io));
	io.pick = size ? data[size - 1] : 0;
	/* the last byte also picks the address: the state's, GitLab's lock address, a page */
	static char *const uris[] = {"DOCUMENT_URI=/tfgit", "DOCUMENT_URI=/tfgit/lock", "DOCUMENT_URI=/tfgit/ui/",
				     "DOCUMENT_URI=/tfgit/ui/state", "DOCUMENT_URI=/tfgit/ui/version",
				     "DOCUMENT_URI=/tfgit/ui", "DOCUMENT_URI=/tfgit/ui/style.css", "DOCUMENT_URI=/tfgit"};
	/* its top bit: a browser's cross-site POST (text/plain, another Origin) or Terraform's JSON */
	int cross = io.pick & 0x80;
	char *envp[] = {method, query, user, "REMOTE_ADDR=127.0.0.1", uris[(io.pick >> 4) & 7], "HTTP_HOST=127.0.0.1:8080",
			cross ? "CONTENT_TYPE=text/plain" : "CONTENT_TYPE=application/json",
			cross ? "HTTP_ORIGIN=http://evil.example" : "REQUEST_SCHEME=http", NULL};
	io.body = p;
	io.body_len = size - (size_t)(p - in);
	struct request_io rio = {mem_read, mem_write, NULL};
	struct request req;
	if (request_init(&req, envp, &rio) == 0) {
		route_request(&req, &cfg);
		check_response();
	}
	request_free(&req);
	free(in);
	return 0;
}
