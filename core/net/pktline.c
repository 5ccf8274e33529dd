/* git's pkt-lines, read (pktline.h). */
#include <stdlib.h>
#include <string.h>

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
