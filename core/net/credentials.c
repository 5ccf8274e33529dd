/* Credentials for remotes (HTTP user and password or token, SSH agent or key) and the check
 * of what a remote presents (SSH host keys against known_hosts, TLS verification). */
#include <errno.h>
#include <stdarg.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libssh2.h>
#include <openssl/evp.h>

#include "credentials.h"
#include "deadline.h"
#include "../internal.h"

#define SECRET_MAX 4096

/* The effective user's home, not $HOME: a pool started as root keeps root's environment. */
static const char *home_dir(void)
{
	struct passwd *pw = getpwuid(geteuid());
	return pw && pw->pw_dir ? pw->pw_dir : "/";
}

int credentials_read_secret(char *out, size_t outlen, const char *path)
{
	FILE *f = fopen(path, "r");
	out[0] = '\0';
	if (!f)
		return -1;
	if (!fgets(out, (int)outlen, f))
		out[0] = '\0';
	fclose(f);
	out[strcspn(out, "\r\n")] = '\0';
	return out[0] ? 0 : -1;
}

/* The host part of an http(s) URL, without user, port or path. */
static void url_host(char *out, size_t outlen, const char *url)
{
	const char *h, *at = url_userinfo_at(url, &h, "/");
	if (at)
		h = at + 1;
	else if (!strstr(url, "://")) { /* scp-like [user@]host:path */
		const char *a = strchr(url, '@'), *colon = strchr(url, ':');
		if (a && (!colon || a < colon))
			h = a + 1;
	}
	size_t n = strcspn(h, ":/");
	if (*h == '[')
		n = strcspn(h, "]") + 1;
	snprintf(out, outlen, "%.*s", (int)n, h);
}

/* The port of an ssh:// URL, 22 otherwise (scp-like URLs have none). */
static int url_port(const char *url)
{
	const char *h = strstr(url, "://");
	if (!h)
		return 22;
	h += 3;
	const char *end = h + strcspn(h, "/");
	const char *colon = NULL;
	for (const char *c = h; c < end; c++)
		if (*c == ':')
			colon = c;
		else if (*c == '@' || *c == ']')
			colon = NULL;
	return colon ? atoi(colon + 1) : 22;
}

int credentials_netrc(char *login, size_t loginlen, char *password, size_t passlen,
		      const char *path, const char *host)
{
	char tok[SECRET_MAX], *save = NULL;
	int in_machine = 0, found = 0;
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	login[0] = password[0] = '\0';
	/* tokens: machine NAME | default, then login NAME, password SECRET, in any order */
	while (!found && fgets(tok, sizeof(tok), f)) {
		for (char *w = strtok_r(tok, " \t\r\n", &save); w; w = strtok_r(NULL, " \t\r\n", &save)) {
			char *next;
			if (!strcmp(w, "machine") || !strcmp(w, "default")) {
				if (in_machine && login[0] && password[0]) {
					found = 1;
					break;
				}
				in_machine = !strcmp(w, "default");
				if (!in_machine && (next = strtok_r(NULL, " \t\r\n", &save)))
					in_machine = !strcmp(next, host);
				login[0] = password[0] = '\0';
			} else if (in_machine && !strcmp(w, "login") && (next = strtok_r(NULL, " \t\r\n", &save))) {
				snprintf(login, loginlen, "%s", next);
			} else if (in_machine && !strcmp(w, "password") && (next = strtok_r(NULL, " \t\r\n", &save))) {
				snprintf(password, passlen, "%s", next);
			}
		}
	}
	fclose(f);
	if (!found && in_machine && login[0] && password[0])
		found = 1;
	if (!found) {
		login[0] = password[0] = '\0';
		return -1;
	}
	return 0;
}

/* Records why the remote was refused (for the client) and tells libgit2 the same. */
__attribute__((format(printf, 2, 3))) static void refuse(remote_auth *a, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(a->refused, sizeof(a->refused), fmt, ap);
	va_end(ap);
	git_error_set_str(GIT_ERROR_NET, a->refused);
}

/* HTTP: the netrc entry for the host, else GIT_USERNAME with a password or token.
 * 0 with user and secret filled, -1 when there are none. */
static int http_lookup(char *user, size_t userlen, char *secret, size_t secretlen,
		       const tfgit_remote_opts *o, const char *host, const char *username_from_url)
{
	char netrc[4096];
	snprintf(netrc, sizeof(netrc), "%s", o->netrc ? o->netrc : "");
	if (!o->netrc)
		snprintf(netrc, sizeof(netrc), "%s/.netrc", home_dir());
	if (credentials_netrc(user, userlen, secret, secretlen, netrc, host) == 0) {
		tfgit_secret_note(secret); /* never in a log line or message */
		return 0;
	}
	secret[0] = '\0';
	if (o->password)
		snprintf(secret, secretlen, "%s", o->password);
	else if (o->password_file)
		credentials_read_secret(secret, secretlen, o->password_file);
	else if (o->token)
		snprintf(secret, secretlen, "%s", o->token);
	else if (o->token_file)
		credentials_read_secret(secret, secretlen, o->token_file);
	/* a token alone: forges accept any user name with it */
	const char *name = o->username ? o->username : username_from_url;
	snprintf(user, userlen, "%s", name && *name ? name : "x-access-token");
	tfgit_secret_note(secret); /* a file's value may have changed since the last note */
	return secret[0] ? 0 : -1;
}

static int http_credentials(git_credential **out, remote_auth *a, const char *url,
			    const char *username_from_url)
{
	char host[256], user[512] = "", secret[SECRET_MAX] = "";
	url_host(host, sizeof(host), url);
	/* a 401 to credentials sent up front: sending them again (libgit2 would add a second
	 * Authorization header) cannot help */
	if (a->preemptive || a->userpass_tries++ > 0) {
		refuse(a, "authentication to %s failed: the credentials were refused", host);
		return GIT_EAUTH;
	}
	if (http_lookup(user, sizeof(user), secret, sizeof(secret), a->opts, host, username_from_url) < 0) {
		refuse(a, "authentication to %s failed: no credentials (set GIT_USERNAME with "
			  "GIT_PASSWORD, GIT_PASSWORD_FILE, GITHUB_TOKEN or GITHUB_TOKEN_FILE, or a netrc entry)",
		       host);
		return GIT_EAUTH;
	}
	int err = git_credential_userpass_plaintext_new(out, user, secret);
	explicit_bzero(secret, sizeof(secret));
	return err;
}

int credentials_http_header(char *out, size_t outlen, const tfgit_remote_opts *o, const char *url)
{
	char host[256], user[512] = "", secret[SECRET_MAX] = "", plain[sizeof(user) + SECRET_MAX + 2];
	char url_user[256] = "";
	out[0] = '\0';
	if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
		return -1;
	const char *auth, *at = url_userinfo_at(url, &auth, "/");
	if (at) {
		const char *colon = memchr(auth, ':', (size_t)(at - auth));
		if (colon)
			return -1; /* the URL carries its own password: libgit2 sends it */
		snprintf(url_user, sizeof(url_user), "%.*s", (int)(at - auth), auth);
	}
	url_host(host, sizeof(host), url);
	if (http_lookup(user, sizeof(user), secret, sizeof(secret), o, host, url_user) < 0)
		return -1;
	int n = snprintf(plain, sizeof(plain), "%s:%s", user, secret);
	size_t need = 4 * (((size_t)n + 2) / 3) + sizeof("Authorization: Basic ");
	if (n < 0 || need > outlen) {
		explicit_bzero(secret, sizeof(secret));
		explicit_bzero(plain, sizeof(plain));
		return -1;
	}
	int len = snprintf(out, outlen, "Authorization: Basic ");
	EVP_EncodeBlock((unsigned char *)out + len, (unsigned char *)plain, n);
	explicit_bzero(secret, sizeof(secret));
	explicit_bzero(plain, sizeof(plain));
	return 0;
}

/* SSH: the agent first (SSH_AUTH_SOCK), then the key file; each offered once. */
static int ssh_credentials(git_credential **out, remote_auth *a, const char *url, const char *user)
{
	const tfgit_remote_opts *o = a->opts;
	char path[4096], host[256];
	int step = a->ssh_tries++;
	if (step == 0 && getenv("SSH_AUTH_SOCK"))
		return git_credential_ssh_key_from_agent(out, user);
	if (step <= 1) {
		if (o->ssh_key) {
			snprintf(path, sizeof(path), "%s", o->ssh_key);
		} else {
			snprintf(path, sizeof(path), "%s/.ssh/id_ed25519", home_dir());
			if (access(path, R_OK) < 0)
				snprintf(path, sizeof(path), "%s/.ssh/id_rsa", home_dir());
		}
		if (access(path, R_OK) == 0) {
			a->ssh_tries = 2;
			return git_credential_ssh_key_new(out, user, NULL, path, NULL);
		}
	}
	url_host(host, sizeof(host), url);
	refuse(a, "authentication to %s failed: the SSH agent's keys and the key file were refused "
		  "(or there are none: set SSH_AUTH_SOCK or SSH_PRIVATE_KEY)", host);
	return GIT_EAUTH;
}

int credentials_acquire(git_credential **out, const char *url, const char *username_from_url,
			unsigned int allowed_types, void *payload)
{
	remote_auth *a = payload;
	if (deadline_passed())
		return -1;
	if (allowed_types & GIT_CREDENTIAL_USERNAME)
		return git_credential_username_new(out, username_from_url ? username_from_url : "git");
	if (allowed_types & GIT_CREDENTIAL_SSH_KEY)
		return ssh_credentials(out, a, url, username_from_url ? username_from_url : "git");
	if (allowed_types & GIT_CREDENTIAL_USERPASS_PLAINTEXT)
		return http_credentials(out, a, url, username_from_url);
	refuse(a, "authentication to %s failed: the server asks for a method tfgit does not offer", url);
	return GIT_EAUTH;
}

static int knownhost_type(git_cert_ssh_raw_type_t t)
{
	switch (t) {
	case GIT_CERT_SSH_RAW_TYPE_RSA: return LIBSSH2_KNOWNHOST_KEY_SSHRSA;
	case GIT_CERT_SSH_RAW_TYPE_DSS: return LIBSSH2_KNOWNHOST_KEY_SSHDSS;
	case GIT_CERT_SSH_RAW_TYPE_KEY_ECDSA_256: return LIBSSH2_KNOWNHOST_KEY_ECDSA_256;
	case GIT_CERT_SSH_RAW_TYPE_KEY_ECDSA_384: return LIBSSH2_KNOWNHOST_KEY_ECDSA_384;
	case GIT_CERT_SSH_RAW_TYPE_KEY_ECDSA_521: return LIBSSH2_KNOWNHOST_KEY_ECDSA_521;
	case GIT_CERT_SSH_RAW_TYPE_KEY_ED25519: return LIBSSH2_KNOWNHOST_KEY_ED25519;
	default: return 0;
	}
}

static void known_hosts_path(char *out, size_t outlen, const tfgit_remote_opts *o)
{
	if (o->known_hosts)
		snprintf(out, outlen, "%s", o->known_hosts);
	else
		snprintf(out, outlen, "%s/.ssh/known_hosts", home_dir());
}

const char *credentials_known_key_method(const remote_auth *a, const char *host, int port)
{
	char path[4096];
	const char *method = NULL;
	if (a->opts->host_key_check == HOSTKEY_OFF)
		return NULL;
	known_hosts_path(path, sizeof(path), a->opts);
	LIBSSH2_SESSION *session = access(path, R_OK) == 0 ? libssh2_session_init() : NULL;
	LIBSSH2_KNOWNHOSTS *kh = session ? libssh2_knownhost_init(session) : NULL;
	struct libssh2_knownhost *found = NULL;
	/* a key that matches nothing: a host that is known is a mismatch, and names its type */
	if (kh && libssh2_knownhost_readfile(kh, path, LIBSSH2_KNOWNHOST_FILE_OPENSSH) >= 0 &&
	    libssh2_knownhost_checkp(kh, host, port, "", 1, LIBSSH2_KNOWNHOST_TYPE_PLAIN |
				     LIBSSH2_KNOWNHOST_KEYENC_RAW, &found) == LIBSSH2_KNOWNHOST_CHECK_MISMATCH) {
		switch (found->typemask & LIBSSH2_KNOWNHOST_KEY_MASK) {
		case LIBSSH2_KNOWNHOST_KEY_SSHRSA: method = "ssh-rsa"; break;
		case LIBSSH2_KNOWNHOST_KEY_SSHDSS: method = "ssh-dss"; break;
		case LIBSSH2_KNOWNHOST_KEY_ECDSA_256: method = "ecdsa-sha2-nistp256"; break;
		case LIBSSH2_KNOWNHOST_KEY_ECDSA_384: method = "ecdsa-sha2-nistp384"; break;
		case LIBSSH2_KNOWNHOST_KEY_ECDSA_521: method = "ecdsa-sha2-nistp521"; break;
		case LIBSSH2_KNOWNHOST_KEY_ED25519: method = "ssh-ed25519"; break;
		default: break;
		}
	}
	if (kh)
		libssh2_knownhost_free(kh);
	if (session)
		libssh2_session_free(session);
	return method;
}

/* Checks an SSH host key against known_hosts with libssh2's knownhost API; with accept-new,
 * records the first key of an unknown host. 0 to go on, GIT_ECERTIFICATE to refuse. */
static int check_host_key(remote_auth *a, const git_cert_hostkey *cert, const char *host)
{
	const tfgit_remote_opts *o = a->opts;
	char path[4096], name[300];
	int port = url_port(a->url), rc = GIT_ECERTIFICATE;
	int keytype = knownhost_type(cert->raw_type);
	if (!(cert->type & GIT_CERT_SSH_RAW) || !keytype) {
		refuse(a, "the SSH host key of %s is of a type tfgit cannot check", host);
		return GIT_ECERTIFICATE;
	}
	known_hosts_path(path, sizeof(path), o);
	LIBSSH2_SESSION *session = libssh2_session_init();
	LIBSSH2_KNOWNHOSTS *kh = session ? libssh2_knownhost_init(session) : NULL;
	if (!kh) {
		refuse(a, "cannot check the SSH host key of %s (libssh2)", host);
		goto done;
	}
	if (access(path, F_OK) == 0 &&
	    libssh2_knownhost_readfile(kh, path, LIBSSH2_KNOWNHOST_FILE_OPENSSH) < 0) {
		refuse(a, "cannot read the known_hosts file %s", path);
		goto done;
	}
	int typemask = LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW | keytype;
	struct libssh2_knownhost *found = NULL;
	switch (libssh2_knownhost_checkp(kh, host, port, cert->hostkey, cert->hostkey_len, typemask,
					 &found)) {
	case LIBSSH2_KNOWNHOST_CHECK_MATCH:
		rc = 0;
		break;
	case LIBSSH2_KNOWNHOST_CHECK_MISMATCH:
		refuse(a, "the SSH host key of %s does not match known_hosts: refused (has the host "
			  "changed, or is someone in between?)", host);
		break;
	case LIBSSH2_KNOWNHOST_CHECK_NOTFOUND:
		if (o->host_key_check != HOSTKEY_ACCEPT_NEW) {
			refuse(a, "the SSH host %s is not in known_hosts (TFGIT_SSH_KNOWN_HOSTS)", host);
			break;
		}
		if (port == 22)
			snprintf(name, sizeof(name), "%s", host);
		else
			snprintf(name, sizeof(name), "[%s]:%d", host, port);
		if (libssh2_knownhost_addc(kh, name, NULL, cert->hostkey, cert->hostkey_len, NULL, 0,
					   typemask, NULL) < 0 ||
		    libssh2_knownhost_writefile(kh, path, LIBSSH2_KNOWNHOST_FILE_OPENSSH) < 0) {
			refuse(a, "cannot record the SSH host key in %s", path);
			break;
		}
		core_log("accept-new: recorded the SSH host key of %s in %s", name, path);
		rc = 0;
		break;
	default:
		refuse(a, "cannot check the SSH host key of %s", host);
	}
done:
	if (kh)
		libssh2_knownhost_free(kh);
	if (session)
		libssh2_session_free(session);
	return rc;
}

int credentials_check_host(git_cert *cert, int valid, const char *host, void *payload)
{
	remote_auth *a = payload;
	if (deadline_passed())
		return -1;
	if (cert->cert_type == GIT_CERT_HOSTKEY_LIBSSH2) {
		if (a->opts->host_key_check == HOSTKEY_OFF)
			return 0;
		return check_host_key(a, (const git_cert_hostkey *)cert, host);
	}
	if (a->opts->tls_no_verify)
		return 0;
	if (!valid)
		refuse(a, "the TLS certificate of %s is not trusted (TFGIT_SSL_CA_FILE for a private CA)", host);
	return GIT_PASSTHROUGH;
}
