/* One connection to a remote for one operation: the refs it advertised, object transfer into
 * the cache, and compare-and-swap ref updates.
 *
 * Layer: net/ talks to git servers: the session (remote.c), tfgit's own HTTP(S) streams
 * (httpstream.c), credentials, URLs (parsed before they are matched), the sockets an operation
 * opened, its deadline, and its round trips (roundtrips.c, which the front reads for its log and
 * counters). It may call format/ and the shared core (tfgit.h, internal.h), never store/ or
 * anything above: what it fetches it writes into the repository it is handed. */
#ifndef TFGIT_REMOTE_H
#define TFGIT_REMOTE_H

#include <git2.h>

#include "../tfgit.h"

typedef struct session session;

/* Connects to url (for_push: a receive-pack advertisement, else upload-pack) and records the
 * advertised refs. Local paths and file:// open the remote repository instead. */
int session_open(session **out, git_repository *cache, const char *url, int for_push,
		 const tfgit_remote_opts *opts, tfgit_result *r);

/* A push session without a connection yet, when the cache can stand in for the advertisement:
 * an http(s) remote whose receive-pack advertisement offered "atomic" when this cache last saw
 * it (its configuration keeps the capabilities). Its refs are the cache's last view of the
 * remote (the tracking refs that advertisements, fetches and pushes keep), a guess that only
 * the server's compare-and-swap checks: a push goes out as one request on a kept connection
 * (keepalive.c) with those values as the old ids, and the server refuses it if one moved. It fetches nothing (TFGIT_ECONFLICT when a commit it names is not
 * in the cache). 0; 1 when there is no such session (open a real one); or TFGIT_ERROR. */
int session_open_warm(session **out, git_repository *cache, const char *url, const tfgit_remote_opts *opts);

/* A read session of the named refs only (full names), over an http(s) remote that speaks
 * protocol v2: one ls-refs request (ref-prefix each name) on a kept connection, so that a
 * repository's other branches cost nothing. What it read is the server's (not a guess); a ref
 * not named is unknown (session_ref fails). A fetch opens a connection of libgit2's. 0; 1 when
 * there is no such session (not http(s), or the server did not answer ls-refs: then logged once
 * and not asked again by this process); or TFGIT_ERROR. */
int session_open_refs(session **out, git_repository *cache, const char *url, const tfgit_remote_opts *opts,
		      const char *const *refnames, size_t n);

/* 1 for a session session_open_warm opened: nothing read from it is known to be true until
 * a push that carried it was applied. */
int session_warm(const session *s);

/* 1 once a push of the session (not deferred) was applied whole. */
int session_applied(const session *s);

/* The value refname (full name) had when the session opened: 0, or GIT_ENOTFOUND. */
int session_ref(git_oid *out, session *s, const char *refname);

/* A local remote's objects become readable through the cache (an alternate, in memory only):
 * nothing is copied in, and a blob is read only when asked for. Once per cache repository;
 * 0 for smart remotes. */
int session_share_objects(session *s);

/* 1 when a ref of the remote collides with refname in git's ref store (one is a directory of
 * the other: locks/q and locks/q/x), its name in out; 0 when none does; a negative code. */
int session_ref_collision(session *s, const char *refname, char *out, size_t outlen);

/* Makes the advertised commit of refname, with its whole tree, present in the cache.
 * TFGIT_ECONFLICT when the remote moved on meanwhile (open a new session and retry). */
int session_fetch(session *s, const char *refname, tfgit_result *r);

/* Sets refname on the remote from old (NULL: it must not exist) to new (NULL: delete),
 * only if it still holds old, together with every ref asserted since the last push (each
 * only if it still holds what was asserted, atomically: all or none). 0, TFGIT_ECONFLICT
 * when a ref did not hold its value, or another code. */
int session_push(session *s, const char *refname, const git_oid *old, const git_oid *new,
		 int force, tfgit_result *r);

/* The next push (a deferred session: the batch's push) also asserts that refname still holds
 * oid, the value this session read (a writer's lock): left as it is, in the same atomic push,
 * so that the update is applied only while it does. A server without "atomic" gets the
 * update alone (two steps). 0, TFGIT_ECONFLICT when the session does not
 * hold that value, or TFGIT_ERROR. */
int session_assert(session *s, const char *refname, const git_oid *oid);

/* 1 when an update and its assertions are applied all or none: a local remote (one ref
 * transaction), or a smart push session whose server advertised "atomic". */
int session_atomic(const session *s);

/* Calls fn for each ref of the remote whose name starts with prefix (a smart remote's
 * advertisement, a local remote's refs), until fn returns non-zero (returned). */
int session_each_ref(session *s, const char *prefix,
		     int (*fn)(const char *name, const git_oid *oid, void *ctx), void *ctx);

/* 1 when the remote is a local repository (a path, file://): opened in place, not fetched. */
int session_is_local(const session *s);

/* Accepts NULL. */
void session_free(session *s);

/* Group commit (batch.c). A deferred session records each session_push instead of sending it
 * (0 at once) and shows its new value to whatever reads the ref next; session_push_pending then
 * sends every recorded update in one push, each ref still compare-and-swap from the value the
 * session first saw (smart remotes: receive-pack's check; local remotes: a matching update per
 * ref), and keeps the server's verdict per ref. */
void session_defer(session *s);

/* 1 for a deferred session. */
int session_deferred(const session *s);

/* Reads and pushes from now on are on behalf of request number request (the batch's index). */
void session_track(session *s, size_t request);

/* Sends the recorded updates in one push. 0, or the code of a push that failed as a whole
 * (each update then carries it too). */
int session_push_pending(session *s, tfgit_result *r);

/* A request's verdict once the push is done: 0 when every recorded update it read or made was
 * applied (or it touched none), TFGIT_ECONFLICT when one was not and the request must be tried
 * again on a new session, or the code of a refused update it made (why: the server's reason).
 * *wrote: it made an update; *depends: it read or made one (before the push: its answer waits
 * for the push). */
int session_verdict(session *s, size_t request, int *wrote, int *depends, char *why, size_t whylen);

#endif
