/* Writing responses: the one mapping of core codes to HTTP statuses, JSON error bodies. */
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>
#include <openssl/evp.h>

#include "../core/failures.h"
#include "../core/metrics.h"
#include "../core/net/roundtrips.h"
#include "response.h"

int status_for(int code)
{
	switch (code) {
	case TFGIT_OK: return 200;
	case TFGIT_ENOTFOUND: return 204;
	case TFGIT_ELOCKED: return 409;
	case TFGIT_ENOLOCK: return 428;
	case TFGIT_EINVALID: return 400;
	case TFGIT_EFORBIDDEN: return 403;
	case TFGIT_EDENIED: return 502;
	case TFGIT_EUNREACHABLE: return 503;
	case TFGIT_ECONFLICT: return 503;
	case TFGIT_ETIMEOUT: return 504;
	case TFGIT_ENOSPACE: return 507;
	case TFGIT_EBUSY: return 503;
	case TFGIT_EEXISTS: return 409;
	default: return 500;
	}
}

static const char *reason(int status)
{
	switch (status) {
	case 200: return "OK";
	case 204: return "No Content";
	case 301: return "Moved Permanently";
	case 400: return "Bad Request";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 409: return "Conflict";
	case 413: return "Payload Too Large";
	case 415: return "Unsupported Media Type";
	case 428: return "Precondition Required";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	case 507: return "Insufficient Storage";
	default: return "Internal Server Error";
	}
}

static void put(struct request *req, const char *s)
{
	req->io.write(req->io.ctx, s, (int)strlen(s));
}

double request_ms(const struct request *req)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - req->start.tv_sec) * 1e3 + (double)(now.tv_nsec - req->start.tv_nsec) / 1e6;
}

/* A failure a user acts on, kept for the web view, tfgit failures and make run (failures.c): an
 * answer of 400 or more at Terraform's addresses (the state's, …/lock, one tfgit does not
 * have), except a LOCK refused because another ID holds the lock (Terraform prints the holder
 * itself, and -lock-timeout retries it). */
static void note_failure(const struct request *req, int status)
{
	struct failure f = {0};
	struct timespec now;
	if (status < 400 || (req->address != STATE_ADDRESS && req->address != LOCK_ADDRESS &&
			     req->address != UNKNOWN_ADDRESS) || (req->locking && req->held_by_other))
		return;
	clock_gettime(CLOCK_REALTIME, &now);
	f.time_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
	f.status = status;
	snprintf(f.id, sizeof(f.id), "%s", req->id);
	snprintf(f.method, sizeof(f.method), "%s", req->method);
	snprintf(f.user, sizeof(f.user), "%s", req->remote_user ? req->remote_user : "");
	if (req->target.url) { /* checked: the repository and branch as used */
		tfgit_url_redact(f.repository, sizeof(f.repository), req->target.url);
		snprintf(f.ref, sizeof(f.ref), "%s", req->target.ref ? req->target.ref : "");
		snprintf(f.state, sizeof(f.state), "%s", req->target.state ? req->target.state : "");
	}
	/* what the client was told: for a lock held by another ID, the holder's lock info (the core's
	 * message names the holder's ID, which unlocks the lock: never kept here) */
	snprintf(f.message, sizeof(f.message), "%s", req->held_by_other ?
		 "the state is locked by another ID: the answer's body is the holder's lock info" :
		 req->result.message[0] ? req->result.message : reason(status));
	failures_note(&f);
}

/* The shared counters, before a byte of the answer leaves: a client that has its answer finds
 * it counted (and, when it failed, kept: note_failure). /metrics and /health are not
 * Terraform's requests: not counted. */
static void account(const struct request *req, int status)
{
	int trips;
	double remote_ms;
	if (req->address == METRICS_ADDRESS || req->address == HEALTH_ADDRESS)
		return;
	roundtrips_get(&trips, &remote_ms);
	metrics_request(req->method, status, request_ms(req), remote_ms);
	metrics_add(METRIC_REMOTE_ROUND_TRIPS, (unsigned long long)trips);
	if (req->result.attempts > 1)
		metrics_add(METRIC_CAS_RETRIES, (unsigned long long)(req->result.attempts - 1));
	if (req->locking && req->held_by_other && status == 409)
		metrics_count(METRIC_LOCK_CONFLICTS);
	note_failure(req, status);
}

void respond(struct request *req, int status, const char *headers, const char *ctype,
	     const char *body, size_t len)
{
	char head[512];
	req->status = status;
	account(req, status);
	/* formatted here: libfcgi's own printf knows no %zu */
	/* nosniff: a JSON body quoting a client's text is never taken for a page */
	snprintf(head, sizeof(head), "Status: %d %s\r\nX-Request-Id: %s\r\nX-Content-Type-Options: nosniff\r\n", status,
		 reason(status), req->id);
	put(req, head);
	if (headers)
		put(req, headers);
	if (status == 503)
		put(req, "Retry-After: 5\r\n");
	if (status != 204) {
		snprintf(head, sizeof(head), "Content-Type: %s\r\nContent-Length: %zu\r\n",
			 ctype ? ctype : "application/json", len);
		put(req, head);
	}
	put(req, "Cache-Control: no-store\r\n\r\n");
	if (status != 204 && len)
		req->io.write(req->io.ctx, body, (int)len);
}

void respond_error(struct request *req, int status, const char *message)
{
	/* the log line and the failures kept say what the client was told */
	if (!req->result.message[0] && message)
		snprintf(req->result.message, sizeof(req->result.message), "%s", message);
	json_object *obj = json_object_new_object();
	json_object_object_add(obj, "error", json_object_new_string(message ? message : reason(status)));
	size_t len = 0;
	const char *text = json_object_to_json_string_length(obj, JSON_C_TO_STRING_PLAIN, &len);
	respond(req, status, NULL, "application/json", text, len);
	json_object_put(obj);
}

/* The holder's lock JSON with its ID replaced: the ID unlocks the lock, and this requester may
 * not remove it. */
static void respond_hidden_holder(struct request *req, const tfgit_buf *holder)
{
	json_tokener *tok = json_tokener_new();
	json_object *obj = tok ? json_tokener_parse_ex(tok, holder->ptr, (int)holder->size) : NULL;
	if (!json_object_is_type(obj, json_type_object)) {
		json_object_put(obj);
		obj = json_object_new_object();
	}
	json_object_object_add(obj, "ID", json_object_new_string("(hidden: shown only to who may force-unlock)"));
	size_t len = 0;
	const char *text = json_object_to_json_string_length(obj, JSON_C_TO_STRING_PLAIN, &len);
	respond(req, 409, NULL, "application/json", text, len);
	json_object_put(obj);
	json_tokener_free(tok);
}

void respond_result(struct request *req, int code)
{
	tfgit_result *r = &req->result;
	int status = status_for(code);
	req->held_by_other = code == TFGIT_ELOCKED;
	if (code == TFGIT_ELOCKED && r->holder.ptr && !req->may_force_unlock) {
		respond_hidden_holder(req, &r->holder);
	} else if ((code == TFGIT_ELOCKED || code == TFGIT_EEXISTS) && r->holder.ptr) {
		/* Terraform parses a conflict body as lock info and prints its ID */
		respond(req, 409, NULL, "application/json", r->holder.ptr, r->holder.size);
	} else if (code == TFGIT_OK || code == TFGIT_ENOTFOUND) {
		respond(req, status, NULL, NULL, "", 0);
	} else {
		respond_error(req, status, r->message[0] ? r->message : tfgit_strerror(code));
	}
}

void content_md5(char *out, const char *data, size_t len)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	out[0] = '\0';
	if (EVP_Digest(data, len, md, &mdlen, EVP_md5(), NULL))
		EVP_EncodeBlock((unsigned char *)out, md, (int)mdlen);
}
