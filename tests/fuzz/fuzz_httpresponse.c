/* Fuzz target: an HTTP/1.1 response as a git server (or what stands in front of it) sends it to
 * tfgit's kept connection. Beyond not crashing: the body read in one call equals the body read
 * byte by byte (a stream may deliver any split), the same event ends both, the bytes consumed
 * never exceed what was given, and a response is never both reusable and ended by the close. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/net/httpresponse.h"

/* Reads all of data (then the end of the connection) in pieces of at most step bytes: the body
 * into out (its first cap bytes), its length into *n; the last event. */
static hr_event read_all(http_response *h, const char *data, size_t size, size_t step, char *out,
			 size_t cap, size_t *n)
{
	size_t off = 0;
	hr_event e = HR_MORE;
	*n = 0;
	hr_init(h);
	for (;;) {
		size_t give = size - off < step ? size - off : step, used;
		const char *body;
		size_t blen;
		e = hr_feed(h, data + off, give, &used, &body, &blen);
		if (used > give || (e == HR_BODY && (!body || body < data + off || body + blen > data + off + give)))
			abort();
		off += used;
		if (e == HR_BODY) {
			for (size_t i = 0; i < blen; i++, (*n)++)
				if (*n < cap)
					out[*n] = body[i];
			continue;
		}
		if (e == HR_DONE || e == HR_ERROR)
			return e;
		if (give == 0)
			abort(); /* the end of the connection always ends the response */
		if (used != give)
			abort(); /* HR_MORE consumes everything given */
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char a[8192], b[8192];
	http_response h1, h2;
	size_t n1, n2;
	hr_event e1 = read_all(&h1, (const char *)data, size, size ? size : 1, a, sizeof(a), &n1);
	hr_event e2 = read_all(&h2, (const char *)data, size, 1, b, sizeof(b), &n2);
	if (e1 != e2 || n1 != n2 || memcmp(a, b, n1 < sizeof(a) ? n1 : sizeof(a)) != 0)
		abort();
	if (e1 == HR_DONE && (h1.status != h2.status || h1.keep != h2.keep))
		abort();
	if (e1 == HR_ERROR && h1.keep)
		abort();
	return 0;
}
