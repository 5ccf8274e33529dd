/* A JSON syntax check (RFC 8259) of request bodies that builds no tree: json-c's tree of a
 * Terraform state costs several times the state's size, this costs a 64-entry stack. */
#include <string.h>

#include "lockinfo.h"
#include "../tfgit.h"

typedef struct {
	const unsigned char *p, *end;
} cursor;

static void skip_space(cursor *c)
{
	while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
		c->p++;
}

static int is_hex(unsigned char ch)
{
	return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F');
}

/* A string, from its opening quote; control characters must be escaped. */
static int string(cursor *c)
{
	c->p++;
	while (c->p < c->end) {
		unsigned char ch = *c->p++;
		if (ch == '"')
			return 0;
		if (ch < 0x20)
			return -1;
		if (ch != '\\')
			continue;
		if (c->p >= c->end)
			return -1;
		ch = *c->p++;
		if (ch == 'u') {
			if (c->end - c->p < 4 || !is_hex(c->p[0]) || !is_hex(c->p[1]) || !is_hex(c->p[2]) ||
			    !is_hex(c->p[3]))
				return -1;
			c->p += 4;
		} else if (!strchr("\"\\/bfnrt", ch) || ch == '\0') {
			return -1;
		}
	}
	return -1;
}

static int digits(cursor *c)
{
	const unsigned char *start = c->p;
	while (c->p < c->end && *c->p >= '0' && *c->p <= '9')
		c->p++;
	return c->p > start ? 0 : -1;
}

/* -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static int number(cursor *c)
{
	if (*c->p == '-')
		c->p++;
	if (c->p < c->end && *c->p == '0')
		c->p++;
	else if (digits(c) < 0)
		return -1;
	if (c->p < c->end && *c->p == '.') {
		c->p++;
		if (digits(c) < 0)
			return -1;
	}
	if (c->p < c->end && (*c->p == 'e' || *c->p == 'E')) {
		c->p++;
		if (c->p < c->end && (*c->p == '+' || *c->p == '-'))
			c->p++;
		if (digits(c) < 0)
			return -1;
	}
	return 0;
}

static int literal(cursor *c, const char *word)
{
	size_t n = strlen(word);
	if ((size_t)(c->end - c->p) < n || memcmp(c->p, word, n) != 0)
		return -1;
	c->p += n;
	return 0;
}

/* One scalar, or the opening of a container (pushed on stack). */
static int value(cursor *c, char *stack, int *depth)
{
	if (c->p >= c->end)
		return -1;
	switch (*c->p) {
	case '{':
	case '[':
		if (*depth >= JSON_DEPTH_MAX)
			return -1;
		stack[(*depth)++] = (char)*c->p++;
		return 1; /* a container was opened */
	case '"': return string(c);
	case 't': return literal(c, "true");
	case 'f': return literal(c, "false");
	case 'n': return literal(c, "null");
	default:
		if (*c->p == '-' || (*c->p >= '0' && *c->p <= '9'))
			return number(c);
		return -1;
	}
}

/* Top-level keys that tell a state (bits of *keys): a Terraform (or OpenTofu) state always has
 * serial and lineage; OpenTofu's client-side encrypted form has encrypted_data and
 * encryption_version (and serial and lineage beside them). */
enum { KEY_SERIAL = 1, KEY_LINEAGE = 2, KEY_ENCRYPTED_DATA = 4, KEY_ENCRYPTION_VERSION = 8 };
static const char *const state_keys[] = {"\"serial\"", "\"lineage\"", "\"encrypted_data\"",
					  "\"encryption_version\""};

static void note_key(const unsigned char *start, const unsigned char *end, unsigned *keys)
{
	for (size_t i = 0; i < sizeof(state_keys) / sizeof(state_keys[0]); i++)
		if ((size_t)(end - start) == strlen(state_keys[i]) && !memcmp(start, state_keys[i], end - start))
			*keys |= 1u << i;
}

/* The check; the top-level keys among state_keys are noted in *keys. */
static int object_check(const char *body, size_t len, unsigned *keys)
{
	cursor c = {(const unsigned char *)body, (const unsigned char *)body + len};
	char stack[JSON_DEPTH_MAX];
	int depth = 0, rc;
	skip_space(&c);
	if (!body || c.p >= c.end || *c.p != '{')
		return TFGIT_EINVALID;
	c.p++;
	stack[depth++] = '{';
	int first = 1; /* just after an opening bracket */
	while (depth > 0) {
		char top = stack[depth - 1];
		skip_space(&c);
		if (c.p >= c.end)
			return TFGIT_EINVALID;
		if (*c.p == (top == '{' ? '}' : ']')) {
			c.p++;
			depth--;
			first = 0;
			continue;
		}
		if (!first) {
			if (*c.p != ',')
				return TFGIT_EINVALID;
			c.p++;
			skip_space(&c);
		}
		if (top == '{') {
			const unsigned char *key = c.p;
			if (c.p >= c.end || *c.p != '"' || string(&c) < 0)
				return TFGIT_EINVALID;
			if (depth == 1)
				note_key(key, c.p, keys);
			skip_space(&c);
			if (c.p >= c.end || *c.p != ':')
				return TFGIT_EINVALID;
			c.p++;
			skip_space(&c);
		}
		if ((rc = value(&c, stack, &depth)) < 0)
			return TFGIT_EINVALID;
		first = rc == 1;
	}
	skip_space(&c);
	return c.p == c.end ? 0 : TFGIT_EINVALID;
}

int json_object_check(const char *body, size_t len)
{
	unsigned keys = 0;
	return object_check(body, len, &keys);
}

int json_state_check(const char *body, size_t len)
{
	unsigned keys = 0, plain = KEY_SERIAL | KEY_LINEAGE,
		 encrypted = KEY_ENCRYPTED_DATA | KEY_ENCRYPTION_VERSION;
	if (object_check(body, len, &keys) < 0)
		return TFGIT_EINVALID;
	return (keys & plain) == plain || (keys & encrypted) == encrypted ? 1 : 0;
}

int json_is_state(const char *body, size_t len)
{
	return json_state_check(body, len) == 1;
}
