/* tfgit's own TCP and TLS streams for libgit2's smart HTTP transport: they follow no redirect.
 *
 * libgit2 1.5's GIT_REMOTE_REDIRECT_NONE refuses only a redirect to another host *name*: a 3xx
 * to "/other/path" or to "http://same-host:other-port/..." is followed, with our up-front
 * Authorization header, to a repository no allowlist pattern names. libgit2 opens every HTTP
 * connection through the stream registry (git_socket_stream_new, git_tls_stream_new), so while
 * an http(s) remote is in use tfgit registers streams that connect only to that URL's scheme,
 * host and port, and that refuse any request header block for another path: a redirect then
 * fails before a byte is sent to its target. libgit2 writes each request line and its headers
 * with one write call and bodies separately (chunk sizes in hex, pkt-lines), which is what
 * lets a write be recognised as a request. The TLS stream is OpenSSL's: libgit2's own mbedTLS
 * stream cannot be wrapped. */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <git2.h>
#include <git2/sys/stream.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "httpstream.h"
#include "sockets.h"
#include "../internal.h"

/* The system's CA bundle: the first that exists of Debian's/Ubuntu's, RHEL's/Fedora's,
 * openSUSE's, Alpine's/BSD's (the static binary runs on any of them). */
static const char *const system_ca_bundles[] = {
	"/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt",
	"/etc/ssl/ca-bundle.pem", "/etc/ssl/cert.pem",
};

static SSL_CTX *tls_ctx;
static int system_cas_loaded;

/* The one place the registered streams may go: the repository URL, read as libgit2's
 * git_net_url_parse reads it (host percent-decoded, path as written). */
static struct {
	int active;
	int tls;         /* https */
	char host[256];  /* without IPv6 brackets, as libgit2 passes it to the streams */
	long port;
	char base[2048]; /* the path without trailing slashes: libgit2 appends "/service" to it */
} want;

/* The TLS session of the last verified connection, resumed by the next one to the same host
 * and port (a shorter handshake); forgotten when the trust changes (httpstream_setup), and
 * never kept of a connection whose certificate did not verify. */
static struct {
	SSL_SESSION *sess;
	char host[256];
	char port[16];
} resume;

static void resume_forget(void)
{
	SSL_SESSION_free(resume.sess);
	memset(&resume, 0, sizeof(resume));
}

static char refused[600];
static char location[600]; /* the Location of the last 3xx read: the target a message names */

/* The smart-HTTP requests libgit2 makes of a repository, below its path. */
static const struct {
	const char *method, *suffix;
} services[] = {
	{"GET", "/info/refs?service=git-upload-pack"},
	{"GET", "/info/refs?service=git-receive-pack"},
	{"POST", "/git-upload-pack"},
	{"POST", "/git-receive-pack"},
};

struct stream {
	git_stream parent; /* first: libgit2 sees a git_stream */
	int fd;
	SSL *ssl;         /* https only */
	int handshaken;
	int broken;       /* an I/O error happened: no close_notify */
	int requests;     /* request header blocks written */
	char host[256];
	char port[16];
	unsigned char *der; /* the peer's certificate for libgit2's check, OPENSSL_free'd */
	git_cert_x509 cert;
};

/* Copies at most n bytes of src for a message: printable ASCII only, the rest as '?'. */
static void printable(char *out, size_t outlen, const char *src, size_t n)
{
	size_t i;
	for (i = 0; i < n && src[i] && i + 1 < outlen; i++)
		out[i] = src[i] > 0x20 && src[i] < 0x7f ? src[i] : '?';
	if (outlen)
		out[i < outlen ? i : outlen - 1] = '\0';
}

/* Records the refused target and tells libgit2 why; -1. path may be NULL. */
static int refuse(int tls, const char *host, const char *port, const char *path, size_t pathlen)
{
	char h[256], p[16], rest[300] = "";
	int v6 = strchr(host, ':') != NULL;
	printable(h, sizeof(h), host, strlen(host));
	printable(p, sizeof(p), port, strlen(port));
	if (path)
		printable(rest, sizeof(rest), path, pathlen);
	snprintf(refused, sizeof(refused), "%s://%s%s%s:%s%s", tls ? "https" : "http", v6 ? "[" : "",
		 h, v6 ? "]" : "", p, rest);
	if (!path && location[0]) /* another host or port: the 3xx said where, path included */
		snprintf(refused, sizeof(refused), "%s", location);
	git_error_set(GIT_ERROR_NET, "the repository redirected to %s; tfgit follows no redirect",
		      refused);
	return -1;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Fills want from an http(s) URL. 0, 1 when url is not http(s), -1 when it cannot be read
 * (then nothing may connect: libgit2 could read it another way). */
static int parse_url(const char *url)
{
	const char *auth, *end, *h, *hend, *p;
	size_t n = 0;
	if (strncasecmp(url, "https://", 8) == 0)
		want.tls = 1;
	else if (strncasecmp(url, "http://", 7) != 0)
		return 1;
	auth = strstr(url, "://") + 3;
	end = auth + strcspn(auth, "/?#");
	h = auth;
	for (p = auth; p < end; p++) /* the userinfo is skipped, never kept */
		if (*p == '@')
			h = p + 1;
	if (*h == '[') {
		if (!(hend = memchr(h, ']', (size_t)(end - h))))
			return -1;
		p = hend + 1;
		h++;
	} else {
		for (hend = h; hend < end && *hend != ':'; hend++)
			;
		p = hend;
	}
	for (const char *c = h; c < hend; c++) { /* libgit2 percent-decodes the host */
		int hi = c + 2 < hend ? hexval(c[1]) : -1, lo = c + 2 < hend ? hexval(c[2]) : -1;
		if (*c == '%' && hi >= 0 && lo >= 0) {
			want.host[n] = (char)(hi * 16 + lo);
			c += 2;
		} else {
			want.host[n] = *c;
		}
		if (!want.host[n] || ++n >= sizeof(want.host))
			return -1;
	}
	want.host[n] = '\0';
	if (n == 0)
		return -1;
	want.port = want.tls ? 443 : 80;
	if (p < end) {
		char *e;
		if (*p != ':' || p + 1 == end || p[1] < '0' || p[1] > '9')
			return -1;
		want.port = strtol(p + 1, &e, 10);
		if (e != end || want.port > 65535)
			return -1;
	}
	/* the path ends at the query or fragment; none is "/"; libgit2 strips trailing slashes
	 * before it appends a service */
	n = *end == '/' ? strcspn(end, "?#") : 0;
	while (n > 0 && end[n - 1] == '/')
		n--;
	if (n >= sizeof(want.base))
		return -1;
	memcpy(want.base, end, n);
	want.base[n] = '\0';
	return 0;
}

/* Sets libgit2's error from a failed OpenSSL call on s; -1. */
static int ssl_failure(struct stream *s, int rc, const char *what)
{
	int sys = errno, e = SSL_get_error(s->ssl, rc);
	unsigned long q = ERR_peek_last_error();
	const char *reason = q ? ERR_reason_error_string(q) : NULL;
	char buf[256];
	if (!reason && q) {
		ERR_error_string_n(q, buf, sizeof(buf));
		reason = buf;
	} else if (!reason) {
		reason = e == SSL_ERROR_SYSCALL && sys ? strerror(sys) : "the connection was closed";
	}
	git_error_set(GIT_ERROR_SSL, "%s %s: %s", what, s->host, reason);
	ERR_clear_error();
	s->broken = 1;
	return -1;
}

static int tcp_connect(struct stream *s)
{
	s->fd = sockets_connect(s->host, s->port);
	return s->fd < 0 ? -1 : 0;
}

/* The system bundle is parsed at the first TLS connection, not at set-up: its ~140
 * certificates cost tens of milliseconds (seconds under ASan or valgrind) in every worker, and
 * many workers never speak HTTPS. 0, or -1 with a libgit2 error set. */
static int trust_system_cas(void)
{
	if (system_cas_loaded)
		return 0;
	for (size_t i = 0; i < sizeof(system_ca_bundles) / sizeof(system_ca_bundles[0]); i++) {
		const char *bundle = system_ca_bundles[i];
		if (access(bundle, R_OK) != 0)
			continue;
		if (SSL_CTX_load_verify_locations(tls_ctx, bundle, NULL) != 1) {
			ERR_clear_error();
			git_error_set(GIT_ERROR_SSL, "the system CA bundle %s cannot be loaded", bundle);
			return -1;
		}
		break;
	}
	system_cas_loaded = 1;
	return 0;
}

/* The handshake checks nothing itself (SSL_VERIFY_NONE): its verdict is read afterwards and
 * returned as GIT_ECERTIFICATE, so that libgit2 asks the certificate_check callback with
 * valid = 0, which refuses (or accepts, with TFGIT_SSL_NO_VERIFY) and says why. */
static int tls_connect(struct stream *s)
{
	unsigned char addr[sizeof(struct in6_addr)];
	int ip = inet_pton(AF_INET, s->host, addr) == 1 || inet_pton(AF_INET6, s->host, addr) == 1;
	ERR_clear_error();
	if (!tls_ctx) {
		git_error_set(GIT_ERROR_SSL, "TLS is not set up (httpstream_setup)");
		return -1;
	}
	if (trust_system_cas() < 0)
		return -1;
	if (!(s->ssl = SSL_new(tls_ctx))) {
		git_error_set_oom();
		return -1;
	}
	/* no SNI for an address; the certificate must then name the address */
	if (SSL_set_fd(s->ssl, s->fd) != 1 ||
	    (ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(s->ssl), s->host) != 1
		: SSL_set_tlsext_host_name(s->ssl, s->host) != 1 || SSL_set1_host(s->ssl, s->host) != 1))
		return ssl_failure(s, 0, "cannot set up TLS for");
	if (resume.sess && !strcmp(resume.host, s->host) && !strcmp(resume.port, s->port))
		SSL_set_session(s->ssl, resume.sess); /* a session it cannot resume is ignored */
	int rc = SSL_connect(s->ssl);
	if (rc != 1)
		return ssl_failure(s, rc, "TLS handshake failed with");
	s->handshaken = 1;
	long verdict = SSL_get_verify_result(s->ssl);
	if (!SSL_get0_peer_certificate(s->ssl) || verdict != X509_V_OK) {
		git_error_set(GIT_ERROR_SSL, "the TLS certificate of %s is not valid: %s", s->host,
			      SSL_get0_peer_certificate(s->ssl) ? X509_verify_cert_error_string(verdict)
							       : "there is none");
		return GIT_ECERTIFICATE;
	}
	return 0;
}

static int stream_connect(git_stream *gs)
{
	struct stream *s = (struct stream *)gs;
	if (s->fd >= 0) {
		git_error_set(GIT_ERROR_NET, "the connection to %s is already open", s->host);
		return -1;
	}
	int err = tcp_connect(s);
	if (err == 0 && gs->encrypted)
		err = tls_connect(s);
	return err;
}

/* libgit2 frees nothing it gets here: the certificate lives as long as the stream. */
static int stream_certificate(git_cert **out, git_stream *gs)
{
	struct stream *s = (struct stream *)gs;
	X509 *peer = s->ssl ? SSL_get0_peer_certificate(s->ssl) : NULL;
	*out = NULL;
	if (!peer) {
		git_error_set(GIT_ERROR_SSL, "%s presented no certificate", s->host);
		return -1;
	}
	OPENSSL_free(s->der);
	s->der = NULL;
	int len = i2d_X509(peer, &s->der);
	if (len < 0) {
		ERR_clear_error();
		git_error_set(GIT_ERROR_SSL, "cannot encode the certificate of %s", s->host);
		return -1;
	}
	s->cert.parent.cert_type = GIT_CERT_X509;
	s->cert.data = s->der;
	s->cert.len = (size_t)len;
	*out = &s->cert.parent;
	return 0;
}

/* Notes the Location of a 3xx response (headers arrive in one read) without its userinfo
 * and its service suffix, to name the target if libgit2 follows it to another host or port. */
static void note_location(const char *data, size_t len)
{
	const char *end = data + len;
	if (len < 12 || memcmp(data, "HTTP/1.", 7) != 0 || data[9] != '3')
		return;
	for (const char *p = data; p + 10 < end; p++) {
		if (p[0] != '\n' || strncasecmp(p + 1, "location:", 9) != 0)
			continue;
		const char *v = p + 10, *e, *auth, *at = NULL;
		while (v < end && (*v == ' ' || *v == '\t'))
			v++;
		for (e = v; e < end && *e != '\r' && *e != '\n' && *e != '?'; e++)
			;
		const char *scheme = memmem(v, (size_t)(e - v), "://", 3);
		auth = scheme ? scheme + 3 : v;
		for (const char *c = auth; c < e && *c != '/'; c++)
			if (*c == '@')
				at = c;
		const char *refs = memmem(v, (size_t)(e - v), "/info/refs", 10);
		if (refs)
			e = refs;
		char head[300], tail[300];
		printable(head, sizeof(head), v, (size_t)(auth - v));
		printable(tail, sizeof(tail), at ? at + 1 : auth, (size_t)(e - (at ? at + 1 : auth)));
		snprintf(location, sizeof(location), "%s%s", head, tail);
		return;
	}
}

static ssize_t stream_read(git_stream *gs, void *data, size_t len)
{
	struct stream *s = (struct stream *)gs;
	if (s->fd < 0) {
		git_error_set(GIT_ERROR_NET, "the connection to %s is closed", s->host);
		return -1;
	}
	if (s->ssl) {
		ERR_clear_error();
		int rc = SSL_read(s->ssl, data, len > INT_MAX ? INT_MAX : (int)len);
		if (rc > 0) {
			note_location(data, (size_t)rc);
			return rc;
		}
		/* end of file, with or without close_notify (SSL_OP_IGNORE_UNEXPECTED_EOF): as
		 * for plain HTTP, libgit2's HTTP framing tells a complete response from a cut one */
		if (SSL_get_error(s->ssl, rc) == SSL_ERROR_ZERO_RETURN)
			return 0;
		return ssl_failure(s, rc, "error receiving data from");
	}
	ssize_t n = recv(s->fd, data, len, 0);
	if (n < 0) {
		s->broken = 1;
		git_error_set(GIT_ERROR_NET, "error receiving data from %s: %s", s->host, strerror(errno));
	}
	if (n > 0)
		note_location(data, (size_t)n);
	return n;
}

/* A write that starts a request is one whole header block; it must ask for one of the
 * repository's services. 0 to send it (or body bytes), -1 refused with nothing sent. */
static int check_request(struct stream *s, const char *data, size_t len)
{
	const char *target, *space;
	size_t mlen = len >= 4 && !memcmp(data, "GET ", 4) ? 3 : len >= 5 && !memcmp(data, "POST ", 5) ? 4 : 0;
	if (!mlen) {
		if (s->requests > 0)
			return 0; /* a body: chunk sizes or pkt-lines, never "GET /" or "POST /" */
		git_error_set(GIT_ERROR_NET, "tfgit sends no such request to %s", s->host);
		return -1;
	}
	target = data + mlen + 1;
	space = memchr(target, ' ', len - mlen - 1);
	size_t tlen = space ? (size_t)(space - target) : len - mlen - 1, blen = strlen(want.base);
	if (space && (size_t)(data + len - space) >= 11 && !memcmp(space, " HTTP/1.1\r\n", 11) &&
	    tlen > blen && !memcmp(target, want.base, blen)) {
		for (size_t i = 0; i < sizeof(services) / sizeof(services[0]); i++)
			if (strlen(services[i].method) == mlen && !memcmp(data, services[i].method, mlen) &&
			    strlen(services[i].suffix) == tlen - blen &&
			    !memcmp(target + blen, services[i].suffix, tlen - blen)) {
				s->requests++;
				return 0;
			}
	}
	/* name the repository the redirect led to, not the service asked of it */
	for (size_t i = 0; i < sizeof(services) / sizeof(services[0]); i++) {
		size_t sl = strlen(services[i].suffix);
		if (tlen >= sl && !memcmp(target + tlen - sl, services[i].suffix, sl)) {
			tlen -= sl;
			break;
		}
	}
	return refuse(s->ssl != NULL, s->host, s->port, target, tlen);
}

static ssize_t stream_write(git_stream *gs, const char *data, size_t len, int flags)
{
	struct stream *s = (struct stream *)gs;
	size_t done = 0;
	(void)flags;
	if (s->fd < 0) {
		git_error_set(GIT_ERROR_NET, "the connection to %s is closed", s->host);
		return -1;
	}
	if (check_request(s, data, len) < 0)
		return -1;
	/* all of it, so that the next write starts where a request or a body may start */
	while (done < len) {
		size_t chunk = len - done > INT_MAX ? INT_MAX : len - done;
		if (s->ssl) {
			ERR_clear_error();
			int rc = SSL_write(s->ssl, data + done, (int)chunk);
			if (rc <= 0)
				return ssl_failure(s, rc, "error sending data to");
			done += (size_t)rc;
		} else {
			ssize_t n = send(s->fd, data + done, chunk, MSG_NOSIGNAL);
			if (n < 0) {
				s->broken = 1;
				git_error_set(GIT_ERROR_NET, "error sending data to %s: %s", s->host,
					      strerror(errno));
				return -1;
			}
			done += (size_t)n;
		}
	}
	return (ssize_t)len;
}

static int stream_close(git_stream *gs)
{
	struct stream *s = (struct stream *)gs;
	if (s->ssl && s->handshaken && !s->broken && SSL_get_verify_result(s->ssl) == X509_V_OK) {
		/* its session (TLS 1.3 tickets arrive after the handshake: taken at the end) */
		SSL_SESSION *sess = SSL_get1_session(s->ssl);
		if (sess && SSL_SESSION_is_resumable(sess)) {
			resume_forget();
			resume.sess = sess;
			snprintf(resume.host, sizeof(resume.host), "%s", s->host);
			snprintf(resume.port, sizeof(resume.port), "%s", s->port);
		} else {
			SSL_SESSION_free(sess);
		}
	}
	if (s->ssl) {
		/* close_notify on a healthy connection only: the peer may be gone (tfgit.fcgi
		 * ignores SIGPIPE; OpenSSL writes with write()) */
		if (s->handshaken && !s->broken)
			SSL_shutdown(s->ssl);
		SSL_free(s->ssl);
		s->ssl = NULL;
		ERR_clear_error();
	}
	if (s->fd >= 0) {
		close(s->fd);
		s->fd = -1;
	}
	return 0;
}

static void stream_free(git_stream *gs)
{
	struct stream *s = (struct stream *)gs;
	if (!s)
		return;
	stream_close(gs);
	OPENSSL_free(s->der);
	free(s);
}

/* The registry's constructor: a stream for want's scheme, host and port only. */
static int stream_new(git_stream **out, const char *host, const char *port, int tls)
{
	char *e;
	long p = strtol(port, &e, 10);
	*out = NULL;
	if (!want.active || tls != want.tls || strcasecmp(host, want.host) != 0 || e == port || *e ||
	    p != want.port)
		return refuse(tls, host, port, NULL, 0);
	struct stream *s = calloc(1, sizeof(*s));
	if (!s) {
		git_error_set_oom();
		return -1;
	}
	s->fd = -1;
	snprintf(s->host, sizeof(s->host), "%s", host);
	snprintf(s->port, sizeof(s->port), "%s", port);
	s->parent.version = GIT_STREAM_VERSION;
	s->parent.encrypted = tls;
	s->parent.proxy_support = 0; /* and no wrap: no HTTP CONNECT proxy */
	s->parent.connect = stream_connect;
	s->parent.certificate = stream_certificate;
	s->parent.read = stream_read;
	s->parent.write = stream_write;
	s->parent.close = stream_close;
	s->parent.free = stream_free;
	*out = &s->parent;
	return 0;
}

static int plain_new(git_stream **out, const char *host, const char *port)
{
	return stream_new(out, host, port, 0);
}

static int tls_new(git_stream **out, const char *host, const char *port)
{
	return stream_new(out, host, port, 1);
}

int httpstream_setup(const char *ca_file)
{
	httpstream_teardown(); /* and the session to resume: it was verified under the old trust */
	if (!(tls_ctx = SSL_CTX_new(TLS_client_method())) ||
	    SSL_CTX_set_min_proto_version(tls_ctx, TLS1_2_VERSION) != 1) {
		core_log("the TLS context cannot be made (OpenSSL)");
		goto fail;
	}
	SSL_CTX_set_verify(tls_ctx, SSL_VERIFY_NONE, NULL); /* checked after the handshake */
	SSL_CTX_set_options(tls_ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
	SSL_CTX_set_session_cache_mode(tls_ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
	/* the private CA now, so that a wrong TFGIT_SSL_CA_FILE stops the start; the system's
	 * bundle at the first TLS connection (trust_system_cas) */
	if (ca_file && SSL_CTX_load_verify_locations(tls_ctx, ca_file, NULL) != 1) {
		unsigned long q = ERR_peek_last_error();
		core_log("TFGIT_SSL_CA_FILE %s cannot be loaded: %s", ca_file,
			 q && ERR_reason_error_string(q) ? ERR_reason_error_string(q) : strerror(errno));
		goto fail;
	}
	ERR_clear_error();
	return 0;
fail:
	ERR_clear_error();
	SSL_CTX_free(tls_ctx);
	tls_ctx = NULL;
	return -1;
}

void httpstream_teardown(void)
{
	if (want.active)
		httpstream_end();
	resume_forget();
	SSL_CTX_free(tls_ctx);
	tls_ctx = NULL;
	system_cas_loaded = 0;
}

int httpstream_open(git_stream **out)
{
	char port[16];
	*out = NULL;
	if (!want.active) {
		git_error_set(GIT_ERROR_NET, "no http(s) repository is being spoken to");
		return -1;
	}
	snprintf(port, sizeof(port), "%ld", want.port);
	if (stream_new(out, want.host, port, want.tls) < 0)
		return -1;
	int err = stream_connect(*out);
	if (err < 0 && err != GIT_ECERTIFICATE) {
		stream_free(*out);
		*out = NULL;
	}
	return err;
}

int httpstream_idle(git_stream *gs)
{
	struct stream *s = (struct stream *)gs;
	struct pollfd p = {s->fd, POLLIN, 0};
	if (s->fd < 0 || s->broken || (s->ssl && SSL_pending(s->ssl) > 0))
		return 0;
	/* readable while no request is out: the server closed it (or sent what nobody asked) */
	return poll(&p, 1, 0) == 0;
}

/* The repository's host as a URL writes it ([…] around an IPv6 literal), with ":port" when
 * always is set or the port is not the scheme's. */
static void authority(char *out, size_t outlen, int always)
{
	int v6 = strchr(want.host, ':') != NULL;
	if (!always && want.port == (want.tls ? 443 : 80))
		snprintf(out, outlen, "%s%s%s", v6 ? "[" : "", want.host, v6 ? "]" : "");
	else
		snprintf(out, outlen, "%s%s%s:%ld", v6 ? "[" : "", want.host, v6 ? "]" : "", want.port);
}

int httpstream_origin(char *out, size_t outlen)
{
	char host[300];
	if (!want.active)
		return -1;
	authority(host, sizeof(host), 1);
	int n = snprintf(out, outlen, "%s://%s", want.tls ? "https" : "http", host);
	return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

int httpstream_request_head(char *out, size_t outlen, const char *method, const char *service)
{
	char host[300];
	if (!want.active)
		return -1;
	authority(host, sizeof(host), 0); /* as libgit2 writes it */
	int n = snprintf(out, outlen, "%s %s%s HTTP/1.1\r\nHost: %s\r\n", method, want.base, service, host);
	return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

int httpstream_begin(const char *url)
{
	static git_stream_registration plain = {GIT_STREAM_VERSION, plain_new, NULL};
	static git_stream_registration tls = {GIT_STREAM_VERSION, tls_new, NULL};
	refused[0] = location[0] = '\0';
	memset(&want, 0, sizeof(want));
	int rc = parse_url(url);
	if (rc != 0) {
		/* libgit2's own streams for ssh:// (its SSH transport needs them) and git:// */
		memset(&want, 0, sizeof(want));
		git_stream_register(GIT_STREAM_STANDARD | GIT_STREAM_TLS, NULL);
		if (rc < 0)
			git_error_set(GIT_ERROR_NET, "the repository URL's host or port cannot be read");
		return rc < 0 ? -1 : 0;
	}
	want.active = 1;
	if (git_stream_register(GIT_STREAM_STANDARD, &plain) < 0 ||
	    git_stream_register(GIT_STREAM_TLS, &tls) < 0) {
		httpstream_end();
		return -1;
	}
	return 0;
}

void httpstream_end(void)
{
	memset(&want, 0, sizeof(want));
	git_stream_register(GIT_STREAM_STANDARD | GIT_STREAM_TLS, NULL);
}

const char *httpstream_refused(void)
{
	return refused[0] ? refused : NULL;
}
