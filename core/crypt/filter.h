/* Filters: an external command (sops, age, gpg, a Vault CLI…) that turns a state into another
 * form, reading it on its stdin and writing the result on its stdout (TFGIT_ENCRYPT_CMD,
 * TFGIT_DECRYPT_CMD). Fails closed: any doubt about the output is a failure.
 *
 * The command runs as /bin/sh -c cmd, forked from the calling worker:
 * - in a process group of its own, so that everything it starts can be killed with it;
 * - fd 0, 1 and 2 are pipes to this process and no other descriptor is open (the worker's
 *   listening socket, connections and lock files never reach it);
 * - its environment is the process's minus tfgit's secrets: GIT_PASSWORD, GITHUB_TOKEN,
 *   TF_BACKEND_HTTP_ENCRYPTION_PASSPHRASE and every variable whose name starts with TFGIT_
 *   (everything else passes: HOME, PATH, SOPS_*, GNUPGHOME, SOPS_AGE_KEY_FILE…);
 * - umask 077, working directory "/", an empty signal mask and every signal at its default
 *   action (a worker ignores SIGPIPE; the filter does not).
 *
 * The output is complete only at end of file on its stdout and once sh has exited. When
 * both have happened, whatever is left in the group (a background process that no longer
 * holds stdout) is killed with SIGKILL. A background process that still holds stdout after sh
 * has exited (`sleep 30 & echo x`) keeps the output open: the call then ends at the timeout,
 * as a failure, the group killed. No process of the group is left running by a call, except
 * one that left the group itself (setsid, as gpg-agent does). */
#ifndef TFGIT_FILTER_H
#define TFGIT_FILTER_H

#include <stddef.h>

#include "../tfgit.h"

/* Runs the shell command cmd (/bin/sh -c cmd) with len bytes of in on its stdin, its stdout
 * collected into *out (a new heap buffer, at most max bytes: more is a failure), its stderr
 * (the first errlen-1 bytes, escaped for a log line with tfgit_escape) into err. Bounded by
 * timeout_seconds (> 0): past it the command's whole process group is killed (SIGKILL) and
 * reaped. 0 when the command exited 0 and wrote at least one byte; otherwise TFGIT_ERROR with
 * why (never containing the input or output bytes) saying which: could not start, exit
 * status N, killed by signal N, timed out after N s, empty output, output larger than max.
 *
 * *out is overwritten, not freed first; on success out->ptr holds out->size bytes followed
 * by a NUL (not counted), on failure it is NULL and out->size 0. err and why may be NULL
 * (with errlen/whylen 0); err is filled on success too (a filter's warnings). The command's
 * stdin is closed once len bytes are written, or as soon as the command closes it (EPIPE:
 * the rest is not given; the command's exit status decides). SIGPIPE is blocked in the
 * calling thread during the call and any SIGPIPE the call causes is consumed, whatever the
 * process's disposition of it. SIGALRM and other signals interrupting the call are resumed
 * from. The caller must not reap children with waitpid(-1) or ignore SIGCHLD meanwhile
 * (the exit status would be lost: the call then fails). */
int filter_run(const char *cmd, const char *in, size_t len, size_t max, int timeout_seconds,
	       tfgit_buf *out, char *err, size_t errlen, char *why, size_t whylen);

#endif
