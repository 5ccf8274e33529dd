/* tfgit's own smart-HTTP push request on a connection kept open between operations: a worker
 * keeps one connection per git server (HTTP/1.1 keep-alive, over tfgit's streams, so the
 * no-redirect rule holds), reuses it while the server does, and opens a new one when the server
 * closed it. libgit2 1.5 opens a new connection for every operation. */
#ifndef TFGIT_KEEPALIVE_H
#define TFGIT_KEEPALIVE_H

#include <git2.h>
#include <git2/sys/transport.h>

typedef struct keepalive_request keepalive_request;

/* The certificate check of a new TLS connection that did not verify (libgit2's
 * certificate_check callback: 0 accepts). */
typedef int (*keepalive_cert_fn)(git_cert *cert, int valid, const char *host, void *payload);

/* The services a kept connection carries. */
typedef enum {
	KEEPALIVE_RECEIVE_PACK, /* POST …/git-receive-pack: a push */
	KEEPALIVE_UPLOAD_PACK_V2 /* POST …/git-upload-pack with "Git-Protocol: version=2": ls-refs */
} keepalive_service;

/* Opens the service's POST on a kept connection to the repository httpstream_begin named, or a
 * new one. Its stream's writes are the request's body (sent chunked as they come); its reads,
 * the answer's body once the server answered 200 with the service's result type; a read that
 * ends the body returns 0 bytes. header: a line such as "Authorization: …" without its line
 * end, or NULL. lax: certificates that do not verify are accepted (TFGIT_SSL_NO_VERIFY): its
 * connections are kept apart from the others. 0, or -1 with a libgit2 error set. */
int keepalive_post(keepalive_request **out, keepalive_service service, const char *header, int lax,
		   keepalive_cert_fn check, void *payload);

/* The request's stream (owned by the request). */
git_smart_subtransport_stream *keepalive_stream(keepalive_request *q);

/* 1 when the request failed on a reused connection before a byte of an answer came: the server
 * had closed it, and the request may be made again on a new one. */
int keepalive_closed_under(const keepalive_request *q);

/* The HTTP status the server answered, 0 before (or when it did not). */
int keepalive_status(const keepalive_request *q);

/* Ends the request: its connection is kept for the next when the answer was read whole and
 * the server keeps it open; otherwise it is closed. Accepts NULL. */
void keepalive_done(keepalive_request *q);

/* Closes every kept connection (the TLS trust changed; the process ends). */
void keepalive_close_all(void);

#endif
