/* A push: ref updates sent together, with what became of each. Over a smart transport they go
 * out as receive-pack commands with a pack (tfgit's own, not libgit2's push), atomically when
 * the server advertised "atomic"; into a local repository they are one ref transaction. */
#ifndef TFGIT_PUSH_H
#define TFGIT_PUSH_H

#include <git2.h>
#include <git2/sys/transport.h>

#include "receivepack.h"

#define PUSH_UNSENT 1 /* a status before the report */

typedef struct {
	rp_command cmd; /* old = new: the ref is asserted to hold it still */
	int force;      /* a non-fast-forward is wanted (no lost race when refused as one) */
	int status;     /* PUSH_UNSENT, 0 applied, TFGIT_ECONFLICT (moved since read: another
			 * attempt), TFGIT_EDENIED (the server's policy: why), another code */
	char why[512];
} push_update;

/* Sends u over receive-pack's request stream st (the caller's to open and give back): the
 * commands (atomic when asked), then a pack of everything the new ids reach but the commits in
 * hide (what the server has), built by libgit2's pack builder from repo; reads the report into
 * each update's status (one the report does not name stays PUSH_UNSENT). 0 when the report was read; -1 when the transport
 * failed (a libgit2 error is set); -2 when the server's answer was no report or said the pack
 * was not unpacked (why). */
int push_smart(git_smart_subtransport_stream *st, git_repository *repo, const git_oid *hide, size_t nhide,
	       push_update *u, size_t n, int atomic, char *why, size_t whylen);

/* Applies u to a local repository as receive-pack's atomic push does: each ref locked (git's
 * lock files, which every git and libgit2 writer takes), each checked to hold its old id under
 * the lock, then the new values written, then the deletions, the asserted refs held until the
 * end. The objects must be there already. 0 (each status 0; a deletion that failed after the
 * new values went in: TFGIT_ECONFLICT), TFGIT_ECONFLICT when a ref moved or was locked by
 * another writer (nothing written; each status TFGIT_ECONFLICT), or a libgit2 error. */
int push_local(git_repository *local, push_update *u, size_t n);

/* 1 when receive-pack's reason for a refused ref means it changed since it was read (a lost
 * compare-and-swap, worth another try, as "atomic transaction failed" is); 0 for the server's
 * policy (a hook, a protected branch, no deletes, no forced updates), which is not. */
int push_lost_race(const char *reason, int force);

#endif
