/* Writing responses: the one mapping of core codes to HTTP statuses, JSON error bodies. */
#ifndef TFGIT_RESPONSE_H
#define TFGIT_RESPONSE_H

#include <stddef.h>

#include "request.h"

/* The HTTP status for a core return code. */
int status_for(int code);

/* Sends status, optional extra header lines (each ending in \r\n), and body. */
void respond(struct request *req, int status, const char *headers, const char *ctype,
	     const char *body, size_t len);

/* Sends {"error": message} with status. */
void respond_error(struct request *req, int status, const char *message);

/* Sends the response for a core result: success, the holder's lock JSON on 409, or an error. */
void respond_result(struct request *req, int code);

/* Milliseconds since the request started. */
double request_ms(const struct request *req);

/* base64 of the MD5 of data into out (at least 25 bytes). */
void content_md5(char *out, const char *data, size_t len);

#endif
