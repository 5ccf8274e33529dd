/* Credentials for remotes (HTTP user and password or token, SSH agent or key) and the check
 * of what a remote presents (SSH host keys against known_hosts, TLS verification). */
#ifndef TFGIT_CREDENTIALS_H
#define TFGIT_CREDENTIALS_H

#include <git2.h>

#include "../tfgit.h"

/* Per-connection state of the callbacks; zero it, then set opts and url. */
typedef struct {
	const tfgit_remote_opts *opts;
	const char *url;
	int userpass_tries; /* HTTP: credentials handed out so far */
	int ssh_tries;      /* SSH: agent, then key file */
	int preemptive;     /* HTTP: the credentials went with the first request already */
	char refused[512];  /* why a remote or its credentials were refused, for the client */
} remote_auth;

/* libgit2's credentials callback; payload is a remote_auth. Gives each credential once and
 * then fails, so a refused password never loops. */
int credentials_acquire(git_credential **out, const char *url, const char *username_from_url,
			unsigned int allowed_types, void *payload);

/* libgit2's certificate_check callback; payload is a remote_auth. */
int credentials_check_host(git_cert *cert, int valid, const char *host, void *payload);

/* The SSH host key type known_hosts holds for host and port, as a libssh2 method name
 * ("ssh-ed25519", …) for the key exchange to ask for first, as libgit2 does; NULL when none is
 * known or host keys are not checked. */
const char *credentials_known_key_method(const remote_auth *a, const char *host, int port);

/* The "Authorization: Basic …" header for an http(s) URL whose credentials are known, so the
 * first request carries them (no 401 round trip). -1 when there are none, or the URL holds a
 * password (libgit2 uses that). out must be wiped by the caller. */
int credentials_http_header(char *out, size_t outlen, const tfgit_remote_opts *o, const char *url);

/* Reads the first line of a file (a password or token) into out; 0 or -1. */
int credentials_read_secret(char *out, size_t outlen, const char *path);

/* Finds login and password for host in a netrc file; 0, or -1 when there is no entry. */
int credentials_netrc(char *login, size_t loginlen, char *password, size_t passlen,
		      const char *path, const char *host);

#endif
