/* The bound on one operation's time (TFGIT_REMOTE_TIMEOUT): libgit2 1.5 has no timeouts.
 *
 * SIGALRM (no SA_RESTART) interrupts a blocking connect() or recv() with EINTR, but libssh2
 * retries some of those. So once the deadline has passed, the handler also shuts down every
 * socket opened since the operation began (the remote's connections: the FastCGI connection
 * and the listen socket are older): a blocked read then sees end of file, whatever library
 * is reading (sockets.c). The caller records the open descriptors (sockets_remember) first. */
#include <signal.h>
#include <string.h>
#include <sys/time.h>

#include "deadline.h"
#include "sockets.h"

static volatile sig_atomic_t passed;

static void on_alarm(int sig)
{
	(void)sig;
	passed = 1;
	sockets_cut();
}

void deadline_start(int seconds)
{
	struct sigaction sa;
	struct itimerval it = {.it_interval = {0, 100 * 1000}, .it_value = {seconds, 0}};
	passed = 0;
	if (seconds <= 0)
		return;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0; /* no SA_RESTART: blocking calls must return EINTR */
	sigaction(SIGALRM, &sa, NULL);
	setitimer(ITIMER_REAL, &it, NULL);
}

int deadline_passed(void)
{
	return passed;
}

void deadline_stop(void)
{
	struct itimerval off;
	memset(&off, 0, sizeof(off));
	setitimer(ITIMER_REAL, &off, NULL);
}
