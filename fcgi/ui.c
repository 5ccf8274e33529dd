/* The web view's pages (ui.h). Every value shown is a name, a number, a time or a trailer: no
 * attribute or output value of a state is ever rendered, sensitive or not. All text goes
 * through html.c's escaping; the pages carry no script and a policy that forbids any. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../core/acl.h"
#include "../core/failures.h"
#include "html.h"
#include "response.h"
#include "route.h"
#include "style.h"
#include "ui.h"

#define VERSIONS_PER_PAGE 20
#define PAGE_MAX 1000000

/* No script, no frame, no foreign origin: only the stylesheet from here. */
static const char page_headers[] =
	"Content-Security-Policy: default-src 'none'; style-src 'self'; img-src 'self' data:; "
	"form-action 'self'; base-uri 'none'; frame-ancestors 'none'\r\n"
	"X-Frame-Options: DENY\r\nReferrer-Policy: no-referrer\r\n";

/* The page's links keep the repository as the request named it (the default repository's URL,
 * which may carry a password, never appears in a link) and the branch. */
static struct html_link link_to(const struct request *req, const char *page)
{
	struct html_link l = {page, req->q.repository && *req->q.repository ? req->q.repository : NULL,
			      req->q.ref && *req->q.ref ? req->q.ref : NULL, NULL, NULL, NULL, 0};
	return l;
}

static void head(struct html *h, const struct request *req, const struct settings *cfg, const char *title)
{
	char shown[512];
	struct html_link home = link_to(req, "./");
	tfgit_url_redact(shown, sizeof(shown), req->target.url);
	html_raw(h, "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
		    "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
		    "<link rel=\"icon\" href=\"data:,\"><link rel=\"stylesheet\" href=\"style.css\"><title>");
	html_text(h, title);
	html_raw(h, " · tfgit</title></head>\n<body><header><a href=\"");
	html_link(h, &home);
	html_raw(h, "\">tfgit</a><span class=\"where\">");
	html_text(h, shown);
	html_raw(h, " @ ");
	html_text(h, req->target.ref ? req->target.ref : cfg->default_ref);
	html_raw(h, "</span></header>\n<main>\n");
}

static void send_page(struct request *req, struct html *h)
{
	html_raw(h, "</main></body></html>\n");
	if (h->failed)
		respond_error(req, 500, "out of memory rendering the page");
	else
		respond(req, 200, page_headers, "text/html; charset=utf-8", h->b.ptr, h->b.size);
	html_free(h);
}

/* The core's answer as an error response: ENOTFOUND as a 404 with a sentence for people. */
static void respond_failure(struct request *req, int rc, const char *not_found)
{
	if (rc == TFGIT_ENOTFOUND)
		respond_error(req, 404, req->result.message[0] ? req->result.message : not_found);
	else
		respond_result(req, rc);
}

/* One cell holding text (escaped), of class cls (a literal of this file) when not NULL. */
static void cell(struct html *h, const char *cls, const char *text)
{
	html_raw(h, cls ? "<td class=\"" : "<td>");
	if (cls) {
		html_raw(h, cls);
		html_raw(h, "\">");
	}
	html_text(h, text);
	html_raw(h, "</td>");
}

/* A lock badge: holder, operation, age; its ID only for who may remove it anyway. */
static void lock_badge(struct html *h, const tfgit_lock_entry *l, int show_id, long long now)
{
	html_raw(h, "<span class=\"badge locked\" title=\"locked\">locked by ");
	html_text(h, l->who[0] ? l->who : "(no Who)");
	if (l->operation[0]) {
		html_raw(h, " · ");
		html_text(h, l->operation);
	}
	html_raw(h, " · ");
	html_age(h, l->time, now);
	html_raw(h, "</span>");
	if (show_id && l->id[0]) {
		html_raw(h, " <code>");
		html_text(h, l->id);
		html_raw(h, "</code>");
	}
}

static int may_see_lock_id(const struct request *req, const struct settings *cfg, const char *state)
{
	return cfg->store.allow_force_unlock && route_may(req, cfg, ACL_FORCE_UNLOCK, state);
}

static int sort_by_change;

static int state_order(const void *pa, const void *pb)
{
	const tfgit_state_entry *a = pa, *b = pb;
	if (sort_by_change && a->last.time != b->last.time)
		return a->last.time > b->last.time ? -1 : 1;
	return strcmp(a->state, b->state);
}

/* Keeps the states the requester may read (the ACL, TFGIT_ALLOWED_STATES); their count. */
static size_t readable(tfgit_state_entry *l, size_t n, const struct request *req, const struct settings *cfg)
{
	size_t kept = 0;
	for (size_t i = 0; i < n; i++)
		if (route_may(req, cfg, ACL_READ, l[i].state))
			l[kept++] = l[i];
	return kept;
}

static void branch_form(struct html *h, const struct request *req, const struct settings *cfg)
{
	html_raw(h, "<form class=\"pick\" method=\"get\" action=\"./\"><label>repository"
		    "<input name=\"repository\" value=\"");
	html_text(h, req->q.repository ? req->q.repository : "");
	html_raw(h, "\" placeholder=\"the server's default\"></label><label>branch<input name=\"ref\" value=\"");
	html_text(h, req->target.ref ? req->target.ref : cfg->default_ref);
	html_raw(h, "\"></label><button type=\"submit\">show</button></form>\n");
}

static void state_row(struct html *h, const struct request *req, const struct settings *cfg,
		      const tfgit_state_entry *s, long long now)
{
	struct html_link to = link_to(req, "state");
	int show_id = may_see_lock_id(req, cfg, s->state);
	to.state = s->state;
	html_raw(h, "<tr><td class=\"mono\"><a href=\"");
	html_link(h, &to);
	html_raw(h, "\">");
	html_text(h, s->state);
	html_raw(h, "</a></td><td class=\"num\">");
	if (s->serial >= 0)
		html_num(h, s->serial);
	html_raw(h, "</td><td class=\"num\">");
	if (s->resources >= 0)
		html_num(h, s->resources);
	html_raw(h, "</td><td>");
	html_text(h, s->terraform_version);
	html_raw(h, "</td><td>");
	html_time(h, s->last.time);
	html_raw(h, "</td><td>");
	html_text(h, s->last.who);
	html_raw(h, "</td><td class=\"mono id\">");
	/* the Lock-ID of a change made under the lock still held is that lock's key (the trailer
	 * holds it as tfgit_escape wrote it) */
	char held[sizeof(s->lock.id) * 4];
	tfgit_escape(held, sizeof(held), s->lock.id, strlen(s->lock.id));
	if (show_id || !s->locked || (strcmp(s->last.lock_id, s->lock.id) != 0 && strcmp(s->last.lock_id, held) != 0))
		html_text(h, s->last.lock_id);
	else
		html_raw(h, "<span class=\"muted\">(the held lock's)</span>");
	html_raw(h, "</td><td>");
	if (s->locked)
		lock_badge(h, &s->lock, show_id, now);
	else
		html_raw(h, "<span class=\"badge free\">unlocked</span>");
	html_raw(h, "</td></tr>\n");
}

#define FAILURES_SHOWN 20

/* The last failed requests of this repository (failures.c) whose state the requester may read,
 * newest first: what Terraform does not print (the error's message, the request's id that names
 * the log line). A failure without a state that was checked is never shown here: nothing says
 * who may read it (tfgit failures shows every one to the operator). */
static void failures_box(struct html *h, const struct request *req, const struct settings *cfg)
{
	static struct failure f[FAILURES_KEPT];
	char repo[sizeof(f[0].repository)];
	size_t n = failures_list(f, FAILURES_KEPT), shown = 0;
	tfgit_url_redact(repo, sizeof(repo), req->target.url);
	html_raw(h, "<h2>Recent failed requests</h2>\n");
	for (size_t i = 0; i < n && shown < FAILURES_SHOWN; i++) {
		if (strcmp(f[i].repository, repo) != 0 || !f[i].state[0] || !route_may(req, cfg, ACL_READ, f[i].state))
			continue;
		if (!shown++)
			html_raw(h, "<p class=\"muted\">Requests to this repository answered with an error, newest "
				    "first: the message is what the client got (Terraform prints little of it); the "
				    "request id names the server's log line.</p>\n<table class=\"failures\"><thead><tr>"
				    "<th>When</th><th>Request id</th><th>Method</th><th>State</th><th>Branch</th>"
				    "<th class=\"num\">Status</th><th>Message</th></tr></thead><tbody>\n");
		html_raw(h, "<tr><td>");
		html_time(h, (long long)(f[i].time_ms / 1000));
		html_raw(h, "</td>");
		cell(h, "mono", f[i].id);
		cell(h, NULL, f[i].method);
		cell(h, "mono", f[i].state);
		cell(h, "mono", f[i].ref);
		html_raw(h, "<td class=\"num\">");
		html_num(h, f[i].status);
		html_raw(h, "</td>");
		cell(h, NULL, f[i].message);
		html_raw(h, "</tr>\n");
	}
	html_raw(h, shown ? "</tbody></table>\n" : "<p class=\"muted\">None kept for this repository.</p>\n");
}

void ui_repository(struct request *req, const struct settings *cfg)
{
	tfgit_state_entry *l = NULL;
	size_t n = 0, locked = 0;
	struct html h = {0};
	long long now = (long long)time(NULL);
	const char *sort = req->q.sort && *req->q.sort ? req->q.sort : "path";
	if (strcmp(sort, "path") != 0 && strcmp(sort, "changed") != 0) {
		respond_error(req, 400, "sort must be path or changed");
		return;
	}
	int rc = tfgit_states(&req->result, &cfg->store, &req->target, &l, &n);
	if (rc < 0 && rc != TFGIT_ENOTFOUND) {
		free(l);
		respond_failure(req, rc, "no such branch");
		return;
	}
	n = readable(l, n, req, cfg);
	sort_by_change = !strcmp(sort, "changed");
	if (n)
		qsort(l, n, sizeof(*l), state_order);
	for (size_t i = 0; i < n; i++)
		locked += l[i].locked != 0;
	head(&h, req, cfg, "States");
	html_raw(&h, "<h1>States</h1>\n");
	branch_form(&h, req, cfg);
	html_raw(&h, "<p class=\"muted\">");
	html_num(&h, (long long)n);
	html_raw(&h, n == 1 ? " state, " : " states, ");
	html_num(&h, (long long)locked);
	html_raw(&h, " locked");
	if (rc == TFGIT_ENOTFOUND)
		html_raw(&h, " (the branch does not exist yet)");
	html_raw(&h, "</p>\n<table class=\"states\"><thead><tr><th rowspan=\"2\">");
	struct html_link by = link_to(req, "./");
	by.sort = "path";
	html_raw(&h, "<a href=\"");
	html_link(&h, &by);
	html_raw(&h, sort_by_change ? "\">Path</a>" : "\">Path ▲</a>");
	html_raw(&h, "</th><th class=\"num\" rowspan=\"2\">Serial</th><th class=\"num\" rowspan=\"2\">Resources</th>"
		     "<th rowspan=\"2\">Terraform</th><th colspan=\"3\" class=\"group\">");
	by.sort = "changed";
	html_raw(&h, "<a href=\"");
	html_link(&h, &by);
	html_raw(&h, sort_by_change ? "\">Last change ▼</a>" : "\">Last change</a>");
	/* the Lock-ID is the last change's (the lock it was written under), grouped with it: not the
	 * lock held now, which is the Lock column's */
	html_raw(&h, "</th><th rowspan=\"2\">Lock now</th></tr>\n<tr><th>When</th><th>Who</th>"
		     "<th title=\"the lock the last change was written under\">its Lock-ID</th></tr></thead>\n<tbody>\n");
	for (size_t i = 0; i < n; i++)
		state_row(&h, req, cfg, &l[i], now);
	html_raw(&h, "</tbody></table>\n");
	failures_box(&h, req, cfg);
	free(l);
	send_page(req, &h);
}

/* The resources and outputs of the state's current version. */
static void state_contents(struct html *h, const tfgit_buf *content)
{
	tfgit_resource *res = NULL;
	tfgit_output *outs = NULL;
	size_t nres = 0, nouts = 0, total = 0;
	if (tfgit_state_summary(content->ptr, content->size, &res, &nres, &total, &outs, &nouts) < 0) {
		html_raw(h, "<p class=\"muted\">The state is not readable as JSON here (encrypted by the client?).</p>\n");
		return;
	}
	html_raw(h, "<h2>Resources (");
	html_num(h, (long long)total);
	html_raw(h, ")</h2>\n");
	if (total > nres) {
		html_raw(h, "<p class=\"muted\">The first ");
		html_num(h, (long long)nres);
		html_raw(h, " are listed.</p>\n");
	}
	html_raw(h, "<table class=\"resources\"><thead><tr><th>Address</th><th>Type</th><th>Provider</th>"
		    "<th>Mode</th><th class=\"num\">Instances</th></tr></thead><tbody>\n");
	for (size_t i = 0; i < nres; i++) {
		html_raw(h, "<tr>");
		cell(h, "mono", res[i].address);
		cell(h, "mono", res[i].type);
		cell(h, "mono", res[i].provider);
		cell(h, NULL, res[i].mode);
		html_raw(h, "<td class=\"num\">");
		html_num(h, (long long)res[i].instances);
		html_raw(h, "</td></tr>\n");
	}
	html_raw(h, "</tbody></table>\n<h2>Outputs (");
	html_num(h, (long long)nouts);
	html_raw(h, ")</h2>\n<p class=\"muted\">Names only: no value is shown here.</p>\n<ul class=\"outputs\">\n");
	for (size_t i = 0; i < nouts; i++) {
		html_raw(h, "<li><code>");
		html_text(h, outs[i].name);
		html_raw(h, outs[i].sensitive ? "</code> <span class=\"muted\">(sensitive)</span></li>\n" : "</code></li>\n");
	}
	html_raw(h, "</ul>\n");
	free(res);
	free(outs);
}

static void changes_cell(struct html *h, const tfgit_version *v)
{
	static const struct {
		char kind;
		const char *mark;
	} marks[] = {{'+', "<li class=\"add\">+ "}, {'-', "<li class=\"del\">- "}, {'~', "<li class=\"chg\">~ "}};
	if (!v->compared) {
		html_raw(h, "<span class=\"muted\">not comparable here (not a JSON state, or over 250,000 instances)</span>");
		return;
	}
	if (!v->changes_total) {
		html_raw(h, "<span class=\"muted\">no resource changed</span>");
		return;
	}
	html_raw(h, "<ul class=\"changes\">");
	for (size_t i = 0; i < v->nchanges; i++) {
		const tfgit_diff_entry *e = &v->changes[i];
		for (size_t k = 0; k < sizeof(marks) / sizeof(marks[0]); k++)
			if (marks[k].kind == e->kind)
				html_raw(h, marks[k].mark);
		html_text(h, e->address);
		if (e->kind == '~' && e->attributes[0]) {
			html_raw(h, " <span class=\"muted\">(");
			html_text(h, e->attributes);
			html_raw(h, ")</span>");
		}
		html_raw(h, "</li>");
	}
	if (v->changes_total > v->nchanges) {
		html_raw(h, "<li class=\"muted\">… and ");
		html_num(h, (long long)(v->changes_total - v->nchanges));
		html_raw(h, " more</li>");
	}
	html_raw(h, "</ul>");
}

static void versions_table(struct html *h, const struct request *req, const tfgit_version *v, size_t n,
			   size_t total, long page)
{
	struct html_link dl = link_to(req, "version");
	dl.state = req->target.state;
	html_raw(h, "<h2>Versions (");
	html_num(h, (long long)total);
	html_raw(h, ")</h2>\n<table class=\"versions\"><thead><tr><th>Version</th><th>When</th><th>Who</th>"
		    "<th class=\"num\">Serial</th><th>Changes by resource</th><th>JSON</th></tr></thead><tbody>\n");
	for (size_t i = 0; i < n; i++) {
		char short_id[13];
		snprintf(short_id, sizeof(short_id), "%.12s", v[i].commit);
		html_raw(h, "<tr><td class=\"mono\">");
		html_text(h, short_id);
		html_raw(h, "</td><td>");
		html_time(h, v[i].time);
		html_raw(h, "</td><td>");
		html_text(h, v[i].who);
		html_raw(h, "</td><td class=\"num\">");
		if (v[i].serial >= 0)
			html_num(h, v[i].serial);
		html_raw(h, "</td><td>");
		changes_cell(h, &v[i]);
		html_raw(h, "</td><td>");
		if (v[i].deleted) {
			html_raw(h, "<span class=\"muted\">deleted</span>");
		} else {
			dl.version = v[i].commit;
			html_raw(h, "<a href=\"");
			html_link(h, &dl);
			html_raw(h, "\" download>download</a>");
		}
		html_raw(h, "</td></tr>\n");
	}
	html_raw(h, "</tbody></table>\n<nav class=\"pages\">");
	struct html_link more = link_to(req, "state");
	more.state = req->target.state;
	if (page > 1) {
		more.page_no = page - 1;
		html_raw(h, "<a href=\"");
		html_link(h, &more);
		html_raw(h, "\">newer versions</a>");
	}
	if ((size_t)page * VERSIONS_PER_PAGE < total) {
		more.page_no = page + 1;
		html_raw(h, "<a href=\"");
		html_link(h, &more);
		html_raw(h, "\">older versions</a>");
	}
	html_raw(h, "</nav>\n");
}

/* The page number asked for (1 when absent); 0 when it is not one. */
static long page_number(const char *s)
{
	char *end;
	if (!s || !*s)
		return 1;
	long p = strtol(s, &end, 10);
	return *end || p < 1 || p > PAGE_MAX ? 0 : p;
}

void ui_state(struct request *req, const struct settings *cfg)
{
	struct html h = {0};
	tfgit_version *v = NULL;
	tfgit_lock_entry lock;
	size_t n = 0, total = 0;
	long page = page_number(req->q.page);
	if (!page) {
		respond_error(req, 400, "page must be a number from 1");
		return;
	}
	int locked = 0;
	int rc = tfgit_history_page(&req->result, &cfg->store, &req->target, (size_t)(page - 1) * VERSIONS_PER_PAGE,
				    VERSIONS_PER_PAGE, &v, &n, &total, &lock, &locked);
	if (rc == 0 && total == 0)
		rc = TFGIT_ENOTFOUND;
	if (rc < 0) {
		tfgit_versions_free(v, n);
		respond_failure(req, rc, "no such state on this branch");
		return;
	}
	int current = req->result.content.ptr != NULL;
	head(&h, req, cfg, req->target.state);
	html_raw(&h, "<h1 class=\"mono\">");
	html_text(&h, req->target.state);
	html_raw(&h, "</h1>\n<dl class=\"facts\"><dt>Lock</dt><dd>");
	if (locked)
		lock_badge(&h, &lock, may_see_lock_id(req, cfg, req->target.state), (long long)time(NULL));
	else
		html_raw(&h, "<span class=\"badge free\">unlocked</span>");
	html_raw(&h, "</dd>");
	if (current && n && page == 1) {
		html_raw(&h, "<dt>Serial</dt><dd>");
		if (v[0].serial >= 0)
			html_num(&h, v[0].serial);
		html_raw(&h, "</dd><dt>Lineage</dt><dd class=\"mono\">");
		html_text(&h, v[0].lineage);
		html_raw(&h, "</dd><dt>Size</dt><dd>");
		html_num(&h, (long long)req->result.content.size);
		html_raw(&h, " bytes</dd>");
	}
	html_raw(&h, "</dl>\n");
	if (current)
		state_contents(&h, &req->result.content);
	else
		html_raw(&h, "<p class=\"muted\">The state was deleted from this branch; its versions remain.</p>\n");
	versions_table(&h, req, v, n, total, page);
	tfgit_versions_free(v, n);
	send_page(req, &h);
}

void ui_version(struct request *req, const struct settings *cfg)
{
	char headers[700], name[256];
	const char *base = strrchr(req->target.state, '/');
	size_t o = 0;
	int rc = req->q.version ? tfgit_state_get_version(&req->result, &cfg->store, &req->target, req->q.version)
				: tfgit_state_get(&req->result, &cfg->store, &req->target);
	if (rc < 0) {
		respond_failure(req, rc, "no such state on this branch");
		return;
	}
	/* a file name of plain characters: the state's own name is the client's text */
	for (const char *p = base ? base + 1 : req->target.state; *p && o + 1 < 120; p++)
		name[o++] = strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-", *p) ? *p : '_';
	name[o] = '\0';
	snprintf(headers, sizeof(headers),
		 "Content-Disposition: attachment; filename=\"%.7s-%s.json\"\r\n"
		 "X-Tfgit-Version: %s\r\n", req->result.version, name, req->result.version);
	respond(req, 200, headers, "application/json", req->result.content.ptr, req->result.content.size);
}

void ui_style(struct request *req, const struct settings *cfg)
{
	(void)cfg;
	respond(req, 200, NULL, "text/css; charset=utf-8", ui_stylesheet,
		strlen(ui_stylesheet));
}

void ui_redirect(struct request *req, const struct settings *cfg)
{
	char headers[QUERY_MAX + 64];
	const char *qs = req->query_string ? req->query_string : "";
	(void)cfg;
	for (const char *p = qs; *p; p++)
		if (*p <= ' ' || *p > '~')
			qs = ""; /* nothing but a URL's own characters goes into a header */
	if (strlen(qs) > 2048)
		qs = ""; /* nor more than the web server's header buffers take */
	/* relative: …/ui resolves it to …/ui/ whatever the location is called */
	snprintf(headers, sizeof(headers), "Location: ui/%s%s\r\n", *qs ? "?" : "", qs);
	respond(req, 301, headers, "application/json", "{\"error\":\"the web view is at ui/\"}", 34);
}
