/* Fuzz target: the web view's readers of stored states (statediff.c over lockinfo.c's spans),
 * which take any bytes a repository holds, JSON or not. The input is two states split at its
 * first NUL (or at its middle). Beyond not crashing or reading outside the input, it checks
 * that a state compared with itself has no change, and that every listed change is counted. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/tfgit.h"

static void summary(const char *s, size_t n)
{
	tfgit_resource *res = NULL;
	tfgit_output *outs = NULL;
	size_t nres, total, nouts;
	if (tfgit_state_summary(s, n, &res, &nres, &total, &outs, &nouts) == 0 && nres > total)
		abort();
	free(res);
	free(outs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *nul = memchr(data, '\0', size);
	size_t alen = nul ? (size_t)(nul - (const char *)data) : size / 2;
	/* copies of exactly their length: a read past either end is the sanitizer's to find */
	char *a = malloc(alen ? alen : 1), *b = malloc(size - alen ? size - alen : 1);
	size_t blen = nul ? size - alen - 1 : size - alen;
	memcpy(a, data, alen);
	memcpy(b, (const char *)data + size - blen, blen);
	tfgit_diff_entry *l = NULL;
	size_t n = 0, total = 0;
	if (tfgit_state_diff(a, alen, b, blen, 5, &l, &n, &total) == 0 && (n > 5 || n > total))
		abort();
	tfgit_diff_free(l, n);
	if (tfgit_state_diff(a, alen, a, alen, (size_t)-1, &l, &n, &total) == 0 && total != 0)
		abort(); /* a state compared with itself */
	tfgit_diff_free(l, n);
	summary(a, alen);
	summary(b, blen);
	free(a);
	free(b);
	return 0;
}
