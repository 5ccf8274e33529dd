/* git's pkt-lines, read (pktline.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deadline.h"
#include "pktline.h"

int pktline_next(const char *buf, size_t len, size_t *pos, const char **data, size_t *n)
{
	char digits[5];
	if (len - *pos < 4)
		return PKT_MORE;
	memcpy(digits, buf + *pos, 4);
	digits[4] = '\0';
	if (strspn(digits, "0123456789abcdefABCDEF") != 4)
		return PKT_BAD;
	size_t v = strtoul(digits, NULL, 16);
	if (v == 0) {
		*pos += 4;
		return PKT_FLUSH;
	}
	if (v < 4 || v > PKT_MAX)
		return PKT_BAD;
	if (len - *pos < v)
		return PKT_MORE;
	*data = buf + *pos + 4;
	*n = v - 4;
	*pos += v;
	return PKT_DATA;
}

int pktline_to_flush(const char *buf, size_t len, size_t *pos)
{
	const char *data;
	size_t n;
	int k;
	while ((k = pktline_next(buf, len, pos, &data, &n)) == PKT_DATA)
		;
	return k;
}

int pktline_read(git_smart_subtransport_stream *st, char **buf, size_t *len, size_t max, const char *what,
		 char *why, size_t whylen)
{
	size_t cap = 4096, scan = 0; /* the whole pkt-lines so far */
	*len = 0;
	if (!(*buf = malloc(cap))) {
		git_error_set_oom();
		return -1;
	}
	for (;;) {
		if (*len == cap) {
			char *grown = cap < max ? realloc(*buf, cap * 2) : NULL;
			if (!grown) {
				snprintf(why, whylen, "%s is over %zu bytes", what, max);
				return -2;
			}
			*buf = grown;
			cap *= 2;
		}
		size_t got = 0;
		if (deadline_passed()) {
			git_error_set(GIT_ERROR_NET, "the deadline passed while reading %s", what);
			return -1;
		}
		if (st->read(st, *buf + *len, cap - *len, &got) < 0)
			return -1;
		if (got == 0)
			return 0;
		*len += got;
		if (pktline_to_flush(*buf, *len, &scan) != PKT_MORE)
			return 0;
	}
}
