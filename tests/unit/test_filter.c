/* Unit tests of filters (core/crypt/filter.c): real commands through /bin/sh, no mocks. Every call
 * is checked for what it could leave behind: a zombie, or a descriptor of this process. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "../../core/crypt/filter.h"
#include "../../core/tfgit.h"

#define MiB ((size_t)1024 * 1024)

struct res {
	int rc;
	tfgit_buf out;
	char err[256];
	char why[256];
	double secs;
};

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;
	struct dirent *e;
	assert_non_null(d);
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n - 1; /* the directory's own */
}

/* No child of this process is left, reaped or not. */
static void no_zombie(void)
{
	int st;
	pid_t r = waitpid(-1, &st, WNOHANG);
	if (!(r == 0 || (r == -1 && errno == ECHILD)))
		fail_msg("a child is left: waitpid says %ld", (long)r);
}

/* filter_run with an error buffer of errlen, checked for leftovers; r->out is the caller's. */
static int run_err(const char *cmd, const char *in, size_t len, size_t max, int timeout, size_t errlen,
		   struct res *r)
{
	memset(r, 0, sizeof(*r));
	r->out.ptr = (char *)"garbage"; /* overwritten, never freed */
	r->out.size = 7;
	int fds = count_fds();
	double t0 = now();
	r->rc = filter_run(cmd, in, len, max, timeout, &r->out, r->err, errlen, r->why, sizeof(r->why));
	r->secs = now() - t0;
	assert_int_equal(count_fds(), fds);
	no_zombie();
	if (r->rc != 0) {
		assert_int_equal(r->rc, TFGIT_ERROR);
		assert_null(r->out.ptr);
		assert_int_equal(r->out.size, 0);
		assert_true(r->why[0] != '\0');
	} else {
		assert_non_null(r->out.ptr);
		assert_true(r->out.size > 0);
		assert_int_equal(r->out.ptr[r->out.size], '\0');
	}
	return r->rc;
}

static int run(const char *cmd, const char *in, size_t len, size_t max, int timeout, struct res *r)
{
	return run_err(cmd, in, len, max, timeout, sizeof(r->err), r);
}

static void expect_why(const struct res *r, const char *part)
{
	if (!strstr(r->why, part))
		fail_msg("why is \"%s\", expected \"%s\" in it", r->why, part);
}

/* Random-ish bytes with NULs among them. */
static char *bytes(size_t n)
{
	char *b = malloc(n ? n : 1);
	uint64_t x = 88172645463325252ull;
	assert_non_null(b);
	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		b[i] = i % 97 == 5 ? '\0' : (char)(x >> 24);
	}
	return b;
}

static void cat_round_trips(void **st)
{
	(void)st;
	size_t sizes[] = {1, MiB, 20 * MiB};
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		struct res r;
		char *in = bytes(sizes[i]);
		assert_int_equal(run("cat", in, sizes[i], sizes[i], 30, &r), 0);
		assert_int_equal(r.out.size, sizes[i]);
		assert_memory_equal(r.out.ptr, in, sizes[i]);
		assert_string_equal(r.err, "");
		tfgit_buf_free(&r.out);
		free(in);
	}
}

static void tr_upper(void **st)
{
	(void)st;
	struct res r;
	const char *in = "terraform {\n  backend \"http\" {}\n}\n";
	assert_int_equal(run("tr a-z A-Z", in, strlen(in), 1024, 10, &r), 0);
	assert_string_equal(r.out.ptr, "TERRAFORM {\n  BACKEND \"HTTP\" {}\n}\n");
	tfgit_buf_free(&r.out);
}

/* A filter that writes before it has read everything: stdout is read while stdin waits. */
static void writes_before_reading(void **st)
{
	(void)st;
	struct res r;
	size_t n = 5 * MiB;
	char *in = bytes(n);
	assert_int_equal(run("head -c 5000000 /dev/zero; cat", in, n, 20 * MiB, 30, &r), 0);
	assert_int_equal(r.out.size, 5000000 + n);
	for (size_t i = 0; i < 5000000; i++) {
		if (r.out.ptr[i])
			fail_msg("byte %zu of the zeros is %d", i, r.out.ptr[i]);
	}
	assert_memory_equal(r.out.ptr + 5000000, in, n);
	tfgit_buf_free(&r.out);

	assert_int_equal(run("head -c 10; cat >/dev/null", in, n, 100, 30, &r), 0);
	assert_int_equal(r.out.size, 10);
	assert_memory_equal(r.out.ptr, in, 10);
	tfgit_buf_free(&r.out);
	free(in);
}

/* A filter that never reads: the writes end in EPIPE, which neither kills this process (whose
 * SIGPIPE is at its default action here, and then ignored) nor leaves a SIGPIPE pending. */
static void never_reads_stdin(void **st)
{
	(void)st;
	size_t n = 20 * MiB;
	char *in = bytes(n);
	void (*dispositions[])(int) = {SIG_DFL, SIG_IGN};
	/* the first may end before a write sees EPIPE; the second surely sees it (it closes its
	 * stdin and only then works a while) */
	const char *cmds[] = {"echo hi", "exec <&-; sleep 1; echo hi"};
	for (int i = 0; i < 4; i++) {
		struct res r;
		sigset_t pending, mask;
		void (*old)(int) = signal(SIGPIPE, dispositions[i % 2]);
		assert_int_equal(run(cmds[i / 2], in, n, 100, 30, &r), 0);
		signal(SIGPIPE, old);
		assert_string_equal(r.out.ptr, "hi\n");
		assert_true(r.secs < 5);
		assert_int_equal(sigpending(&pending), 0);
		assert_false(sigismember(&pending, SIGPIPE));
		assert_int_equal(sigprocmask(SIG_SETMASK, NULL, &mask), 0);
		assert_false(sigismember(&mask, SIGPIPE)); /* the caller's mask is back */
		tfgit_buf_free(&r.out);
	}
	free(in);
}

static void exit_status_and_stderr(void **st)
{
	(void)st;
	struct res r;
	assert_int_equal(run("echo oops >&2; exit 1", "x", 1, 100, 10, &r), TFGIT_ERROR);
	expect_why(&r, "exit status 1");
	assert_string_equal(r.err, "oops\\n"); /* escaped for a log line */

	/* a valid output does not save a failing command */
	assert_int_equal(run("cat; exit 3", "state", 5, 100, 10, &r), TFGIT_ERROR);
	expect_why(&r, "exit status 3");
	assert_null(strstr(r.why, "state"));

	/* warnings on success are kept */
	assert_int_equal(run("echo warn >&2; cat", "s", 1, 100, 10, &r), 0);
	assert_string_equal(r.err, "warn\\n");
	tfgit_buf_free(&r.out);
}

static void stderr_bounded(void **st)
{
	(void)st;
	struct res r;
	assert_int_equal(run_err("printf '0123456789' >&2; echo ok", "x", 1, 100, 10, 8, &r), 0);
	assert_string_equal(r.err, "0123456");
	tfgit_buf_free(&r.out);
	/* far more stderr than a pipe holds: drained, no deadlock */
	assert_int_equal(run("head -c 3000000 /dev/zero >&2; echo ok", "x", 1, 100, 10, &r), 0);
	assert_string_equal(r.out.ptr, "ok\n");
	/* the first 255 bytes, escaped as far as 255 characters go: 63 times \x00 */
	assert_int_equal(strlen(r.err), 63 * 4);
	for (size_t i = 0; i < 63 * 4; i += 4)
		assert_memory_equal(r.err + i, "\\x00", 4);
	tfgit_buf_free(&r.out);
}

static void times_out(void **st)
{
	(void)st;
	struct res r;
	assert_int_equal(run("sleep 30", "x", 1, 100, 1, &r), TFGIT_ERROR);
	expect_why(&r, "timed out after 1 s");
	assert_true(r.secs >= 0.9);
	assert_true(r.secs < 5);

	/* output, then stdout closed, then a hang: still a timeout, not a success */
	assert_int_equal(run("echo x; exec >&-; sleep 30", "x", 1, 100, 1, &r), TFGIT_ERROR);
	expect_why(&r, "timed out after 1 s");
	assert_true(r.secs < 5);
}

/* Waits (bounded) for a process that is not our child to end; 1 when it did. */
static int ended_within(pid_t pid, int ms)
{
	int fd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (fd < 0)
		return errno == ESRCH; /* gone already */
	struct pollfd p = {.fd = fd, .events = POLLIN};
	int r = poll(&p, 1, ms);
	close(fd);
	return r == 1;
}

static pid_t pid_in(const char *s)
{
	long v = strtol(s, NULL, 10);
	assert_true(v > 1);
	return (pid_t)v;
}

/* sh exits at once but a background process it started still holds stdout: the output is
 * not known to be complete, so the call waits for its end of file until the timeout, fails,
 * and the whole group, the background process included, is killed. */
static void background_holding_stdout(void **st)
{
	(void)st;
	struct res r;
	assert_int_equal(run("sleep 30 & echo $! >&2; echo x", "x", 1, 100, 1, &r), TFGIT_ERROR);
	expect_why(&r, "timed out after 1 s");
	expect_why(&r, "still held its output");
	assert_true(r.secs < 5);
	assert_true(ended_within(pid_in(r.err), 3000));
}

/* A background process that does not hold stdout: the call succeeds as soon as sh has exited
 * and stdout ended, and kills what sh left behind (also when it holds stderr). */
static void background_not_holding_stdout(void **st)
{
	(void)st;
	const char *cmds[] = {"sleep 30 >/dev/null 2>&1 & echo $!", "sleep 30 >/dev/null & echo $!"};
	for (int i = 0; i < 2; i++) {
		struct res r;
		assert_int_equal(run(cmds[i], "x", 1, 100, 10, &r), 0);
		assert_true(r.secs < 5);
		assert_true(ended_within(pid_in(r.out.ptr), 3000));
		tfgit_buf_free(&r.out);
	}
}

static void empty_output(void **st)
{
	(void)st;
	struct res r;
	assert_int_equal(run("true", "x", 1, 100, 10, &r), TFGIT_ERROR);
	expect_why(&r, "empty output");
	assert_int_equal(run("cat", "", 0, 100, 10, &r), TFGIT_ERROR);
	expect_why(&r, "empty output");
}

static void output_bounded(void **st)
{
	(void)st;
	struct res r;
	assert_int_equal(run("head -c 1000 /dev/zero", "x", 1, 1000, 10, &r), 0);
	assert_int_equal(r.out.size, 1000);
	tfgit_buf_free(&r.out);
	assert_int_equal(run("head -c 1001 /dev/zero", "x", 1, 1000, 10, &r), TFGIT_ERROR);
	expect_why(&r, "output larger than 1000 bytes");
	/* endless output: stopped at the bound, not at the timeout */
	assert_int_equal(run("yes", "x", 1, MiB, 30, &r), TFGIT_ERROR);
	expect_why(&r, "output larger than");
	assert_true(r.secs < 5);
	/* a buffer grown from 64 KiB up to a bound that is no power of 2: exactly the bound fits */
	size_t n = 3 * MiB + 7;
	char *in = bytes(n);
	assert_int_equal(run("cat", in, n, n, 30, &r), 0);
	assert_memory_equal(r.out.ptr, in, n);
	tfgit_buf_free(&r.out);
	assert_int_equal(run("cat", in, n, n - 1, 30, &r), TFGIT_ERROR);
	expect_why(&r, "output larger than");
	free(in);
}

static void killed_by_signal(void **st)
{
	(void)st;
	struct res r;
	assert_int_equal(run("kill -9 $$", "x", 1, 100, 10, &r), TFGIT_ERROR);
	expect_why(&r, "killed by signal 9 (SIGKILL)");
	assert_int_equal(run("echo partial; kill -TERM $$", "x", 1, 100, 10, &r), TFGIT_ERROR);
	expect_why(&r, "killed by signal 15 (SIGTERM)");
}

static void environment_without_secrets(void **st)
{
	(void)st;
	struct res r;
	const char *secret[] = {"GIT_PASSWORD", "GITHUB_TOKEN", "TF_BACKEND_HTTP_ENCRYPTION_PASSPHRASE",
				"TFGIT_DEFAULT_REPOSITORY", "TFGIT_X", "TFGIT_"};
	const char *kept[] = {"GIT_PASSWORD_FILE", "SOPS_AGE_KEY_FILE", "GNUPGHOME", "TFGITX", "MY_TFGIT_Y"};
	for (size_t i = 0; i < sizeof(secret) / sizeof(secret[0]); i++)
		setenv(secret[i], "s3cr3t-value", 1);
	for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++)
		setenv(kept[i], "/some/path", 1);
	setenv("HOME", "/home/filter-test", 1);
	assert_int_equal(run("env", "x", 1, MiB, 10, &r), 0);
	for (size_t i = 0; i < sizeof(secret) / sizeof(secret[0]); i++)
		unsetenv(secret[i]);
	for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++)
		unsetenv(kept[i]);
	assert_null(strstr(r.out.ptr, "s3cr3t"));
	char line[128];
	for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++) {
		snprintf(line, sizeof(line), "\n%s=/some/path\n", kept[i]);
		if (!strstr(r.out.ptr, line) && strncmp(r.out.ptr, line + 1, strlen(line + 1)))
			fail_msg("%s did not pass", kept[i]);
	}
	assert_true(strstr(r.out.ptr, "HOME=/home/filter-test\n") != NULL);
	assert_true(strstr(r.out.ptr, "PATH=") != NULL);
	tfgit_buf_free(&r.out);
}

/* Only the three pipes reach the command, whatever this process has open. */
static void no_descriptor_leaks(void **st)
{
	(void)st;
	struct res r;
	int f = open("/dev/null", O_RDONLY); /* no O_CLOEXEC */
	int p[2];
	assert_true(f >= 0);
	assert_int_equal(dup2(f, 50), 50);
	assert_int_equal(pipe(p), 0);
	/* ls's own: 3, the directory it lists */
	assert_int_equal(run("ls /proc/self/fd", "x", 1, 1000, 10, &r), 0);
	assert_string_equal(r.out.ptr, "0\n1\n2\n3\n");
	tfgit_buf_free(&r.out);
	assert_int_equal(run("for f in 0 1 2; do readlink /proc/$$/fd/$f | cut -c1-5; done", "x", 1, 1000, 10, &r), 0);
	assert_string_equal(r.out.ptr, "pipe:\npipe:\npipe:\n");
	tfgit_buf_free(&r.out);
	close(f);
	close(50);
	close(p[0]);
	close(p[1]);
}

/* The caller's own 0 and 2 closed (a pipe end then lands on them): the child still gets the
 * right pipe on each. */
static void caller_without_stdio(void **st)
{
	(void)st;
	struct res r1, r2;
	int save0 = dup(0), save2 = dup(2);
	assert_true(save0 >= 0 && save2 >= 0);
	close(0);
	close(2);
	char *in = bytes(MiB);
	int rc1 = filter_run("cat", in, MiB, MiB, 30, &r1.out, r1.err, sizeof(r1.err), r1.why, sizeof(r1.why));
	int rc2 = filter_run("echo e >&2; ls /proc/self/fd", "x", 1, 1000, 10, &r2.out, r2.err, sizeof(r2.err), r2.why,
			     sizeof(r2.why));
	dup2(save0, 0);
	dup2(save2, 2);
	close(save0);
	close(save2);
	assert_int_equal(rc1, 0);
	assert_int_equal(r1.out.size, MiB);
	assert_memory_equal(r1.out.ptr, in, MiB);
	assert_int_equal(rc2, 0);
	assert_string_equal(r2.out.ptr, "0\n1\n2\n3\n");
	assert_string_equal(r2.err, "e\\n");
	no_zombie();
	tfgit_buf_free(&r1.out);
	tfgit_buf_free(&r2.out);
	free(in);
}

static void umask_and_directory(void **st)
{
	(void)st;
	struct res r;
	mode_t old = umask(022);
	assert_int_equal(run("umask; pwd", "x", 1, 100, 10, &r), 0);
	umask(old);
	assert_string_equal(r.out.ptr, "0077\n/\n");
	tfgit_buf_free(&r.out);
}

static void refuses_bad_arguments(void **st)
{
	(void)st;
	struct res r;
	assert_int_equal(run(NULL, "x", 1, 100, 10, &r), TFGIT_ERROR);
	expect_why(&r, "could not start");
	assert_int_equal(run("", "x", 1, 100, 10, &r), TFGIT_ERROR);
	expect_why(&r, "could not start");
	assert_int_equal(run("cat", "x", 1, 100, 0, &r), TFGIT_ERROR);
	expect_why(&r, "could not start");
	assert_int_equal(run("cat", "x", 1, 0, 10, &r), TFGIT_ERROR);
	/* err and why may be left out */
	tfgit_buf out;
	assert_int_equal(filter_run("exit 2", "x", 1, 100, 10, &out, NULL, 0, NULL, 0), TFGIT_ERROR);
	no_zombie();
	/* a command sh cannot find is its exit status 127 */
	assert_int_equal(run("/nonexistent/filter", "x", 1, 100, 10, &r), TFGIT_ERROR);
	expect_why(&r, "exit status 127");
}

static volatile sig_atomic_t alarms;
static void on_alarm(int sig)
{
	(void)sig;
	alarms++;
}

/* The deadline's SIGALRM (no SA_RESTART) firing every few ms through a call changes nothing. */
static void interrupted_by_signals(void **st)
{
	(void)st;
	struct res r;
	struct sigaction sa, old;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, &old);
	struct itimerval it = {{0, 2000}, {0, 2000}}, off = {{0, 0}, {0, 0}};
	setitimer(ITIMER_REAL, &it, NULL);
	size_t n = 20 * MiB;
	char *in = bytes(n);
	alarms = 0;
	int rc = run("cat", in, n, n, 30, &r);
	setitimer(ITIMER_REAL, &off, NULL);
	sigaction(SIGALRM, &old, NULL);
	assert_int_equal(rc, 0);
	assert_memory_equal(r.out.ptr, in, n);
	tfgit_buf_free(&r.out);
	free(in);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(cat_round_trips),
		cmocka_unit_test(tr_upper),
		cmocka_unit_test(writes_before_reading),
		cmocka_unit_test(never_reads_stdin),
		cmocka_unit_test(exit_status_and_stderr),
		cmocka_unit_test(stderr_bounded),
		cmocka_unit_test(times_out),
		cmocka_unit_test(background_holding_stdout),
		cmocka_unit_test(background_not_holding_stdout),
		cmocka_unit_test(empty_output),
		cmocka_unit_test(output_bounded),
		cmocka_unit_test(killed_by_signal),
		cmocka_unit_test(environment_without_secrets),
		cmocka_unit_test(no_descriptor_leaks),
		cmocka_unit_test(caller_without_stdio),
		cmocka_unit_test(umask_and_directory),
		cmocka_unit_test(refuses_bad_arguments),
		cmocka_unit_test(interrupted_by_signals),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
