/* Cross-site request forgery: which requests that change something a browser could have sent
 * from another site. Parsed before it is matched: each header is read as its grammar says. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "crosssite.h"

int crosssite_is_json(const char *ct)
{
	static const char json[] = "application/json";
	if (!ct)
		return 0;
	ct += strspn(ct, " \t");
	if (strncasecmp(ct, json, sizeof(json) - 1) != 0)
		return 0;
	ct += sizeof(json) - 1;
	ct += strspn(ct, " \t");
	return *ct == '\0' || *ct == ';';
}

/* Splits "host[:port]" (a host may be "[v6]") into its host (length *hostlen) and port (NULL
 * when none); -1 when the port is not digits. */
static int split_host(const char *hp, size_t *hostlen, const char **port)
{
	const char *colon = hp[0] == '[' ? strchr(hp, ']') : hp;
	if (!colon)
		return -1;
	colon = strchr(colon, ':');
	*hostlen = colon ? (size_t)(colon - hp) : strlen(hp);
	*port = colon ? colon + 1 : NULL;
	return colon && (!colon[1] || strspn(colon + 1, "0123456789") != strlen(colon + 1)) ? -1 : 0;
}

/* 1 when origin is this server's: the same scheme, host (without regard to case) and port
 * (an absent one is the scheme's own: 80, 443). */
static int own_origin(const char *origin, const struct crosssite_headers *h)
{
	const char *scheme = h->scheme ? h->scheme : "http", *dflt = strcmp(scheme, "https") ? "80" : "443";
	const char *oport, *sport;
	size_t s = strlen(scheme), olen, slen;
	if (!h->host || !*h->host || strncasecmp(origin, scheme, s) != 0 || strncmp(origin + s, "://", 3) != 0)
		return 0;
	origin += s + 3;
	if (split_host(origin, &olen, &oport) < 0 || split_host(h->host, &slen, &sport) < 0)
		return 0;
	if (olen != slen || strncasecmp(origin, h->host, olen) != 0)
		return 0;
	if (!sport)
		sport = h->port && *h->port ? h->port : dflt;
	return strcmp(oport ? oport : dflt, sport) == 0;
}

int crosssite_check(const struct crosssite_headers *h, char *why, size_t whylen)
{
	const char *site = h->sec_fetch_site;
	if (site && strcmp(site, "same-origin") != 0 && strcmp(site, "none") != 0) {
		snprintf(why, whylen, "refused: a browser sent this from another site (Sec-Fetch-Site: %.40s); "
				      "requests that change a state or a lock are taken only from Terraform, "
				      "OpenTofu or a script", site);
		return 403;
	}
	if (h->origin && !own_origin(h->origin, h)) {
		snprintf(why, whylen, "refused: a browser sent this from another origin (Origin is not this "
				      "server's); requests that change a state or a lock are taken only from "
				      "Terraform, OpenTofu or a script");
		return 403;
	}
	if (h->content_type && !crosssite_is_json(h->content_type)) {
		snprintf(why, whylen, "the body must be sent as Content-Type: application/json");
		return 415;
	}
	return 0;
}
