/* SSH sessions kept between operations, a channel per git command (sshkeep.h).
 *
 * Bounds: at most KEEP_SESSIONS sessions per process, each idle at most KEEP_IDLE_MS, open at
 * most KEEP_LIFE_MS (a key revoked on the server stops working within that) and carrying at
 * most KEEP_USES commands. A session is kept for what it was opened with: user, host and port,
 * the identity it authenticated with (the agent's socket, the key file named) and the host key
 * rules (known_hosts and StrictHostKeyChecking); one that authenticated with a password is never
 * kept. Before a kept session carries a command:
 *  - its host key is checked against known_hosts again, so a key changed or removed there
 *    counts from the next request, as when every operation connected anew;
 *  - the server must not have closed it (a peek at the socket);
 *  - the channels of earlier commands are reaped.
 * A channel that cannot be opened on a kept session within REUSE_WAIT_MS is opened on a new
 * session: no command ran yet.
 *
 * A command's channel ends without waiting for the server's close (a round trip): the close is
 * sent and the channel freed at the session's next use; libssh2 drops what still comes for it,
 * and never reuses a channel number, so a late byte cannot reach another command. The next
 * command's channel is asked for at the same moment, so its confirmation arrives while the
 * worker waits for the next request: a command then costs the round trip of its exec alone.
 *
 * libssh2 runs in blocking mode: the deadline's SIGALRM interrupts its poll() or recv(),
 * which then fail. A session that failed anywhere, or was interrupted, is closed, never kept. */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <git2/sys/credential.h>
#include <libssh2.h>

#include "deadline.h"
#include "sockets.h"
#include "sshkeep.h"
#include "url.h"

#define KEEP_SESSIONS 4
#define KEEP_IDLE_MS 30000
#define KEEP_LIFE_MS 600000
#define KEEP_USES 500
#define CLOSING_MAX 4
#define REUSE_WAIT_MS 2000 /* a kept session's server answers a channel open in this, or it is
			    * given up for a new session (a peer gone without a word: NAT, failover) */

typedef struct {
	LIBSSH2_SESSION *ssh;
	int fd;
	char id[1400]; /* user@host:port and identity; empty: not to be kept */
	int refs;      /* the pool's, and each open channel's */
	int kept;      /* in the pool */
	int broken;
	long long since; /* idle since, ms */
	long long born;
	int uses;
	LIBSSH2_CHANNEL *closing[CLOSING_MAX]; /* closed by us, the server's close not yet read */
	int nclosing;
	int opening;            /* the next channel was asked for; its confirmation is not read */
	LIBSSH2_CHANNEL *spare; /* the next channel, confirmed */
} conn;

static conn *pool[KEEP_SESSIONS];

struct chan;

struct sub {
	git_smart_subtransport parent;
	remote_auth *auth;
	struct chan *current;
};

struct chan {
	git_smart_subtransport_stream parent; /* first: libgit2's stream shape */
	struct sub *sub;
	conn *c;
	LIBSSH2_CHANNEL *ch;
};

static int ssh_failure(conn *c, const char *what)
{
	char *msg = NULL;
	if (c->ssh)
		libssh2_session_last_error(c->ssh, &msg, NULL, 0);
	c->broken = 1;
	if (deadline_passed())
		git_error_set(GIT_ERROR_NET, "%s: timed out", what);
	else
		git_error_set(GIT_ERROR_SSH, "%s: %s", what, msg && *msg ? msg : "the connection failed");
	return -1;
}

static void conn_destroy(conn *c)
{
	if (c->ssh) {
		libssh2_session_set_blocking(c->ssh, 0);
		if (!c->broken)
			libssh2_session_disconnect(c->ssh, "done");
		/* what libssh2 would still wait for (a channel's close) fails at once now */
		shutdown(c->fd, SHUT_RDWR);
		for (int i = 0; i < 8 && libssh2_session_free(c->ssh) == LIBSSH2_ERROR_EAGAIN; i++)
			;
	}
	if (c->fd >= 0)
		close(c->fd);
	free(c);
}

static void conn_put(conn *c)
{
	if (--c->refs == 0)
		conn_destroy(c);
}

static void conn_forget(conn *c)
{
	for (int i = 0; i < KEEP_SESSIONS; i++)
		if (pool[i] == c) {
			pool[i] = NULL;
			c->kept = 0;
			conn_put(c);
		}
}

/* The server has not closed the connection (what it sent meanwhile stays unread). */
static int conn_alive(conn *c)
{
	struct pollfd p = {c->fd, POLLIN, 0};
	char b;
	int n = poll(&p, 1, 0);
	if (n == 0)
		return 1;
	if (n < 0 || (p.revents & (POLLERR | POLLNVAL)))
		return 0;
	return recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) > 0;
}

/* Frees the channels whose close came; -1 when the session broke meanwhile. */
static int conn_reap(conn *c)
{
	int left = 0;
	libssh2_session_set_blocking(c->ssh, 0);
	for (int i = 0; i < c->nclosing; i++) {
		int rc = libssh2_channel_close(c->closing[i]);
		if (rc == 0)
			rc = libssh2_channel_free(c->closing[i]);
		if (rc == LIBSSH2_ERROR_EAGAIN)
			c->closing[left++] = c->closing[i];
		else if (rc < 0)
			c->broken = 1;
	}
	c->nclosing = left;
	libssh2_session_set_blocking(c->ssh, 1);
	return c->broken ? -1 : 0;
}

static git_cert_ssh_raw_type_t raw_type(int t)
{
	switch (t) {
	case LIBSSH2_HOSTKEY_TYPE_RSA: return GIT_CERT_SSH_RAW_TYPE_RSA;
	case LIBSSH2_HOSTKEY_TYPE_DSS: return GIT_CERT_SSH_RAW_TYPE_DSS;
	case LIBSSH2_HOSTKEY_TYPE_ECDSA_256: return GIT_CERT_SSH_RAW_TYPE_KEY_ECDSA_256;
	case LIBSSH2_HOSTKEY_TYPE_ECDSA_384: return GIT_CERT_SSH_RAW_TYPE_KEY_ECDSA_384;
	case LIBSSH2_HOSTKEY_TYPE_ECDSA_521: return GIT_CERT_SSH_RAW_TYPE_KEY_ECDSA_521;
	case LIBSSH2_HOSTKEY_TYPE_ED25519: return GIT_CERT_SSH_RAW_TYPE_KEY_ED25519;
	default: return GIT_CERT_SSH_RAW_TYPE_UNKNOWN;
	}
}

/* The session's host key, as libgit2 shows it to the certificate_check callback, checked
 * by credentials_check_host. 0, or < 0 with the refusal in a->refused. */
static int check_host(conn *c, remote_auth *a, const char *host)
{
	git_cert_hostkey cert;
	size_t len = 0;
	int type = 0;
	const char *key = libssh2_session_hostkey(c->ssh, &len, &type), *h;
	memset(&cert, 0, sizeof(cert));
	if (!key)
		return ssh_failure(c, "the SSH server presented no host key");
	cert.parent.cert_type = GIT_CERT_HOSTKEY_LIBSSH2;
	cert.type = GIT_CERT_SSH_RAW;
	cert.raw_type = raw_type(type);
	cert.hostkey = key;
	cert.hostkey_len = len;
	if ((h = libssh2_hostkey_hash(c->ssh, LIBSSH2_HOSTKEY_HASH_SHA256)) != NULL) {
		cert.type |= GIT_CERT_SSH_SHA256;
		memcpy(cert.hash_sha256, h, sizeof(cert.hash_sha256));
	}
	if ((h = libssh2_hostkey_hash(c->ssh, LIBSSH2_HOSTKEY_HASH_SHA1)) != NULL) {
		cert.type |= GIT_CERT_SSH_SHA1;
		memcpy(cert.hash_sha1, h, sizeof(cert.hash_sha1));
	}
	int rc = credentials_check_host(&cert.parent, 0, host, a);
	if (rc == 0)
		return 0;
	c->broken = 1;
	git_error_set(GIT_ERROR_SSH, "the SSH host key of %s was refused", host);
	return rc < 0 && rc != GIT_PASSTHROUGH ? rc : GIT_ECERTIFICATE;
}

/* The agent's identities, each offered in turn. */
static int agent_auth(LIBSSH2_SESSION *ssh, const char *user)
{
	LIBSSH2_AGENT *agent = libssh2_agent_init(ssh);
	struct libssh2_agent_publickey *id = NULL, *prev = NULL;
	int rc = LIBSSH2_ERROR_AUTHENTICATION_FAILED;
	if (!agent)
		return rc;
	if (libssh2_agent_connect(agent) == 0 && libssh2_agent_list_identities(agent) == 0) {
		while (libssh2_agent_get_identity(agent, &id, prev) == 0) {
			rc = libssh2_agent_userauth(agent, user, id);
			if (rc == 0 || rc == LIBSSH2_ERROR_SOCKET_SEND || rc == LIBSSH2_ERROR_SOCKET_RECV ||
			    rc == LIBSSH2_ERROR_SOCKET_DISCONNECT || rc == LIBSSH2_ERROR_TIMEOUT)
				break;
			prev = id;
		}
	}
	libssh2_agent_disconnect(agent);
	libssh2_agent_free(agent);
	return rc;
}

static int refused_credential(int rc)
{
	return rc == LIBSSH2_ERROR_AUTHENTICATION_FAILED || rc == LIBSSH2_ERROR_PUBLICKEY_UNVERIFIED ||
	       rc == LIBSSH2_ERROR_PASSWORD_EXPIRED || rc == LIBSSH2_ERROR_FILE ||
	       rc == LIBSSH2_ERROR_AGENT_PROTOCOL || rc == LIBSSH2_ERROR_METHOD_NOT_SUPPORTED;
}

/* Offers what credentials_acquire hands out (the agent, the key file; a password where the
 * server takes one) until one is accepted or it has nothing more. */
static int authenticate(conn *c, const char *user, remote_auth *a)
{
	char *methods = libssh2_userauth_list(c->ssh, user, (unsigned)strlen(user));
	unsigned int allowed = 0;
	if (!methods)
		return libssh2_userauth_authenticated(c->ssh) ? 0 : ssh_failure(c, "SSH authentication failed");
	if (strstr(methods, "publickey"))
		allowed |= GIT_CREDENTIAL_SSH_KEY;
	if (strstr(methods, "password"))
		allowed |= GIT_CREDENTIAL_USERPASS_PLAINTEXT;
	a->ssh_tries = a->userpass_tries = 0; /* each credential once on each connection */
	for (;;) {
		git_credential *cred = NULL;
		int rc = credentials_acquire(&cred, a->url, user, allowed, a);
		if (rc < 0) {
			c->broken = 1;
			return rc;
		}
		if (cred->credtype == GIT_CREDENTIAL_SSH_KEY) {
			git_credential_ssh_key *k = (git_credential_ssh_key *)cred;
			rc = k->privatekey ? libssh2_userauth_publickey_fromfile(c->ssh, user, k->publickey,
										 k->privatekey, k->passphrase)
					   : agent_auth(c->ssh, user);
		} else if (cred->credtype == GIT_CREDENTIAL_USERPASS_PLAINTEXT) {
			git_credential_userpass_plaintext *p = (git_credential_userpass_plaintext *)cred;
			rc = libssh2_userauth_password(c->ssh, user, p->password);
			c->id[0] = '\0'; /* a session a password opened is not kept */
		} else {
			rc = LIBSSH2_ERROR_AUTHENTICATION_FAILED;
		}
		git_credential_free(cred);
		if (rc == 0)
			return 0;
		if (!refused_credential(rc) || deadline_passed())
			return ssh_failure(c, "SSH authentication failed");
	}
}

/* A new session to u's host, its host key checked and authenticated. */
static int conn_new(conn **out, const url_parts *u, const char *host, const char *user,
		    remote_auth *a, const char *id)
{
	conn *c = calloc(1, sizeof(*c));
	int err = -1;
	*out = NULL;
	if (!c) {
		git_error_set_oom();
		return -1;
	}
	c->fd = -1;
	c->refs = 1;
	c->since = c->born = core_now_ms();
	snprintf(c->id, sizeof(c->id), "%s", id);
	if ((c->fd = sockets_connect(host, u->port)) < 0)
		goto fail;
	if (!(c->ssh = libssh2_session_init())) {
		git_error_set_oom();
		goto fail;
	}
	libssh2_session_set_blocking(c->ssh, 1);
	const char *method = credentials_known_key_method(a, host, atoi(u->port));
	if (method && libssh2_session_method_pref(c->ssh, LIBSSH2_METHOD_HOSTKEY, method) < 0) {
		err = ssh_failure(c, "SSH could not ask for the known host key type");
		goto fail;
	}
	if (libssh2_session_handshake(c->ssh, c->fd) < 0) {
		err = ssh_failure(c, "failed to start SSH session");
		goto fail;
	}
	if ((err = check_host(c, a, host)) < 0 || (err = authenticate(c, user, a)) < 0)
		goto fail;
	*out = c;
	return 0;
fail:
	c->broken = 1;
	conn_put(c);
	return err;
}

/* Puts c in the pool (a reference of its own), in a free slot or one whose session is idle. */
static void conn_keep(conn *c)
{
	int slot = -1;
	if (!c->id[0])
		return;
	for (int i = 0; i < KEEP_SESSIONS; i++) {
		if (!pool[i]) {
			slot = i;
			break;
		}
		if (pool[i]->refs == 1 && (slot < 0 || pool[i]->since < pool[slot]->since))
			slot = i;
	}
	if (slot < 0)
		return;
	if (pool[slot])
		conn_forget(pool[slot]);
	pool[slot] = c;
	c->kept = 1;
	c->refs++;
}

/* A kept session for id fit for another command (its host key checked again), or NULL; *err
 * is set when the host key is refused. */
static conn *conn_reuse(const char *id, const char *host, remote_auth *a, int *err)
{
	long long now = core_now_ms();
	*err = 0;
	for (int i = 0; i < KEEP_SESSIONS; i++) {
		conn *c = pool[i];
		if (!c)
			continue;
		int idle = c->refs == 1 && now - c->since > KEEP_IDLE_MS, mine = strcmp(c->id, id) == 0;
		int spent = c->uses >= KEEP_USES || now - c->born > KEEP_LIFE_MS;
		if (idle || c->broken || (mine && (spent || !conn_alive(c) || conn_reap(c) < 0))) {
			conn_forget(c);
			continue;
		}
		if (!mine)
			continue;
		if ((*err = check_host(c, a, host)) < 0) {
			conn_forget(c);
			return NULL;
		}
		c->refs++;
		return c;
	}
	return NULL;
}

int sshkeep_command(char *out, size_t outlen, const char *service, const url_parts *u)
{
	const char *path = u->path;
	if (u->kind == URL_SSH && path[0] == '/' && path[1] == '~')
		path++; /* ssh://host/~user/repo is relative to that user's home, as git has it */
	int n0 = snprintf(out, outlen, "%s '", service);
	if (!path[0] || n0 < 0 || (size_t)n0 >= outlen)
		return -1;
	size_t n = (size_t)n0;
	for (const char *p = path; *p; p++) {
		if ((unsigned char)*p < 0x20 || *p == 0x7f || n + 6 >= outlen)
			return -1; /* never a path cut short: that would name another repository */
		if (*p == '\'' || *p == '!')
			n += (size_t)snprintf(out + n, outlen - n, "'\\%c'", *p);
		else
			out[n++] = *p;
	}
	out[n++] = '\'';
	out[n] = '\0';
	return 0;
}

static int chan_read(git_smart_subtransport_stream *stream, char *buf, size_t size, size_t *got)
{
	struct chan *s = (struct chan *)stream;
	char err[512];
	*got = 0;
	if (deadline_passed())
		return ssh_failure(s->c, "reading from the SSH server");
	ssize_t n = libssh2_channel_read(s->ch, buf, size);
	if (n < 0)
		return ssh_failure(s->c, "SSH could not read data");
	if (n == 0) {
		/* the command ended: what it said on stderr is why (a repository not found) */
		ssize_t e = libssh2_channel_read_stderr(s->ch, err, sizeof(err) - 1);
		if (e < 0)
			return ssh_failure(s->c, "SSH could not read stderr");
		while (e > 0 && (err[e - 1] == '\n' || err[e - 1] == '\r'))
			e--;
		for (ssize_t i = 0; i < e; i++) /* the server's words, one line of printable ASCII */
			if ((unsigned char)err[i] < 0x20 || (unsigned char)err[i] > 0x7e)
				err[i] = '?';
		if (e > 0) {
			git_error_set(GIT_ERROR_SSH, "%.*s", (int)e, err);
			return GIT_EEOF;
		}
	}
	*got = (size_t)n;
	return 0;
}

static int chan_write(git_smart_subtransport_stream *stream, const char *buf, size_t len)
{
	struct chan *s = (struct chan *)stream;
	for (size_t off = 0; off < len;) {
		if (deadline_passed())
			return ssh_failure(s->c, "writing to the SSH server");
		ssize_t n = libssh2_channel_write(s->ch, buf + off, len - off);
		if (n < 0)
			return ssh_failure(s->c, "SSH could not write data");
		off += (size_t)n;
	}
	return 0;
}

/* Sends the open of the next command's channel without waiting for its confirmation (the
 * session is non-blocking); libssh2 takes the open up again where it stopped at the next
 * libssh2_channel_open_session. */
static int ask_next_channel(conn *c)
{
	if (c->uses >= KEEP_USES)
		return 0;
	c->spare = libssh2_channel_open_session(c->ssh);
	if (c->spare)
		return 0;
	if (libssh2_session_last_errno(c->ssh) != LIBSSH2_ERROR_EAGAIN)
		return -1;
	c->opening = 1;
	return 0;
}

/* Ends the command: its close goes out, the server's is read at the session's next use. */
static void chan_free(git_smart_subtransport_stream *stream)
{
	struct chan *s = (struct chan *)stream;
	conn *c = s->c;
	if (s->sub && s->sub->current == s)
		s->sub->current = NULL;
	if (!c->broken && !deadline_passed()) {
		libssh2_session_set_blocking(c->ssh, 0);
		int rc = libssh2_channel_close(s->ch);
		if (rc == 0)
			rc = libssh2_channel_free(s->ch);
		if (rc == LIBSSH2_ERROR_EAGAIN && c->nclosing < CLOSING_MAX) {
			c->closing[c->nclosing++] = s->ch;
			rc = 0;
		}
		if (rc == 0 && c->kept && !c->opening && !c->spare)
			rc = ask_next_channel(c);
		libssh2_session_set_blocking(c->ssh, 1);
		c->broken = rc != 0;
	} else {
		c->broken = 1; /* the channel goes with the session */
	}
	c->since = core_now_ms();
	if (c->broken)
		conn_forget(c);
	conn_put(c);
	free(s);
}

static int open_channel(LIBSSH2_CHANNEL **out, conn *c, const char *cmd)
{
	/* the channel asked for after the last command, or a new one */
	LIBSSH2_CHANNEL *ch = c->spare ? c->spare : libssh2_channel_open_session(c->ssh);
	c->spare = NULL;
	c->opening = 0;
	*out = NULL;
	if (!ch)
		return ssh_failure(c, "SSH could not open a channel");
	if (libssh2_channel_exec(ch, cmd) < 0)
		return ssh_failure(c, "SSH could not execute request"); /* freed with the session */
	c->uses++;
	*out = ch;
	return 0;
}

/* Opens a channel running cmd on c, waiting at most wait ms for the server (0: the deadline
 * alone). */
static int chan_open(LIBSSH2_CHANNEL **out, conn *c, const char *cmd, long wait)
{
	libssh2_session_set_timeout(c->ssh, wait);
	int rc = open_channel(out, c, cmd);
	libssh2_session_set_timeout(c->ssh, 0);
	return rc;
}

static int start(struct chan **out, struct sub *t, const char *url, const char *service)
{
	remote_auth *a = t->auth;
	url_parts u;
	char why[256], host[256], user[256], cmd[URL_MAX * 2 + 64], id[sizeof(((conn *)0)->id)];
	*out = NULL;
	if (url_parse(&u, url, URL_CREDENTIALS, why, sizeof(why)) < 0 || (u.kind != URL_SSH && u.kind != URL_SCP)) {
		git_error_set(GIT_ERROR_NET, "not an SSH URL");
		return -1;
	}
	size_t hl = strlen(u.host);
	if (u.host[0] == '[' && hl > 2) /* an IPv6 literal */
		snprintf(host, sizeof(host), "%.*s", (int)(hl - 2), u.host + 1);
	else
		snprintf(host, sizeof(host), "%s", u.host);
	snprintf(user, sizeof(user), "%s", u.user[0] ? u.user : "git");
	if (sshkeep_command(cmd, sizeof(cmd), service, &u) < 0) {
		git_error_set(GIT_ERROR_NET, "malformed git protocol URL");
		return -1;
	}
	/* what the session was opened with: the login and identity, and the host key rules (a
	 * new session asks for the key type its known_hosts holds) */
	const char *agent = getenv("SSH_AUTH_SOCK");
	const tfgit_remote_opts *o = a->opts;
	int idlen = snprintf(id, sizeof(id), "%s@%s:%s\nagent %s\nkey %s\nknown_hosts %d %s", user, u.host,
			     u.port, agent ? agent : "", o->ssh_key ? o->ssh_key : "", o->host_key_check,
			     o->known_hosts ? o->known_hosts : "");
	if (idlen < 0 || (size_t)idlen >= sizeof(id))
		id[0] = '\0'; /* too long to tell apart whole: not kept */
	struct chan *s = calloc(1, sizeof(*s));
	if (!s) {
		git_error_set_oom();
		return -1;
	}
	int err = 0;
	conn *c = id[0] ? conn_reuse(id, host, a, &err) : NULL;
	if (c && chan_open(&s->ch, c, cmd, REUSE_WAIT_MS) < 0) {
		conn_forget(c); /* the server closed it, or refuses another channel: a new one */
		conn_put(c);
		c = NULL;
	}
	if (!c && err == 0 && (err = conn_new(&c, &u, host, user, a, id)) == 0 &&
	    (err = chan_open(&s->ch, c, cmd, 0)) < 0) {
		conn_put(c);
		c = NULL;
	}
	if (!c) {
		free(s);
		return err < 0 ? err : -1;
	}
	if (!c->kept)
		conn_keep(c);
	s->parent.subtransport = &t->parent;
	s->parent.read = chan_read;
	s->parent.write = chan_write;
	s->parent.free = chan_free;
	s->sub = t;
	s->c = c;
	*out = s;
	return 0;
}

static int sub_action(git_smart_subtransport_stream **out, git_smart_subtransport *subtransport,
		      const char *url, git_smart_service_t action)
{
	struct sub *t = (struct sub *)subtransport;
	*out = NULL;
	if (action == GIT_SERVICE_UPLOADPACK || action == GIT_SERVICE_RECEIVEPACK) {
		if (!t->current) {
			git_error_set(GIT_ERROR_NET, "no SSH command runs: the advertisement comes first");
			return -1;
		}
		*out = &t->current->parent;
		return 0;
	}
	if (t->current)
		t->current->parent.free(&t->current->parent);
	struct chan *s;
	int err = start(&s, t, url, action == GIT_SERVICE_UPLOADPACK_LS ? "git-upload-pack" : "git-receive-pack");
	if (err < 0)
		return err;
	t->current = s;
	*out = &s->parent;
	return 0;
}

static int sub_close(git_smart_subtransport *subtransport)
{
	(void)subtransport;
	return 0;
}

static void sub_free(git_smart_subtransport *subtransport)
{
	struct sub *t = (struct sub *)subtransport;
	if (t->current)
		t->current->parent.free(&t->current->parent);
	free(t);
}

int sshkeep_subtransport(git_smart_subtransport **out, git_transport *owner, void *auth)
{
	struct sub *t = calloc(1, sizeof(*t));
	(void)owner;
	*out = NULL;
	if (!t) {
		git_error_set_oom();
		return -1;
	}
	t->parent.action = sub_action;
	t->parent.close = sub_close;
	t->parent.free = sub_free;
	t->auth = auth;
	*out = &t->parent;
	return 0;
}

int sshkeep_transport(git_transport **out, git_remote *owner, void *auth)
{
	git_smart_subtransport_definition def = {sshkeep_subtransport, 0, auth};
	return git_transport_smart(out, owner, &def);
}

void sshkeep_close_all(void)
{
	for (int i = 0; i < KEEP_SESSIONS; i++)
		if (pool[i])
			conn_forget(pool[i]);
}
