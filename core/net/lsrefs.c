/* Protocol v2's ls-refs, written and read (lsrefs.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lsrefs.h"
#include "pktline.h"

#define REFNAME_MAX 4096

/* Appends one pkt-line holding text (and a newline) to b at *len. */
static size_t put_line(char *b, size_t len, const char *text)
{
	size_t n = strlen(text) + 5;
	char digits[24];
	snprintf(digits, sizeof(digits), "%04zx", n);
	memcpy(b + len, digits, 4);
	memcpy(b + len + 4, text, n - 5);
	b[len + n - 1] = '\n';
	return len + n;
}

int lsrefs_request(char **out, size_t *outlen, const char *const *prefixes, size_t n)
{
	size_t cap = 64 + 4, len = 0;
	*out = NULL;
	*outlen = 0;
	if (n == 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (strlen(prefixes[i]) > REFNAME_MAX || strchr(prefixes[i], '\n'))
			return -1;
		cap += strlen(prefixes[i]) + 16;
	}
	char *b = malloc(cap + 64);
	if (!b)
		return -1;
	len = put_line(b, len, "command=ls-refs");
	len = put_line(b, len, "agent=tfgit");
	memcpy(b + len, "0001", 4); /* the delimiter: the arguments follow */
	len += 4;
	for (size_t i = 0; i < n; i++) {
		char arg[REFNAME_MAX + 16];
		snprintf(arg, sizeof(arg), "ref-prefix %s", prefixes[i]);
		len = put_line(b, len, arg);
	}
	memcpy(b + len, "0000", 4);
	len += 4;
	*out = b;
	*outlen = len;
	return 0;
}

int lsrefs_parse(const char *buf, size_t len, void (*fn)(const char *refname, const git_oid *oid, void *ctx),
		 void *ctx, char *why, size_t whylen)
{
	size_t pos = 0;
	for (;;) {
		const char *data = NULL;
		size_t n = 0;
		int k = pktline_next(buf, len, &pos, &data, &n);
		if (k == PKT_MORE)
			return 0;
		if (k == PKT_FLUSH)
			return 1;
		if (k == PKT_BAD) {
			snprintf(why, whylen, "the ls-refs answer is not made of pkt-lines");
			return -1;
		}
		if (n >= 4 && !memcmp(data, "ERR ", 4)) {
			snprintf(why, whylen, "the server said: %.*s", (int)(n - 4 > 200 ? 200 : n - 4), data + 4);
			return -1;
		}
		if (n && data[n - 1] == '\n')
			n--;
		/* <40 hex> SP <refname> [SP attributes] */
		git_oid oid;
		char hex[GIT_OID_HEXSZ + 1], name[REFNAME_MAX + 1];
		const char *sp = n > GIT_OID_HEXSZ ? data + GIT_OID_HEXSZ : NULL;
		if (!sp || *sp != ' ') {
			snprintf(why, whylen, "an ls-refs line is not \"<id> <ref>\"");
			return -1;
		}
		memcpy(hex, data, GIT_OID_HEXSZ);
		hex[GIT_OID_HEXSZ] = '\0';
		const char *rn = sp + 1, *end = data + n, *rend = memchr(rn, ' ', (size_t)(end - rn));
		size_t rl = (size_t)((rend ? rend : end) - rn);
		if (strspn(hex, "0123456789abcdef") != GIT_OID_HEXSZ || git_oid_fromstr(&oid, hex) < 0 || rl == 0 ||
		    rl > REFNAME_MAX || memchr(rn, '\0', rl)) {
			git_error_clear();
			snprintf(why, whylen, "an ls-refs line is not \"<id> <ref>\"");
			return -1;
		}
		memcpy(name, rn, rl);
		name[rl] = '\0';
		if (fn)
			fn(name, &oid, ctx);
	}
}
