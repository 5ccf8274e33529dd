/* tfgit's own TCP and TLS streams for libgit2's smart HTTP transport, which connect only to the
 * repository's host and port and send requests only for its path: no redirect is followed. */
#ifndef TFGIT_HTTPSTREAM_H
#define TFGIT_HTTPSTREAM_H

#include <git2.h>
#include <git2/sys/stream.h>

/* Once per process, after git_libgit2_init() (after fork(): the TLS context is the process's):
 * the TLS client context, trusting the system bundle /etc/ssl/certs/ca-certificates.crt when
 * present (read at the first TLS connection) plus ca_file when not NULL (read now), TLS 1.2 at
 * least. 0, or -1 with the reason logged (core_log). */
int httpstream_setup(const char *ca_file);

/* Unregisters the streams and frees the TLS context; before git_libgit2_shutdown(). Safe to
 * call without setup, and twice. */
void httpstream_teardown(void);

/* Before connecting to url. For http:// and https:// (any case), registers tfgit's streams
 * with libgit2 (process-wide): they connect only to url's host and port, with url's scheme,
 * and send only the smart-HTTP requests for url's path (its /info/refs?service=...,
 * /git-upload-pack and /git-receive-pack); anything else is refused without a byte sent, and
 * remembered for httpstream_refused(). For any other URL (ssh://, git://, scp-like, local),
 * unregisters them, since libgit2's SSH transport needs its own socket stream. url is not
 * kept (its userinfo never is). Clears the refusal. 0, or -1 with a libgit2 error set. */
int httpstream_begin(const char *url);

/* A new connection of tfgit's own (not libgit2's) to the repository httpstream_begin named,
 * with the same rules: 0; GIT_ECERTIFICATE when its TLS certificate did not verify (*out is
 * connected: its certificate() is for the caller's check); or -1 with a libgit2 error. */
int httpstream_open(git_stream **out);

/* 1 when a connection that has no request out is still open and has nothing unread: fit to
 * carry the next request; 0 when the server closed it or it broke. */
int httpstream_idle(git_stream *gs);

/* "http(s)://host:port" of the repository httpstream_begin named (the key of a kept
 * connection); 0, or -1. */
int httpstream_origin(char *out, size_t outlen);

/* "METHOD <path><service> HTTP/1.1\r\nHost: …\r\n" for the repository httpstream_begin named
 * (service: "/git-receive-pack"); 0, or -1 when it does not fit. */
int httpstream_request_head(char *out, size_t outlen, const char *method, const char *service);

/* Unregisters the streams (libgit2's defaults again); the refusal stays readable. */
void httpstream_end(void);

/* After a failure: the redirect target refused since httpstream_begin, as
 * "scheme://host:port/path" (no userinfo; no path when the redirect named another host or
 * port: the stream learns only those), else NULL. Static storage, valid until the next
 * httpstream_begin. */
const char *httpstream_refused(void);

#endif
