/* One connection to a remote for one operation: the refs it advertised, object transfer into
 * the cache, and compare-and-swap ref updates.
 *
 * Smart transports (HTTP(S), SSH, git://) are compare-and-swap by protocol: receive-pack applies
 * "old new ref" only while the ref still holds old. libgit2's local transport is not (it
 * force-updates and deletes without checking), so local remotes are opened as repositories:
 * the cache reads their objects in place (an alternate), new objects are copied into them, and
 * their refs are updated with libgit2's matching updates, which check the old value under the
 * ref's lock file, exactly as receive-pack does.
 *
 * Pushes are tfgit's own (libgit2 1.5 can send neither receive-pack's "atomic" capability nor
 * a command that leaves a ref as it is): a push session connects through tap.c, which keeps the
 * advertisement's capabilities and hands over receive-pack's stream; the commands, the pack
 * (libgit2's pack builder) and the report are receivepack.c's. A write made under a lock
 * carries that lock as an unchanged ref (old = new = the lock commit it checked) in the same
 * atomic push, so the server applies both or neither; a local remote gets the same from one
 * ref transaction that locks every ref it names. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <git2/sys/odb_backend.h>

#include "credentials.h"
#include "deadline.h"
#include "httpstream.h"
#include "keepalive.h"
#include "lsrefs.h"
#include "pktline.h"
#include "../internal.h"
#include "push.h"
#include "receivepack.h"
#include "roundtrips.h"
#include "remote.h"
#include "sockets.h"
#include "sshkeep.h"
#include "tap.h"
#include "url.h"

static size_t max_object; /* local remotes: larger objects are not copied (session_open sets it) */

struct session {
	git_repository *cache;
	char *url;
	int for_push;
	git_repository *local;  /* local remotes */
	git_remote *remote;     /* smart remotes */
	/* The refs as this session saw them, the baseline of every compare-and-swap: a smart
	 * remote's whole advertisement (a copy: libgit2's goes away with the connection), or a
	 * local remote's refs read on first use (found = 0: absent). */
	struct seen_ref {
		char *name;
		git_oid oid;
		int found;
		int tracked;    /* the cache's tracking ref follows it (track_seen, once) */
		size_t pending; /* a deferred session: 1 + its entry in pend, 0 when none */
	} *refs;
	size_t nrefs, cap;
	int complete; /* refs holds the whole advertisement: what is not there is absent */
	int warm;     /* no advertisement was read: refs are the cache's last view (session_open_warm) */
	int applied;  /* a push of this session was applied whole */
	char **asked; /* a read of named refs only (session_open_refs): what is not in refs of
		       * these is absent; other refs are unknown */
	size_t nasked;
	tap *tap;     /* a smart push session's subtransport (tap.c); NULL otherwise */
	tap_kind kind;
	int ssh_keep; /* SSH on a session kept between operations (sshkeep.c) */
	int caps;     /* the receive-pack advertisement's RP_CAP_* (a smart push session) */
	/* refs the next push asserts unchanged (session_assert), not deferred */
	struct assertion {
		char *name;
		git_oid oid;
	} *asserts;
	size_t nasserts, capasserts;
	remote_auth auth;
	char auth_header[8192]; /* preemptive credentials for HTTP(S); wiped in session_free */
	char *headers[1];
	git_strarray custom_headers;
	/* Group commit (batch.c): a deferred session records each push instead of sending it,
	 * shows it to the requests that follow (the ref's new value), and sends them all in one
	 * push (session_push_pending). What each request read or wrote of those updates is kept,
	 * so that each gets its own verdict from the per-ref report. */
	int deferred;
	size_t current; /* the request reads and pushes are attributed to */
	struct pending {
		size_t ref;      /* in refs */
		git_oid old;     /* the baseline: the ref as the session first saw it */
		int old_found;
		int force;
		int asserted;    /* a request's write asserts this ref unchanged (its lock) */
		int status;      /* 0 applied, PENDING_UNSENT, TFGIT_ECONFLICT lost, another code */
		char why[512];
	} *pend;
	size_t npend, cappend;
	struct dep {
		size_t request, pend;
		int write;
		int asserted; /* this request's write asserts it (its lock) */
	} *deps;
	size_t ndeps, capdeps;
};

#define PENDING_UNSENT 1

static void remember_caps(git_repository *cache, int caps);

static const char *local_path(const char *url)
{
	if (url[0] == '/')
		return url;
	if (strncmp(url, "file://", 7) == 0)
		return url + 7;
	return NULL;
}

/* 1 when repo, opened from path, is the directory path itself (resolved), holds no .git of its
 * own and its refs and objects are directories there, not symlinks leading elsewhere. */
static int local_repository_is_itself(git_repository *repo, const char *path)
{
	char want[PATH_MAX], got[PATH_MAX], sub[PATH_MAX + 16];
	struct stat st;
	if (!realpath(path, want) || !realpath(git_repository_path(repo), got) || strcmp(want, got) != 0)
		return 0;
	static const char *const inside[] = {"refs", "objects"};
	for (size_t i = 0; i < sizeof(inside) / sizeof(inside[0]); i++) {
		snprintf(sub, sizeof(sub), "%s/%s", want, inside[i]);
		if (lstat(sub, &st) < 0 || !S_ISDIR(st.st_mode))
			return 0;
	}
	snprintf(sub, sizeof(sub), "%s/.git", want);
	return lstat(sub, &st) < 0 && errno == ENOENT;
}

static int acquire_credentials(git_credential **out, const char *url, const char *user,
			       unsigned int allowed_types, void *payload)
{
	session *s = payload;
	return credentials_acquire(out, url, user, allowed_types, &s->auth);
}

static int check_host(git_cert *cert, int valid, const char *host, void *payload)
{
	session *s = payload;
	return credentials_check_host(cert, valid, host, &s->auth);
}

/* The progress callbacks are where a transfer that trickles on past the deadline stops. */
static int fetch_progress(const git_indexer_progress *stats, void *payload)
{
	(void)stats;
	(void)payload;
	return deadline_passed() ? -1 : 0;
}

static int sideband_progress(const char *str, int len, void *payload)
{
	(void)str;
	(void)len;
	(void)payload;
	return deadline_passed() ? -1 : 0;
}

static void init_callbacks(git_remote_callbacks *cb, session *s)
{
	git_remote_init_callbacks(cb, GIT_REMOTE_CALLBACKS_VERSION);
	cb->credentials = acquire_credentials;
	cb->certificate_check = check_host;
	cb->transfer_progress = fetch_progress;
	cb->sideband_progress = sideband_progress;
	cb->payload = s;
}

/* A failed remote call: the deadline, a refusal our callbacks explained, or libgit2's reason. */
static int remote_failure(session *s, tfgit_result *r, int err, const char *what)
{
	if (deadline_passed()) {
		git_error_clear();
		result_message(r, "the repository did not answer within %d s (TFGIT_REMOTE_TIMEOUT)",
			       s->auth.opts->timeout);
		core_log("%s: %s", what, r ? r->message : "timed out");
		return TFGIT_ETIMEOUT;
	}
	/* a redirect: refused by tfgit's streams, or by libgit2 itself (another host name) */
	const git_error *e = git_error_last();
	const char *target = httpstream_refused();
	if (target || (e && e->message && (strstr(e->message, "cannot redirect from") ||
					  strstr(e->message, "unexpected redirect")))) {
		if (target)
			result_message(r, "the repository redirected to %s; tfgit follows no redirect", target);
		else
			result_message(r, "the repository redirected (%s); tfgit follows no redirect", e->message);
		git_error_clear();
		core_log("%s: %s", what, r ? r->message : "refused a redirect");
		return TFGIT_EDENIED;
	}
	if (s->auth.refused[0]) {
		git_error_clear();
		result_message(r, "%s", s->auth.refused);
		core_log("%s: %s", what, s->auth.refused);
		return TFGIT_EDENIED;
	}
	return git_failure(r, err, what);
}

/* An anonymous remote for url, without the url.*.insteadOf rewriting: the URL is the one the
 * operator allowed, and libgit2 1.5's regex search for that rewriting leaks a PCRE2 match block
 * for every configuration entry that does not match. */
static int new_remote(git_remote **out, git_repository *cache, const char *url)
{
	git_remote_create_options opts;
	git_remote_create_options_init(&opts, GIT_REMOTE_CREATE_OPTIONS_VERSION);
	opts.repository = cache;
	opts.flags = GIT_REMOTE_CREATE_SKIP_INSTEADOF | GIT_REMOTE_CREATE_SKIP_DEFAULT_FETCHSPEC;
	return git_remote_create_with_opts(out, url, &opts);
}

static int is_http(const char *url)
{
	return strncasecmp(url, "http://", 7) == 0 || strncasecmp(url, "https://", 8) == 0;
}

/* Connects without following redirects (the credentials header must not go to another host;
 * libgit2 refuses only another host name, httpstream.c the rest), then turns off Nagle's
 * algorithm on the new connection (tfgit's HTTP streams do that themselves). */
static int make_transport(git_transport **out, git_remote *owner, void *payload)
{
	session *s = payload;
	return tap_transport(out, owner, s->kind, &s->tap, s->ssh_keep ? &s->auth : NULL);
}

static int make_fetch_transport(git_transport **out, git_remote *owner, void *payload)
{
	session *s = payload;
	return sshkeep_transport(out, owner, &s->auth);
}

static int connect_remote(session *s, git_remote *remote, git_direction dir)
{
	git_remote_connect_options opts;
	git_remote_connect_options_init(&opts, GIT_REMOTE_CONNECT_OPTIONS_VERSION);
	init_callbacks(&opts.callbacks, s);
	if (dir == GIT_DIRECTION_PUSH)
		opts.callbacks.transport = make_transport; /* tfgit pushes itself (tap.c) */
	else if (s->ssh_keep)
		opts.callbacks.transport = make_fetch_transport;
	opts.follow_redirects = GIT_REMOTE_REDIRECT_NONE;
	opts.custom_headers = s->custom_headers;
	int err = git_remote_connect_ext(remote, dir, &opts);
	if (err == 0 && !is_http(s->url))
		sockets_nodelay();
	return err;
}

/* Adds a ref to the session's view; 0 or -1 when out of memory. */
static int remember_ref(session *s, const char *name, const git_oid *oid, int found)
{
	if (s->nrefs == s->cap) {
		size_t ncap = s->cap ? s->cap * 2 : 16;
		struct seen_ref *n = realloc(s->refs, ncap * sizeof(*n));
		if (!n)
			return -1;
		s->refs = n;
		s->cap = ncap;
	}
	struct seen_ref *r = &s->refs[s->nrefs];
	if (!(r->name = strdup(name)))
		return -1;
	git_oid_cpy(&r->oid, oid);
	r->found = found;
	r->tracked = 0;
	r->pending = 0;
	s->nrefs++;
	return 0;
}

/* Notes that the current request read (write 0), changed (1) or asserted (2) the deferred
 * update p. */
static int add_dep(session *s, size_t p, int write)
{
	for (size_t i = 0; i < s->ndeps; i++) {
		struct dep *d = &s->deps[i];
		if (d->request == s->current && d->pend == p) {
			d->write |= write == 1;
			d->asserted |= write == 2;
			return 0;
		}
	}
	if (s->ndeps == s->capdeps) {
		size_t ncap = s->capdeps ? s->capdeps * 2 : 16;
		struct dep *n = realloc(s->deps, ncap * sizeof(*n));
		if (!n)
			return -1;
		s->deps = n;
		s->capdeps = ncap;
	}
	s->deps[s->ndeps++] = (struct dep){s->current, p, write == 1, write == 2};
	return 0;
}

/* HTTP(S): the credentials go with the first request (no 401 and repeat), when known. */
static void preemptive_credentials(session *s, const tfgit_remote_opts *opts, const char *url)
{
	if (credentials_http_header(s->auth_header, sizeof(s->auth_header), opts, url) == 0) {
		s->headers[0] = s->auth_header;
		s->custom_headers.strings = s->headers;
		s->custom_headers.count = 1;
		s->auth.preemptive = 1;
	}
}

/* A session of tfgit's own requests to an http(s) url (no libgit2 connection), its streams
 * registered for url and its credentials ready; NULL when out of memory or url's host cannot
 * be read (a libgit2 error may be set). */
static session *http_session_new(git_repository *cache, const char *url, const tfgit_remote_opts *opts)
{
	session *s = calloc(1, sizeof(*s));
	if (!s || !(s->url = strdup(url))) {
		free(s);
		return NULL;
	}
	s->cache = cache;
	s->auth.opts = opts;
	s->auth.url = s->url;
	s->kind = TAP_HTTP;
	max_object = opts->max_object;
	if (httpstream_begin(url) < 0) {
		session_free(s);
		return NULL;
	}
	preemptive_credentials(s, opts, url);
	return s;
}

int session_open(session **out, git_repository *cache, const char *url, int for_push,
		 const tfgit_remote_opts *opts, tfgit_result *r)
{
	int err;
	session *s = calloc(1, sizeof(*s));
	*out = NULL;
	if (!s || !(s->url = strdup(url))) {
		free(s);
		return TFGIT_ERROR;
	}
	s->cache = cache;
	s->for_push = for_push;
	s->auth.opts = opts;
	s->auth.url = s->url;
	max_object = opts->max_object;
	const char *path = local_path(url);
	if (path) {
		/* the directory named is the bare repository itself: no .git inside it is looked
		 * for, and nothing in it that the refs and objects live in may lead elsewhere */
		err = git_repository_open_ext(&s->local, path, GIT_REPOSITORY_OPEN_NO_SEARCH |
					      GIT_REPOSITORY_OPEN_NO_DOTGIT | GIT_REPOSITORY_OPEN_BARE, NULL);
		if (err == 0 && !local_repository_is_itself(s->local, path)) {
			git_repository_free(s->local);
			s->local = NULL;
			result_message(r, "repository %s is not a bare repository of its own (a .git, refs or "
					  "objects inside it leads elsewhere)", url);
			core_log("%s", r ? r->message : "repository refused");
			session_free(s);
			return TFGIT_EFORBIDDEN;
		}
		if (err < 0) {
			result_message(r, "repository %s was not found or is not a git repository", url);
			core_log("%s", r ? r->message : "repository not found");
			session_free(s);
			return TFGIT_EDENIED;
		}
		*out = s;
		return 0;
	}
	url_parts u;
	char why[256];
	if (url_parse(&u, url, URL_CREDENTIALS, why, sizeof(why)) < 0) {
		result_message(r, "%s", why);
		session_free(s);
		return TFGIT_EINVALID;
	}
	s->kind = u.kind == URL_HTTP || u.kind == URL_HTTPS ? TAP_HTTP : u.kind == URL_GIT ? TAP_GIT : TAP_SSH;
	/* a password in the URL is libgit2's to offer: such a session is not kept */
	s->ssh_keep = s->kind == TAP_SSH && opts->keep_connections && !u.has_password;
	if ((err = httpstream_begin(url)) < 0) {
		err = remote_failure(s, r, err, "connecting to the repository");
		session_free(s);
		return err;
	}
	preemptive_credentials(s, opts, url);
	const git_remote_head **heads;
	size_t n;
	double begun = roundtrips_begin();
	if ((err = new_remote(&s->remote, cache, url)) < 0 ||
	    (err = connect_remote(s, s->remote, for_push ? GIT_DIRECTION_PUSH : GIT_DIRECTION_FETCH)) < 0 ||
	    (err = git_remote_ls(&heads, &n, s->remote)) < 0) {
		roundtrips_end(begun);
		err = remote_failure(s, r, err, "connecting to the repository");
		session_free(s);
		return err;
	}
	for (size_t i = 0; i < n; i++) {
		if (remember_ref(s, heads[i]->name, &heads[i]->oid, 1) < 0) {
			session_free(s);
			return TFGIT_ERROR;
		}
	}
	roundtrips_end(begun);
	s->complete = 1;
	if (for_push) {
		s->caps = tap_caps(s->tap);
		if (s->caps < 0 || !(s->caps & RP_CAP_REPORT_STATUS) || (s->caps & RP_CAP_OTHER_FORMAT)) {
			result_message(r, "the repository's receive-pack advertisement %s", s->caps < 0
				       ? "could not be read" : s->caps & RP_CAP_OTHER_FORMAT
				       ? "names an object format other than SHA-1, which tfgit cannot push"
				       : "lacks report-status: tfgit could not learn whether a push was applied");
			core_log("%s", r ? r->message : "advertisement refused");
			session_free(s);
			return TFGIT_ERROR;
		}
		if (s->kind == TAP_HTTP)
			remember_caps(cache, s->caps);
	}
	*out = s;
	return 0;
}

/* The receive-pack capabilities the repository advertised last, kept in its cache's own
 * configuration (tfgit.receivepackcaps), so that every process serving from the cache (a pool's
 * workers, mod_fcgid's, CGI runs) may push without reading the advertisement again. */
#define CAPS_KEY "tfgit.receivepackcaps"

static void remember_caps(git_repository *cache, int caps)
{
	git_config *cfg = NULL;
	int32_t had = -1;
	if (git_repository_config(&cfg, cache) == 0 && (git_config_get_int32(&had, cfg, CAPS_KEY) < 0 || had != caps) &&
	    git_config_set_int32(cfg, CAPS_KEY, caps) < 0)
		core_log("the cache could not keep the repository's capabilities: %s",
			 git_error_last() ? git_error_last()->message : "unknown error");
	git_config_free(cfg);
	git_error_clear();
}

static int recalled_caps(git_repository *cache)
{
	git_config *cfg = NULL;
	int32_t caps = -1;
	if (git_repository_config(&cfg, cache) < 0 || git_config_get_int32(&caps, cfg, CAPS_KEY) < 0)
		caps = -1;
	git_config_free(cfg);
	git_error_clear();
	return caps;
}

static unsigned long url_hash(const char *url)
{
	unsigned long h = 5381;
	for (const char *c = url; *c; c++)
		h = h * 33 + (unsigned char)*c;
	return h;
}

/* The cache's view of the remote: each refs/remotes/origin/<name> as refs/heads/<name> (what
 * the last advertisement, fetch or push of this cache showed). 0 or -1. */
static int remember_tracked(session *s)
{
	git_reference_iterator *it = NULL;
	git_reference *ref = NULL;
	int rc = 0;
	char name[1200];
	if (git_reference_iterator_glob_new(&it, s->cache, "refs/remotes/origin/*") < 0)
		return -1;
	while (rc == 0 && git_reference_next(&ref, it) == 0) {
		const git_oid *oid = git_reference_target(ref);
		const char *tail = git_reference_name(ref) + strlen("refs/remotes/origin/");
		if (oid && snprintf(name, sizeof(name), "refs/heads/%s", tail) < (int)sizeof(name))
			rc = remember_ref(s, name, oid, 1);
		git_reference_free(ref);
	}
	git_reference_iterator_free(it);
	git_error_clear();
	return rc;
}

int session_open_warm(session **out, git_repository *cache, const char *url, const tfgit_remote_opts *opts)
{
	int caps = recalled_caps(cache);
	*out = NULL;
	/* without "atomic" a write's lock would be checked against the cache's view and not sent
	 * with it: only a real advertisement may stand in for the check then */
	if (!is_http(url) || caps < 0 || !(caps & RP_CAP_ATOMIC))
		return 1;
	session *s = http_session_new(cache, url, opts);
	if (!s || remember_tracked(s) < 0) {
		git_error_clear();
		session_free(s);
		return 1;
	}
	s->for_push = 1;
	s->caps = caps;
	s->warm = s->complete = 1;
	*out = s;
	return 0;
}

/* URLs (hashes) whose server did not answer ls-refs: read by libgit2, advertisement whole. */
static unsigned long no_lsrefs[32];

static unsigned long *lsrefs_slot(const char *url)
{
	return &no_lsrefs[url_hash(url) % (sizeof(no_lsrefs) / sizeof(no_lsrefs[0]))];
}

static void lsref_seen(const char *name, const git_oid *oid, void *ctx)
{
	session *s = ctx;
	for (size_t i = 0; i < s->nasked; i++)
		if (!strcmp(name, s->asked[i])) /* a prefix matches more than the name: only these */
			(void)remember_ref(s, name, oid, 1);
}

#define LSREFS_MAX (1u << 20) /* an answer about a few names: longer is no answer */

/* Makes a request of service on a kept connection, exchange writing it and reading the answer
 * from its stream, and once more on a new connection when the server had closed the kept one
 * (safe: a request that got no answer byte was not applied, and a push is compare-and-swap).
 * *status: the HTTP status of the last answer, 0 when none came. exchange's code, or -1. */
static int kept_request(session *s, keepalive_service service,
			int (*exchange)(git_smart_subtransport_stream *st, void *ctx), void *ctx, int *status)
{
	for (int again = 1;; again = 0) {
		keepalive_request *q = NULL;
		int err = keepalive_post(&q, service, s->custom_headers.count ? s->auth_header : NULL,
					 s->auth.opts->tls_no_verify, check_host, s);
		if (err == 0)
			err = exchange(keepalive_stream(q), ctx);
		*status = keepalive_status(q);
		int closed = err == -1 && keepalive_closed_under(q);
		keepalive_done(q);
		if (!closed || !again || deadline_passed())
			return err;
		git_error_clear();
	}
}

struct lsrefs_call {
	const char *body;
	size_t blen;
	char **buf;
	size_t *len;
	char *why;
	size_t whylen;
};

static int lsrefs_exchange(git_smart_subtransport_stream *st, void *ctx)
{
	struct lsrefs_call *c = ctx;
	free(*c->buf); /* an answer of an earlier try */
	*c->buf = NULL;
	*c->len = 0;
	int err = st->write(st, c->body, c->blen);
	return err == 0 ? pktline_read(st, c->buf, c->len, LSREFS_MAX, "the ls-refs answer", c->why, c->whylen) : err;
}

int session_open_refs(session **out, git_repository *cache, const char *url, const tfgit_remote_opts *opts,
		      const char *const *refnames, size_t n)
{
	char *body = NULL, *answer = NULL, why[300] = "";
	size_t blen = 0, alen = 0;
	*out = NULL;
	if (!is_http(url) || n == 0 || *lsrefs_slot(url) == url_hash(url))
		return 1;
	session *s = http_session_new(cache, url, opts);
	int ok = s && (s->asked = calloc(n, sizeof(*s->asked))) != NULL;
	for (size_t i = 0; ok && i < n; i++)
		ok = (s->asked[s->nasked++] = strdup(refnames[i])) != NULL;
	if (!ok || lsrefs_request(&body, &blen, refnames, n) < 0) {
		git_error_clear();
		session_free(s);
		return 1;
	}
	double begun = roundtrips_begin();
	int status = 0;
	struct lsrefs_call call = {body, blen, &answer, &alen, why, sizeof(why)};
	int err = kept_request(s, KEEPALIVE_UPLOAD_PACK_V2, lsrefs_exchange, &call, &status);
	roundtrips_end(begun);
	if (err == -1 && status != 0 && status != 200) {
		snprintf(why, sizeof(why), "%s", git_error_last() ? git_error_last()->message : "an HTTP error");
		err = -2; /* the server answered, and not with ls-refs */
	}
	int k = err == 0 ? lsrefs_parse(answer, alen, lsref_seen, s, why, sizeof(why)) : 1;
	if (k != 1) {
		if (k == 0)
			snprintf(why, sizeof(why), "the ls-refs answer ended before its flush");
		err = -2;
	}
	free(body);
	free(answer);
	if (err < 0) {
		/* a server that does not speak protocol v2 (an answer that is no ls-refs answer, or
		 * "bad request", "unsupported media type", "not implemented"): the whole advertisement
		 * from now on. Another status (401, 404, 429, 5xx) may pass: this read only falls back */
		if (err == -2 && (status == 200 || status == 400 || status == 415 || status == 501)) {
			*lsrefs_slot(url) = url_hash(url);
			char shown[URL_MAX + 64];
			tfgit_url_redact(shown, sizeof(shown), url);
			core_log("the repository %s does not answer protocol v2's ls-refs (%s): its reads take the "
				 "whole advertisement", shown, why);
		}
		git_error_clear();
		session_free(s);
		return 1;
	}
	*out = s;
	return 0;
}

int session_warm(const session *s)
{
	return s && s->warm;
}

int session_applied(const session *s)
{
	return s && s->applied;
}

static void track_pushed(session *s, const char *refname, const git_oid *new);
static int commit_present(git_repository *repo, const git_oid *id);

/* A real advertisement's value of a ref an operation read becomes the cache's view of it (the
 * next warm session's guess): the tracking ref follows it when the commit is here, and goes
 * when the ref is absent. */
static void track_seen(session *s, const char *refname, const git_oid *oid, int found)
{
	char tracking[1100];
	git_oid had;
	if (s->warm || s->local || strncmp(refname, "refs/heads/", 11) ||
	    snprintf(tracking, sizeof(tracking), "refs/remotes/origin/%s", refname + 11) >= (int)sizeof(tracking))
		return;
	int have = git_reference_name_to_id(&had, s->cache, tracking) == 0;
	git_error_clear();
	if (found ? (!have || !git_oid_equal(&had, oid)) && commit_present(s->cache, oid) : have)
		track_pushed(s, refname, found ? oid : NULL);
}

int session_ref(git_oid *out, session *s, const char *refname)
{
	git_oid oid;
	for (size_t i = 0; i < s->nrefs; i++) {
		if (strcmp(s->refs[i].name, refname) == 0) {
			/* a value an earlier request of the batch set: this answer depends on its push */
			if (s->refs[i].pending && add_dep(s, s->refs[i].pending - 1, 0) < 0)
				return TFGIT_ERROR;
			if (!s->refs[i].pending && !s->refs[i].tracked && !s->local) {
				s->refs[i].tracked = 1;
				track_seen(s, refname, &s->refs[i].oid, s->refs[i].found);
			}
			git_oid_cpy(out, &s->refs[i].oid);
			return s->refs[i].found ? 0 : GIT_ENOTFOUND;
		}
	}
	int asked = 0;
	for (size_t i = 0; i < s->nasked; i++)
		asked |= !strcmp(s->asked[i], refname);
	if (s->complete || asked) {
		/* absent: remembered so, and its tracking ref followed, once */
		memset(&oid, 0, sizeof(oid));
		if (remember_ref(s, refname, &oid, 0) < 0)
			return TFGIT_ERROR;
		s->refs[s->nrefs - 1].tracked = 1;
		track_seen(s, refname, NULL, 0);
		return GIT_ENOTFOUND;
	}
	if (!s->local) {
		git_error_set(GIT_ERROR_INVALID, "%s was not read from the repository", refname);
		return -1;
	}
	int err = git_reference_name_to_id(&oid, s->local, refname);
	if (err < 0 && err != GIT_ENOTFOUND)
		return err;
	if (remember_ref(s, refname, &oid, err == 0) < 0)
		return TFGIT_ERROR;
	git_oid_cpy(out, &oid);
	return err;
}

int session_each_ref(session *s, const char *prefix,
		     int (*fn)(const char *name, const git_oid *oid, void *ctx), void *ctx)
{
	size_t n = strlen(prefix);
	int rc = 0;
	if (!s->local) {
		for (size_t i = 0; i < s->nrefs && rc == 0; i++)
			if (s->refs[i].found && !strncmp(s->refs[i].name, prefix, n))
				rc = fn(s->refs[i].name, &s->refs[i].oid, ctx);
		return rc;
	}
	git_reference_iterator *it = NULL;
	git_reference *ref = NULL;
	if (git_reference_iterator_new(&it, s->local) < 0)
		return git_failure(NULL, -1, "listing the repository's branches");
	while (rc == 0 && git_reference_next(&ref, it) == 0) {
		const git_oid *oid = git_reference_target(ref);
		if (oid && !strncmp(git_reference_name(ref), prefix, n))
			rc = fn(git_reference_name(ref), oid, ctx);
		git_reference_free(ref);
	}
	git_reference_iterator_free(it);
	git_error_clear();
	return rc;
}

int session_share_objects(session *s)
{
	git_odb *odb = NULL;
	char objects[4096];
	if (!s->local)
		return 0;
	snprintf(objects, sizeof(objects), "%sobjects", git_repository_path(s->local));
	int err = git_repository_odb(&odb, s->cache);
	if (err == 0)
		err = git_odb_add_disk_alternate(odb, objects);
	git_odb_free(odb);
	return err < 0 ? git_failure(NULL, err, "reading the repository's objects") : 0;
}

/* 1 when a is b followed by '/' and more: b would be a directory of a in git's ref store. */
static int below(const char *a, const char *b)
{
	size_t n = strlen(b);
	return strncmp(a, b, n) == 0 && a[n] == '/';
}

static int tentatively_deleted(session *s, const char *name)
{
	for (size_t i = 0; i < s->nrefs; i++)
		if (s->refs[i].pending && !s->refs[i].found && !strcmp(s->refs[i].name, name))
			return 1;
	return 0;
}

int session_ref_collision(session *s, const char *refname, char *out, size_t outlen)
{
	git_reference_iterator *it = NULL;
	const char *name;
	int found = 0;
	/* whether a ref collides may depend on any update of the batch so far */
	for (size_t p = 0; p < s->npend; p++)
		if (add_dep(s, p, 0) < 0)
			return TFGIT_ERROR;
	for (size_t i = 0; i < s->nrefs && !found; i++) {
		if (s->refs[i].found && (below(refname, s->refs[i].name) || below(s->refs[i].name, refname))) {
			snprintf(out, outlen, "%s", s->refs[i].name);
			found = 1;
		}
	}
	if (found || s->complete || !s->local)
		return found;
	if (git_reference_iterator_new(&it, s->local) < 0)
		return git_failure(NULL, -1, "listing the repository's branches");
	while (!found && git_reference_next_name(&name, it) == 0) {
		if (tentatively_deleted(s, name))
			continue; /* an earlier request of the batch removes it */
		if (below(refname, name) || below(name, refname)) {
			snprintf(out, outlen, "%s", name);
			found = 1;
		}
	}
	git_reference_iterator_free(it);
	git_error_clear();
	return found;
}

/* Writes obj into the destination's own loose objects (own: a loose backend on its objects
 * directory, never one of its alternates, which libgit2 1.5 sorts before its own loose objects)
 * under its known id, without hashing it again (it was hashed when the cache stored it; strict
 * verification of reads is off). */
static int write_known(git_odb_backend *own, const git_oid *id, git_odb_object *obj)
{
	return own->write(own, id, git_odb_object_data(obj), git_odb_object_size(obj), git_odb_object_type(obj));
}

/* Object copy between two repositories, children before parents: a tree that exists in dst
 * is therefore complete, even if a worker was killed in the middle of a copy. */
static int copy_raw(git_odb *dst, git_odb_backend *own, git_odb *src, const git_oid *id)
{
	git_odb_object *obj = NULL;
	git_object_t type;
	size_t size;
	if (git_odb_exists(dst, id))
		return 0;
	/* read whole below: an object over the bound is refused before it is read */
	int err = git_odb_read_header(&size, &type, src, id);
	if (err == 0 && max_object && size > max_object) {
		char hex[GIT_OID_HEXSZ + 1];
		git_error_set(GIT_ERROR_INVALID, "object %s is %zu bytes, more than TFGIT_MAX_BODY (%zu)",
			      git_oid_tostr(hex, sizeof(hex), id), size, max_object);
		return -1;
	}
	if (err == 0)
		err = git_odb_read(&obj, src, id);
	if (err == 0)
		err = write_known(own, id, obj);
	git_odb_object_free(obj);
	return err;
}

static int copy_tree(git_odb *dst, git_odb_backend *own, git_repository *src, git_odb *srcodb, const git_oid *id)
{
	git_tree *tree = NULL;
	if (git_odb_exists(dst, id))
		return 0;
	int err = git_tree_lookup(&tree, src, id);
	for (size_t i = 0, n = tree ? git_tree_entrycount(tree) : 0; err == 0 && i < n; i++) {
		const git_tree_entry *e = git_tree_entry_byindex(tree, i);
		if (git_tree_entry_type(e) == GIT_OBJECT_TREE)
			err = copy_tree(dst, own, src, srcodb, git_tree_entry_id(e));
		else if (git_tree_entry_type(e) == GIT_OBJECT_BLOB)
			err = copy_raw(dst, own, srcodb, git_tree_entry_id(e));
	}
	if (err == 0)
		err = copy_raw(dst, own, srcodb, id);
	git_tree_free(tree);
	return err;
}

/* Copies a commit and its whole tree (not its ancestors) from src into dst. */
static int copy_commit(git_repository *dst, git_repository *src, const git_oid *id)
{
	git_odb *dodb = NULL, *sodb = NULL;
	git_odb_backend *own = NULL;
	git_commit *c = NULL;
	char objects[4200];
	int err;
	if ((err = git_repository_odb(&dodb, dst)) < 0 || (err = git_repository_odb(&sodb, src)) < 0)
		goto done;
	if (git_commit_lookup(&c, dst, id) == 0 && git_odb_exists(dodb, git_commit_tree_id(c)))
		goto done;
	git_commit_free(c);
	c = NULL;
	if (snprintf(objects, sizeof(objects), "%sobjects", git_repository_commondir(dst)) >= (int)sizeof(objects)) {
		git_error_set_str(GIT_ERROR_OS, "the remote's path is too long");
		err = -1;
		goto done;
	}
	if ((err = git_odb_backend_loose(&own, objects, -1, 0, 0, 0)) < 0 || (err = git_commit_lookup(&c, src, id)) < 0 ||
	    (err = copy_tree(dodb, own, src, sodb, git_commit_tree_id(c))) < 0)
		goto done;
	err = copy_raw(dodb, own, sodb, id);
done:
	if (own)
		own->free(own);
	git_commit_free(c);
	git_odb_free(sodb);
	git_odb_free(dodb);
	return err;
}

static int commit_present(git_repository *repo, const git_oid *id)
{
	git_commit *c = NULL;
	git_odb *odb = NULL;
	int ok = git_commit_lookup(&c, repo, id) == 0 && git_repository_odb(&odb, repo) == 0 &&
		 git_odb_exists(odb, git_commit_tree_id(c));
	git_odb_free(odb);
	git_commit_free(c);
	return ok;
}

static int smart_fetch(session *s, const char *refname, tfgit_result *r)
{
	char spec[4400]; /* two ref names of up to ~1100 bytes each, never cut short */
	char *specs[] = {spec};
	git_strarray refspecs = {specs, 1};
	git_fetch_options opts;
	git_remote *fetcher = NULL;
	int err = 0;
	/* keep what was fetched reachable from a tracking ref, so no gc can take it */
	snprintf(spec, sizeof(spec), "+%s:refs/remotes/origin/%s", refname,
		 refname + strlen("refs/heads/"));
	git_fetch_options_init(&opts, GIT_FETCH_OPTIONS_VERSION);
	init_callbacks(&opts.callbacks, s);
	opts.download_tags = GIT_REMOTE_DOWNLOAD_TAGS_NONE;
	opts.update_fetchhead = 0;
	opts.follow_redirects = GIT_REMOTE_REDIRECT_NONE;
	opts.custom_headers = s->custom_headers;
	git_remote *from = s->remote; /* a fetch session: the advertisement is already here */
	double begun = roundtrips_begin();
	if (s->for_push || !s->remote) {
		/* a push session's connection speaks receive-pack: fetch on a second one, where
		 * each credential may be offered once more */
		s->auth.userpass_tries = s->auth.ssh_tries = 0;
		err = new_remote(&fetcher, s->cache, s->url);
		if (err == 0)
			err = connect_remote(s, fetcher, GIT_DIRECTION_FETCH);
		from = fetcher;
	}
	/* git_remote_fetch on the connected remote downloads on that connection and updates the
	 * tracking ref; unlike git_remote_download in libgit2 1.5, it frees its copy of the options
	 * (the credentials header), and it disconnects, which this session no longer needs */
	if (err == 0)
		err = git_remote_fetch(from, &refspecs, &opts, NULL);
	roundtrips_end(begun);
	git_remote_free(fetcher);
	if (err < 0) {
		int rc = remote_failure(s, r, err, "fetching from the repository");
		if (rc == TFGIT_EUNREACHABLE && r)
			r->transient = 1; /* e.g. "early EOF": the connection ended mid-pack */
		return rc;
	}
	return 0;
}

int session_fetch(session *s, const char *refname, tfgit_result *r)
{
	git_oid want;
	int err = session_ref(&want, s, refname);
	if (err < 0)
		return err == GIT_ENOTFOUND ? TFGIT_ENOTFOUND : git_failure(r, err, "reading a ref");
	if (commit_present(s->cache, &want))
		return 0;
	if (s->warm)
		return TFGIT_ECONFLICT; /* the cache's view names what it lacks: look at the remote */
	if (s->local)
		err = copy_commit(s->cache, s->local, &want);
	else
		err = smart_fetch(s, refname, r);
	if (err < 0)
		return s->local ? git_failure(r, err, "copying from the repository") : err;
	if (commit_present(s->cache, &want))
		return 0;
	/* fetched and still absent: if the fetch brought that very value, the cache claims
	 * objects it lacks (damage); otherwise the remote moved on meanwhile */
	char tracking[1100];
	git_oid got;
	snprintf(tracking, sizeof(tracking), "refs/remotes/origin/%s", refname + strlen("refs/heads/"));
	if (s->local || (git_reference_name_to_id(&got, s->cache, tracking) == 0 && git_oid_equal(&got, &want))) {
		result_message(r, "the cache lacks objects of %s", refname);
		if (r)
			r->damaged = 1;
		return TFGIT_ERROR;
	}
	return TFGIT_ECONFLICT;
}

static int defer_push(session *s, const char *refname, const git_oid *old, const git_oid *new,
		      int force);

/* After a push the server accepted, the cache's tracking ref follows the branch (as git push
 * does): cache maintenance keeps what the refs reach, and the next fetch offers it as had. Not
 * an error when it cannot (a full filesystem): the remote has the update. */
static void track_pushed(session *s, const char *refname, const git_oid *new)
{
	char tracking[1100];
	git_reference *ref = NULL;
	if (strncmp(refname, "refs/heads/", 11) ||
	    snprintf(tracking, sizeof(tracking), "refs/remotes/origin/%s", refname + 11) >= (int)sizeof(tracking))
		return;
	int err = new ? git_reference_create(&ref, s->cache, tracking, new, 1, "tfgit: pushed")
		      : git_reference_lookup(&ref, s->cache, tracking);
	if (err == 0 && !new)
		err = git_reference_delete(ref);
	if (err < 0 && err != GIT_ENOTFOUND)
		core_log("the cache's %s could not follow the push: %s", tracking,
			 git_error_last() ? git_error_last()->message : "unknown error");
	git_reference_free(ref);
	git_error_clear();
}

/* Every commit from new back to the first one dst has, copied oldest first (a commit present in
 * dst has its ancestors there too): a batch moves a branch by several commits at once. */
static int copy_chain(git_repository *dst, git_repository *src, const git_oid *new)
{
	enum { CHAIN_MAX = 4096 };
	git_oid *chain = malloc(CHAIN_MAX * sizeof(*chain));
	size_t n = 0;
	int err = chain ? 0 : -1;
	git_oid id;
	git_oid_cpy(&id, new);
	while (err == 0 && n < CHAIN_MAX && !commit_present(dst, &id)) {
		git_commit *c = NULL;
		git_oid_cpy(&chain[n++], &id);
		if ((err = git_commit_lookup(&c, src, &id)) < 0)
			break;
		int more = git_commit_parentcount(c) > 0;
		if (more)
			git_oid_cpy(&id, git_commit_parent_id(c, 0));
		git_commit_free(c);
		if (!more)
			break;
	}
	while (err == 0 && n > 0)
		err = copy_commit(dst, src, &chain[--n]);
	free(chain);
	return err;
}

/* The commits the server has (the refs as first seen): a pack leaves them and their history
 * out. Freed by free(); NULL when out of memory. */
static git_oid *server_has(session *s, size_t *n)
{
	git_oid *v = malloc((s->nrefs ? s->nrefs : 1) * sizeof(*v));
	*n = 0;
	for (size_t i = 0; v && i < s->nrefs; i++) {
		const struct seen_ref *e = &s->refs[i];
		const struct pending *p = e->pending ? &s->pend[e->pending - 1] : NULL;
		if (p ? p->old_found : e->found)
			git_oid_cpy(&v[(*n)++], p ? &p->old : &e->oid);
	}
	return v;
}

/* A write whose lock is not asserted with it (the server lacks "atomic"): said once per
 * repository and process. */
static void two_step_noted(session *s)
{
	static unsigned long seen[64];
	static size_t nseen;
	unsigned long h = url_hash(s->url);
	char shown[URL_MAX + 64];
	for (size_t i = 0; i < nseen; i++)
		if (seen[i] == h)
			return;
	if (nseen < sizeof(seen) / sizeof(seen[0]))
		seen[nseen++] = h;
	tfgit_url_redact(shown, sizeof(shown), s->url);
	core_log("the repository %s does not advertise atomic pushes: a write under a lock checks the "
		 "lock, then pushes (two steps; README: What tfgit guarantees)", shown);
}

struct push_call {
	git_repository *cache;
	const git_oid *have;
	size_t nhave;
	push_update *u;
	size_t n;
	int atomic;
	char *why;
	size_t whylen;
};

static int push_exchange(git_smart_subtransport_stream *st, void *ctx)
{
	struct push_call *c = ctx;
	return push_smart(st, c->cache, c->have, c->nhave, c->u, c->n, c->atomic, c->why, c->whylen);
}

/* The push's request: receive-pack's stream after the advertisement (tap.c), or, for a warm
 * session, a request of its own on a kept connection (kept_request). push_smart's codes. */
static int send_push(session *s, const git_oid *have, size_t nhave, push_update *u, size_t n, int atomic,
		     char *why, size_t whylen)
{
	struct push_call call = {s->cache, have, nhave, u, n, atomic, why, whylen};
	git_smart_subtransport_stream *st = NULL;
	int status;
	if (s->warm)
		return kept_request(s, KEEPALIVE_RECEIVE_PACK, push_exchange, &call, &status);
	if (tap_push_stream(&st, s->tap) < 0)
		return -1;
	int err = push_exchange(st, &call);
	tap_push_done(s->tap, st);
	return err;
}

static int is_assertion(const push_update *u)
{
	return git_oid_equal(&u->cmd.old, &u->cmd.new) && !git_oid_is_zero(&u->cmd.old);
}

/* Sends the updates u (n of them) in one push, all or none when together (a write's lock goes
 * with it: asserted, or made in the same batch), each ref on its own otherwise (a LOCK lost in a
 * batch sinks no one else): a
 * local remote's objects copied and its refs changed in a ref transaction; a smart remote's
 * as receive-pack commands, "atomic" when asserting and the server has it. Each update's status
 * says what became of it. 0 when the push went through (each status set), or the code of a
 * push that failed as a whole (r says why). */
static int apply(session *s, push_update *u, size_t n, int together, tfgit_result *r)
{
	int err = 0;
	if (s->local) {
		for (size_t i = 0; err == 0 && i < n; i++)
			if (!git_oid_is_zero(&u[i].cmd.new) && !is_assertion(&u[i]))
				err = copy_chain(s->local, s->cache, &u[i].cmd.new);
		for (size_t i = 0; err == 0 && i < (together ? 1 : n); i++)
			if ((err = push_local(s->local, together ? u : &u[i], together ? n : 1)) == TFGIT_ECONFLICT)
				err = 0; /* in each status */
		return err < 0 ? git_failure(r, err, "updating the repository's refs") : 0;
	}
	int atomic = together && (s->caps & RP_CAP_ATOMIC);
	size_t send = 0, nhave = 0;
	char why[512] = "";
	/* two steps without "atomic": what a writer checked is not sent (nothing would hold it) */
	push_update *out = atomic || !together ? u : calloc(n, sizeof(*out));
	if (!out)
		return TFGIT_ERROR;
	for (size_t i = 0; out != u && i < n; i++) {
		if (!is_assertion(&u[i]))
			out[send++] = u[i];
		else
			two_step_noted(s);
		u[i].status = 0;
	}
	if (out == u)
		send = n;
	git_oid *have = send ? server_has(s, &nhave) : NULL;
	if (send) {
		double begun = roundtrips_begin();
		err = have ? send_push(s, have, nhave, out, send, atomic, why, sizeof(why)) : -2;
		roundtrips_end(begun);
	}
	for (size_t i = 0, j = 0; out != u && i < n; i++)
		if (!is_assertion(&u[i]))
			u[i] = out[j++]; /* its status and reason */
	if (out != u)
		free(out);
	free(have);
	/* asked for all or none and got some: the server ignores "atomic" now (its advertisement
	 * changed since this process saw it); no warm session trusts it any more */
	int applied = 0, refused = 0;
	for (size_t i = 0; err == 0 && atomic && i < n; i++) {
		applied |= u[i].status == 0;
		refused |= u[i].status != 0;
	}
	if (applied && refused) {
		char shown[URL_MAX + 64];
		remember_caps(s->cache, s->caps & ~RP_CAP_ATOMIC);
		tfgit_url_redact(shown, sizeof(shown), s->url);
		core_log("the repository %s applied part of an atomic push: it no longer honours \"atomic\" "
			 "(receive.advertiseAtomic); its writes read the advertisement first from now on", shown);
	}
	if (err == -1)
		return remote_failure(s, r, err, "pushing to the repository");
	if (err < 0) {
		result_message(r, "%s", why[0] ? why : "out of memory");
		core_log("pushing to the repository: %s", r ? r->message : why);
		return TFGIT_ERROR;
	}
	return 0;
}

static void clear_asserts(session *s)
{
	for (size_t i = 0; i < s->nasserts; i++)
		free(s->asserts[i].name);
	s->nasserts = 0;
}

int session_push(session *s, const char *refname, const git_oid *old, const git_oid *new,
		 int force, tfgit_result *r)
{
	if (s->deferred)
		return defer_push(s, refname, old, new, force);
	size_t n = 1 + s->nasserts;
	push_update *u = calloc(n, sizeof(*u));
	if (!u) {
		clear_asserts(s);
		return TFGIT_ERROR;
	}
	u[0].cmd.ref = refname;
	if (old)
		git_oid_cpy(&u[0].cmd.old, old);
	if (new)
		git_oid_cpy(&u[0].cmd.new, new);
	u[0].force = force;
	for (size_t i = 0; i < s->nasserts; i++) {
		u[1 + i].cmd.ref = s->asserts[i].name;
		git_oid_cpy(&u[1 + i].cmd.old, &s->asserts[i].oid);
		git_oid_cpy(&u[1 + i].cmd.new, &s->asserts[i].oid);
	}
	int rc = apply(s, u, n, s->nasserts > 0, r);
	const push_update *denied = NULL;
	for (size_t i = 0; rc == 0 && i < n; i++) {
		if (u[i].status == TFGIT_EDENIED && (!denied || strstr(denied->why, "atomic push failure")))
			denied = &u[i]; /* the ref refused, rather than one refused with it */
		else if (u[i].status != 0 && u[i].status != TFGIT_EDENIED)
			rc = TFGIT_ECONFLICT; /* lost, or not in the report: another attempt finds out */
	}
	if (rc == 0 && denied) {
		result_message(r, "%s", denied->why);
		if (!s->warm) /* a warm session's refusal is tried again after the advertisement */
			core_log("%s", denied->why);
		rc = TFGIT_EDENIED;
	}
	if (rc == 0 && !s->local)
		track_pushed(s, refname, new);
	s->applied |= rc == 0;
	clear_asserts(s);
	free(u);
	return rc;
}

static int defer_assert(session *s, const char *refname, const git_oid *oid);

int session_assert(session *s, const char *refname, const git_oid *oid)
{
	if (s->deferred)
		return defer_assert(s, refname, oid);
	if (s->nasserts == s->capasserts) {
		size_t ncap = s->capasserts ? s->capasserts * 2 : 4;
		struct assertion *a = realloc(s->asserts, ncap * sizeof(*a));
		if (!a)
			return TFGIT_ERROR;
		s->asserts = a;
		s->capasserts = ncap;
	}
	if (!(s->asserts[s->nasserts].name = strdup(refname)))
		return TFGIT_ERROR;
	git_oid_cpy(&s->asserts[s->nasserts++].oid, oid);
	return 0;
}

int session_atomic(const session *s)
{
	return s->local || ((s->tap || s->warm) && (s->caps & RP_CAP_ATOMIC));
}

int session_is_local(const session *s)
{
	return s && s->local;
}

void session_free(session *s)
{
	if (!s)
		return;
	if (s->remote) {
		git_remote_disconnect(s->remote);
		git_remote_free(s->remote);
	}
	git_repository_free(s->local);
	httpstream_end(); /* libgit2's own streams again, for the SSH and git:// transports */
	explicit_bzero(s->auth_header, sizeof(s->auth_header));
	for (size_t i = 0; i < s->nrefs; i++)
		free(s->refs[i].name);
	free(s->refs);
	clear_asserts(s);
	free(s->asserts);
	for (size_t i = 0; i < s->nasked; i++)
		free(s->asked[i]);
	free(s->asked);
	free(s->pend);
	free(s->deps);
	free(s->url);
	free(s);
}

/* Group commit: deferred pushes, one push for all, a verdict per request */

void session_defer(session *s)
{
	s->deferred = 1;
}

int session_deferred(const session *s)
{
	return s->deferred;
}

void session_track(session *s, size_t request)
{
	s->current = request;
}

static struct seen_ref *find_ref(session *s, const char *refname)
{
	for (size_t i = 0; i < s->nrefs; i++)
		if (strcmp(s->refs[i].name, refname) == 0)
			return &s->refs[i];
	return NULL;
}

/* A pending update of e, its baseline e's value as the session saw it: 0, or -1 (memory). */
static int pending_open(session *s, struct seen_ref *e)
{
	if (s->npend == s->cappend) {
		size_t ncap = s->cappend ? s->cappend * 2 : 8;
		struct pending *n = realloc(s->pend, ncap * sizeof(*n));
		if (!n)
			return -1;
		s->pend = n;
		s->cappend = ncap;
	}
	struct pending *p = &s->pend[s->npend];
	memset(p, 0, sizeof(*p));
	p->ref = (size_t)(e - s->refs);
	git_oid_cpy(&p->old, &e->oid);
	p->old_found = e->found;
	p->status = PENDING_UNSENT;
	e->pending = ++s->npend;
	return 0;
}

/* Records the update; the ref shows its new value to the requests that follow. old is what the
 * request read (the baseline, or an earlier request's value): anything else is a bug, and is
 * answered as a lost compare-and-swap rather than pushed. */
static int defer_push(session *s, const char *refname, const git_oid *old, const git_oid *new,
		      int force)
{
	git_oid seen;
	int err = session_ref(&seen, s, refname); /* read first by every attempt: no new dependency */
	if (err < 0 && err != GIT_ENOTFOUND)
		return git_failure(NULL, err, "reading a ref");
	if ((err == 0) != (old != NULL) || (old && !git_oid_equal(old, &seen))) {
		core_log("group commit: the update of %s does not start from the value seen", refname);
		return TFGIT_ECONFLICT;
	}
	struct seen_ref *e = find_ref(s, refname);
	if (!e) { /* absent from a complete advertisement: its baseline is "absent" */
		git_oid zero;
		memset(&zero, 0, sizeof(zero));
		if (remember_ref(s, refname, &zero, 0) < 0)
			return TFGIT_ERROR;
		e = &s->refs[s->nrefs - 1];
	}
	/* made anew after an earlier request of the batch deleted it (an UNLOCK, then another
	 * client's LOCK): one push cannot carry both, and the two together are no fast-forward.
	 * This one waits for the next push. */
	if (e->pending && !e->found && new)
		return TFGIT_ECONFLICT;
	/* a ref a write of the batch asserted (its lock), changed after it: the push must be
	 * atomic, and the lock must stand in it. Made in this batch and now removed again, it
	 * would not be sent at all (nothing to assert); without "atomic", the server could apply
	 * the change and the write in either order. This one waits for the next push. */
	if (e->pending && s->pend[e->pending - 1].asserted &&
	    ((!s->pend[e->pending - 1].old_found && !new) || !session_atomic(s))) {
		core_log("group commit: %s, which a write of this push holds on to, waits for the next push",
			 refname);
		return TFGIT_ECONFLICT;
	}
	if (!e->pending && pending_open(s, e) < 0)
		return TFGIT_ERROR;
	struct pending *p = &s->pend[e->pending - 1];
	p->force |= force;
	if (new)
		git_oid_cpy(&e->oid, new);
	else
		memset(&e->oid, 0, sizeof(e->oid));
	e->found = new != NULL;
	return add_dep(s, e->pending - 1, 1) < 0 ? TFGIT_ERROR : 0;
}

/* Records that the current request's write asserts refname still holds oid (what it read):
 * sent unchanged with the batch's push, unless an update of the batch already moves it from
 * that baseline. */
static int defer_assert(session *s, const char *refname, const git_oid *oid)
{
	git_oid seen;
	int err = session_ref(&seen, s, refname);
	if (err < 0 && err != GIT_ENOTFOUND)
		return git_failure(NULL, err, "reading a ref");
	struct seen_ref *e = find_ref(s, refname);
	if (err == GIT_ENOTFOUND || !e || !git_oid_equal(&seen, oid)) {
		core_log("group commit: a write asserts %s at a value the batch does not hold", refname);
		return TFGIT_ECONFLICT;
	}
	/* a lock made or changed earlier in the batch: it goes in the same push, which must then
	 * be atomic; a server without "atomic" could apply the write and refuse the lock, so the
	 * write waits for the next push, which sees the lock made */
	if (e->pending && !session_atomic(s)) {
		core_log("group commit: %s changes in this push, which cannot be atomic: the write that "
			 "asserts it waits for the next", refname);
		return TFGIT_ECONFLICT;
	}
	if (!e->pending && pending_open(s, e) < 0)
		return TFGIT_ERROR;
	s->pend[e->pending - 1].asserted = 1;
	return add_dep(s, e->pending - 1, 2) < 0 ? TFGIT_ERROR : 0;
}

int session_push_pending(session *s, tfgit_result *r)
{
	size_t n = 0, changes = 0;
	int together = 0; /* a write's lock is among the updates: asserted, or made in the batch */
	push_update *u = calloc(s->npend ? s->npend : 1, sizeof(*u));
	size_t *of = calloc(s->npend ? s->npend : 1, sizeof(*of)); /* u[k] is pend[of[k]] */
	if (!u || !of) {
		free(u);
		free(of);
		return TFGIT_ERROR;
	}
	for (size_t i = 0; i < s->npend; i++) {
		struct pending *p = &s->pend[i];
		struct seen_ref *e = &s->refs[p->ref];
		if (p->status != PENDING_UNSENT)
			continue;
		/* set and set back within the batch (nothing another host did meanwhile is undone),
		 * or only asserted: sent as an assertion, when some update goes */
		int same = p->old_found == e->found && (!e->found || git_oid_equal(&p->old, &e->oid));
		if (same && !(p->asserted && e->found)) {
			p->status = 0;
			continue;
		}
		changes += !same;
		together |= p->asserted;
		u[n].cmd.ref = e->name;
		if (p->old_found)
			git_oid_cpy(&u[n].cmd.old, &p->old);
		if (e->found)
			git_oid_cpy(&u[n].cmd.new, &e->oid);
		u[n].force = p->force;
		of[n++] = i;
	}
	int rc = changes ? apply(s, u, n, together, r) : 0;
	for (size_t k = 0; k < n; k++) {
		struct pending *p = &s->pend[of[k]];
		/* a failed push fails each update; one the report does not name: its outcome is
		 * unknown, and another attempt finds out */
		p->status = rc < 0 ? rc : !changes ? 0 : u[k].status == PUSH_UNSENT ? TFGIT_ECONFLICT : u[k].status;
		snprintf(p->why, sizeof(p->why), "%s", rc < 0 ? (r ? r->message : "the push failed") : u[k].why);
		if (p->status == TFGIT_EDENIED && !s->warm)
			core_log("%s", p->why);
		if (p->status == 0 && !s->local) /* the cache's tracking refs follow what was applied */
			track_pushed(s, s->refs[p->ref].name, s->refs[p->ref].found ? &s->refs[p->ref].oid : NULL);
	}
	free(u);
	free(of);
	return rc;
}

int session_verdict(session *s, size_t request, int *wrote, int *depends, char *why, size_t whylen)
{
	int rc = 0;
	*wrote = *depends = 0;
	for (size_t i = 0; i < s->ndeps; i++) {
		const struct dep *d = &s->deps[i];
		if (d->request != request)
			continue;
		const struct pending *p = &s->pend[d->pend];
		*depends = 1;
		*wrote |= d->write;
		if (p->status == 0)
			continue;
		if (p->status == PENDING_UNSENT || p->status == TFGIT_ECONFLICT || (!d->write && !d->asserted)) {
			/* lost, or only read: what it saw did not happen; another attempt decides (a
			 * ref it asserted, refused with its push, is its own refusal) */
			rc = TFGIT_ECONFLICT;
		} else if (rc != TFGIT_ECONFLICT) {
			rc = p->status;
			snprintf(why, whylen, "%s", p->why);
		}
	}
	return rc;
}
