/* The routing table: each method Terraform uses, the handler that serves it. */
#ifndef TFGIT_ROUTE_H
#define TFGIT_ROUTE_H

#include "request.h"
#include "../core/settings.h"

/* 1 when the request may use right (ACL_READ, …) on state of its target's repository: the
 * state path is allowed (TFGIT_ALLOWED_STATES) and the ACL, if any, grants it; else 0. */
int route_may(const struct request *req, const struct settings *cfg, int right, const char *state);

/* Serves one request completely (response written, one log line). */
void route_request(struct request *req, const struct settings *cfg);

#endif
