/* The bound on one operation's time (TFGIT_REMOTE_TIMEOUT): libgit2 1.5 has no timeouts.
 *
 * SIGALRM (no SA_RESTART) interrupts a blocking connect() or recv() with EINTR, but libssh2
 * retries some of those. So once the deadline has passed, the handler also shuts down every
 * socket opened since the operation began (the remote's connections: the FastCGI connection
 * and the listen socket are older): a blocked read then sees end of file, whatever library
 * is reading (sockets.c). The caller records the open descriptors (sockets_remember) first.
 *
 * Within the operation, the wait for the repository's flock has a shorter bound of its own
 * (TFGIT_QUEUE_TIMEOUT): while it is armed the timer only ends the wait. */
#include <signal.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "deadline.h"
#include "../internal.h"
#include "sockets.h"

static volatile sig_atomic_t passed, waiting, wait_passed;
static struct timespec started;
static long total_ms;

static void on_alarm(int sig)
{
	(void)sig;
	if (waiting) {
		wait_passed = 1;
		return;
	}
	passed = 1;
	sockets_cut();
}

/* Fires after ms, then every 100 ms (a signal that lands just before a blocking call is
 * followed by another). */
static void arm(long ms)
{
	struct itimerval it = {.it_interval = {0, 100 * 1000},
			       .it_value = {ms / 1000, (ms % 1000) * 1000}};
	if (ms <= 0)
		it.it_value.tv_usec = 1;
	setitimer(ITIMER_REAL, &it, NULL);
}

static long elapsed_ms(void)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - started.tv_sec) * 1000L + (now.tv_nsec - started.tv_nsec) / 1000000L;
}

void deadline_start(int seconds)
{
	deadline_start_ms(seconds > 0 ? seconds * 1000L : 0);
}

void deadline_start_ms(long ms)
{
	struct sigaction sa;
	passed = waiting = wait_passed = 0;
	total_ms = ms;
	clock_gettime(CLOCK_MONOTONIC, &started);
	if (ms <= 0)
		return;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0; /* no SA_RESTART: blocking calls must return EINTR */
	sigaction(SIGALRM, &sa, NULL);
	arm(ms);
}

int deadline_passed(void)
{
	return passed;
}

void deadline_wait_begin(int seconds)
{
	wait_passed = 0;
	if (seconds <= 0 || (total_ms > 0 && seconds * 1000L >= total_ms - elapsed_ms()))
		return; /* the operation's own bound comes first */
	if (total_ms <= 0) {
		struct sigaction sa;
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_alarm;
		sigemptyset(&sa.sa_mask);
		sigaction(SIGALRM, &sa, NULL);
	}
	waiting = 1;
	arm(seconds * 1000L);
}

int deadline_wait_passed(void)
{
	return wait_passed;
}

void deadline_wait_end(void)
{
	if (!waiting)
		return;
	waiting = 0;
	if (total_ms > 0)
		arm(total_ms - elapsed_ms()); /* what is left of the operation's bound */
	else
		deadline_stop();
}

void deadline_stop(void)
{
	struct itimerval off;
	memset(&off, 0, sizeof(off));
	waiting = 0;
	setitimer(ITIMER_REAL, &off, NULL);
}

long long core_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
