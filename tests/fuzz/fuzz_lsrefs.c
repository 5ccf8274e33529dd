/* Fuzz target: a git server's answer to protocol v2's ls-refs. Beyond not crashing: a prefix of
 * an answer is never more complete than the whole, and each ref named is a non-empty string
 * without spaces. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/net/lsrefs.h"

static void each(const char *refname, const git_oid *oid, void *ctx)
{
	size_t *n = ctx;
	if (!refname || !*refname || strchr(refname, ' ') || !oid)
		abort();
	(*n)++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char why[256];
	size_t whole = 0, part = 0;
	int k = lsrefs_parse((const char *)data, size, each, &whole, why, sizeof(why));
	for (size_t cut = 0; cut < size && cut < 64; cut++) {
		int p = lsrefs_parse((const char *)data, cut, NULL, NULL, why, sizeof(why));
		if (p == 1 && k != 1)
			abort();
	}
	if (k == 1 && lsrefs_parse((const char *)data, size, each, &part, why, sizeof(why)) != 1)
		abort();
	if (k == 1 && part != whole)
		abort();
	return 0;
}
