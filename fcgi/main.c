/* tfgit.fcgi: Terraform's http backend from git, in whichever process model it was started:
 *  - a supervised pool: --workers N on the FastCGI socket inherited as fd 0 (spawn-fcgi), or
 *    handed over by systemd (LISTEN_FDS, fd 3);
 *  - a single FastCGI responder on that socket, managed by the web server (Apache mod_fcgid);
 *  - plain CGI, one request per process (FCGX_IsCGI(): fd 0 is not a listening socket). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <fcgiapp.h>

#include "../core/acl.h"
#include "request.h"
#include "response.h"
#include "route.h"
#include "../core/settings.h"

#define WORKERS_MAX 256
#define STOP_GRACE_SECONDS 30

extern char **environ;

static volatile sig_atomic_t stopping;

static void on_stop(int sig)
{
	(void)sig;
	stopping = 1;
}

/* restart: 0 while waiting in accept(), so a stop signal interrupts it; 1 while serving, so
 * the request's own I/O is not cut short and the request finishes. */
static void set_stop_handler(int restart)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;
	sa.sa_flags = restart ? SA_RESTART : 0;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
}

/* Serves one request: its settings (server variables, environment, settings file), then the
 * route; a request whose settings are unusable gets a 500 and the log says why. */
static void serve(char **params, const struct request_io *io)
{
	struct request req;
	struct settings cfg;
	char why[640];
	if (request_init(&req, params, io) < 0) {
		request_free(&req);
		return;
	}
	if (settings_load(&cfg, params, 0, why, sizeof(why)) < 0 || tfgit_tls_trust(cfg.ca_file) < 0) {
		tfgit_log("%s: the settings are not usable: %s (id=%s)", req.method,
			  why[0] ? why : "TFGIT_SSL_CA_FILE cannot be loaded", req.id);
		respond_error(&req, 500, "this server's settings are not usable; its log says why");
	} else {
		route_request(&req, &cfg);
	}
	settings_free(&cfg);
	request_free(&req);
}

/* The request's body and response on its FastCGI connection. */
static int fcgi_read(void *ctx, char *buf, int n)
{
	FCGX_Request *fcgi = ctx;
	int got = FCGX_GetStr(buf, n, fcgi->in);
	return got == 0 && FCGX_GetError(fcgi->in) ? -1 : got;
}

static void fcgi_write(void *ctx, const char *buf, int n)
{
	FCGX_Request *fcgi = ctx;
	FCGX_PutStr(buf, n, fcgi->out);
}

/* Accepts and serves FastCGI requests until stopped, or (max_requests > 0, a pool's worker)
 * until it has served that many. */
static int responder(long max_requests)
{
	FCGX_Request fcgi;
	/* libgit2 is set up here, after fork(): no worker shares another's state */
	if (tfgit_init(NULL) < 0 || FCGX_Init() != 0 || FCGX_InitRequest(&fcgi, 0, FCGI_FAIL_ACCEPT_ON_INTR) != 0) {
		fprintf(stderr, "tfgit[%ld]: cannot initialise libgit2 or libfcgi\n", (long)getpid());
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	srandom((unsigned)getpid() ^ (unsigned)time(NULL)); /* each worker its own back-off */
	/* a pool's worker leaves after max_requests (the supervisor starts another): what a library
	 * leaks per connection (libgit2 1.5's SSH transport does) stays bounded */
	for (long served = 0; !stopping && (!max_requests || served < max_requests); served++) {
		set_stop_handler(0);
		if (FCGX_Accept_r(&fcgi) < 0)
			break;
		set_stop_handler(1);
		struct request_io io = {fcgi_read, fcgi_write, &fcgi};
		serve(fcgi.envp, &io);
		FCGX_Finish_r(&fcgi);
	}
	FCGX_Free(&fcgi, 1);
	acl_cache_free();
	tfgit_shutdown();
	return 0;
}

/* Plain CGI: the body on stdin (CONTENT_LENGTH bytes when given, else up to its end), the
 * response on stdout. */
struct cgi_io {
	long long left; /* -1: read to the end */
};

static int cgi_read(void *ctx, char *buf, int n)
{
	struct cgi_io *c = ctx;
	if (c->left == 0)
		return 0;
	if (c->left > 0 && c->left < n)
		n = (int)c->left;
	ssize_t got;
	while ((got = read(0, buf, (size_t)n)) < 0 && errno == EINTR)
		;
	if (got > 0 && c->left > 0)
		c->left -= got;
	if (got == 0 && c->left > 0)
		return -1; /* the body ended before CONTENT_LENGTH */
	return (int)got;
}

static void cgi_write(void *ctx, const char *buf, int n)
{
	(void)ctx;
	while (n > 0) {
		ssize_t put = write(1, buf, (size_t)n);
		if (put < 0 && errno == EINTR)
			continue;
		if (put <= 0)
			return;
		buf += put;
		n -= (int)put;
	}
}

/* Reads what is left of a body the answer did not need (a request refused before its body was
 * read): mod_cgid's stdin is a socket, and closing it with bytes unread resets it, losing the
 * answer already written (the client sees no status at all). Bounded: the web server bounds
 * the body (LimitRequestBody), and at most 1 GiB is read here. */
static void drain(struct cgi_io *c)
{
	char buf[65536];
	long long total = 0;
	int got;
	while (total < (1LL << 30) && (got = cgi_read(c, buf, sizeof(buf))) > 0)
		total += got;
}

static int cgi(void)
{
	const char *cl = getenv("CONTENT_LENGTH");
	struct cgi_io c = {-1};
	if (!getenv("REQUEST_METHOD")) {
		fprintf(stderr, "tfgit: not started by a web server (no FastCGI socket on fd 0, no CGI "
				"request); see tfgit.fcgi --help\n");
		return 2;
	}
	if (cl && *cl) {
		char *end;
		long long v = strtoll(cl, &end, 10);
		c.left = !*end && v >= 0 ? v : -1;
	}
	signal(SIGPIPE, SIG_IGN);
	struct request_io io = {cgi_read, cgi_write, &c};
	server_info.model = "cgi";
	server_info.workers = 1;
	server_info.started = time(NULL);
	if (tfgit_init(NULL) < 0) {
		struct request req;
		if (request_init(&req, environ, &io) == 0)
			respond_error(&req, 500, "libgit2 cannot be initialised");
		request_free(&req);
		return 1;
	}
	serve(environ, &io);
	drain(&c);
	acl_cache_free();
	tfgit_shutdown();
	return 0;
}

static pid_t spawn(long max_requests)
{
	pid_t pid = fork();
	if (pid == 0)
		exit(responder(max_requests)); /* exit, not _exit: leak checkers run at exit */
	if (pid < 0)
		fprintf(stderr, "tfgit: fork: %s\n", strerror(errno));
	return pid;
}

/* Keeps n workers alive until SIGTERM/SIGINT, then stops them and waits (bounded). */
static int supervise(long max_requests, int n)
{
	pid_t pids[WORKERS_MAX] = {0};
	set_stop_handler(0);
	for (int i = 0; i < n; i++)
		pids[i] = spawn(max_requests);
	fprintf(stderr, "tfgit[%ld]: pool of %d workers ready\n", (long)getpid(), n);
	while (!stopping) {
		int status;
		pid_t dead = waitpid(-1, &status, 0);
		if (dead < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		for (int i = 0; i < n; i++) {
			if (pids[i] != dead)
				continue;
			if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
				fprintf(stderr, "tfgit[%ld]: worker %ld served its TFGIT_MAX_REQUESTS; starting another\n",
					(long)getpid(), (long)dead);
			else
				fprintf(stderr, "tfgit[%ld]: worker %ld ended (%s %d); starting another\n",
					(long)getpid(), (long)dead, WIFSIGNALED(status) ? "signal" : "status",
					WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
			pids[i] = stopping ? 0 : spawn(max_requests);
		}
	}
	for (int i = 0; i < n; i++)
		if (pids[i] > 0)
			kill(pids[i], SIGTERM);
	time_t deadline = time(NULL) + STOP_GRACE_SECONDS;
	int left = 0;
	for (int i = 0; i < n; i++)
		left += pids[i] > 0;
	while (left > 0) {
		pid_t dead = waitpid(-1, NULL, WNOHANG);
		if (dead > 0) {
			left--;
			continue;
		}
		if (dead < 0 && errno == ECHILD)
			break;
		if (time(NULL) >= deadline) {
			for (int i = 0; i < n; i++)
				if (pids[i] > 0)
					kill(pids[i], SIGKILL);
			deadline = time(NULL) + 5;
		}
		struct timespec ts = {0, 20 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	fprintf(stderr, "tfgit[%ld]: pool stopped\n", (long)getpid());
	return 0;
}

/* Started with fds 0-2 closed (cgi-fcgi -connect, some supervisors), the sockets and files
 * opened later would land there and a log line could be written into them: /dev/null. */
static void open_std_fds(void)
{
	for (int fd = 0; fd < 3; fd++) {
		if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
			continue;
		int n = open("/dev/null", O_RDWR);
		if (n >= 0 && n != fd) {
			dup2(n, fd);
			close(n);
		}
	}
}

/* systemd's socket activation hands the listening socket over as fd 3 (LISTEN_FDS=1 for
 * this pid); libfcgi listens on fd 0. -1 with a message when what was handed over is unusable. */
static int take_activated_socket(void)
{
	const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
	if (!pid || !fds || atol(pid) != (long)getpid())
		return 0;
	if (strcmp(fds, "1") != 0) {
		fprintf(stderr, "tfgit: LISTEN_FDS=%s: give tfgit exactly one socket\n", fds);
		return -1;
	}
	if (dup2(3, 0) < 0) {
		fprintf(stderr, "tfgit: the activated socket (fd 3): %s\n", strerror(errno));
		return -1;
	}
	close(3);
	unsetenv("LISTEN_PID"); /* not the workers' */
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	return 0;
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: tfgit.fcgi [--workers N]\n"
		"  Serves Terraform's http backend from git, as the web server started it:\n"
		"  --workers N   a pool of N processes on the FastCGI socket on fd 0 (spawn-fcgi -n)\n"
		"                or handed over by systemd (LISTEN_FDS); replaced after TFGIT_MAX_REQUESTS\n"
		"  (none)        one FastCGI responder on fd 0, managed by the web server (mod_fcgid),\n"
		"                or plain CGI when fd 0 is not a listening socket (one request)\n"
		"  Settings: TFGIT_* variables, from the request's server variables (fastcgi_param,\n"
		"  SetEnv), then the environment, then a settings file: the one TFGIT_CONFIG names, else\n"
		"  ~/.config/tfgit/tfgit.conf (the home of this user), else %s.\n"
		"  See README.md.\n", settings_system_file());
}

int main(int argc, char **argv)
{
	struct settings cfg;
	char why[640];
	int workers = 0;
	/* whatever umask we inherit, the cache and every file made holds states: ours alone */
	umask(077);
	open_std_fds();
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--workers") && i + 1 < argc) {
			workers = atoi(argv[++i]);
			if (workers < 1 || workers > WORKERS_MAX) {
				fprintf(stderr, "tfgit: --workers takes 1 to %d\n", WORKERS_MAX);
				return 2;
			}
		} else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage(stdout);
			return 0;
		} else {
			usage(stderr);
			return 2;
		}
	}
	if (geteuid() == 0 && !getenv("TFGIT_ALLOW_ROOT")) {
		fprintf(stderr, "tfgit: refusing to run as root: start it as the web server's user "
				"(spawn-fcgi -u <user>)\n");
		return 2;
	}
	if (take_activated_socket() < 0)
		return 2;
	if (FCGX_IsCGI()) {
		if (workers) {
			fprintf(stderr, "tfgit: --workers needs a listening FastCGI socket on fd 0\n");
			return 2;
		}
		return cgi();
	}
	/* the settings of the environment are checked now (libgit2 checks branch names; it is
	 * shut down again before any fork, so each worker initialises its own). A pool stops on
	 * a bad one; a web server's responder may get what is missing per request (SetEnv) and
	 * answers 500 while the settings are unusable. */
	if (tfgit_init(NULL) < 0)
		return 1;
	int bad = settings_load(&cfg, NULL, 1, why, sizeof(why)) < 0;
	tfgit_shutdown();
	long max_requests = cfg.max_requests;
	settings_free(&cfg);
	if (bad)
		fprintf(stderr, "tfgit: %s\n", why);
	if (bad && workers)
		return 2;
	server_info.model = workers ? "pool" : "fastcgi";
	server_info.workers = workers ? workers : 1;
	server_info.started = time(NULL);
	if (workers == 0)
		return responder(0); /* the web server bounds its life (FcgidMaxRequestsPerProcess) */
	return supervise(max_requests, workers);
}
