/* Repository URLs parsed into their parts before anything is matched or connected to, and the
 * allowlist's patterns matched against them part by part. */
#ifndef TFGIT_URL_H
#define TFGIT_URL_H

#include <stddef.h>

#define URL_MAX 2048

typedef enum { URL_LOCAL, URL_HTTP, URL_HTTPS, URL_SSH, URL_GIT, URL_SCP } url_kind;

typedef struct {
	url_kind kind;       /* file:// is URL_LOCAL */
	char user[256];      /* the login of ssh:// and scp-like URLs; empty when none */
	int has_password;    /* userinfo held ':' (only the default repository may) */
	char host[256];      /* lower case; an IPv6 literal keeps its brackets */
	char port[8];        /* explicit, else the scheme's default; "*" in a pattern; empty: local */
	char path[URL_MAX + 1]; /* %-decoded for URL schemes, as written for scp-like and local;
				 * a local path resolved (url_resolve); no trailing '/' */
} url_parts;

enum {
	URL_PATTERN = 1,     /* glob characters allowed in user, host, port and path */
	URL_CREDENTIALS = 2, /* userinfo allowed (the operator's default repository) */
};

/* Parses url; 0, or TFGIT_EINVALID with the reason in why (never echoing userinfo). */
int url_parse(url_parts *out, const char *url, int flags, char *why, size_t whylen);

/* For a local path or file:// URL: writes the path with every existing directory resolved
 * (realpath), so a symlink cannot lead out of an allowed directory; other URLs are copied.
 * For a pattern, only the part before the first glob character is resolved. 0 or -1. */
int url_resolve(char *out, size_t outlen, const char *url, int pattern);

/* 1 when u matches pattern p part by part: scheme and user equal, host and path by fnmatch
 * ('*' never crosses '/' in the path, nor '.' at a segment's start), port equal or '*'. */
int url_match(const url_parts *p, const url_parts *u);

#endif
