/* The read-only subcommands: states, history, show, diff, locks. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "../core/failures.h"
#include "cli.h"

const char *cli_safe(const char *s)
{
	/* a ring: a printf may take up to eight of them */
	static char out[8][4096];
	static int next;
	char *o = out[next++ % 8];
	tfgit_escape(o, sizeof(out[0]), s ? s : "", s ? strlen(s) : 0);
	return o;
}

const char *cli_time(long long t)
{
	static char out[4][32];
	static int next;
	char *o = out[next++ % 4];
	time_t tt = (time_t)t;
	struct tm tm;
	if (!t || !gmtime_r(&tt, &tm) || !strftime(o, sizeof(out[0]), "%Y-%m-%dT%H:%M:%SZ", &tm))
		snprintf(o, sizeof(out[0]), "-");
	return o;
}

int cli_failed(const tfgit_result *r, int rc)
{
	fprintf(stderr, "tfgit: %s\n", r->message[0] ? r->message : tfgit_strerror(rc));
	return 1;
}

static const char *dash(const char *s)
{
	return s && *s ? cli_safe(s) : "-";
}

/* The larger of width and the length of s (a column's width). */
static int widest(int width, const char *s)
{
	size_t n = strlen(s);
	return n > (size_t)width ? (int)(n > 1024 ? 1024 : n) : width;
}

static json_object *jstr(const char *s)
{
	return json_object_new_string(s ? s : "");
}

static json_object *version_json(const tfgit_version *v)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "commit", jstr(v->commit));
	json_object_object_add(o, "time", jstr(cli_time(v->time)));
	json_object_object_add(o, "who", jstr(v->who));
	json_object_object_add(o, "lock_id", jstr(v->lock_id));
	json_object_object_add(o, "operation", jstr(v->operation));
	json_object_object_add(o, "serial", v->serial >= 0 ? json_object_new_int64(v->serial) : NULL);
	json_object_object_add(o, "lineage", jstr(v->lineage));
	json_object_object_add(o, "size", json_object_new_int64((int64_t)v->size));
	json_object_object_add(o, "deleted", json_object_new_boolean(v->deleted));
	return o;
}

static json_object *lock_json(const tfgit_lock_entry *l)
{
	json_object *o = json_object_new_object();
	json_object_object_add(o, "state", jstr(l->state));
	json_object_object_add(o, "id", jstr(l->id));
	json_object_object_add(o, "who", jstr(l->who));
	json_object_object_add(o, "operation", jstr(l->operation));
	json_object_object_add(o, "created", jstr(l->created));
	json_object_object_add(o, "age_seconds", json_object_new_int64((int64_t)(time(NULL) - l->time)));
	return o;
}

static void print_json(json_object *o)
{
	printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
}

int cmd_states(struct ctx *c)
{
	tfgit_result r = {0};
	tfgit_state_entry *l = NULL;
	size_t n = 0;
	int rc = tfgit_states(&r, &c->s->store, &c->t, &l, &n);
	if (rc < 0 && rc != TFGIT_ENOTFOUND) {
		free(l);
		rc = cli_failed(&r, rc);
		tfgit_result_free(&r);
		return rc;
	}
	size_t kept = 0; /* only what TFGIT_ALLOWED_STATES lets this server show, as the web view */
	for (size_t i = 0; i < n; i++)
		if (tfgit_name_allowed(l[i].state, c->s->allowed_states))
			l[kept++] = l[i];
	n = kept;
	if (c->a->json) {
		json_object *arr = json_object_new_array();
		for (size_t i = 0; i < n; i++) {
			json_object *o = json_object_new_object();
			json_object_object_add(o, "state", jstr(l[i].state));
			json_object_object_add(o, "serial", json_object_new_int64(l[i].serial));
			json_object_object_add(o, "lineage", jstr(l[i].lineage));
			json_object_object_add(o, "terraform_version", jstr(l[i].terraform_version));
			json_object_object_add(o, "resources", l[i].resources >= 0 ? json_object_new_int64(l[i].resources) : NULL);
			json_object_object_add(o, "last_change", version_json(&l[i].last));
			json_object_object_add(o, "lock", l[i].locked ? lock_json(&l[i].lock) : NULL);
			json_object_array_add(arr, o);
		}
		print_json(arr);
	} else {
		printf("%-40s %7s  %-36s %-20s %-24s %-20s %s\n", "STATE", "SERIAL", "LINEAGE", "CHANGED", "WHO",
		       "LOCK-ID", "LOCKED BY");
		for (size_t i = 0; i < n; i++)
			printf("%-40s %7lld  %-36s %-20s %-24s %-20s %s\n", cli_safe(l[i].state), l[i].serial,
			       dash(l[i].lineage), cli_time(l[i].last.time), dash(l[i].last.who), dash(l[i].last.lock_id),
			       l[i].locked ? dash(l[i].lock.who[0] ? l[i].lock.who : l[i].lock.id) : "-");
	}
	free(l);
	tfgit_result_free(&r);
	return 0;
}

int cmd_history(struct ctx *c)
{
	tfgit_result r = {0};
	tfgit_version *l = NULL;
	size_t n = 0;
	int rc = tfgit_history(&r, &c->s->store, &c->t, &l, &n);
	if (rc < 0 && rc != TFGIT_ENOTFOUND) {
		free(l);
		rc = cli_failed(&r, rc);
		tfgit_result_free(&r);
		return rc;
	}
	if (c->a->json) {
		json_object *arr = json_object_new_array();
		for (size_t i = 0; i < n; i++)
			json_object_array_add(arr, version_json(&l[i]));
		print_json(arr);
	} else {
		/* each column as wide as its widest value: a rollback's Operation ("rollback to <commit>")
		 * or a long Who shifts no column after it */
		int who = 3, operation = 9, lock_id = 7;
		for (size_t i = 0; i < n; i++) {
			who = widest(who, dash(l[i].who));
			operation = widest(operation, dash(l[i].operation));
			lock_id = widest(lock_id, dash(l[i].lock_id));
		}
		printf("%-12s %-20s %7s %9s  %-*s  %-*s  %-*s  %s\n", "VERSION", "DATE", "SERIAL", "SIZE", who, "WHO",
		       operation, "OPERATION", lock_id, "LOCK-ID", "LINEAGE");
		for (size_t i = 0; i < n; i++)
			printf("%-12.12s %-20s %7lld %9zu  %-*s  %-*s  %-*s  %s%s\n", l[i].commit, cli_time(l[i].time),
			       l[i].serial, l[i].size, who, dash(l[i].who), operation, dash(l[i].operation), lock_id,
			       dash(l[i].lock_id), dash(l[i].lineage), l[i].deleted ? " (deleted)" : "");
	}
	free(l);
	tfgit_result_free(&r);
	return 0;
}

/* The state at version (NULL: now) into r->content; a message and non-zero on failure. */
static int state_at(tfgit_result *r, struct ctx *c, const char *version)
{
	int rc = version ? tfgit_state_get_version(r, &c->s->store, &c->t, version)
			 : tfgit_state_get(r, &c->s->store, &c->t);
	if (rc == TFGIT_ENOTFOUND && !r->message[0])
		snprintf(r->message, sizeof(r->message), "no state %s", c->t.state);
	return rc;
}

int cmd_show(struct ctx *c)
{
	tfgit_result r = {0};
	if (!c->a->version) {
		fprintf(stderr, "tfgit show: --version is required (tfgit history lists them)\n");
		return 2;
	}
	int rc = state_at(&r, c, c->a->version);
	if (rc < 0)
		rc = cli_failed(&r, rc);
	else
		fwrite(r.content.ptr, 1, r.content.size, stdout);
	tfgit_result_free(&r);
	return rc;
}

int cmd_diff(struct ctx *c)
{
	tfgit_result a = {0}, b = {0};
	tfgit_diff_entry *l = NULL;
	size_t n = 0;
	int rc;
	if (!c->a->from) {
		fprintf(stderr, "tfgit diff: --from is required (tfgit history lists the versions)\n");
		return 2;
	}
	if ((rc = state_at(&a, c, c->a->from)) < 0 || (rc = state_at(&b, c, c->a->to)) < 0) {
		rc = cli_failed(a.message[0] ? &a : &b, rc);
	} else if (tfgit_state_diff(a.content.ptr, a.content.size, b.content.ptr, b.content.size, (size_t)-1, &l, &n,
				    NULL) < 0) {
		fprintf(stderr, "tfgit: a version is not a JSON state\n");
		rc = 1;
	} else if (c->a->json) {
		json_object *arr = json_object_new_array();
		for (size_t i = 0; i < n; i++) {
			json_object *o = json_object_new_object();
			json_object_object_add(o, "change", jstr(l[i].kind == '+' ? "added" : l[i].kind == '-' ? "removed" : "changed"));
			json_object_object_add(o, "address", jstr(l[i].address));
			if (l[i].kind == '~')
				json_object_object_add(o, "attributes", jstr(l[i].attributes));
			json_object_array_add(arr, o);
		}
		print_json(arr);
	} else {
		for (size_t i = 0; i < n; i++)
			printf("%c %s%s%s%s\n", l[i].kind, cli_safe(l[i].address), l[i].kind == '~' ? " (" : "",
			       l[i].kind == '~' ? cli_safe(l[i].attributes) : "", l[i].kind == '~' ? ")" : "");
		if (n == 0)
			printf("no change by resource\n");
	}
	tfgit_diff_free(l, n);
	tfgit_result_free(&a);
	tfgit_result_free(&b);
	return rc;
}

int cmd_locks(struct ctx *c)
{
	tfgit_result r = {0};
	tfgit_lock_entry *l = NULL;
	size_t n = 0;
	int rc = tfgit_locks(&r, &c->s->store, &c->t, &l, &n);
	if (rc < 0) {
		free(l);
		rc = cli_failed(&r, rc);
		tfgit_result_free(&r);
		return rc;
	}
	size_t kept = 0;
	for (size_t i = 0; i < n; i++)
		if (tfgit_name_allowed(l[i].state, c->s->allowed_states))
			l[kept++] = l[i];
	n = kept;
	if (c->a->json) {
		json_object *arr = json_object_new_array();
		for (size_t i = 0; i < n; i++)
			json_object_array_add(arr, lock_json(&l[i]));
		print_json(arr);
	} else {
		printf("%-40s %-38s %-24s %-24s %-22s %s\n", "STATE", "ID", "WHO", "OPERATION", "CREATED", "AGE");
		for (size_t i = 0; i < n; i++)
			printf("%-40s %-38s %-24s %-24s %-22s %llds\n", cli_safe(l[i].state), dash(l[i].id), dash(l[i].who),
			       dash(l[i].operation), dash(l[i].created), (long long)time(NULL) - l[i].time);
	}
	free(l);
	tfgit_result_free(&r);
	return 0;
}

/* The last failed requests every process serving from this cache directory kept (failures.c),
 * of every repository: the operator's view (the web view shows a user only what the ACL lets
 * them read). --since T: only those answered at Unix time T or later. */
int cmd_failures(struct ctx *c)
{
	static struct failure f[FAILURES_KEPT];
	char why[700], *end;
	double since = c->a->since ? strtod(c->a->since, &end) : 0;
	if (c->a->since && (*end || end == c->a->since || !(since >= 0))) {
		fprintf(stderr, "tfgit failures: --since takes a Unix time (seconds, a fraction allowed: date +%%s.%%N)\n");
		return 2;
	}
	if (failures_open(c->s->store.cache_dir, why, sizeof(why)) < 0) {
		fprintf(stderr, "tfgit: the failed requests cannot be read: %s\n", cli_safe(why));
		return 1;
	}
	size_t n = failures_list(f, FAILURES_KEPT), kept = 0;
	for (size_t i = 0; i < n; i++)
		if ((double)f[i].time_ms >= since * 1000)
			f[kept++] = f[i];
	if (c->a->json) {
		json_object *arr = json_object_new_array();
		for (size_t i = 0; i < kept; i++) {
			json_object *o = json_object_new_object();
			json_object_object_add(o, "time", jstr(cli_time(f[i].time_ms / 1000)));
			json_object_object_add(o, "id", jstr(f[i].id));
			json_object_object_add(o, "method", jstr(f[i].method));
			json_object_object_add(o, "status", json_object_new_int(f[i].status));
			json_object_object_add(o, "repository", jstr(f[i].repository));
			json_object_object_add(o, "ref", jstr(f[i].ref));
			json_object_object_add(o, "state", jstr(f[i].state));
			json_object_object_add(o, "user", jstr(f[i].user));
			json_object_object_add(o, "message", jstr(f[i].message));
			json_object_array_add(arr, o);
		}
		print_json(arr);
		return 0;
	}
	printf("%-20s  %-16s  %-6s  %s  %-24s  %-12s  %s\n", "TIME", "ID", "METHOD", "STATUS", "STATE", "USER",
	       "MESSAGE");
	for (size_t i = 0; i < kept; i++)
		printf("%-20s  %-16s  %-6s  %6d  %-24s  %-12s  %s\n", cli_time(f[i].time_ms / 1000), cli_safe(f[i].id),
		       cli_safe(f[i].method), f[i].status, dash(f[i].state), dash(f[i].user), cli_safe(f[i].message));
	if (!kept)
		printf("no failed request kept%s\n", c->a->since ? " since then" : "");
	return 0;
}
