/* libgit2's own smart subtransports (HTTP(S), SSH, git://), wrapped, so that a push session can
 * speak receive-pack itself: libgit2 1.5 connects, authenticates and reads the advertisement as
 * before, while the wrapper keeps the advertisement's first bytes (its capabilities, which
 * libgit2 does not expose) and hands the session receive-pack's request stream (the same SSH
 * channel or git:// socket, or a new smart-HTTP POST) to write its own commands and pack to. */
#ifndef TFGIT_TAP_H
#define TFGIT_TAP_H

#include <git2.h>
#include <git2/sys/transport.h>

typedef struct tap tap;

typedef enum { TAP_HTTP, TAP_SSH, TAP_GIT } tap_kind;

/* Makes libgit2's smart transport for owner over the wrapped subtransport of kind (for a
 * git_remote_callbacks.transport callback). *slot is set to the wrapper once it exists and back
 * to NULL when libgit2 frees it. ssh_auth: for TAP_SSH, the remote_auth of a session kept
 * between operations (sshkeep.h); NULL: libgit2's SSH transport. 0 or a libgit2 error. */
int tap_transport(git_transport **out, git_remote *owner, tap_kind kind, tap **slot, void *ssh_auth);

/* The capabilities (RP_CAP_*) of the receive-pack advertisement read last; -1 when none was
 * read whole. */
int tap_caps(const tap *t);

/* receive-pack's request stream, after the advertisement: the connection's own (SSH, git://)
 * or a new request (smart HTTP). Written and read by the caller, then given back. */
int tap_push_stream(git_smart_subtransport_stream **out, tap *t);

/* Gives the stream back: a request's is freed; a connection's stays libgit2's, which no longer
 * writes to it (receive-pack is done: libgit2's goodbye flush would meet a closed peer). */
void tap_push_done(tap *t, git_smart_subtransport_stream *stream);

#endif
