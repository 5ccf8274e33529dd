/* Pushes: receive-pack commands, a pack and a report over a smart transport, or one ref
 * transaction in a local repository (push.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deadline.h"
#include "../tfgit.h"
#include "pktline.h"
#include "push.h"

#define REPORT_MAX (1u << 20) /* a report-status longer than this is no report */
#define PACK_CHUNK 65536      /* the pack goes out in writes of this size */

int push_lost_race(const char *reason, int force)
{
	/* git 2.39's words, and git 2.51's (batched updates: ref_transaction_error_msg) */
	return !strstr(reason, "declined") && !strstr(reason, "denied") &&
	       (strstr(reason, "lock") || strstr(reason, "stale") || strstr(reason, "fetch first") ||
		strstr(reason, "failed to update") || strstr(reason, "atomic transaction failed") ||
		strstr(reason, "incorrect old value") || strstr(reason, "already exists") ||
		strstr(reason, "does not exist") || (!force && strstr(reason, "non-fast-forward")));
}

struct pack_out {
	git_smart_subtransport_stream *st;
	size_t len;
	char buf[PACK_CHUNK];
};

static int pack_flush(struct pack_out *o)
{
	int err = o->len ? o->st->write(o->st, o->buf, o->len) : 0;
	o->len = 0;
	return err;
}

/* The pack builder's output, gathered into writes of PACK_CHUNK bytes. */
static int pack_chunk(void *data, size_t size, void *payload)
{
	struct pack_out *o = payload;
	const char *p = data;
	if (deadline_passed()) {
		git_error_set_str(GIT_ERROR_NET, "the deadline passed while sending the pack");
		return -1;
	}
	while (size) {
		size_t room = sizeof(o->buf) - o->len, k = size < room ? size : room;
		memcpy(o->buf + o->len, p, k);
		o->len += k;
		p += k;
		size -= k;
		if (o->len == sizeof(o->buf) && pack_flush(o) < 0)
			return -1;
	}
	return 0;
}

/* The commits hide names (those present here) and their history are the server's already. */
static int hide_known(git_revwalk *walk, git_odb *odb, const git_oid *hide, size_t nhide)
{
	for (size_t i = 0; i < nhide; i++) {
		size_t size;
		git_object_t type;
		if (git_oid_is_zero(&hide[i]) || git_odb_read_header(&size, &type, odb, &hide[i]) < 0 ||
		    type != GIT_OBJECT_COMMIT) {
			git_error_clear();
			continue;
		}
		int err = git_revwalk_hide(walk, &hide[i]);
		if (err < 0)
			return err;
	}
	return 0;
}

static int write_pack(git_smart_subtransport_stream *st, git_repository *repo, const git_oid *hide,
		      size_t nhide, const push_update *u, size_t n)
{
	git_packbuilder *pb = NULL;
	git_revwalk *walk = NULL;
	git_odb *odb = NULL;
	struct pack_out *o = malloc(sizeof(*o));
	int err = o ? 0 : -1;
	if (!o)
		git_error_set_oom();
	if (err == 0 && (err = git_repository_odb(&odb, repo)) == 0 && (err = git_packbuilder_new(&pb, repo)) == 0)
		err = git_revwalk_new(&walk, repo);
	for (size_t i = 0; err == 0 && i < n; i++)
		if (!git_oid_is_zero(&u[i].cmd.new) && !git_oid_equal(&u[i].cmd.new, &u[i].cmd.old))
			err = git_revwalk_push(walk, &u[i].cmd.new);
	if (err == 0 && (err = hide_known(walk, odb, hide, nhide)) == 0 &&
	    (err = git_packbuilder_insert_walk(pb, walk)) == 0) {
		o->st = st;
		o->len = 0;
		if ((err = git_packbuilder_foreach(pb, pack_chunk, o)) == 0)
			err = pack_flush(o);
	}
	git_revwalk_free(walk);
	git_packbuilder_free(pb);
	git_odb_free(odb);
	free(o);
	return err;
}

struct report_ctx {
	push_update *u;
	size_t n;
};

static void each_ref(const char *ref, const char *reason, void *ctx)
{
	struct report_ctx *c = ctx;
	for (size_t i = 0; i < c->n; i++) {
		push_update *u = &c->u[i];
		if (u->status != PUSH_UNSENT || strcmp(u->cmd.ref, ref) != 0)
			continue;
		if (!reason) {
			u->status = 0;
		} else if (push_lost_race(reason, u->force)) {
			u->status = TFGIT_ECONFLICT;
		} else {
			u->status = TFGIT_EDENIED;
			snprintf(u->why, sizeof(u->why), "the repository refused the push (%s: %s)", ref, reason);
		}
		return;
	}
}

int push_smart(git_smart_subtransport_stream *st, git_repository *repo, const git_oid *hide, size_t nhide,
	       push_update *u, size_t n, int atomic, char *why, size_t whylen)
{
	rp_command *cmds = calloc(n ? n : 1, sizeof(*cmds));
	char *head = NULL, *report = NULL, unpack[256] = "";
	size_t headlen = 0, len = 0;
	int rc = -1;
	if (!cmds) {
		git_error_set_oom();
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		cmds[i] = u[i].cmd;
		u[i].status = PUSH_UNSENT;
		u[i].why[0] = '\0';
	}
	if (rp_commands(&head, &headlen, cmds, n, atomic) < 0) {
		snprintf(why, whylen, "the push's commands could not be written (a ref name too long)");
		rc = -2;
	} else if (st->write(st, head, headlen) == 0 &&
		   (!rp_needs_pack(cmds, n) || write_pack(st, repo, hide, nhide, u, n) == 0)) {
		rc = pktline_read(st, &report, &len, REPORT_MAX, "the server's report", why, whylen);
	}
	if (rc == 0) {
		struct report_ctx c = {u, n};
		int k = rp_report(report, len, each_ref, &c, unpack, sizeof(unpack), why, whylen);
		if (k == 0)
			snprintf(why, whylen, "the connection ended before the server's report was whole");
		else if (k == 1 && strcmp(unpack, "ok") != 0)
			snprintf(why, whylen, "the repository could not unpack the pack sent (%.200s)", unpack);
		rc = k == 1 && !strcmp(unpack, "ok") ? 0 : -2;
	}
	free(report);
	free(head);
	free(cmds);
	return rc;
}

/* Each ref's current id in the locked repository is its old id; 0, 1 when one moved, or an
 * error. */
static int any_moved(git_repository *local, const push_update *u, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		git_oid cur;
		int err = git_reference_name_to_id(&cur, local, u[i].cmd.ref);
		if (err == GIT_ENOTFOUND) {
			git_error_clear();
			memset(&cur, 0, sizeof(cur));
		} else if (err < 0) {
			return err;
		}
		if (!git_oid_equal(&cur, &u[i].cmd.old))
			return 1;
	}
	return 0;
}

/* Which of push_local's transactions takes an update. */
static git_transaction *phase_of(const push_update *u, git_transaction *hold, git_transaction *set,
				 git_transaction *del)
{
	if (git_oid_equal(&u->cmd.new, &u->cmd.old))
		return hold; /* asserted: locked and checked, left as it is */
	return git_oid_is_zero(&u->cmd.new) ? del : set;
}

int push_local(git_repository *local, push_update *u, size_t n)
{
	/* three transactions, every ref locked and checked before any is written: the new values
	 * first, the deletions after them (a state written while its lock is deleted in the same
	 * push never lands after the lock went), the asserted refs released last. libgit2 commits a
	 * transaction's refs in hash order and releases an unchanged ref's lock at once, so one
	 * transaction would not hold a write's lock until the write is in. */
	git_transaction *hold = NULL, *set = NULL, *del = NULL;
	git_signature *sig = NULL;
	int moved = 0, sets_in = 0, err = git_transaction_new(&hold, local);
	if (err == 0 && (err = git_transaction_new(&set, local)) == 0 && (err = git_transaction_new(&del, local)) == 0)
		err = git_signature_now(&sig, "tfgit", "tfgit@localhost");
	for (size_t i = 0; err == 0 && i < n; i++)
		err = git_transaction_lock_ref(phase_of(&u[i], hold, set, del), u[i].cmd.ref);
	if (err == 0 && (moved = any_moved(local, u, n)) < 0)
		err = moved;
	for (size_t i = 0; err == 0 && !moved && i < n; i++) {
		git_transaction *tx = phase_of(&u[i], hold, set, del);
		if (tx == set)
			err = git_transaction_set_target(set, u[i].cmd.ref, &u[i].cmd.new, sig, "tfgit");
		else if (tx == del)
			err = git_transaction_remove(del, u[i].cmd.ref);
	}
	if (err == 0 && !moved && (err = git_transaction_commit(set)) == 0) {
		sets_in = 1;
		err = git_transaction_commit(del);
	}
	git_transaction_free(del); /* each releases what it still holds */
	git_transaction_free(set);
	git_transaction_free(hold);
	git_signature_free(sig);
	if (err == GIT_ELOCKED && !sets_in) { /* another writer holds a ref's lock file: it moves it */
		git_error_clear();
		err = 0;
		moved = 1;
	}
	for (size_t i = 0; i < n; i++) {
		int deletion = git_oid_is_zero(&u[i].cmd.new) && !git_oid_is_zero(&u[i].cmd.old);
		/* the new values in and a deletion failed (packed-refs locked by another writer): that
		 * deletion did not happen, and another attempt finds out */
		u[i].status = sets_in ? (deletion && err < 0 ? TFGIT_ECONFLICT : 0)
			      : err < 0 ? err : moved ? TFGIT_ECONFLICT : 0;
	}
	if (sets_in && err < 0)
		git_error_clear();
	return sets_in ? 0 : err < 0 ? err : moved ? TFGIT_ECONFLICT : 0;
}
