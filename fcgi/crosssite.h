/* Cross-site request forgery: a request that changes something (POST, PUT, DELETE, LOCK,
 * UNLOCK) is refused when a browser could have sent it from another site. Terraform and
 * OpenTofu send no Origin and no Sec-Fetch-* header, and Content-Type: application/json with
 * every body; a browser sends a cross-site POST without asking first only with Origin,
 * Sec-Fetch-Site: cross-site (or same-site) and a text/plain, form or multipart body. */
#ifndef TFGIT_CROSSSITE_H
#define TFGIT_CROSSSITE_H

#include <stddef.h>

/* What the check reads of a request (each NULL when the header is absent). */
struct crosssite_headers {
	const char *sec_fetch_site; /* HTTP_SEC_FETCH_SITE */
	const char *origin;         /* HTTP_ORIGIN */
	const char *host;           /* HTTP_HOST: with the scheme and port, the server's own origin */
	const char *scheme;         /* "https" or "http", as the web server says (HTTPS, REQUEST_SCHEME) */
	const char *port;           /* SERVER_PORT: the port when HTTP_HOST has none (Debian's nginx
				     * passes HTTP_HOST as $host, without it) */
	const char *content_type;   /* CONTENT_TYPE */
};

/* 1 when the media type of a Content-Type value is application/json (any case, parameters
 * such as charset allowed); 0 otherwise, also for NULL. */
int crosssite_is_json(const char *content_type);

/* Before the body is read: 0 when the request may go on; otherwise the status to answer (403:
 * sent from another site; 415: a content type other than JSON) with the reason in why. A body
 * that arrives without any Content-Type is the caller's to refuse (crosssite_is_json). */
int crosssite_check(const struct crosssite_headers *h, char *why, size_t whylen);

#endif
