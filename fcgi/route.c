/* The routing table: each method Terraform uses, the handler that serves it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <git2.h>
#include <json-c/json.h>

#include "../core/acl.h"
#include "../core/failures.h"
#include "../core/format/lockinfo.h"
#include "../core/health.h"
#include "../core/metrics.h"
#include "../core/net/roundtrips.h"
#include "crosssite.h"
#include "response.h"
#include "route.h"
#include "ui.h"

enum body_rule { BODY_NONE, BODY_OPTIONAL, BODY_JSON, BODY_STATE };
/* What the query must name: a state (and its repository and branch), a branch, or nothing. */
enum target_rule { TARGET_STATE, TARGET_BRANCH, TARGET_NONE };
#ifndef TFGIT_VERSION
#define TFGIT_VERSION "dev"
#endif

struct route {
	enum address address;
	const char *method;
	enum body_rule body;
	size_t max_body;  /* 0: TFGIT_MAX_BODY */
	int right;        /* what the ACL must grant (UNLOCK without an ID: force-unlock); for a
			   * branch, the handler asks route_may for each state it shows */
	void (*handle)(struct request *req, const struct settings *cfg);
	enum target_rule target;
};

static void handle_get(struct request *req, const struct settings *cfg)
{
	char headers[320], md5[32];
	const char *version = req->q.version;
	int rc = version ? tfgit_state_get_version(&req->result, &cfg->store, &req->target, version)
			 : tfgit_state_get(&req->result, &cfg->store, &req->target);
	if (version && rc == TFGIT_ENOTFOUND) { /* an old version asked for: not "no state yet" */
		respond_error(req, 404, req->result.message);
		return;
	}
	if (rc != TFGIT_OK) {
		respond_result(req, rc);
		return;
	}
	content_md5(md5, req->result.content.ptr, req->result.content.size);
	/* X-Tfgit-Version: the commit the state was read at, for …&version= and tfgit show */
	snprintf(headers, sizeof(headers), "Content-MD5: %s\r\nETag: \"%s\"\r\nX-Tfgit-Version: %s\r\n", md5,
		 req->result.blob_id, req->result.version);
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
	/* the core may free a large body once it is stored: it is not held twice while pushed */
	tfgit_buf body = {req->body, req->body_len};
	int rc = tfgit_state_put_owned(&req->result, &cfg->store, &req->target, req->q.id, &body, amend);
	req->body = body.ptr;
	respond_result(req, rc);
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

/* Terraform's methods, and what firewalls let through: GitLab's layout (lock_method POST and
 * unlock_method DELETE on the address ending in /lock) and update_method PUT. */
static const struct route routes[] = {
	{STATE_ADDRESS, "GET", BODY_NONE, 0, ACL_READ, handle_get, TARGET_STATE},
	{STATE_ADDRESS, "POST", BODY_STATE, 0, ACL_WRITE, handle_post, TARGET_STATE},
	{STATE_ADDRESS, "PUT", BODY_STATE, 0, ACL_WRITE, handle_post, TARGET_STATE},
	{STATE_ADDRESS, "DELETE", BODY_NONE, 0, ACL_WRITE, handle_delete, TARGET_STATE},
	{STATE_ADDRESS, "LOCK", BODY_JSON, LOCK_BODY_MAX, ACL_LOCK, handle_lock, TARGET_STATE},
	{STATE_ADDRESS, "UNLOCK", BODY_OPTIONAL, LOCK_BODY_MAX, ACL_LOCK, handle_unlock, TARGET_STATE},
	{LOCK_ADDRESS, "LOCK", BODY_JSON, LOCK_BODY_MAX, ACL_LOCK, handle_lock, TARGET_STATE},
	{LOCK_ADDRESS, "POST", BODY_JSON, LOCK_BODY_MAX, ACL_LOCK, handle_lock, TARGET_STATE},
	{LOCK_ADDRESS, "PUT", BODY_JSON, LOCK_BODY_MAX, ACL_LOCK, handle_lock, TARGET_STATE},
	{LOCK_ADDRESS, "UNLOCK", BODY_OPTIONAL, LOCK_BODY_MAX, ACL_LOCK, handle_unlock, TARGET_STATE},
	{LOCK_ADDRESS, "DELETE", BODY_OPTIONAL, LOCK_BODY_MAX, ACL_LOCK, handle_unlock, TARGET_STATE},
	/* the web view: read-only */
	{UI_REPOSITORY_ADDRESS, "GET", BODY_NONE, 0, ACL_READ, ui_repository, TARGET_BRANCH},
	{UI_STATE_ADDRESS, "GET", BODY_NONE, 0, ACL_READ, ui_state, TARGET_STATE},
	{UI_VERSION_ADDRESS, "GET", BODY_NONE, 0, ACL_READ, ui_version, TARGET_STATE},
	{UI_STYLE_ADDRESS, "GET", BODY_NONE, 0, 0, ui_style, TARGET_NONE},
	{UI_BARE_ADDRESS, "GET", BODY_NONE, 0, 0, ui_redirect, TARGET_NONE},
};
#define UI_NOT_ALLOWED {"Allow: GET\r\n", "{\"error\":\"method not allowed: the web view is read-only (GET)\"}"}
static const char *const not_allowed[][2] = {
	[STATE_ADDRESS] = {"Allow: GET, POST, PUT, DELETE, LOCK, UNLOCK\r\n",
			   "{\"error\":\"method not allowed: use GET, POST, PUT, DELETE, LOCK or UNLOCK\"}"},
	[LOCK_ADDRESS] = {"Allow: POST, PUT, DELETE, LOCK, UNLOCK\r\n",
			  "{\"error\":\"method not allowed on the lock address: POST, PUT or LOCK locks; "
			  "DELETE or UNLOCK unlocks\"}"},
	[UI_REPOSITORY_ADDRESS] = UI_NOT_ALLOWED, [UI_STATE_ADDRESS] = UI_NOT_ALLOWED,
	[UI_VERSION_ADDRESS] = UI_NOT_ALLOWED, [UI_STYLE_ADDRESS] = UI_NOT_ALLOWED, [UI_BARE_ADDRESS] = UI_NOT_ALLOWED,
};

/* Checks the query and fills req->target (a branch only: no state); on failure the error
 * response is sent. The repository is parsed before it is matched, and matched as the server
 * will see it. */
static int resolve_target(struct request *req, const struct settings *cfg, enum target_rule rule)
{
	char err[512];
	struct query *q = &req->q;
	if (query_parse(q, req->query_string, err, sizeof(err)) < 0) {
		respond_error(req, 400, err);
		return -1;
	}
	if (q->type && strcmp(q->type, "git") != 0) {
		respond_error(req, 400, "type must be git (or left out)");
		return -1;
	}
	const char *state = rule == TARGET_STATE && q->state && *q->state ? q->state : NULL;
	int rc = settings_target(cfg, q->repository, q->ref, state, &req->target, req->resolved_url,
				 sizeof(req->resolved_url), err, sizeof(err));
	if (rc == TFGIT_OK && rule == TARGET_STATE && !state) {
		rc = TFGIT_EINVALID;
		snprintf(err, sizeof(err), "state is required: the path of the state file in the repository");
	}
	if (rc != TFGIT_OK) {
		memset(&req->target, 0, sizeof(req->target));
		respond_error(req, rc == TFGIT_EFORBIDDEN ? 403 : 400, err);
		return -1;
	}
	return 0;
}

/* The 403 of a right the ACL does not grant on what (a state, any state); -1. */
static int refuse_grant(struct request *req, int right, const char *what)
{
	char msg[1400];
	snprintf(msg, sizeof(msg), "%s%s%s may not %s %s of this repository (TFGIT_ACL_FILE)",
		 req->remote_user ? "user \"" : "an anonymous request",
		 req->remote_user ? req->remote_user : "", req->remote_user ? "\"" : "",
		 acl_right_name(right), what);
	respond_error(req, 403, msg);
	return -1;
}

/* The ACL's verdict, before anything touches git; on refusal the response is sent. Its
 * answer is the same whether or not the state exists. */
static int authorize(struct request *req, const struct route *rt, const struct settings *cfg)
{
	const acl *a = NULL;
	char err[512], what[1100];
	/* a holder's lock ID is what unlocks (and writes under) its lock: shown only to who could
	 * remove the lock anyway */
	req->may_force_unlock = cfg->store.allow_force_unlock;
	if (!cfg->acl_file)
		return 0;
	if (acl_get(&a, cfg->acl_file, err, sizeof(err)) < 0) {
		tfgit_log("TFGIT_ACL_FILE: %s: every request is refused until it is fixed", err);
		respond_error(req, 500, "the access-control file (TFGIT_ACL_FILE) is not usable; see the log");
		return -1;
	}
	if (rt->target != TARGET_STATE) {
		/* a branch's page shows only what route_may grants, state by state; a user granted no
		 * state of the repository is refused before git is asked whether it exists */
		if (acl_allows_some(a, req->remote_user, rt->right, req->target.url, tfgit_pattern_match))
			return 0;
		return refuse_grant(req, rt->right, "any state");
	}
	int right = rt->right;
	if (rt->handle == handle_unlock && tfgit_unlock_is_force(req->body, req->body_len))
		right = ACL_FORCE_UNLOCK;
	req->may_force_unlock = req->may_force_unlock &&
		acl_allows(a, req->remote_user, ACL_FORCE_UNLOCK, req->target.url, req->target.state,
			   tfgit_pattern_match);
	if (acl_allows(a, req->remote_user, right, req->target.url, req->target.state, tfgit_pattern_match))
		return 0;
	snprintf(what, sizeof(what), "state %s", req->target.state);
	return refuse_grant(req, right, what);
}

int route_may(const struct request *req, const struct settings *cfg, int right, const char *state)
{
	const acl *a = NULL;
	char err[512];
	if (!tfgit_name_allowed(state, cfg->allowed_states))
		return 0;
	if (!cfg->acl_file)
		return 1;
	return acl_get(&a, cfg->acl_file, err, sizeof(err)) == 0 &&
	       acl_allows(a, req->remote_user, right, req->target.url, state, tfgit_pattern_match);
}

/* A request that changes something and that a browser could have sent from another site:
 * refused (403, or 415 for a body that is not JSON) before its query is read, its body taken or
 * anything touches git; the answer is sent. */
static int cross_site(struct request *req, const struct route *rt)
{
	char why[300];
	if (strcmp(rt->method, "GET") == 0)
		return 0;
	if (req->repeated) { /* which copy would a check read? none: a browser never sends two */
		snprintf(why, sizeof(why), "the header %.*s came more than once", (int)strlen(req->repeated) - 1,
			 req->repeated);
		respond_error(req, 400, why);
		return 1;
	}
	struct crosssite_headers h = {req->sec_fetch_site, req->origin, req->host, req->scheme, req->server_port,
					 req->content_type};
	int status = crosssite_check(&h, why, sizeof(why));
	if (status)
		respond_error(req, status, why);
	return status != 0;
}

/* Reads and checks the body as the route requires; on failure the error response is sent. */
static int read_body(struct request *req, const struct route *rt, const struct settings *cfg)
{
	char msg[128], md5[32];
	size_t max = rt->max_body ? rt->max_body : cfg->max_body;
	int rc = request_read_body(req, max);
	if (rc > 0) {
		snprintf(msg, sizeof(msg), "the body is larger than %zu bytes%s", max,
			 rt->max_body ? " (the bound of lock bodies)" : " (TFGIT_MAX_BODY)");
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
	/* a body without a content type: what a browser's fetch of a Blob sends cross-site */
	if (strcmp(rt->method, "GET") != 0 && req->body_len && !crosssite_is_json(req->content_type)) {
		respond_error(req, 415, "the body must be sent as Content-Type: application/json");
		return -1;
	}
	if ((rt->body == BODY_JSON || rt->body == BODY_STATE) && req->body_len == 0) {
		respond_error(req, 400, "the body is empty");
		return -1;
	}
	int kind = rt->body == BODY_STATE ? json_state_check(req->body, req->body_len) :
		   rt->body == BODY_JSON ? json_object_check(req->body, req->body_len) : 0;
	if (kind < 0) {
		respond_error(req, 400, "the body is not one JSON object (or nests too deep)");
		return -1;
	}
	/* only states are written: never a configuration or pipeline file in a state's place */
	if (rt->body == BODY_STATE && kind != 1) {
		respond_error(req, 400, "the body is not a Terraform state (a JSON object with top-level "
					"serial and lineage)");
		return -1;
	}
	return 0;
}

/* A field of the log line as one word: space, '=', '"' and '%' %-encoded (a user name
 * "ops addr=10.0.0.1" cannot pose as another field); control characters are tfgit_log's. */
static const char *log_word(char *out, size_t outlen, const char *v)
{
	size_t o = 0;
	if (!v || !*v)
		v = "-";
	for (; *v && o + 4 < outlen; v++) {
		if (strchr(" =\"%", *v))
			o += (size_t)snprintf(out + o, outlen - o, "%%%02X", (unsigned char)*v);
		else
			out[o++] = *v;
	}
	out[o] = '\0';
	return out;
}

/* The holder's ID and Who from its lock JSON, for the log of a conflict. */
static void holder_fields(const tfgit_buf *holder, char *id, size_t idlen, char *who, size_t wholen)
{
	*id = *who = '\0';
	json_tokener *tok = json_tokener_new();
	json_object *obj = tok && holder->ptr ? json_tokener_parse_ex(tok, holder->ptr, (int)holder->size) : NULL, *v;
	if (json_object_is_type(obj, json_type_object)) {
		if (json_object_object_get_ex(obj, "ID", &v) && json_object_is_type(v, json_type_string))
			snprintf(id, idlen, "%s", json_object_get_string(v));
		if (json_object_object_get_ex(obj, "Who", &v) && json_object_is_type(v, json_type_string))
			snprintf(who, wholen, "%s", json_object_get_string(v));
	}
	json_object_put(obj);
	if (tok)
		json_tokener_free(tok);
}

static const char *const address_names[] = {
	[STATE_ADDRESS] = "state", [LOCK_ADDRESS] = "lock", [METRICS_ADDRESS] = "metrics",
	[HEALTH_ADDRESS] = "health", [UI_REPOSITORY_ADDRESS] = "ui", [UI_STATE_ADDRESS] = "ui/state",
	[UI_VERSION_ADDRESS] = "ui/version", [UI_STYLE_ADDRESS] = "ui/style.css", [UI_BARE_ADDRESS] = "ui",
	[UNKNOWN_ADDRESS] = "unknown",
};

static void json_add_str(json_object *obj, const char *key, const char *v)
{
	json_object_object_add(obj, key, v && *v ? json_object_new_string(v) : NULL);
}

/* A duration in ms as JSON with one decimal, as the text line writes it: json-c would print the
 * double's full expansion (9.0999999999999996). */
static json_object *json_tenths(double ms)
{
	char text[32];
	snprintf(text, sizeof(text), "%.1f", ms);
	return json_object_new_double_s(strtod(text, NULL), text);
}

/* TFGIT_LOG_FORMAT=json: the request line as one JSON object. */
static void log_request_json(const struct request *req, double ms, const char *url, int trips,
			     double remote_ms, const char *holder_id, const char *holder_who)
{
	char when[40];
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	size_t n = strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(when + n, sizeof(when) - n, ".%03ldZ", ts.tv_nsec / 1000000);
	json_object *o = json_object_new_object();
	json_add_str(o, "time", when);
	json_object_object_add(o, "pid", json_object_new_int((int)getpid()));
	json_add_str(o, "id", req->id);
	json_add_str(o, "method", req->method);
	json_add_str(o, "address", address_names[req->address]);
	json_add_str(o, "state", req->target.state ? req->target.state : req->q.state);
	json_add_str(o, "ref", req->target.ref ? req->target.ref : req->q.ref);
	json_add_str(o, "repo", req->target.url ? url : NULL);
	json_add_str(o, "user", req->remote_user);
	json_add_str(o, "addr", req->remote_addr);
	json_object_object_add(o, "status", json_object_new_int(req->status));
	json_object_object_add(o, "ms", json_tenths(ms));
	json_object_object_add(o, "round_trips", json_object_new_int(trips));
	json_object_object_add(o, "remote_ms", json_tenths(remote_ms));
	json_object_object_add(o, "attempts", json_object_new_int(req->result.attempts));
	if (req->result.batch > 1) {
		json_object_object_add(o, "batch", json_object_new_int(req->result.batch));
		json_object_object_add(o, "led", json_object_new_boolean(req->result.led));
	}
	if (req->held_by_other) {
		json_object *h = json_object_new_object();
		json_add_str(h, "id", holder_id);
		json_add_str(h, "who", holder_who);
		json_object_object_add(o, "holder", h);
	}
	if (req->result.forced) {
		json_object_object_add(o, "forced", json_object_new_boolean(1));
		json_object_object_add(o, "removed_lock",
				       json_object_new_string_len(req->result.holder.ptr ? req->result.holder.ptr : "",
								  (int)(req->result.holder.size > 4096 ? 4096 : req->result.holder.size)));
	}
	json_add_str(o, "message", req->result.message);
	tfgit_log_json(o);
	json_object_put(o);
}

/* One line per request; tfgit_log escapes every field, so none can forge a line. The text
 * form keeps its first fields in their order (METHOD state= ref= repo= user= addr= -> STATUS
 * in N ms); what came later follows them as words: id=, round_trips=, remote_ms=, on a lock
 * conflict holder_id= and holder_who=, batch=N (led) when group commit served it with others. */
static void log_request(const struct request *req, const struct settings *cfg)
{
	char url[512], user[512], addr[128], state[3200], ref[800], hid[512], hwho[512], words[1200] = "";
	double ms = request_ms(req), remote_ms;
	int trips;
	roundtrips_get(&trips, &remote_ms);
	tfgit_url_redact(url, sizeof(url), req->target.url ? req->target.url : "-");
	if (req->held_by_other)
		holder_fields(&req->result.holder, hid, sizeof(hid), hwho, sizeof(hwho));
	if (cfg && cfg->log_json) {
		log_request_json(req, ms, url, trips, remote_ms, hid, hwho);
		return;
	}
	log_word(user, sizeof(user), req->remote_user);
	log_word(addr, sizeof(addr), req->remote_addr);
	/* refused before its target was checked, the request still says what it asked for */
	log_word(state, sizeof(state), req->target.state ? req->target.state : req->q.state);
	log_word(ref, sizeof(ref), req->target.ref ? req->target.ref : req->q.ref);
	if (req->held_by_other) {
		char a[512], b[512];
		snprintf(words, sizeof(words), " holder_id=%s holder_who=%s", log_word(a, sizeof(a), hid),
			 log_word(b, sizeof(b), hwho));
	}
	if (req->result.batch > 1) /* group commit: served with others, in one push */
		snprintf(words + strlen(words), sizeof(words) - strlen(words), " batch=%d%s",
			 req->result.batch, req->result.led ? " led" : "");
	static const char *const shown[] = {[STATE_ADDRESS] = "", [LOCK_ADDRESS] = " /lock",
		[METRICS_ADDRESS] = " /metrics", [HEALTH_ADDRESS] = " /health", [UI_REPOSITORY_ADDRESS] = " /ui/",
		[UI_STATE_ADDRESS] = " /ui/state", [UI_VERSION_ADDRESS] = " /ui/version",
		[UI_STYLE_ADDRESS] = " /ui/style.css", [UI_BARE_ADDRESS] = " /ui", [UNKNOWN_ADDRESS] = " (unknown address)"};
	tfgit_log("%s%s state=%s ref=%s repo=%s user=%s addr=%s -> %d in %.1f ms id=%s round_trips=%d "
		  "remote_ms=%.1f%s%s%s%s", req->method, shown[req->address], state, ref, url, user, addr,
		  req->status, ms, req->id, trips, remote_ms, words, req->result.attempts > 1 ? " (retried)" : "",
		  req->result.message[0] ? ": " : "", req->result.message);
	if (req->result.forced)
		tfgit_log("force-unlock of %s by user=%s addr=%s removed the lock %.*s", state, user, addr,
			  (int)(req->result.holder.size > 4096 ? 4096 : req->result.holder.size),
			  req->result.holder.ptr ? req->result.holder.ptr : "");
}

/* …/metrics: the counters of every process serving from this cache directory. Not behind the
 * ACL (it names no state or repository); the web server restricts who may read it. */
static void handle_metrics(struct request *req, int mapped, const char *why)
{
	tfgit_buf text = {0};
	if (!mapped) {
		char msg[800]; /* the prefix and a why of up to 700 bytes */
		snprintf(msg, sizeof(msg), "the counters are not available: %s", why);
		respond_error(req, 503, msg);
	} else if (metrics_render(&text) < 0) {
		respond_error(req, 500, "the counters could not be rendered");
	} else {
		respond(req, 200, NULL, "text/plain; version=0.0.4; charset=utf-8", text.ptr, text.size);
	}
	tfgit_buf_free(&text);
}

/* deep=1 (or true, yes) in the query: the health check also asks the default repository. */
static int wants_deep(const char *query)
{
	for (const char *p = query; p && *p; p += strcspn(p, "&"), p += *p == '&') {
		size_t n = strcspn(p, "&");
		if ((n == 6 && !strncmp(p, "deep=1", 6)) || (n == 9 && !strncmp(p, "deep=true", 9)) ||
		    (n == 8 && !strncmp(p, "deep=yes", 8)))
			return 1;
	}
	return 0;
}

/* …/health: 200 JSON from the process alone (its settings, the counters' file in the cache
 * directory); no remote and none of the cache's repositories is touched. With deep=1 the
 * default repository is asked for its refs too (within TFGIT_REMOTE_TIMEOUT): 503 when it
 * does not answer. */
static void handle_health(struct request *req, const struct settings *cfg, int mapped, const char *why)
{
	int major = 0, minor = 0, rev = 0, status = 200;
	char lib[32], url[512];
	git_libgit2_version(&major, &minor, &rev);
	snprintf(lib, sizeof(lib), "%d.%d.%d", major, minor, rev);
	json_object *o = json_object_new_object();
	json_object_object_add(o, "version", json_object_new_string(TFGIT_VERSION));
	json_object_object_add(o, "libgit2", json_object_new_string(lib));
	json_object_object_add(o, "model", json_object_new_string(server_info.model));
	json_object_object_add(o, "workers", json_object_new_int(server_info.workers));
	json_object_object_add(o, "pid", json_object_new_int((int)getpid()));
	json_object_object_add(o, "uptime_seconds",
			       json_object_new_int64(server_info.started ? (int64_t)(time(NULL) - server_info.started) : 0));
	json_object_object_add(o, "counters", json_object_new_string(mapped ? "ok" : why));
	if (wants_deep(req->query_string)) {
		json_object *d = json_object_new_object();
		if (!cfg->default_repository) {
			status = 503;
			json_object_object_add(d, "error", json_object_new_string(
				"no default repository to check (TFGIT_DEFAULT_REPOSITORY)"));
		} else {
			int found = 0;
			double t0 = request_ms(req);
			int rc = tfgit_ping(&req->result, &cfg->store, cfg->default_repository, cfg->default_ref, &found);
			tfgit_url_redact(url, sizeof(url), cfg->default_repository);
			json_object_object_add(d, "repository", json_object_new_string(url));
			json_object_object_add(d, "ref", json_object_new_string(cfg->default_ref));
			json_object_object_add(d, "ms", json_object_new_int((int)(request_ms(req) - t0 + 0.5)));
			if (rc == TFGIT_OK) {
				json_object_object_add(d, "branch_exists", json_object_new_boolean(found));
			} else {
				status = 503;
				json_object_object_add(d, "error", json_object_new_string(
					req->result.message[0] ? req->result.message : tfgit_strerror(rc)));
			}
		}
		json_object_object_add(o, "repository", d);
	}
	json_object_object_add(o, "status", json_object_new_string(status == 200 ? "ok" : "unavailable"));
	size_t len = 0;
	const char *text = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN, &len);
	respond(req, status, NULL, "application/json", text, len);
	json_object_put(o);
}

static const char not_found[] =
	"no such address: the state's address, or it followed by /lock (/metrics and /health: the "
	"counters and the health check)";

void route_request(struct request *req, const struct settings *cfg)
{
	const struct route *rt = NULL;
	enum address address = req->address;
	char why[700] = "";
	static char last_why[700];
	roundtrips_reset();
	int mapped = metrics_open(cfg->store.cache_dir, why, sizeof(why)) == 0;
	if (!mapped && strcmp(why, last_why) != 0) { /* once, not on every request */
		tfgit_log("the shared counters are not kept: %s", why);
		snprintf(last_why, sizeof(last_why), "%s", why);
	}
	char fwhy[700];
	static char last_fwhy[700];
	if (failures_open(cfg->store.cache_dir, fwhy, sizeof(fwhy)) < 0 && strcmp(fwhy, last_fwhy) != 0) {
		tfgit_log("the last failed requests are not kept: %s", fwhy);
		snprintf(last_fwhy, sizeof(last_fwhy), "%s", fwhy);
	}
	for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
		if (routes[i].address == address && strcmp(routes[i].method, req->method) == 0)
			rt = &routes[i];
	if (address == UNKNOWN_ADDRESS) {
		respond_error(req, 404, not_found);
	} else if (address == METRICS_ADDRESS || address == HEALTH_ADDRESS) {
		static const char allow[] = "Allow: GET, HEAD\r\n";
		static const char body[] = "{\"error\":\"method not allowed: use GET\"}";
		if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0)
			respond(req, 405, allow, "application/json", body, strlen(body));
		else if (address == METRICS_ADDRESS)
			handle_metrics(req, mapped, why);
		else
			handle_health(req, cfg, mapped, why);
	} else if (!rt) {
		snprintf(req->result.message, sizeof(req->result.message), "method not allowed: %s (%s)", req->method,
			 address == LOCK_ADDRESS ? "the lock address" : address == STATE_ADDRESS ? "the state's address" :
			 "the web view is read-only");
		respond(req, 405, not_allowed[address][0], "application/json", not_allowed[address][1],
			strlen(not_allowed[address][1]));
	} else {
		req->locking = rt->handle == handle_lock;
		if (!cross_site(req, rt) && (rt->target == TARGET_NONE || resolve_target(req, cfg, rt->target) == 0) &&
		    read_body(req, rt, cfg) == 0 && (rt->target == TARGET_NONE || authorize(req, rt, cfg) == 0))
			rt->handle(req, cfg);
	}
	log_request(req, cfg);
}
