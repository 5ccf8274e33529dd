/* Filters: a state through an external command, with a timeout, failing closed (filter.h).
 *
 * fork + exec of /bin/sh -c, the child in a process group of its own. Its stdin, stdout and
 * stderr are pipes served together by one poll() loop with non-blocking ends (a filter may
 * write before it has read everything: a large state never deadlocks). The child's exit is
 * seen through a pidfd (a 20 ms tick of waitid(WNOWAIT) where pidfds are not available) and
 * is not reaped until the group has been killed: the group's id stays the child's own pid
 * until then, so kill(-pid) can never reach a group that took the number over. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "filter.h"
#include "../net/deadline.h"
#include "../internal.h"

extern char **environ;

#define FIRST_CAPACITY ((size_t)64 * 1024)
#define TICK_MS 20 /* without a pidfd: how often the child's exit is looked for */

static void say(char *why, size_t whylen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void say(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;
	if (!why || !whylen)
		return;
	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
}

static void close_fd(int *fd)
{
	if (*fd >= 0) {
		close(*fd);
		*fd = -1;
	}
}

/* A variable the filter must not see: tfgit's secrets and its own settings. */
static int secret_variable(const char *entry)
{
	static const char *const names[] = {"GIT_PASSWORD", "GITHUB_TOKEN",
					    "TF_BACKEND_HTTP_ENCRYPTION_PASSPHRASE"};
	const char *eq = strchr(entry, '=');
	size_t n = eq ? (size_t)(eq - entry) : strlen(entry);
	if (!strncmp(entry, "TFGIT_", 6) && n >= 6)
		return 1;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strlen(names[i]) == n && !memcmp(entry, names[i], n))
			return 1;
	}
	return 0;
}

/* The process's environment minus the secrets: pointers into environ, not copies. */
static char **child_environment(void)
{
	size_t n = 0, k = 0;
	while (environ && environ[n])
		n++;
	char **envp = malloc((n + 1) * sizeof(*envp));
	if (!envp)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (!secret_variable(environ[i]))
			envp[k++] = environ[i];
	}
	envp[k] = NULL;
	return envp;
}

/* Closes every descriptor from first on, but keep. Async-signal-safe (after fork). */
static void close_from(int first, int keep)
{
#ifdef SYS_close_range
	/* keep is at first or above */
	if ((keep == first || syscall(SYS_close_range, (unsigned)first, (unsigned)keep - 1, 0u) == 0) &&
	    syscall(SYS_close_range, (unsigned)keep + 1, ~0u, 0u) == 0)
		return;
#endif
	struct rlimit rl;
	long limit = 1L << 20; /* kernels before 5.9: every possible descriptor, up to a bound */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (rlim_t)limit)
		limit = (long)rl.rlim_cur;
	for (long fd = first; fd < limit; fd++) {
		if (fd != keep)
			close((int)fd);
	}
}

/* The child, between fork and exec: async-signal-safe calls only. A failure is reported on
 * report (close-on-exec: end of file there means exec succeeded) as an errno. */
static void child(int in_r, int out_w, int err_w, int report, char *const argv[], char *const envp[])
{
	int e;
	int from[3] = {in_r, out_w, err_w}, high[3];
	sigset_t none;
	struct sigaction dfl;

	if (setpgid(0, 0) < 0)
		goto fail;
	/* the report pipe, then copies of the three ends, all at 3 or above: an end that
	 * happened to be 0, 1 or 2 is not overwritten by the dup2() of another */
	if ((report = fcntl(report, F_DUPFD_CLOEXEC, 3)) < 0)
		goto fail;
	for (int i = 0; i < 3; i++) {
		if ((high[i] = fcntl(from[i], F_DUPFD, 3)) < 0)
			goto fail;
	}
	for (int i = 0; i < 3; i++) {
		if (dup2(high[i], i) < 0) /* dup2's copy is not close-on-exec */
			goto fail;
	}
	close_from(3, report);

	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	sigemptyset(&dfl.sa_mask);
	for (int s = 1; s < NSIG; s++) {
		if (s != SIGKILL && s != SIGSTOP)
			sigaction(s, &dfl, NULL); /* some (glibc's own) refuse: fine */
	}
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	umask(077);
	if (chdir("/") < 0)
		goto fail;
	execve(argv[0], argv, envp);
fail:
	e = errno;
	if (report >= 0) {
		ssize_t w = write(report, &e, sizeof(e));
		(void)w;
	}
	_exit(127);
}

static int set_nonblocking(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* The output so far; grows geometrically up to max. */
struct outbuf {
	char *ptr;
	size_t size, cap, max;
	int too_large;
};

/* One read from a ready stdout: 1 data, 0 end of file, -1 error (errno), -2 would block. */
static int read_output(int fd, struct outbuf *b)
{
	if (b->size == b->cap && b->cap < b->max) {
		size_t cap = b->cap ? b->cap : FIRST_CAPACITY;
		if (b->cap)
			cap = b->cap > b->max / 2 ? b->max : b->cap * 2;
		if (cap > b->max)
			cap = b->max;
		char *p = realloc(b->ptr, cap + 1);
		if (!p)
			return -1;
		b->ptr = p;
		b->cap = cap;
	}
	char extra[1];
	char *to = b->size < b->cap ? b->ptr + b->size : extra;
	size_t room = b->size < b->cap ? b->cap - b->size : sizeof(extra);
	ssize_t n = read(fd, to, room);
	if (n < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? -2 : -1;
	if (n == 0)
		return 0;
	if (to == extra) {
		b->too_large = 1;
		return 1;
	}
	b->size += (size_t)n;
	return 1;
}

/* One read from a ready stderr: the first room bytes kept, the rest discarded. Same codes. */
static int read_errors(int fd, char *keep, size_t *kept, size_t room)
{
	char sink[4096];
	int keeping = *kept < room;
	ssize_t n = read(fd, keeping ? keep + *kept : sink, keeping ? room - *kept : sizeof(sink));
	if (n < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? -2 : -1;
	if (n == 0)
		return 0;
	if (keeping)
		*kept += (size_t)n;
	return 1;
}

/* The child has exited (a zombie, not reaped): 1, else 0. */
static int has_exited(pid_t pid)
{
	siginfo_t si;
	memset(&si, 0, sizeof(si));
	if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0)
		return errno != EINTR; /* ECHILD: someone else reaped it; nothing to wait for */
	return si.si_pid == pid;
}

/* Kills the group (the child not yet reaped, so pid is still its group's id), reaps the
 * child; its wait status, or -1 when it could not be had. */
static int kill_and_reap(pid_t pid)
{
	int status;
	if (kill(-pid, SIGKILL) < 0 && errno == ESRCH)
		kill(pid, SIGKILL);
	for (;;) {
		pid_t r = waitpid(pid, &status, 0);
		if (r == pid)
			return status;
		if (r < 0 && errno != EINTR)
			return -1;
	}
}

static const char *signal_name(int sig)
{
	const char *n = sigabbrev_np(sig);
	return n ? n : "?";
}

/* One run of a filter command: its pipes, its process, what it has said so far. */
struct run {
	const char *in;         /* its stdin, len bytes, written written */
	size_t len, written;
	int timeout_seconds;
	long long deadline;
	int pin[2], pout[2], perr[2], rep[2], pidfd;
	pid_t pid;              /* -1 once reaped */
	int exited, epipe, failed, sigpipe_was_pending;
	sigset_t pipeset, oldmask;
	struct outbuf ob;       /* stdout, at most max bytes */
	char *ebuf;             /* stderr, the first eroom bytes */
	size_t ekept, eroom;
	char **envp;
	char *why;
	size_t whylen;
};

/* SIGPIPE held back while the command's stdin is written (a closed one is EPIPE, not death). */
static void hold_sigpipe(struct run *x)
{
	sigset_t pending;
	sigemptyset(&x->pipeset);
	sigaddset(&x->pipeset, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &x->pipeset, &x->oldmask);
	if (sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE))
		x->sigpipe_was_pending = 1;
}

/* A SIGPIPE our write raised is taken back before the old mask returns. */
static void release_sigpipe(struct run *x)
{
	if (x->epipe && !x->sigpipe_was_pending) {
		struct timespec zero = {0, 0};
		while (sigtimedwait(&x->pipeset, NULL, &zero) < 0 && errno == EINTR)
			;
	}
	pthread_sigmask(SIG_SETMASK, &x->oldmask, NULL);
}

/* Starts cmd under /bin/sh in a process group of its own, its ends of the pipes non-blocking;
 * 0, or -1 with why said. */
static int start(struct run *x, const char *cmd)
{
	if (!(x->ebuf = malloc(x->eroom + 1)) || !(x->envp = child_environment())) {
		say(x->why, x->whylen, "could not start: out of memory");
		return -1;
	}
	if (pipe2(x->pin, O_CLOEXEC) < 0 || pipe2(x->pout, O_CLOEXEC) < 0 || pipe2(x->perr, O_CLOEXEC) < 0 ||
	    pipe2(x->rep, O_CLOEXEC) < 0) {
		say(x->why, x->whylen, "could not start: pipe: %s", strerror(errno));
		return -1;
	}
	char *argv[] = {"/bin/sh", "-c", (char *)cmd, NULL};
	x->pid = fork();
	if (x->pid < 0) {
		say(x->why, x->whylen, "could not start: fork: %s", strerror(errno));
		return -1;
	}
	if (x->pid == 0)
		child(x->pin[0], x->pout[1], x->perr[1], x->rep[1], argv, x->envp);
	setpgid(x->pid, x->pid); /* the child does it too; whichever runs first */
	close_fd(&x->pin[0]);
	close_fd(&x->pout[1]);
	close_fd(&x->perr[1]);
	close_fd(&x->rep[1]);
	/* end of file once exec has closed the child's end; an errno if it failed */
	int e = 0;
	ssize_t n;
	while ((n = read(x->rep[0], &e, sizeof(e))) < 0 && errno == EINTR)
		;
	close_fd(&x->rep[0]);
	if (n > 0) {
		kill_and_reap(x->pid);
		x->pid = -1;
		say(x->why, x->whylen, "could not start: %s", n == sizeof(e) ? strerror(e) : "the child failed");
		return -1;
	}
	if (set_nonblocking(x->pin[1]) < 0 || set_nonblocking(x->pout[0]) < 0 || set_nonblocking(x->perr[0]) < 0) {
		say(x->why, x->whylen, "could not start: %s", strerror(errno));
		return -1;
	}
#ifdef SYS_pidfd_open
	x->pidfd = (int)syscall(SYS_pidfd_open, x->pid, 0); /* close-on-exec by default */
#endif
	if (!x->len)
		close_fd(&x->pin[1]);
	return 0;
}

/* Writes what the command's stdin can take; -1 on an error (said). */
static int feed(struct run *x)
{
	ssize_t w = write(x->pin[1], x->in + x->written, x->len - x->written);
	if (w > 0) {
		x->written += (size_t)w;
		if (x->written == x->len)
			close_fd(&x->pin[1]);
	} else if (w < 0 && errno == EPIPE) {
		x->epipe = 1; /* the command closed its stdin: it wants no more */
		close_fd(&x->pin[1]);
	} else if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
		say(x->why, x->whylen, "writing its input: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/* Reads what the command wrote on stdout; -1 on an error or too much output (said). */
static int drain(struct run *x)
{
	int k = read_output(x->pout[0], &x->ob);
	if (k == 0) {
		close_fd(&x->pout[0]);
	} else if (k == -1) {
		say(x->why, x->whylen, "reading its output: %s", strerror(errno));
		return -1;
	} else if (x->ob.too_large) {
		say(x->why, x->whylen, "output larger than %zu bytes", x->ob.max);
		return -1;
	}
	return 0;
}

/* Feeds stdin and reads stdout and stderr until stdout is at end of file and the command has
 * exited (stderr is not waited for: what is left of the group is killed after, and a setsid'd
 * helper may hold it), or the deadline passes; sets x->failed (why said) on any failure. */
static void pump(struct run *x)
{
	while (x->pout[0] >= 0 || !x->exited) {
		long long left = x->deadline - core_now_ms();
		if (left <= 0) {
			say(x->why, x->whylen, "timed out after %d s%s", x->timeout_seconds,
			    x->exited ? " (the command exited; something it started still held its output)" : "");
			x->failed = 1;
			return;
		}
		struct pollfd p[4];
		int np = 0, iin = -1, iout = -1, ierr = -1, ipid = -1;
		if (x->pin[1] >= 0)
			p[iin = np++] = (struct pollfd){.fd = x->pin[1], .events = POLLOUT};
		if (x->pout[0] >= 0)
			p[iout = np++] = (struct pollfd){.fd = x->pout[0], .events = POLLIN};
		if (x->perr[0] >= 0)
			p[ierr = np++] = (struct pollfd){.fd = x->perr[0], .events = POLLIN};
		if (!x->exited && x->pidfd >= 0)
			p[ipid = np++] = (struct pollfd){.fd = x->pidfd, .events = POLLIN};
		int wait = left > INT_MAX ? INT_MAX : (int)left;
		if (!x->exited && x->pidfd < 0 && wait > TICK_MS)
			wait = TICK_MS;
		if (poll(p, (nfds_t)np, wait) < 0) {
			if (errno == EINTR)
				continue;
			say(x->why, x->whylen, "poll: %s", strerror(errno));
			x->failed = 1;
			return;
		}
		if (!x->exited && (ipid >= 0 ? (p[ipid].revents & POLLIN) != 0 : x->pidfd < 0 && has_exited(x->pid)))
			x->exited = 1;
		if ((iin >= 0 && p[iin].revents && feed(x) < 0) || (iout >= 0 && p[iout].revents && drain(x) < 0)) {
			x->failed = 1;
			return;
		}
		if (ierr >= 0 && p[ierr].revents) {
			int k = read_errors(x->perr[0], x->ebuf, &x->ekept, x->eroom);
			if (k == 0 || k == -1)
				close_fd(&x->perr[0]);
		}
	}
}

/* The group is killed in every case: after a failure the command itself, after success
 * whatever it left behind; then the child is reaped and its end judged. 0 when it exited 0
 * with some output; else TFGIT_ERROR with why said. */
static int verdict(struct run *x)
{
	if (kill(-x->pid, SIGKILL) < 0 && errno == ESRCH && x->failed)
		kill(x->pid, SIGKILL);
	for (int i = 0; x->perr[0] >= 0 && i < 64; i++) { /* what it wrote on stderr before */
		if (read_errors(x->perr[0], x->ebuf, &x->ekept, x->eroom) != 1)
			break;
	}
	int status = kill_and_reap(x->pid);
	x->pid = -1;
	if (x->failed)
		return TFGIT_ERROR;
	if (status == -1)
		say(x->why, x->whylen, "its exit status was lost (SIGCHLD ignored, or reaped elsewhere)");
	else if (WIFSIGNALED(status))
		say(x->why, x->whylen, "killed by signal %d (SIG%s)", WTERMSIG(status), signal_name(WTERMSIG(status)));
	else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		say(x->why, x->whylen, "exit status %d", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	else if (x->ob.size == 0)
		say(x->why, x->whylen, "empty output");
	else
		return 0;
	return TFGIT_ERROR;
}

/* Releases what the run holds, whatever step it stopped at. */
static void cleanup(struct run *x)
{
	if (x->pid > 0)
		kill_and_reap(x->pid);
	int *fds[] = {&x->pin[0], &x->pin[1], &x->pout[0], &x->pout[1], &x->perr[0], &x->perr[1],
		      &x->rep[0], &x->rep[1], &x->pidfd};
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		close_fd(fds[i]);
	free(x->ebuf);
	free(x->envp);
}

int filter_run(const char *cmd, const char *in, size_t len, size_t max, int timeout_seconds,
	       tfgit_buf *out, char *err, size_t errlen, char *why, size_t whylen)
{
	struct run x = {.in = in, .len = len, .timeout_seconds = timeout_seconds,
			.pin = {-1, -1}, .pout = {-1, -1}, .perr = {-1, -1}, .rep = {-1, -1}, .pidfd = -1,
			.pid = -1, .ob = {NULL, 0, 0, max, 0}, .eroom = errlen ? errlen - 1 : 0,
			.why = why, .whylen = whylen};
	int rc = TFGIT_ERROR;
	if (out) {
		out->ptr = NULL;
		out->size = 0;
	}
	if (err && errlen)
		err[0] = '\0';
	if (why && whylen)
		why[0] = '\0';
	if (!cmd || !*cmd || !out || (len && !in) || !max || max >= SIZE_MAX || timeout_seconds <= 0 ||
	    timeout_seconds > INT_MAX / 1000) {
		say(why, whylen, "could not start: %s", !cmd || !*cmd ? "no command" : "invalid arguments");
		return TFGIT_ERROR;
	}
	x.deadline = core_now_ms() + (long long)timeout_seconds * 1000;
	hold_sigpipe(&x);
	if (start(&x, cmd) == 0) {
		pump(&x);
		rc = verdict(&x);
	}
	char *ebuf = x.ebuf;
	x.ebuf = NULL;
	cleanup(&x);
	release_sigpipe(&x);
	if (err && errlen && ebuf)
		tfgit_escape(err, errlen, ebuf, x.ekept);
	free(ebuf);
	if (rc == 0) {
		x.ob.ptr[x.ob.size] = '\0';
		out->ptr = x.ob.ptr;
		out->size = x.ob.size;
	} else {
		free(x.ob.ptr);
	}
	return rc;
}
