/* An HTTP/1.1 response read as it arrives: the status line, the headers tfgit needs and the
 * body's framing (Content-Length, chunked, or until the connection closes), so that a kept
 * connection is reused only when its response was read to the last byte. Pure: bytes in,
 * events out (fuzzed by tests/fuzz/fuzz_httpresponse.c). */
#ifndef TFGIT_HTTPRESPONSE_H
#define TFGIT_HTTPRESPONSE_H

#include <stddef.h>

#define HR_LINE_MAX 8192      /* a status or header line, or a chunk size line */
#define HR_HEADERS_MAX 65536  /* all header lines of one response */

typedef enum {
	HR_MORE,  /* every byte given was consumed: give more */
	HR_BODY,  /* *body, *bodylen: the next bytes of the body */
	HR_DONE,  /* the response is complete (bytes after it are not consumed) */
	HR_ERROR  /* not a response tfgit reads (why) */
} hr_event;

typedef struct {
	int phase;
	int status;            /* once the headers are read: the final status (1xx are skipped) */
	int keep;              /* the connection may carry another request after this response */
	int chunked;
	long long length;      /* Content-Length, -1 when none */
	long long left;        /* of the body or the current chunk */
	char content_type[128];
	char line[HR_LINE_MAX];
	size_t linelen;
	size_t header_bytes;
	const char *why;
} http_response;

/* Starts reading a response to a request whose method is not HEAD. */
void hr_init(http_response *h);

/* Consumes bytes of in (len of them) up to the next event; *used: how many. HR_BODY points
 * *body into in. At the end of the connection, call it with len 0: a body that runs until the
 * close is then HR_DONE, anything else HR_ERROR. */
hr_event hr_feed(http_response *h, const char *in, size_t len, size_t *used, const char **body,
		 size_t *bodylen);

/* 1 once the response is complete, also right after an HR_BODY that handed out its last bytes
 * (a Content-Length body): the caller need not read more to learn it. */
int hr_complete(const http_response *h);

/* 1 once the headers were read (status, content_type, keep and the framing are known). */
int hr_headers_read(const http_response *h);

#endif
