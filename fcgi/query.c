/* The request's query string: the parameters terraform-backend-git defined, decoded. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "query.h"

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes n bytes of s (%XX and '+'); NULL on a bad escape or %00. Caller frees. */
static char *decode(const char *s, size_t n)
{
	char *out = malloc(n + 1), *o = out;
	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '+') {
			*o++ = ' ';
		} else if (s[i] == '%') {
			int hi = i + 1 < n ? hexval(s[i + 1]) : -1;
			int lo = i + 2 < n ? hexval(s[i + 2]) : -1;
			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
				free(out);
				return NULL;
			}
			*o++ = (char)(hi * 16 + lo);
			i += 2;
		} else {
			*o++ = s[i];
		}
	}
	*o = '\0';
	return out;
}

static char **field(struct query *q, const char *key, size_t n)
{
	static const struct {
		const char *name;
		size_t offset;
	} keys[] = {
		{"type", offsetof(struct query, type)},
		{"repository", offsetof(struct query, repository)},
		{"ref", offsetof(struct query, ref)},
		{"state", offsetof(struct query, state)},
		{"amend", offsetof(struct query, amend)},
		{"ID", offsetof(struct query, id)},
		{"version", offsetof(struct query, version)},
		{"sort", offsetof(struct query, sort)},
		{"page", offsetof(struct query, page)},
	};
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (strlen(keys[i].name) == n && memcmp(keys[i].name, key, n) == 0)
			return (char **)((char *)q + keys[i].offset);
	return NULL;
}

int query_parse(struct query *q, const char *qs, char *err, size_t errlen)
{
	memset(q, 0, sizeof(*q));
	if (!qs)
		return 0;
	if (strlen(qs) > QUERY_MAX) {
		snprintf(err, errlen, "the query string is longer than %d bytes", QUERY_MAX);
		return -1;
	}
	for (const char *p = qs; *p;) {
		size_t n = strcspn(p, "&;");
		const char *eq = memchr(p, '=', n);
		size_t klen = eq ? (size_t)(eq - p) : n;
		char *key = decode(p, klen);
		char **slot = key ? field(q, key, strlen(key)) : NULL;
		if (!key) {
			snprintf(err, errlen, "the query string has a bad %%-escape");
			goto fail;
		}
		if (slot) {
			if (*slot) {
				snprintf(err, errlen, "query parameter %s is given more than once", key);
				free(key);
				goto fail;
			}
			*slot = eq ? decode(eq + 1, n - klen - 1) : strdup("");
			if (!*slot) {
				snprintf(err, errlen, "query parameter %s has a bad %%-escape", key);
				free(key);
				goto fail;
			}
		}
		free(key);
		p += n;
		if (*p)
			p++;
	}
	return 0;
fail:
	query_free(q);
	return -1;
}

int query_bool(const char *value)
{
	if (!value || !*value || strcasecmp(value, "false") == 0)
		return 0;
	if (strcasecmp(value, "true") == 0)
		return 1;
	return -1;
}

void query_free(struct query *q)
{
	if (!q)
		return;
	free(q->type);
	free(q->repository);
	free(q->ref);
	free(q->state);
	free(q->amend);
	free(q->id);
	free(q->version);
	free(q->sort);
	free(q->page);
	memset(q, 0, sizeof(*q));
}
