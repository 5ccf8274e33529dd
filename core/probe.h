/* tfgit doctor's proofs (probe.c): that this process can write a repository, and that the
 * states its branch holds open under the store's encryption settings. Operations like any
 * other (the repository's flock, a session), for the admin command; the server never calls
 * them. */
#ifndef TFGIT_PROBE_H
#define TFGIT_PROBE_H

#include "tfgit.h"

/* Where probe refs are made: a namespace no client, tfgit view or branch listing reads (two
 * levels below refs/: receive-pack refuses a ref of one). */
#define PROBE_REF_PREFIX "refs/tfgit-doctor/"

/* Proves this process can write t->url as a LOCK, a POST and an UNLOCK do, leaving nothing:
 * - a local repository (a path, file://): each directory such writes create files in (the
 *   repository itself, objects/ and its fan-out directories, refs/, refs/heads/ and every
 *   directory below it) takes a new file, ".tfgit-doctor-<random>.lock", removed at once;
 * - then, when the repository has a branch (t->ref, else any), the ref
 *   refs/tfgit-doctor/<random> is created at that branch's tip (only if absent) and deleted
 *   (only while it holds that value), each through the push a LOCK makes; no object is
 *   added, and a local repository's refs/tfgit-doctor directory is removed once empty (a git
 *   server may keep it, empty: git 2.39 does). A repository without a branch gets a push
 *   connection only (*probe "").
 *   The probe ref is made with that branch asserted unchanged in the same push, as a write
 *   carries its lock: atomically when the server advertises "atomic" (*atomic 1; a local
 *   repository: one ref transaction), in two steps otherwise (*atomic 0).
 * probe (the ref's name) is filled as soon as it is chosen. 0, or a tfgit code with
 * r->message saying what could not be written; *left: the probe ref was made and could not
 * be deleted. */
int tfgit_probe_write(tfgit_result *r, const tfgit_store *store, const tfgit_target *t, char *probe,
		      size_t probelen, int *left, int *atomic);

typedef struct {
	char state[1100];
	char message[512]; /* why it does not open (never a key or a state's content) */
} tfgit_probe_failure;

/* Opens, as a GET does (read, then decrypted under store's settings), each file at the tip of
 * branch t->ref that holds a state: a clear-text Terraform state, a blob in tfgit's sealed
 * format, or binary bytes (a sealed blob of another way). Other files (a README, JSON that is
 * no state) are passed over. At most max are read (*unchecked: those beyond). *found: the
 * branch exists; *opened: states that opened; *fails (freed with free()): those that did not.
 * 0 or a tfgit code (r->message). */
int tfgit_probe_states(tfgit_result *r, const tfgit_store *store, const tfgit_target *t, size_t max,
		       int *found, size_t *opened, size_t *unchecked, tfgit_probe_failure **fails,
		       size_t *nfails);

#endif
