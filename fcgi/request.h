/* One FastCGI request: its parameters copied out of libfcgi, its body, its outcome. */
#ifndef TFGIT_REQUEST_H
#define TFGIT_REQUEST_H

#include <time.h>

#include <fcgiapp.h>

#include "../core/tfgit.h"
#include "query.h"

struct request {
	FCGX_Request *fcgi;   /* borrowed; its environment is freed at the next accept */
	char *method;
	char *query_string;
	char *content_md5;    /* Content-MD5 header, NULL when absent */
	long long content_length; /* -1 when absent (a chunked body) */
	struct query q;
	char *body;
	size_t body_len;
	tfgit_target target;
	tfgit_result result;
	int status;           /* the status sent, for the log */
	struct timespec start;
};

/* Copies the request's parameters; -1 when out of memory. */
int request_init(struct request *req, FCGX_Request *fcgi);

/* Reads the body until the input stream ends. 0; 1 when it is larger than max (413);
 * -1 on a read error. */
int request_read_body(struct request *req, size_t max);

/* Releases everything the request owns; safe to call twice. */
void request_free(struct request *req);

#endif
