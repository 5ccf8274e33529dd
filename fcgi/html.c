/* The HTML writer (html.h): a growing buffer, escaping, links. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "html.h"

static void put(struct html *h, const char *s, size_t n)
{
	if (h->failed || !n)
		return;
	if (h->b.size + n + 1 > h->cap) {
		size_t cap = h->cap ? h->cap : 8192;
		while (cap < h->b.size + n + 1)
			cap *= 2;
		char *p = realloc(h->b.ptr, cap);
		if (!p) {
			h->failed = 1;
			return;
		}
		h->b.ptr = p;
		h->cap = cap;
	}
	memcpy(h->b.ptr + h->b.size, s, n);
	h->b.size += n;
	h->b.ptr[h->b.size] = '\0';
}

void html_raw(struct html *h, const char *markup)
{
	put(h, markup, strlen(markup));
}

void html_text(struct html *h, const char *text)
{
	for (const char *p = text ? text : ""; *p;) {
		size_t n = strcspn(p, "&<>\"'");
		put(h, p, n);
		p += n;
		switch (*p) {
		case '&': put(h, "&amp;", 5); break;
		case '<': put(h, "&lt;", 4); break;
		case '>': put(h, "&gt;", 4); break;
		case '"': put(h, "&quot;", 6); break;
		case '\'': put(h, "&#39;", 5); break;
		default: continue; /* the end */
		}
		p++;
	}
}

void html_num(struct html *h, long long n)
{
	char s[32];
	put(h, s, (size_t)snprintf(s, sizeof(s), "%lld", n));
}

/* name=value with value %-encoded (only unreserved characters and '/' stay), then escaped. */
static void param(struct html *h, int *first, const char *name, const char *value)
{
	static const char hex[] = "0123456789ABCDEF";
	if (!value || !*value)
		return;
	html_raw(h, *first ? "?" : "&amp;");
	*first = 0;
	html_raw(h, name);
	html_raw(h, "=");
	for (const unsigned char *p = (const unsigned char *)value; *p; p++) {
		char enc[4] = {(char)*p, 0, 0, 0};
		if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		      strchr("-._~/", *p))) {
			enc[0] = '%';
			enc[1] = hex[*p >> 4];
			enc[2] = hex[*p & 15];
		}
		put(h, enc, strlen(enc));
	}
}

void html_link(struct html *h, const struct html_link *l)
{
	int first = 1;
	char no[32];
	html_raw(h, l->page);
	param(h, &first, "repository", l->repository);
	param(h, &first, "ref", l->ref);
	param(h, &first, "state", l->state);
	param(h, &first, "version", l->version);
	param(h, &first, "sort", l->sort);
	if (l->page_no > 0) {
		snprintf(no, sizeof(no), "%ld", l->page_no);
		param(h, &first, "page", no);
	}
}

void html_time(struct html *h, long long t)
{
	char iso[32], shown[32];
	time_t tt = (time_t)t;
	struct tm tm;
	if (!t || !gmtime_r(&tt, &tm)) {
		html_raw(h, "-");
		return;
	}
	strftime(iso, sizeof(iso), "%Y-%m-%dT%H:%M:%SZ", &tm);
	strftime(shown, sizeof(shown), "%Y-%m-%d %H:%M UTC", &tm);
	html_raw(h, "<time datetime=\"");
	html_raw(h, iso);
	html_raw(h, "\">");
	html_raw(h, shown);
	html_raw(h, "</time>");
}

void html_age(struct html *h, long long t, long long now)
{
	long long d = now - t;
	char s[48];
	if (d < 0)
		d = 0;
	if (d < 120)
		snprintf(s, sizeof(s), "%lld s", d);
	else if (d < 7200)
		snprintf(s, sizeof(s), "%lld min", d / 60);
	else if (d < 172800)
		snprintf(s, sizeof(s), "%lld h", d / 3600);
	else
		snprintf(s, sizeof(s), "%lld d", d / 86400);
	html_raw(h, s);
}

void html_free(struct html *h)
{
	tfgit_buf_free(&h->b);
	h->cap = 0;
}
