/* What every layer of the core shares, implemented in log.c and errors.c alone (which include
 * nothing else of the core): results' messages, libgit2's failures, the log and its redaction.
 * Not part of the public API. */
#ifndef TFGIT_INTERNAL_H
#define TFGIT_INTERNAL_H

#include "tfgit.h"

/* Releases r->content, copied or not (content_owner). */
void result_content_free(tfgit_result *r);

/* Formats a message into r->message (r may be NULL), secrets redacted. */
void result_message(tfgit_result *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Maps the last libgit2 error after a failed call to a tfgit code, writes an actionable
 * message (what failed, libgit2's reason with URL credentials redacted) into r, and logs it. */
int git_failure(tfgit_result *r, int giterr, const char *what);

/* For scheme://[userinfo@]host…: sets *authority just past "://" (url itself when there is no
 * scheme) and returns the '@' that ends the userinfo, or NULL when there is none. The authority
 * ends at the first character of stops. */
const char *url_userinfo_at(const char *url, const char **authority, const char *stops);

/* Logs one line to stderr, prefixed with the process id, secrets redacted, escaped (log.c). */
void core_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Replaces every noted secret in text by ***, in place. */
void secrets_redact(char *text);

#endif
