/* Terraform lock info JSON: the fields tfgit reads from it, and a bounded JSON check of bodies. */
#include <string.h>

#include <json-c/json.h>

#include "lockinfo.h"
#include "../tfgit.h"

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

/* The top-level scan of states: the body was checked (json_state_check) before it is stored,
 * so this only finds; on any input it stays inside the body and ends. */
typedef const unsigned char *uptr;

static uptr skip_ws(uptr p, uptr end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
		p++;
	return p;
}

/* From an opening quote to just past the closing one; end when unterminated. */
static uptr skip_string(uptr p, uptr end)
{
	for (p++; p < end; p++) {
		if (*p == '\\')
			p++;
		else if (*p == '"')
			return p + 1;
	}
	return end;
}

/* One value: a container by its depth (strings skipped whole), a scalar up to what ends it. */
static uptr skip_value(uptr p, uptr end)
{
	if (p >= end)
		return end;
	if (*p == '"')
		return skip_string(p, end);
	if (*p != '{' && *p != '[') {
		while (p < end && !strchr(",}] \t\r\n", *p))
			p++;
		return p;
	}
	size_t depth = 0;
	while (p < end) {
		if (*p == '"') {
			p = skip_string(p, end);
			continue;
		}
		if (*p == '{' || *p == '[')
			depth++;
		else if ((*p == '}' || *p == ']') && --depth == 0)
			return p + 1;
		p++;
	}
	return end;
}

static int key_is(uptr key, uptr end, const char *quoted)
{
	size_t n = strlen(quoted);
	return (size_t)(end - key) == n && !memcmp(key, quoted, n);
}

int state_top_scan(state_top *f, const char *body, size_t len)
{
	memset(f, 0, sizeof(*f));
	if (!body)
		return TFGIT_EINVALID;
	uptr p = (uptr)body, end = p + len;
	p = skip_ws(p, end);
	if (p >= end || *p != '{')
		return TFGIT_EINVALID;
	p = skip_ws(p + 1, end);
	if (p < end && *p == '}')
		return 0;
	while (p < end) {
		if (*p != '"')
			return TFGIT_EINVALID;
		uptr key = p;
		p = skip_string(p, end);
		uptr key_end = p;
		p = skip_ws(p, end);
		if (p >= end || *p != ':')
			return TFGIT_EINVALID;
		p = skip_ws(p + 1, end);
		uptr v = p;
		p = skip_value(p, end);
		if (p == v)
			return TFGIT_EINVALID;
		json_span s = {(const char *)v, (size_t)(p - v)};
		if (key_is(key, key_end, "\"serial\""))
			f->serial = s;
		else if (key_is(key, key_end, "\"terraform_version\""))
			f->terraform_version = s;
		else if (key_is(key, key_end, "\"lineage\""))
			f->lineage = s;
		else if (key_is(key, key_end, "\"resources\""))
			f->resources = s;
		else if (key_is(key, key_end, "\"outputs\""))
			f->outputs = s;
		p = skip_ws(p, end);
		if (p < end && *p == '}')
			return 0;
		if (p >= end || *p != ',')
			return TFGIT_EINVALID;
		p = skip_ws(p + 1, end);
	}
	return TFGIT_EINVALID;
}

#define SPAN_DECODE_MAX 4096

int json_span_text(char *out, size_t outlen, json_span s)
{
	if (!outlen)
		return -1;
	out[0] = '\0';
	if (!s.ptr || !s.len || *s.ptr == '{' || *s.ptr == '[' || (s.len == 4 && !memcmp(s.ptr, "null", 4)))
		return -1;
	if (*s.ptr != '"') { /* a number or literal, as written */
		size_t n = s.len < outlen ? s.len : outlen - 1;
		memcpy(out, s.ptr, n);
		out[n] = '\0';
		return n == s.len;
	}
	if (s.len > SPAN_DECODE_MAX)
		return 0;
	if (s.len >= 2 && s.ptr[s.len - 1] == '"' && !memchr(s.ptr, '\\', s.len)) { /* no escape: as written */
		size_t n = s.len - 2 < outlen ? s.len - 2 : outlen - 1;
		memcpy(out, s.ptr + 1, n);
		out[n] = '\0';
		return n == s.len - 2 && !memchr(out, '\0', n);
	}
	/* a small string: json-c decodes its escapes (\u sequences included) */
	json_tokener *tok = json_tokener_new_ex(1);
	json_object *v = tok ? json_tokener_parse_ex(tok, s.ptr, (int)s.len) : NULL;
	json_tokener_free(tok);
	if (!json_object_is_type(v, json_type_string)) {
		json_object_put(v);
		return -1;
	}
	const char *text = json_object_get_string(v);
	size_t n = (size_t)json_object_get_string_len(v);
	int fit = n < outlen && !memchr(text, '\0', n);
	n = strnlen(text, n); /* a \u0000 ends it */
	if (n >= outlen)
		n = outlen - 1;
	memcpy(out, text, n);
	out[n] = '\0';
	json_object_put(v);
	return fit;
}

int json_iter_init(json_iter *it, json_span s)
{
	if (!s.ptr || !s.len || (*s.ptr != '{' && *s.ptr != '['))
		return -1;
	it->object = *s.ptr == '{';
	it->end = (uptr)s.ptr + s.len;
	it->p = skip_ws((uptr)s.ptr + 1, it->end);
	return 0;
}

int json_iter_next(json_iter *it, json_span *key, json_span *value)
{
	uptr p = it->p, end = it->end;
	key->ptr = NULL;
	key->len = 0;
	if (p >= end || *p == '}' || *p == ']')
		return 0;
	if (it->object) {
		if (*p != '"')
			return 0;
		uptr k = p;
		p = skip_string(p, end);
		key->ptr = (const char *)k;
		key->len = (size_t)(p - k);
		p = skip_ws(p, end);
		if (p >= end || *p != ':')
			return 0;
		p = skip_ws(p + 1, end);
	}
	uptr v = p;
	p = skip_value(p, end);
	if (p == v)
		return 0;
	value->ptr = (const char *)v;
	value->len = (size_t)(p - v);
	p = skip_ws(p, end);
	if (p < end && *p == ',')
		p = skip_ws(p + 1, end);
	else
		p = end; /* the last one (or a fault): nothing follows */
	it->p = p;
	return 1;
}

int json_key_is(json_span key, const char *name)
{
	size_t n = strlen(name);
	return key.len == n + 2 && key.ptr[0] == '"' && !memcmp(key.ptr + 1, name, n) && key.ptr[n + 1] == '"';
}

json_span json_member(json_span s, const char *name)
{
	json_iter it;
	json_span k, v, found = {NULL, 0};
	if (json_iter_init(&it, s) < 0 || !it.object)
		return found;
	while (json_iter_next(&it, &k, &v))
		if (json_key_is(k, name))
			found = v; /* the last of repeated keys, as Terraform's reader takes */
	return found;
}

long json_span_count(json_span s)
{
	json_iter it;
	json_span k, v;
	long n = 0;
	if (!s.ptr || !s.len || *s.ptr != '[' || json_iter_init(&it, s) < 0)
		return -1;
	while (json_iter_next(&it, &k, &v))
		n++;
	return n;
}
