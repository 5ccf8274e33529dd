/* SSH remotes on a session a worker keeps: one connection, key exchange and authentication per
 * git server and identity, and a channel per git command (upload-pack, receive-pack) on it.
 * libgit2 1.5's SSH transport opens a new connection, key exchange and authentication for
 * every operation. */
#ifndef TFGIT_SSHKEEP_H
#define TFGIT_SSHKEEP_H

#include <git2.h>
#include <git2/sys/transport.h>

#include "credentials.h"

/* A smart subtransport (stateful: the same channel carries a command's advertisement and its
 * exchange) for auth's URL, over a kept session or a new one. New sessions check the host
 * key with credentials_check_host and authenticate with credentials_acquire, both on auth; a
 * kept session's host key is checked again before each use. auth must outlive the
 * subtransport. 0, or a libgit2 error. */
int sshkeep_subtransport(git_smart_subtransport **out, git_transport *owner, void *auth);

/* libgit2's smart transport over that subtransport (a git_remote_callbacks.transport
 * callback for a fetch; payload: the remote_auth). */
int sshkeep_transport(git_transport **out, git_remote *owner, void *auth);

/* Closes every kept session (the process ends). */
void sshkeep_close_all(void);

#endif
