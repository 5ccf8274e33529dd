/* SSH remotes on a session a worker keeps: one connection, key exchange and authentication per
 * git server and identity, and a channel per git command (upload-pack, receive-pack) on it.
 * libgit2 1.5's SSH transport opens a new connection, key exchange and authentication for
 * every operation. */
#ifndef TFGIT_SSHKEEP_H
#define TFGIT_SSHKEEP_H

#include <git2.h>
#include <git2/sys/transport.h>

#include "credentials.h"
#include "url.h"

/* A smart subtransport (stateful: the same channel carries a command's advertisement and its
 * exchange) for auth's URL, over a kept session or a new one. New sessions check the host
 * key with credentials_check_host and authenticate with credentials_acquire, both on auth; a
 * kept session's host key is checked again before each use. auth must outlive the
 * subtransport. 0, or a libgit2 error. */
int sshkeep_subtransport(git_smart_subtransport **out, git_transport *owner, void *auth);

/* libgit2's smart transport over that subtransport (a git_remote_callbacks.transport
 * callback for a fetch; payload: the remote_auth). */
int sshkeep_transport(git_transport **out, git_remote *owner, void *auth);

/* The command line a channel runs for service ("git-upload-pack") and an ssh:// or scp-like
 * URL's path, quoted for the remote shell as git quotes it ('…', with ' and ! outside the
 * quotes; ssh://host/~user/repo relative to that user's home). -1 when the path is empty, holds
 * a control character, or does not fit whole. */
int sshkeep_command(char *out, size_t outlen, const char *service, const url_parts *u);

/* Closes every kept session (the process ends). */
void sshkeep_close_all(void);

#endif
