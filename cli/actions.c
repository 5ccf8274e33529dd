/* The subcommands that change a repository: rollback, unlock, reencrypt. */
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <openssl/rand.h>

#include "cli.h"

/* Who asked: the login and host, for lock info and the log. */
static const char *operator_name(void)
{
	static char who[320];
	char host[256] = "localhost";
	struct passwd *pw = getpwuid(getuid());
	gethostname(host, sizeof(host) - 1);
	snprintf(who, sizeof(who), "%s@%s", pw ? pw->pw_name : "unknown", host);
	return who;
}

/* V's state with its serial raised above the current one (lineage kept). */
static char *rolled_back(const tfgit_buf *v, long long current, long long *serial)
{
	json_tokener *tok = json_tokener_new();
	json_object *o = tok ? json_tokener_parse_ex(tok, v->ptr, (int)v->size) : NULL, *s;
	char *out = NULL;
	json_tokener_free(tok);
	if (!json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		return NULL;
	}
	long long old = json_object_object_get_ex(o, "serial", &s) ? json_object_get_int64(s) : 0;
	*serial = (current > old ? current : old) + 1;
	json_object_object_add(o, "serial", json_object_new_int64(*serial));
	out = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
						      JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	return out;
}

static long long serial_of(const tfgit_buf *b)
{
	json_tokener *tok = json_tokener_new();
	json_object *o = tok ? json_tokener_parse_ex(tok, b->ptr, (int)b->size) : NULL, *s;
	long long n = json_object_object_get_ex(o, "serial", &s) ? json_object_get_int64(s) : 0;
	json_object_put(o);
	json_tokener_free(tok);
	return n;
}

int cmd_rollback(struct ctx *c)
{
	tfgit_result cur = {0}, ver = {0}, lk = {0}, put = {0}, un = {0};
	const tfgit_store *st = &c->s->store;
	unsigned char rnd[8];
	char id[64], lockbody[1600], now[32], unlockbody[128];
	long long serial = 0;
	char *body = NULL;
	int rc;
	if (!c->a->to) {
		fprintf(stderr, "tfgit rollback: --to VERSION is required (tfgit history lists them)\n");
		return 2;
	}
	if ((rc = tfgit_state_get_version(&ver, st, &c->t, c->a->to)) < 0) {
		rc = cli_failed(&ver, rc);
		goto done;
	}
	rc = tfgit_state_get(&cur, st, &c->t);
	if (rc < 0 && rc != TFGIT_ENOTFOUND) {
		rc = cli_failed(&cur, rc);
		goto done;
	}
	if (!(body = rolled_back(&ver.content, rc == 0 ? serial_of(&cur.content) : 0, &serial))) {
		fprintf(stderr, "tfgit: version %s is not a JSON state\n", cli_safe(c->a->to));
		rc = 1;
		goto done;
	}
	/* taken like a client's lock: refused while another ID holds it */
	RAND_bytes(rnd, sizeof(rnd));
	snprintf(id, sizeof(id), "tfgit-rollback-%02x%02x%02x%02x%02x%02x%02x%02x", rnd[0], rnd[1], rnd[2],
		 rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
	snprintf(now, sizeof(now), "%s", cli_time((long long)time(NULL)));
	json_object *info = json_object_new_object();
	json_object_object_add(info, "ID", json_object_new_string(id));
	snprintf(lockbody, sizeof(lockbody), "rollback to %.40s", ver.version);
	json_object_object_add(info, "Operation", json_object_new_string(lockbody));
	json_object_object_add(info, "Info", json_object_new_string("tfgit rollback"));
	json_object_object_add(info, "Who", json_object_new_string(operator_name()));
	json_object_object_add(info, "Version", json_object_new_string("tfgit"));
	json_object_object_add(info, "Created", json_object_new_string(now));
	json_object_object_add(info, "Path", json_object_new_string(""));
	snprintf(lockbody, sizeof(lockbody), "%s", json_object_to_json_string_ext(info, JSON_C_TO_STRING_PLAIN));
	json_object_put(info);
	if ((rc = tfgit_lock(&lk, st, &c->t, lockbody, strlen(lockbody))) < 0) {
		if (rc == TFGIT_ELOCKED)
			fprintf(stderr, "tfgit: refused: state %s is locked by another ID: %.*s\n", cli_safe(c->t.state),
				(int)lk.holder.size, lk.holder.ptr ? lk.holder.ptr : "");
		else
			cli_failed(&lk, rc);
		rc = 1;
		goto done;
	}
	rc = tfgit_state_put(&put, st, &c->t, id, body, strlen(body), 0);
	snprintf(unlockbody, sizeof(unlockbody), "{\"ID\":\"%s\"}", id);
	int urc = tfgit_unlock(&un, st, &c->t, unlockbody, strlen(unlockbody));
	if (rc < 0) {
		rc = cli_failed(&put, rc);
		goto done;
	}
	printf("state %s rolled back to version %.12s as serial %lld (lineage kept)%s\n", cli_safe(c->t.state),
	       ver.version, serial, urc < 0 ? "; the rollback's lock could not be removed: tfgit unlock" : "");
	rc = urc < 0 ? 1 : 0;
done:
	free(body);
	tfgit_result_free(&cur);
	tfgit_result_free(&ver);
	tfgit_result_free(&lk);
	tfgit_result_free(&put);
	tfgit_result_free(&un);
	return rc;
}

int cmd_unlock(struct ctx *c)
{
	tfgit_result r = {0};
	tfgit_store st = c->s->store;
	char body[600] = "";
	st.allow_force_unlock = 1; /* the operator's own command */
	if (c->a->id) {
		json_object *o = json_object_new_object();
		json_object_object_add(o, "ID", json_object_new_string(c->a->id));
		snprintf(body, sizeof(body), "%s", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
		json_object_put(o);
	}
	int rc = tfgit_unlock(&r, &st, &c->t, body, strlen(body));
	if (rc < 0) {
		if (rc == TFGIT_ELOCKED)
			fprintf(stderr, "tfgit: state %s is locked by another ID: %.*s\n", cli_safe(c->t.state),
				(int)r.holder.size, r.holder.ptr ? r.holder.ptr : "");
		else
			cli_failed(&r, rc);
		tfgit_result_free(&r);
		return 1;
	}
	if (r.changed) {
		/* logged like a force-unlock, with who asked */
		tfgit_log("force-unlock of %s by tfgit unlock (user=%s) removed the lock %.*s", c->t.state,
			  operator_name(), (int)(r.holder.size > 4096 ? 4096 : r.holder.size), r.holder.ptr ? r.holder.ptr : "");
		printf("removed the lock of %s\n", cli_safe(c->t.state));
	} else {
		printf("state %s was not locked\n", cli_safe(c->t.state));
	}
	tfgit_result_free(&r);
	return 0;
}

int cmd_reencrypt(struct ctx *c)
{
	tfgit_result r = {0};
	size_t count = 0;
	int rc = tfgit_reencrypt(&r, &c->s->store, &c->t, operator_name(), &count);
	printf("%s\n", r.message[0] ? r.message : tfgit_strerror(rc));
	tfgit_result_free(&r);
	return rc < 0 ? 1 : 0;
}
