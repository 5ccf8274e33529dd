/* Fuzz target: the query-string parser and the validators a request's parameters meet. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/tfgit.h"
#include "../../fcgi/query.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256];
	struct query q;
	char *qs = malloc(size + 1);
	if (!qs)
		return 0;
	memcpy(qs, data, size);
	qs[size] = '\0';
	if (query_parse(&q, qs, err, sizeof(err)) == 0) {
		if (q.state && tfgit_state_path_check(q.state) == 0 &&
		    (strstr(q.state, "..") && (strstr(q.state, "/../") || !strncmp(q.state, "../", 3))))
			abort(); /* a state path that climbs out passed the check */
		if (q.repository && tfgit_repository_check(q.repository, 0, err, sizeof(err)) == 0 &&
		    (strstr(q.repository, "%2F") || strstr(q.repository, "%2f") || strstr(q.repository, "/../")))
			abort(); /* a path that changes shape once decoded passed the check */
		query_bool(q.amend);
		query_free(&q);
	}
	free(qs);
	return 0;
}
