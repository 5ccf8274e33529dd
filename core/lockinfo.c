/* Terraform lock info JSON: the fields tfgit reads from it, and a bounded JSON check of bodies. */
#include <string.h>

#include <json-c/json.h>

#include "lockinfo.h"
#include "tfgit.h"

/* Parses body into a json-c tree; the caller puts the result. NULL when not one object. */
static json_object *parse_object(const char *body, size_t len)
{
	if (!body || len == 0 || len > (size_t)0x7fffffff)
		return NULL;
	json_tokener *tok = json_tokener_new_ex(JSON_DEPTH_MAX);
	if (!tok)
		return NULL;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
	json_object *obj = json_tokener_parse_ex(tok, body, (int)len);
	enum json_tokener_error err = json_tokener_get_error(tok);
	size_t used = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	if (!obj || err != json_tokener_success) {
		json_object_put(obj);
		return NULL;
	}
	/* only white space may follow the object */
	for (size_t i = used; i < len; i++) {
		if (!strchr(" \t\r\n", body[i])) {
			json_object_put(obj);
			return NULL;
		}
	}
	if (!json_object_is_type(obj, json_type_object)) {
		json_object_put(obj);
		return NULL;
	}
	return obj;
}

/* Copies a string field as it is: IDs are compared byte for byte, and whatever shows them
 * (the log, commit trailers) escapes them. strict: a non-string, an over-long value or a NUL
 * inside is EINVALID, else it is cut. */
static int copy_field(char *out, size_t outlen, json_object *obj, const char *key, int strict)
{
	json_object *v;
	out[0] = '\0';
	if (!json_object_object_get_ex(obj, key, &v) || json_object_is_type(v, json_type_null))
		return 0;
	if (!json_object_is_type(v, json_type_string))
		return strict ? TFGIT_EINVALID : 0;
	const char *s = json_object_get_string(v);
	size_t n = (size_t)json_object_get_string_len(v);
	if (strict && (n >= outlen || memchr(s, '\0', n)))
		return TFGIT_EINVALID;
	if (n >= outlen)
		n = outlen - 1;
	memcpy(out, s, n);
	out[n] = '\0';
	return 0;
}

int lockinfo_parse(lockinfo *out, const char *body, size_t len)
{
	memset(out, 0, sizeof(*out));
	json_object *obj = parse_object(body, len);
	if (!obj)
		return TFGIT_EINVALID;
	int rc = copy_field(out->id, sizeof(out->id), obj, "ID", 1);
	if (rc == 0) {
		copy_field(out->who, sizeof(out->who), obj, "Who", 0);
		copy_field(out->operation, sizeof(out->operation), obj, "Operation", 0);
	}
	json_object_put(obj);
	return rc;
}

static int blank(const char *body, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (!strchr(" \t\r\n", body[i]))
			return 0;
	return 1;
}

/* Terraform's force-unlock sends no body (hashicorp/terraform#28421); OpenTofu's, lock JSON
 * with the ID the user typed. */
int tfgit_unlock_is_force(const char *body, size_t len)
{
	lockinfo info;
	if (!body || blank(body, len))
		return 1;
	return lockinfo_parse(&info, body, len) == 0 && info.id[0] == '\0';
}
