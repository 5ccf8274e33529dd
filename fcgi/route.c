/* The routing table: each method Terraform uses, the handler that serves it. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../core/lockinfo.h"
#include "response.h"
#include "route.h"

enum body_rule { BODY_NONE, BODY_OPTIONAL, BODY_JSON };

struct route {
	const char *method;
	enum body_rule body;
	void (*handle)(struct request *req, const struct settings *cfg);
};

static void handle_get(struct request *req, const struct settings *cfg)
{
	char headers[256], md5[32];
	int rc = tfgit_state_get(&req->result, &cfg->store, &req->target);
	if (rc != TFGIT_OK) {
		respond_result(req, rc);
		return;
	}
	content_md5(md5, req->result.content.ptr, req->result.content.size);
	snprintf(headers, sizeof(headers), "Content-MD5: %s\r\nETag: \"%s\"\r\n", md5,
		 req->result.blob_id);
	respond(req, 200, headers, "application/json", req->result.content.ptr,
		req->result.content.size);
}

static void handle_post(struct request *req, const struct settings *cfg)
{
	int amend = query_bool(req->q.amend);
	if (amend < 0) {
		respond_error(req, 400, "amend must be true or false");
		return;
	}
	respond_result(req, tfgit_state_put(&req->result, &cfg->store, &req->target, req->q.id,
					    req->body, req->body_len, amend));
}

static void handle_delete(struct request *req, const struct settings *cfg)
{
	respond_result(req, tfgit_state_delete(&req->result, &cfg->store, &req->target, req->q.id));
}

static void handle_lock(struct request *req, const struct settings *cfg)
{
	respond_result(req, tfgit_lock(&req->result, &cfg->store, &req->target, req->body,
				       req->body_len));
}

static void handle_unlock(struct request *req, const struct settings *cfg)
{
	respond_result(req, tfgit_unlock(&req->result, &cfg->store, &req->target, req->body,
					 req->body_len));
}

static const struct route routes[] = {
	{"GET", BODY_NONE, handle_get},
	{"POST", BODY_JSON, handle_post},
	{"DELETE", BODY_NONE, handle_delete},
	{"LOCK", BODY_JSON, handle_lock},
	{"UNLOCK", BODY_OPTIONAL, handle_unlock},
};
#define ALLOW_HEADER "Allow: GET, POST, DELETE, LOCK, UNLOCK\r\n"
#define METHOD_NOT_ALLOWED "{\"error\":\"method not allowed: use GET, POST, DELETE, LOCK or UNLOCK\"}"

/* Checks the query and fills req->target; on failure the error response is sent. */
static int resolve_target(struct request *req, const struct settings *cfg)
{
	char err[256];
	struct query *q = &req->q;
	if (query_parse(q, req->query_string, err, sizeof(err)) < 0) {
		respond_error(req, 400, err);
		return -1;
	}
	if (q->type && strcmp(q->type, "git") != 0) {
		respond_error(req, 400, "type must be git (or left out)");
		return -1;
	}
	const char *repo = q->repository && *q->repository ? q->repository : cfg->default_repository;
	if (!repo) {
		respond_error(req, 400, "repository is required: this server has no default repository");
		return -1;
	}
	if (tfgit_repository_check(repo) < 0) {
		respond_error(req, 400, "repository must be an absolute path or a git URL "
					"(https://, ssh://, git://, file://, user@host:path)");
		return -1;
	}
	if (!settings_repository_allowed(cfg, repo)) {
		respond_error(req, 403, "this repository is not allowed on this server (TFGIT_ALLOWED_REPOS)");
		return -1;
	}
	if (!q->state || !*q->state) {
		respond_error(req, 400, "state is required: the path of the state file in the repository");
		return -1;
	}
	if (tfgit_state_path_check(q->state) < 0) {
		respond_error(req, 400, "state must be a relative path of plain segments (no empty, . or .. "
					"segment, no .git, no control characters, not ending in .lock, at most "
					"1024 bytes)");
		return -1;
	}
	const char *ref = q->ref && *q->ref ? q->ref : cfg->default_ref;
	if (tfgit_ref_check(ref, q->state) < 0) {
		respond_error(req, 400, "ref, and locks/<state>, must be valid git branch names");
		return -1;
	}
	req->target.url = repo;
	req->target.ref = ref;
	req->target.state = q->state;
	return 0;
}

/* Reads and checks the body as the route requires; on failure the error response is sent. */
static int read_body(struct request *req, const struct route *rt, const struct settings *cfg)
{
	char msg[128], md5[32];
	int rc = request_read_body(req, cfg->max_body);
	if (rc > 0) {
		snprintf(msg, sizeof(msg), "the body is larger than %zu bytes (TFGIT_MAX_BODY)", cfg->max_body);
		respond_error(req, 413, msg);
		return -1;
	}
	if (rc < 0) {
		respond_error(req, 400, "the request body could not be read");
		return -1;
	}
	if (req->content_md5 && req->body_len) {
		content_md5(md5, req->body, req->body_len);
		if (strcmp(md5, req->content_md5) != 0) {
			respond_error(req, 400, "Content-MD5 does not match the body");
			return -1;
		}
	}
	if (rt->body == BODY_JSON && req->body_len == 0) {
		respond_error(req, 400, "the body is empty");
		return -1;
	}
	if (rt->body == BODY_JSON && json_object_check(req->body, req->body_len) < 0) {
		respond_error(req, 400, "the body is not one JSON object (or nests too deep)");
		return -1;
	}
	return 0;
}

static void log_request(const struct request *req)
{
	struct timespec now;
	char url[512];
	clock_gettime(CLOCK_MONOTONIC, &now);
	double ms = (double)(now.tv_sec - req->start.tv_sec) * 1e3 +
		    (double)(now.tv_nsec - req->start.tv_nsec) / 1e6;
	tfgit_url_redact(url, sizeof(url), req->target.url ? req->target.url : "-");
	fprintf(stderr, "tfgit[%ld]: %s state=%s ref=%s repo=%s -> %d in %.1f ms%s%s%s\n",
		(long)getpid(), req->method, req->target.state ? req->target.state : "-",
		req->target.ref ? req->target.ref : "-", url, req->status, ms,
		req->result.attempts > 1 ? " (retried)" : "",
		req->result.message[0] ? ": " : "", req->result.message);
	if (req->result.forced)
		fprintf(stderr, "tfgit[%ld]: force-unlock of %s removed the lock %.*s\n", (long)getpid(),
			req->target.state, (int)(req->result.holder.size > 1024 ? 1024 : req->result.holder.size),
			req->result.holder.ptr ? req->result.holder.ptr : "");
}

void route_request(struct request *req, const struct settings *cfg)
{
	const struct route *rt = NULL;
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
		if (strcmp(routes[i].method, req->method) == 0)
			rt = &routes[i];
	if (!rt)
		respond(req, 405, ALLOW_HEADER, "application/json", METHOD_NOT_ALLOWED,
			sizeof(METHOD_NOT_ALLOWED) - 1);
	else if (resolve_target(req, cfg) == 0 && read_body(req, rt, cfg) == 0)
		rt->handle(req, cfg);
	log_request(req);
}
