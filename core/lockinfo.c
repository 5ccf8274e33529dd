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

/* Copies a string field, replacing control characters so it is safe in a commit trailer. */
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
	if (n >= outlen) {
		if (strict)
			return TFGIT_EINVALID;
		n = outlen - 1;
	}
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		out[i] = (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
	}
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
