/* Writing HTML pages: the one place where text becomes markup. Everything that did not come
 * from tfgit's own source (state paths, names, Who, URLs, messages) goes through html_text or
 * html_link, which escape it; html_raw takes only tfgit's own literals. */
#ifndef TFGIT_HTML_H
#define TFGIT_HTML_H

#include <stddef.h>

#include "../core/tfgit.h"

struct html {
	tfgit_buf b;
	size_t cap;
	int failed; /* out of memory: the page is not sent */
};

/* A link to one of the web view's pages: its parameters, each %-encoded then escaped; NULL or
 * empty ones are left out. */
struct html_link {
	const char *page;       /* "./", "state", "version" (relative to …/ui/) */
	const char *repository; /* NULL: the server's default repository */
	const char *ref;
	const char *state;
	const char *version;
	const char *sort;
	long page_no;           /* 0: left out */
};

void html_raw(struct html *h, const char *markup);
void html_text(struct html *h, const char *text);
/* A number into the page (printf's %lld). */
void html_num(struct html *h, long long n);
/* The link's address, for an href attribute (quotes are the caller's). */
void html_link(struct html *h, const struct html_link *l);
/* A time as "2026-11-29 15:04 UTC" inside <time datetime="…">; "-" for 0. */
void html_time(struct html *h, long long t);
/* How long ago t was, "5 min", "3 h", "2 d" (now: the time it is). */
void html_age(struct html *h, long long t, long long now);
void html_free(struct html *h);

#endif
