/* Fuzz target: the cross-site check of a request's headers (fcgi/crosssite.c). Input: five
 * lines, Sec-Fetch-Site, Origin, Host, SERVER_PORT and Content-Type, each absent when it is
 * "-". Beyond not crashing: a request let through names no other site (Sec-Fetch-Site), has an
 * Origin whose host is the Host's, and a content type that is JSON. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../../fcgi/crosssite.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in = malloc(size + 1), *field[5] = {0}, why[300];
	if (!in)
		return 0;
	memcpy(in, data, size);
	in[size] = '\0';
	char *p = in;
	for (int i = 0; i < 5 && p; i++) {
		field[i] = p;
		p = strchr(p, '\n');
		if (p)
			*p++ = '\0';
		if (!strcmp(field[i], "-"))
			field[i] = NULL;
	}
	struct crosssite_headers h = {field[0], field[1], field[2], size & 1 ? "https" : "http", field[3], field[4]};
	int status = crosssite_check(&h, why, sizeof(why));
	if (status != 0 && status != 403 && status != 415)
		abort();
	if (status == 0) {
		if (h.sec_fetch_site && strcmp(h.sec_fetch_site, "same-origin") && strcmp(h.sec_fetch_site, "none"))
			abort(); /* another site's request let through */
		if (h.content_type && !crosssite_is_json(h.content_type))
			abort();
		if (h.origin) { /* the Origin's host is the Host's host, whatever the ports */
			const char *o = strstr(h.origin, "://");
			size_t hl = h.host ? strcspn(h.host[0] == '[' ? h.host + 1 : h.host, h.host[0] == '[' ? "]" : ":") : 0;
			const char *hh = h.host && h.host[0] == '[' ? h.host + 1 : h.host;
			if (!o || !hh || strncasecmp(o + 3 + (o[3] == '['), hh, hl) != 0)
				abort();
		}
	}
	free(in);
	return 0;
}
