/* One request: its parameters copied out of the server's environment, its body, its outcome. */
#ifndef TFGIT_REQUEST_H
#define TFGIT_REQUEST_H

#include <time.h>

#include "../core/tfgit.h"
#include "query.h"

/* Where the body comes from and the response goes: a FastCGI connection (main.c) or memory
 * (the fuzzer). read returns the bytes read, 0 at the end of the body, -1 on an error. */
struct request_io {
	int (*read)(void *ctx, char *buf, int n);
	void (*write)(void *ctx, const char *buf, int n);
	void *ctx;
};

/* The addresses under the program's location: the state's (…/tfgit), GitLab's lock address
 * (…/tfgit/lock), the counters (…/tfgit/metrics), the health check (…/tfgit/health), the web
 * view's pages (…/tfgit/ui/, ui/state, ui/version, ui/style.css; …/tfgit/ui redirects); any
 * other path below it is unknown (404). */
enum address {
	STATE_ADDRESS, LOCK_ADDRESS, METRICS_ADDRESS, HEALTH_ADDRESS,
	UI_REPOSITORY_ADDRESS, UI_STATE_ADDRESS, UI_VERSION_ADDRESS, UI_STYLE_ADDRESS, UI_BARE_ADDRESS,
	UNKNOWN_ADDRESS
};

/* How this process serves, for /health (main.c fills it in). */
struct server_info {
	const char *model; /* "pool", "fastcgi" (one responder, e.g. mod_fcgid) or "cgi" */
	int workers;       /* a pool's size; 1 otherwise */
	time_t started;
};
extern struct server_info server_info;

struct request {
	struct request_io io;
	char *method;
	char *query_string;
	char *content_md5;    /* Content-MD5 header, NULL when absent */
	char *remote_user;    /* REMOTE_USER: who the web server authenticated; NULL when none */
	char *remote_addr;    /* REMOTE_ADDR */
	char *content_type;   /* CONTENT_TYPE, NULL when absent */
	char *origin;         /* Origin header, NULL when absent */
	char *sec_fetch_site; /* Sec-Fetch-Site header, NULL when absent */
	char *host;           /* Host header, NULL when absent */
	char *server_port;    /* SERVER_PORT, NULL when absent */
	const char *scheme;   /* "https" or "http": how the client reached the web server */
	const char *repeated; /* a header the cross-site check reads that came more than once; NULL */
	long long content_length; /* -1 when absent (a chunked body) */
	enum address address;
	char id[17];          /* random, 16 hex digits: X-Request-Id and the log line */
	int locking;          /* a LOCK request (of either address): its 409 is a lock conflict */
	int held_by_other;    /* answered ELOCKED: another ID holds the lock */
	int may_force_unlock; /* may remove any lock: only then is a holder's lock ID shown */
	struct query q;
	char resolved_url[4096]; /* the repository as used: a local path resolved */
	char *body;
	size_t body_len;
	tfgit_target target;
	tfgit_result result;
	int status;           /* the status sent, for the log */
	struct timespec start;
};

/* Copies the request's parameters from envp ("NAME=value" strings, NULL-terminated, as
 * FastCGI and CGI hand them over); -1 when out of memory. */
int request_init(struct request *req, char **envp, const struct request_io *io);

/* Reads the body until the input stream ends. 0; 1 when it is larger than max (413);
 * -1 on a read error. */
int request_read_body(struct request *req, size_t max);

/* Releases everything the request owns; safe to call twice. */
void request_free(struct request *req);

#endif
