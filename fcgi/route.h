/* The routing table: each method Terraform uses, the handler that serves it. */
#ifndef TFGIT_ROUTE_H
#define TFGIT_ROUTE_H

#include "request.h"
#include "../core/settings.h"

/* Serves one request completely (response written, one log line). */
void route_request(struct request *req, const struct settings *cfg);

#endif
