/* The last failed requests, kept where every process serving from one cache directory sees
 * them: a ring of FAILURES_KEPT entries in <cache dir>/.failures-v1 (mapped.h), so that the web
 * view, `tfgit failures` and make run can show what Terraform does not print (the error's
 * message and the request's id, which names its log line). Nothing in an entry is a secret:
 * its texts are redacted as the log's are. */
#ifndef TFGIT_FAILURES_H
#define TFGIT_FAILURES_H

#include <stddef.h>
#include <stdint.h>

#define FAILURES_KEPT 64

struct failure {
	int64_t time_ms;       /* when it was answered, ms since the epoch */
	int32_t status;
	char id[17];           /* the request id (X-Request-Id, the log line's id=) */
	char method[16];
	char user[128];        /* REMOTE_USER, "" for none */
	char repository[512];  /* the repository as checked, its URL's password redacted; "" when
				* the request was refused before its repository was checked */
	char ref[256];
	char state[1025];      /* "" when none was checked (or it held a secret) */
	char message[512];     /* the error the client got */
};

/* Maps the file in cache_dir (made when missing; kept mapped, remapped when cache_dir
 * changes). 0, or -1 with the reason in why. */
int failures_open(const char *cache_dir, char *why, size_t whylen);

/* Keeps a copy of f, its texts redacted of every noted secret; nothing when no file is mapped. */
void failures_note(const struct failure *f);

/* Up to max of the entries kept, newest first, into out (complete ones only: one being written
 * meanwhile is left out); how many. */
size_t failures_list(struct failure *out, size_t max);

#endif
