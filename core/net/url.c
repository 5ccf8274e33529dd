/* Repository URLs parsed into their parts before anything is matched or connected to, and the
 * allowlist's patterns matched against them part by part. A git server decodes and normalises
 * the path it is sent, so what is matched is what the server will see: the %-decoded path,
 * with the escapes that could change its shape (%2F, %5C, %2E) refused outright. */
#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../internal.h"
#include "../tfgit.h"
#include "url.h"

#define GLOB_CHARS "*?[]!"

static int refuse(char *why, size_t whylen, const char *reason)
{
	if (why && whylen)
		snprintf(why, whylen, "%s", reason);
	return TFGIT_EINVALID;
}

static int starts_with(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

static int in_set(unsigned char c, const char *extra, int flags)
{
	return isalnum(c) || (c && strchr(extra, c)) || ((flags & URL_PATTERN) && c && strchr(GLOB_CHARS, c));
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)tolower((unsigned char)c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Decodes an http(s) path. An escape that would change the path's shape once the server
 * decodes it (/, \, . and % itself, against double decoding) or a control character is
 * refused, not decoded. */
static int decode_path(char *out, size_t outlen, const char *in, char *why, size_t whylen)
{
	size_t o = 0;
	for (const char *p = in; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (c == '?' || c == '#')
			return refuse(why, whylen, "a repository URL may not carry a query or fragment");
		if (c == '%') {
			int hi = hexval(p[1]), lo = hi < 0 ? -1 : hexval(p[2]);
			if (lo < 0)
				return refuse(why, whylen, "the repository path has a bad %-escape");
			c = (unsigned char)(hi * 16 + lo);
			if (c == '/' || c == '\\' || c == '.' || c == '%' || c < 0x20 || c == 0x7f)
				return refuse(why, whylen, "the repository path may not %-encode '/', '\\', '.', "
							   "'%' or a control character");
			p += 2;
		}
		if (o + 1 >= outlen)
			return refuse(why, whylen, "the repository URL is too long");
		out[o++] = (char)c;
	}
	out[o] = '\0';
	return 0;
}

/* Path segments must be non-empty and not ".", ".." or ".git"; one trailing '/' is dropped. */
static int segments_check(char *path, char *why, size_t whylen)
{
	size_t len = strlen(path);
	if (len > 1 && path[len - 1] == '/')
		path[--len] = '\0';
	const char *s = path[0] == '/' ? path + 1 : path;
	if (!*s)
		return refuse(why, whylen, "the repository URL has no path");
	for (;;) {
		size_t n = strcspn(s, "/");
		if (n == 0 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.') ||
		    (n == 4 && strncasecmp(s, ".git", 4) == 0))
			return refuse(why, whylen, "the repository path may not have an empty, '.', '..' or "
						   "'.git' segment");
		if (!s[n])
			return 0;
		s += n + 1;
	}
}

/* A path without %-escapes (ssh, git://, scp-like, local): a conservative set of characters,
 * nothing a shell or an option parser would read. */
static int plain_path(char *out, size_t outlen, const char *in, int flags, char *why, size_t whylen)
{
	if (in[0] == '-')
		return refuse(why, whylen, "the repository path may not start with '-'");
	for (const char *p = in; *p; p++)
		if (!in_set((unsigned char)*p, "/._~+@,=:-", flags))
			return refuse(why, whylen, "the repository path holds a character tfgit does not "
						   "accept (letters, digits and / . _ ~ + @ , = : - only)");
	if (strlen(in) >= outlen)
		return refuse(why, whylen, "the repository URL is too long");
	snprintf(out, outlen, "%s", in);
	return 0;
}

static int parse_host(url_parts *out, const char *h, size_t n, int flags, char *why, size_t whylen)
{
	if (n == 0 || n >= sizeof(out->host))
		return refuse(why, whylen, "the repository URL has no usable host");
	if (h[0] == '[') {
		if (h[n - 1] != ']')
			return refuse(why, whylen, "the repository URL's IPv6 host lacks its ']'");
		for (size_t i = 1; i + 1 < n; i++)
			if (!isxdigit((unsigned char)h[i]) && h[i] != ':' && h[i] != '.')
				return refuse(why, whylen, "the repository URL's IPv6 host is malformed");
	} else {
		if (h[0] == '-' || h[0] == '.')
			return refuse(why, whylen, "the repository URL's host may not start with '-' or '.'");
		for (size_t i = 0; i < n; i++)
			if (!in_set((unsigned char)h[i], ".-_", flags))
				return refuse(why, whylen, "the repository URL's host holds a character other than "
							   "letters, digits, '.', '-' and '_'");
	}
	for (size_t i = 0; i < n; i++)
		out->host[i] = (char)tolower((unsigned char)h[i]);
	out->host[n] = '\0';
	return 0;
}

static int parse_port(url_parts *out, const char *p, size_t n, const char *fallback, int flags,
		      char *why, size_t whylen)
{
	if (!p) {
		snprintf(out->port, sizeof(out->port), "%s", fallback);
		return 0;
	}
	if ((flags & URL_PATTERN) && n == 1 && p[0] == '*') {
		snprintf(out->port, sizeof(out->port), "*");
		return 0;
	}
	long v = 0;
	for (size_t i = 0; i < n; i++) {
		if (!isdigit((unsigned char)p[i]) || i >= 5)
			return refuse(why, whylen, "the repository URL's port must be a number from 1 to 65535");
		v = v * 10 + (p[i] - '0');
	}
	if (v < 1 || v > 65535)
		return refuse(why, whylen, "the repository URL's port must be a number from 1 to 65535");
	snprintf(out->port, sizeof(out->port), "%ld", v);
	return 0;
}

/* userinfo: credentials never belong in a URL a request names; an ssh login name does. */
static int parse_userinfo(url_parts *out, const char *u, size_t n, int flags, char *why, size_t whylen)
{
	const char *colon = memchr(u, ':', n);
	size_t ulen = colon ? (size_t)(colon - u) : n;
	out->has_password = colon != NULL;
	if (flags & URL_CREDENTIALS) {
		snprintf(out->user, sizeof(out->user), "%.*s", (int)(ulen < 255 ? ulen : 255), u);
		return 0;
	}
	if (out->kind != URL_SSH && out->kind != URL_SCP)
		return refuse(why, whylen, "credentials do not belong in the repository URL: the server "
					   "has its own (GIT_USERNAME, GIT_PASSWORD_FILE, TFGIT_NETRC)");
	if (colon)
		return refuse(why, whylen, "a password does not belong in the repository URL");
	if (ulen == 0 || ulen >= sizeof(out->user) || u[0] == '-')
		return refuse(why, whylen, "the repository URL's user name is not usable");
	for (size_t i = 0; i < ulen; i++)
		if (!in_set((unsigned char)u[i], "._-", flags))
			return refuse(why, whylen, "the repository URL's user name holds a character other than "
						   "letters, digits, '.', '_' and '-'");
	memcpy(out->user, u, ulen);
	out->user[ulen] = '\0';
	return 0;
}

static const struct {
	const char *prefix;
	url_kind kind;
	const char *port;
} schemes[] = {
	{"http://", URL_HTTP, "80"},
	{"https://", URL_HTTPS, "443"},
	{"ssh://", URL_SSH, "22"},
	{"git://", URL_GIT, "9418"},
};

/* scheme://[userinfo@]host[:port]/path */
static int parse_authority_url(url_parts *out, const char *url, size_t s, int flags, char *why,
			       size_t whylen)
{
	const char *auth = url + strlen(schemes[s].prefix);
	const char *slash = strchr(auth, '/');
	int rc;
	out->kind = schemes[s].kind;
	if (!slash)
		return refuse(why, whylen, "the repository URL has no path");
	const char *at = memchr(auth, '@', (size_t)(slash - auth)), *host = auth;
	if (at) {
		if (memchr(at + 1, '@', (size_t)(slash - at - 1)))
			return refuse(why, whylen, "the repository URL has more than one '@' before its path");
		if ((rc = parse_userinfo(out, auth, (size_t)(at - auth), flags, why, whylen)) < 0)
			return rc;
		host = at + 1;
	}
	const char *end = slash, *colon = NULL;
	if (host[0] == '[') {
		const char *close = memchr(host, ']', (size_t)(end - host));
		if (close && close + 1 < end && close[1] == ':')
			colon = close + 1;
	} else {
		colon = memchr(host, ':', (size_t)(end - host));
	}
	if ((rc = parse_host(out, host, (size_t)((colon ? colon : end) - host), flags, why, whylen)) < 0 ||
	    (rc = parse_port(out, colon ? colon + 1 : NULL, colon ? (size_t)(end - colon - 1) : 0,
			     schemes[s].port, flags, why, whylen)) < 0)
		return rc;
	if (out->kind == URL_HTTP || out->kind == URL_HTTPS)
		rc = decode_path(out->path, sizeof(out->path), slash, why, whylen);
	else
		rc = plain_path(out->path, sizeof(out->path), slash, flags, why, whylen);
	return rc < 0 ? rc : segments_check(out->path, why, whylen);
}

/* scp-like [user@]host:path, the host part free of '/' */
static int parse_scp(url_parts *out, const char *url, int flags, char *why, size_t whylen)
{
	const char *colon = strchr(url, ':'), *slash = strchr(url, '/'), *host = url;
	int rc;
	out->kind = URL_SCP;
	if (!colon || (slash && slash < colon) || colon == url)
		return refuse(why, whylen, "the repository must be an absolute path or a git URL (https://, "
					   "ssh://, git://, file://, user@host:path)");
	const char *at = memchr(url, '@', (size_t)(colon - url));
	if (at) {
		if ((rc = parse_userinfo(out, url, (size_t)(at - url), flags, why, whylen)) < 0)
			return rc;
		host = at + 1;
	}
	if ((rc = parse_host(out, host, (size_t)(colon - host), flags, why, whylen)) < 0 ||
	    (rc = parse_port(out, NULL, 0, "22", flags, why, whylen)) < 0 ||
	    (rc = plain_path(out->path, sizeof(out->path), colon + 1, flags, why, whylen)) < 0)
		return rc;
	return segments_check(out->path, why, whylen);
}

int url_parse(url_parts *out, const char *url, int flags, char *why, size_t whylen)
{
	memset(out, 0, sizeof(*out));
	if (!url || !*url)
		return refuse(why, whylen, "the repository URL is empty");
	if (strlen(url) > URL_MAX)
		return refuse(why, whylen, "the repository URL is too long");
	for (const char *p = url; *p; p++)
		if ((unsigned char)*p <= 0x20 || *p == 0x7f || *p == '\\')
			return refuse(why, whylen, "the repository URL may not hold spaces, control characters "
						   "or '\\'");
	if (url[0] == '/' || starts_with(url, "file://")) {
		const char *path = url[0] == '/' ? url : url + 7;
		int rc;
		out->kind = URL_LOCAL;
		if (path[0] != '/')
			return refuse(why, whylen, "a file:// URL must name an absolute path (file:///...)");
		if ((rc = plain_path(out->path, sizeof(out->path), path, flags, why, whylen)) < 0)
			return rc;
		return segments_check(out->path, why, whylen);
	}
	for (size_t s = 0; s < sizeof(schemes) / sizeof(schemes[0]); s++)
		if (starts_with(url, schemes[s].prefix))
			return parse_authority_url(out, url, s, flags, why, whylen);
	if (strstr(url, "://"))
		return refuse(why, whylen, "the repository URL's scheme is not one of http, https, ssh, "
					   "git, file");
	return parse_scp(out, url, flags, why, whylen);
}

/* realpath of the longest existing leading part of path, then the rest as it was. */
static int resolve_existing(char *out, size_t outlen, const char *path)
{
	char head[PATH_MAX], real[PATH_MAX];
	const char *rest = "";
	if (snprintf(head, sizeof(head), "%s", path) >= (int)sizeof(head))
		return -1;
	for (;;) {
		if (realpath(head[0] ? head : "/", real)) {
			const char *sep = strcmp(real, "/") && rest[0] ? "/" : "";
			if (snprintf(out, outlen, "%s%s%s", real, sep, rest) >= (int)outlen)
				return -1;
			return 0;
		}
		if (errno != ENOENT && errno != ENOTDIR)
			return -1;
		char *cut = strrchr(head, '/');
		if (!cut)
			return -1;
		*cut = '\0';
		rest = path + (cut - head) + 1;
	}
}

/* Appends len bytes of path at out + o: for http(s) %-encoded only where it must be (upper-case
 * hex), as it is for the other kinds. 0, or -1 when out is too short. */
static int append_path(char *out, size_t outlen, size_t o, url_kind kind, const char *path, size_t len)
{
	int plain = kind != URL_HTTP && kind != URL_HTTPS;
	for (size_t i = 0; i < len && o < outlen; i++) {
		unsigned char ch = (unsigned char)path[i];
		if (plain || ch == '/' || (ch < 0x80 && (isalnum(ch) || strchr("-._~!$&'()*+,;=:@", ch))))
			out[o++] = (char)ch;
		else
			o += (size_t)snprintf(out + o, outlen - o, "%%%02X", ch);
	}
	if (o >= outlen)
		return -1;
	out[o] = '\0';
	return 0;
}

/* One spelling per repository: scheme, user, lower-case host, explicit port, the path without
 * a trailing '/' and, for http(s), %-encoded only where it must be (upper-case hex). So
 * "r.gi%74", "R.git/" and "r.git" are one cache entry, one flock, one connection target. */
static int url_canonical(char *out, size_t outlen, const url_parts *p, const char *url)
{
	size_t s = 0, o;
	while (s < sizeof(schemes) / sizeof(schemes[0]) && schemes[s].kind != p->kind)
		s++;
	if (p->kind == URL_SCP || s == sizeof(schemes) / sizeof(schemes[0]))
		return snprintf(out, outlen, "%s", url) < (int)outlen ? 0 : -1;
	o = (size_t)snprintf(out, outlen, "%s%s%s%s:%s", schemes[s].prefix, p->user, p->user[0] ? "@" : "",
			     p->host, p->port);
	return append_path(out, outlen, o, p->kind, p->path, strlen(p->path));
}

int url_resolve(char *out, size_t outlen, const char *url, int pattern)
{
	const char *path = url[0] == '/' ? url : starts_with(url, "file://") ? url + 7 : NULL;
	if (!path) {
		url_parts p;
		char why[8];
		if (!pattern && url_parse(&p, url, 0, why, sizeof(why)) == 0)
			return url_canonical(out, outlen, &p, url);
		if (snprintf(out, outlen, "%s", url) >= (int)outlen)
			return -1;
		return 0;
	}
	size_t fixed = strlen(path);
	if (pattern) { /* only the directories before the first glob character are real */
		size_t g = strcspn(path, GLOB_CHARS);
		const char *cut = path + g;
		while (cut > path && *cut != '/')
			cut--;
		fixed = (size_t)(cut - path);
	}
	char head[PATH_MAX], resolved[PATH_MAX];
	if (fixed >= sizeof(head))
		return -1;
	memcpy(head, path, fixed);
	head[fixed] = '\0';
	if (resolve_existing(resolved, sizeof(resolved), head) < 0)
		return -1;
	/* "/" resolved, then "/x": no doubled slash */
	const char *base = strcmp(resolved, "/") == 0 && path[fixed] == '/' ? "" : resolved;
	if (snprintf(out, outlen, "%s%s", base, path + fixed) >= (int)outlen)
		return -1;
	return 0;
}

static int glob_or_equal(const char *pattern, const char *s, int flags)
{
	if (strpbrk(pattern, GLOB_CHARS))
		return fnmatch(pattern, s, flags) == 0;
	return strcmp(pattern, s) == 0;
}

int url_match(const url_parts *p, const url_parts *u)
{
	if (p->kind != u->kind || !glob_or_equal(p->user, u->user, 0) ||
	    !glob_or_equal(p->host, u->host, 0))
		return 0;
	if (strcmp(p->port, "*") != 0 && strcmp(p->port, u->port) != 0)
		return 0;
	return fnmatch(p->path, u->path, FNM_PATHNAME | FNM_PERIOD) == 0;
}

/* The public face (tfgit.h). */

int tfgit_repository_check(const char *url, int credentials, char *why, size_t whylen)
{
	url_parts u;
	return url_parse(&u, url, credentials ? URL_CREDENTIALS : 0, why, whylen);
}

int tfgit_repository_resolve(char *out, size_t outlen, const char *url)
{
	return url_resolve(out, outlen, url, 0) < 0 ? TFGIT_EINVALID : 0;
}

/* Calls fn on each space-separated word of list until it returns non-zero; returns that. */
static int each_word(const char *list, int (*fn)(const char *word, void *ctx), void *ctx)
{
	char word[URL_MAX + 1];
	for (const char *p = list; p && *p;) {
		p += strspn(p, " \t\n");
		size_t n = strcspn(p, " \t\n");
		if (n == 0)
			break;
		int rc = -1;
		if (n < sizeof(word)) {
			memcpy(word, p, n);
			word[n] = '\0';
			rc = fn(word, ctx);
		}
		if (rc != 0)
			return rc;
		p += n;
	}
	return 0;
}

/* A pattern as matched: its local directory resolved, then parsed. */
static int pattern_parts(url_parts *out, const char *pattern, char *why, size_t whylen)
{
	char resolved[URL_MAX + 1];
	if (url_resolve(resolved, sizeof(resolved), pattern, 1) < 0)
		return refuse(why, whylen, "the pattern's directory cannot be resolved");
	return url_parse(out, resolved, URL_PATTERN, why, whylen);
}

int tfgit_pattern_match(const char *pattern, const char *url)
{
	url_parts p, u;
	/* the operator's default repository may carry credentials: they are not its identity */
	if (!url || url_parse(&u, url, URL_CREDENTIALS, NULL, 0) < 0)
		return 0;
	if (u.kind != URL_SSH && u.kind != URL_SCP)
		u.user[0] = '\0';
	return pattern_parts(&p, pattern, NULL, 0) == 0 && url_match(&p, &u);
}

static int match_word(const char *word, void *ctx)
{
	return tfgit_pattern_match(word, ctx) ? 1 : 0;
}

int tfgit_repository_allowed(const char *url, const char *patterns)
{
	return each_word(patterns, match_word, (void *)url) == 1;
}

struct check_ctx {
	char *why;
	size_t whylen;
};

static int check_word(const char *word, void *ctx)
{
	struct check_ctx *c = ctx;
	url_parts p;
	char reason[256];
	if (pattern_parts(&p, word, reason, sizeof(reason)) == 0)
		return 0;
	snprintf(c->why, c->whylen, "%s: %s", word, reason);
	return -1;
}

int tfgit_patterns_check(const char *patterns, char *why, size_t whylen)
{
	struct check_ctx c = {why, whylen};
	return each_word(patterns, check_word, &c) ? TFGIT_EINVALID : 0;
}

/* Globs of names (states, refs): fnmatch with '*' not crossing '/'. */
static int match_name(const char *word, void *ctx)
{
	return fnmatch(word, ctx, FNM_PATHNAME) == 0 ? 1 : 0;
}

int tfgit_name_allowed(const char *name, const char *patterns)
{
	return !patterns || each_word(patterns, match_name, (void *)name) == 1;
}

void tfgit_url_redact(char *out, size_t outlen, const char *url)
{
	const char *host;
	const char *at = url_userinfo_at(url, &host, "/");
	if (!outlen)
		return;
	if (!at)
		snprintf(out, outlen, "%s", url ? url : "");
	else
		snprintf(out, outlen, "%.*s***%s", (int)(host - url), url, at);
}

/* Repository identities (crypt.c binds a sealed state to one) */

int tfgit_repository_identity(char *out, size_t outlen, const char *url)
{
	url_parts p;
	char resolved[URL_MAX + 1];
	size_t s = 0, o, len;
	if (!url || url_parse(&p, url, URL_CREDENTIALS, NULL, 0) < 0)
		return TFGIT_EINVALID;
	if (p.kind == URL_LOCAL && (url_resolve(resolved, sizeof(resolved), url, 0) < 0 ||
				    url_parse(&p, resolved, 0, NULL, 0) < 0))
		return TFGIT_EINVALID;
	/* the path as it is, ".git" and all: a server may hold both a and a.git (git http-backend,
	 * any local or ssh path), two repositories that must not share an identity */
	len = strlen(p.path);
	/* an ssh login chooses the repository where the path is relative to its home */
	int login = (p.kind == URL_SSH || p.kind == URL_SCP) && p.user[0];
	if (p.kind == URL_LOCAL)
		o = 0;
	else if (p.kind == URL_SCP)
		o = (size_t)snprintf(out, outlen, "%s%s%s:", login ? p.user : "", login ? "@" : "", p.host);
	else {
		while (schemes[s].kind != p.kind)
			s++;
		int other_port = strcmp(p.port, schemes[s].port) != 0;
		o = (size_t)snprintf(out, outlen, "%s%s%s%s%s%s", schemes[s].prefix, login ? p.user : "",
				     login ? "@" : "", p.host, other_port ? ":" : "", other_port ? p.port : "");
	}
	if (o >= outlen || append_path(out, outlen, o, p.kind, p.path, len) < 0)
		return TFGIT_EINVALID;
	return 0;
}

#define IDS_MAX 256
#define ID_MAX 256

/* One entry of TFGIT_REPOSITORY_IDS, "URL=ID" (split at the last '='): the identity of its URL
 * into identity, its ID into id. 0, or TFGIT_EINVALID with the reason in why. */
static int ids_entry(const char *word, char identity[URL_MAX + 1], char id[ID_MAX + 1], char *why,
		     size_t whylen)
{
	char url[URL_MAX + 1], reason[256] = "no identity can be made of it", shown[URL_MAX + 1];
	const char *eq = strrchr(word, '=');
	tfgit_url_redact(shown, sizeof(shown), word); /* a reason never shows a credential */
	if (!eq || eq == word || !eq[1]) {
		snprintf(why, whylen, "%.200s is not URL=ID", shown);
		return TFGIT_EINVALID;
	}
	size_t ulen = (size_t)(eq - word), ilen = strlen(eq + 1);
	snprintf(url, sizeof(url), "%.*s", (int)ulen, word);
	if (url_parse(&(url_parts){0}, url, 0, reason, sizeof(reason)) < 0 ||
	    tfgit_repository_identity(identity, URL_MAX + 1, url) < 0) {
		snprintf(why, whylen, "%.200s: %s", shown, reason);
		return TFGIT_EINVALID;
	}
	if (ilen > ID_MAX || strspn(eq + 1, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
					     "._~:/@+%-") != ilen) {
		snprintf(why, whylen, "%.200s: an ID is 1 to %d letters, digits and . _ ~ : / @ + %% -", shown,
			 ID_MAX);
		return TFGIT_EINVALID;
	}
	memcpy(id, eq + 1, ilen + 1);
	return 0;
}

struct ids_ctx {
	const char *identity; /* looked up; NULL: checking */
	char *out;            /* the ID found */
	size_t outlen;
	char (*seen)[2][URL_MAX + 1]; /* checking: the identities and IDs so far */
	size_t n;
	char *why;
	size_t whylen;
};

static int ids_word(const char *word, void *ctx)
{
	struct ids_ctx *c = ctx;
	char identity[URL_MAX + 1], id[ID_MAX + 1], why[512];
	if (ids_entry(word, identity, id, c->why ? c->why : why, c->why ? c->whylen : sizeof(why)) < 0)
		return -1;
	if (c->identity) {
		if (strcmp(identity, c->identity) != 0)
			return 0;
		return snprintf(c->out, c->outlen, "%s", id) < (int)c->outlen ? 1 : -1;
	}
	if (c->n == IDS_MAX) {
		snprintf(c->why, c->whylen, "more than %d entries", IDS_MAX);
		return -1;
	}
	for (size_t i = 0; i < c->n; i++) {
		if (!strcmp(c->seen[i][0], identity) || !strcmp(c->seen[i][1], id)) {
			/* one repository, one ID: two for one would be ambiguous, one for two would
			 * let the states of one open in the other */
			snprintf(c->why, c->whylen, "%.200s: %s", word, !strcmp(c->seen[i][0], identity)
				 ? "a second entry for the same repository" : "an ID that another repository has");
			return -1;
		}
	}
	snprintf(c->seen[c->n][0], URL_MAX + 1, "%s", identity);
	snprintf(c->seen[c->n][1], URL_MAX + 1, "%s", id);
	c->n++;
	return 0;
}

int tfgit_repository_ids_check(const char *ids, char *why, size_t whylen)
{
	struct ids_ctx c = {.seen = calloc(IDS_MAX, sizeof(*c.seen)), .why = why, .whylen = whylen};
	if (whylen)
		*why = '\0';
	int rc = c.seen ? each_word(ids, ids_word, &c) : -1;
	if (!c.seen)
		snprintf(why, whylen, "out of memory");
	else if (rc != 0 && !*why)
		snprintf(why, whylen, "an entry longer than %d bytes", URL_MAX);
	free(c.seen);
	return rc ? TFGIT_EINVALID : 0;
}

int tfgit_repository_id(char *out, size_t outlen, const char *url, const char *ids)
{
	char identity[URL_MAX + 1];
	if (tfgit_repository_identity(identity, sizeof(identity), url) < 0)
		return TFGIT_EINVALID;
	struct ids_ctx c = {.identity = identity, .out = out, .outlen = outlen};
	int rc = ids ? each_word(ids, ids_word, &c) : 0;
	if (rc < 0)
		return TFGIT_EINVALID; /* checked at load: only a filesystem that changed since */
	if (rc == 0 && snprintf(out, outlen, "%s", identity) >= (int)outlen)
		return TFGIT_EINVALID;
	return 0;
}
