/* Group commit: the requests waiting for one repository on one host, served together by
 * whichever of them gets the repository's flock, in one advertisement and one push. */
#ifndef TFGIT_BATCH_H
#define TFGIT_BATCH_H

#include "op.h"

#define BATCH_BODY_MAX (8u << 20) /* a larger body runs alone (the push is its transfer) */

typedef enum { BATCH_GET = 1, BATCH_PUT, BATCH_DELETE, BATCH_LOCK, BATCH_UNLOCK } batch_kind;

/* One request of the API, as the core's public functions receive it (strings borrowed). */
typedef struct {
	batch_kind kind;
	const char *lock_id; /* PUT, DELETE: the request's ID=, NULL when none */
	const char *body;    /* PUT: the state; LOCK, UNLOCK: the lock JSON (empty: force-unlock) */
	size_t len;
	int amend;           /* PUT: amend=true */
} batch_request;

/* Serves q on t, alone (op_run) or in a batch: with TFGIT_GROUP_COMMIT the request is queued
 * beside the repository's flock (<cache dir>/<entry>.q/), and its process waits for its own
 * answer, or, when it gets the flock first, serves every compatible queued request with its
 * own: one session, one push, each request's verdict from the server's per-ref report. The
 * answer (code and r) is what op_run would have given; r->batch says how many were served
 * together. Bounded as op_run is: TFGIT_QUEUE_TIMEOUT while the request waits unclaimed,
 * TFGIT_REMOTE_TIMEOUT in all. */
int batch_run(tfgit_result *r, const tfgit_store *store, const tfgit_target *t, const batch_request *q);

/* One attempt of a request (op_attempt_fn; ctx is its batch_request): the same attempt
 * functions serve a request alone and in a batch. state.c: GET, PUT, DELETE; lock.c: LOCK,
 * UNLOCK. */
int state_request_attempt(op *o, void *ctx);
int lock_request_attempt(op *o, void *ctx);

#endif
