/* browse: loads one page in headless Chromium, driven by the DevTools protocol over a pipe
 * (--remote-debugging-pipe: Chromium reads commands on its fd 3 and writes answers and events
 * on its fd 4, each message one JSON text ended by a NUL byte), and reports what a test of the
 * web view asserts.
 *
 * usage: browse [--screenshot FILE.png] [--dom FILE.html] [--width W --height H] [--no-js]
 *               [--timeout SECONDS] URL
 *
 * stdout: "status N", the main document's HTTP status (absent when no response came); a status
 *         >= 400 is not a problem by itself (an error page can be tested like any other).
 * stderr: one line per problem, prefixed "console: " (console.error/assert/warn), "exception: "
 *         (uncaught), "log: " (browser log at warning or error: CSP violations, failed loads),
 *         "network: " (a failed request, a subresource answered >= 400, a failed navigation);
 *         other lines start with "browse: ". A failed /favicon.ico load is not a problem.
 * exit:   0 loaded, no problem; 1 problems (the DOM and the screenshot are still written, except
 *         after a failed navigation: connection refused, an error status with an empty body);
 *         2 usage; 3 timeout (--timeout bounds the whole run, default 30 s) or Chromium failure.
 * Chromium is $CHROMIUM (default "chromium"), its profile, TMPDIR and HOME a fresh directory
 * removed at exit; it is closed (Browser.close), then its process group killed; browse is a
 * child subreaper, so its orphans (crash handlers, in sessions of their own) are killed and
 * reaped too. */
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <ftw.h>
#include <getopt.h>
#include <json-c/json.h>
#include <openssl/evp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { EXIT_OK = 0, EXIT_PROBLEMS = 1, EXIT_USAGE = 2, EXIT_FAILED = 3 };
#define QUIET_MS 200          /* after load: this long without a message and no request in flight */
#define SETTLE_MAX_MS 2000    /* after load: the bound on waiting for the network to go idle */
#define CLOSE_MS 3000         /* after Browser.close: the bound on Chromium exiting by itself */
#define MAX_MESSAGE (256u << 20) /* a screenshot of a huge page is tens of MB of base64 */

struct options {
	const char *screenshot, *dom, *url;
	int width, height;
	bool no_js;
	double timeout;
};

/* One request the page has started and not finished (the network-idle test, and the URL a
 * Network.loadingFailed names only by its requestId). */
struct request {
	char *id, *url;
	bool main;     /* the main frame's document */
	bool reported; /* its status (>= 400) was reported: its loadingFailed (ERR_ABORTED) is not */
};

struct browser {
	pid_t pid;             /* Chromium, leader of its own process group */
	int to, from;          /* our ends of its fd 3 and fd 4 */
	char *buf;             /* what was read from fd 4 and not yet parsed */
	size_t len, cap;
	long next_id;
	long long deadline;    /* CLOCK_MONOTONIC ms: the --timeout bound */
	double timeout;        /* --timeout, for the messages */
	long long last_message;
	char *dir;             /* the temporary directory: profile, TMPDIR, HOME, chromium.log */
	char *session;         /* the page's flattened session */
	char *main_frame;
	char *main_request;    /* the main document's requestId (its loaderId) */
	bool navigating, loaded;
	bool main_failed;      /* the main document's request failed (and was reported) */
	int status;            /* the main document's HTTP status, 0 until it answered */
	int problems;
	struct request *inflight;
	size_t ninflight, capinflight;
};

static volatile sig_atomic_t interrupted;

/* Milliseconds on the monotonic clock. */
static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A message from browse itself (not a problem of the page) on stderr. */
__attribute__((format(printf, 1, 2)))
static void say(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("browse: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* ---- the temporary directory ---------------------------------------------------------------- */

/* Removes one entry of the tree (nftw callback, children first). */
static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	if (remove(path) != 0 && errno != ENOENT)
		say("cannot remove %s: %s", path, strerror(errno));
	return 0;
}

/* Removes the temporary directory and everything Chromium put in it. */
static void remove_dir(const char *dir)
{
	if (dir)
		nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Creates the temporary directory (mode 0700 whatever the umask) under $TMPDIR or /tmp. */
static char *make_dir(void)
{
	const char *tmp = getenv("TMPDIR");
	char *dir;
	if (!tmp || !*tmp)
		tmp = "/tmp";
	if (asprintf(&dir, "%s/browse.XXXXXX", tmp) < 0)
		return NULL;
	if (!mkdtemp(dir)) {
		say("mkdtemp %s: %s", dir, strerror(errno));
		free(dir);
		return NULL;
	}
	return dir;
}

/* Prints the last lines Chromium wrote to its log, after a failure; its D-Bus complaints (a
 * container has no bus; they fill the log of every run) are left out. */
static void show_chromium_log(const char *dir)
{
	char path[4096], line[1024], *lines[8] = {0};
	size_t n = 0;
	snprintf(path, sizeof(path), "%s/chromium.log", dir);
	FILE *f = fopen(path, "r");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (strstr(line, ":ERROR:dbus/"))
			continue;
		free(lines[n % 8]);
		lines[n++ % 8] = strdup(line);
	}
	fclose(f);
	for (size_t i = n > 8 ? n - 8 : 0; i < n; i++) {
		fprintf(stderr, "browse: chromium: %s", lines[i % 8] ? lines[i % 8] : "\n");
		free(lines[i % 8]);
	}
}

/* ---- starting and stopping Chromium ---------------------------------------------------------- */

/* In the child: fd 3 and fd 4 become the pipe ends, stdin /dev/null, stdout and stderr the log;
 * its own process group, killed with browse; then exec. Never returns. */
static void child_exec(const char *dir, int in, int out, pid_t parent)
{
	char log[4096], profile[4096];
	snprintf(log, sizeof(log), "%s/chromium.log", dir);
	snprintf(profile, sizeof(profile), "--user-data-dir=%s/profile", dir);
	/* every source copied above 4 first, so that no dup2 below overwrites one */
	int logfd = fcntl(open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600), F_DUPFD_CLOEXEC, 10);
	int null = fcntl(open("/dev/null", O_RDONLY | O_CLOEXEC), F_DUPFD_CLOEXEC, 10);
	in = fcntl(in, F_DUPFD_CLOEXEC, 10);
	out = fcntl(out, F_DUPFD_CLOEXEC, 10);
	if (logfd < 0 || null < 0 || in < 0 || out < 0 || dup2(null, 0) < 0 || dup2(logfd, 1) < 0 ||
	    dup2(logfd, 2) < 0 || dup2(in, 3) < 0 || dup2(out, 4) < 0)
		_exit(127);
	setpgid(0, 0);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(127);
	setenv("TMPDIR", dir, 1); /* --disable-dev-shm-usage puts shared memory files there */
	setenv("HOME", dir, 1);   /* ~/.pki/nssdb, ~/.cache, ~/.local */
	unsetenv("XDG_CONFIG_HOME");
	unsetenv("XDG_CACHE_HOME");
	unsetenv("XDG_DATA_HOME");
	const char *prog = getenv("CHROMIUM");
	if (!prog || !*prog)
		prog = "chromium";
	execlp(prog, prog, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
	       "--no-first-run", "--no-default-browser-check", "--disable-extensions",
	       "--disable-background-networking", "--disable-sync", "--disable-component-update",
	       profile, "--remote-debugging-pipe", "about:blank", (char *)NULL);
	fprintf(stderr, "exec %s: %s\n", prog, strerror(errno));
	_exit(127);
}

/* Starts Chromium with the pipes; false when it could not be forked. */
static bool start_chromium(struct browser *b)
{
	int cmd[2], ev[2];
	if (pipe2(cmd, O_CLOEXEC) < 0 || pipe2(ev, O_CLOEXEC) < 0) {
		say("pipe: %s", strerror(errno));
		return false;
	}
	pid_t parent = getpid();
	b->pid = fork();
	if (b->pid < 0) {
		say("fork: %s", strerror(errno));
		return false;
	}
	if (b->pid == 0)
		child_exec(b->dir, cmd[0], ev[1], parent);
	setpgid(b->pid, b->pid); /* also here: no race with a kill of the group */
	close(cmd[0]);
	close(ev[1]);
	b->to = cmd[1];
	b->from = ev[0];
	return true;
}

/* True when Chromium has exited; it is left a zombie (WNOWAIT), so its pid, which is also its
 * process group's id, cannot be reused before the group is killed. */
static bool has_exited(pid_t pid)
{
	siginfo_t si = {0};
	return waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == pid;
}

/* Kills every child of browse: browse is a child subreaper, so Chromium's processes orphaned
 * by the browser's death are its children, among them chrome_crashpad_handler, which runs in a
 * session of its own, out of reach of the group's kill. (Its flag --disable-crashpad-for-testing
 * crashes the network service.) */
static void kill_children(void)
{
	char path[64], text[512];
	DIR *proc = opendir("/proc");
	struct dirent *e;
	while (proc && (e = readdir(proc))) {
		int pid = atoi(e->d_name), ppid = 0;
		snprintf(path, sizeof(path), "/proc/%d/stat", pid);
		int fd = pid > 0 ? open(path, O_RDONLY | O_CLOEXEC) : -1;
		ssize_t n = fd >= 0 ? read(fd, text, sizeof(text) - 1) : -1;
		if (fd >= 0)
			close(fd);
		text[n > 0 ? n : 0] = '\0';
		char *end = strrchr(text, ')'); /* "pid (comm) state ppid ...": comm may hold anything */
		if (end && sscanf(end + 1, " %*c %d", &ppid) == 1 && ppid == getpid())
			kill(pid, SIGKILL);
	}
	if (proc)
		closedir(proc);
}

/* Kills and reaps every child left, at most 2 s. */
static void reap_children(void)
{
	for (long long end = now_ms() + 2000; now_ms() < end; usleep(10000)) {
		kill_children();
		pid_t w;
		while ((w = waitpid(-1, NULL, WNOHANG)) > 0)
			;
		if (w < 0 && errno == ECHILD)
			return;
	}
	say("some of chromium's processes could not be reaped");
}

/* Waits up to ms for Chromium to exit by itself. */
static bool wait_exit(pid_t pid, int ms)
{
	for (long long end = now_ms() + ms; now_ms() < end; usleep(20000))
		if (has_exited(pid))
			return true;
	return has_exited(pid);
}

/* ---- the pipe: sending commands, reading messages -------------------------------------------- */

/* Milliseconds left before the deadline (0 when passed). */
static int remaining(const struct browser *b)
{
	long long left = b->deadline - now_ms();
	return left > 0 ? (int)(left > 60000 ? 60000 : left) : 0;
}

/* Writes all of the message and its NUL; false on a closed pipe or the deadline. */
static bool write_message(struct browser *b, const char *text)
{
	size_t n = strlen(text) + 1, done = 0; /* the NUL ends the message */
	while (done < n) {
		struct pollfd p = {.fd = b->to, .events = POLLOUT};
		if (poll(&p, 1, remaining(b)) <= 0 || interrupted)
			return false;
		ssize_t w = write(b->to, text + done, n - done);
		if (w < 0 && errno != EINTR && errno != EAGAIN)
			return false;
		done += w > 0 ? (size_t)w : 0;
	}
	return true;
}

/* Sends a command (to the page's session when session is set) and returns its id, or -1.
 * params is consumed. */
static long send_command(struct browser *b, const char *session, const char *method, json_object *params)
{
	json_object *m = json_object_new_object();
	long id = ++b->next_id;
	json_object_object_add(m, "id", json_object_new_int64(id));
	if (session)
		json_object_object_add(m, "sessionId", json_object_new_string(session));
	json_object_object_add(m, "method", json_object_new_string(method));
	json_object_object_add(m, "params", params ? params : json_object_new_object());
	bool ok = write_message(b, json_object_to_json_string_ext(m, JSON_C_TO_STRING_PLAIN));
	json_object_put(m);
	return ok ? id : -1;
}

/* Parses the first complete message in the buffer, if any, and drops it from the buffer. */
static json_object *take_message(struct browser *b, bool *bad)
{
	char *end = b->len ? memchr(b->buf, '\0', b->len) : NULL;
	if (!end)
		return NULL;
	size_t n = (size_t)(end - b->buf);
	json_tokener *tok = json_tokener_new_ex(128);
	json_object *m = tok ? json_tokener_parse_ex(tok, b->buf, (int)n) : NULL;
	if (!m || json_tokener_get_error(tok) != json_tokener_success) {
		json_object_put(m);
		m = NULL;
		*bad = true;
	}
	json_tokener_free(tok);
	memmove(b->buf, end + 1, b->len - n - 1);
	b->len -= n + 1;
	return m;
}

/* Reads what Chromium has written, waiting at most ms; false on end of file, error or a
 * message too large. */
static bool fill(struct browser *b, int ms)
{
	struct pollfd p = {.fd = b->from, .events = POLLIN};
	int r = poll(&p, 1, ms);
	if (r <= 0)
		return r == 0 || errno == EINTR;
	if (b->cap - b->len < 65536) {
		if (b->cap >= MAX_MESSAGE)
			return false;
		size_t cap = b->cap ? b->cap * 2 : 1 << 20;
		char *nb = realloc(b->buf, cap);
		if (!nb)
			return false;
		b->buf = nb, b->cap = cap;
	}
	ssize_t n = read(b->from, b->buf + b->len, b->cap - b->len);
	if (n <= 0)
		return n < 0 && errno == EINTR;
	b->len += (size_t)n;
	return true;
}

/* The next message, waiting until the deadline or until the monotonic time until (if earlier).
 * NULL when none came in time (*dead false) or when the pipe failed (*dead true). */
static json_object *next_message(struct browser *b, long long until, bool *dead)
{
	*dead = false;
	for (;;) {
		bool bad = false;
		json_object *m = take_message(b, &bad);
		if (m || bad) {
			b->last_message = now_ms();
			if (m)
				return m;
			say("unparsable message from chromium");
			continue;
		}
		long long end = until < b->deadline ? until : b->deadline;
		long long left = end - now_ms();
		if (interrupted || left <= 0)
			return NULL;
		if (!fill(b, left > 60000 ? 60000 : (int)left)) {
			*dead = true;
			return NULL;
		}
	}
}

/* ---- problems ---------------------------------------------------------------------------------- */

/* Reports one problem on a line of its own: control characters become spaces. */
__attribute__((format(printf, 3, 4)))
static void problem(struct browser *b, const char *prefix, const char *fmt, ...)
{
	char *text = NULL;
	va_list ap;
	va_start(ap, fmt);
	int n = vasprintf(&text, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	for (char *p = text; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = ' ';
	fprintf(stderr, "%s: %s\n", prefix, text);
	free(text);
	b->problems++;
}

/* A string member of o, or "" (never NULL). */
static const char *str(json_object *o, const char *key)
{
	json_object *v;
	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return "";
	return json_object_get_string(v);
}

/* A member of o (NULL when absent). */
static json_object *member(json_object *o, const char *key)
{
	json_object *v = NULL;
	return json_object_object_get_ex(o, key, &v) ? v : NULL;
}

/* True for a URL whose path is /favicon.ico: Chromium asks for it on its own. */
static bool is_favicon(const char *url)
{
	size_t n = strcspn(url, "?#");
	return n >= 12 && memcmp(url + n - 12, "/favicon.ico", 12) == 0;
}

/* " (url:line)" from a stack trace's first frame, or "". */
static void where(json_object *stack, char *out, size_t size)
{
	json_object *frames = member(stack, "callFrames");
	json_object *f = frames ? json_object_array_get_idx(frames, 0) : NULL;
	*out = '\0';
	if (f)
		snprintf(out, size, " (%s:%d)", str(f, "url"), json_object_get_int(member(f, "lineNumber")) + 1);
}

/* Runtime.consoleAPICalled: console.error, console.assert and console.warn are problems. */
static void on_console(struct browser *b, json_object *p)
{
	const char *type = str(p, "type");
	if (strcmp(type, "error") && strcmp(type, "assert") && strcmp(type, "warning"))
		return;
	json_object *args = member(p, "args");
	char text[2048] = "", at[1024];
	for (size_t i = 0; args && i < json_object_array_length(args); i++) {
		json_object *a = json_object_array_get_idx(args, i);
		json_object *v = member(a, "value");
		const char *s = v ? json_object_get_string(v) : str(a, "description");
		size_t len = strlen(text);
		snprintf(text + len, sizeof(text) - len, "%s%s", i ? " " : "", s ? s : "");
	}
	where(member(p, "stackTrace"), at, sizeof(at));
	problem(b, "console", "%s: %s%s", type, text, at);
}

/* Runtime.exceptionThrown: the exception's first line and where it was thrown. */
static void on_exception(struct browser *b, json_object *p)
{
	json_object *d = member(p, "exceptionDetails"), *ex = member(d, "exception");
	const char *desc = str(ex, "description"); /* an Error's; a thrown string has only a value */
	if (!*desc && member(ex, "value"))
		desc = json_object_get_string(member(ex, "value"));
	int line = json_object_get_int(member(d, "lineNumber")) + 1;
	problem(b, "exception", "%s: %.*s (%s:%d)", str(d, "text"), (int)strcspn(desc, "\n"), desc,
	        str(d, "url"), line);
}

/* Log.entryAdded at warning or error: CSP violations, failed loads, deprecations... Not the
 * favicon's failed load, nor the main document's (its status is on stdout). */
static void on_log(struct browser *b, json_object *p)
{
	json_object *e = member(p, "entry");
	const char *level = str(e, "level"), *url = str(e, "url"), *req = str(e, "networkRequestId");
	if (strcmp(level, "error") && strcmp(level, "warning"))
		return;
	if (strstr(str(e, "text"), "Failed to load resource") &&
	    (is_favicon(url) || (b->main_request && !strcmp(req, b->main_request))))
		return;
	problem(b, "log", "%s: %s: %s%s%s", level, str(e, "source"), str(e, "text"), *url ? " " : "", url);
}

/* ---- the network: requests in flight, failures, the main document's status ------------------- */

/* The index of a request in flight, or -1. */
static long find_request(const struct browser *b, const char *id)
{
	for (size_t i = 0; i < b->ninflight; i++)
		if (strcmp(b->inflight[i].id, id) == 0)
			return (long)i;
	return -1;
}

/* Network.requestWillBeSent: one more request in flight (a redirect keeps its requestId). */
static void on_request(struct browser *b, json_object *p)
{
	const char *id = str(p, "requestId"), *url = str(member(p, "request"), "url");
	long i = find_request(b, id);
	if (i >= 0) {
		free(b->inflight[i].url);
		b->inflight[i].url = strdup(url);
		return;
	}
	if (b->ninflight == b->capinflight) {
		size_t cap = b->capinflight ? b->capinflight * 2 : 16;
		struct request *n = realloc(b->inflight, cap * sizeof(*n));
		if (!n)
			return;
		b->inflight = n, b->capinflight = cap;
	}
	bool main = !strcmp(str(p, "type"), "Document") && b->main_frame && !strcmp(str(p, "frameId"), b->main_frame);
	if (main) {
		free(b->main_request);
		b->main_request = strdup(id);
	}
	b->inflight[b->ninflight++] = (struct request){strdup(id), strdup(url), main, false};
}

/* Network.loadingFinished or loadingFailed: the request is no longer in flight. Returns what
 * was known of it (its id and url to be freed; both NULL when it was not known). */
static struct request end_request(struct browser *b, const char *id)
{
	long i = find_request(b, id);
	struct request r = {0};
	if (i >= 0) {
		r = b->inflight[i];
		b->inflight[i] = b->inflight[--b->ninflight];
	}
	return r;
}

/* Network.loadingFinished: the request is no longer in flight. */
static void on_finished(struct browser *b, json_object *p)
{
	struct request r = end_request(b, str(p, "requestId"));
	free(r.id);
	free(r.url);
}

/* Network.responseReceived: the main document's status is kept; a subresource's >= 400 is a
 * problem. */
static void on_response(struct browser *b, json_object *p)
{
	json_object *r = member(p, "response");
	int status = json_object_get_int(member(r, "status"));
	const char *url = str(r, "url");
	if (!strcmp(str(p, "type"), "Document") && b->main_frame && !strcmp(str(p, "frameId"), b->main_frame)) {
		b->status = status;
		return;
	}
	if (status >= 400 && !is_favicon(url)) {
		long i = find_request(b, str(p, "requestId"));
		if (i >= 0)
			b->inflight[i].reported = true;
		problem(b, "network", "%d %s", status, url);
	}
}

/* Network.loadingFailed: a problem, unless it is the favicon or the end of a load whose status
 * was reported already. */
static void on_failed(struct browser *b, json_object *p)
{
	struct request r = end_request(b, str(p, "requestId"));
	const char *why = str(p, "blockedReason"), *error = str(p, "errorText");
	const char *url = r.url ? r.url : str(p, "requestId");
	b->main_failed |= r.main;
	if (!r.reported && !is_favicon(url))
		problem(b, "network", "%s %s:%s%s%s%s%s", r.main ? "navigation to" : "failed", url, *error ? " " : "",
		        error, *why ? " (blocked: " : "", why, *why ? ")" : "");
	free(r.id);
	free(r.url);
}

/* Dispatches an event of the page's session. */
static void on_event(struct browser *b, json_object *m)
{
	const char *method = str(m, "method"), *session = str(m, "sessionId");
	json_object *p = member(m, "params");
	if (!b->session || strcmp(session, b->session))
		return;
	if (!strcmp(method, "Page.loadEventFired"))
		b->loaded = b->navigating;
	else if (!strcmp(method, "Runtime.consoleAPICalled"))
		on_console(b, p);
	else if (!strcmp(method, "Runtime.exceptionThrown"))
		on_exception(b, p);
	else if (!strcmp(method, "Log.entryAdded"))
		on_log(b, p);
	else if (!strcmp(method, "Network.requestWillBeSent"))
		on_request(b, p);
	else if (!strcmp(method, "Network.responseReceived"))
		on_response(b, p);
	else if (!strcmp(method, "Network.loadingFinished"))
		on_finished(b, p);
	else if (!strcmp(method, "Network.loadingFailed"))
		on_failed(b, p);
}

/* ---- commands and waits ------------------------------------------------------------------------ */

/* Explains why a wait ended without its answer. */
static void lost(struct browser *b, bool dead, const char *what)
{
	if (interrupted)
		say("interrupted while waiting for %s", what);
	else if (dead)
		say("chromium closed the pipe while waiting for %s", what);
	else
		say("timeout: no %s within %.0f s", what, b->timeout);
}

/* Sends a command and waits for its answer, handling the events that come meanwhile. Returns
 * the message's "result" (owned by *msg, to be put), or NULL after saying why. */
static json_object *call(struct browser *b, const char *session, const char *method, json_object *params,
                         json_object **msg)
{
	long id = send_command(b, session, method, params);
	bool dead = false;
	*msg = NULL;
	if (id < 0) {
		say("cannot send %s to chromium", method);
		return NULL;
	}
	while ((*msg = next_message(b, b->deadline, &dead))) {
		json_object *idv = member(*msg, "id");
		if (idv && json_object_get_int64(idv) == id) {
			json_object *err = member(*msg, "error");
			if (!err)
				return member(*msg, "result");
			say("%s: %s", method, str(err, "message"));
			return NULL;
		}
		if (!idv)
			on_event(b, *msg);
		json_object_put(*msg);
	}
	lost(b, dead, method);
	return NULL;
}

/* A command whose answer is only checked; false after saying why. */
static bool call_ok(struct browser *b, const char *method, json_object *params)
{
	json_object *msg;
	bool ok = call(b, b->session, method, params, &msg) != NULL;
	json_object_put(msg);
	return ok;
}

/* Handles the next message if one comes before the time until: 1 when one was handled, 0 when
 * until passed, -1 (after saying why) when the pipe failed or the deadline passed. */
static int handle_one(struct browser *b, long long until, const char *what)
{
	bool dead = false;
	json_object *m = next_message(b, until, &dead);
	if (!m) {
		if (!dead && !interrupted && now_ms() < b->deadline)
			return 0;
		lost(b, dead, what);
		return -1;
	}
	if (!member(m, "id"))
		on_event(b, m);
	json_object_put(m);
	return 1;
}

/* Handles events until the load event; false on the deadline or a failure. */
static bool wait_load(struct browser *b)
{
	while (!b->loaded)
		if (handle_one(b, b->deadline, "Page.loadEventFired") < 0)
			return false;
	return true;
}

/* After the load event: handles events until no request is in flight and nothing was heard for
 * QUIET_MS (late console messages, the favicon, a request a script made at load), at most
 * SETTLE_MAX_MS; false on the deadline or a failure. */
static bool settle(struct browser *b)
{
	long long end = now_ms() + SETTLE_MAX_MS;
	for (long long t = now_ms(); t < end; t = now_ms()) {
		long long quiet = b->last_message + QUIET_MS;
		if (b->ninflight == 0 && t >= quiet)
			return true;
		if (handle_one(b, b->ninflight == 0 && quiet < end ? quiet : end, "an idle network") < 0)
			return false;
	}
	for (size_t i = 0; i < b->ninflight; i++) /* not a problem: a long poll, a slow server */
		say("still in flight %d ms after load: %s", SETTLE_MAX_MS, b->inflight[i].url);
	return true;
}

/* ---- the steps ---------------------------------------------------------------------------------- */

/* Finds the page target Chromium opened (or opens one) and attaches to it with a flattened
 * session. */
static bool attach(struct browser *b)
{
	json_object *msg, *r = call(b, NULL, "Target.getTargets", NULL, &msg), *created = NULL;
	json_object *infos = member(r, "targetInfos");
	char *target = NULL;
	for (size_t i = 0; infos && i < json_object_array_length(infos) && !target; i++) {
		json_object *t = json_object_array_get_idx(infos, i);
		if (!strcmp(str(t, "type"), "page"))
			target = strdup(str(t, "targetId"));
	}
	json_object_put(msg);
	if (!r)
		return false;
	if (!target) {
		json_object *p = json_object_new_object();
		json_object_object_add(p, "url", json_object_new_string("about:blank"));
		if (!(r = call(b, NULL, "Target.createTarget", p, &created)))
			return json_object_put(created), false;
		target = strdup(str(r, "targetId"));
		json_object_put(created);
	}
	json_object *p = json_object_new_object();
	json_object_object_add(p, "targetId", json_object_new_string(target));
	json_object_object_add(p, "flatten", json_object_new_boolean(1));
	free(target);
	r = call(b, NULL, "Target.attachToTarget", p, &msg);
	b->session = r ? strdup(str(r, "sessionId")) : NULL;
	json_object_put(msg);
	return b->session != NULL;
}

/* Enables the domains whose events are collected, learns the main frame, sets the viewport
 * and, with --no-js, disables scripts. */
static bool prepare(struct browser *b, const struct options *o)
{
	const char *domains[] = {"Page.enable", "Runtime.enable", "Log.enable", "Network.enable"};
	for (size_t i = 0; i < sizeof(domains) / sizeof(*domains); i++)
		if (!call_ok(b, domains[i], NULL))
			return false;
	json_object *msg, *r = call(b, b->session, "Page.getFrameTree", NULL, &msg);
	if (r)
		b->main_frame = strdup(str(member(member(r, "frameTree"), "frame"), "id"));
	json_object_put(msg);
	if (!r)
		return false;
	json_object *p = json_object_new_object();
	json_object_object_add(p, "width", json_object_new_int(o->width));
	json_object_object_add(p, "height", json_object_new_int(o->height));
	json_object_object_add(p, "deviceScaleFactor", json_object_new_int(1));
	json_object_object_add(p, "mobile", json_object_new_boolean(0));
	if (!call_ok(b, "Emulation.setDeviceMetricsOverride", p))
		return false;
	if (!o->no_js)
		return true;
	p = json_object_new_object();
	json_object_object_add(p, "value", json_object_new_boolean(1));
	return call_ok(b, "Emulation.setScriptExecutionDisabled", p);
}

/* Navigates and waits for the load event, then for the network to be idle (bounded).
 * Returns EXIT_OK, EXIT_PROBLEMS when the navigation itself failed, or EXIT_FAILED. */
static int load(struct browser *b, const char *url)
{
	json_object *msg, *p = json_object_new_object();
	json_object_object_add(p, "url", json_object_new_string(url));
	b->navigating = true;
	json_object *r = call(b, b->session, "Page.navigate", p, &msg);
	if (!r)
		return json_object_put(msg), EXIT_FAILED;
	const char *error = str(r, "errorText");
	if (*error) {
		if (!b->main_failed) /* else reported with the request's URL by on_failed */
			problem(b, "network", "navigation to %s: %s", url, error);
		json_object_put(msg);
		return EXIT_PROBLEMS;
	}
	json_object_put(msg);
	return wait_load(b) && settle(b) ? EXIT_OK : EXIT_FAILED;
}

/* Writes len bytes to a new file; false after saying why. */
static bool write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");
	bool ok = f && fwrite(data, 1, len, f) == len;
	if (f && fclose(f) != 0)
		ok = false;
	if (!ok)
		say("cannot write %s: %s", path, strerror(errno));
	return ok;
}

/* Writes the document's serialization (DOM.getOuterHTML of the document node: it needs no
 * script, so it works with --no-js and under any CSP). */
static bool save_dom(struct browser *b, const char *path)
{
	json_object *msg, *r = call(b, b->session, "DOM.getDocument", NULL, &msg);
	int root = json_object_get_int(member(member(r, "root"), "nodeId"));
	json_object_put(msg);
	if (!r)
		return false;
	json_object *p = json_object_new_object();
	json_object_object_add(p, "nodeId", json_object_new_int(root));
	r = call(b, b->session, "DOM.getOuterHTML", p, &msg);
	const char *html = str(r, "outerHTML");
	bool ok = r && write_file(path, html, strlen(html));
	json_object_put(msg);
	return ok;
}

/* Writes a PNG of the viewport (Page.captureScreenshot's base64, decoded). */
static bool save_screenshot(struct browser *b, const char *path)
{
	json_object *msg, *p = json_object_new_object();
	json_object_object_add(p, "format", json_object_new_string("png"));
	json_object *r = call(b, b->session, "Page.captureScreenshot", p, &msg);
	const char *data = str(r, "data");
	size_t n = strlen(data);
	unsigned char *png = malloc(n / 4 * 3 + 3);
	int len = png && n % 4 == 0 ? EVP_DecodeBlock(png, (const unsigned char *)data, (int)n) : -1;
	bool ok = false;
	if (r && len >= 0) {
		/* EVP_DecodeBlock counts the padding's bytes */
		len -= (n >= 1 && data[n - 1] == '=') + (n >= 2 && data[n - 2] == '=');
		ok = write_file(path, png, (size_t)len);
	} else if (r)
		say("Page.captureScreenshot: bad base64");
	free(png);
	json_object_put(msg);
	return ok;
}

/* Closes Chromium: Browser.close, the pipes closed, at most CLOSE_MS for it to exit, then its
 * process group killed and it reaped. */
static void stop_chromium(struct browser *b)
{
	if (b->pid <= 0)
		return;
	if (!interrupted && !has_exited(b->pid)) {
		b->deadline = now_ms() + 1000;
		send_command(b, NULL, "Browser.close", NULL);
	}
	close(b->to);
	close(b->from);
	wait_exit(b->pid, interrupted ? 0 : CLOSE_MS);
	kill(-b->pid, SIGKILL); /* what is left of the group: renderers, zygotes, a hung browser */
	reap_children();        /* the browser, and the orphans (crash handlers) that came to us */
	b->pid = 0;
}

/* ---- main --------------------------------------------------------------------------------------- */

/* Prints the usage and returns EXIT_USAGE. */
static int usage(void)
{
	fputs("usage: browse [--screenshot FILE.png] [--dom FILE.html] [--width W --height H] [--no-js]\n"
	      "              [--timeout SECONDS] URL\n", stderr);
	return EXIT_USAGE;
}

/* A whole number in [min, max] from text, or -1. */
static long number(const char *text, long min, long max)
{
	char *end;
	errno = 0;
	long v = strtol(text, &end, 10);
	return errno || end == text || *end || v < min || v > max ? -1 : v;
}

/* Parses the command line; false on a usage error. */
static bool parse(int argc, char **argv, struct options *o)
{
	static const struct option longs[] = {
		{"screenshot", required_argument, NULL, 's'}, {"dom", required_argument, NULL, 'd'},
		{"width", required_argument, NULL, 'w'}, {"height", required_argument, NULL, 'h'},
		{"no-js", no_argument, NULL, 'n'}, {"timeout", required_argument, NULL, 't'},
		{NULL, 0, NULL, 0}};
	*o = (struct options){.width = 1100, .height = 800, .timeout = 30};
	int c;
	long v;
	while ((c = getopt_long(argc, argv, "", longs, NULL)) != -1) {
		switch (c) {
		case 's': o->screenshot = optarg; break;
		case 'd': o->dom = optarg; break;
		case 'n': o->no_js = true; break;
		case 'w': if ((o->width = (int)number(optarg, 1, 10000)) < 0) return false; break;
		case 'h': if ((o->height = (int)number(optarg, 1, 10000)) < 0) return false; break;
		case 't': if ((v = number(optarg, 1, 3600)) < 0) return false; o->timeout = (double)v; break;
		default: return false;
		}
	}
	if (optind != argc - 1)
		return false;
	o->url = argv[optind];
	return true;
}

/* SIGINT, SIGTERM, SIGHUP: stop waiting, close Chromium, remove the directory. */
static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

/* Installs the handlers (no SA_RESTART: poll returns) and ignores SIGPIPE. */
static void catch_signals(void)
{
	struct sigaction sa = {.sa_handler = on_signal};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

/* Attaches, loads, saves; the exit code. */
static int run(struct browser *b, const struct options *o)
{
	if (!attach(b) || !prepare(b, o))
		return EXIT_FAILED;
	int rc = load(b, o->url);
	if (b->status)
		printf("status %d\n", b->status);
	fflush(stdout);
	if (rc != EXIT_OK)
		return rc;
	if (o->dom && !save_dom(b, o->dom))
		return EXIT_FAILED;
	if (o->screenshot && !save_screenshot(b, o->screenshot))
		return EXIT_FAILED;
	return b->problems ? EXIT_PROBLEMS : EXIT_OK;
}

/* Frees what the run kept. */
static void release(struct browser *b)
{
	for (size_t i = 0; i < b->ninflight; i++)
		free(b->inflight[i].id), free(b->inflight[i].url);
	free(b->inflight);
	free(b->buf);
	free(b->session);
	free(b->main_frame);
	free(b->main_request);
	free(b->dir);
}

int main(int argc, char **argv)
{
	struct options o;
	struct browser b = {.pid = 0, .to = -1, .from = -1};
	if (!parse(argc, argv, &o))
		return usage();
	catch_signals();
	prctl(PR_SET_CHILD_SUBREAPER, 1); /* Chromium's orphans become our children */
	b.timeout = o.timeout;
	b.deadline = now_ms() + (long long)(o.timeout * 1000);
	b.last_message = now_ms();
	if (!(b.dir = make_dir()))
		return EXIT_FAILED;
	int rc = start_chromium(&b) ? run(&b, &o) : EXIT_FAILED;
	if (rc == EXIT_FAILED)
		show_chromium_log(b.dir);
	stop_chromium(&b);
	remove_dir(b.dir);
	release(&b);
	return rc;
}
