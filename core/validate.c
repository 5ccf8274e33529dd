/* Allowlist checks of what a request may name: state paths, branches, repositories. */
#include <fnmatch.h>
#include <stdio.h>
#include <string.h>

#include <git2.h>

#include "internal.h"
#include "tfgit.h"

#define STATE_MAX 1024
#define REF_MAX 1024
#define URL_MAX 2048

static int is_ctl(unsigned char c)
{
	return c < 0x20 || c == 0x7f;
}

/* Each '/'-separated segment must be non-empty, not "." or "..", not ".git". */
static int segments_safe(const char *p, size_t len)
{
	size_t start = 0;
	for (size_t i = 0; i <= len; i++) {
		if (i < len && p[i] != '/')
			continue;
		size_t n = i - start;
		const char *s = p + start;
		if (n == 0 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
			return 0;
		if (n == 4 && strncasecmp(s, ".git", 4) == 0)
			return 0;
		start = i + 1;
	}
	return 1;
}

int tfgit_state_path_check(const char *state)
{
	if (!state || !*state)
		return TFGIT_EINVALID;
	size_t len = strlen(state);
	if (len > STATE_MAX || state[0] == '/' || state[len - 1] == '/')
		return TFGIT_EINVALID;
	for (size_t i = 0; i < len; i++)
		if (is_ctl((unsigned char)state[i]) || state[i] == '\\')
			return TFGIT_EINVALID;
	if (len >= 5 && strcmp(state + len - 5, ".lock") == 0)
		return TFGIT_EINVALID;
	return segments_safe(state, len) ? 0 : TFGIT_EINVALID;
}

static int branch_ok(const char *name)
{
	int valid = 0;
	if (git_branch_name_is_valid(&valid, name) < 0)
		return 0;
	return valid;
}

/* The branch itself and the lock branch locks/<state> must both be valid branch names. */
int tfgit_ref_check(const char *ref, const char *state)
{
	char lock[REF_MAX + STATE_MAX + 8];
	if (!ref || !*ref || strlen(ref) > REF_MAX || !branch_ok(ref))
		return TFGIT_EINVALID;
	if (strncmp(ref, "locks/", 6) == 0)
		return TFGIT_EINVALID; /* would collide with lock branches */
	if (state) {
		snprintf(lock, sizeof(lock), "locks/%s", state);
		if (!branch_ok(lock))
			return TFGIT_EINVALID;
	}
	return 0;
}

static int starts_with(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Absolute paths, file://, http(s)://, ssh://, git:// and scp-like user@host:path are accepted. */
int tfgit_repository_check(const char *url)
{
	if (!url || !*url)
		return TFGIT_EINVALID;
	size_t len = strlen(url);
	if (len > URL_MAX)
		return TFGIT_EINVALID;
	for (size_t i = 0; i < len; i++)
		if (is_ctl((unsigned char)url[i]) || url[i] == ' ' || url[i] == '\\')
			return TFGIT_EINVALID;

	const char *path;
	if (url[0] == '/') {
		path = url;
	} else if (starts_with(url, "file:///")) {
		path = url + 7;
	} else if (starts_with(url, "https://") || starts_with(url, "http://") ||
		   starts_with(url, "ssh://") || starts_with(url, "git://")) {
		const char *host = strstr(url, "://") + 3;
		const char *at = strchr(host, '@');
		const char *slash = strchr(host, '/');
		if (at && (!slash || at < slash))
			host = at + 1;
		if (*host == '-' || *host == '/' || !slash)
			return TFGIT_EINVALID;
		path = slash;
	} else if (strstr(url, "://")) {
		return TFGIT_EINVALID; /* a scheme libgit2 has no transport for */
	} else {
		/* scp-like: [user@]host:path, the host part free of '/' */
		const char *colon = strchr(url, ':');
		const char *slash = strchr(url, '/');
		if (!colon || (slash && slash < colon) || url[0] == '-' || colon == url)
			return TFGIT_EINVALID;
		const char *at = strchr(url, '@');
		if (at && at < colon && at[1] == '-')
			return TFGIT_EINVALID;
		path = colon + 1;
		if (*path == '-' || !*path)
			return TFGIT_EINVALID;
		if (*path == '/') /* an absolute path on the host */
			path++;
		/* a relative scp path is allowed, but not ./ or ../ segments */
		return segments_safe(path, strlen(path)) ? 0 : TFGIT_EINVALID;
	}
	/* path begins with '/'; check the segments after it */
	if (strstr(path, "//"))
		return TFGIT_EINVALID;
	size_t plen = strlen(path + 1);
	if (plen == 0)
		return TFGIT_EINVALID;
	if (path[plen] == '/') /* a single trailing slash is fine */
		plen--;
	return segments_safe(path + 1, plen) ? 0 : TFGIT_EINVALID;
}

int tfgit_repository_allowed(const char *url, const char *patterns)
{
	char pat[URL_MAX + 1];
	const char *p = patterns;
	if (!url || !patterns)
		return 0;
	while (*p) {
		while (*p == ' ' || *p == '\t' || *p == '\n')
			p++;
		size_t n = strcspn(p, " \t\n");
		if (n == 0)
			break;
		if (n <= URL_MAX) {
			memcpy(pat, p, n);
			pat[n] = '\0';
			if (fnmatch(pat, url, FNM_PATHNAME) == 0)
				return 1;
		}
		p += n;
	}
	return 0;
}

const char *url_userinfo_at(const char *url, const char **authority, const char *stops)
{
	const char *scheme = url ? strstr(url, "://") : NULL;
	const char *at = NULL;
	*authority = scheme ? scheme + 3 : url;
	if (!scheme)
		return NULL;
	for (const char *c = *authority; *c && !strchr(stops, *c); c++)
		if (*c == '@')
			at = c;
	return at;
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
