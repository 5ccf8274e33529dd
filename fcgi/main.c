/* tfgit.fcgi: a FastCGI responder pool serving Terraform's http backend from git.
 * With --workers N it supervises N worker processes on the inherited listen socket (fd 0,
 * as spawn-fcgi hands it over); without, it is a single responder. */
#include <errno.h>
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
#include "route.h"
#include "settings.h"

#define WORKERS_MAX 256
#define STOP_GRACE_SECONDS 30

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

static int worker(const struct settings *cfg)
{
	FCGX_Request fcgi;
	/* libgit2 is set up here, after fork(): no worker shares another's state */
	if (tfgit_init(cfg->ca_file) < 0 || FCGX_Init() != 0 ||
	    FCGX_InitRequest(&fcgi, 0, FCGI_FAIL_ACCEPT_ON_INTR) != 0) {
		fprintf(stderr, "tfgit[%ld]: cannot initialise libgit2 or libfcgi\n", (long)getpid());
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	srandom((unsigned)getpid() ^ (unsigned)time(NULL)); /* each worker its own back-off */
	/* a worker leaves after max_requests (the supervisor starts another): what a library leaks
	 * per connection (libgit2 1.5's SSH transport does) stays bounded */
	for (long served = 0; !stopping && (!cfg->max_requests || served < cfg->max_requests); served++) {
		set_stop_handler(0);
		if (FCGX_Accept_r(&fcgi) < 0)
			break;
		set_stop_handler(1);
		struct request req;
		struct request_io io = {fcgi_read, fcgi_write, &fcgi};
		if (request_init(&req, fcgi.envp, &io) == 0)
			route_request(&req, cfg);
		request_free(&req);
		FCGX_Finish_r(&fcgi);
	}
	FCGX_Free(&fcgi, 1);
	acl_cache_free();
	tfgit_shutdown();
	return 0;
}

static pid_t spawn(const struct settings *cfg)
{
	pid_t pid = fork();
	if (pid == 0)
		exit(worker(cfg)); /* exit, not _exit: leak checkers run at exit */
	if (pid < 0)
		fprintf(stderr, "tfgit: fork: %s\n", strerror(errno));
	return pid;
}

/* Keeps n workers alive until SIGTERM/SIGINT, then stops them and waits (bounded). */
static int supervise(const struct settings *cfg, int n)
{
	pid_t pids[WORKERS_MAX] = {0};
	set_stop_handler(0);
	for (int i = 0; i < n; i++)
		pids[i] = spawn(cfg);
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
			pids[i] = stopping ? 0 : spawn(cfg);
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

static void usage(void)
{
	fprintf(stderr, "usage: tfgit.fcgi [--workers N]\n"
			"  Serves Terraform's http backend over FastCGI on the socket inherited as fd 0\n"
			"  (start it with spawn-fcgi -n). Settings come from TFGIT_* variables.\n");
}

int main(int argc, char **argv)
{
	struct settings cfg;
	int workers = 0;
	/* whatever umask we inherit, the cache and every file made holds states: ours alone */
	umask(077);
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--workers") && i + 1 < argc) {
			workers = atoi(argv[++i]);
			if (workers < 1 || workers > WORKERS_MAX) {
				fprintf(stderr, "tfgit: --workers takes 1 to %d\n", WORKERS_MAX);
				return 2;
			}
		} else {
			usage();
			return 2;
		}
	}
	if (geteuid() == 0 && !getenv("TFGIT_ALLOW_ROOT")) {
		fprintf(stderr, "tfgit: refusing to run as root: start it with spawn-fcgi -u <user>\n");
		return 2;
	}
	/* libgit2 validates the branch names in the settings; it is shut down again before any
	 * fork, so each worker initialises its own */
	if (tfgit_init(NULL) < 0)
		return 1;
	int bad = settings_load(&cfg) < 0;
	tfgit_shutdown();
	if (bad)
		return 2;
	if (workers == 0)
		return worker(&cfg);
	return supervise(&cfg, workers);
}
